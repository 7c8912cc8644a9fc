//! A test step whose command writes a JUnit report that bgflow is not told to read
//! (`junit-not-read`): `kind = "test"` with `pytest --junitxml=reports/unit.xml` and no
//! `junit` key runs, but its tests are neither counted nor named when they fail, and
//! nothing says why. Seen on attrs 24.2.0, where the key was forgotten on a matrix of 24
//! pytest files. Only the flags of common runners are recognised; the value is taken as
//! written (a template stays a template), for the help to suggest `junit = "…"`.

use crate::manifest::RunSpec;

/// Flags that name the JUnit report a runner writes: pytest's two spellings, gotestsum,
/// CTest (3.21+), PHPUnit.
const FLAGS: [&str; 5] = [
    "--junitxml",
    "--junit-xml",
    "--junitfile",
    "--output-junit",
    "--log-junit",
];

/// The first JUnit report flag in `run` and its value as written (`--junitxml`,
/// `reports/{{ matrix.file | stem }}.xml`).
pub(super) fn report_flag(run: &RunSpec) -> Option<(&'static str, String)> {
    match run {
        RunSpec::Argv(argv) => argv.iter().enumerate().find_map(|(i, arg)| {
            FLAGS.iter().find_map(|&flag| {
                let value = match arg.strip_prefix(flag)? {
                    "" => argv.get(i + 1)?.as_str(),
                    rest => rest.strip_prefix('=')?,
                };
                Some((flag, value.to_owned()))
            })
        }),
        RunSpec::Shell(line) => shell_flag(line),
    }
}

/// The flag in a shell line: a word that is the flag then `=VALUE` or ` VALUE`, where the
/// value ends at a blank outside `{{ … }}` and loses its quotes.
fn shell_flag(line: &str) -> Option<(&'static str, String)> {
    let mut from = 0;
    while from < line.len() {
        let (at, flag) = FLAGS
            .iter()
            .filter_map(|&f| line[from..].find(f).map(|i| (from + i, f)))
            .min_by_key(|(i, _)| *i)?;
        let after = &line[at + flag.len()..];
        let starts_word =
            at == 0 || line[..at].ends_with(|c: char| c.is_whitespace() || c == '\'' || c == '"');
        let value = match after.chars().next() {
            Some('=') => Some(&after[1..]),
            Some(c) if c.is_whitespace() => Some(after.trim_start()),
            _ => None,
        };
        if let Some(v) = value.filter(|_| starts_word).map(first_word) {
            if !v.is_empty() {
                return Some((flag, v));
            }
        }
        from = at + flag.len();
    }
    None
}

/// The first word of `s`: up to a blank, `;`, `|`, `&` or `)` outside quotes and
/// `{{ … }}`, its quotes removed.
fn first_word(s: &str) -> String {
    let mut word = String::new();
    let (mut depth, mut quote) = (0usize, None);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('{', None) if chars.peek() == Some(&'{') => {
                depth += 1;
                word.push(c);
                word.extend(chars.next());
            }
            ('}', None) if depth > 0 && chars.peek() == Some(&'}') => {
                depth -= 1;
                word.push(c);
                word.extend(chars.next());
            }
            (c, None) if depth == 0 && (c.is_whitespace() || ";|&)".contains(c)) => break,
            (c, _) => word.push(c),
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(s: &str) -> Option<(&'static str, String)> {
        report_flag(&RunSpec::Shell(s.to_owned()))
    }

    #[test]
    fn finds_the_report_a_command_writes() {
        assert_eq!(
            shell("pytest -q tests --junitxml=reports/unit.xml"),
            Some(("--junitxml", "reports/unit.xml".to_owned()))
        );
        assert_eq!(
            shell("{{ vars.py }} -m pytest {{ matrix.file }} --junitxml=reports/{{ matrix.file | stem }}.xml || test $? -eq 5"),
            Some(("--junitxml", "reports/{{ matrix.file | stem }}.xml".to_owned()))
        );
        assert_eq!(
            shell("gotestsum --junitfile 'out/go tests.xml' -- ./..."),
            Some(("--junitfile", "out/go tests.xml".to_owned()))
        );
        assert_eq!(
            shell("ctest --output-junit ctest.xml;echo done"),
            Some(("--output-junit", "ctest.xml".to_owned()))
        );
        assert_eq!(
            report_flag(&RunSpec::Argv(vec![
                "pytest".into(),
                "--junit-xml".into(),
                "r.xml".into()
            ])),
            Some(("--junit-xml", "r.xml".to_owned()))
        );
        assert_eq!(
            report_flag(&RunSpec::Argv(vec![
                "phpunit".into(),
                "--log-junit=p.xml".into()
            ])),
            Some(("--log-junit", "p.xml".to_owned()))
        );
    }

    #[test]
    fn leaves_other_commands_alone() {
        assert_eq!(shell("pytest -q tests"), None);
        assert_eq!(shell("echo --junitxmlish=x"), None);
        assert_eq!(shell("pytest --junitxml="), None);
        assert_eq!(shell("x--junitxml=a.xml"), None);
        assert_eq!(
            report_flag(&RunSpec::Argv(vec!["pytest".into(), "--junitxml".into()])),
            None
        );
    }
}
