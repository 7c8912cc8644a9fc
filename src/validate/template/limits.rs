//! What bounds a template's work: fuel for its steps, a cap on its output, and a check of
//! its text before it runs that keeps every value it can build small (guarantee 12).
//!
//! Fuel alone bounds time, not memory: `{% set a = v ~ v %}{% set b = a ~ a %}…` doubles a
//! value with each statement. So bgflow templates are expressions, `if` and `for` only (no
//! `set`, `macro`, `with`, `call`, `filter`, `include`, `import`, no `namespace()`), without
//! the `*` operator (string repetition) and without the filters that multiply a value
//! (`batch`, `slice`, `map`, `format`, `indent`, …; `replace`, `join` and `list` are kept,
//! capped). Then no value is larger than the sum of what the template names: each name
//! stands for at most everything it can reach (`leaf`), and the text is refused when its
//! names could build more than `VALUE_CAP` bytes.

use super::TemplateError;

/// Steps one rendering may take (minijinja fuel: about one per instruction).
pub const FUEL: u64 = 100_000;
/// Steps all renderings of one check may take together.
pub const TOTAL_FUEL: u64 = 20_000_000;
/// The longest output of one template: one argument or environment value may not be longer
/// on Linux (`MAX_ARG_STRLEN`), so a longer one could not start anyway.
pub const OUTPUT_CAP: usize = 128 * 1024;
/// Bytes all renderings of one check may produce together (each step keeps its command).
pub const TOTAL_OUTPUT: usize = 64 * 1024 * 1024;
/// The largest value a template may be able to build.
pub const VALUE_CAP: usize = 64 * 1024 * 1024;
/// The most items a list made by `list` may have (as `range`).
pub const LIST_CAP: usize = 100_000;

/// Statements a bgflow template may use.
const STATEMENTS: [&str; 8] = [
    "if", "elif", "else", "endif", "for", "endfor", "raw", "endraw",
];

/// Filters and functions that could multiply a value's size without a name for each copy.
pub const REMOVED_FILTERS: [&str; 13] = [
    "batch",
    "slice",
    "map",
    "zip",
    "chain",
    "groupby",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "format",
    "indent",
    "pprint",
];
pub const REMOVED_FUNCTIONS: [&str; 2] = ["debug", "namespace"];

/// How many names (identifiers) the template's tags hold; an error for what bgflow
/// templates may not use, at its place.
pub fn names_in(source: &str) -> Result<usize, TemplateError> {
    let bytes = source.as_bytes();
    let mut names = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' || !matches!(bytes[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let open = i;
        let kind = bytes[i + 1];
        if kind == b'#' {
            match source[i + 2..].find("#}") {
                Some(end) => i += 2 + end + 2,
                None => return Ok(names),
            }
            continue;
        }
        let close = if kind == b'{' { "}}" } else { "%}" };
        let mut j = i + 2;
        if j < bytes.len() && matches!(bytes[j], b'-' | b'+') {
            j += 1;
        }
        if kind == b'%' {
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            let start = j;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            let word = &source[start..j];
            if !STATEMENTS.contains(&word) {
                return Err(refused(
                    format!("`{{% {word} %}}` is not available in bgflow templates"),
                    "templates may use expressions, `if` and `for`; put longer logic in a script",
                    open..j,
                ));
            }
            if word == "raw" {
                // Everything up to `endraw` is text.
                match source[j..].find("endraw") {
                    Some(end) => {
                        i = j + end;
                        continue;
                    }
                    None => return Ok(names),
                }
            }
        }
        // The tag's body: names, strings, and no `*`.
        let mut quote: Option<u8> = None;
        loop {
            if j >= bytes.len() {
                // Unclosed: minijinja words the syntax error.
                return Ok(names);
            }
            let b = bytes[j];
            match quote {
                Some(q) => {
                    if b == b'\\' {
                        j += 1;
                    } else if b == q {
                        quote = None;
                    }
                    j += 1;
                }
                None if source[j..].starts_with(close) => {
                    i = j + 2;
                    break;
                }
                None if b == b'"' || b == b'\'' => {
                    quote = Some(b);
                    j += 1;
                }
                None if b == b'*' => {
                    return Err(refused(
                        "`*` is not available in bgflow templates".to_owned(),
                        "repeating a string could build a value of any size; write the text out, or loop with `for`",
                        j..j + 1,
                    ));
                }
                None if b.is_ascii_alphabetic() || b == b'_' => {
                    names += 1;
                    while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_')
                    {
                        j += 1;
                    }
                }
                None => j += 1,
            }
        }
    }
    Ok(names)
}

fn refused(message: String, help: &str, range: std::ops::Range<usize>) -> TemplateError {
    TemplateError {
        message,
        help: Some(help.to_owned()),
        range: Some(range),
    }
}

/// An `io::Write` that takes at most `OUTPUT_CAP` bytes, then fails the rendering.
pub struct Capped {
    pub out: Vec<u8>,
    pub over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > OUTPUT_CAP {
            self.over = true;
            return Err(std::io::Error::other("template output over its cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_names_and_refuses_what_could_grow() {
        assert_eq!(names_in("echo {{ vars.a ~ 'x y' }}").ok(), Some(2));
        assert_eq!(names_in("{# {% set #} {{ a }}").ok(), Some(1));
        assert_eq!(
            names_in("{% raw %}{% set a = 1 %}{% endraw %}").ok(),
            Some(0)
        );
        assert_eq!(names_in("{{ '*' }}").ok(), Some(0));
        let set = names_in("x {%- set a = b %}").expect_err("set");
        assert!(set.message.contains("set"), "{}", set.message);
        assert_eq!(set.range, Some(2..9));
        assert!(names_in("{{ vars.a * 3 }}").is_err());
        assert!(names_in("{% macro m() %}{% endmacro %}").is_err());
        assert!(names_in("{% for i in range(3) %}{% if i %}{% endif %}{% endfor %}").is_ok());
    }
}
