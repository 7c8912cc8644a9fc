//! The workflow file: its types (the schema) and reading it with every problem located.

pub mod dotenv;
pub mod duration;
pub mod include;
mod keys;
pub mod load;
pub mod matrix;
mod split;
pub mod types;

pub use duration::Duration;
pub use include::load;
pub use load::{Document, Loaded, LoadedStep};
pub use matrix::{Axis, GlobAxis, Matrix, MatrixValue};
pub use types::{
    EnvFile, ExecutorKind, ExecutorSection, Hooks, Manifest, Probe, Requires, Resources, RunSpec,
    Shell, SlurmSection, StepKind, StepSpec, WorkflowSection,
};
