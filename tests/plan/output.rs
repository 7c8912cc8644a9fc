//! What `plan` shows: shell-quoted templates, the JSON document, the plan for people.

use super::*;

// ---------------------------------------------------------------------------------------
// 7. Template values are shell-quoted.
// ---------------------------------------------------------------------------------------

const QUOTING: &str = r#"[workflow]
name = "quoting"

[vars]
msg = "hello"

[steps.quoted]
run = "printf '%s\\n' {{ vars.msg }}"

[steps.raw]
run = "echo {{ vars.msg | safe }}"

[steps.words]
run = "cat {{ step.inputs }}"
inputs = ["a b.txt", "c.txt", "it's.md"]

[steps.argv]
run = ["printf", "%s", "{{ vars.msg }}"]
"#;

/// The JSON plan's step named `name`.
fn step<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["files"][0]["plan"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {doc:#}"))
}

#[test]
fn hostile_vars_are_shell_quoted_and_plan_runs_none_of_them() {
    for (value, quoted) in [
        ("'; touch PWNED; '", r"''\''; touch PWNED; '\'''"),
        ("$(touch PWNED)", "'$(touch PWNED)'"),
        ("`touch PWNED`", "'`touch PWNED`'"),
        ("x\ntouch PWNED", "'x\ntouch PWNED'"),
        ("", "''"),
    ] {
        let test = Test::manifest(QUOTING)
            .file("a b.txt", "")
            .file("c.txt", "")
            .file("it's.md", "");
        let out = test
            .args(["plan", "--json", "--var"])
            .args([format!("msg={value}"), "bgflow.toml".to_owned()])
            .run();
        let doc = out.json();
        assert_eq!(
            step(&doc, "quoted")["command"]["shell"],
            format!("printf '%s\\n' {quoted}"),
            "{value:?}"
        );
        // `| safe` opts out: the value is pasted as it is.
        assert_eq!(
            step(&doc, "raw")["command"]["shell"],
            format!("echo {value}")
        );
        // No shell reads argv: the value is one argument, unquoted.
        assert_eq!(
            step(&doc, "argv")["command"]["argv"],
            serde_json::json!(["printf", "%s", value])
        );
        assert!(!out.path().join("PWNED").exists(), "plan ran {value:?}");

        // And a real shell given the rendered command prints the value back, runs nothing.
        let shell = step(&doc, "quoted")["command"]["shell"]
            .as_str()
            .expect("a shell command")
            .to_owned();
        let printed = std::process::Command::new("sh")
            .args(["-c", &shell])
            .current_dir(out.path())
            .output()
            .expect("sh runs");
        assert_eq!(
            String::from_utf8_lossy(&printed.stdout),
            format!("{value}\n")
        );
        assert!(!out.path().join("PWNED").exists(), "sh ran {value:?}");
    }
}

#[test]
fn a_list_becomes_separately_quoted_words() {
    let doc = Test::manifest(QUOTING)
        .args(["plan", "--json", "--offline", "bgflow.toml"])
        .run()
        .json();
    assert_eq!(
        step(&doc, "words")["command"]["shell"],
        r"cat 'a b.txt' c.txt 'it'\''s.md'"
    );
}

#[test]
fn argv_run_is_shown_with_no_shell() {
    let out = Test::manifest(QUOTING)
        .args(["plan", "--offline", "--var", "msg=two words", "bgflow.toml"])
        .run();
    out.stdout_has("$ printf %s 'two words'  (no shell)")
        .stdout_has("$ printf '%s\\n' 'two words'\n");

    // A multi-line value keeps the step's indentation, in both forms.
    Test::manifest(QUOTING)
        .args(["plan", "--offline", "--var", "msg=one\ntwo", "bgflow.toml"])
        .run()
        .stdout_has("    $ printf %s 'one\n      two'  (no shell)\n")
        .stdout_has("    $ printf '%s\\n' 'one\n      two'\n");
}

/// `bgflow plan --json --offline` of a step running `printf '%s\0'` on `values` as vars.
fn rendered_printf(values: &[String]) -> (Output, String) {
    let placeholders: Vec<String> = (0..values.len())
        .map(|i| format!("{{{{ vars.v{i} }}}}"))
        .collect();
    let manifest = format!(
        "[workflow]\nname = \"prop\"\n\n[steps.echo]\nrun = \"printf '%s\\\\0' {}\"\n",
        placeholders.join(" ")
    );
    let mut args = vec!["plan".to_owned(), "--json".into(), "--offline".into()];
    for (i, v) in values.iter().enumerate() {
        args.push("--var".into());
        args.push(format!("v{i}={v}"));
    }
    args.push("bgflow.toml".into());
    let out = Test::manifest(&manifest).args(args).run();
    let doc = out.json();
    let shell = step(&doc, "echo")["command"]["shell"]
        .as_str()
        .expect("shell")
        .to_owned();
    (out, shell)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]

    /// Whatever the values, a shell given the rendered command gets each as one argument.
    #[test]
    fn any_value_survives_the_shell_as_one_word(
        values in proptest::collection::vec("[^\u{0}]{0,16}", 1..5)
    ) {
        let (out, shell) = rendered_printf(&values);
        let printed = std::process::Command::new("sh")
            .args(["-c", &shell])
            .current_dir(out.path())
            .output()
            .expect("sh runs");
        let mut words: Vec<String> = String::from_utf8_lossy(&printed.stdout)
            .split('\0')
            .map(str::to_owned)
            .collect();
        proptest::prop_assert_eq!(words.pop(), Some(String::new()));
        proptest::prop_assert_eq!(&words, &values, "command: {}", shell);
        proptest::prop_assert_eq!(listing(out.path()).len(), 1, "only bgflow.toml");
    }
}

// ---------------------------------------------------------------------------------------
// 8. --json
// ---------------------------------------------------------------------------------------

const MULTI_WAVE: &str = r#"[workflow]
name = "site"
description = "Builds a small site from notes"

[vars]
title = "My notes"

[steps.collect]
description = "Gather the notes"
run = "cat notes/*.md > build/all.md"
inputs = ["notes/*.md"]
outputs = ["build/all.md"]
timeout = "30s"

[steps.assets]
run = ["mkdir", "-p", "build/assets/"]
outputs = ["build/assets/"]

[steps.render]
# A pipeline under `sh`, chosen: no `pipe-status` warning.
shell = "sh"
run = "printf '%s\\n' {{ vars.title }} | cat - {{ step.inputs }} > build/index.html"
inputs = ["build/all.md", "style.css"]
outputs = ["build/index.html"]
timeout = "1h30m"
retries = 2

[steps.check]
kind = "test"
run = "ls -l"
cwd = "build/assets"
needs = ["render"]
allow_failure = true
tags = ["smoke"]
"#;

fn multi_wave() -> Test {
    Test::manifest(MULTI_WAVE)
        .file("notes/one.md", "# One\n")
        .file("style.css", "body {}\n")
}

#[test]
fn json_document_shape() {
    let out = multi_wave()
        .file(
            "broken.toml",
            "[workflow]\nname = \"broken\"\n\n[steps.a]\nrun = \"true\"\nneeds = [\"nope\"]\n",
        )
        .args(["plan", "--json", "bgflow.toml", "broken.toml"])
        .status(INVALID)
        .run();
    assert_eq!(
        out.stderr, "",
        "--json keeps stderr for failures of bgflow itself"
    );
    let doc = out.json();
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["valid"], false);
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);

    let good = &files[0];
    assert_eq!(good["file"], "bgflow.toml");
    assert_eq!(good["valid"], true);
    assert_eq!(good["workflow"], "site");
    assert_eq!(good["problems"], serde_json::json!([]));
    let plan = &good["plan"];
    assert_eq!(
        plan["waves"],
        serde_json::json!([["collect", "assets"], ["render"], ["check"]])
    );
    let render = step(&doc, "render");
    assert_eq!(render["wave"], 2);
    assert_eq!(render["upstream"], serde_json::json!(["collect"]));
    assert_eq!(render["timeout"], "1h30m");
    assert_eq!(render["retries"], 2);
    assert_eq!(
        render["inputs"],
        serde_json::json!([
            { "path": "build/all.md", "made_by": ["collect"], "exists": null },
            { "path": "style.css", "made_by": [], "exists": true },
        ])
    );
    assert_eq!(
        render["command"]["shell"],
        "printf '%s\\n' 'My notes' | cat - build/all.md style.css > build/index.html"
    );
    let check = step(&doc, "check");
    assert_eq!(check["kind"], "test");
    assert_eq!(check["upstream"], serde_json::json!(["assets", "render"]));
    assert_eq!(check["allow_failure"], true);
    assert_eq!(check["tags"], serde_json::json!(["smoke"]));
    assert!(
        check["cwd"]
            .as_str()
            .is_some_and(|c| c.ends_with("/build/assets")),
        "{check:#}"
    );
    assert_eq!(
        step(&doc, "assets")["command"]["argv"],
        serde_json::json!(["mkdir", "-p", "build/assets/"])
    );

    let bad = &files[1];
    assert_eq!(bad["file"], "broken.toml");
    assert_eq!(bad["valid"], false);
    assert_eq!(bad["errors"], 1);
    assert_eq!(bad["plan"], Value::Null);
    let problem = &bad["problems"][0];
    assert_eq!(problem["severity"], "error");
    assert_eq!(problem["code"], "unknown-step");
    assert_eq!(problem["line"], 6);
    assert_eq!(problem["column"], 10);
    assert_eq!(problem["file"], "broken.toml");
    assert_eq!(problem["message"], "step `a` needs unknown step `nope`");
}

#[test]
fn json_with_only_warnings_is_valid_unless_strict() {
    for (strict, valid, code) in [(false, true, OK), (true, false, INVALID)] {
        let mut args = vec!["plan", "--json", "service_without_ready.toml"];
        if strict {
            args.insert(1, "--strict");
        }
        let doc = Test::fixture("service_without_ready")
            .args(args)
            .status(code)
            .run()
            .json();
        assert_eq!(doc["valid"], valid);
        assert_eq!(doc["files"][0]["valid"], valid);
        assert_eq!(doc["files"][0]["warnings"], 1);
        assert_eq!(doc["files"][0]["problems"][0]["severity"], "warning");
        assert_eq!(
            doc["files"][0]["problems"][0]["code"],
            "service-without-ready"
        );
    }
}

/// `-q` prints only errors: nothing at all for a valid file or one with warnings, the errors
/// and the verdict for an invalid one, and under `--strict` the warnings that make it so.
#[test]
fn quiet_prints_only_errors() {
    let valid = multi_wave().args(["-q", "plan", "bgflow.toml"]).run();
    assert_eq!((valid.stdout.as_str(), valid.stderr.as_str()), ("", ""));
    let warned = Test::fixture("service_without_ready")
        .args(["plan", "-q", "service_without_ready.toml"])
        .run();
    assert_eq!((warned.stdout.as_str(), warned.stderr.as_str()), ("", ""));
    let strict = Test::fixture("service_without_ready")
        .args(["plan", "-q", "--strict", "service_without_ready.toml"])
        .status(INVALID)
        .run();
    strict
        .stderr_has("has no `ready` probe")
        .stderr_has("is not valid: 0 errors, 1 warning (--strict)");
    assert_eq!(strict.stdout, "");
    let invalid =
        Test::manifest("[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"true\"\nneeds = [\"b\"]\n")
            .args(["plan", "-q", "bgflow.toml"])
            .status(INVALID)
            .run();
    invalid
        .stderr_has("needs unknown step `b`")
        .stderr_has("is not valid: 1 error");
    assert_eq!(invalid.stdout, "");
}

// ---------------------------------------------------------------------------------------
// 9. The plan for people.
// ---------------------------------------------------------------------------------------

#[test]
fn human_plan_of_a_multi_wave_workflow() {
    let out = multi_wave().args(["plan", "bgflow.toml"]).run();
    out.stdout_has("workflow site (bgflow.toml): 4 steps in 3 waves")
        .stdout_has("in     style.css (exists)")
        .stdout_has("in     build/all.md (made by collect)")
        .stdout_has("render (task, timeout 1h30m, retries 2)")
        .stdout_has("out    build/index.html");
    assert_eq!(
        out.stderr,
        "ok: bgflow.toml is valid: 4 steps, 0 errors, 0 warnings\n"
    );
    out.snapshot_stdout("human_plan_multi_wave");
}
