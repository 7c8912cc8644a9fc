//! Matching inputs to the outputs that make them (DESIGN.md §1, "Rules").
//!
//! An input of B is made by A when the paths are equal, when A's output glob matches B's
//! input path, when B's input glob matches A's output path, or when the input lies inside
//! a folder output `dir/` of A. Literal paths go through hash maps, so a 10,000-step
//! workflow of literal artifacts is matched in linear time; only globs are compared pairwise.

use std::borrow::Cow;

use globset::{GlobBuilder, GlobMatcher};

/// Whether a pattern uses glob syntax rather than naming one path.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// Compiles a glob where `*` does not cross `/` and `**` does.
pub fn compile_glob(pattern: &str) -> Result<GlobMatcher, globset::Error> {
    GlobBuilder::new(&normalize(pattern))
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
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
    globs: Vec<(String, GlobMatcher, OutputRef)>,
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
                    if let Ok(m) = compile_glob(&path) {
                        index.globs.push((path.into_owned(), m, at));
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

    /// The outputs that make `input` (normalised). Empty when nothing does.
    pub fn producers(&self, input: &str) -> Vec<OutputRef> {
        let input = normalized(input);
        let input = input.as_ref();
        let mut found = Vec::new();
        if is_glob(input) {
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
            found.extend(
                self.globs
                    .iter()
                    .filter(|(g, _, _)| *g == input)
                    .map(|(_, _, r)| *r),
            );
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
                self.globs
                    .iter()
                    .filter(|(_, m, _)| m.is_match(path))
                    .map(|(_, _, r)| *r),
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
}
