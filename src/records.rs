//! Plain records that the engine (`exec`) and the history (`store`) both use. A base
//! module: it imports neither, so neither has to import the other.

/// A step's fingerprint as recorded by its last success (`exec::fingerprint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The command, cwd, environment and inputs, as the successful attempt started.
    pub inputs: String,
    /// The declared outputs, as the step succeeded.
    pub outputs: String,
    /// The run in which the step succeeded.
    pub run_id: String,
}
