//! Issue 20: `[workflow] include`, the default workflow file, and `env_file`, as `plan`
//! sees them (running them is tests/run/dotenv.rs).

use super::*;

const ROOT_WITH_INCLUDE: &str = r#"[workflow]
name = "main"
include = ["ci/lint.toml"]

[vars]
who = "root"

[steps.build]
run = "echo build"
"#;

#[test]
fn a_name_defined_in_two_files_is_an_error_at_both_places() {
    let out = Test::new()
        .file("wf.toml", ROOT_WITH_INCLUDE)
        .file(
            "ci/lint.toml",
            "[vars]\nwho = \"lint\"\n\n[steps.build]\nrun = \"echo again\"\n",
        )
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run();
    out.problem_at(
        "variable `who` is defined in two files: wf.toml and ci/lint.toml",
        "ci/lint.toml:2:1",
    )
    .problem_at(
        "step `build` is defined in two files: wf.toml and ci/lint.toml",
        "ci/lint.toml:4:8",
    );
    // The first definition is drawn too, in its own file.
    out.stderr_has("first defined here")
        .stderr_has("[wf.toml:6:1]")
        .stderr_has("[wf.toml:8:8]");

    let json = Test::new()
        .file("wf.toml", ROOT_WITH_INCLUDE)
        .file("ci/lint.toml", "[steps.build]\nrun = \"echo again\"\n")
        .args(["plan", "--json", "wf.toml"])
        .status(INVALID)
        .run()
        .json();
    let problem = &json["files"][0]["problems"][0];
    assert_eq!(problem["code"], "duplicate-name", "{json:#}");
    assert_eq!(problem["file"], "ci/lint.toml");
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(1), Some(8))
    );
    let first = &problem["related"][0];
    assert_eq!(first["file"], "wf.toml", "{json:#}");
    assert_eq!(
        (first["line"].as_u64(), first["column"].as_u64()),
        (Some(8), Some(8))
    );
}

#[test]
fn an_include_cycle_is_an_error_showing_the_chain() {
    Test::new()
        .file("wf.toml", ROOT_WITH_INCLUDE)
        .file(
            "ci/lint.toml",
            "[workflow]\ninclude = [\"more.toml\"]\n\n[steps.lint]\nrun = \"echo lint\"\n",
        )
        .file(
            "ci/more.toml",
            "[workflow]\ninclude = [\"../wf.toml\"]\n\n[steps.more]\nrun = \"echo more\"\n",
        )
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run()
        .problem_at(
            "include cycle: wf.toml → ci/lint.toml → ci/more.toml → wf.toml",
            "ci/more.toml:2:12",
        );
}

#[test]
fn a_missing_include_is_an_error_at_its_item() {
    Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"w\"\ninclude = [\"a.toml\", \"nope.toml\"]\n\n[steps.a]\nrun = \"true\"\n",
        )
        .file("a.toml", "[steps.b]\nrun = \"true\"\n")
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run()
        .problem_at("included file `nope.toml` does not exist", "wf.toml:3:22");
}

#[test]
fn problems_in_included_files_name_their_file_and_root_only_keys_are_refused() {
    let out = Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"w\"\ninclude = [\"ci/lint.toml\"]\n\n[steps.build]\nrun = \"true\"\n",
        )
        .file(
            "ci/lint.toml",
            "[workflow]\ntimeout = \"1m\"\n\n[hooks]\non_success = \"true\"\n\n[steps.lint]\nneeds = [\"biuld\"]\nrun = \"echo {{ vars.nope }}\"\n",
        )
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run();
    out.problem_at(
        "step `lint` needs unknown step `biuld`",
        "ci/lint.toml:8:10",
    )
    .problem_at("undefined value `vars.nope`", "ci/lint.toml:9:16")
    .problem_at(
        "`timeout` in the [workflow] of an included file",
        "ci/lint.toml:2:1",
    )
    .problem_at("[hooks] in an included file", "ci/lint.toml:4:2")
    .stderr_has("did you mean `build`?");
}

#[test]
fn nested_includes_and_a_diamond_merge_every_step_once() {
    let out = Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"w\"\ninclude = [\"a/a.toml\", \"b.toml\"]\n\n[steps.root]\nrun = \"true\"\n",
        )
        .file(
            "a/a.toml",
            "[workflow]\ninclude = [\"../common.toml\"]\n\n[env]\nFROM_A = \"1\"\n\n[steps.a]\nneeds = [\"common\"]\nrun = \"true\"\n",
        )
        .file(
            "b.toml",
            "[workflow]\ninclude = [\"common.toml\"]\n\n[vars]\nv = \"b\"\n\n[steps.b]\nneeds = [\"a\"]\nrun = \"echo {{ vars.v }}\"\n",
        )
        .file("common.toml", "[steps.common]\nrun = \"true\"\n")
        .args(["plan", "--json", "wf.toml"])
        .run();
    let json = out.json();
    let waves = &json["files"][0]["plan"]["waves"];
    assert_eq!(
        waves,
        &serde_json::json!([["root", "common"], ["a"], ["b"]]),
        "{json:#}"
    );
}

#[test]
fn plan_with_no_file_finds_bgflow_toml_from_a_subfolder_past_a_config_only_one() {
    let t = Test::new()
        .file(
            "bgflow.toml",
            "[workflow]\nname = \"top\"\n\n[steps.hello]\nrun = \"echo hello\"\n",
        )
        .file("sub/bgflow.toml", "[defaults]\nretries = 1\n")
        .folder("sub/deeper");
    let out = assert_cmd::Command::new(BIN)
        .current_dir(t.path().join("sub/deeper"))
        .args(["--color", "never", "plan"])
        .env_remove("BGFLOW_CONFIG")
        .output()
        .expect("bgflow runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(OK), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("workflow top (../../bgflow.toml): 1 step"),
        "{stdout}"
    );
    assert!(
        stderr.contains("ok: ../../bgflow.toml is valid"),
        "{stderr}"
    );
}

#[test]
fn no_file_and_no_bgflow_toml_with_workflow_is_exit_2_with_the_rule() {
    for command in ["plan", "run", "graph"] {
        let t = Test::new().file("bgflow.toml", "[defaults]\nretries = 1\n");
        let out = assert_cmd::Command::new(BIN)
            .current_dir(t.path())
            .args(["--color", "never", command])
            .env_remove("BGFLOW_CONFIG")
            .output()
            .expect("bgflow runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(USAGE), "{command}: {stderr}");
        assert!(
            stderr.contains("no workflow file given, and none found")
                && stderr.contains("bgflow.toml holding a [workflow] table")
                && stderr.contains("a folder above it"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn a_fragment_given_alone_is_checked_through_the_workflow_that_includes_it() {
    let out = Test::new()
        .file(
            "bgflow.toml",
            "[workflow]\nname = \"top\"\ninclude = [\"workflows/lint.toml\"]\n\n[steps.build]\nrun = \"true\"\n",
        )
        .file(
            "workflows/lint.toml",
            "[steps.lint]\nneeds = [\"biuld\"]\nrun = \"true\"\n",
        )
        .args(["plan", "workflows/lint.toml"])
        .status(INVALID)
        .run();
    out.stderr_has(
        "workflows/lint.toml has no [workflow] of its own: it is checked as part of bgflow.toml",
    )
    .problem_at("needs unknown step `biuld`", "workflows/lint.toml:2:10")
    .stderr_has("error: bgflow.toml is not valid");
    // A fragment that no workflow includes stays an error.
    Test::new()
        .file("workflows/lone.toml", "[steps.lint]\nrun = \"true\"\n")
        .args(["plan", "workflows/lone.toml"])
        .status(INVALID)
        .run()
        .problem_at(
            "the file has no [workflow] table",
            "workflows/lone.toml:1:1",
        );
}

#[test]
fn a_bgflow_toml_without_workflow_is_checked_as_configuration() {
    Test::new()
        .file("bgflow.toml", "[defaults]\nretries = 2\n")
        .args(["plan", "bgflow.toml"])
        .run()
        .stderr_has("ok: bgflow.toml holds no [workflow]: it is configuration");
    Test::new()
        .file("bgflow.toml", "[defaults]\nretires = 2\n")
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run()
        .problem_at("invalid config", "bgflow.toml:2:1");
}

const SECRET: &str = "s3cr3t-value-do-not-print";

fn dotenv_flow() -> Test {
    Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"d\"\nenv_file = \".env\"\n\n[requires]\nenv = [\"TOKEN\"]\n\n[env]\nCOPY = \"{{ env.TOKEN }}\"\n\n[steps.show]\nrun = \"echo {{ env.TOKEN }} {{ env.PLAIN }}\"\n",
        )
        .file(
            ".env",
            &format!("# secrets\nexport TOKEN=\"{SECRET}\"\nPLAIN='{SECRET}-2'\n"),
        )
        .env_remove("TOKEN")
        .env_remove("PLAIN")
}

#[test]
fn plan_never_prints_a_dotenv_value_human_or_json() {
    let out = dotenv_flow().args(["plan", "wf.toml"]).run();
    out.stdout_has("$ echo '<env:TOKEN>' '<env:PLAIN>'");
    assert!(
        !out.stdout.contains("s3cr3t") && !out.stderr.contains("s3cr3t"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = dotenv_flow().args(["plan", "--json", "wf.toml"]).run();
    assert!(!out.stdout.contains("s3cr3t"), "{}", out.stdout);
    assert_eq!(out.json()["valid"], true);
}

#[test]
fn a_malformed_dotenv_line_is_an_error_naming_its_line_not_its_value() {
    let out = dotenv_flow()
        .file(".env", &format!("TOKEN=ok\nBAD=\"{SECRET}\n"))
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run();
    out.problem_at(
        "env_file .env:2: a double quote is not closed",
        "wf.toml:3:12",
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
}

#[test]
fn a_missing_env_file_is_an_error_at_env_file_unless_optional() {
    dotenv_flow().args(["plan", "--offline", "wf.toml"]).run();
    let t = dotenv_flow();
    std::fs::remove_file(t.path().join(".env")).expect("rm .env");
    t.args(["plan", "wf.toml"])
        .env("TOKEN", "from-the-caller")
        .status(INVALID)
        .run()
        .problem_at("env_file `.env` does not exist", "wf.toml:3:12")
        .stderr_has("optional = true");
    let t = dotenv_flow().file(
        "wf.toml",
        "[workflow]\nname = \"d\"\nenv_file = { path = \".env.local\", optional = true }\n\n[steps.show]\nrun = \"true\"\n",
    );
    t.args(["plan", "wf.toml"])
        .run()
        .stderr_has("ok: wf.toml is valid");
}

#[test]
fn env_file_optinal_typo_is_an_error_not_ignored() {
    Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"d\"\nenv_file = { path = \".env\", optinal = true }\n\n[steps.a]\nrun = \"true\"\n",
        )
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run()
        .problem_at(
            "`env_file` must be a path or `{ path = \"...\", optional = true }`",
            "wf.toml:3:12",
        );
}

#[test]
fn requires_in_a_fragment_without_workflow_is_refused_at_its_key() {
    Test::new()
        .file(
            "wf.toml",
            "[workflow]\nname = \"w\"\ninclude = [\"lint.toml\"]\n\n[steps.build]\nrun = \"true\"\n",
        )
        .file(
            "lint.toml",
            "[requires]\ntools = [\"sh\"]\n\n[steps.lint]\nrun = \"true\"\n",
        )
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run()
        .problem_at("[requires] in an included file", "lint.toml:1:2");
}

#[test]
fn a_workflow_without_name_still_reports_its_included_files_problems() {
    Test::new()
        .file(
            "wf.toml",
            "[workflow]\ninclude = [\"lint.toml\"]\ndescription = \"no name\"\n\n[steps.build]\nrun = \"true\"\n",
        )
        .file("lint.toml", "[steps.lint]\nneeds = [\"biuld\"]\nrun = \"true\"\n")
        .args(["plan", "wf.toml"])
        .status(INVALID)
        .run()
        .problem_at("[workflow] has no `name`", "wf.toml:1:2")
        .problem_at("needs unknown step `biuld`", "lint.toml:2:10");
}
