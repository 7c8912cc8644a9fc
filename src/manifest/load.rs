//! Reading a workflow file: TOML syntax, then the manifest schema, collecting every problem.
//!
//! Parsing keeps the spanned TOML tree (`Document`) next to the typed `Manifest`, so that
//! later stages can point at the exact key or value a problem comes from.

use std::ops::Range;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::keys::{
    check_keys, check_probe_keys, check_table_keys, drop_unknown_keys, keys, Section,
};
use super::types::{
    ExecutorKind, ExecutorSection, Hooks, Manifest, Probe, Requires, Resources, RunSpec,
    SlurmSection, StepKind, StepSpec, WorkflowSection,
};
use super::Duration;
use crate::diag::{Problem, SourceFile};

/// A workflow file, with its spanned TOML tree parsed only when a problem needs a place.
///
/// Reading the manifest keeps no tree: each chunk's tree is dropped once its steps are read
/// (`split`). A later check that finds a problem asks for the place of a key or value, and
/// the first such request parses the whole file again. A workflow without problems is
/// parsed once.
///
/// With `[workflow] include`, a place under `steps.NAME`, `vars.NAME` or `env.NAME` is looked
/// up in the file that defines it (`Owners`), and given in the files' shared offset space
/// (`diag::SourceFile::files`).
pub struct Document<'s> {
    pub source: &'s SourceFile,
    /// One per file of `source.files()`.
    trees: Vec<OnceLock<Spanned<DeTable<'s>>>>,
    owners: super::include::Owners,
}

impl<'s> Document<'s> {
    pub(super) fn new(source: &'s SourceFile, owners: super::include::Owners) -> Self {
        Self {
            source,
            trees: source.files().map(|_| OnceLock::new()).collect(),
            owners,
        }
    }

    /// File `index`'s tree, parsed on first use. A file with a syntax error never gets
    /// here: checking stops at the syntax error.
    fn tree(&self, index: usize) -> Option<(usize, &Spanned<DeTable<'s>>)> {
        let (base, file) = self.source.files().nth(index)?;
        let tree = self.trees.get(index)?;
        Some((
            base,
            tree.get_or_init(|| DeTable::parse_recoverable(&file.text).0),
        ))
    }

    /// Whether the tree was needed (`validate::check` asserts that a workflow without
    /// problems did not need it).
    pub fn parsed_again(&self) -> bool {
        self.trees.iter().any(|t| t.get().is_some())
    }
}

/// A manifest as far as it could be read, with the problems met on the way.
#[derive(Default)]
pub struct Loaded {
    /// Best effort: keys that failed to parse are left at their defaults. Its `steps` stay
    /// empty: they are in `steps`.
    pub manifest: Manifest,
    /// The steps in file order, in the chunks they were read in (one list for a file read
    /// whole): checking frees each chunk once its steps are checked, so that a run never
    /// holds every step both as read and as checked (4.7 MB at 10,000 steps).
    pub steps: Vec<Vec<LoadedStep>>,
    pub problems: Vec<Problem>,
    /// `[workflow]` has a `name` that is a string (a missing or non-string one is a problem
    /// already).
    pub name_written: bool,
}

/// One `[steps.NAME]` as read.
#[derive(Default)]
pub struct LoadedStep {
    pub name: String,
    pub spec: StepSpec,
    /// The step's own keys had problems; later checks go easy on it.
    pub broken: bool,
}

/// Reads `source` alone (no includes), with the `Document` that places its problems; never
/// fails: everything wrong ends up in `problems`. `include::load` reads a workflow with the
/// files it includes.
pub fn load(source: &SourceFile) -> (Document<'_>, Loaded) {
    (
        Document::new(source, Default::default()),
        read(&source.text, true).0,
    )
}

/// Reads `text`, in chunks when `chunks` allows and the file can be (`split`), else whole.
/// Also says whether it was read in chunks.
pub(super) fn read(text: &str, chunks: bool) -> (Loaded, bool) {
    let chunked = chunks
        .then(|| super::split::cuts(text))
        .flatten()
        .and_then(|cuts| read_chunks(text, &cuts));
    match chunked {
        Some(read) => (read, true),
        None => (read_whole(text), false),
    }
}

fn read_whole(text: &str) -> Loaded {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // A broken document's tree is a guess; schema errors on top of it would mislead.
        return Loaded {
            problems: syntax
                .into_iter()
                .map(|e| {
                    Problem::error(
                        "syntax",
                        format!("invalid TOML: {}", e.message().trim_end()),
                    )
                    .at_opt(e.span(), "here")
                })
                .collect(),
            ..Loaded::default()
        };
    }
    read_root(root.get_ref())
}

/// Reads the chunks of `text` cut at `cuts`, spread over every core; `None` where that could
/// differ from reading the whole file (see `split`).
fn read_chunks(text: &str, cuts: &[usize]) -> Option<Loaded> {
    let mut ranges: Vec<Range<usize>> = cuts.windows(2).map(|w| w[0]..w[1]).collect();
    let parts = crate::par::map_runs(&mut ranges, 1, |run| {
        run.iter()
            .map(|range| read_chunk(text, range.clone()))
            .collect::<Vec<_>>()
    });
    let parts: Vec<Loaded> = parts.into_iter().flatten().collect::<Option<_>>()?;
    // A step named in two chunks is a table defined twice: a syntax error of the whole file.
    let mut names = std::collections::HashSet::new();
    if !parts
        .iter()
        .flat_map(Loaded::all_steps)
        .all(|s| names.insert(s.name.as_str()))
    {
        return None;
    }
    drop(names);
    let mut parts = parts.into_iter();
    let mut whole = parts.next()?;
    for mut part in parts {
        whole.steps.append(&mut part.steps);
        whole.problems.append(&mut part.problems);
    }
    Some(whole)
}

/// One chunk: the first holds the top-level tables, each later one only steps. Problems are
/// placed in the whole file.
fn read_chunk(text: &str, range: Range<usize>) -> Option<Loaded> {
    let (root, errors) = DeTable::parse_recoverable(&text[range.clone()]);
    if !errors.is_empty() {
        return None;
    }
    let root = root.get_ref();
    if range.start == 0 {
        if let Some((key, value)) = root.get_key_value("steps") {
            let by_header = super::split::made_by_header(text, key.span().start);
            if !by_header || value.get_ref().as_table().is_none() {
                return None;
            }
        }
        return Some(read_root(root));
    }
    if root.len() != 1 {
        return None;
    }
    let (steps, problems) = read_steps(root.get("steps")?.get_ref().as_table()?);
    Some(Loaded {
        steps: vec![steps],
        problems: problems
            .into_iter()
            .map(|p| p.moved_by(range.start))
            .collect(),
        ..Loaded::default()
    })
}

/// The top-level tables of a file (or of its first chunk) and its steps.
fn read_root(root: &DeTable<'_>) -> Loaded {
    let mut problems = Vec::new();
    let mut manifest = Manifest::default();
    let mut steps = Vec::new();
    let mut name_written = false;
    check_keys(root, keys::<Manifest>(), "top-level table", &mut problems);

    match root.get_key_value("workflow") {
        Some((key, v)) => {
            check_table_keys(v, keys::<WorkflowSection>(), "[workflow]", &mut problems);
            let mut found = Vec::new();
            manifest.workflow = read_collecting(v, &mut found);
            let name = v.get_ref().as_table().map(|t| t.get("name"));
            name_written = name
                .flatten()
                .is_some_and(|n| n.get_ref().as_str().is_some());
            let no_name = name.is_some_and(|n| n.is_none());
            if no_name {
                // serde's "missing field `name`" would say the same as the problem below, without the hint.
                found.retain(|p| !p.message.starts_with("missing field `name`"));
            }
            problems.append(&mut found);
            if no_name {
                problems.push(
                    Problem::error("missing-key", "[workflow] has no `name`")
                        .at(key.span(), "this table")
                        .help("add `name = \"my-workflow\"` (letters, digits, '-' and '_')"),
                );
            }
        }
        None => problems.push(
            Problem::error("missing-key", "the file has no [workflow] table")
                .at(0..0, "expected here")
                .help("start the file with:\n[workflow]\nname = \"my-workflow\""),
        ),
    }
    if let Some(v) = root.get("vars") {
        manifest.vars = read_map_of_strings(v, "[vars]", &mut problems);
    }
    if let Some(v) = root.get("env") {
        manifest.env = read_map_of_strings(v, "[env]", &mut problems);
    }
    if let Some(v) = root.get("requires") {
        check_table_keys(v, keys::<Requires>(), "[requires]", &mut problems);
        manifest.requires = read_collecting(v, &mut problems);
    }
    if let Some(v) = root.get("hooks") {
        check_table_keys(v, keys::<Hooks>(), "[hooks]", &mut problems);
        manifest.hooks = read_collecting(v, &mut problems);
    }
    if let Some(v) = root.get("executor") {
        check_table_keys(v, keys::<ExecutorSection>(), "[executor]", &mut problems);
        if let Some(slurm) = v.get_ref().get("slurm") {
            check_table_keys(
                slurm,
                keys::<SlurmSection>(),
                "[executor.slurm]",
                &mut problems,
            );
        }
        manifest.executor = read_prepared(v, &mut problems, |cleaned| {
            if let DeValue::Table(t) = cleaned.get_mut() {
                if let Some(slurm) = t.get_mut("slurm") {
                    drop_unknown_keys(slurm, keys::<SlurmSection>());
                }
            }
        });
    }
    if let Some(value) = root.get("steps") {
        match value.get_ref().as_table() {
            Some(table) => {
                let (read, mut found) = read_steps(table);
                steps = read;
                problems.append(&mut found);
            }
            None => problems.push(
                Problem::error("wrong-type", "`steps` must be a table of steps").at(
                    value.span(),
                    format!("found {}", value.get_ref().type_str()),
                ),
            ),
        }
    }
    Loaded {
        manifest,
        steps: vec![steps],
        problems,
        name_written,
    }
}

impl Loaded {
    /// Every step, in file order.
    pub fn all_steps(&self) -> impl Iterator<Item = &LoadedStep> {
        self.steps.iter().flatten()
    }
}

/// The steps of a `steps` table, read on every core; their problems keep the file's order.
fn read_steps(table: &DeTable<'_>) -> (Vec<LoadedStep>, Vec<Problem>) {
    let mut entries: Vec<_> = table.iter().collect();
    let runs = crate::par::map_runs(&mut entries, 1000, |run| {
        let mut found = Vec::new();
        let read: Vec<LoadedStep> = run
            .iter()
            .map(|(name, value)| {
                let before = found.len();
                let spec = read_step(name.get_ref(), value, &mut found);
                LoadedStep {
                    name: name.get_ref().to_string(),
                    spec,
                    broken: found.len() > before,
                }
            })
            .collect();
        (read, found)
    });
    let (read, found): (Vec<_>, Vec<_>) = runs.into_iter().unzip();
    (
        crate::par::concat(read),
        found.into_iter().flatten().collect(),
    )
}

/// One `[steps.NAME]` table; its problems go to `problems`.
fn read_step(name: &str, value: &Spanned<DeValue<'_>>, problems: &mut Vec<Problem>) -> StepSpec {
    let what = format!("[steps.{name}]");
    if value.get_ref().as_table().is_none() {
        problems.push(
            Problem::error("wrong-type", format!("{what} must be a table"))
                .at(
                    value.span(),
                    format!("found {}", value.get_ref().type_str()),
                )
                .help(format!("write it as\n{what}\nrun = \"...\"")),
        );
        return StepSpec::default();
    }
    check_table_keys(value, keys::<StepSpec>(), &what, problems);
    check_probe_keys(value, &what, problems);
    if let Some(v) = value.get_ref().get("resources") {
        check_table_keys(
            v,
            keys::<Resources>(),
            &format!("{what} resources"),
            problems,
        );
    }
    if let Some(spec) = step_direct(value.get_ref()) {
        return spec;
    }
    read_prepared(value, problems, |cleaned| {
        if let DeValue::Table(step) = cleaned.get_mut() {
            for probe in ["ready", "health"] {
                if let Some(v) = step.get_mut(probe) {
                    drop_unknown_keys(v, keys::<Probe>());
                }
            }
            if let Some(v) = step.get_mut("resources") {
                drop_unknown_keys(v, keys::<Resources>());
            }
        }
    })
}

/// A step of the common shape read straight off the tree, without the copy that serde
/// needs. Anything else (a probe, an unknown key, a value of the wrong type or an invalid
/// duration) gives `None`, and the step goes through serde, which also words its errors.
/// A test holds this to the same result as serde on every example and fixture.
fn step_direct(value: &DeValue<'_>) -> Option<StepSpec> {
    fn string(v: &DeValue<'_>) -> Option<String> {
        v.as_str().map(str::to_owned)
    }
    // Sized exactly: a run keeps these lists for its whole length.
    fn strings(v: &DeValue<'_>) -> Option<Vec<String>> {
        let items = v.as_array()?;
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            out.push(string(item.get_ref())?);
        }
        Some(out)
    }
    fn duration(v: &DeValue<'_>) -> Option<Duration> {
        Duration::parse(v.as_str()?).ok()
    }
    let mut spec = StepSpec::default();
    for (key, v) in value.as_table()? {
        let v = v.get_ref();
        match key.get_ref().as_ref() {
            "kind" => {
                spec.kind = match v.as_str()? {
                    "task" => StepKind::Task,
                    "service" => StepKind::Service,
                    "test" => StepKind::Test,
                    _ => return None,
                }
            }
            "description" => spec.description = Some(string(v)?),
            "run" => {
                spec.run = Some(match v {
                    DeValue::String(s) => RunSpec::Shell(s.to_string()),
                    _ => RunSpec::Argv(strings(v)?),
                })
            }
            "needs" => spec.needs = strings(v)?,
            "inputs" => spec.inputs = strings(v)?,
            "outputs" => spec.outputs = strings(v)?,
            "cwd" => spec.cwd = Some(string(v)?),
            "env" => {
                spec.env = v
                    .as_table()?
                    .iter()
                    .map(|(k, v)| Some((k.get_ref().to_string(), string(v.get_ref())?)))
                    .collect::<Option<_>>()?
            }
            "timeout" => spec.timeout = Some(duration(v)?),
            "kill_grace" => spec.kill_grace = Some(duration(v)?),
            "retry_delay" => spec.retry_delay = Some(duration(v)?),
            "stall_timeout" => spec.stall_timeout = Some(duration(v)?),
            "retries" => {
                let n = v.as_integer()?;
                let digits = n.as_str();
                if n.radix() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                spec.retries = Some(digits.parse().ok()?);
            }
            "allow_failure" => spec.allow_failure = v.as_bool()?,
            "tools" => spec.tools = strings(v)?,
            "progress" => spec.progress = Some(string(v)?),
            "fail_on" => spec.fail_on = strings(v)?,
            "tags" => spec.tags = strings(v)?,
            "junit" => spec.junit = Some(string(v)?),
            "executor" => {
                spec.executor = Some(match v.as_str()? {
                    "local" => ExecutorKind::Local,
                    "slurm" => ExecutorKind::Slurm,
                    _ => return None,
                })
            }
            _ => return None,
        }
    }
    Some(spec)
}

/// Deserializes a table into `T`, reporting every key that fails rather than only the first.
///
/// The fast path deserializes one copy of the table. On an error the offending key is found
/// from the error's span, reported, dropped, and the rest tried again. `prepare` trims a copy
/// of the table before each attempt (unknown keys were reported already).
fn read_collecting<T: DeserializeOwned + Default + Section>(
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
) -> T {
    read_prepared(value, problems, |_| {})
}

fn read_prepared<T: DeserializeOwned + Default + Section>(
    value: &Spanned<DeValue<'_>>,
    problems: &mut Vec<Problem>,
    prepare: impl Fn(&mut Spanned<DeValue<'_>>),
) -> T {
    let fresh = || {
        let mut copy = value.clone();
        drop_unknown_keys(&mut copy, keys::<T>());
        prepare(&mut copy);
        copy
    };
    // The first attempt takes the copy; only after an error is one kept to trim and retry.
    let mut attempt = T::deserialize(ValueDeserializer::from(fresh()));
    let mut current = None;
    loop {
        let err = match attempt {
            Ok(v) => return v,
            Err(e) => e,
        };
        let current = current.get_or_insert_with(fresh);
        let span = err.span();
        let culprit = match (current.get_ref().as_table(), &span) {
            (Some(table), Some(span)) => table
                .iter()
                .find(|(k, v)| contains(&v.span(), span) || contains(&k.span(), span))
                .map(|(k, _)| k.get_ref().to_string()),
            _ => None,
        };
        problems.push(type_problem(&err, culprit.as_deref(), span.clone()));
        match (culprit, current.get_mut()) {
            (Some(key), DeValue::Table(table)) => {
                table.remove(key.as_str());
            }
            _ => return T::default(),
        }
        attempt = T::deserialize(ValueDeserializer::from(current.clone()));
    }
}

fn shift(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

fn type_problem(err: &toml::de::Error, key: Option<&str>, span: Option<Range<usize>>) -> Problem {
    let plain = plain_words(err.message().trim_end());
    let raw = plain.as_str();
    let (message, help) = match key {
        Some("run") if raw.contains("untagged") => (
            "`run` must be a string or an array of strings".to_owned(),
            Some("a string runs under `sh -c`; an array runs as argv with no shell".to_owned()),
        ),
        Some("env_file") if raw.contains("untagged") => (
            "`env_file` must be a path or `{ path = \"...\", optional = true }`".to_owned(),
            Some("a table takes only `path` and `optional`".to_owned()),
        ),
        Some("matrix") if raw.contains("untagged") => (
            "a `matrix` value must be a list of strings or `{ glob = \"...\" }`".to_owned(),
            Some("e.g. `matrix = { python = [\"3.11\", \"3.12\"], csv = { glob = \"data/*.csv\" } }`; integers and booleans are taken as text".to_owned()),
        ),
        // Snakemake's `shell` is the command; bgflow's picks the shell that runs `run`.
        Some("shell") => (
            format!("invalid value for `shell`: {raw}"),
            Some("`shell` picks the shell of a string `run` (`sh` or `bash`); the command itself goes in `run` (what Snakemake calls `shell`)".to_owned()),
        ),
        // `retries = "2"`: the number was quoted.
        Some(k) if raw.starts_with("invalid type: string") && raw.contains("a whole number") => {
            let quoted = (raw.split('"').nth(1)).filter(|v| v.parse::<u64>().is_ok());
            let help = match quoted {
                Some(n) => format!("write the number without quotes: `{k} = {n}`"),
                None => format!("a whole number, without quotes, e.g. `{k} = 2`"),
            };
            (format!("invalid value for `{k}`: {raw}"), Some(help))
        }
        Some(k) => (format!("invalid value for `{k}`: {raw}"), None),
        None => (raw.to_owned(), None),
    };
    let mut p = Problem::error("wrong-type", message).at_opt(span, "here");
    if let Some(h) = help {
        p = p.help(h);
    }
    p
}

/// serde's message with Rust's integer types in words: `expected u32` is `expected a whole
/// number (0 or more)` to someone writing TOML.
fn plain_words(raw: &str) -> String {
    let mut out = raw.to_owned();
    for (ty, words) in [
        ("u8", "a whole number (0 or more)"),
        ("u16", "a whole number (0 or more)"),
        ("u32", "a whole number (0 or more)"),
        ("u64", "a whole number (0 or more)"),
        ("usize", "a whole number (0 or more)"),
        ("i32", "a whole number"),
        ("i64", "a whole number"),
    ] {
        let rust = format!("expected {ty}");
        if out.ends_with(&rust) {
            out.truncate(out.len() - ty.len());
            out.push_str(words);
        }
    }
    out
}

fn read_map_of_strings(
    value: &Spanned<DeValue<'_>>,
    what: &str,
    problems: &mut Vec<Problem>,
) -> indexmap::IndexMap<String, String> {
    let mut out = indexmap::IndexMap::new();
    let Some(table) = value.get_ref().as_table() else {
        problems.push(
            Problem::error("wrong-type", format!("{what} must be a table of strings")).at(
                value.span(),
                format!("found {}", value.get_ref().type_str()),
            ),
        );
        return out;
    };
    for (k, v) in table.iter() {
        match String::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(s) => {
                out.insert(k.get_ref().to_string(), s);
            }
            Err(_) => problems.push(
                Problem::error(
                    "wrong-type",
                    format!("`{}` in {what} must be a string", k.get_ref()),
                )
                .at(v.span(), format!("found {}", v.get_ref().type_str()))
                .help("quote the value, e.g. `retries = \"3\"`"),
            ),
        }
    }
    out
}

impl Document<'_> {
    /// The key's span and the value at a path of table keys, e.g. `["steps", "build",
    /// "needs"]`, with the base offset of the file it is in (the value's own spans are
    /// within that file). A matrix instance `step[v1,v2]` after `steps` is placed at its
    /// step `step`.
    fn entry(&self, path: &[&str]) -> Option<(usize, Range<usize>, &Spanned<DeValue<'_>>)> {
        self.entry_in(self.owners.file_of(path), path)
    }

    fn entry_in(
        &self,
        file: usize,
        path: &[&str],
    ) -> Option<(usize, Range<usize>, &Spanned<DeValue<'_>>)> {
        let (first, rest) = path.split_first()?;
        let (base, root) = self.tree(file)?;
        let (mut key, mut value) = root.get_ref().get_key_value(*first)?;
        for (i, part) in rest.iter().enumerate() {
            let table = value.get_ref().as_table()?;
            let found = table.get_key_value(*part).or_else(|| match (i, *first) {
                (0, "steps") => table.get_key_value(part.split_once('[')?.0),
                _ => None,
            });
            let (k, v) = found?;
            key = k;
            value = v;
        }
        Some((base, key.span(), value))
    }

    /// Span of the key at `path` (a step's name, a field's key).
    pub fn key_span(&self, path: &[&str]) -> Option<Range<usize>> {
        self.entry(path).map(|(b, k, _)| shift(k, b))
    }

    /// Span of the key at `path` in file `file` of `source.files()` (a name that two files
    /// define).
    pub fn key_span_in(&self, file: usize, path: &[&str]) -> Option<Range<usize>> {
        self.entry_in(file, path).map(|(b, k, _)| shift(k, b))
    }

    /// Span of the value at `path`.
    pub fn value_span(&self, path: &[&str]) -> Option<Range<usize>> {
        self.entry(path).map(|(b, _, v)| shift(v.span(), b))
    }

    /// Span of element `index` of the array at `path`, else of the value itself.
    pub fn item_span(&self, path: &[&str], index: usize) -> Option<Range<usize>> {
        let (b, _, v) = self.entry(path)?;
        match v.get_ref().as_array() {
            Some(arr) => arr.get(index).map(|item| shift(item.span(), b)),
            None => Some(shift(v.span(), b)),
        }
    }

    /// The span of a string value's text inside its quotes, when the text is written
    /// literally (no escapes), so that offsets inside the string map onto the file.
    pub fn string_body(&self, span: &Range<usize>, value: &str) -> Option<usize> {
        let (file, local) = self.source.locate(span);
        let raw = file.text.get(local)?;
        for quote in ["\"\"\"", "'''", "\"", "'"] {
            if let Some(inner) = raw.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
                // A multi-line string drops a newline right after the opening quotes.
                let skip = usize::from(quote.len() == 3 && inner.starts_with('\n'));
                if &inner[skip..] == value {
                    return Some(span.start + quote.len() + skip);
                }
                return None;
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every step of every example and test fixture reads the same by the direct path as
    /// through serde, wherever the direct path takes it.
    #[test]
    fn direct_step_reading_agrees_with_serde() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["examples/workflows", "tests/fixtures/plan"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                files.push(entry.unwrap().path());
            }
        }
        let mut direct = 0;
        for path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        {
            let text = std::fs::read_to_string(path).unwrap();
            let (doc, _) = DeTable::parse_recoverable(&text);
            let Some(steps) = doc
                .get_ref()
                .get("steps")
                .and_then(|s| s.get_ref().as_table())
            else {
                continue;
            };
            for (name, value) in steps {
                let Some(fast) = step_direct(value.get_ref()) else {
                    continue;
                };
                direct += 1;
                let mut problems = Vec::new();
                let slow: StepSpec = read_collecting(value, &mut problems);
                assert!(problems.is_empty(), "{}: {problems:?}", path.display());
                assert_eq!(
                    serde_json::to_value(&fast).unwrap(),
                    serde_json::to_value(&slow).unwrap(),
                    "{} step {}",
                    path.display(),
                    name.get_ref()
                );
            }
        }
        assert!(direct > 20, "the direct path took only {direct} steps");
    }

    #[test]
    fn the_direct_path_leaves_odd_values_to_serde() {
        for text in [
            "kind = \"daemon\"",
            "retries = -1",
            "retries = 0x10",
            "timeout = \"soon\"",
            "run = 3",
            "inputs = [1]",
            "ready = { tcp = \"127.0.0.1:1\" }",
            "unknown = 1",
        ] {
            let (doc, errors) = DeTable::parse_recoverable(text);
            assert!(errors.is_empty(), "{text}");
            let value = DeValue::Table(doc.into_inner());
            assert!(step_direct(&value).is_none(), "{text}");
        }
    }
}
