//! The manifest's JSON Schema, generated from the same types the parser uses.

use crate::manifest::Manifest;

/// The schema as pretty JSON with a trailing newline (the form checked in at schema/).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Manifest);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
