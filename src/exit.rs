//! The process exit codes of bgflow: one table, used everywhere (docs/exit-codes.md).

/// Success; for `plan`, the workflow is valid.
pub const SUCCESS: u8 = 0;
/// The run finished and a step failed, timed out or was lost.
pub const RUN_FAILED: u8 = 1;
/// Usage error: bad flags, file not found.
pub const USAGE: u8 = 2;
/// Validation failed: `plan` found problems, or `run` refused to start; nothing ran.
pub const INVALID: u8 = 3;
/// Internal, state or I/O error.
pub const INTERNAL: u8 = 4;

/// The exit code for "stopped by signal `signo`" (130 for SIGINT).
pub fn from_signal(signo: i32) -> u8 {
    u8::try_from(128 + signo).unwrap_or(255)
}
