//! A step whose command deletes the state folder (`git clean -fdx`, `rm -rf .bgflow`): the
//! run's history goes with it, and a run whose history is gone ends (guarantee 13), so
//! `plan` says so before anything runs. A name, not a parse: quotes are not followed, and
//! only the default folder name `.bgflow` is known here.

use super::Command;

/// The command (as written) of `command` that deletes `.bgflow`, if one does.
/// Checked for every step (and matrix instance) by `plan` and before every run: a command
/// that names neither `clean` nor `.bgflow` costs two substring searches, no allocation.
pub(super) fn cleans_the_state_folder(command: &Command) -> Option<String> {
    let suspect = |w: &str| w.contains("clean") || w.contains(".bgflow");
    let line: std::borrow::Cow<str> = match command {
        Command::Shell(s) if suspect(s) => s.into(),
        Command::Argv(a) => match a.as_slice() {
            [sh, c, line, ..] if is_shell(sh) && c == "-c" && suspect(line) => line.into(),
            words if words.iter().any(|w| suspect(w)) => words.join(" ").into(),
            _ => return None,
        },
        Command::Shell(_) => return None,
    };
    line.split(['&', '|', ';', '\n'])
        .map(str::trim)
        .find(|command| {
            let words: Vec<&str> = command.split_whitespace().collect();
            git_clean_removes_ignored(&words) || removes_bgflow(&words)
        })
        .map(str::to_owned)
}

fn is_shell(program: &str) -> bool {
    matches!(
        std::path::Path::new(program)
            .file_name()
            .and_then(|n| n.to_str()),
        Some("sh" | "bash" | "dash" | "zsh")
    )
}

fn names_bgflow(word: &str) -> bool {
    let w = word.trim_matches(['"', '\'']).trim_end_matches('/');
    w == ".bgflow" || w.ends_with("/.bgflow")
}

/// `git clean` with `-x` or `-X` (ignored files, where `.bgflow` usually is), not a dry
/// run, and nothing excluded that names `.bgflow`.
fn git_clean_removes_ignored(words: &[&str]) -> bool {
    let words: Vec<&str> = (words.iter().copied())
        .skip_while(|w| *w == "exec" || super::host::is_assignment(w))
        .collect();
    if !words
        .first()
        .is_some_and(|p| *p == "git" || p.ends_with("/git"))
    {
        return false;
    }
    // git's own options before the subcommand (`git -C dir clean`).
    let mut at = 1;
    while words.get(at).is_some_and(|w| w.starts_with('-')) {
        at += if matches!(words[at], "-C" | "-c") {
            2
        } else {
            1
        };
    }
    if words.get(at) != Some(&"clean") {
        return false;
    }
    let args = &words[at + 1..];
    let short = |c: char| {
        args.iter()
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains(c))
    };
    let dry = short('n') || args.contains(&"--dry-run");
    let kept = args.iter().any(|a| a.contains(".bgflow"));
    (short('x') || short('X')) && !dry && !kept
}

/// `rm` with `.bgflow` (or a path ending in it) among its arguments.
fn removes_bgflow(words: &[&str]) -> bool {
    words
        .first()
        .is_some_and(|p| *p == "rm" || p.ends_with("/rm"))
        && words[1..].iter().any(|w| names_bgflow(w))
}

#[cfg(test)]
mod tests {
    use super::{cleans_the_state_folder, Command};

    #[test]
    fn git_clean_of_ignored_files_and_rm_of_the_folder_are_found_and_nothing_else() {
        let sh = |s: &str| cleans_the_state_folder(&Command::Shell(s.to_owned()));
        assert_eq!(
            sh("git clean -fdx && make").as_deref(),
            Some("git clean -fdx")
        );
        assert_eq!(
            sh("make; git clean -X -f").as_deref(),
            Some("git clean -X -f")
        );
        assert_eq!(
            sh("rm -rf build .bgflow/").as_deref(),
            Some("rm -rf build .bgflow/")
        );
        assert_eq!(sh("git clean -fdx -e .bgflow"), None);
        assert_eq!(sh("git clean -fdx --exclude=.bgflow"), None);
        assert_eq!(sh("git clean -ndx"), None, "a dry run");
        assert_eq!(sh("git clean -fd"), None, "untracked only, not ignored");
        assert_eq!(sh("rm -rf .bgflow-old build"), None);
        assert_eq!(sh("echo git clean -fdx"), None, "not the command");
        let argv = |a: &[&str]| {
            cleans_the_state_folder(&Command::Argv(a.iter().map(|s| (*s).to_owned()).collect()))
        };
        assert!(argv(&["git", "clean", "-xdf"]).is_some());
        assert!(argv(&["bash", "-c", "cd src && git clean -fdx"]).is_some());
        assert!(argv(&["git", "status"]).is_none());
        assert!(argv(&["git", "-C", "sub", "clean", "-fdx"]).is_some());
    }
}
