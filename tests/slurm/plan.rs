//! `plan` of workflows with Slurm steps: what it shows, what it refuses, offline and against
//! the cluster.

use super::*;

#[test]
fn plan_refuses_resources_that_do_not_fit_the_partition() {
    if !slurm_here() {
        return;
    }
    let home = Home::new(&format!(
        r#"{HEADER}
[steps.huge]
run = "true"
resources = {{ cpus = 4096, mem = "1G" }}
"#
    ));
    let out = home.bgflow(&["plan", "wf.toml"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("does not fit partition"), "{all}");
    assert!(all.contains("`resources.cpus` = 4096"), "{all}");
    // `run` refuses it the same way, and nothing is submitted.
    let out = home.bgflow(&["run", "wf.toml", "--progress", "never"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // --offline does not ask the cluster.
    let out = home.bgflow(&["plan", "--offline", "wf.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let home = Home::new(
        r#"[workflow]
name = "nowhere"
executor = "slurm"

[executor.slurm]
partition = "no-such-partition"

[steps.a]
run = "true"
"#,
    );
    let out = home.bgflow(&["plan", "wf.toml"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("no-such-partition"), "{all}");
}

/// File-local: needs no cluster, so it runs even with `BGFLOW_SKIP_SLURM_TESTS=1`.
#[test]
fn plan_refuses_a_service_on_slurm_even_offline() {
    let home = Home::new(
        r#"[workflow]
name = "svc"
executor = "slurm"

[steps.api]
kind = "service"
run = "sleep 1000"
ready = { tcp = "127.0.0.1:1" }

[steps.bad-mem]
run = "true"
resources = { mem = "lots" }
"#,
    );
    let out = home.bgflow(&["plan", "--offline", "wf.toml"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(all.contains("service `api` cannot run on Slurm"), "{all}");
    assert!(all.contains("invalid memory `lots`"), "{all}");
}

/// File-local: needs no cluster.
#[test]
fn misspelt_slurm_keys_are_unknown_keys_with_a_hint() {
    let home = Home::new(
        r#"[workflow]
name = "typo"
executor = "slurm"

[executor.slurm]
partiton = "debug"

[steps.a]
run = "true"
resources = { cpu = 2 }
"#,
    );
    let out = home.bgflow(&["plan", "--offline", "wf.toml"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{all}");
    assert!(
        all.contains("`partiton`") && all.contains("partition"),
        "{all}"
    );
    assert!(all.contains("`cpu`") && all.contains("cpus"), "{all}");
}

/// File-local: needs no cluster.
#[test]
fn plan_shows_which_steps_run_on_slurm_and_what_they_ask_for() {
    let home = Home::new(
        r#"[workflow]
name = "mixed"
executor = "slurm"

[steps.big]
run = "true"
resources = { cpus = 8, mem = "16G", time = "2h" }

[steps.here]
executor = "local"
run = "true"
needs = ["big"]
"#,
    );
    let out = home.bgflow(&["plan", "--offline", "--json", "wf.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("plan --json");
    let steps = &doc["files"][0]["plan"]["steps"];
    assert_eq!(
        steps[0]["slurm"],
        serde_json::json!({"cpus": 8, "mem_mb": 16384, "gpus": null, "time": "2h"})
    );
    assert!(steps[1].get("slurm").is_none(), "{}", steps[1]);
    let human = home.bgflow(&["plan", "--offline", "wf.toml"]);
    let shown = String::from_utf8_lossy(&human.stdout);
    assert!(
        shown.contains("big (task, on slurm, 8 cpus, 16384 MB, time 2h)"),
        "{shown}"
    );
    assert!(shown.contains("here (task)"), "{shown}");
}
