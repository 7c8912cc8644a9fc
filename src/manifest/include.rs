//! `[workflow] include`: reading a workflow with the files it includes, as one manifest.
//!
//! Rules (docs/manifest.md, "include"):
//! - Each path is relative to the file that names it. An included file may include others.
//! - An included file holds `[steps]`, `[vars]` and `[env]`, and in `[workflow]` only
//!   `include`: the workflow's own file names the workflow and holds its settings,
//!   `[requires]` and `[hooks]`.
//! - Its steps, variables and environment variables join the workflow's. A name defined in
//!   two files is an error shown at both places; the second definition is dropped.
//! - A file on its own include chain is a cycle (an error at the `include` that closes it,
//!   showing the chain). A file reached twice by other ways (a diamond) is read once.
//! - A missing or unreadable file is an error at its `include` item.
//!
//! The files share one offset space (`diag::SourceFile::add_files`), so every problem is
//! placed, drawn and written as JSON in the file it is in. This is the one place in
//! `manifest` that reads files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use super::load::{read, Document, Loaded};
use crate::diag::{Placed, Problem, SourceFile};

/// At most this many files are included (guarantee 12: `plan` is bounded).
pub const MAX_INCLUDED: usize = 1000;

/// Which file (by its place in `SourceFile::files`) defines each step, variable and
/// environment variable that is not the workflow file's own.
#[derive(Debug, Default)]
pub struct Owners {
    steps: HashMap<String, usize>,
    vars: HashMap<String, usize>,
    env: HashMap<String, usize>,
}

impl Owners {
    /// The file a path of keys (`["steps", "lint", "run"]`) is in.
    pub fn file_of(&self, path: &[&str]) -> usize {
        let map = match path.first() {
            Some(&"steps") => &self.steps,
            Some(&"vars") => &self.vars,
            Some(&"env") => &self.env,
            _ => return 0,
        };
        path.get(1)
            .and_then(|name| map.get(*name))
            .copied()
            .unwrap_or(0)
    }
}

/// Reads `source` and every file it includes into one manifest, with the `Document` that
/// places problems in any of them. Never fails: everything wrong ends up in `problems`.
pub fn load(source: &SourceFile) -> (Document<'_>, Loaded) {
    let (mut root, _) = read(&source.text, true);
    let mut includes = std::mem::take(&mut root.manifest.workflow.include);
    if includes.is_empty() && root.problems.iter().any(about_the_workflow_table) {
        // A `[workflow]` without `name` is read as empty: its `include` is still followed,
        // so that the included files' problems are reported with the missing name.
        includes = scan(&source.text).0;
    }
    if includes.is_empty() {
        return (Document::new(source, Owners::default()), root);
    }
    let mut walk = Walk {
        root: source,
        placed: Vec::new(),
        reads: Vec::new(),
        seen: HashMap::new(),
        problems: Vec::new(),
        too_many: false,
    };
    let start = source
        .path
        .canonicalize()
        .unwrap_or_else(|_| source.path.clone());
    let mut chain = vec![(start, source.display.clone())];
    walk.visit(0, &includes, &mut chain);
    root.manifest.workflow.include = includes;
    let Walk {
        placed,
        reads,
        mut problems,
        ..
    } = walk;
    source.add_files(placed);
    let (owners, clashes) = merge(&mut root, reads);
    let doc = Document::new(source, owners);
    for clash in clashes {
        problems.push(clash.problem(&doc));
    }
    root.problems.append(&mut problems);
    (doc, root)
}

/// An included file as read, by its place in `SourceFile::files`.
struct Read {
    file: usize,
    loaded: Loaded,
}

struct Walk<'s> {
    root: &'s SourceFile,
    placed: Vec<Placed>,
    reads: Vec<Read>,
    /// Every file read, by its canonical path.
    seen: HashMap<PathBuf, usize>,
    problems: Vec<Problem>,
    too_many: bool,
}

impl Walk<'_> {
    /// Reads the files that file `from` includes, and theirs, depth first.
    fn visit(&mut self, from: usize, includes: &[String], chain: &mut Vec<(PathBuf, String)>) {
        for (i, name) in includes.iter().enumerate() {
            let (base, file) = match from {
                0 => (0, self.root),
                k => (self.placed[k - 1].base, &self.placed[k - 1].file),
            };
            // Looked up only for a problem: it parses the including file again.
            let at = || include_item_span(&file.text, i).map(|s| s.start + base..s.end + base);
            let dir = |p: &Path| p.parent().map(Path::to_path_buf).unwrap_or_default();
            let path = dir(&file.path).join(name);
            let display = tidy(&dir(Path::new(&file.display)).join(name));
            if name.trim().is_empty() {
                self.problems.push(
                    Problem::error("invalid-include", "an empty path in `include`")
                        .at_opt(at(), "here"),
                );
                continue;
            }
            let canonical = match path.canonicalize() {
                Ok(c) => c,
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::NotFound {
                        "does not exist".to_owned()
                    } else {
                        format!("cannot be read: {e}")
                    };
                    self.problems.push(
                        Problem::error(
                            "missing-include",
                            format!("included file `{display}` {why}"),
                        )
                        .at_opt(at(), "included here")
                        .help(format!(
                            "looked for {}; an include is relative to the file that names it",
                            std::path::absolute(&path).unwrap_or(path).display()
                        )),
                    );
                    continue;
                }
            };
            if let Some(k) = chain.iter().position(|(p, _)| *p == canonical) {
                let shown: Vec<&str> = chain[k..]
                    .iter()
                    .map(|(_, d)| d.as_str())
                    .chain([display.as_str()])
                    .collect();
                self.problems.push(
                    Problem::error(
                        "include-cycle",
                        format!("include cycle: {}", shown.join(" → ")),
                    )
                    .at_opt(at(), "this include closes the cycle")
                    .help("a file may not include itself, directly or through others"),
                );
                continue;
            }
            if self.seen.contains_key(&canonical) {
                // Reached before by another way (a diamond): read once.
                continue;
            }
            if self.placed.len() >= MAX_INCLUDED {
                if !self.too_many {
                    self.too_many = true;
                    self.problems.push(
                        Problem::error(
                            "too-many-includes",
                            format!("more than {MAX_INCLUDED} included files"),
                        )
                        .at_opt(at(), "one too many"),
                    );
                }
                continue;
            }
            let text = match std::fs::read(&path).map(String::from_utf8) {
                Ok(Ok(text)) => text,
                Ok(Err(_)) => {
                    self.problems.push(
                        Problem::error(
                            "missing-include",
                            format!("included file `{display}` is not UTF-8 text"),
                        )
                        .at_opt(at(), "included here"),
                    );
                    continue;
                }
                Err(e) => {
                    let why = if e.kind() == std::io::ErrorKind::IsADirectory {
                        "is a folder, not a file".to_owned()
                    } else {
                        format!("cannot be read: {e}")
                    };
                    self.problems.push(
                        Problem::error(
                            "missing-include",
                            format!("included file `{display}` {why}"),
                        )
                        .at_opt(at(), "included here"),
                    );
                    continue;
                }
            };
            let base = self.root.next_base(&self.placed);
            let (mut loaded, _) = read(&text, true);
            // `scan` parses the file again: only when it may find something (most fragments
            // have no [workflow]; an empty [requires] or [hooks] it would miss is harmless).
            let m = &loaded.manifest;
            let no_workflow = loaded.problems.iter().any(|p| {
                p.code == "missing-key" && p.message.starts_with("the file has no [workflow]")
            });
            let requires = &m.requires;
            let worth_a_scan = !no_workflow
                || !requires.tools.is_empty()
                || !requires.env.is_empty()
                || !requires.files.is_empty()
                || m.hooks.on_success.is_some()
                || m.hooks.on_failure.is_some();
            let (nested, found) = if worth_a_scan {
                scan(&text)
            } else {
                Default::default()
            };
            loaded.problems.retain(|p| !about_the_workflow_table(p));
            loaded.problems = std::mem::take(&mut loaded.problems)
                .into_iter()
                .map(|p| p.moved_by(base))
                .collect();
            loaded
                .problems
                .extend(found.into_iter().map(|p| p.moved_by(base)));
            let index = self.placed.len() + 1;
            self.placed.push(Placed {
                base,
                file: SourceFile::shown_as(&path, display.clone(), text),
            });
            self.seen.insert(canonical.clone(), index);
            self.reads.push(Read {
                file: index,
                loaded,
            });
            chain.push((canonical, display));
            self.visit(index, &nested, chain);
            chain.pop();
        }
    }
}

/// A path as shown, with `dir/..` folded away (`ci/../wf.toml` is `wf.toml`).
pub fn tidy(path: &Path) -> String {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    let shown: PathBuf = out.iter().collect();
    if shown.as_os_str().is_empty() {
        ".".to_owned()
    } else {
        shown.display().to_string()
    }
}

/// The problems `read` finds in a file without `[workflow]` or its `name`: an included file
/// needs neither.
fn about_the_workflow_table(p: &Problem) -> bool {
    p.code == "missing-key"
        && (p.message.starts_with("the file has no [workflow]")
            || p.message.starts_with("[workflow] has no `name`"))
}

/// The span of item `index` of `[workflow] include` in `text` (looked up for a problem).
fn include_item_span(text: &str, index: usize) -> Option<std::ops::Range<usize>> {
    let (root, _) = DeTable::parse_recoverable(text);
    let v = root.get_ref().get("workflow")?.get_ref().get("include")?;
    match v.get_ref().as_array() {
        Some(items) => items.get(index).map(|i| i.span()),
        None => Some(v.span()),
    }
}

/// A name that two files define.
struct Clash {
    what: &'static str,
    table: &'static str,
    name: String,
    first: usize,
    second: usize,
}

impl Clash {
    fn problem(&self, doc: &Document<'_>) -> Problem {
        let path: Vec<&str> = vec![self.table, &self.name];
        let files: Vec<&SourceFile> = doc.source.files().map(|(_, f)| f).collect();
        let (first, second) = (files[self.first], files[self.second]);
        let mut p = Problem::error(
            "duplicate-name",
            format!(
                "{} `{}` is defined in two files: {} and {}",
                self.what, self.name, first.display, second.display
            ),
        )
        .at_opt(doc.key_span_in(self.second, &path), "defined again here")
        .help("each step, variable and environment variable is defined in one file; rename one or remove it");
        if let Some(span) = doc.key_span_in(self.first, &path) {
            p = p.also(span, "first defined here");
        }
        p
    }
}

/// Merges the included files into the workflow's manifest, in the order they were read;
/// a name already defined is not merged again (a `Clash`).
fn merge(root: &mut Loaded, reads: Vec<Read>) -> (Owners, Vec<Clash>) {
    let mut owners = Owners::default();
    let mut clashes = Vec::new();
    let mut step_files: HashMap<String, usize> =
        root.all_steps().map(|s| (s.name.clone(), 0)).collect();
    let mut var_files: HashMap<String, usize> =
        root.manifest.vars.keys().map(|k| (k.clone(), 0)).collect();
    let mut env_files: HashMap<String, usize> =
        root.manifest.env.keys().map(|k| (k.clone(), 0)).collect();
    for read in reads {
        let Read { file, loaded } = read;
        let clash = |what, table, name: &str, first| Clash {
            what,
            table,
            name: name.to_owned(),
            first,
            second: file,
        };
        for (k, v) in loaded.manifest.vars {
            match var_files.get(&k) {
                Some(&first) => clashes.push(clash("variable", "vars", &k, first)),
                None => {
                    var_files.insert(k.clone(), file);
                    owners.vars.insert(k.clone(), file);
                    root.manifest.vars.insert(k, v);
                }
            }
        }
        for (k, v) in loaded.manifest.env {
            match env_files.get(&k) {
                Some(&first) => clashes.push(clash("environment variable", "env", &k, first)),
                None => {
                    env_files.insert(k.clone(), file);
                    owners.env.insert(k.clone(), file);
                    root.manifest.env.insert(k, v);
                }
            }
        }
        for mut chunk in loaded.steps {
            chunk.retain(|s| match step_files.get(&s.name) {
                Some(&first) => {
                    clashes.push(clash("step", "steps", &s.name, first));
                    false
                }
                None => {
                    step_files.insert(s.name.clone(), file);
                    owners.steps.insert(s.name.clone(), file);
                    true
                }
            });
            root.steps.push(chunk);
        }
        let mut problems = loaded.problems;
        root.problems.append(&mut problems);
    }
    (owners, clashes)
}

/// What an included file's text says beyond its typed reading: the files it includes, and
/// problems (placed in the file) for what only the workflow's own file may set:
/// `[workflow]` keys but `include`, `[requires]` and `[hooks]`. (The typed `[workflow]` of
/// a file without `name` is read as empty, so this looks at the tree.)
fn scan(text: &str) -> (Vec<String>, Vec<Problem>) {
    let (root, _) = DeTable::parse_recoverable(text);
    let root = root.get_ref();
    let mut includes = Vec::new();
    let mut problems = Vec::new();
    let root_only = |span, what: String| {
        Problem::error("root-only", what)
            .at(span, "only the workflow's own file may set this")
            .help("an included file holds [steps], [vars], [env] and `[workflow] include`; move this to the workflow that includes it")
    };
    if let Some(table) = root.get("workflow").and_then(|w| w.get_ref().as_table()) {
        for (key, value) in table.iter() {
            let key_name: &str = key.get_ref();
            if key_name == "include" {
                for item in value.get_ref().as_array().into_iter().flatten() {
                    if let Some(s) = item.get_ref().as_str() {
                        includes.push(s.to_owned());
                    }
                }
            } else if super::keys::keys::<super::types::WorkflowSection>().contains(key_name) {
                problems.push(root_only(
                    key.span(),
                    format!("`{key_name}` in the [workflow] of an included file"),
                ));
            }
        }
    }
    for table in ["requires", "hooks"] {
        if let Some((key, _)) = root.get_key_value(table) {
            problems.push(root_only(
                key.span(),
                format!("[{table}] in an included file"),
            ));
        }
    }
    (includes, problems)
}

/// Whether `text` is a fragment, a file meant to be included: it has no `[workflow]` table,
/// or one that holds only `include`.
pub fn is_fragment(text: &str) -> bool {
    let (root, _) = DeTable::parse_recoverable(text);
    match root
        .get_ref()
        .get("workflow")
        .map(|w| w.get_ref().as_table())
    {
        None => true,
        Some(Some(table)) => table.keys().all(|k| k.get_ref() == "include"),
        Some(None) => false,
    }
}

/// The files `workflow` includes, directly or not, by canonical path (for finding the
/// workflow that includes a fragment). Unreadable files and cycles end the walk quietly:
/// checking the workflow reports them.
pub fn included_by(workflow: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![workflow.to_path_buf()];
    let mut seen = std::collections::HashSet::new();
    while let Some(file) = todo.pop() {
        let Ok(canonical) = file.canonicalize() else {
            continue;
        };
        if !seen.insert(canonical.clone()) || seen.len() > MAX_INCLUDED {
            continue;
        }
        if file != workflow {
            out.push(canonical);
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let (root, _) = DeTable::parse_recoverable(&text);
        let Some(list) = root
            .get_ref()
            .get("workflow")
            .and_then(|w| w.get_ref().get("include"))
            .and_then(|i| i.get_ref().as_array())
        else {
            continue;
        };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for item in list.iter() {
            if let Some(name) = item.get_ref().as_str() {
                todo.push(dir.join(name));
            }
        }
    }
    out
}
