//! `graph`, `schema` (and the examples), `completions`, and colors.

use super::*;

// ---------------------------------------------------------------------------------------
// 10. bgflow graph
// ---------------------------------------------------------------------------------------

const GRAPH: &str = r#"[workflow]
name = "etl"

[steps.fetch]
run = "curl -o data.csv https://example.com/data.csv"
outputs = ["data.csv"]

[steps.clean]
run = "python3 clean.py"
inputs = ["data.csv"]
outputs = ["clean.csv"]

[steps.lint]
run = "ruff check ."

[steps.report]
run = "make report"
inputs = ["clean.csv"]
needs = ["lint"]
"#;

#[test]
fn graph_as_dot() {
    let out = Test::manifest(GRAPH).args(["graph", "bgflow.toml"]).run();
    out.stdout_has("\"fetch\" -> \"clean\";")
        .stdout_has("\"clean\" -> \"report\";")
        .stdout_has("\"lint\" -> \"report\";");
    assert_eq!(out.stderr, "");
    out.snapshot_stdout("graph_dot");
}

#[test]
fn graph_as_mermaid() {
    let out = Test::manifest(GRAPH)
        .args(["graph", "--format", "mermaid", "bgflow.toml"])
        .run();
    out.stdout_has("flowchart LR");
    assert_eq!(out.stderr, "");
    out.snapshot_stdout("graph_mermaid");
}

#[test]
fn graph_of_an_invalid_file_exits_3() {
    let out = Test::fixture("cycle")
        .args(["graph", "cycle.toml"])
        .status(INVALID)
        .run();
    assert_eq!(out.stdout, "");
    out.stderr_has("dependency cycle: a -> b -> c -> a");
    Test::new()
        .args(["graph", "nope.toml"])
        .status(USAGE)
        .run()
        .stderr_has("no such file");
}

// ---------------------------------------------------------------------------------------
// 11. The checked-in schema and the examples.
// ---------------------------------------------------------------------------------------

#[test]
fn checked_in_schema_is_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Test::new().args(["schema"]).run();
    let checked_in = std::fs::read_to_string(format!("{root}/schema/bgflow.schema.json"))
        .expect("schema/bgflow.schema.json exists");
    let first_difference = out
        .stdout
        .lines()
        .zip(checked_in.lines())
        .position(|(a, b)| a != b)
        .map_or_else(|| "length".to_owned(), |i| format!("line {}", i + 1));
    assert!(
        out.stdout == checked_in,
        "schema/bgflow.schema.json is stale (first difference: {first_difference}); \
         regenerate it with `cargo run -- schema > schema/bgflow.schema.json`"
    );
    let parsed: Value = serde_json::from_str(&out.stdout).expect("the schema is JSON");
    assert!(parsed["properties"]["steps"].is_object(), "{parsed:#}");
}

#[test]
fn checked_in_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let out = Test::new().args(["man", "--dir", "pages"]).run();
    let made = out.dir.path().join("pages");
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let regenerate = "regenerate them with `rm -r man && cargo run -- man --dir man`";
    assert_eq!(names(&made), names(&root), "man/ is stale: {regenerate}");
    for name in names(&made) {
        let fresh = std::fs::read_to_string(made.join(&name)).expect("a page");
        let checked_in = std::fs::read_to_string(root.join(&name)).expect("a page");
        assert!(fresh == checked_in, "man/{name} is stale: {regenerate}");
    }
    // One page per command a user can type, and `bgflow man` alone prints the main one.
    let run = std::fs::read_to_string(root.join("bgflow-run.1")).expect("bgflow-run.1");
    assert!(
        run.contains(".TH bgflow-run 1") && run.contains("detach"),
        "{run}"
    );
    let main = Test::new().args(["man"]).run();
    let checked_in = std::fs::read_to_string(root.join("bgflow.1")).expect("bgflow.1");
    assert!(main.stdout == checked_in && main.stdout.contains("resume"));
}

#[test]
fn examples_validate_and_broken_examples_do_not() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/workflows")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    examples.sort();
    assert!(
        examples.iter().any(|p| !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("broken"))),
        "no example workflow in {}",
        dir.display()
    );
    for path in examples {
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let expect = if name.starts_with("broken") {
            INVALID
        } else {
            OK
        };
        Test::new()
            .args(["plan", "--offline", path.to_str().expect("UTF-8 path")])
            .status(expect)
            .run();
    }
}

// ---------------------------------------------------------------------------------------
// 12. Completions and colors.
// ---------------------------------------------------------------------------------------

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Test::new().args(["completions", shell]).run();
        assert!(out.stdout.len() > 100, "{shell}: {}", out.stdout);
        out.stdout_has("bgflow").stdout_has("plan");
    }
    Test::new()
        .args(["completions", "tcsh"])
        .status(USAGE)
        .run();
}

const ESC: &str = "\u{1b}[";

#[test]
fn color_always_never_and_no_color() {
    let always = Test::fixture("cycle")
        .args(["--color", "always", "plan", "cycle.toml"])
        .status(INVALID)
        .run();
    assert!(always.stderr.contains(ESC), "{}", always.stderr);

    let never = Test::fixture("cycle")
        .args(["--color", "never", "plan", "cycle.toml"])
        .status(INVALID)
        .run();
    assert!(!never.stderr.contains(ESC), "{}", never.stderr);

    // stderr is a pipe here, so `auto` alone is colorless too; the terminal case is below.
    let no_color = Test::fixture("cycle")
        .env("NO_COLOR", "1")
        .args(["--color", "auto", "plan", "cycle.toml"])
        .status(INVALID)
        .run();
    assert!(!no_color.stderr.contains(ESC), "{}", no_color.stderr);

    // NO_COLOR sets the default; an explicit `--color always` still wins.
    let forced = Test::fixture("cycle")
        .env("NO_COLOR", "1")
        .args(["--color", "always", "plan", "cycle.toml"])
        .status(INVALID)
        .run();
    assert!(forced.stderr.contains(ESC), "{}", forced.stderr);
}

/// `auto` on a real terminal: colors, unless NO_COLOR is set. `script` gives bgflow a pty.
#[test]
fn color_auto_on_a_terminal_honours_no_color() {
    let works = std::process::Command::new("script")
        .args(["-qec", "true", "/dev/null"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("skipped: util-linux `script` is not available to provide a terminal");
        return;
    }
    let test = Test::fixture("cycle");
    let command = format!("'{BIN}' --color auto plan cycle.toml");
    let on_tty = |no_color: Option<&str>| {
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-qec", &command, "/dev/null"])
            .current_dir(test.path())
            .env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("script runs");
        assert_eq!(out.status.code(), Some(INVALID));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let colored = on_tty(None);
    assert!(colored.contains("dependency cycle"), "{colored}");
    assert!(colored.contains(ESC), "auto on a terminal: {colored}");
    let plain = on_tty(Some("1"));
    assert!(plain.contains("dependency cycle"), "{plain}");
    assert!(!plain.contains(ESC), "NO_COLOR=1: {plain}");
}
