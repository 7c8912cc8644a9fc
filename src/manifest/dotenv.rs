//! Reading a dotenv file (`[workflow] env_file`), exactly as docs/manifest.md says.
//!
//! One assignment a line, `\n` or `\r\n` line ends:
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - `KEY=VALUE`, with optional blanks around `=` and an optional `export ` before the key;
//!   a key is letters, digits and `_`, not starting with a digit;
//! - `'...'`: the text between single quotes, as it is (no escapes);
//! - `"..."`: with the escapes `\\`, `\"`, `\n`, `\r`, `\t` and `\$`; any other backslash is
//!   an error;
//! - unquoted: the rest of the line, up to a ` #` comment, blanks around it trimmed; it may
//!   not hold a quote, a backslash or a NUL;
//! - after a closing quote only blanks and a `#` comment may follow;
//! - a value ends at its line (a quote left open is an error), `${VAR}` is not expanded, a
//!   key set twice is an error.
//!
//! Errors name the line and what is wrong, never the value: the file holds secrets.

/// A line that is not one of the forms above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// 1-based.
    pub line: usize,
    pub what: String,
}

/// The assignments of a dotenv text, in order; the first malformed line is an error.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, Malformed> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut lines_of: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let fail = |what: &str| Malformed {
            line,
            what: what.to_owned(),
        };
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.contains('\0') {
            return Err(fail("a NUL byte"));
        }
        let rest = raw.trim_start_matches([' ', '\t']);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let rest = match rest.strip_prefix("export") {
            Some(after) if after.starts_with([' ', '\t']) => after.trim_start_matches([' ', '\t']),
            _ => rest,
        };
        let key_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let key = &rest[..key_len];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(fail(
                "expected KEY=VALUE (a key is letters, digits and '_', not starting with a digit)",
            ));
        }
        let Some(after) = rest[key_len..]
            .trim_start_matches([' ', '\t'])
            .strip_prefix('=')
        else {
            return Err(fail(&format!("`{key}` has no `=`")));
        };
        let after = after.trim_start_matches([' ', '\t']);
        let (value, tail) = match after.chars().next() {
            Some('\'') => {
                let body = &after[1..];
                let end = body.find('\'').ok_or_else(|| {
                    fail("a single quote is not closed on its line (a value ends at its line)")
                })?;
                (body[..end].to_owned(), &body[end + 1..])
            }
            Some('"') => double_quoted(&after[1..]).map_err(|w| fail(&w))?,
            _ => {
                let end = after
                    .char_indices()
                    .find(|&(j, c)| c == '#' && after[..j].ends_with([' ', '\t']))
                    .map_or(after.len(), |(j, _)| j);
                let value = after[..end].trim_end_matches([' ', '\t']);
                if value.contains(['"', '\'', '\\']) {
                    return Err(fail(
                        "an unquoted value holds a quote or a backslash; quote the whole value",
                    ));
                }
                (value.to_owned(), "")
            }
        };
        let tail = tail.trim_start_matches([' ', '\t']);
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err(fail("text after the closing quote"));
        }
        if let Some(first) = lines_of.insert(key.to_owned(), line) {
            return Err(fail(&format!(
                "`{key}` is set twice (lines {first} and {line})"
            )));
        }
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

/// The body of a double-quoted value (after the opening quote): the value and what follows
/// the closing quote.
fn double_quoted(body: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((j, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[j + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('\\') => value.push('\\'),
                Some('"') => value.push('"'),
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some('$') => value.push('$'),
                Some(_) => {
                    return Err(
                        "an unknown escape in double quotes (known: \\\\ \\\" \\n \\r \\t \\$)"
                            .to_owned(),
                    )
                }
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("a double quote is not closed on its line (a value ends at its line; write \\n for a newline)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        match parse(text) {
            Ok(v) => v,
            Err(e) => panic!("{text:?}: {e:?}"),
        }
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn the_documented_forms_read_as_documented() {
        let text = "# a comment\n\n  \nA=1\nexport B = two words  # note\nC='single # kept \\n'\nD=\"x\\\"y\\n\\t\\$\\\\\"  # c\nE=\nF=a#b\r\nG=\"\"\n";
        assert_eq!(
            ok(text),
            pairs(&[
                ("A", "1"),
                ("B", "two words"),
                ("C", "single # kept \\n"),
                ("D", "x\"y\n\t$\\"),
                ("E", ""),
                ("F", "a#b"),
                ("G", ""),
            ])
        );
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line_and_no_value() {
        for (text, line) in [
            ("A=1\nnot an assignment\n", 2),
            ("A='open\n", 1),
            ("\n\nA=\"open\n", 3),
            ("A=\"bad \\q zzq\"\n", 1),
            ("A='x' trailing\n", 1),
            ("1A=x\n", 1),
            ("A=it's\n", 1),
            ("A=1\nA=2\n", 2),
            ("A=a\0b\n", 1),
            ("export\n", 1),
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err:?}");
            for secret in ["open", "zzq", "trailing", "it's", "a\0b"] {
                assert!(!err.what.contains(secret), "{text:?} leaks: {err:?}");
            }
        }
    }
}
