//! Steps that print a lot: past its first mebibyte a step's output is copied by a thread of
//! its own that lets the pipe fill between helpings (`exec/logpipe/pacer.rs`). Whatever
//! copies it, the log holds every byte in order, the copy ends with the step however the
//! step ends, and more such steps than there are pacer threads lose nothing.

use super::*;

/// `len` bytes that repeat only after 2^32 (a xorshift generator), so that a byte lost,
/// doubled or moved shows in the comparison.
fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[1]
        })
        .collect()
}

/// The first byte where two byte strings differ, for a failure message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!("first difference at byte {i}"),
        None => format!("lengths {} and {}", a.len(), b.len()),
    }
}

/// The names of bgflow's threads (`/proc/PID/task/*/comm`).
fn thread_names(pid: Pid) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .map(|c| c.trim().to_owned())
        .collect()
}

/// 8 MiB printed at once, then a pause, then more: a `bgflow-copy` thread takes the copy
/// over while the step runs, waits through the pause, and the log is the step's output
/// byte for byte.
#[test]
fn a_step_printing_a_lot_is_copied_whole_by_a_thread_of_its_own() {
    let flow = Flow::new(
        r#"
[workflow]
name = "chatty"

[steps.big]
run = ["sh", "-c", "cat data.bin; touch printed; sh wait.sh go; printf 'and the end'"]
"#,
    );
    let data = noise(8 << 20, 7);
    std::fs::write(flow.path().join("data.bin"), &data).expect("write data.bin");
    let running = flow.start(&[]);
    wait_until(SOON, "the step to print its data", || {
        flow.exists("printed")
    });
    wait_until(SOON, "a bgflow-copy thread", || {
        thread_names(running.pid())
            .iter()
            .any(|n| n == "bgflow-copy")
    });
    flow.write("go", "");
    let out = running.finish();
    out.expect_code(0).expect_state("big", "succeeded");
    let log = std::fs::read(out.log_dir().join("big.log")).expect("big.log");
    let mut want = data;
    want.extend_from_slice(b"and the end");
    assert!(
        log == want,
        "big.log is not the step's output: {}",
        first_difference(&log, &want)
    );
}

/// A step that prints without pause until its timeout: the copy ends with it (the run
/// does not wait on the copy) and the log holds what was printed.
#[test]
fn a_step_printing_without_pause_times_out_and_its_copy_ends() {
    let flow = Flow::new(
        r#"
[workflow]
name = "chatty"

[steps.endless]
run = "yes a-line-that-yes-prints-for-ever"
timeout = "2s"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("endless", "timed_out");
    let log = std::fs::read(out.log_dir().join("endless.log")).expect("endless.log");
    assert!(
        log.len() > 4 << 20,
        "the log holds {} bytes of two seconds of `yes`",
        log.len()
    );
    // Whole lines up to the last one, which the timeout may have cut.
    let line = b"a-line-that-yes-prints-for-ever\n";
    let whole = log.len() - log.len() % line.len();
    assert!(
        log[..whole].chunks(line.len()).all(|c| c == line),
        "the log holds something other than `yes`'s lines"
    );
}

/// More steps printing a lot at once than there are pacer threads (4): the copies beyond
/// them stay on the runtime, and every log is whole.
#[test]
fn more_chatty_steps_than_pacers_lose_nothing() {
    let mut manifest = String::from("[workflow]\nname = \"chatty\"\n");
    for i in 0..6 {
        manifest.push_str(&format!("\n[steps.s{i}]\nrun = \"cat data{i}.bin\"\n"));
    }
    let flow = Flow::new(&manifest);
    let data: Vec<Vec<u8>> = (0..6).map(|i| noise(3 << 20, 100 + i)).collect();
    for (i, d) in data.iter().enumerate() {
        std::fs::write(flow.path().join(format!("data{i}.bin")), d).expect("write data");
    }
    let out = flow.run(&["-j", "6"]);
    out.expect_code(0);
    for (i, want) in data.iter().enumerate() {
        let log = std::fs::read(out.log_dir().join(format!("s{i}.log"))).expect("log");
        assert!(
            &log == want,
            "s{i}.log is not the step's output: {}",
            first_difference(&log, want)
        );
    }
}
