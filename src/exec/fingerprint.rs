//! Up-to-date checks (guarantee 9): a step is skipped as up to date, or kept by `resume`,
//! only when its command, environment, inputs and outputs are unchanged since the success it
//! stands on. A step's fingerprint has two halves: the rendered command, the working folder,
//! the environment bgflow sets and each input file's path, size and modification time (the
//! step's own declared outputs left out), taken as the step starts; and each output file's
//! path, size and modification time, taken as it succeeds. A step without declared outputs
//! is never up to date (nothing shows what its run left), and neither is a service (it is
//! needed running, not done). Nor is a step fed by a step that runs in the same run
//! (`Plan::feeds`; decided by the executor, which passes no record then).
//!
//! The executor neither reads nor writes them: the caller passes the recorded ones in
//! (`records::Recorded`, with the run whose success recorded them) and stores the new ones
//! (the `fingerprints` table of the run history).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::manifest::StepKind;
use crate::plan::artifacts::{compile_glob, glob_prefix, is_glob, normalize, OutputIndex};
use crate::records::Recorded;
use crate::validate::{Step, Workflow};

/// The key a step's fingerprint is stored under.
pub fn key(workflow: &str, step: &str) -> String {
    format!("{workflow}/{step}")
}

/// What `resume` continues: a step is kept only while it is up to date (guarantee 9).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The run resumed: a kept step whose success that run recorded "succeeded in run X".
    pub from: String,
    /// Steps that succeeded (or were kept or up to date) in it: checked for being up to
    /// date even when the resumed run had `--force`, so `resume` does not redo them.
    pub succeeded: HashSet<usize>,
}

/// Why step `s` needs no run, or `None` when it runs: it is up to date with `recorded`,
/// its last success, and `--force` is off or `resume` keeps it.
pub fn needs_no_run(
    wf: &Workflow,
    s: usize,
    recorded: Option<&Recorded>,
    force: bool,
    resume: Option<&Resume>,
) -> Option<String> {
    if force && !resume.is_some_and(|r| r.succeeded.contains(&s)) {
        return None;
    }
    // A step without a recorded success cannot be up to date: its outputs are not even
    // looked at (on a first run, no step is).
    up_to_date(wf, &wf.steps[s], recorded?, resume.map(|r| r.from.as_str()))
}

/// Whether a step can ever be up to date: it declares outputs and is not a service.
pub(crate) fn can_be_up_to_date(step: &Step) -> bool {
    !step.outputs.is_empty() && step.kind() != StepKind::Service
}

/// Why step `step` needs no run now, or `None` when it must run: it is up to date only when
/// `recorded` (its last success) matches both halves of its fingerprint as it is now.
/// `resumed_from`: the run `resume` continues; a success recorded by that run is shown as
/// `succeeded in run X`, any other as `up to date since run Y`.
fn up_to_date(
    wf: &Workflow,
    step: &Step,
    recorded: &Recorded,
    resumed_from: Option<&str>,
) -> Option<String> {
    if !can_be_up_to_date(step) {
        return None;
    }
    // The outputs first: a missing one is found without reading any input.
    if outputs(wf, step)? != recorded.outputs || hash(wf, step) != recorded.inputs {
        return None;
    }
    Some(match resumed_from {
        Some(from) if from == recorded.run_id => format!("succeeded in run {from}"),
        _ => format!("up to date since run {}", recorded.run_id),
    })
}

/// The first half of an attempt's fingerprint (command, cwd, env, inputs), taken as it
/// starts (its outputs are hashed as it succeeds, and both are recorded only then); `None`
/// for a step that is never up to date. Taken at the start, it holds the inputs the step
/// found: an input edited while the step runs no longer matches on the next run.
pub fn at_start(wf: &Workflow, step: &Step) -> Option<String> {
    can_be_up_to_date(step).then(|| hash(wf, step))
}

/// The second half: each declared output's files with their size and modification time;
/// `None` when an output is missing (then the step is not up to date).
pub fn outputs(wf: &Workflow, step: &Step) -> Option<String> {
    check_outputs(wf, step, true).ok().flatten()
}

/// Whether every declared output of a finished attempt is there (`Err`: why the first
/// missing one is not) and, when `hash`, the outputs' half of the fingerprint, each file
/// looked at once for both (a step's success costs one `stat` of its output, not two).
pub fn check_outputs(wf: &Workflow, step: &Step, hash: bool) -> Result<Option<String>, String> {
    if !hash {
        return match step
            .outputs
            .iter()
            .find_map(|o| missing_output(&wf.root, o))
        {
            Some(why) => Err(why),
            None => Ok(None),
        };
    }
    let h = &mut Sha256::new();
    for pattern in &step.outputs {
        let files = matching_files_with_meta(&wf.root, pattern);
        // A match is there; without one, the output may still be (an empty folder given
        // without its `/`), as `missing_output` says.
        if files.is_empty() {
            if let Some(why) = missing_output(&wf.root, pattern) {
                return Err(why);
            }
        }
        field(h, "output", pattern.as_bytes());
        for (path, meta) in files {
            file(h, &path, meta.as_ref());
        }
    }
    Ok(Some(format!("{:x}", std::mem::take(h).finalize())))
}

fn field(h: &mut Sha256, label: &str, value: &[u8]) {
    h.update(label.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value);
}

fn file(h: &mut Sha256, path: &Path, meta: Option<&fs::Metadata>) {
    let size = meta.map_or(0, fs::Metadata::len);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    field(h, "file", path.as_os_str().as_encoded_bytes());
    field(h, "size", &size.to_le_bytes());
    field(h, "mtime", &mtime.to_le_bytes());
}

fn hash(wf: &Workflow, step: &Step) -> String {
    let h = &mut Sha256::new();
    field(h, "command", step.command.display().as_bytes());
    field(h, "cwd", step.cwd.as_os_str().as_encoded_bytes());
    for (k, v) in wf.env.iter().chain(step.env()) {
        field(h, "env", format!("{k}={v}").as_bytes());
    }
    let own = OutputIndex::new([(0, &*step.outputs)]);
    for pattern in &step.inputs {
        field(h, "input", pattern.as_bytes());
        for (path, meta) in matching_files_with_meta(&wf.root, pattern) {
            if !is_own_output(&own, &wf.root, &path) {
                file(h, &path, meta.as_ref());
            }
        }
    }
    format!("{:x}", std::mem::take(h).finalize())
}

/// Whether `path` is one of the outputs `own` indexes (a file, in a folder, or a glob's
/// match): a step's own outputs are left out of its inputs, or a step that writes into a
/// folder it reads would never be up to date, its inputs being taken before it runs.
fn is_own_output(own: &OutputIndex<'_>, root: &Path, path: &Path) -> bool {
    path.strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .is_some_and(|rel| !own.producers(rel).is_empty())
}

/// Whether every declared output exists (`dir/`: a non-empty folder; a glob: one match).
pub fn outputs_exist(root: &Path, outputs: &[String]) -> bool {
    outputs.iter().all(|o| missing_output(root, o).is_none())
}

/// `Some(reason)` when a declared output is not there.
pub fn missing_output(root: &Path, output: &str) -> Option<String> {
    let norm = normalize(output);
    if is_glob(&norm) {
        return matching_files(root, &norm)
            .is_empty()
            .then(|| format!("declared output `{output}` was not produced (no file matches)"));
    }
    let path = root.join(norm.trim_end_matches('/'));
    if norm.ends_with('/') {
        let non_empty = fs::read_dir(&path)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        (!non_empty).then(|| {
            format!("declared output `{output}` was not produced (expected a non-empty folder)")
        })
    } else {
        (!path.exists()).then(|| format!("declared output `{output}` was not produced"))
    }
}

/// Files matching a path or glob, sorted; a folder stands for every file below it.
pub fn matching_files(root: &Path, pattern: &str) -> Vec<PathBuf> {
    let norm = normalize(pattern);
    let mut out = Vec::new();
    if is_glob(&norm) {
        let Ok(m) = compile_glob(&norm) else {
            return out;
        };
        walk(&root.join(glob_prefix(&norm)), &mut |p| {
            if p.strip_prefix(root).is_ok_and(|rel| m.is_match(rel)) {
                out.push(p.to_path_buf());
            }
        });
    } else {
        let path = root.join(norm.trim_end_matches('/'));
        match fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &mut |p| out.push(p.to_path_buf())),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
    out.sort();
    out
}

/// `matching_files` with each file's metadata (`None` when it cannot be read); a plain
/// file, the common input, is looked at once.
pub fn matching_files_with_meta(
    root: &Path,
    pattern: &str,
) -> Vec<(PathBuf, Option<fs::Metadata>)> {
    let norm = normalize(pattern);
    if !is_glob(&norm) {
        let path = root.join(norm.trim_end_matches('/'));
        match fs::metadata(&path) {
            Ok(m) if !m.is_dir() => return vec![(path, Some(m))],
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
    }
    matching_files(root, pattern)
        .into_iter()
        .map(|p| {
            let meta = fs::metadata(&p).ok();
            (p, meta)
        })
        .collect()
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if name != ".git" && name != ".bgflow" {
                    stack.push(p);
                }
            } else {
                f(&p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_outputs_cover_files_folders_and_globs() {
        let root = Path::new("/w");
        let outputs = ["data/sum.txt", "./build/", "reports/*.xml"].map(String::from);
        let own = OutputIndex::new([(0, outputs.as_slice())]);
        for inside in [
            "/w/data/sum.txt",
            "/w/build/a.o",
            "/w/build/sub/b.o",
            "/w/reports/unit.xml",
        ] {
            assert!(is_own_output(&own, root, Path::new(inside)), "{inside}");
        }
        for outside in [
            "/w/data/a.txt",
            "/w/data/sum.txt.bak",
            "/w/builder/a.o",
            "/w/reports/sub/unit.xml",
            "/w/reports/unit.json",
        ] {
            assert!(!is_own_output(&own, root, Path::new(outside)), "{outside}");
        }
    }
}
