//! The keys each table of the manifest accepts, read off its JSON Schema so they cannot
//! drift from the types: unknown keys are reported (with a "did you mean"), then dropped
//! before the table is deserialized, so each is reported once.

use std::sync::OnceLock;

use schemars::JsonSchema;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::types::{
    ExecutorSection, Hooks, Manifest, Probe, Requires, Resources, SlurmSection, StepSpec,
    WorkflowSection,
};
use crate::diag::{did_you_mean, Problem};

/// The keys a section accepts, read off its JSON Schema so they cannot drift from the types.
pub struct Keys {
    /// In the order the schema declares them (for "known keys: ..." help).
    pub list: Vec<String>,
    /// Positions in `list`, in the order of the keys, for lookups.
    sorted: Vec<usize>,
}

impl Keys {
    fn of<T: JsonSchema>() -> Self {
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
        let list: Vec<String> = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let mut sorted: Vec<usize> = (0..list.len()).collect();
        sorted.sort_unstable_by(|&a, &b| list[a].cmp(&list[b]));
        Self { list, sorted }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.sorted
            .binary_search_by(|&i| self.list[i].as_str().cmp(key))
            .is_ok()
    }
}

/// A section of the manifest whose keys are checked; each keeps its key set in a static.
pub trait Section: JsonSchema {
    fn keys() -> &'static Keys;
}

macro_rules! sections {
    ($($t:ty),*) => {$(
        impl Section for $t {
            fn keys() -> &'static Keys {
                static KEYS: OnceLock<Keys> = OnceLock::new();
                KEYS.get_or_init(Keys::of::<$t>)
            }
        }
    )*};
}
sections!(
    Manifest,
    WorkflowSection,
    Requires,
    Hooks,
    StepSpec,
    Probe,
    ExecutorSection,
    SlurmSection,
    Resources
);

pub fn keys<T: Section>() -> &'static Keys {
    T::keys()
}

pub(super) fn check_table_keys(
    value: &Spanned<DeValue<'_>>,
    known: &Keys,
    what: &str,
    problems: &mut Vec<Problem>,
) {
    if let Some(table) = value.get_ref().as_table() {
        check_keys(table, known, what, problems);
    }
}

pub(super) fn check_keys(
    table: &DeTable<'_>,
    known: &Keys,
    what: &str,
    problems: &mut Vec<Problem>,
) {
    for key in table.keys() {
        let name: &str = key.get_ref();
        if known.contains(name) {
            continue;
        }
        let mut p = Problem::error("unknown-key", format!("unknown key `{name}` in {what}"))
            .at(key.span(), "not a key of this table");
        let ours = other_tools_name(name).filter(|ours| known.contains(ours));
        p = match (
            ours,
            did_you_mean(name, known.list.iter().map(String::as_str)),
        ) {
            (Some(ours), _) => p.help(format!(
                "did you mean `{ours}`? (bgflow's name for what other tools call `{name}`)"
            )),
            (None, Some(close)) => p.help(format!("did you mean `{close}`?")),
            (None, None) => p.help(format!("known keys: {}", known.list.join(", "))),
        };
        problems.push(p);
    }
}

/// bgflow's key for what other tools call `name` (docker compose's `depends_on`, GitHub
/// Actions' `working-directory` and `continue-on-error`, GitLab CI's `script` and
/// `variables`): a spelling no edit distance would bring near. (Snakemake's `shell` is a
/// key of bgflow's too; a command given as its value is told to go in `run`.)
fn other_tools_name(name: &str) -> Option<&'static str> {
    const OURS: [(&str, &[&str]); 5] = [
        (
            "needs",
            &["depends_on", "depends-on", "dependencies", "deps", "after"],
        ),
        ("run", &["command", "cmd", "script", "commands"]),
        (
            "cwd",
            &[
                "working-directory",
                "working_directory",
                "working_dir",
                "workdir",
                "dir",
            ],
        ),
        ("env", &["environment", "variables", "env_vars"]),
        (
            "allow_failure",
            &[
                "continue-on-error",
                "continue_on_error",
                "ignore_errors",
                "ignore_failure",
            ],
        ),
    ];
    OURS.iter()
        .find(|(_, theirs)| theirs.contains(&name))
        .map(|(ours, _)| *ours)
}

pub(super) fn check_probe_keys(
    step: &Spanned<DeValue<'_>>,
    what: &str,
    problems: &mut Vec<Problem>,
) {
    for probe in ["ready", "health"] {
        if let Some(v) = step.get_ref().get(probe) {
            check_table_keys(v, keys::<Probe>(), &format!("{what} {probe}"), problems);
        }
    }
}

/// Unknown keys were reported already; dropping them keeps `deny_unknown_fields` from
/// reporting them again (and from discarding the whole table they are in).
pub(super) fn drop_unknown_keys(value: &mut Spanned<DeValue<'_>>, known: &Keys) {
    if let DeValue::Table(table) = value.get_mut() {
        if table.keys().all(|k| known.contains(k.get_ref())) {
            return;
        }
        let unknown: Vec<String> = table
            .keys()
            .filter(|k| !known.contains(k.get_ref()))
            .map(|k| k.get_ref().to_string())
            .collect();
        for k in unknown {
            table.remove(k.as_str());
        }
    }
}
