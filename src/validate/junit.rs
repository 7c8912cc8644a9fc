//! Guarantee 10, "a report is read only by the step that wrote it": two test steps whose
//! `junit` patterns can match the same file, and that may run at the same time, are a
//! `shared-junit` error. At run time a step reads only the reports its attempt wrote
//! (`exec/junit/`), which keeps apart steps that run one after the other; two that run at
//! once would each read the other's report as its own, so `plan` refuses them.
//!
//! Why an error and not a folder of reports per step: the path is in the step's own command
//! (`pytest --junitxml=reports/junit.xml`), which bgflow does not rewrite, and a folder that
//! bgflow chose would need every command changed to use it. The fix the error asks for is a
//! file name per step, or a `needs` between them.
//!
//! Bounded: identical patterns are equal strings; other pairs are first compared by their
//! literal start and end, and only then by a walk of both patterns at once (`overlap`,
//! linear in the product of their lengths). Each step is reported once, with the first step
//! it clashes with. Measured (release build, `plan --offline --json`, 10,000 test steps):
//! 0.69 s and 40 MB when all share `reports/*.xml` in a `needs` chain (every pair compared),
//! 1.20 s and 34 MB with a glob each (`reports/t{i}-*.xml`), against 0.13 s and 31 MB for
//! the same steps without `junit`. 10,000 steps that all clash are 9,999 diagnostics, whose
//! drawing (`diag`) is what costs then.

use std::ops::Range;

use super::{Cx, Step};
use crate::diag::Problem;
use crate::manifest::StepKind;
use crate::plan::artifacts::normalize;
use crate::plan::Plan;

/// Reports each test step that may run at the same time as an earlier one reading reports
/// the same pattern can match.
pub(super) fn shared_reports(cx: &mut Cx<'_, '_>, steps: &[Step], plan: &Plan) {
    let readers: Vec<(usize, Pattern)> = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind() == StepKind::Test)
        .filter_map(|(i, s)| Some((i, Pattern::new(s.more().junit.as_deref()?))))
        .collect();
    if readers.len() < 2 {
        return;
    }
    // A cycle is an error of its own, and leaves no order to follow.
    if !plan.acyclic {
        return;
    }
    let doc = cx.doc;
    let reach = Reach::new(plan, steps.len(), readers.iter().map(|(i, _)| *i));
    for (k, (j, pj)) in readers.iter().enumerate() {
        for (r, (i, pi)) in readers[..k].iter().enumerate() {
            if !pi.overlaps(pj) || reach.ordered(r, *i, k, *j) {
                continue;
            }
            let (first, second) = (&steps[*i].name, &steps[*j].name);
            let span =
                |name: &str| -> Option<Range<usize>> { doc.value_span(&["steps", name, "junit"]) };
            let what = if pi.text == pj.text {
                format!("both read JUnit reports matching `{}`", pi.text)
            } else {
                format!(
                    "read JUnit reports through patterns that can match the same file (`{}` \
                     and `{}`)",
                    pi.text, pj.text
                )
            };
            let mut p = Problem::error(
                "shared-junit",
                format!(
                    "steps `{first}` and `{second}` may run at the same time and {what}: each \
                     would count the other's tests as its own"
                ),
            )
            .at_opt(span(second), format!("read by `{second}`"))
            .help(format!(
                "give each step a report file the other's pattern cannot match (e.g. \
                 `--junitxml=reports/{first}.xml` with `junit = \"reports/{first}.xml\"`, and \
                 the same for `{second}`), or add `needs = [\"{first}\"]` to `{second}`"
            ));
            if let Some(s) = span(first) {
                p = p.also(s, format!("also read by `{first}`"));
            }
            cx.push(p);
            break;
        }
    }
}

/// For each step, the readers it runs after (and itself, if it is one): a bit set over the
/// readers, filled in the plan's order. `steps × readers / 8` bytes: 12.5 MB in the worst
/// case of 10,000 steps that all read reports, 80 KB for 10,000 steps with a few.
struct Reach {
    words: usize,
    bits: Vec<u64>,
}

impl Reach {
    fn new(plan: &Plan, steps: usize, readers: impl Iterator<Item = usize>) -> Self {
        let mut reader_of = vec![usize::MAX; steps];
        let mut count = 0;
        for (r, s) in readers.enumerate() {
            reader_of[s] = r;
            count = r + 1;
        }
        let words = count.div_ceil(64);
        let mut bits = vec![0u64; steps * words];
        for &s in &plan.order {
            for &u in &plan.upstream[s] {
                for w in 0..words {
                    bits[s * words + w] |= bits[u * words + w];
                }
            }
            if let Some(r) = reader_of.get(s).copied().filter(|r| *r != usize::MAX) {
                bits[s * words + r / 64] |= 1 << (r % 64);
            }
        }
        Self { words, bits }
    }

    /// Whether reader `a` (step `sa`) and reader `b` (step `sb`) run one after the other.
    fn ordered(&self, a: usize, sa: usize, b: usize, sb: usize) -> bool {
        let has = |s: usize, r: usize| self.bits[s * self.words + r / 64] & (1 << (r % 64)) != 0;
        has(sb, a) || has(sa, b)
    }
}

/// A `junit` pattern, normalised, with what can be compared cheaply.
struct Pattern {
    text: String,
    norm: String,
    /// The text before the first wildcard and after the last one (all of it when literal).
    head: String,
    tail: String,
}

impl Pattern {
    fn new(text: &str) -> Self {
        let norm = normalize(text);
        let wild = |c: char| matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | ',' | '\\');
        let head = norm[..norm.find(wild).unwrap_or(norm.len())].to_owned();
        let tail = norm[norm.rfind(wild).map_or(0, |i| i + 1)..].to_owned();
        Self {
            text: text.to_owned(),
            norm,
            head,
            tail,
        }
    }

    fn overlaps(&self, other: &Self) -> bool {
        if self.norm == other.norm {
            return true;
        }
        let heads = self.head.starts_with(&other.head) || other.head.starts_with(&self.head);
        let tails = self.tail.ends_with(&other.tail) || other.tail.ends_with(&self.tail);
        heads && tails && overlap(&self.norm, &other.norm)
    }
}

/// One piece of a glob, as far as matching the same path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?` or a `[...]` class: one character but `/` (a class is taken as any such
    /// character, so two patterns may be found to overlap when their classes do not).
    One,
    /// `*`: any characters but `/`.
    Star,
    /// `**`: any characters, `/` too.
    Deep,
}

/// At most this many patterns from expanding `{a,b}` alternatives; past it, a group is
/// taken as `**` (may match more, never less).
const MAX_ALTERNATIVES: usize = 64;

/// Whether some path matches both globs (normalised, `*` not crossing `/`). It may say yes
/// for two patterns that share no path (see `Tok::One`, `MAX_ALTERNATIVES`), never no for
/// two that do.
fn overlap(a: &str, b: &str) -> bool {
    let (xs, ys) = (expand(a), expand(b));
    xs.iter()
        .any(|x| ys.iter().any(|y| intersect(&tokens(x), &tokens(y))))
}

/// The patterns a `{a,b}` group stands for.
fn expand(p: &str) -> Vec<String> {
    let mut out = vec![p.to_owned()];
    let mut done = Vec::new();
    while let Some(p) = out.pop() {
        let Some((open, close)) = group(&p) else {
            done.push(p);
            continue;
        };
        let body = &p[open + 1..close];
        let mut alternatives = Vec::new();
        let (mut depth, mut start) = (0, 0);
        let bytes = body.as_bytes();
        let mut k = 0;
        while k < bytes.len() {
            match bytes[k] {
                b'\\' => k += 1,
                b'{' => depth += 1,
                b'}' => depth -= 1,
                b',' if depth == 0 => {
                    alternatives.push(&body[start..k]);
                    start = k + 1;
                }
                _ => {}
            }
            k += 1;
        }
        alternatives.push(&body[start..]);
        if done.len() + out.len() + alternatives.len() > MAX_ALTERNATIVES {
            done.push(format!("{}**{}", &p[..open], &p[close + 1..]));
            continue;
        }
        for alt in alternatives {
            out.push(format!("{}{alt}{}", &p[..open], &p[close + 1..]));
        }
    }
    done
}

/// The first `{...}` group (byte offsets of its braces), nested groups inside it.
fn group(p: &str) -> Option<(usize, usize)> {
    let bytes = p.as_bytes();
    let (mut open, mut depth, mut k) = (None, 0, 0);
    while k < bytes.len() {
        match bytes[k] {
            b'\\' => k += 1,
            b'{' => {
                if depth == 0 {
                    open = Some(k);
                }
                depth += 1;
            }
            b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return open.map(|o| (o, k));
                }
            }
            _ => {}
        }
        k += 1;
    }
    None
}

fn tokens(p: &str) -> Vec<Tok> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut k = 0;
    while k < chars.len() {
        match chars[k] {
            '\\' if k + 1 < chars.len() => {
                out.push(Tok::Lit(chars[k + 1]));
                k += 1;
            }
            '*' if chars.get(k + 1) == Some(&'*') => {
                out.push(Tok::Deep);
                k += 1;
                // `**/` also matches no folder at all: `a/**/b` matches `a/b`.
                if chars.get(k + 1) == Some(&'/') {
                    k += 1;
                }
            }
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::One),
            '[' => {
                // To the closing `]`; a `]` right after `[` or `[!` is part of the class.
                let mut end = k + 1;
                if matches!(chars.get(end), Some('!' | '^')) {
                    end += 1;
                }
                if chars.get(end) == Some(&']') {
                    end += 1;
                }
                while end < chars.len() && chars[end] != ']' {
                    end += 1;
                }
                out.push(Tok::One);
                k = end;
            }
            c => out.push(Tok::Lit(c)),
        }
        k += 1;
    }
    out
}

/// Whether two token lists match a common string: a search over pairs of positions.
fn intersect(a: &[Tok], b: &[Tok]) -> bool {
    let width = b.len() + 1;
    let mut seen = vec![false; (a.len() + 1) * width];
    let mut stack = vec![(0, 0)];
    while let Some((i, j)) = stack.pop() {
        if std::mem::replace(&mut seen[i * width + j], true) {
            continue;
        }
        if i == a.len() && j == b.len() {
            return true;
        }
        let (ta, tb) = (a.get(i).copied(), b.get(j).copied());
        // A star may match nothing.
        if matches!(ta, Some(Tok::Star | Tok::Deep)) {
            stack.push((i + 1, j));
        }
        if matches!(tb, Some(Tok::Star | Tok::Deep)) {
            stack.push((i, j + 1));
        }
        let (Some(ta), Some(tb)) = (ta, tb) else {
            continue;
        };
        if !share_a_char(ta, tb) {
            continue;
        }
        let next = |t: Tok, k: usize| match t {
            Tok::Star | Tok::Deep => k,
            _ => k + 1,
        };
        stack.push((next(ta, i), next(tb, j)));
    }
    false
}

fn share_a_char(a: Tok, b: Tok) -> bool {
    match (a, b) {
        (Tok::Lit(x), Tok::Lit(y)) => x == y,
        (Tok::Lit(c), Tok::One | Tok::Star) | (Tok::One | Tok::Star, Tok::Lit(c)) => c != '/',
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlaps(a: &str, b: &str) -> bool {
        Pattern::new(a).overlaps(&Pattern::new(b))
    }

    #[test]
    fn patterns_that_can_match_one_file_overlap() {
        assert!(overlaps("reports/*.xml", "reports/*.xml"));
        assert!(overlaps("./reports/*.xml", "reports/junit.xml"));
        assert!(overlaps("reports/*.xml", "reports/unit-*.xml"));
        assert!(overlaps("reports/**/*.xml", "reports/a/b/junit.xml"));
        assert!(overlaps("reports/**/*.xml", "reports/junit.xml"));
        assert!(overlaps("**/*.xml", "out/reports/junit.xml"));
        assert!(overlaps("reports/{unit,e2e}.xml", "reports/e2e.xml"));
        assert!(overlaps("reports/junit-?.xml", "reports/junit-[0-9].xml"));
    }

    #[test]
    fn patterns_that_cannot_match_one_file_do_not() {
        assert!(!overlaps("reports/unit.xml", "reports/e2e.xml"));
        assert!(!overlaps("reports/unit-*.xml", "reports/e2e-*.xml"));
        assert!(!overlaps("reports/*.xml", "reports/sub/junit.xml"));
        assert!(!overlaps("unit/*.xml", "e2e/*.xml"));
        assert!(!overlaps("reports/*.xml", "reports/*.json"));
        assert!(!overlaps("reports/{unit,int}.xml", "reports/e2e.xml"));
        assert!(!overlaps("a*b", "a*c"));
    }

    #[test]
    fn many_alternatives_are_bounded() {
        let many: Vec<String> = (0..100).map(|i| format!("r{i}")).collect();
        let p = format!("reports/{{{}}}.xml", many.join(","));
        assert!(expand(&p).len() <= MAX_ALTERNATIVES);
        assert!(overlaps(&p, "reports/r99.xml"));
    }
}
