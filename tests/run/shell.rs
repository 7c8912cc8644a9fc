//! `shell`: which shell a string `run` goes to. Seen on the manifest's own example, `run =
//! "cargo build --release 2>&1 | tee build.log"`: under `sh` a failed build was a step that
//! succeeded, since a pipeline's status is its last command's (`tee`'s). `shell = "bash"`
//! runs the string under `bash -eo pipefail`, as GitHub Actions' `shell: bash` does.

use super::*;

/// `build`'s pipeline fails (exit 101 before the `|`); `list` fails in the middle of a
/// `;` list; `chosen` keeps `sh`'s rule; `plain` is plain words, started as before.
const FLOW: &str = r#"[workflow]
name = "shells"
SHELL

[steps.build]
run = "sh -c 'echo compiling; echo error: boom >&2; exit 101' 2>&1 | tee build.log"

[steps.list]
run = "false; touch list.ran"

[steps.chosen]
shell = "sh"
run = "false | true"

[steps.plain]
run = "touch plain.ran"
"#;

#[test]
fn under_bash_a_failure_inside_a_pipeline_or_a_list_fails_the_step() {
    let flow = Flow::new(&FLOW.replace("SHELL", "shell = \"bash\""));
    let out = flow.run(&["--keep-going"]);
    out.expect_code(1)
        .expect_state("build", "failed")
        .expect_state("list", "failed")
        .expect_state("chosen", "succeeded")
        .expect_state("plain", "succeeded");
    assert_eq!(out.step("build")["exit_code"], 101, "{}", out.step("build"));
    assert_eq!(out.reason("build"), "exit code 101");
    // tee still wrote what the build printed, and the log holds it.
    assert_eq!(flow.read("build.log"), "compiling\nerror: boom\n");
    assert!(
        out.log("build").contains("error: boom"),
        "{}",
        out.log("build")
    );
    assert!(
        !flow.exists("list.ran"),
        "`-e` ends the list at its first failure"
    );
    assert!(flow.exists("plain.ran"));
}

/// Under the default `sh` the same pipeline succeeds (POSIX), as before; `plan` warned of
/// it (`plan::diagnostics::a_pipeline_under_sh_is_warned_at_its_pipe`).
#[test]
fn under_sh_a_pipeline_is_its_last_commands_status() {
    let flow = Flow::new(&FLOW.replace("SHELL", ""));
    let out = flow.run(&["--keep-going"]);
    out.expect_code(0)
        .expect_state("build", "succeeded")
        .expect_state("list", "succeeded");
    assert!(flow.exists("list.ran"));
    assert!(
        out.stderr.contains("runs a pipeline under `sh`"),
        "the run shows plan's warning: {}",
        out.stderr
    );
}

/// A step's `shell` wins over `[workflow] shell`; `resume` and a re-rendered `run` (one
/// that names the run) keep it.
#[test]
fn a_steps_shell_overrides_the_workflows_and_holds_for_a_command_that_names_the_run() {
    let flow = Flow::new(
        r#"[workflow]
name = "override"
shell = "sh"

[steps.strict]
shell = "bash"
run = "echo {{ run.id }} > id.txt; false | true"
"#,
    );
    let out = flow.run(&[]);
    out.expect_code(1).expect_state("strict", "failed");
    let id = out.summary()["run_id"].as_str().expect("id").to_owned();
    assert_eq!(flow.read("id.txt"), format!("{id}\n"));
}
