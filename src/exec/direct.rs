//! Shell commands that need no shell.
//!
//! A string `run` means `sh -c STRING`. Most such strings in real workflows are one program
//! and its plain arguments (`touch out/a`, `cargo build --release`), and for those the
//! shell only parses the words, forks and waits: `sh -c` costs one more `execve` and one
//! more process per step than running the program itself. GNU make has run recipe lines
//! without a shell in exactly this case for decades (`construct_command_argv_internal` in
//! its `job.c`); bgflow does the same, with a stricter test of what counts as plain.
//!
//! A string is run directly only when the shell would do nothing with it but split it at
//! blanks and find its first word on `PATH`:
//! - every character is an ASCII letter or digit, one of `_ - . / , : @ % + =`, a space or
//!   a tab: no quoting, expansion, redirection, globbing, comment, list or newline;
//! - the first word is not a shell builtin or reserved word of dash or bash (`echo`, `cd`,
//!   `exit`, `if`, ...), whose behaviour differs from a program of the same name, and holds
//!   no `=` (a variable assignment).
//!
//! `process::spawn` falls back to `sh -c` whenever the program is not found or cannot be
//! executed, so that the error (and a script without a `#!` line) is exactly the shell's.

/// Builtins and reserved words of dash and bash that are made of plain characters (`[`,
/// `!`, `{` and the like are not plain anyway). A first word among them goes to the shell.
/// Wider on purpose than `validate::host`'s list of words `plan` does not look up on
/// `PATH`: sending a bash-only word such as `declare` to dash costs nothing here, while
/// `plan` must still report it missing, as dash would.
const SHELL_ONLY: &[&str] = &[
    ".",
    ":",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "chdir",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "coproc",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "false",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "in",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "test",
    "then",
    "time",
    "times",
    "trap",
    "true",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
];

/// The words of `script` when it can run without a shell (see the module notes).
pub fn plain_argv(script: &str) -> Option<Vec<&str>> {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"_-./,:@%+= \t".contains(&b);
    if !script.bytes().all(plain) {
        return None;
    }
    let words: Vec<&str> = script
        .split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect();
    let first = words.first()?;
    if first.contains('=') || SHELL_ONLY.contains(first) {
        return None;
    }
    Some(words)
}

#[cfg(test)]
mod tests {
    use super::plain_argv;

    #[test]
    fn plain_words_split_at_blanks() {
        assert_eq!(plain_argv("touch out/0_0"), Some(vec!["touch", "out/0_0"]));
        assert_eq!(
            plain_argv("  cargo\tbuild  --release -p a_b,c:d@e%f+g=h "),
            Some(vec!["cargo", "build", "--release", "-p", "a_b,c:d@e%f+g=h"])
        );
        assert_eq!(plain_argv("./build.sh"), Some(vec!["./build.sh"]));
        assert_eq!(plain_argv("dd if=a of=b"), Some(vec!["dd", "if=a", "of=b"]));
    }

    #[test]
    fn anything_the_shell_would_act_on_goes_to_the_shell() {
        for script in [
            "",
            "   ",
            "echo $HOME",
            "echo ${HOME}",
            "echo `date`",
            "echo 'a b'",
            "echo \"a b\"",
            "ls a\\ b",
            "ls *.txt",
            "ls a?",
            "ls [ab]",
            "ls ~",
            "ls ~/x",
            "a; b",
            "a && b",
            "a || b",
            "a | b",
            "a &",
            "a > f",
            "a < f",
            "a 2>&1",
            "(a)",
            "{ a; }",
            "a # comment",
            "a\nb",
            "a\r",
            "! a",
            "a ^ b",
            "touch caf\u{e9}",
        ] {
            assert_eq!(plain_argv(script), None, "{script:?}");
        }
    }

    #[test]
    fn builtins_reserved_words_and_assignments_go_to_the_shell() {
        for script in [
            "echo hi",
            "printf x",
            "cd sub",
            "exit 3",
            "true",
            "false",
            "test -f x",
            "[ -f x ]",
            "kill 1",
            "pwd",
            "exec touch x",
            "command touch x",
            "if",
            "while",
            "time make",
            ". ./env.sh",
            "source env.sh",
            "set -e",
            "wait",
            "umask 022",
            "FOO=bar make",
            "=x",
        ] {
            assert_eq!(plain_argv(script), None, "{script:?}");
        }
        // A builtin's name later in the line is only an argument.
        assert_eq!(plain_argv("nice echo"), Some(vec!["nice", "echo"]));
    }
}
