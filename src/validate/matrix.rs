//! A step's `matrix` expanded into instances (DESIGN.md §8), before the steps are checked.
//!
//! Every instance is known when `plan` runs: an axis is a list of values, or the files a
//! glob matches now. A glob over files that a step of the workflow makes is refused (the
//! instances would depend on what the run does, which `plan` cannot prove). Instances are
//! named `step[v1,v2]`, the values in the order of the axes, with `\`, `,`, `[` and `]`
//! in a value escaped by a `\`; they are contiguous in the step list, so that
//! `needs = ["step"]` is a range of steps (`Groups`).

use std::collections::HashMap;
use std::fs;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::Cx;
use crate::diag::Problem;
use crate::manifest::{Axis, LoadedStep, Matrix, MatrixValue};
use crate::plan::artifacts::{compile_glob, glob_prefix, normalize, OutputIndex};

/// The most instances one step's matrix may make (guarantee 12: `plan` stays bounded).
pub const MAX_INSTANCES: usize = 100_000;

/// One instance of a matrix step: the step's name in the file and the instance's values.
#[derive(Debug)]
pub struct Instance {
    /// The step's key in `[steps]`.
    pub base: String,
    /// `{{ matrix.NAME }}`, in the order of the axes, then keys added by `include`.
    pub values: Vec<(String, String)>,
    /// The step's first instance: problems of the step as written are reported for it alone.
    pub first: bool,
}

/// A step read, with its instance when it is one.
pub(super) type Item = (LoadedStep, Option<Arc<Instance>>);

/// The instances of each matrix step, by the step's name: a range of the step list.
pub type Groups = HashMap<String, Range<usize>>;

/// A matrix glob, kept to be checked against every step's outputs once all are known.
pub(super) struct MatrixGlob {
    pub step: String,
    pub axis: String,
    pub glob: String,
}

/// The name of an instance: `base[v1,v2]`, each value escaped.
pub fn instance_name(base: &str, values: &[&str]) -> String {
    let mut name =
        String::with_capacity(base.len() + 2 + values.iter().map(|v| v.len() + 1).sum::<usize>());
    name.push_str(base);
    name.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            name.push(',');
        }
        for c in v.chars() {
            if matches!(c, '\\' | ',' | '[' | ']') {
                name.push('\\');
            }
            name.push(c);
        }
    }
    name.push(']');
    name
}

/// Whether `name` is an identifier: a letter or `_`, then letters, digits and `_`.
fn identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Cx<'_, '_> {
    /// The steps of a chunk, each matrix step replaced by its instances; `offset` is the
    /// index of the chunk's first step in the whole list.
    pub(super) fn expand(
        &mut self,
        chunk: Vec<LoadedStep>,
        offset: usize,
        root: &Path,
        groups: &mut Groups,
        globs: &mut Vec<MatrixGlob>,
    ) -> Vec<Item> {
        let mut out: Vec<Item> = Vec::with_capacity(chunk.len());
        for mut step in chunk {
            let Some(matrix) = step.spec.matrix.take() else {
                out.push((step, None));
                continue;
            };
            let combos = self.combinations(&step.name, &matrix, root, globs);
            let start = offset + out.len();
            let mut seen = std::collections::HashSet::new();
            for (values, shown) in combos {
                let texts: Vec<&str> = values[..shown].iter().map(|(_, v)| v.as_str()).collect();
                let name = instance_name(&step.name, &texts);
                if !seen.insert(name.clone()) {
                    self.push(
                        Problem::error(
                            "duplicate-instance",
                            format!("the matrix of step `{}` makes `{name}` twice", step.name),
                        )
                        .at_opt(
                            self.doc.value_span(&["steps", &step.name, "matrix"]),
                            "here",
                        )
                        .help("each combination of values must be different"),
                    );
                    continue;
                }
                let instance = Instance {
                    base: step.name.clone(),
                    values,
                    first: seen.len() == 1,
                };
                out.push((
                    LoadedStep {
                        name,
                        spec: step.spec.clone(),
                        broken: step.broken,
                    },
                    Some(Arc::new(instance)),
                ));
            }
            groups.insert(step.name, start..offset + out.len());
        }
        out
    }

    /// Every combination of a matrix: its values, and how many of them name the instance.
    fn combinations<'a>(
        &mut self,
        step: &'a str,
        matrix: &'a Matrix,
        root: &Path,
        globs: &mut Vec<MatrixGlob>,
    ) -> Vec<(Vec<(String, String)>, usize)> {
        let at = |key: &'a str| vec!["steps", step, "matrix", key];
        let doc = self.doc;
        let mut axes: Vec<(String, Vec<String>)> = Vec::with_capacity(matrix.axes.len());
        let mut broken = false;
        for (name, axis) in &matrix.axes {
            if !identifier(name) {
                self.push(
                    Problem::error("invalid-name", format!("invalid matrix name `{name}`"))
                        .at_opt(doc.key_span(&at(name)), "not an identifier")
                        .help("a matrix name is a letter or `_`, then letters, digits and `_` (it is `{{ matrix.NAME }}`)"),
                );
                broken = true;
            }
            let values = match axis {
                Axis::Values(list) => self.texts(list, || doc.value_span(&at(name))),
                Axis::Glob(g) => {
                    globs.push(MatrixGlob {
                        step: step.to_owned(),
                        axis: name.clone(),
                        glob: g.glob.clone(),
                    });
                    self.files(&g.glob, root, || doc.value_span(&at(name)))
                }
            };
            match values {
                Some(v) if v.is_empty() => {
                    let why = match axis {
                        Axis::Glob(g) => format!("`{}` matches no file", g.glob),
                        Axis::Values(_) => "the list is empty".to_owned(),
                    };
                    self.push(
                        Problem::error(
                            "empty-matrix",
                            format!("matrix `{name}` of step `{step}` has no values: {why}"),
                        )
                        .at_opt(doc.value_span(&at(name)), "no values")
                        .help("a matrix makes one instance per value; with none the step would never run"),
                    );
                    broken = true;
                }
                Some(v) => axes.push((name.clone(), v)),
                None => broken = true,
            }
        }
        let product = axes
            .iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()))
            .filter(|&n| n <= MAX_INSTANCES);
        let Some(product) = product else {
            self.push(
                Problem::error(
                    "matrix-too-large",
                    format!(
                        "the matrix of step `{step}` makes more than {MAX_INSTANCES} instances"
                    ),
                )
                .at_opt(doc.value_span(&["steps", step, "matrix"]), "here")
                .help("split the work into fewer instances, each taking several values"),
            );
            return Vec::new();
        };
        if broken {
            return Vec::new();
        }
        let axis_names: Vec<&str> = axes.iter().map(|(n, _)| n.as_str()).collect();
        let entries = |cx: &mut Self,
                       list: &[indexmap::IndexMap<String, MatrixValue>],
                       what: &'static str| {
            let mut out = Vec::with_capacity(list.len());
            for (i, entry) in list.iter().enumerate() {
                let span = || doc.item_span(&at(what), i);
                let mut values = Vec::with_capacity(entry.len());
                for (k, v) in entry {
                    if !identifier(k) || (what == "exclude" && !axis_names.contains(&k.as_str())) {
                        let help = if what == "exclude" {
                            format!(
                                "an `exclude` entry names the matrix's own names: {}",
                                axis_names.join(", ")
                            )
                        } else {
                            "a matrix name is a letter or `_`, then letters, digits and `_`"
                                .to_owned()
                        };
                        cx.push(
                            Problem::error("invalid-name", format!("`{k}` in `{what}` of step `{step}` is not a name of its matrix"))
                                .at_opt(span(), "here")
                                .help(help),
                        );
                        continue;
                    }
                    if let Some(t) = cx.texts(std::slice::from_ref(v), span) {
                        values.extend(t.into_iter().map(|t| (k.clone(), t)));
                    }
                }
                out.push(values);
            }
            out
        };
        let excludes = entries(self, &matrix.exclude, "exclude");
        let includes = entries(self, &matrix.include, "include");
        // The product, the first axis outermost (as GitHub Actions orders it).
        let mut combos: Vec<(Vec<(String, String)>, usize)> = Vec::with_capacity(product);
        if !axes.is_empty() {
            let mut index = vec![0usize; axes.len()];
            'product: loop {
                let values: Vec<(String, String)> = axes
                    .iter()
                    .zip(&index)
                    .map(|((n, v), &i)| (n.clone(), v[i].clone()))
                    .collect();
                let excluded = excludes.iter().any(|ex| {
                    !ex.is_empty()
                        && ex
                            .iter()
                            .all(|(k, v)| values.iter().any(|(n, w)| n == k && w == v))
                });
                if !excluded {
                    combos.push((values, axes.len()));
                }
                for d in (0..axes.len()).rev() {
                    index[d] += 1;
                    if index[d] < axes[d].1.len() {
                        continue 'product;
                    }
                    index[d] = 0;
                }
                break;
            }
        }
        let original = combos.len();
        for inc in includes {
            let mut matched = false;
            for (values, _) in &mut combos[..original] {
                let fits = inc.iter().all(|(k, v)| {
                    !axis_names.contains(&k.as_str())
                        || values.iter().any(|(n, w)| n == k && w == v)
                });
                if !fits {
                    continue;
                }
                matched = true;
                for (k, v) in &inc {
                    match values.iter_mut().find(|(n, _)| n == k) {
                        Some(slot) => slot.1.clone_from(v),
                        None => values.push((k.clone(), v.clone())),
                    }
                }
            }
            if !matched && !inc.is_empty() {
                let shown = inc.len();
                combos.push((inc, shown));
            }
        }
        if combos.is_empty() {
            let why = if axes.is_empty() {
                "it has no values and no `include`"
            } else {
                "`exclude` removes every combination"
            };
            self.push(
                Problem::error("empty-matrix", format!("the matrix of step `{step}` is empty: {why}"))
                    .at_opt(doc.value_span(&["steps", step, "matrix"]), "no instance")
                    .help("a matrix makes one instance per combination; with none the step would never run"),
            );
        }
        combos
    }

    /// A list of values as text; `None` (with a problem) when one cannot be.
    fn texts(
        &mut self,
        list: &[MatrixValue],
        span: impl Fn() -> Option<Range<usize>>,
    ) -> Option<Vec<String>> {
        let mut out = Vec::with_capacity(list.len());
        for v in list {
            let Some(text) = v.text() else {
                self.push(
                    Problem::error("wrong-type", "a matrix value cannot be a float")
                        .at_opt(span(), "here")
                        .help("quote it: TOML reads `3.10` as the number 3.1; write \"3.10\""),
                );
                return None;
            };
            if text.chars().any(char::is_control) {
                self.push(
                    Problem::error(
                        "invalid-value",
                        "a matrix value cannot hold a control character (a newline, a tab, NUL…)",
                    )
                    .at_opt(span(), "here")
                    .help("the value names the instance, its log file and its rows in the history"),
                );
                return None;
            }
            out.push(text);
        }
        Some(out)
    }

    /// The files (not folders) that `glob` matches under `root` now, sorted.
    fn files(
        &mut self,
        glob: &str,
        root: &Path,
        span: impl Fn() -> Option<Range<usize>>,
    ) -> Option<Vec<String>> {
        let pattern = normalize(glob);
        let matcher = match compile_glob(&pattern) {
            Ok(m) => m,
            Err(e) => {
                self.push(
                    Problem::error(
                        "invalid-glob",
                        format!("invalid glob `{glob}`: {}", e.kind()),
                    )
                    .at_opt(span(), "here"),
                );
                return None;
            }
        };
        let depth = (!pattern.contains("**")).then(|| pattern.matches('/').count());
        let mut found = Vec::new();
        let mut stack = vec![root.join(glob_prefix(&pattern))];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let name = entry.file_name();
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
                if !is_dir && matcher.is_match(rel) {
                    if let Some(text) = rel.to_str() {
                        found.push(text.to_owned());
                    }
                    if found.len() > MAX_INSTANCES {
                        break;
                    }
                }
                let skip = name == ".git" || name == ".bgflow";
                let deeper = depth.is_none_or(|m| rel.components().count() <= m);
                if !skip && deeper && kind.is_dir() {
                    stack.push(path);
                }
            }
        }
        found.sort_unstable();
        Some(found)
    }

    /// A matrix glob that could match a file a step makes is an error: the instances would
    /// depend on what the run does.
    pub(super) fn globs_over_outputs(
        &mut self,
        globs: &[MatrixGlob],
        outputs: &[(&str, &[String])],
    ) {
        if globs.is_empty() {
            return;
        }
        let index = OutputIndex::new(outputs.iter().enumerate().map(|(i, (_, o))| (i, *o)));
        for g in globs {
            let made = index.producers(&g.glob);
            let Some(first) = made.first() else { continue };
            let (maker, list) = outputs[first.step];
            self.push(
                Problem::error(
                    "matrix-over-outputs",
                    format!(
                        "matrix `{}` of step `{}` is a glob over files that step `{maker}` makes (`{}`)",
                        g.axis, g.step, list[first.index]
                    ),
                )
                .at_opt(self.doc.value_span(&["steps", &g.step, "matrix", &g.axis]), "made during the run")
                .help("bgflow proves the plan before it runs, so every instance must be known then; a fan-out over files made by the run depends on data and cannot be proven. Glob over files that exist before the run, or let one step loop over the made files"),
            );
        }
    }
}

impl super::Workflow {
    /// The steps `NAME` selects (`--only NAME`): the step of that name, else every instance
    /// of the matrix step `NAME`, else, when `NAME` holds `*` or `?` (a [`wildcard`]), every
    /// step and instance whose whole name it matches (`'test[c,*]'`); none when nothing does.
    pub fn steps_named(&self, name: &str) -> Vec<usize> {
        if let Some(i) = self.steps.iter().position(|s| s.name == name) {
            return vec![i];
        }
        let of_matrix: Vec<usize> = (self.steps.iter().enumerate())
            .filter(|(_, s)| s.matrix().is_some() && s.written_name() == name)
            .map(|(i, _)| i)
            .collect();
        if !of_matrix.is_empty() || !is_wildcard(name) {
            return of_matrix;
        }
        (self.steps.iter().enumerate())
            .filter(|(_, s)| wildcard(name, &s.name))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Whether `--only NAME` is a pattern: it holds `*` or `?`, which no step's own name can.
pub fn is_wildcard(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// Whether `pattern` matches the whole of `name`: `*` any run of characters (`/`, `,` and
/// `[` included: a step's name is not a path), `?` any one character, everything else
/// itself. A matrix instance's name keeps its escapes (`t[a\,b]`), as `plan` shows it.
pub fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and the character of `name` it is matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == n[ni])) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            // Let the last `*` take one more character and try again after it.
            star = Some((sp, sn + 1));
            pi = sp + 1;
            ni = sn + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_matches_whole_names() {
        assert!(wildcard("test[c,*]", "test[c,test/test_seq.py]"));
        assert!(!wildcard("test[c,*]", "test[pure,test/test_seq.py]"));
        assert!(wildcard(
            "test[*,test/test_seq.py]",
            "test[pure,test/test_seq.py]"
        ));
        assert!(wildcard("lint*", "lint-py"));
        assert!(wildcard("*", ""));
        assert!(wildcard("a*b*c", "aXbYbZc"));
        assert!(!wildcard("a*b*c", "aXbYbZ"));
        assert!(wildcard("t[?]", "t[1]"));
        assert!(!wildcard("t[?]", "t[10]"));
        assert!(
            !wildcard("build", "build2"),
            "a pattern matches the whole name"
        );
        assert!(!wildcard("?", ""));
        assert!(wildcard("**x", "yx"));
        assert!(is_wildcard("t[*]") && is_wildcard("t?") && !is_wildcard("t[a]"));
    }

    #[test]
    fn instance_names_escape_separators() {
        assert_eq!(instance_name("t", &["3.11", "fast"]), "t[3.11,fast]");
        assert_eq!(
            instance_name("t", &["a,b", "[x]", "c\\d"]),
            "t[a\\,b,\\[x\\],c\\\\d]"
        );
        assert_eq!(instance_name("t", &["data/a b.csv"]), "t[data/a b.csv]");
    }

    #[test]
    fn identifiers() {
        assert!(identifier("python"));
        assert!(identifier("_x1"));
        assert!(!identifier("1x"));
        assert!(!identifier("a-b"));
        assert!(!identifier(""));
    }
}
