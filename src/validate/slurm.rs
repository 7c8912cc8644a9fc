//! The Slurm executor's side of the checks: which steps run on Slurm and what their jobs
//! ask for (file-local), and, once the configuration is known, the cluster itself (`sbatch`,
//! `squeue` and `scancel` on PATH, the partition, whether each job fits it). The cluster is
//! asked with `sinfo` and `scontrol show partition`; nothing is submitted. `--offline`
//! skips the cluster.

use std::process::Command as Process;
use std::time::Duration as StdDuration;

use super::*;
use crate::manifest::{ExecutorKind, Resources, SlurmSection};

/// Time between two `squeue` calls when neither the workflow nor the config says.
pub const DEFAULT_POLL: StdDuration = StdDuration::from_secs(5);

/// `[executor.slurm]` of the workflow over the config's: where and how jobs are submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub poll_interval: Option<Duration>,
    pub extra: Vec<String>,
}

impl Settings {
    /// The workflow's keys, each over the config's.
    pub fn merged(workflow: Option<&SlurmSection>, config: Option<&SlurmSection>) -> Self {
        let pick = |f: fn(&SlurmSection) -> Option<String>| {
            workflow.and_then(f).or_else(|| config.and_then(f))
        };
        Self {
            partition: pick(|s| s.partition.clone()),
            account: pick(|s| s.account.clone()),
            qos: pick(|s| s.qos.clone()),
            poll_interval: workflow
                .and_then(|s| s.poll_interval)
                .or_else(|| config.and_then(|s| s.poll_interval)),
            extra: workflow
                .and_then(|s| s.extra.clone())
                .or_else(|| config.and_then(|s| s.extra.clone()))
                .unwrap_or_default(),
        }
    }

    pub fn poll(&self) -> StdDuration {
        self.poll_interval.map_or(DEFAULT_POLL, |d| d.as_std())
    }
}

/// What a step's Slurm job asks for (`resources`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Job {
    pub cpus: Option<u32>,
    pub mem_mb: Option<u64>,
    pub gpus: Option<u32>,
    pub time: Option<Duration>,
}

impl Job {
    /// The job's time limit in whole minutes: `resources.time`, else the step's timeout with
    /// its grace and a minute (bgflow ends the step first; Slurm's limit is a backstop).
    pub fn minutes(&self, step: &Step) -> Option<u64> {
        let limit = match (self.time, step.timeout()) {
            (Some(t), _) => t.as_std(),
            (None, Some(t)) => t.as_std() + step.kill_grace().as_std() + StdDuration::from_secs(60),
            (None, None) => return None,
        };
        Some(limit.as_secs().div_ceil(60).max(1))
    }
}

/// `512M`, `4G`, `1T`, `2048K` or a number of megabytes, in megabytes.
pub fn parse_mem(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let n: u64 = digits.parse().ok()?;
    let mb = match unit.to_ascii_uppercase().trim_end_matches('B') {
        "" | "M" => n,
        "K" => n.div_ceil(1024),
        "G" => n.checked_mul(1024)?,
        "T" => n.checked_mul(1024 * 1024)?,
        _ => return None,
    };
    (mb > 0).then_some(mb)
}

impl Cx<'_, '_> {
    /// The step's Slurm job when it runs on Slurm (its own `executor`, else the workflow's);
    /// a service on Slurm, a bad `mem` or zero `cpus`/`time` is an error, `resources` on a
    /// local step a warning.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn slurm_job(
        &mut self,
        name: &str,
        first: bool,
        kind: StepKind,
        executor: Option<ExecutorKind>,
        default: ExecutorKind,
        resources: Option<&Resources>,
    ) -> Option<Box<Job>> {
        let doc = self.doc;
        let on_slurm = executor.unwrap_or(default) == ExecutorKind::Slurm;
        if !on_slurm {
            if let (Some(_), true) = (resources, first) {
                self.push(
                    Problem::warning(
                        "resources-ignored",
                        format!("step `{name}` runs locally: its `resources` are not used"),
                    )
                    .at_opt(doc.key_span(&["steps", name, "resources"]), "read only by the slurm executor")
                    .help("set `executor = \"slurm\"` on the step or in [workflow], or remove `resources`"),
                );
            }
            return None;
        }
        if kind == StepKind::Service && first {
            self.push(
                Problem::error(
                    "service-on-slurm",
                    format!("service `{name}` cannot run on Slurm"),
                )
                .at_opt(
                    doc.key_span(&["steps", name, "executor"])
                        .or_else(|| doc.key_span(&["steps", name])),
                    "a service runs only on this machine",
                )
                .help("set `executor = \"local\"` on the service: its probes and dependents need it here"),
            );
        }
        let r = resources.cloned().unwrap_or_default();
        let mem_mb = r.mem.as_deref().and_then(|m| {
            let mb = parse_mem(m);
            if mb.is_none() && first {
                self.error_at(
                    "invalid-value",
                    format!("invalid memory `{m}` in `resources` of step `{name}`"),
                    &["steps", name, "resources", "mem"],
                    "expected e.g. 512M, 4G, 1T or a number of megabytes",
                );
            }
            mb
        });
        if r.cpus == Some(0) && first {
            self.error_at(
                "invalid-value",
                format!("`resources.cpus` of step `{name}` must be at least 1"),
                &["steps", name, "resources", "cpus"],
                "zero",
            );
        }
        if first {
            self.not_zero(
                r.time,
                &["steps", name, "resources", "time"],
                "a job with no time cannot run; leave `time` out for the default",
            );
        }
        Some(Box::new(Job {
            cpus: r.cpus,
            mem_mb,
            gpus: r.gpus,
            time: r.time,
        }))
    }
}

/// Completes the Slurm settings with the configuration's `[executor.slurm]` and, unless
/// `offline`, checks the cluster for the steps that run on it. Problems are added to
/// `checked` (unplaced: they are about the cluster, named in the message).
pub fn check_cluster(checked: &mut Checked, config: Option<&SlurmSection>, offline: bool) {
    let Some(wf) = checked.workflow.as_mut() else {
        return;
    };
    if !wf.steps.iter().any(|s| s.slurm().is_some()) {
        return;
    }
    let settings = Settings::merged(wf.slurm_section.as_ref(), config);
    wf.slurm = Some(settings.clone());
    if offline {
        return;
    }
    let wf = checked.workflow.as_ref().expect("checked above");
    let mut problems = Vec::new();
    let missing: Vec<&str> = ["sbatch", "squeue", "scancel", "sinfo", "scontrol"]
        .into_iter()
        .filter(|t| which::which(t).is_err())
        .collect();
    if !missing.is_empty() {
        problems.push(
            Problem::error(
                "slurm-missing",
                format!(
                    "{} step(s) run on Slurm, but {} {} not on PATH",
                    wf.steps.iter().filter(|s| s.slurm().is_some()).count(),
                    missing.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", "),
                    if missing.len() == 1 { "is" } else { "are" }
                ),
            )
            .help("run bgflow where the Slurm client commands are installed (docs/slurm.md), or `executor = \"local\"`"),
        );
        checked.problems.append(&mut problems);
        return;
    }
    match Partition::read(settings.partition.as_deref()) {
        Err(why) => problems.push(
            Problem::error("slurm-partition", why)
                .help("name one of `sinfo --summarize` in [executor.slurm] partition"),
        ),
        Ok(part) => {
            for step in wf.steps.iter() {
                let Some(job) = step.slurm() else { continue };
                if let Some(why) = part.refuses(step, job) {
                    problems.push(
                        Problem::error(
                            "slurm-resources",
                            format!(
                                "step `{}` does not fit partition `{}`: {why}",
                                step.name, part.name
                            ),
                        )
                        .help(
                            "ask for less in the step's `resources`, or choose another partition",
                        ),
                    );
                }
            }
        }
    }
    checked.problems.append(&mut problems);
}

/// What a partition offers, read from `scontrol show partition` and `sinfo`.
#[derive(Debug, Default)]
struct Partition {
    name: String,
    /// The most CPUs, memory (MB) and GPUs of one node of it.
    cpus: u64,
    mem_mb: u64,
    gpus: u64,
    /// MaxTime in minutes (`None`: UNLIMITED).
    max_minutes: Option<u64>,
    /// MaxMemPerNode (MB), when set.
    max_mem_per_node: Option<u64>,
}

impl Partition {
    /// The partition named (or the cluster's default), with its nodes' largest sizes.
    fn read(name: Option<&str>) -> Result<Self, String> {
        let name = match name {
            Some(n) => n.to_owned(),
            None => default_partition()?,
        };
        let out = run("scontrol", &["show", "partition", &name, "--oneliner"])
            .map_err(|e| format!("Slurm partition `{name}` does not exist ({e})"))?;
        let field = |key: &str| {
            out.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .map(str::to_owned)
        };
        let max_minutes = field("MaxTime").and_then(|t| parse_slurm_minutes(&t));
        let max_mem_per_node = field("MaxMemPerNode").and_then(|m| m.parse().ok());
        let nodes = run(
            "sinfo",
            &[
                "--noheader",
                "--partition",
                &name,
                "--Node",
                "--format=%c|%m|%G",
            ],
        )
        .map_err(|e| format!("cannot read the nodes of Slurm partition `{name}`: {e}"))?;
        let mut part = Self {
            name,
            max_minutes,
            max_mem_per_node,
            ..Self::default()
        };
        for line in nodes.lines() {
            let mut f = line.split('|');
            let cpus: u64 = f.next().and_then(|c| c.trim().parse().ok()).unwrap_or(0);
            let mem: u64 = f
                .next()
                .and_then(|m| m.trim().trim_end_matches('+').parse().ok())
                .unwrap_or(0);
            let gpus = f.next().map_or(0, gpu_count);
            part.cpus = part.cpus.max(cpus);
            part.mem_mb = part.mem_mb.max(mem);
            part.gpus = part.gpus.max(gpus);
        }
        if nodes.trim().is_empty() {
            return Err(format!("Slurm partition `{}` has no nodes", part.name));
        }
        Ok(part)
    }

    /// Why `job` cannot run in this partition, if it cannot.
    fn refuses(&self, step: &Step, job: &Job) -> Option<String> {
        let cpus = u64::from(job.cpus.unwrap_or(1));
        if cpus > self.cpus {
            return Some(format!(
                "`resources.cpus` = {cpus}, but its largest node has {} CPUs",
                self.cpus
            ));
        }
        if let Some(mem) = job.mem_mb {
            let limit = self.max_mem_per_node.unwrap_or(u64::MAX).min(self.mem_mb);
            if mem > limit {
                return Some(format!(
                    "`resources.mem` = {mem} MB, but a job there may have at most {limit} MB"
                ));
            }
        }
        if let Some(g) = job.gpus.filter(|&g| g > 0) {
            if u64::from(g) > self.gpus {
                return Some(format!(
                    "`resources.gpus` = {g}, but its nodes have {} GPUs",
                    self.gpus
                ));
            }
        }
        if let (Some(want), Some(max)) = (job.minutes(step), self.max_minutes) {
            if want > max {
                return Some(format!(
                    "its job needs {want} min (`resources.time`, else `timeout` + `kill_grace` + 1 min), but the partition's MaxTime is {max} min"
                ));
            }
        }
        None
    }
}

/// The cluster's default partition (marked `*` by `sinfo`).
fn default_partition() -> Result<String, String> {
    let out = run("sinfo", &["--noheader", "--format=%P"])
        .map_err(|e| format!("cannot list the Slurm partitions: {e}"))?;
    out.lines()
        .find_map(|l| l.trim().strip_suffix('*').map(str::to_owned))
        .ok_or_else(|| {
            "the Slurm cluster has no default partition; set [executor.slurm] partition".to_owned()
        })
}

/// `gpu:2,foo:1` or `gpu:a100:4(S:0)` -> the number of GPUs.
fn gpu_count(gres: &str) -> u64 {
    gres.split(',')
        .filter(|g| g.trim_start().starts_with("gpu"))
        .filter_map(|g| {
            let g = g.split('(').next().unwrap_or(g);
            g.rsplit(':').next()?.trim().parse::<u64>().ok()
        })
        .sum()
}

/// `UNLIMITED` -> None; `30`, `1:00:00`, `2-00:00:00` -> minutes.
fn parse_slurm_minutes(t: &str) -> Option<u64> {
    if t.eq_ignore_ascii_case("UNLIMITED") || t.eq_ignore_ascii_case("INFINITE") {
        return None;
    }
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, t),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let minutes = match parts.as_slice() {
        [m] => *m,
        [h, m, s] => h * 60 + m + u64::from(*s > 0),
        [m, s] => m + u64::from(*s > 0),
        _ => return None,
    };
    Some(days * 24 * 60 + minutes)
}

/// How long `plan` waits for one Slurm command (a cluster whose controller is down makes
/// them retry for a while): `plan` stays bounded (guarantee 12).
const QUERY_LIMIT: StdDuration = StdDuration::from_secs(20);

/// A Slurm command's stdout, or its stderr as the error; killed after `QUERY_LIMIT`.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = crate::bounded::output_within(
        Process::new(program)
            .args(args)
            .env("SLURM_TIME_FORMAT", "standard"),
        QUERY_LIMIT,
    )?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.trim().lines().next().unwrap_or("failed").to_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_are_megabytes() {
        assert_eq!(parse_mem("512"), Some(512));
        assert_eq!(parse_mem("512M"), Some(512));
        assert_eq!(parse_mem("4G"), Some(4096));
        assert_eq!(parse_mem("4gb"), Some(4096));
        assert_eq!(parse_mem("1T"), Some(1024 * 1024));
        assert_eq!(parse_mem("2048K"), Some(2));
        assert_eq!(parse_mem("0"), None);
        assert_eq!(parse_mem("lots"), None);
        assert_eq!(parse_mem("4X"), None);
    }

    #[test]
    fn partition_time_limits_are_minutes() {
        assert_eq!(parse_slurm_minutes("UNLIMITED"), None);
        assert_eq!(parse_slurm_minutes("30"), Some(30));
        assert_eq!(parse_slurm_minutes("1:00:00"), Some(60));
        assert_eq!(parse_slurm_minutes("2-00:00:00"), Some(2880));
        assert_eq!(parse_slurm_minutes("00:30:01"), Some(31));
    }

    #[test]
    fn the_workflows_slurm_keys_win_key_by_key_over_the_configs() {
        let wf = SlurmSection {
            partition: Some("gpu".into()),
            ..SlurmSection::default()
        };
        let config = SlurmSection {
            partition: Some("batch".into()),
            account: Some("lab".into()),
            extra: Some(vec!["--exclusive".into()]),
            ..SlurmSection::default()
        };
        let s = Settings::merged(Some(&wf), Some(&config));
        assert_eq!(s.partition.as_deref(), Some("gpu"));
        assert_eq!(s.account.as_deref(), Some("lab"));
        assert_eq!(s.extra, vec!["--exclusive".to_owned()]);
        assert_eq!(s.poll(), DEFAULT_POLL);
    }

    #[test]
    fn gres_strings_count_gpus() {
        assert_eq!(gpu_count("(null)"), 0);
        assert_eq!(gpu_count("gpu:2"), 2);
        assert_eq!(gpu_count("gpu:a100:4(S:0-1),tmp:1"), 4);
    }
}
