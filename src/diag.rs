//! Diagnostics: problems found in a workflow file, each tied to a place in its source.
//!
//! Every check collects `Problem`s instead of returning early, so that `plan` can report
//! all of them at once. Rendering (miette, with the source line and a caret) and the JSON
//! shape both live here.
//!
//! A workflow may include other files (`[workflow] include`). Its files share one space of
//! byte offsets: the workflow's own file is at 0, and each included file is placed after the
//! one before it, one byte apart (`SourceFile::add_files`). A `Problem`'s span is in that
//! space, so checks place problems in any file as they do in one; rendering and the JSON
//! form find the file a span is in and show it under that file's name, line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;

/// Reads a workflow file; a missing or unreadable file is a usage error (exit 2).
pub fn read_source(path: &Path) -> Result<SourceFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok(SourceFile::new(path, text)),
            Err(_) => Err(format!("{}: the file is not UTF-8 text", path.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{}: no such file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Err(format!(
            "{}: is a folder, not a workflow file",
            path.display()
        )),
        Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
    }
}

/// A workflow file's text and the name it is shown under.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub display: String,
    pub text: String,
    /// The byte offset of each line's start, made on the first `line_col`: placing 10,000
    /// problems by scanning the text from its start each time was quadratic.
    line_starts: OnceLock<Vec<usize>>,
    /// The files this one includes (directly or not), each at its place in the offset space.
    others: OnceLock<Vec<Placed>>,
}

/// An included file and the offset its text starts at.
#[derive(Debug, Clone)]
pub struct Placed {
    pub base: usize,
    pub file: SourceFile,
}

impl SourceFile {
    pub fn new(path: &Path, text: String) -> Self {
        Self::shown_as(path, path.display().to_string(), text)
    }

    /// A file shown under `display` (an included file: its path from the including file's).
    pub fn shown_as(path: &Path, display: String, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            display,
            text,
            line_starts: OnceLock::new(),
            others: OnceLock::new(),
        }
    }

    /// Where the next included file starts: one byte after the last file's end.
    pub fn next_base(&self, placed: &[Placed]) -> usize {
        placed
            .last()
            .map_or(self.text.len(), |p| p.base + p.file.text.len())
            + 1
    }

    /// Places the included files (once; a second call is ignored).
    pub fn add_files(&self, files: Vec<Placed>) {
        let _ = self.others.set(files);
    }

    /// This file and the files it includes, each with its base offset.
    pub fn files(&self) -> impl Iterator<Item = (usize, &SourceFile)> {
        std::iter::once((0, self)).chain(
            self.others
                .get()
                .into_iter()
                .flatten()
                .map(|p| (p.base, &p.file)),
        )
    }

    /// The file an offset is in, with that file's base offset.
    pub fn file_at(&self, offset: usize) -> (usize, &SourceFile) {
        let Some(others) = self.others.get().filter(|o| !o.is_empty()) else {
            return (0, self);
        };
        match others.partition_point(|p| p.base <= offset) {
            0 => (0, self),
            i => (others[i - 1].base, &others[i - 1].file),
        }
    }

    /// The file a span is in and the span within that file.
    pub fn locate(&self, span: &Range<usize>) -> (&SourceFile, Range<usize>) {
        let (base, file) = self.file_at(span.start);
        (
            file,
            span.start - base..span.end.saturating_sub(base).max(span.start - base),
        )
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // The last line that starts at or before `offset`.
        let line = starts.partition_point(|&s| s <= offset);
        let line_start = starts[line.saturating_sub(1)];
        let col = self.text[line_start..offset].chars().count() + 1;
        (line, col)
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem with a workflow file.
#[derive(Debug, Clone)]
pub struct Problem {
    pub severity: Severity,
    /// A stable, kebab-case identifier such as `unknown-step` (docs/json-output.md lists them).
    pub code: &'static str,
    pub message: String,
    /// Where in the file; `None` for problems of the file as a whole.
    pub span: Option<Range<usize>>,
    pub label: String,
    pub help: Option<String>,
    /// Further places that take part in the problem (e.g. each edge of a cycle).
    pub related: Vec<(Range<usize>, String)>,
}

impl Problem {
    /// The same problem with every place `by` bytes further on (a problem found in a part
    /// of a file that starts there).
    pub fn moved_by(mut self, by: usize) -> Self {
        if let Some(span) = &mut self.span {
            *span = span.start + by..span.end + by;
        }
        for (span, _) in &mut self.related {
            *span = span.start + by..span.end + by;
        }
        self
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(code, message)
        }
    }

    pub fn at(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    pub fn at_opt(self, span: Option<Range<usize>>, label: impl Into<String>) -> Self {
        match span {
            Some(span) => self.at(span, label),
            None => self,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn also(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `name`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// How diagnostics are drawn.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub color: bool,
}

/// How many problems of one file are drawn in full (message, source excerpt, help); the
/// rest are counted in one line. `--json` lists every problem.
pub const MAX_DRAWN: usize = 50;

/// How many further places of one problem (e.g. the edges of a cycle) are drawn.
pub const MAX_RELATED: usize = 6;

/// Renders problems with source excerpts, file by file (the workflow's own file, then each
/// included file), each in file order: the first `MAX_DRAWN` of a file in full, then
/// "… and N more". Each drawing reads the file from its start to find its lines, so the cap
/// also keeps 10,000 problems from costing 10,000 reads of the file.
pub fn render(source: &SourceFile, problems: &[Problem], opts: RenderOptions) -> String {
    let mut by_file: Vec<(usize, &SourceFile, Vec<&Problem>)> =
        source.files().map(|(b, f)| (b, f, Vec::new())).collect();
    for p in problems {
        let at = p.span.as_ref().map_or(0, |s| s.start);
        let (base, _) = source.file_at(at);
        if let Some(slot) = by_file.iter_mut().find(|(b, _, _)| *b == base) {
            slot.2.push(p);
        }
    }
    let mut out = String::new();
    for (base, file, found) in by_file {
        if !found.is_empty() {
            render_file(source, base, file, &found, opts, &mut out);
        }
    }
    out
}

fn render_file(
    all: &SourceFile,
    base: usize,
    source: &SourceFile,
    problems: &[&Problem],
    opts: RenderOptions,
    out: &mut String,
) {
    let named = NamedSource::new(&source.display, source.text.clone()).with_language("toml");
    let theme = if opts.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        // Wrapping breaks paths at `/` ("looked in /\n tmp/x"); the terminal wraps long lines anyway.
        .with_wrap_lines(false)
        .with_links(false);
    for problem in problems.iter().take(MAX_DRAWN) {
        let shifted = problem_in(problem, all, base);
        let view = View {
            problem: &shifted.0,
            source: &named,
            elsewhere: shifted.1,
        };
        if handler.render_report(out, &view).is_err() {
            out.push_str(&format!("{}: {}\n", source.display, problem.message));
        }
    }
    if let Some(rest) = problems.get(MAX_DRAWN..).filter(|r| !r.is_empty()) {
        let errors = rest.iter().filter(|p| p.is_error()).count();
        let warnings = rest.len() - errors;
        out.push_str(&format!(
            "… and {} more problem{} in {} ({errors} error{}, {warnings} warning{}); `bgflow plan --json` lists them all\n\n",
            rest.len(),
            plural(rest.len()),
            source.display,
            plural(errors),
            plural(warnings),
        ));
    }
}

/// A problem with its places made local to the file at `base`; places in other files come
/// apart, each drawn as a note in its own file.
fn problem_in(p: &Problem, all: &SourceFile, base: usize) -> (Problem, Vec<Elsewhere>) {
    let local = |s: &Range<usize>| s.start - base..s.end - base;
    let mut shown = Problem {
        span: p.span.as_ref().map(local),
        related: Vec::new(),
        ..p.clone()
    };
    let mut elsewhere = Vec::new();
    for (span, label) in &p.related {
        let (b, file) = all.file_at(span.start);
        if b == base {
            shown.related.push((local(span), label.clone()));
        } else {
            elsewhere.push(Elsewhere {
                source: NamedSource::new(&file.display, file.text.clone()).with_language("toml"),
                span: span.start - b..span.end - b,
                label: label.clone(),
            });
        }
    }
    (shown, elsewhere)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// At most `max` names, then how many more: for help lines that would otherwise list every
/// step of a 10,000-step workflow under each of its problems.
pub fn some_names<'a>(names: impl IntoIterator<Item = &'a str>, max: usize) -> String {
    let mut out = String::new();
    let mut more = 0;
    for (i, name) in names.into_iter().enumerate() {
        if i < max {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(name);
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push_str(&format!(" … and {more} more"));
    }
    out
}

/// A `Problem` seen through miette's `Diagnostic` trait.
struct View<'a> {
    problem: &'a Problem,
    source: &'a NamedSource<String>,
    /// Places of the problem in other files, drawn after it.
    elsewhere: Vec<Elsewhere>,
}

/// A place of a problem in another file than its own (a name defined in two files).
struct Elsewhere {
    source: NamedSource<String>,
    span: Range<usize>,
    label: String,
}

impl fmt::Debug for Elsewhere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl fmt::Display for Elsewhere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl std::error::Error for Elsewhere {}

impl miette::Diagnostic for Elsewhere {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(std::iter::once(
            LabeledSpan::new_primary_with_span(Some(self.label.clone()), self.span.clone()),
        )))
    }
}

impl fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl fmt::Display for View<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem.message)
    }
}

impl std::error::Error for View<'_> {}

impl miette::Diagnostic for View<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.problem.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.problem
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.problem
            .span
            .as_ref()
            .map(|_| self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.problem.span.clone()?;
        let primary = LabeledSpan::new_primary_with_span(
            (!self.problem.label.is_empty()).then(|| self.problem.label.clone()),
            span,
        );
        let related = self
            .problem
            .related
            .iter()
            .take(MAX_RELATED)
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), span.clone()));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.elsewhere.is_empty() {
            return None;
        }
        Some(Box::new(
            self.elsewhere.iter().map(|e| e as &dyn miette::Diagnostic),
        ))
    }
}

/// The JSON form of a problem (docs/json-output.md).
#[derive(Debug, Serialize)]
pub struct ProblemJson {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    /// The file the problem is in: the workflow's own file or a file it includes.
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub label: Option<String>,
    pub help: Option<String>,
    /// The problem's other places (the first definition of a duplicate, the other step of a
    /// clash, each edge of a cycle), each with its own file, line, column and label.
    pub related: Vec<PlaceJson>,
}

/// A further place of a problem, for `ProblemJson::related`.
#[derive(Debug, Serialize)]
pub struct PlaceJson {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub label: String,
}

impl ProblemJson {
    pub fn new(source: &SourceFile, p: &Problem) -> Self {
        let (file, line, column) = match &p.span {
            Some(span) => {
                let (file, local) = source.locate(span);
                let (l, c) = file.line_col(local.start);
                (file, Some(l), Some(c))
            }
            None => (source, None, None),
        };
        let related = p
            .related
            .iter()
            .map(|(span, label)| {
                let (f, local) = source.locate(span);
                let (line, column) = f.line_col(local.start);
                PlaceJson {
                    file: f.display.clone(),
                    line,
                    column,
                    label: label.clone(),
                }
            })
            .collect();
        Self {
            severity: p.severity,
            code: p.code,
            message: p.message.clone(),
            file: file.display.clone(),
            line,
            column,
            label: (!p.label.is_empty()).then(|| p.label.clone()),
            help: p.help.clone(),
            related,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars() {
        let s = SourceFile::new(Path::new("f.toml"), "ab\nçd = 1\n".into());
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(3), (2, 1));
        assert_eq!(s.line_col(6), (2, 3));
        assert_eq!(s.line_col(11), (3, 1));
        assert_eq!(s.line_col(99), (3, 1));
        // Inside a character: its start.
        assert_eq!(s.line_col(4), (2, 1));
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("timout", ["timeout", "tags"]), Some("timeout"));
        assert_eq!(did_you_mean("zzz", ["timeout", "tags"]), None);
    }
}
