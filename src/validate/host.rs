//! Checks against the machine: programs on PATH, environment variables, files, folders.
//! Skipped by `--offline`. Each check is cached, so 10,000 steps cost a handful of lookups.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use nix::unistd::{access, AccessFlags};

use crate::plan::artifacts::{compile_glob, glob_prefix, is_glob, normalize};

/// Shell words that are not programs on PATH.
const SHELL_WORDS: &[&str] = &[
    "!", ".", ":", "[", "[[", "alias", "bg", "break", "case", "cd", "continue", "echo", "eval",
    "exit", "export", "false", "fg", "for", "function", "getopts", "hash", "if", "jobs", "kill",
    "local", "printf", "pwd", "read", "readonly", "return", "set", "shift", "source", "test",
    "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "until", "wait",
    "while", "{", "(", "((",
];
/// Words that run the word after them.
const PREFIX_WORDS: &[&str] = &["exec", "command", "nohup", "time", "nice"];

/// The program a shell command starts with, when it can be told without running anything.
pub fn shell_program(command: &str) -> Option<String> {
    let mut rest = command.trim_start();
    loop {
        let (word, after) = next_word(rest)?;
        rest = after;
        if is_assignment(&word) || PREFIX_WORDS.contains(&word.as_str()) {
            continue;
        }
        if word.contains(['$', '`', '*', '?']) || SHELL_WORDS.contains(&word.as_str()) {
            return None;
        }
        return Some(word);
    }
}

/// `NAME=value`, as a shell reads it before the program's name.
pub fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// One shell word with simple quotes removed; `None` at the end of the command.
fn next_word(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let mut word = String::new();
    let mut chars = s.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => return Some((word, &s[i..])),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' if !word.is_empty() => {
                return Some((word, &s[i..]))
            }
            ';' | '&' | '|' | '<' | '>' | ')' => return None,
            '(' => return Some(("(".to_owned(), &s[i + 1..])),
            '\'' | '"' => {
                chars.next();
                for (_, q) in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
                continue;
            }
            _ => word.push(c),
        }
        chars.next();
    }
    (!word.is_empty()).then_some((word, ""))
}

/// Cached answers about the machine.
#[derive(Default)]
pub struct Host {
    on_path: HashMap<String, bool>,
    writable: HashMap<PathBuf, Result<(), String>>,
}

impl Host {
    /// Whether `program` resolves: on PATH, or, with a `/`, as a file relative to `cwd`.
    pub fn program_exists(&mut self, program: &str, cwd: &Path) -> bool {
        if program.contains('/') {
            return is_executable(&cwd.join(program));
        }
        if let Some(&known) = self.on_path.get(program) {
            return known;
        }
        let found = which::which(program).is_ok();
        self.on_path.insert(program.to_owned(), found);
        found
    }

    /// `Ok` when a file can be created at `path`; else why not.
    pub fn can_create(&mut self, path: &Path, is_folder: bool) -> Result<(), String> {
        let start = if is_folder {
            path
        } else {
            path.parent().unwrap_or(path)
        };
        let mut at = start;
        // Folders that do not exist yet share the verdict of their nearest existing ancestor.
        let mut missing: Vec<&Path> = Vec::new();
        let verdict = loop {
            if let Some(known) = self.writable.get(at) {
                break known.clone();
            }
            match fs::metadata(at) {
                Ok(meta) => {
                    let verdict = if !meta.is_dir() {
                        Err(format!("{} is not a folder", at.display()))
                    } else if read_only_fs(at) {
                        Err(format!("{} is on a read-only file system", at.display()))
                    } else if access(at, AccessFlags::W_OK).is_err() {
                        Err(format!("{} is not writable", at.display()))
                    } else {
                        Ok(())
                    };
                    self.writable.insert(at.to_path_buf(), verdict.clone());
                    break verdict;
                }
                Err(_) => match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => {
                        missing.push(at);
                        at = p;
                    }
                    _ => break Ok(()),
                },
            }
        };
        for m in missing {
            self.writable.insert(m.to_path_buf(), verdict.clone());
        }
        verdict
    }
}

fn read_only_fs(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

fn is_executable(path: &Path) -> bool {
    path.is_file() && access(path, AccessFlags::X_OK).is_ok()
}

/// Whether `pattern` (a path or glob relative to `root`) matches something on disk.
/// A pattern ending in `/` must name a folder.
pub fn path_exists(root: &Path, pattern: &str) -> bool {
    let pattern = normalize(pattern);
    if !is_glob(&pattern) {
        let p = root.join(pattern.trim_end_matches('/'));
        return if pattern.ends_with('/') {
            p.is_dir()
        } else {
            p.exists()
        };
    }
    let Ok(matcher) = compile_glob(&pattern) else {
        return false;
    };
    let prefix = glob_prefix(&pattern);
    let depth = (!pattern.contains("**")).then(|| pattern.matches('/').count());
    any_match(root, &root.join(prefix), &matcher, depth)
}

fn any_match(root: &Path, dir: &Path, matcher: &GlobMatcher, max_depth: Option<usize>) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            if matcher.is_match(rel) {
                return true;
            }
            let name = entry.file_name();
            let skip = name == ".git" || name == ".bgflow";
            let deeper = max_depth.is_none_or(|m| rel.components().count() <= m);
            if !skip && deeper && entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_program_of_a_shell_command() {
        assert_eq!(
            shell_program("python3 tools/x.py > out").as_deref(),
            Some("python3")
        );
        assert_eq!(
            shell_program("  FOO=1 BAR=2 make -j").as_deref(),
            Some("make")
        );
        assert_eq!(
            shell_program("exec ./server --port 1").as_deref(),
            Some("./server")
        );
        assert_eq!(shell_program("'my tool' arg").as_deref(), Some("my tool"));
        assert_eq!(shell_program("cd sub && make").as_deref(), None);
        assert_eq!(shell_program("$CC main.c").as_deref(), None);
        assert_eq!(shell_program("echo hi; rm x").as_deref(), None);
        assert_eq!(shell_program("sort<in").as_deref(), Some("sort"));
        assert_eq!(shell_program("").as_deref(), None);
    }

    #[test]
    fn globs_and_paths_on_disk() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        fs::write(dir.path().join("a/b/c.txt"), "x").expect("write");
        assert!(path_exists(dir.path(), "a/b/c.txt"));
        assert!(path_exists(dir.path(), "a/"));
        assert!(!path_exists(dir.path(), "a/b/c.txt/"));
        assert!(path_exists(dir.path(), "a/**/*.txt"));
        assert!(path_exists(dir.path(), "a/b/*.txt"));
        assert!(!path_exists(dir.path(), "a/*.txt"), "* must not cross /");
        assert!(!path_exists(dir.path(), "z/**"));
    }

    #[test]
    fn creatable_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("file"), "x").expect("write");
        let mut host = Host::default();
        assert!(host
            .can_create(&dir.path().join("new/deep/out.txt"), false)
            .is_ok());
        let err = host
            .can_create(&dir.path().join("file/out.txt"), false)
            .expect_err("a file");
        assert!(err.contains("is not a folder"), "{err}");
    }
}
