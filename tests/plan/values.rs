//! Values that read well but would fail or mislead at run time are `plan` errors at their
//! place (issue 19): `--var` naming no variable, zero timeouts, step names whose log is one
//! of bgflow's own files, NUL bytes, environment names that are empty or hold `=`; and
//! what a step's templates see: paths relative to its `cwd`, the real run id.

use super::*;

fn wf(body: &str) -> String {
    format!("[workflow]\nname = \"w\"\n\n{body}")
}

#[test]
fn var_pyhton_accepted_silently_is_an_error_with_did_you_mean() {
    let out = Test::manifest(&wf(
        "[vars]\npython = \"python3\"\n\n[steps.a]\nrun = \"echo {{ vars.python }}\"\n",
    ))
    .args(["plan", "--offline", "--var", "pyhton=3", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "`--var pyhton` names no variable of the workflow",
        "bgflow.toml:4:2",
    )
    .stderr_has("did you mean `--var python=...`?");
    // A variable that only `--var` sets, used by a template, is a variable of the workflow.
    Test::manifest(&wf("[steps.a]\nrun = \"echo {{ vars.only_flag }}\"\n"))
        .args(["plan", "--offline", "--var", "only_flag=1", "bgflow.toml"])
        .run()
        .stdout_has("$ echo 1");
    let json = Test::manifest(&wf("[steps.a]\nrun = \"echo\"\n"))
        .args(["plan", "--offline", "--json", "--var", "x=1", "bgflow.toml"])
        .status(INVALID)
        .run()
        .json();
    assert_eq!(json["files"][0]["problems"][0]["code"], "unknown-var");
}

#[test]
fn timeout_0s_passes_plan_no_longer() {
    let out = Test::manifest(
        "[workflow]\nname = \"w\"\ntimeout = \"0s\"\n\n[steps.a]\nkind = \"service\"\nrun = \"true\"\ntimeout = \"0ms\"\nstall_timeout = \"0s\"\nready = { tcp = \"127.0.0.1:1\", timeout = \"0s\", interval = \"0s\" }\n",
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at("`timeout` must be longer than 0s", "bgflow.toml:3:11")
        .problem_at("`timeout` must be longer than 0s", "bgflow.toml:8:11")
        .problem_at("`stall_timeout` must be longer than 0s", "bgflow.toml:9:17")
        .problem_at("`timeout` must be longer than 0s", "bgflow.toml:10:42")
        .problem_at("`interval` must be longer than 0s", "bgflow.toml:10:59")
        .stderr_has("5 errors");
    // Zero is meaningful where it means "at once".
    Test::manifest(&wf(
        "[steps.a]\nrun = \"true\"\nretry_delay = \"0s\"\nkill_grace = \"0s\"\n",
    ))
    .args(["plan", "--offline", "bgflow.toml"])
    .run();
}

#[test]
fn step_names_hooks_and_supervisor_share_log_files_no_longer() {
    let out = Test::manifest(&wf(
        "[steps.hooks]\nrun = \"true\"\n\n[steps.supervisor]\nrun = \"true\"\n\n[steps.hooks-step]\nrun = \"true\"\n",
    ))
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "a step cannot be named `hooks`: bgflow writes its own `hooks.log` in the run folder",
        "bgflow.toml:4:8",
    )
    .problem_at(
        "a step cannot be named `supervisor`: bgflow writes its own `supervisor.log`",
        "bgflow.toml:7:8",
    )
    .stderr_has("2 errors");
}

#[test]
fn nul_bytes_pass_plan_no_longer() {
    let text = wf(r#"[requires]
files = ["f\u0000"]

[vars]
nul = "x\u0000y"

[env]
E = "a\u0000"

[hooks]
on_failure = "echo \u0000"

[steps.a]
kind = "service"
run = "echo {{ vars.nul }}"
env = { F = "\u0000" }
inputs = ["in\u0000"]
outputs = ["out\u0000"]
cwd = "d\u0000"
ready = { command = "true \u0000" }

[steps.b]
run = ["echo", "\u0000"]
tools = ["t\u0000"]
"#);
    let out = Test::manifest(&text)
        .args(["plan", "--offline", "bgflow.toml"])
        .status(INVALID)
        .run();
    for (message, place) in [
        ("an entry of `requires.files` holds a NUL byte", "5:10"),
        ("environment variable `E` holds a NUL byte", "11:5"),
        ("`on_failure` holds a NUL byte", "14:14"),
        ("`run` holds a NUL byte", "18:7"),
        ("environment variable `F` holds a NUL byte", "19:13"),
        ("a path in `inputs` holds a NUL byte", "20:11"),
        ("a path in `outputs` holds a NUL byte", "21:12"),
        ("`cwd` holds a NUL byte", "22:7"),
        ("`ready.command` holds a NUL byte", "23:21"),
        ("`run` holds a NUL byte", "26:16"),
        ("a tool in `tools` holds a NUL byte", "27:10"),
    ] {
        out.problem_at(message, &format!("bgflow.toml:{place}"));
    }
    out.stderr_has("11 errors");
}

#[test]
fn env_keys_holding_eq_or_empty_are_accepted_no_longer() {
    let out = Test::manifest(&wf(
        "[env]\n\"\" = \"x\"\n\"A=B\" = \"y\"\nOK = \"z\"\n\n[steps.a]\nrun = \"true\"\nenv = { \"C=D\" = \"1\" }\n",
    ))
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at("an environment variable name is empty", "bgflow.toml:5:1")
        .problem_at(
            "environment variable name `A=B` holds `=`",
            "bgflow.toml:6:1",
        )
        .problem_at(
            "environment variable name `C=D` holds `=`",
            "bgflow.toml:11:9",
        )
        .stderr_has("3 errors");
}

#[test]
fn cwd_sub_writes_to_sub_sub_no_longer() {
    let out = Test::manifest(&wf(
        "[steps.a]\ncwd = \"sub\"\nrun = \"echo made > {{ step.outputs }}\"\noutputs = [\"sub/out.txt\"]\n\n[steps.b]\ncwd = \"sub\"\nrun = \"cat {{ step.inputs }} > {{ step.outputs }}\"\ninputs = [\"sub/out.txt\"]\noutputs = [\"top.txt\"]\n",
    ))
    .folder("sub")
    .args(["plan", "--offline", "bgflow.toml"])
    .run();
    out.stdout_has("$ echo made > out.txt")
        .stdout_has("$ cat out.txt > ../top.txt");
    let ran = Test::manifest(&out_text(&out))
        .folder("sub")
        .args(["run", "--progress", "never", "bgflow.toml"])
        .run();
    assert_eq!(
        std::fs::read_to_string(ran.path().join("sub/out.txt")).expect("sub/out.txt"),
        "made\n"
    );
    assert_eq!(
        std::fs::read_to_string(ran.path().join("top.txt")).expect("top.txt"),
        "made\n"
    );
    assert!(!ran.path().join("sub/sub").exists());
}

fn out_text(out: &Output) -> String {
    std::fs::read_to_string(out.path().join("bgflow.toml")).expect("the workflow")
}

#[test]
fn env_run_id_gets_the_placeholder_no_longer() {
    let ran = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[env]\nTOP = \"{{ run.id }}\"\n\n[steps.a]\nrun = \"echo $STEP $TOP > {{ step.outputs }}\"\nenv = { STEP = \"{{ run.id }}\" }\ncwd = \"d-{{ run.id | length }}\"\noutputs = [\"d-8/ids.txt\"]\n",
    )
    .folder("d-8")
    .args(["run", "--progress", "never", "bgflow.toml"])
    .run();
    let ids = std::fs::read_to_string(ran.path().join("d-8/ids.txt")).expect("ids.txt");
    let runs: Vec<String> = std::fs::read_dir(ran.path().join(".bgflow/runs"))
        .expect("runs")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(ids.trim(), format!("{0} {0}", runs[0]));
    assert!(!ids.contains("<run-id>"));
}

/// A step that deletes the state folder ends its own run (its history is gone, guarantee
/// 13): `plan` warns at its `run`, so that `--strict` (pre-commit) refuses it. Excluding
/// the folder, or a dry run, is fine.
#[test]
fn a_step_that_deletes_the_state_folder_is_a_warning_at_its_run() {
    let out = Test::manifest(&wf(
        "[steps.clean]\nrun = \"git clean -fdx && echo clean\"\n\n[steps.build]\nneeds = [\"clean\"]\nrun = [\"rm\", \"-rf\", \".bgflow\"]\n",
    ))
    .args(["plan", "--offline", "bgflow.toml"])
    .run();
    out.problem_at(
        "step `clean` runs `git clean -fdx`, which deletes the state folder `.bgflow`",
        "bgflow.toml:5:7",
    )
    .stderr_has("git clean -fdx -e .bgflow")
    .stderr_has("step `build` runs `rm -rf .bgflow`")
    .stderr_has("`bgflow cleanup` removes old runs");
    let json = Test::manifest(&wf("[steps.clean]\nrun = \"git clean -fdx\"\n"))
        .args(["plan", "--offline", "--json", "--strict", "bgflow.toml"])
        .status(INVALID)
        .run()
        .json();
    assert_eq!(
        json["files"][0]["problems"][0]["code"],
        "cleans-state-folder"
    );
    Test::manifest(&wf(
        "[steps.clean]\nrun = \"git clean -fdx -e .bgflow; git clean -ndx\"\n",
    ))
    .args(["plan", "--offline", "--strict", "bgflow.toml"])
    .run();
}
