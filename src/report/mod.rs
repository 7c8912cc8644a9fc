//! Everything bgflow shows people or machines: plans, diagnostics, JSON documents.

pub mod live;
pub mod notify;
pub mod plan;
pub mod summary;

use std::io::{self, IsTerminal, Write};
use std::path::Path;

/// ` --state-dir DIR` for a command printed for people to paste, or nothing when `DIR` is
/// the `./.bgflow` that bgflow finds from here anyway: `bgflow resume 4b6mgjyr`, not a line
/// that wraps with a path the reader is already in.
pub fn state_dir_arg(state_dir: Option<&Path>) -> String {
    let here = std::env::current_dir().ok().map(|d| d.join(".bgflow"));
    match state_dir {
        Some(sd) if here.as_deref() != Some(sd) => format!(" --state-dir {}", pasteable(sd)),
        _ => String::new(),
    }
}

/// A path as one shell word: quoted when it holds what a shell reads (a matrix instance's
/// `[…]`, a space), so that a printed command or log path pastes into any shell.
pub fn pasteable(path: &Path) -> String {
    crate::validate::template::shell_quote(&path.display().to_string())
}

/// `--color`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to color text written to stderr: `always`, or `auto` on a terminal without `NO_COLOR`.
    pub fn for_stderr(self) -> bool {
        resolve_color(
            self,
            io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        )
    }
}

/// A pure function of the choice, whether the stream is a terminal, and `NO_COLOR`.
pub fn resolve_color(
    choice: ColorChoice,
    is_terminal: bool,
    no_color: Option<std::ffi::OsString>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

/// Writes data to stdout. A closed pipe (`bgflow list | head`) is not an error worth a message.
pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes a message to stderr, ignoring failures (there is nowhere left to report them).
pub fn stderr(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn color_resolution() {
        assert!(resolve_color(ColorChoice::Always, false, None));
        assert!(!resolve_color(ColorChoice::Never, true, None));
        assert!(resolve_color(ColorChoice::Auto, true, None));
        assert!(!resolve_color(ColorChoice::Auto, false, None));
        assert!(!resolve_color(ColorChoice::Auto, true, Some("1".into())));
        assert!(
            resolve_color(ColorChoice::Auto, true, Some("".into())),
            "an empty NO_COLOR is unset"
        );
    }
}
