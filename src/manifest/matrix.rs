//! A step's `matrix` as written (DESIGN.md §8): axes of values or of files, `include`,
//! `exclude`. Expanding it into instances is `validate::matrix`'s job.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `matrix = { python = ["3.11", "3.12"], file = { glob = "data/*.csv" } }`: one instance of
/// the step per combination of the axes' values, named `step[v1,v2]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
pub struct Matrix {
    /// Combinations added after `exclude`, as in GitHub Actions: an entry whose axis values
    /// match existing combinations adds its other keys to them; one that matches none is a
    /// combination of its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<IndexMap<String, MatrixValue>>,
    /// Combinations removed: every combination whose values match all of an entry's keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<IndexMap<String, MatrixValue>>,
    /// The axes, by name (an identifier): a list of values, or `{ glob = "..." }` over files
    /// that exist when `plan` runs.
    #[serde(flatten)]
    pub axes: IndexMap<String, Axis>,
}

/// One axis of a matrix.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum Axis {
    /// The values, in order.
    Values(Vec<MatrixValue>),
    /// The files that match a glob (relative to the root) when `plan` runs, sorted.
    Glob(GlobAxis),
}

/// `{ glob = "data/*.csv" }`
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GlobAxis {
    pub glob: String,
}

/// A matrix value: a string; an integer or a boolean is taken as its text (`3`, `true`).
/// A float is refused (TOML reads `3.10` as `3.1`): quote it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MatrixValue {
    String(String),
    Integer(i64),
    Bool(bool),
    /// Refused by `plan` with a hint to quote it.
    #[schemars(skip)]
    Float(f64),
}

impl MatrixValue {
    /// The value as the templates and the instance's name see it; `None` for a float.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::String(s) => Some(s.clone()),
            Self::Integer(i) => Some(i.to_string()),
            Self::Bool(b) => Some(b.to_string()),
            Self::Float(_) => None,
        }
    }
}
