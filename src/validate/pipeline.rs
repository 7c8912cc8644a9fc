//! A pipeline in a string `run` under `sh` (`pipe-status`): `sh` takes a pipeline's exit
//! status from its last command, so in `cargo build --release 2>&1 | tee build.log` a failed
//! build is a step that succeeded. `shell = "bash"` runs it under `bash -eo pipefail`.
//! Found in the text as written, outside quotes, comments and template tags (`{{ x | f }}`
//! is a filter), by a scan that is linear in the text.

use std::ops::Range;

/// Where the first pipe `|` (not `||`) of `script` is, outside quotes, comments,
/// `{{ }}`, `{% %}` or `{# #}`, and the patterns of a `case` (`a|b)`).
pub(super) fn first_pipe(script: &str) -> Option<Range<usize>> {
    let b = script.as_bytes();
    let mut case = Case::default();
    let mut i = 0;
    while i < b.len() {
        if let Some(len) = case.word(b, i) {
            i += len;
            continue;
        }
        match b[i] {
            // In a `case` pattern, `|` parts the patterns and `)` ends them.
            b'|' if case.in_pattern => i += 1,
            b')' if case.in_pattern => {
                case.in_pattern = false;
                i += 1;
            }
            // `;;`, and bash's `;&` and `;;&`: the next item's patterns follow.
            b';' if case.open > 0 && matches!(b.get(i + 1), Some(b';' | b'&')) => {
                case.in_pattern = true;
                i += 2;
            }
            b'\\' => i += 2,
            b'\'' => i = after(b, i + 1, b"'"),
            b'"' => {
                // Up to the closing quote; a backslash escapes the next byte.
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' if matches!(b.get(i + 1), Some(b'{')) => i = after(b, i + 2, b"}}"),
            b'{' if matches!(b.get(i + 1), Some(b'%')) => i = after(b, i + 2, b"%}"),
            b'{' if matches!(b.get(i + 1), Some(b'#')) => i = after(b, i + 2, b"#}"),
            b'#' if i == 0 || b[i - 1].is_ascii_whitespace() => i = after(b, i, b"\n"),
            b'|' if b.get(i + 1) == Some(&b'|') => i += 2,
            // `>|`: a redirection that overrides noclobber, not a pipe.
            b'|' if i > 0 && b[i - 1] == b'>' => i += 1,
            b'|' => return Some(i..i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Where the scan is among `case WORD in PATTERN) … ;; … esac`, which may nest.
#[derive(Default)]
struct Case {
    /// `case`s not yet closed by `esac`.
    open: usize,
    /// After `case`, before its `in`.
    awaiting_in: bool,
    /// Between `in` (or `;;`) and the `)` that ends a pattern list.
    in_pattern: bool,
}

impl Case {
    /// At a word `case`, `in` (after `case`) or `esac` starting at `i`: notes it and returns
    /// its length.
    fn word(&mut self, b: &[u8], i: usize) -> Option<usize> {
        let starts = i == 0 || matches!(b[i - 1], b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(');
        if !starts || !b[i].is_ascii_alphabetic() {
            return None;
        }
        let len = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
            .count();
        let ends = matches!(
            b.get(i + len),
            None | Some(b' ' | b'\t' | b'\n' | b';' | b')')
        );
        if !ends {
            return None;
        }
        match &b[i..i + len] {
            b"case" if !self.in_pattern && command_position(b, i) => {
                self.open += 1;
                self.awaiting_in = true;
            }
            b"in" if self.awaiting_in => {
                self.awaiting_in = false;
                self.in_pattern = true;
            }
            b"esac" if self.open > 0 => {
                self.open -= 1;
                self.in_pattern = false;
            }
            _ => {}
        }
        Some(len)
    }
}

/// Whether a word starting at `i` is where a command starts (`echo case in a|b` holds no
/// `case`): first in the text, after `;`, `&`, `|`, `(`, `)` or a newline, or after a reserved
/// word that a command follows.
fn command_position(b: &[u8], i: usize) -> bool {
    let before = b[..i].trim_ascii_end();
    match before.last() {
        // `)` ends a `case` pattern; the item's commands follow.
        None | Some(b';' | b'&' | b'|' | b'(' | b')' | b'\n') => true,
        Some(_) => {
            let word = before
                .rsplit(|c| c.is_ascii_whitespace() || b";&|(".contains(c))
                .next()
                .unwrap_or_default();
            matches!(word, b"then" | b"do" | b"else" | b"elif" | b"{" | b"!")
        }
    }
}

/// The index just past the first `end` at or after `from` (the text's end when none).
fn after(b: &[u8], from: usize, end: &[u8]) -> usize {
    b.get(from..)
        .and_then(|rest| rest.windows(end.len()).position(|w| w == end))
        .map_or(b.len(), |at| from + at + end.len())
}

#[cfg(test)]
mod tests {
    use super::first_pipe;

    #[test]
    fn finds_a_pipeline() {
        assert_eq!(first_pipe("cargo build 2>&1 | tee build.log"), Some(17..18));
        assert_eq!(first_pipe("a|b"), Some(1..2));
        assert_eq!(first_pipe("make || true; zcat x.gz | wc -l"), Some(24..25));
        assert_eq!(
            first_pipe("bwa mem {{ vars.ref }} r.fq | samtools view -b"),
            Some(28..29)
        );
        assert_eq!(first_pipe("cmd |& tee log"), Some(4..5));
        // A pipeline inside a `case` item, or after `esac`, is one.
        assert_eq!(
            first_pipe("case $x in a|b) ls | wc -l ;; esac"),
            Some(19..20)
        );
        assert_eq!(first_pipe("case $x in *) ;; esac; a | b"), Some(25..26));
        assert_eq!(first_pipe("showcase a|b"), Some(10..11));
        assert_eq!(first_pipe("echo case in a|b"), Some(14..15));
        assert_eq!(
            first_pipe("if true; then case $x in a) ;; esac; fi | cat"),
            Some(40..41)
        );
    }

    #[test]
    fn passes_over_what_is_not_a_pipe() {
        for s in [
            "make || exit 1",
            "echo 'a | b'",
            "echo \"a | b \\\" | c\"",
            "echo a\\|b",
            "python3 x.py {{ matrix.file | stem }}",
            "{% if x | length %}y{% endif %}",
            "{# a | b #} true",
            "true # a | b",
            "date >| stamp.txt",
            "case \"$1\" in start|up) run ;; stop|down) halt ;; esac",
            "case $x in a) one ;& b|c) two ;;& *) ;; esac",
            "if true; then case $x in a|b) ;; esac; fi",
            "make && case $x in a|b) true ;; esac",
            "case $x in\n  (a|b) one ;;\n  c|d) case $y in e|f) two ;; esac ;;\nesac",
            "echo 'unclosed | ",
            "",
        ] {
            assert_eq!(first_pipe(s), None, "{s}");
        }
    }
}
