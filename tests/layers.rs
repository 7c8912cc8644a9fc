//! The layers of docs/architecture.md, checked on the source: a layer never imports one
//! above it (front-ends `cli/`, `mcp/`, `serve/` -> service `runs/` -> consumers `report/`, `store/` ->
//! engine `exec/` -> checks `validate/`, `plan/`, `manifest/` -> base modules). In
//! particular nothing imports `cli/`, and `store/` and `exec/` do not import each other.

use std::path::{Path, PathBuf};

/// For each folder or file of src/: the modules it must not name.
const RULES: &[(&str, &[&str])] = &[
    ("mcp", &["cli", "serve"]),
    (
        "serve",
        &[
            "cli", "mcp", "store", "exec", "validate", "plan", "manifest",
        ],
    ),
    ("runs", &["cli", "mcp", "serve"]),
    ("report", &["cli", "mcp", "runs"]),
    ("store", &["cli", "runs", "report", "exec"]),
    ("exec", &["cli", "runs", "report", "store"]),
    ("validate", &["cli", "runs", "report", "store", "exec"]),
    ("plan", &["cli", "runs", "report", "store", "exec"]),
    ("manifest", &["cli", "runs", "report", "store", "exec"]),
    ("diag.rs", &["cli", "runs", "report", "store", "exec"]),
    ("exit.rs", &["cli", "runs", "report", "store", "exec"]),
    ("par.rs", &["cli", "runs", "report", "store", "exec"]),
    ("listeners.rs", &["cli", "runs", "report", "store", "exec"]),
    ("config.rs", &["cli", "runs", "report", "store", "exec"]),
    ("schema.rs", &["cli", "runs", "report", "store", "exec"]),
    (
        "layout.rs",
        &["cli", "runs", "report", "store", "exec", "validate"],
    ),
    (
        "file_name.rs",
        &["cli", "runs", "report", "store", "exec", "validate"],
    ),
    (
        "bounded.rs",
        &["cli", "runs", "report", "store", "exec", "validate"],
    ),
    (
        "procfs.rs",
        &["cli", "runs", "report", "store", "exec", "validate"],
    ),
    (
        "records.rs",
        &["cli", "runs", "report", "store", "exec", "validate"],
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in std::fs::read_dir(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
        let p = entry.expect("an entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            // `//` inside a string (a URL) is rare in these paths; a comment is the rule.
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The modules of this crate that `code` names: `crate::m`, and `use crate::{m, …}` over
/// several lines too. (`super::` stays inside a layer's own folder.)
fn named_modules(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut bad = Vec::new();
    for (place, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(place), &mut files);
        assert!(!files.is_empty(), "src/{place} has no Rust file");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("a source file");
            let text = code(&text);
            for m in named_modules(&text) {
                if forbidden.contains(&m.as_str()) {
                    bad.push(format!(
                        "{} imports crate::{m}",
                        f.strip_prefix(&src).unwrap_or(&f).display()
                    ));
                }
            }
        }
    }
    bad.sort();
    bad.dedup();
    bad
}

#[test]
fn no_layer_imports_one_above_it() {
    let bad = violations();
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

/// The check itself finds what it is for: a grouped import over lines, a path in code,
/// and not a comment.
#[test]
fn the_layer_check_sees_grouped_imports_and_skips_comments() {
    let text = "use crate::{\n    exit,\n    cli::Cli,\n};\n// crate::runs in a comment\nlet x = crate::store::now_ms();\n";
    assert_eq!(named_modules(&code(text)), vec!["exit", "cli", "store"]);
}
