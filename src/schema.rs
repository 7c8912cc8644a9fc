//! The manifest's JSON Schema, generated from the same types the parser uses.

use crate::manifest::Manifest;

/// The schema as pretty JSON with a trailing newline (the form checked in at schema/).
pub fn json_schema() -> String {
    let mut schema = schemars::schema_for!(Manifest);
    // `run` is optional for serde only so that a missing `run` is reported with its place,
    // together with every other problem; for editors it is required.
    if let Some(step) = schema
        .get_mut("$defs")
        .and_then(|d| d.get_mut("StepSpec"))
        .and_then(|s| s.as_object_mut())
    {
        let required = step
            .entry("required")
            .or_insert_with(|| serde_json::json!([]));
        if let Some(list) = required.as_array_mut() {
            if !list.iter().any(|v| v == "run") {
                list.push(serde_json::json!("run"));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
