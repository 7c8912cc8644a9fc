//! Issue 20: what `env_file`, `include` and the default workflow file do to a real run.

use super::*;

const SECRET: &str = "s3cr3t-value-do-not-print";

#[test]
fn a_dotenv_value_reaches_the_step_under_the_callers_env_and_env_tables() {
    let flow = Flow::new(
        r#"[workflow]
name = "dotenv"
env_file = ".env"

[env]
FROM_ENV_TABLE = "table"

[steps.show]
run = 'printf "%s|%s|%s|%s|%s" "$TOKEN" "$BY_CALLER" "$FROM_ENV_TABLE" "$BY_STEP" "{{ env.TOKEN }}" > seen.txt'
outputs = ["seen.txt"]
env = { BY_STEP = "step" }
"#,
    );
    flow.write(
        ".env",
        &format!(
            "# local secrets\nexport TOKEN=\"{SECRET}\"\nBY_CALLER=dotenv\nFROM_ENV_TABLE=dotenv\nBY_STEP=dotenv\n"
        ),
    );
    let out = flow.start_env(&[], &[("BY_CALLER", "caller")]).finish();
    out.expect_code(0);
    assert_eq!(
        flow.read("seen.txt"),
        format!("{SECRET}|caller|table|step|{SECRET}"),
        "env_file < caller's environment < [env] < step env"
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
}

#[test]
fn a_nested_include_merge_runs_in_dependency_order() {
    let flow = Flow::new(
        r#"[workflow]
name = "inc"
include = ["ci/lint.toml"]

[steps.build]
run = "echo built > built.txt"
outputs = ["built.txt"]
"#,
    );
    flow.write(
        "ci/lint.toml",
        r#"[workflow]
include = ["report.toml"]

[vars]
flavour = "strict"

[steps.lint]
run = "cat built.txt > linted.txt && echo {{ vars.flavour }} >> linted.txt"
inputs = ["built.txt"]
outputs = ["linted.txt"]
"#,
    );
    flow.write(
        "ci/report.toml",
        r#"[env]
REPORT_TITLE = "nested"

[steps.report]
run = 'printf "%s: " "$REPORT_TITLE" > report.txt && cat linted.txt >> report.txt'
inputs = ["linted.txt"]
outputs = ["report.txt"]
"#,
    );
    flow.run(&[]).expect_code(0);
    assert_eq!(flow.read("report.txt"), "nested: built\nstrict\n");
}

#[test]
fn run_with_no_file_from_a_subfolder_runs_the_nearest_bgflow_toml() {
    let flow = Flow::new(
        r#"[workflow]
name = "found"

[steps.mark]
run = "echo here > marked.txt"
outputs = ["marked.txt"]
"#,
    );
    flow.write("sub/deeper/keep", "");
    let out = Command::new(BIN)
        .args(["--color", "never", "run", "--progress", "never"])
        .current_dir(flow.path().join("sub/deeper"))
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG")
        .output()
        .expect("bgflow runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The root is the workflow file's folder, not the current one.
    assert_eq!(flow.read("marked.txt"), "here\n");
    assert!(!flow.exists("sub/deeper/marked.txt"));
    // The folder it names is the real one, not `sub/deeper/../../.bgflow`.
    assert!(stderr.contains("logs in /"), "{stderr}");
    assert!(!stderr.contains("/../"), "{stderr}");
}
