//! Parsing a large workflow file on several threads.
//!
//! TOML is read in one sequential pass, and on a 10,000-step file that pass is the largest
//! part of `bgflow plan`'s time. A large file is cut into chunks just before `[steps.` header
//! lines; the chunks are parsed at once, each on its own thread, and their trees joined.
//! Every chunk after the first is parsed with the text before it blanked to spaces, so each
//! span in its tree is already a span of the whole file.
//!
//! The join must give exactly the tree (and the verdict) of parsing the file whole, or not be
//! used. Parsing whole is the fallback whenever any of these does not hold:
//! - every chunk parses without an error (then the cuts lie outside any string or array: a
//!   chunk cut inside one ends unterminated, which is an error);
//! - every header line of the later chunks starts with `[steps.` or `[[steps.`, so the only
//!   top-level key they touch is `steps`, and never as `[steps]` itself (a second definition);
//! - in the first chunk, `steps` (if there) is a table made by a header line, not an inline
//!   table or dotted key at the top level, which a later `[steps.x]` may not extend;
//! - no step name is in two chunks (that is a duplicate table in the whole file).
//!
//! Each rule is a sufficient condition only: a line inside a multi-line string that looks like
//! a header (a shell script's `[ -f x ]`) just means the file is parsed whole.

use std::sync::OnceLock;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Below this size a file is parsed whole: threads would not pay for themselves.
const MIN_SPLIT_BYTES: usize = 256 * 1024;
/// Each chunk is at least this large.
const MIN_CHUNK_BYTES: usize = 128 * 1024;
const MAX_CHUNKS: usize = 8;

/// Parses `text` like `DeTable::parse_recoverable`, on several threads when it is large.
/// `scratch` keeps the padded chunk texts alive as long as the tree borrows from them.
pub fn parse<'s>(
    text: &'s str,
    scratch: &'s OnceLock<Vec<String>>,
) -> (Spanned<DeTable<'s>>, Vec<toml::de::Error>) {
    let threads = crate::par::threads();
    let chunks = threads
        .min(MAX_CHUNKS)
        .min(text.len() / MIN_CHUNK_BYTES)
        .max(1);
    if text.len() < MIN_SPLIT_BYTES || chunks < 2 {
        return DeTable::parse_recoverable(text);
    }
    let cuts = cut_points(text, chunks);
    // `[0, len]`: no step header to cut before.
    if cuts.len() < 3 || !later_headers_are_steps(text, &cuts) {
        return DeTable::parse_recoverable(text);
    }
    let padded = scratch.get_or_init(|| {
        cuts.windows(2)
            .skip(1)
            .map(|w| {
                let mut s = String::with_capacity(w[1]);
                s.extend(std::iter::repeat_n(' ', w[0]));
                s.push_str(&text[w[0]..w[1]]);
                s
            })
            .collect()
    });
    if padded.len() != cuts.len() - 2 {
        // A scratch filled by an earlier call with other cuts (the same text gives the same cuts).
        return DeTable::parse_recoverable(text);
    }
    match parse_chunks(&text[..cuts[1]], padded) {
        Some(parts) => match join(text, parts) {
            Some(root) => (root, Vec::new()),
            None => DeTable::parse_recoverable(text),
        },
        None => DeTable::parse_recoverable(text),
    }
}

/// Chunk boundaries: `0`, the start of a `[steps.` line near each even share, and the end.
fn cut_points(text: &str, chunks: usize) -> Vec<usize> {
    let mut cuts = vec![0];
    for k in 1..chunks {
        let mut from = (*cuts.last().unwrap_or(&0)).max(text.len() * k / chunks);
        // An even share can end inside a multi-byte character; search from the next one.
        while !text.is_char_boundary(from) {
            from += 1;
        }
        let Some(found) = text[from..].find("\n[steps.") else {
            break;
        };
        // After the newline, so past `from` and before the end.
        cuts.push(from + found + 1);
    }
    cuts.push(text.len());
    cuts
}

/// Whether every line of the later chunks that starts with `[` is a `[steps.` header.
fn later_headers_are_steps(text: &str, cuts: &[usize]) -> bool {
    text[cuts[1]..].lines().all(|line| {
        let line = line.trim_start();
        !line.starts_with('[') || line.starts_with("[steps.") || line.starts_with("[[steps.")
    })
}

/// Parses the chunks at once, one per core (`par::map_runs`); `None` when any has an error.
fn parse_chunks<'s>(first: &'s str, rest: &'s [String]) -> Option<Vec<Spanned<DeTable<'s>>>> {
    let mut chunks: Vec<&'s str> = std::iter::once(first)
        .chain(rest.iter().map(String::as_str))
        .collect();
    let parsed = crate::par::map_runs(&mut chunks, 1, |run| {
        run.iter()
            .map(|chunk| DeTable::parse_recoverable(chunk))
            .collect::<Vec<_>>()
    });
    parsed
        .into_iter()
        .flatten()
        .map(|(root, errors)| errors.is_empty().then_some(root))
        .collect()
}

/// Joins the chunk trees under the first one's `steps`; `None` where that could differ from
/// parsing the whole file (see the module notes).
fn join<'s>(text: &str, parts: Vec<Spanned<DeTable<'s>>>) -> Option<Spanned<DeTable<'s>>> {
    let mut parts = parts.into_iter();
    let first = parts.next()?;
    // The root's own span is what parsing whole gives it (toml leaves it empty).
    let root_span = first.span();
    let mut root = first.into_inner();
    if let Some((key, value)) = root.get_key_value("steps") {
        if !made_by_header(text, key.span().start) || value.get_ref().as_table().is_none() {
            return None;
        }
    }
    for part in parts {
        let mut part = part.into_inner();
        if part.len() != 1 {
            return None;
        }
        let (key, value) = part.remove_entry("steps")?;
        let span = value.span();
        let DeValue::Table(more) = value.into_inner() else {
            return None;
        };
        match root.get_mut("steps").map(Spanned::get_mut) {
            Some(DeValue::Table(steps)) => {
                for (name, step) in more {
                    if steps.insert(name, step).is_some() {
                        return None;
                    }
                }
            }
            Some(_) => return None,
            None => {
                root.insert(key, Spanned::new(span, DeValue::Table(more)));
            }
        }
    }
    Some(Spanned::new(root_span, root))
}

/// Whether the line holding byte `at` is a table header (its first non-blank character is `[`).
fn made_by_header(text: &str, at: usize) -> bool {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at].trim_start().starts_with('[')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A workflow of `n` steps, large enough to be split.
    fn big(n: usize, head: &str) -> String {
        let mut s = format!("{head}[workflow]\nname = \"big\"\n\n");
        for i in 0..n {
            s.push_str(&format!(
                "[steps.s{i}]\nrun = \"touch out/{i}.txt # {}\"\noutputs = [\"out/{i}.txt\"]\n\n",
                "x".repeat(40)
            ));
        }
        s
    }

    fn parsed(text: &str) -> (String, usize) {
        let scratch = OnceLock::new();
        let (root, errors) = parse(text, &scratch);
        (format!("{root:?}"), errors.len())
    }

    /// Compares two long renderings, showing only where they part.
    fn same(got: &str, want: &str) {
        if let Some(at) = got.bytes().zip(want.bytes()).position(|(a, b)| a != b) {
            let from = at.saturating_sub(150);
            panic!(
                "trees differ at byte {at}:\n got: {}\nwant: {}",
                &got[from..(at + 150).min(got.len())],
                &want[from..(at + 150).min(want.len())]
            );
        }
        assert_eq!(got.len(), want.len(), "one tree is a prefix of the other");
    }

    fn whole(text: &str) -> (String, usize) {
        let (root, errors) = DeTable::parse_recoverable(text);
        (format!("{root:?}"), errors.len())
    }

    #[test]
    fn a_large_file_is_cut_before_step_headers() {
        let text = big(6000, "");
        assert!(text.len() > MIN_SPLIT_BYTES);
        let cuts = cut_points(&text, 2);
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        assert!(text[cuts[1]..].starts_with("[steps."));
    }

    #[test]
    fn a_share_ending_inside_a_multi_byte_character_still_gets_its_cut() {
        // Mostly two-byte characters, so an even share can end in the middle of one.
        let text: String = (0..4000)
            .map(|i| format!("[steps.s{i}]\nrun = \"echo {}\"\n\n", "é".repeat(i % 7 + 1)))
            .collect();
        for chunks in 2..=MAX_CHUNKS {
            let inside = (1..chunks).any(|k| !text.is_char_boundary(text.len() * k / chunks));
            let cuts = cut_points(&text, chunks);
            assert_eq!(
                cuts.len(),
                chunks + 1,
                "{chunks} chunks (a share mid-character: {inside}): {cuts:?}"
            );
            assert!(cuts[1..chunks]
                .iter()
                .all(|&c| text[c..].starts_with("[steps.")));
        }
    }

    #[test]
    fn the_joined_tree_equals_the_whole_file_tree() {
        let text = big(6000, "");
        let scratch = OnceLock::new();
        let (root, errors) = parse(&text, &scratch);
        assert!(errors.is_empty());
        if crate::par::threads() > 1 {
            assert!(
                scratch.get().is_some(),
                "a large file on several cores is split"
            );
        }
        same(&format!("{root:?}"), &whole(&text).0);
        let steps = root
            .get_ref()
            .get("steps")
            .unwrap()
            .get_ref()
            .as_table()
            .unwrap();
        assert_eq!(steps.len(), 6000);
        let names: Vec<&str> = steps.keys().map(|k| k.get_ref().as_ref()).collect();
        assert_eq!(names[5999], "s5999", "declaration order is kept");
    }

    #[test]
    fn a_step_defined_twice_across_chunks_is_an_error_as_in_the_whole_file() {
        let mut text = big(6000, "");
        text.push_str("[steps.s1]\nrun = \"again\"\n");
        let (_, errors) = parsed(&text);
        assert_eq!(errors, whole(&text).1);
        assert!(errors > 0, "a table defined twice is a TOML error");
    }

    #[test]
    fn steps_as_an_inline_table_cannot_be_extended_by_a_later_chunk() {
        let text = big(6000, "steps = { first = { run = \"x\" } }\n");
        assert_eq!(parsed(&text).1, whole(&text).1);
        assert!(whole(&text).1 > 0);
    }

    #[test]
    fn a_second_steps_header_in_a_later_chunk_is_an_error_as_in_the_whole_file() {
        let mut text = big(6000, "");
        text = text.replacen("[steps.s0]", "[steps]\n[steps.s0]", 1);
        text.push_str("[steps]\n");
        assert_eq!(parsed(&text).1, whole(&text).1);
        assert!(whole(&text).1 > 0);
    }

    #[test]
    fn syntax_errors_are_those_of_the_whole_file() {
        let mut text = big(6000, "");
        text.push_str("[steps.bad]\nrun = \"unterminated\n");
        let (root, errors) = parsed(&text);
        let (whole_root, whole_errors) = whole(&text);
        assert_eq!(errors, whole_errors);
        assert!(errors > 0);
        same(&root, &whole_root);
    }

    #[test]
    fn a_header_like_line_in_a_string_makes_the_file_be_parsed_whole() {
        let text = big(6000, "").replacen(
            "[steps.s5000]\nrun = \"",
            "[steps.s5000]\nrun = \"\"\"\n[ -f x ] && \"\"\"\nx = \"",
            1,
        );
        let (root, errors) = parsed(&text);
        let (whole_root, whole_errors) = whole(&text);
        assert_eq!(errors, whole_errors);
        same(&root, &whole_root);
    }
}
