//! Reading a large workflow file in chunks.
//!
//! TOML is read in one sequential pass that first turns the whole text into a vector of
//! tokens, then into a tree: on a 10,000-step file (900 KB) the tokens alone took 13.7 MB and
//! the tree 15 MB, most of `bgflow run`'s peak memory, and the pass was the largest part of
//! `bgflow plan`'s time. A large file is cut into chunks of about 128 KB just before
//! `[steps.` header lines. Each chunk is parsed on its own, its steps read into their typed
//! form, and its tree dropped before the next chunk of that thread is parsed (`load`); the
//! chunks are spread over every core (one core in `bgflow run`).
//!
//! Reading the chunks must give exactly what reading the whole file gives, or not be used.
//! The whole file is read instead whenever any of these does not hold:
//! - every chunk parses without an error (then the cuts lie outside any string or array: a
//!   chunk cut inside one ends unterminated, which is an error);
//! - every header line of the later chunks starts with `[steps.` or `[[steps.`, so the only
//!   top-level key they touch is `steps`, and never as `[steps]` itself (a second definition);
//! - in the first chunk, `steps` (if there) is a table made by a header line, not an inline
//!   table or dotted key at the top level, which a later `[steps.x]` may not extend;
//! - no step name is in two chunks (that is a duplicate table in the whole file).
//!
//! Each rule is a sufficient condition only: a line inside a multi-line string that looks like
//! a header (a shell script's `[ -f x ]`) just means the file is read whole.

/// Below this size a file is read whole.
pub const MIN_SPLIT_BYTES: usize = 256 * 1024;
/// Each chunk is at least this large.
const MIN_CHUNK_BYTES: usize = 128 * 1024;

/// Where to cut `text`: `0`, the start of a `[steps.` line near each even share, and the
/// end; `None` when the file is to be read whole (small, or a later header not a step's).
pub fn cuts(text: &str) -> Option<Vec<usize>> {
    let chunks = text.len() / MIN_CHUNK_BYTES;
    if text.len() < MIN_SPLIT_BYTES || chunks < 2 {
        return None;
    }
    let cuts = cut_points(text, chunks);
    // `[0, len]`: no step header to cut before.
    (cuts.len() >= 3 && later_headers_are_steps(text, &cuts)).then_some(cuts)
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

/// Whether the line holding byte `at` is a table header (its first non-blank character is `[`).
pub fn made_by_header(text: &str, at: usize) -> bool {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..at].trim_start().starts_with('[')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::load::{read, Loaded};
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

    /// What a read gives, in a form to compare: the manifest, each step, each problem.
    fn shown(r: &Loaded) -> String {
        let mut out = format!("{:?}\nname written: {}\n", r.manifest, r.name_written);
        for step in r.all_steps() {
            out.push_str(&format!("{} {} {:?}\n", step.name, step.broken, step.spec));
        }
        for p in &r.problems {
            out.push_str(&format!(
                "{} {} {:?} {} {:?} {:?}\n",
                p.code, p.message, p.span, p.label, p.help, p.related
            ));
        }
        out
    }

    /// Reads `text` in chunks (when it can be) and whole; both must agree. Returns the
    /// chunked read and whether it was really read in chunks.
    fn both(text: &str) -> (Loaded, bool) {
        let chunked = read(text, true);
        let whole = read(text, false);
        let (a, b) = (shown(&chunked.0), shown(&whole.0));
        if let Some(at) = a.bytes().zip(b.bytes()).position(|(x, y)| x != y) {
            let from = at.saturating_sub(150);
            panic!(
                "reads differ at byte {at}:\nchunks: {}\n whole: {}",
                &a[from..(at + 150).min(a.len())],
                &b[from..(at + 150).min(b.len())]
            );
        }
        assert_eq!(a.len(), b.len(), "one read is a prefix of the other");
        assert!(!whole.1, "read(.., false) reads whole");
        chunked
    }

    #[test]
    fn a_large_file_is_cut_before_step_headers() {
        let text = big(6000, "");
        assert!(text.len() > MIN_SPLIT_BYTES);
        let cuts = cuts(&text).unwrap();
        assert!(cuts.len() > 3, "{cuts:?}");
        assert!(cuts[1..cuts.len() - 1]
            .iter()
            .all(|&c| text[c..].starts_with("[steps.")));
    }

    #[test]
    fn a_share_ending_inside_a_multi_byte_character_still_gets_its_cut() {
        // Mostly two-byte characters, so an even share can end in the middle of one.
        let text: String = (0..4000)
            .map(|i| format!("[steps.s{i}]\nrun = \"echo {}\"\n\n", "é".repeat(i % 7 + 1)))
            .collect();
        for chunks in 2..=8 {
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
    fn reading_in_chunks_equals_reading_whole() {
        let text = big(6000, "[vars]\nx = \"1\"\n\n");
        let (r, chunked) = both(&text);
        assert!(chunked, "a large, plain file is read in chunks");
        assert!(r.problems.is_empty());
        assert_eq!(r.all_steps().count(), 6000);
        assert_eq!(
            r.all_steps().nth(5999).map(|s| s.name.as_str()),
            Some("s5999"),
            "declaration order is kept"
        );
    }

    #[test]
    fn problems_in_later_chunks_point_into_the_whole_file() {
        // An unknown key and a value of the wrong type near the end of the file.
        let text = big(6000, "").replacen(
            "[steps.s5900]\n",
            "[steps.s5900]\nbogus = 1\ntimeout = 3\n",
            1,
        );
        let (r, chunked) = both(&text);
        assert!(chunked);
        let at = text.find("bogus").unwrap();
        let unknown = r.problems.iter().find(|p| p.code == "unknown-key").unwrap();
        assert_eq!(unknown.span, Some(at..at + "bogus".len()));
        assert!(r.problems.iter().any(|p| p.code == "wrong-type"));
    }

    #[test]
    fn a_step_defined_twice_across_chunks_is_read_whole() {
        let mut text = big(6000, "");
        text.push_str("[steps.s1]\nrun = \"again\"\n");
        let (r, chunked) = both(&text);
        assert!(!chunked);
        assert!(r.problems.iter().any(|p| p.code == "syntax"));
    }

    #[test]
    fn steps_as_an_inline_table_cannot_be_extended_by_a_later_chunk() {
        let text = big(6000, "steps = { first = { run = \"x\" } }\n");
        let (r, chunked) = both(&text);
        assert!(!chunked);
        assert!(r.problems.iter().any(|p| p.code == "syntax"));
    }

    #[test]
    fn a_second_steps_header_in_a_later_chunk_is_read_whole() {
        let mut text = big(6000, "");
        text = text.replacen("[steps.s0]", "[steps]\n[steps.s0]", 1);
        text.push_str("[steps]\n");
        let (r, chunked) = both(&text);
        assert!(!chunked);
        assert!(r.problems.iter().any(|p| p.code == "syntax"));
    }

    #[test]
    fn syntax_errors_are_those_of_the_whole_file() {
        let mut text = big(6000, "");
        text.push_str("[steps.bad]\nrun = \"unterminated\n");
        let (r, chunked) = both(&text);
        assert!(!chunked);
        assert!(r.problems.iter().any(|p| p.code == "syntax"));
    }

    #[test]
    fn a_header_like_line_in_a_string_makes_the_file_be_read_whole() {
        let text = big(6000, "").replacen(
            "[steps.s5000]\nrun = \"",
            "[steps.s5000]\nrun = \"\"\"\n[ -f x ] && \"\"\"\nx = \"",
            1,
        );
        assert!(cuts(&text).is_none());
        let (r, chunked) = both(&text);
        assert!(!chunked);
        assert!(r.problems.iter().any(|p| p.code == "unknown-key"));
    }
}
