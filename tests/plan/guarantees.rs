//! Every problem at once, the seed scenario, exit codes, `--offline`, and no process started.

use super::*;

// ---------------------------------------------------------------------------------------
// 2. Every problem at once.
// ---------------------------------------------------------------------------------------

const MANY_PROBLEMS: &str = r#"[workflow]
name = "many"
timeout = "forever"

[vars]
prompt = "hi"

[steps.write]
run = "cat brief.md > out.md"
inputs = ["brief.md"]
outputs = ["out.md"]
retrys = 2

[steps.copy]
run = "cp out.md out2.md {{ vars.promt }}"
outputs = ["out.md"]
needs = ["wirte"]

[steps.a]
run = "true"
needs = ["b"]
fail_on = ["(unclosed"]

[steps.b]
run = "true"
needs = ["a"]
"#;

#[test]
fn reports_every_problem_at_once() {
    let out = Test::manifest(MANY_PROBLEMS)
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run();
    for (needle, place) in [
        ("invalid duration `forever`", "bgflow.toml:3:11"),
        ("unknown key `retrys` in [steps.write]", "bgflow.toml:12:1"),
        (
            "input `brief.md` of step `write` does not exist and no step makes it",
            "bgflow.toml:10:11",
        ),
        (
            "undefined value `vars.promt` in template",
            "bgflow.toml:15:29",
        ),
        (
            "`out.md` is an output of both `write` and `copy`",
            "bgflow.toml:16:12",
        ),
        (
            "step `copy` needs unknown step `wirte`",
            "bgflow.toml:17:10",
        ),
        ("dependency cycle: a -> b -> a", "bgflow.toml:19:8"),
        ("invalid regex: unclosed group", "bgflow.toml:22:12"),
    ] {
        out.problem_at(needle, place);
    }
    out.stderr_has("did you mean `retries`?")
        .stderr_has("did you mean `write`?")
        .stderr_has("did you mean `vars.prompt`?");
    out.stderr_has("error: bgflow.toml is not valid: 8 errors, 0 warnings; nothing ran");
    out.snapshot_stderr("many_problems");

    let json = Test::manifest(MANY_PROBLEMS)
        .args(["plan", "--json", "bgflow.toml"])
        .status(INVALID)
        .run()
        .json();
    let codes: BTreeSet<&str> = json["files"][0]["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["code"].as_str().expect("code"))
        .collect();
    assert!(codes.len() >= 6, "{codes:?}");
    assert_eq!(
        codes,
        BTreeSet::from([
            "cycle",
            "duplicate-output",
            "invalid-regex",
            "missing-input",
            "template",
            "unknown-key",
            "unknown-step",
            "wrong-type",
        ])
    );
}

// ---------------------------------------------------------------------------------------
// 3. The seed scenario: "no ready steps, missing requirements.md", caught before the run.
// ---------------------------------------------------------------------------------------

const SEED: &str = r#"[workflow]
name = "full-sdlc"

[steps.design]
run = "cat requirements.md > design.md"
inputs = ["requirements.md"]
outputs = ["design.md"]

[steps.implement]
run = "ls stories/ > plan.md"
inputs = ["design.md", "stories/"]
outputs = ["plan.md"]
"#;

#[test]
fn seed_missing_artifacts_are_named_with_step_and_line() {
    let test = Test::manifest(SEED);
    // An absolute file name: the location must be the file as given, then LINE:COL.
    let file = test.path().join("bgflow.toml").display().to_string();
    let out = test.args(["plan", file.as_str()]).status(INVALID).run();
    out.problem_at(
        "input `requirements.md` of step `design` does not exist and no step makes it",
        &format!("{file}:6:11"),
    )
    .problem_at(
        "input `stories/` of step `implement` does not exist and no step makes it",
        &format!("{file}:11:24"),
    )
    .stderr_has("2 errors, 0 warnings; nothing ran");
    assert!(
        !out.stderr.contains("`design.md`"),
        "design.md is made upstream:\n{}",
        out.stderr
    );
    out.snapshot_stderr("seed_missing_artifacts");

    // Once they exist, the same workflow is valid and design.md is shown as made upstream.
    Test::manifest(SEED)
        .file("requirements.md", "# Requirements\n")
        .file("stories/login.md", "As a user...\n")
        .args(["plan", "bgflow.toml"])
        .run()
        .stdout_has("in     requirements.md (exists)")
        .stdout_has("in     design.md (made by design)")
        .stdout_has("in     stories/ (exists)");
}

// ---------------------------------------------------------------------------------------
// 4. Exit codes.
// ---------------------------------------------------------------------------------------

const VALID: &str = "[workflow]\nname = \"valid\"\n\n[steps.hello]\nrun = \"echo hello\"\n";

#[test]
fn exit_0_when_valid() {
    let out = Test::manifest(VALID).args(["plan", "bgflow.toml"]).run();
    out.stderr_has("ok: bgflow.toml is valid: 1 step, 0 errors, 0 warnings");
    assert_eq!(
        out.stderr,
        "ok: bgflow.toml is valid: 1 step, 0 errors, 0 warnings\n"
    );
}

#[test]
fn exit_0_with_warnings_and_3_with_strict() {
    Test::fixture("service_without_ready")
        .args(["plan", "service_without_ready.toml"])
        .status(OK)
        .run();
    Test::fixture("service_without_ready")
        .args(["plan", "--strict", "service_without_ready.toml"])
        .status(INVALID)
        .run();
    // --strict changes nothing for a file without warnings.
    Test::manifest(VALID)
        .args(["plan", "--strict", "bgflow.toml"])
        .run();
}

#[test]
fn exit_3_on_problems() {
    Test::fixture("cycle")
        .args(["plan", "cycle.toml"])
        .status(INVALID)
        .run();
}

#[test]
fn exit_2_when_the_file_does_not_exist() {
    let out = Test::new().args(["plan", "nope.toml"]).status(USAGE).run();
    out.stderr_has("error: nope.toml: no such file");
    assert_eq!(out.stdout, "");
}

#[test]
fn exit_2_when_the_file_is_a_folder() {
    Test::new()
        .folder("dir.toml")
        .args(["plan", "dir.toml"])
        .status(USAGE)
        .run()
        .stderr_has("dir.toml: is a folder");
}

#[test]
fn exit_2_on_a_bad_flag() {
    let out = Test::manifest(VALID)
        .args(["plan", "--var", "novalue", "bgflow.toml"])
        .status(USAGE)
        .run();
    out.stderr_has("`novalue` is not K=V");
    assert_eq!(out.stdout, "");
    Test::manifest(VALID)
        .args(["plan", "--no-such-flag", "bgflow.toml"])
        .status(USAGE)
        .run();
}

#[test]
fn several_files_are_each_reported() {
    let test = Test::manifest(VALID).file(
        "broken.toml",
        "[workflow]\nname = \"broken\"\n\n[steps.a]\nrun = \"true\"\nneeds = [\"a\"]\n",
    );
    let out = test
        .args(["plan", "bgflow.toml", "broken.toml"])
        .status(INVALID)
        .run();
    out.stderr_has("ok: bgflow.toml is valid")
        .stderr_has("error: broken.toml is not valid: 1 error")
        .stderr_has("broken.toml:6:10")
        .stdout_has("workflow valid (bgflow.toml)");

    // The same in the other order: the exit code does not depend on which comes last.
    Test::manifest(VALID)
        .file(
            "broken.toml",
            "[workflow]\nname = \"broken\"\n\n[steps.a]\nrun = \"true\"\nneeds = [\"a\"]\n",
        )
        .args(["plan", "broken.toml", "bgflow.toml"])
        .status(INVALID)
        .run()
        .stderr_has("ok: bgflow.toml is valid");

    // A missing file among them is a usage error, and the others are still checked.
    Test::manifest(VALID)
        .args(["plan", "bgflow.toml", "nope.toml"])
        .status(USAGE)
        .run()
        .stderr_has("ok: bgflow.toml is valid")
        .stderr_has("error: nope.toml: no such file");
}

// ---------------------------------------------------------------------------------------
// 5. --offline: only what the file itself says.
// ---------------------------------------------------------------------------------------

const NEEDS_THE_MACHINE: &str = r#"[workflow]
name = "machine"

[requires]
tools = ["bgflow-test-no-such-tool"]
env = ["BGFLOW_TEST_NEVER_SET"]
files = ["config.yml"]

[steps.build]
run = "bgflow-test-no-such-compiler {{ env.BGFLOW_TEST_NEVER_SET }}"
inputs = ["src/main.c"]
cwd = "build"
"#;

#[test]
fn offline_skips_path_env_and_disk_checks() {
    let out = Test::manifest(NEEDS_THE_MACHINE)
        .env_remove("BGFLOW_TEST_NEVER_SET")
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run();
    for code in [
        "required tool `bgflow-test-no-such-tool`",
        "`BGFLOW_TEST_NEVER_SET` is not set",
        "required file `config.yml`",
        "undefined value `env.BGFLOW_TEST_NEVER_SET`",
        "input `src/main.c` of step `build`",
        "working folder",
    ] {
        out.stderr_has(code);
    }

    let offline = Test::manifest(NEEDS_THE_MACHINE)
        .env_remove("BGFLOW_TEST_NEVER_SET")
        .args(["plan", "--offline", "bgflow.toml"])
        .run();
    offline
        .stderr_has("ok: bgflow.toml is valid")
        .stdout_has("in     src/main.c (not checked: --offline)")
        .stdout_has("${BGFLOW_TEST_NEVER_SET}");
}

#[test]
fn offline_still_fails_on_syntax_graph_and_template_errors() {
    for (fixture, needle) in [
        ("syntax", "invalid TOML"),
        ("cycle", "dependency cycle: a -> b -> c -> a"),
        ("unknown_need", "needs unknown step `compiel`"),
        ("duplicate_output", "is an output of both"),
        ("template_undefined", "undefined value `vars.promt`"),
        ("template_syntax", "invalid template"),
        ("bad_duration", "invalid duration"),
        ("invalid_regex", "invalid regex"),
    ] {
        Test::fixture(fixture)
            .args(["plan", "--offline", &format!("{fixture}.toml")])
            .status(INVALID)
            .run()
            .stderr_has(needle);
    }
}

// ---------------------------------------------------------------------------------------
// 6. plan starts no process.
// ---------------------------------------------------------------------------------------

#[test]
fn plan_starts_no_process() {
    let manifest = r#"[workflow]
name = "side-effects"

[hooks]
on_success = "touch HOOK_SUCCESS"
on_failure = "touch HOOK_FAILURE"

[env]
FROM_ENV = "{{ vars.x }}"

[vars]
x = "$(touch FROM_VAR)"

[steps.shell]
run = "touch CREATED && mkdir MADE"
outputs = ["CREATED"]

[steps.argv]
run = ["touch", "ARGV_CREATED"]

[steps.api]
kind = "service"
run = "touch SERVICE"
ready = { command = "touch READY" }
health = { command = "touch HEALTH" }
"#;
    let test = Test::manifest(manifest);
    let before = listing(test.path());
    let out = test.args(["plan", "bgflow.toml"]).run();
    assert_eq!(listing(out.path()), before, "plan left files behind");

    for args in [
        vec!["plan", "--json", "bgflow.toml"],
        vec!["plan", "--offline", "bgflow.toml"],
        vec!["graph", "bgflow.toml"],
    ] {
        let test = Test::manifest(manifest);
        let before = listing(test.path());
        let out = test.args(args.clone()).run();
        assert_eq!(listing(out.path()), before, "{args:?} left files behind");
    }
}

// ---------------------------------------------------------------------------------------
// Templates in `cwd` and `env` are rendered at plan time, strictly.
// ---------------------------------------------------------------------------------------

/// An undefined name in `[env]`, a step's `env` or its `cwd` is a plan error at its own
/// location, like one in `run`; defined ones render into the plan.
#[test]
fn undefined_names_in_cwd_and_env_are_errors_where_they_stand() {
    let out = Test::manifest(
        r#"[workflow]
name = "templates"

[vars]
dir = "work"

[env]
TOP = "{{ vars.nope }}"

[steps.build]
run = "true"
cwd = "{{ vars.missing_dir }}"
env = { LEVEL = "{{ vars.lvl }}" }
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "undefined value `vars.nope` in template",
        "bgflow.toml:8:11",
    )
    .problem_at(
        "undefined value `vars.missing_dir` in template",
        "bgflow.toml:12:11",
    )
    .problem_at(
        "undefined value `vars.lvl` in template",
        "bgflow.toml:13:21",
    );

    let ok = Test::manifest(
        r#"[workflow]
name = "templates"

[vars]
dir = "work"

[steps.build]
run = "pwd"
cwd = "{{ vars.dir }}"
"#,
    )
    .folder("work")
    .args(["plan", "--offline", "bgflow.toml"])
    .run();
    ok.stdout_has("    cwd    ").stdout_has("/work\n");
}
