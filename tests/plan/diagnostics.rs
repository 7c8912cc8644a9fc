//! One fixture (tests/fixtures/plan/) and one snapshot per problem class.

use super::*;

/// Plans fixture `name`, expects exit 3 and nothing on stdout, checks that stderr has each
/// of `needles` and matches the snapshot `diag_NAME`.
fn diagnostic(test: Test, name: &str, needles: &[&str]) -> Output {
    let out = test
        .args(["plan", &format!("{name}.toml")])
        .status(INVALID)
        .run();
    assert_eq!(out.stdout, "", "an invalid workflow prints no plan");
    for needle in needles {
        out.stderr_has(needle);
    }
    out.stderr_has(&format!(
        "error: {name}.toml is not valid: 1 error, 0 warnings; nothing ran"
    ));
    out.snapshot_stderr(&format!("diag_{name}"));
    out
}

fn diag(name: &str, needles: &[&str]) -> Output {
    diagnostic(Test::fixture(name), name, needles)
}

#[test]
fn toml_syntax_error() {
    diag("syntax", &["invalid TOML", "syntax.toml:5:12"]);
}

#[test]
fn unknown_key_suggests_the_known_one() {
    diag(
        "unknown_key",
        &[
            "unknown key `descripton` in [workflow]",
            "did you mean `description`?",
            "unknown_key.toml:3:1",
        ],
    );
}

#[test]
fn misspelled_step_key_suggests_timeout() {
    diag(
        "step_key_typo",
        &[
            "unknown key `timout` in [steps.build]",
            "did you mean `timeout`?",
            "step_key_typo.toml:6:1",
        ],
    );
}

#[test]
fn misspelled_top_level_table_suggests_requires() {
    diag(
        "top_level_typo",
        &[
            "unknown key `requirs` in top-level table",
            "did you mean `requires`?",
            "top_level_typo.toml:4:2",
        ],
    );
}

#[test]
fn wrong_type() {
    diag(
        "wrong_type",
        &[
            "invalid value for `retries`",
            "expected a whole number (0 or more)",
            "a whole number, without quotes, e.g. `retries = 2`",
            "wrong_type.toml:6:11",
        ],
    );
}

/// Seen writing a workflow for pluggy 1.5.0 as GitHub Actions' `timeout-minutes: 120` and
/// tox's numbers are written: `timeout = 120` was "invalid type: integer `120`, expected a
/// string", and `retries = "2"` "expected u32", Rust's name for a type. Each now says what
/// to write.
#[test]
fn a_bare_number_for_a_duration_and_a_quoted_count_say_what_to_write() {
    let toml = "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"true\"\ntimeout = 120\nkill_grace = 1.5\nretries = \"2\"\n\n[steps.b]\nrun = \"true\"\nretries = -1\n";
    Test::manifest(toml)
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run()
        .problem_at(
            "invalid value for `timeout`: a duration is a string with a unit: write \"120s\" for 120 seconds (or \"120m\", \"120ms\"), not the bare number 120",
            "bgflow.toml:6:11",
        )
        .problem_at(
            "invalid value for `kill_grace`: a duration is a string of whole numbers with units, e.g. \"1m30s\" or \"1500ms\", not the number 1.5",
            "bgflow.toml:7:14",
        )
        .problem_at(
            "invalid value for `retries`: invalid type: string \"2\", expected a whole number (0 or more)",
            "bgflow.toml:8:11",
        )
        .stderr_has("help: write the number without quotes: `retries = 2`")
        .problem_at(
            "invalid value for `retries`: invalid value: integer `-1`, expected a whole number (0 or more)",
            "bgflow.toml:12:11",
        );
}

#[test]
fn bad_duration() {
    diag(
        "bad_duration",
        &[
            "invalid duration `10 minutes`",
            "expected e.g. `500ms`, `30s`, `10m`, `1h30m`",
            "bad_duration.toml:6:11",
        ],
    );
}

#[test]
fn missing_workflow_table() {
    diag(
        "missing_workflow",
        &[
            "the file has no [workflow] table",
            "missing_workflow.toml:1:1",
        ],
    );
}

#[test]
fn missing_workflow_name_is_reported_once() {
    let out = diag(
        "missing_name",
        &["[workflow] has no `name`", "missing_name.toml:1:2"],
    );
    assert!(
        !out.stderr.contains("missing field"),
        "serde's own message repeats the problem:\n{}",
        out.stderr
    );
}

#[test]
fn empty_workflow_name() {
    diag(
        "empty_name",
        &["invalid workflow name ``", "empty_name.toml:2:8"],
    );
}

#[test]
fn invalid_step_name() {
    diag(
        "invalid_step_name",
        &[
            "invalid step name `build docs`",
            "invalid_step_name.toml:4:8",
        ],
    );
}

#[test]
fn step_without_run() {
    diag(
        "step_without_run",
        &["step `build` has no `run`", "step_without_run.toml:4:8"],
    );
}

#[test]
fn unknown_step_in_needs_suggests_a_step() {
    diag(
        "unknown_need",
        &[
            "step `test` needs unknown step `compiel`",
            "did you mean `compile`?",
            "unknown_need.toml:9:10",
        ],
    );
}

#[test]
fn self_dependency() {
    diag(
        "self_dependency",
        &["step `build` needs itself", "self_dependency.toml:6:10"],
    );
}

#[test]
fn cycle_prints_the_path() {
    diag(
        "cycle",
        &[
            "dependency cycle: a -> b -> c -> a",
            "a needs c",
            "b needs a",
            "c needs b",
        ],
    );
}

#[test]
fn two_steps_producing_the_same_output() {
    diag(
        "duplicate_output",
        &[
            "`stamp.txt` is an output of both `one` and `two`",
            "first declared here",
            "declared again here",
            "duplicate_output.toml:10:12",
        ],
    );
}

#[test]
fn input_that_exists_nowhere_names_artifact_and_step() {
    diag(
        "missing_input",
        &[
            "input `notes.md` of step `summarize` does not exist and no step makes it",
            "missing_input.toml:6:11",
        ],
    );
}

#[test]
fn required_tool_not_on_path() {
    let out = diag(
        "missing_tool",
        &[
            "required tool `bgflow-test-no-such-tool` is not on PATH",
            "missing_tool.toml:5:16",
        ],
    );
    assert!(!out.stderr.contains("`sh`"), "sh is on PATH");
}

#[test]
fn step_program_not_on_path() {
    diag(
        "missing_program",
        &[
            "program `bgflow-test-no-such-compiler` of step `build` is not on PATH",
            "missing_program.toml:5:7",
        ],
    );
}

#[test]
fn required_env_unset_and_empty() {
    let test = Test::fixture("missing_env")
        .env("BGFLOW_TEST_SET", "yes")
        .env("BGFLOW_TEST_EMPTY", "")
        .env_remove("BGFLOW_TEST_UNSET")
        .args(["plan", "missing_env.toml"])
        .status(INVALID);
    let out = test.run();
    out.stderr_has("required environment variable `BGFLOW_TEST_UNSET` is not set")
        .stderr_has("required environment variable `BGFLOW_TEST_EMPTY` is empty")
        .stderr_has("missing_env.toml:5:27")
        .stderr_has("missing_env.toml:5:48")
        .stderr_has("2 errors, 0 warnings");
    assert!(!out.stderr.contains("`BGFLOW_TEST_SET`"), "{}", out.stderr);
    out.snapshot_stderr("diag_missing_env");
}

#[test]
fn required_files_missing() {
    let out = Test::fixture("missing_file")
        .file("src/readme.txt", "not python")
        .args(["plan", "missing_file.toml"])
        .status(INVALID)
        .run();
    out.stderr_has("required file `pyproject.toml` does not exist")
        .stderr_has("required file `src/**/*.py` does not exist")
        .stderr_has("missing_file.toml:5:10")
        .stderr_has("missing_file.toml:5:28");
    out.snapshot_stderr("diag_missing_file");

    // And the same file passes once both exist.
    Test::fixture("missing_file")
        .file("pyproject.toml", "")
        .file("src/pkg/deep/mod.py", "")
        .args(["plan", "missing_file.toml"])
        .run();
}

#[test]
fn cwd_missing() {
    diag(
        "missing_cwd",
        &[
            "/frontend` of step `build` does not exist",
            "missing_cwd.toml:6:7",
        ],
    );
}

#[test]
fn output_under_a_regular_file_is_not_a_folder() {
    let out = diagnostic(
        Test::fixture("unwritable_output").file("notes.txt", "a file, not a folder"),
        "unwritable_output",
        &[
            "output `notes.txt/report.md` of step `build` cannot be written",
            "notes.txt is not a folder",
            "unwritable_output.toml:6:12",
        ],
    );
    // The path is shown whole, never broken across lines.
    let path = out.path().join("notes.txt");
    assert!(
        out.stderr.contains(&path.display().to_string())
            || out
                .stderr
                .contains(&path.canonicalize().expect("exists").display().to_string()),
        "{}",
        out.stderr
    );
}

#[test]
fn output_on_a_read_only_file_system() {
    // Root passes every access() check, so only a read-only mount proves this one.
    let Some(ro) = ["/proc/sys", "/sys"].into_iter().find(|p| {
        nix::sys::statvfs::statvfs(*p)
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    }) else {
        eprintln!("skipped: neither /proc/sys nor /sys is mounted read-only here");
        return;
    };
    let manifest = format!(
        "[workflow]\nname = \"ro\"\n\n[steps.build]\nrun = \"true\"\noutputs = [\"{ro}/bgflow-test/out.txt\"]\n"
    );
    Test::manifest(&manifest)
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run()
        .stderr_has(&format!("{ro} is on a read-only file system"))
        .stderr_has("bgflow.toml:6:12");
}

#[test]
fn output_in_a_folder_without_write_permission() {
    use std::os::unix::fs::PermissionsExt;
    let test = Test::manifest(
        "[workflow]\nname = \"perm\"\n\n[steps.build]\nrun = \"true\"\noutputs = [\"locked/out.txt\"]\n",
    )
    .folder("locked");
    let locked = test.path().join("locked");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(locked.join("probe"), "").is_ok() {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        eprintln!("skipped: this user (root?) writes into a read-only folder anyway");
        return;
    }
    let out = test.args(["plan", "bgflow.toml"]).status(INVALID).run();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    out.stderr_has("locked is not writable");
}

#[test]
fn invalid_glob_is_not_also_called_missing() {
    let out = diag(
        "invalid_glob",
        &[
            "invalid glob `src/[abc.rs`: unclosed character class",
            "invalid_glob.toml:6:11",
        ],
    );
    assert!(!out.stderr.contains("does not exist"), "{}", out.stderr);
}

#[test]
fn invalid_regex_in_progress_and_fail_on() {
    let out = Test::fixture("invalid_regex")
        .args(["plan", "invalid_regex.toml"])
        .status(INVALID)
        .run();
    out.stderr_has("invalid regex: unclosed group")
        .stderr_has("invalid_regex.toml:6:12")
        .stderr_has("invalid regex: unclosed character class")
        .stderr_has("invalid_regex.toml:7:25")
        .stderr_has("2 errors, 0 warnings");
    out.snapshot_stderr("diag_invalid_regex");
}

#[test]
fn invalid_template_syntax() {
    diag(
        "template_syntax",
        &["invalid template:", "template_syntax.toml:8:28"],
    );
}

#[test]
fn undefined_template_variable_suggests_a_var() {
    diag(
        "template_undefined",
        &[
            "undefined value `vars.promt` in template",
            "did you mean `vars.prompt`?",
            "template_undefined.toml:8:26",
        ],
    );
}

#[test]
fn empty_workflow() {
    diag(
        "empty_workflow",
        &["the workflow has no steps", "empty_workflow.toml:1:2"],
    );
}

#[test]
fn service_without_ready_is_a_warning() {
    let out = Test::fixture("service_without_ready")
        .args(["plan", "service_without_ready.toml"])
        .run();
    out.stderr_has("service `api` has no `ready` probe")
        .stderr_has("service_without_ready.toml:4:8")
        .stderr_has("ok: service_without_ready.toml is valid: 1 step, 0 errors, 1 warning")
        .stdout_has("api (service)");
    out.snapshot_stderr("diag_service_without_ready");

    let strict = Test::fixture("service_without_ready")
        .args(["plan", "--strict", "service_without_ready.toml"])
        .status(INVALID)
        .run();
    strict
        .stderr_has("service `api` has no `ready` probe")
        .stderr_has("0 errors, 1 warning (--strict); nothing ran");
}

/// Keys other tools spell far from bgflow's (docker compose's `depends_on`, GitHub
/// Actions' `working-directory`, GitLab CI's `script`) name bgflow's key, where an edit
/// distance finds nothing near.
#[test]
fn other_tools_keys_name_bgflows() {
    let out = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"true\"\n\n[steps.b]\nscript = \"true\"\ndepends_on = [\"a\"]\nworking-directory = \"sub\"\ncontinue-on-error = true\n",
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    for (theirs, ours, line) in [
        ("script", "run", 8),
        ("depends_on", "needs", 9),
        ("working-directory", "cwd", 10),
        ("continue-on-error", "allow_failure", 11),
    ] {
        out.problem_at(
            &format!("unknown key `{theirs}` in [steps.b]"),
            &format!("bgflow.toml:{line}:1"),
        )
        .stderr_has(&format!(
            "did you mean `{ours}`? (bgflow's name for what other tools call `{theirs}`)"
        ));
    }
    // A name bgflow does not know at that place is not offered: `needs` is a step's key.
    Test::manifest("[workflow]\nname = \"w\"\nafter = 1\n\n[steps.a]\nrun = \"true\"\n")
        .args(["plan", "--offline", "bgflow.toml"])
        .status(INVALID)
        .run()
        .stderr_has("unknown key `after` in [workflow]")
        .stderr_has("known keys:");
}

/// Seen on attrs 24.2.0: a matrix of `kind = "test"` pytest steps with `--junitxml` but
/// no `junit` ran, and their failing tests were never named. `plan` warns once for the
/// matrix step, at its `run`, and suggests the key with the path as written; a step with
/// `junit`, or that is not a test, is not warned.
#[test]
fn a_test_step_that_writes_a_junit_report_nobody_reads_is_warned() {
    let toml = |extra: &str| {
        format!(
            "[workflow]\nname = \"w\"\n\n[steps.t]\nkind = \"test\"\nmatrix = {{ f = [\"a\", \"b\"] }}\nrun = \"pytest {{{{ matrix.f }}}} --junitxml=r/{{{{ matrix.f }}}}.xml\"\n{extra}"
        )
    };
    let out = Test::manifest(&toml(""))
        .args(["plan", "--offline", "--json", "bgflow.toml"])
        .run()
        .json();
    let problems = out["files"][0]["problems"]
        .as_array()
        .expect("problems")
        .clone();
    assert_eq!(problems.len(), 1, "once for the matrix step: {problems:?}");
    let p = &problems[0];
    assert_eq!(p["code"], "junit-not-read", "{p}");
    assert_eq!(p["severity"], "warning", "{p}");
    assert_eq!((&p["line"], &p["column"]), (&7.into(), &7.into()), "{p}");
    assert!(
        p["help"]
            .as_str()
            .is_some_and(|h| h.contains("add `junit = \"r/{{ matrix.f }}.xml\"`")),
        "{p}"
    );
    for quiet in [
        toml("junit = \"r/{{ matrix.f }}.xml\"\n"),
        toml("").replace("kind = \"test\"\n", ""),
    ] {
        Test::manifest(&quiet)
            .args(["plan", "--offline", "bgflow.toml"])
            .run()
            .stderr_has("0 errors, 0 warnings");
    }
}

/// A string `run` with a pipeline under the default `sh` is a `pipe-status` warning at its
/// `|` (the manifest's own example, `cargo build --release 2>&1 | tee build.log`, succeeded
/// when the build failed); once for a matrix step; not for `||`, a template filter or a
/// quoted `|`, and not once a shell is chosen (`sh` or `bash`, here or in [workflow]).
#[test]
fn a_pipeline_under_sh_is_warned_at_its_pipe() {
    let out = Test::manifest(
        "[workflow]\nname = \"w\"\n\n[steps.build]\nrun = \"cargo build --release 2>&1 | tee build.log\"\n\n[steps.m]\nmatrix = { f = [\"a\", \"b\"] }\nrun = \"cat {{ matrix.f }} | wc -l\"\n",
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .run();
    out.problem_at(
        "step `build` runs a pipeline under `sh`",
        "bgflow.toml:5:35",
    )
    .problem_at("step `m` runs a pipeline under `sh`", "bgflow.toml:9:27")
    .stderr_has("add `shell = \"bash\"` to the step or to [workflow]")
    .stderr_has("0 errors, 2 warnings");
    for quiet in [
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"make || echo 'a | b' {{ vars.x | upper }}\"\n\n[vars]\nx = \"y\"\n",
        "[workflow]\nname = \"w\"\n\n[steps.a]\nshell = \"sh\"\nrun = \"yes | head -1\"\n",
        "[workflow]\nname = \"w\"\nshell = \"bash\"\n\n[steps.a]\nrun = \"true | cat\"\n",
        // `|` between a `case`'s patterns is no pipe.
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"case $(uname) in Linux|Darwin) true ;; *) false ;; esac\"\n",
    ] {
        Test::manifest(quiet)
            .args(["plan", "--offline", "bgflow.toml"])
            .run()
            .stderr_has("0 errors, 0 warnings");
    }
}

/// `shell = "bash"` needs bash: without it on PATH, `plan` says so (`missing-tool`), and the
/// human plan shows the script with the shell it runs under.
#[test]
fn a_bash_step_needs_bash_and_shows_its_script() {
    let toml = "[workflow]\nname = \"w\"\n\n[steps.a]\nshell = \"bash\"\nrun = \"true | cat\"\n";
    Test::manifest(toml)
        .args(["plan", "bgflow.toml"])
        .run()
        .stdout_has("    $ true | cat  (bash -eo pipefail)\n");
    // A PATH holding `true` and `cat`, not bash.
    let bin = tempfile::tempdir().expect("tempdir");
    for tool in ["true", "cat", "sh"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no {tool}"));
        std::os::unix::fs::symlink(&found, bin.path().join(tool)).expect("symlink");
    }
    Test::manifest(toml)
        .args(["plan", "bgflow.toml"])
        .env("PATH", &bin.path().display().to_string())
        .status(INVALID)
        .run()
        .problem_at(
            "`bash` is not on PATH; `shell = \"bash\"` needs it",
            "bgflow.toml:6:7",
        );
    // Snakemake's `shell` is the command: bgflow's says where that goes.
    Test::manifest("[workflow]\nname = \"w\"\n\n[steps.a]\nshell = \"cargo build\"\n")
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run()
        .problem_at("invalid value for `shell`", "bgflow.toml:5:9")
        .stderr_has("the command itself goes in `run` (what Snakemake calls `shell`)");
}

/// A bash step whose command names the caller's environment (or only holds the letters
/// `env`, as `.venv` does, in a template) is shown masked, and still as the bash script it
/// runs: the plan once showed it as an `sh` command.
#[test]
fn a_bash_step_that_names_the_environment_is_shown_under_bash() {
    let toml = "[workflow]\nname = \"w\"\nshell = \"bash\"\n\n[steps.a]\nrun = \"true | echo {{ env.BGFLOW_TEST_SECRET }}\"\n\n[steps.b]\nmatrix = { x = [\"1\"] }\nrun = \"true && echo .venv {{ matrix.x }}\"\n";
    let test = || Test::manifest(toml).env("BGFLOW_TEST_SECRET", "s3cret");
    test()
        .args(["plan", "bgflow.toml"])
        .run()
        .stdout_has("    $ true | echo '<env:BGFLOW_TEST_SECRET>'  (bash -eo pipefail)\n")
        .stdout_has("    $ true && echo .venv 1  (bash -eo pipefail)\n");
    let doc = test().args(["plan", "--json", "bgflow.toml"]).run().json();
    let steps = &doc["files"][0]["plan"]["steps"];
    for (i, script) in [
        (0, "true | echo '<env:BGFLOW_TEST_SECRET>'"),
        (1, "true && echo .venv 1"),
    ] {
        assert_eq!(
            steps[i]["command"]["argv"],
            serde_json::json!([
                "bash",
                "--noprofile",
                "--norc",
                "-eo",
                "pipefail",
                "-c",
                script
            ]),
            "{}",
            steps[i]
        );
    }
}
