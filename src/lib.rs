//! bgflow: a workflow runner that proves a workflow can run before it runs it, then
//! supervises its steps as background processes. See docs/architecture.md.
//!
//! The pipeline: `manifest` (file -> typed manifest with spans) -> `validate` (-> checked
//! `Workflow`, all problems collected) -> `plan` (-> ordered `Plan`, pure) -> `exec`.
//! Front-ends (`cli`) call the service layer (`runs`), which returns data and never
//! prints; a layer never imports one above it (`tests/layers.rs`).

pub mod bounded;
pub mod cli;
pub mod config;
pub mod diag;
pub mod exec;
pub mod exit;
pub mod file_name;
pub mod layout;
pub mod listeners;
pub mod manifest;
pub mod mcp;
pub mod par;
pub mod plan;
pub mod procfs;
pub mod records;
pub mod report;
pub mod runs;
pub mod schema;
pub mod serve;
pub mod store;
pub mod validate;
