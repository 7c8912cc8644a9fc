//! A pipeline in a string `run` under `sh` (`pipe-status`): `sh` takes a pipeline's exit
//! status from its last command, so in `cargo build --release 2>&1 | tee build.log` a failed
//! build is a step that succeeded. `shell = "bash"` runs it under `bash -eo pipefail`.
//! Found in the text as written, outside quotes, comments and template tags (`{{ x | f }}`
//! is a filter), by a scan that is linear in the text.

use std::ops::Range;

/// Where the first pipe `|` (not `||`) of `script` is, outside quotes, comments and
/// `{{ }}`, `{% %}` or `{# #}`.
pub(super) fn first_pipe(script: &str) -> Option<Range<usize>> {
    let b = script.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
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
            "echo 'unclosed | ",
            "",
        ] {
            assert_eq!(first_pipe(s), None, "{s}");
        }
    }
}
