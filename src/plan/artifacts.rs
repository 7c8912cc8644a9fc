//! Matching inputs to the outputs that make them (DESIGN.md §1, "Rules").
//!
//! An input of B is made by A when the paths are equal, when A's output glob matches B's
//! input path, when B's input glob matches A's output path, or when the input lies inside
//! a folder output `dir/` of A. Literal paths go through hash maps, so a 10,000-step
//! workflow of literal artifacts is matched in linear time. Globs are matched as sets
//! (`globset::GlobSet`): a literal input against every output glob at once, and every
//! literal output against every input glob at once; an input glob and an output glob are
//! the same artifact only when written the same way.

use std::borrow::Cow;

use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};

/// Whether a pattern uses glob syntax rather than naming one path.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Compiles a glob where `*` does not cross `/` and `**` does.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    glob(pattern).map(|g| g.compile_matcher())
}

fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(&normalize(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
}

/// A relative artifact path in canonical form: no `./`, no doubled `/`, a trailing `/` kept.
pub fn normalize(path: &str) -> String {
    normalized(path).into_owned()
}

/// [`normalize`] without a copy when the path is canonical already, as most paths are.
pub fn normalized(path: &str) -> Cow<'_, str> {
    if is_canonical(path) {
        return Cow::Borrowed(path);
    }
    let dir = path.ends_with('/');
    let mut out = String::with_capacity(path.len());
    if path.starts_with('/') {
        out.push('/');
    }
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !out.is_empty() && !out.ends_with('/') {
            out.push('/');
        }
        out.push_str(part);
    }
    if dir && !out.is_empty() && !out.ends_with('/') {
        out.push('/');
    }
    Cow::Owned(out)
}

/// No `./` at the start, no `//` or `/./` inside, no `/.` at the end, not empty or `.`.
fn is_canonical(path: &str) -> bool {
    let b = path.as_bytes();
    if b.is_empty() || b == b"." || b.starts_with(b"./") || b.ends_with(b"/.") {
        return false;
    }
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'/' && (b[i + 1] == b'/' || (b[i + 1] == b'.' && b.get(i + 2) == Some(&b'/'))) {
            return false;
        }
        i += 1;
    }
    true
}

/// Where an output was declared: step index and the output's index in that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutputRef {
    pub step: usize,
    pub index: usize,
}

/// Every declared output, indexed for lookups by input path. Paths are borrowed from the
/// steps where they are canonical already.
#[derive(Default)]
pub struct OutputIndex<'a> {
    literal: foldhash::HashMap<Cow<'a, str>, OutputRef>,
    /// Folder outputs by their path without the trailing `/`.
    folders: foldhash::HashMap<Cow<'a, str>, OutputRef>,
    globs: Vec<(String, OutputRef)>,
    /// `globs` as one set: a path is matched against every output glob at once (10,000
    /// output globs matched one by one against 10,000 inputs took minutes).
    /// Built on the first literal input that needs it: a workflow whose inputs are all globs
    /// never does.
    glob_set: std::sync::OnceLock<GlobSet>,
    compiled: Vec<Glob>,
    /// The output globs by their text, for an input glob written the same way.
    glob_texts: foldhash::HashMap<String, Vec<OutputRef>>,
    /// What each input glob (normalised) matches among the literal and folder outputs,
    /// found for all of them at once (`index_input_globs`).
    input_globs: foldhash::HashMap<String, Vec<OutputRef>>,
    /// Pairs of outputs declared twice: (first, second, path).
    pub duplicates: Vec<(OutputRef, OutputRef, String)>,
}

impl<'a> OutputIndex<'a> {
    /// Indexes `outputs[step] = [path, ...]`. Invalid globs are skipped (validation reports them).
    pub fn new(outputs: impl IntoIterator<Item = (usize, &'a [String])>) -> Self {
        let mut index = Self::default();
        for (step, list) in outputs {
            for (i, raw) in list.iter().enumerate() {
                let at = OutputRef { step, index: i };
                let path = normalized(raw);
                if is_glob(&path) {
                    if let Ok(g) = glob(&path) {
                        index.compiled.push(g);
                        index
                            .glob_texts
                            .entry(path.to_string())
                            .or_default()
                            .push(at);
                        index.globs.push((path.into_owned(), at));
                    }
                    continue;
                }
                let map = if path.ends_with('/') {
                    &mut index.folders
                } else {
                    &mut index.literal
                };
                // Folders are keyed without their trailing `/`.
                let key = match &path {
                    Cow::Borrowed(p) => Cow::Borrowed(p.trim_end_matches('/')),
                    Cow::Owned(p) => Cow::Owned(p.trim_end_matches('/').to_owned()),
                };
                if let Some(first) = map.get(&key) {
                    if first.step != step {
                        index.duplicates.push((*first, at, path.into_owned()));
                    }
                } else {
                    map.insert(key, at);
                }
            }
        }
        index
    }

    /// Every output glob as one set.
    fn output_globs(&self) -> &GlobSet {
        self.glob_set.get_or_init(|| {
            let mut set = GlobSetBuilder::new();
            for g in &self.compiled {
                set.add(g.clone());
            }
            // Each glob compiled alone, so the set of them compiles too.
            set.build().unwrap_or_else(|_| GlobSet::empty())
        })
    }

    /// Finds the literal and folder outputs that each input glob matches: every output path
    /// is matched once against the set of all input globs, instead of every input glob
    /// against every output (10,000 of each took seconds).
    pub fn index_input_globs<'i>(&mut self, inputs: impl Iterator<Item = &'i String>) {
        let mut texts: Vec<String> = Vec::new();
        let mut seen = foldhash::HashSet::default();
        let mut set = GlobSetBuilder::new();
        for input in inputs {
            let input = normalized(input);
            if is_glob(&input) && !seen.contains(input.as_ref()) {
                seen.insert(input.to_string());
                if let Ok(g) = glob(&input) {
                    set.add(g);
                    texts.push(input.into_owned());
                }
            }
        }
        if texts.is_empty() {
            return;
        }
        let Ok(set) = set.build() else {
            return;
        };
        let mut found: Vec<Vec<OutputRef>> = vec![Vec::new(); texts.len()];
        for (path, r) in self.literal.iter().chain(self.folders.iter()) {
            for i in set.matches(path.as_ref()) {
                found[i].push(*r);
            }
        }
        for (text, mut refs) in texts.into_iter().zip(found) {
            // A glob inside a folder output (`dist/` and `dist/*.whl`).
            let prefix = glob_prefix(&text).trim_end_matches('/');
            let mut cut = prefix.len();
            while cut > 0 {
                if let Some(r) = self.folders.get(&prefix[..cut]) {
                    refs.push(*r);
                }
                match prefix[..cut].rfind('/') {
                    Some(i) if i > 0 => cut = i,
                    _ => break,
                }
            }
            self.input_globs.insert(text, refs);
        }
    }

    /// The outputs that make `input` (normalised). Empty when nothing does.
    pub fn producers(&self, input: &str) -> Vec<OutputRef> {
        let input = normalized(input);
        let input = input.as_ref();
        let mut found = Vec::new();
        if let Some(refs) = self.input_globs.get(input) {
            found.extend(refs);
            if let Some(same) = self.glob_texts.get(input) {
                found.extend(same);
            }
        } else if is_glob(input) {
            if let Ok(m) = compile_glob(input) {
                found.extend(
                    self.literal
                        .iter()
                        .filter(|(p, _)| m.is_match(p.as_ref()))
                        .map(|(_, r)| *r),
                );
                found.extend(
                    self.folders
                        .iter()
                        .filter(|(p, _)| {
                            m.is_match(p.as_ref())
                                || glob_prefix(input).starts_with(&format!("{p}/"))
                        })
                        .map(|(_, r)| *r),
                );
            }
            if let Some(same) = self.glob_texts.get(input) {
                found.extend(same);
            }
        } else {
            let path = input.trim_end_matches('/');
            if let Some(r) = self.literal.get(path) {
                found.push(*r);
            }
            // The folder itself, or any folder output it lies in.
            let mut cut = path.len();
            loop {
                if let Some(r) = self.folders.get(&path[..cut]) {
                    found.push(*r);
                }
                match path[..cut].rfind('/') {
                    Some(i) if i > 0 => cut = i,
                    _ => break,
                }
            }
            found.extend(
                self.output_globs()
                    .matches(path)
                    .into_iter()
                    .map(|i| self.globs[i].1),
            );
        }
        found.sort_by_key(|r| (r.step, r.index));
        found.dedup();
        // Kept by the plan for the whole run, one list per input.
        found.shrink_to_fit();
        found
    }
}

/// The folder part of a glob before its first wildcard (`src/**/*.rs` -> `src/`).
pub fn glob_prefix(glob: &str) -> &str {
    let first = glob.find(['*', '?', '[', '{']).unwrap_or(glob.len());
    match glob[..first].rfind('/') {
        Some(i) => &glob[..=i],
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(steps: &[&[&str]]) -> OutputIndex<'static> {
        // The index borrows the paths; a test's few are simply kept for good.
        let owned: &'static Vec<Vec<String>> = Box::leak(Box::new(
            steps
                .iter()
                .map(|s| s.iter().map(|p| (*p).to_owned()).collect())
                .collect(),
        ));
        OutputIndex::new(owned.iter().enumerate().map(|(i, v)| (i, v.as_slice())))
    }

    fn steps_of(idx: &OutputIndex<'_>, input: &str) -> Vec<usize> {
        let mut steps: Vec<usize> = idx.producers(input).into_iter().map(|r| r.step).collect();
        steps.dedup();
        steps
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(normalize("./a//b/./c"), "a/b/c");
        assert_eq!(normalize("stories/"), "stories/");
        assert_eq!(normalize("/abs/x"), "/abs/x");
        assert_eq!(normalize("/abs//x/."), "/abs/x");
        assert_eq!(normalize("./"), "");
        assert_eq!(normalize("a/./"), "a/");
        assert_eq!(normalize("a/b"), "a/b");
        assert_eq!(normalize("a.b/.c"), "a.b/.c");
    }

    /// The byte scan that skips the slow path agrees with splitting every path, for every
    /// path of up to 7 characters over `a`, `.` and `/`.
    #[test]
    fn canonical_scan_agrees_with_splitting() {
        fn by_splitting(path: &str) -> String {
            let parts: Vec<&str> = path
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect();
            let mut out = String::new();
            if path.starts_with('/') {
                out.push('/');
            }
            out.push_str(&parts.join("/"));
            if path.ends_with('/') && !out.is_empty() && !out.ends_with('/') {
                out.push('/');
            }
            out
        }
        let mut paths = vec![String::new()];
        for _ in 0..7 {
            let longer: Vec<String> = paths
                .iter()
                .flat_map(|p| ['a', '.', '/'].map(|c| format!("{p}{c}")))
                .collect();
            paths.extend(longer);
            paths.sort();
            paths.dedup();
        }
        for p in &paths {
            assert_eq!(normalize(p), by_splitting(p), "normalize({p:?})");
        }
    }

    #[test]
    fn literal_and_folder_matches() {
        let idx = index(&[&["requirements.md"], &["stories/"], &["build/app"]]);
        assert_eq!(steps_of(&idx, "requirements.md"), vec![0]);
        assert_eq!(steps_of(&idx, "./requirements.md"), vec![0]);
        assert_eq!(steps_of(&idx, "stories/"), vec![1]);
        assert_eq!(steps_of(&idx, "stories/one.md"), vec![1]);
        assert_eq!(steps_of(&idx, "stories"), vec![1]);
        assert!(steps_of(&idx, "storiesx/one.md").is_empty());
        assert!(steps_of(&idx, "missing.md").is_empty());
    }

    #[test]
    fn glob_matches_both_ways() {
        let idx = index(&[&["reports/*.xml"], &["src/a.rs", "src/deep/b.rs"]]);
        assert_eq!(steps_of(&idx, "reports/junit.xml"), vec![0]);
        assert!(
            steps_of(&idx, "reports/sub/junit.xml").is_empty(),
            "* must not cross /"
        );
        assert_eq!(steps_of(&idx, "src/*.rs"), vec![1]);
        assert_eq!(steps_of(&idx, "src/**/*.rs"), vec![1]);
        assert_eq!(idx.producers("src/**/*.rs").len(), 2);
    }

    #[test]
    fn duplicates_are_found() {
        let idx = index(&[&["out.txt"], &["./out.txt"], &["dir/"], &["dir/"]]);
        let dups: Vec<_> = idx
            .duplicates
            .iter()
            .map(|(a, b, p)| (a.step, b.step, p.as_str()))
            .collect();
        assert_eq!(dups, vec![(0, 1, "out.txt"), (2, 3, "dir/")]);
    }

    #[test]
    fn glob_prefixes() {
        assert_eq!(glob_prefix("src/**/*.rs"), "src/");
        assert_eq!(glob_prefix("*.md"), "");
        assert_eq!(glob_prefix("a/b/c?.txt"), "a/b/");
    }

    /// Input globs matched all at once (`index_input_globs`) find what matching each one
    /// alone finds.
    #[test]
    fn input_globs_indexed_at_once_match_as_one_by_one() {
        let outputs: &[&[&str]] = &[
            &["a/x.txt", "a/y.md"],
            &["dist/"],
            &["b/*.txt", "./a/z.txt"],
            &["deep/one/two.txt"],
        ];
        let inputs: Vec<String> = [
            "a/*.txt",
            "*.md",
            "a/*",
            "dist/*.whl",
            "dist",
            "b/*.txt",
            "deep/**/*.txt",
            "**",
            "c/*",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let alone = index(outputs);
        let mut at_once = index(outputs);
        at_once.index_input_globs(inputs.iter());
        for input in &inputs {
            assert_eq!(at_once.producers(input), alone.producers(input), "{input}");
        }
        assert_eq!(steps_of(&at_once, "a/*.txt"), vec![0, 2]);
        assert_eq!(steps_of(&at_once, "dist/*.whl"), vec![1]);
    }
}
