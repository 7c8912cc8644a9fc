//! Resources: `bgflow://runs/{id}` (a run and its steps, as `get_run` returns them) and
//! `bgflow://runs/{id}/logs/{step}` (the last 16 KiB of a step's log), with an update
//! notification when a watched run changes (its state, a step's state, steps done; a
//! log's size). Watched runs are read every 250 ms, so a change is told within about
//! 0.3 s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rmcp::model::{
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam,
};
use rmcp::{ErrorData as McpError, Peer, RoleServer};

use super::args::LOG_CAP;
use crate::runs;
use crate::runs::history::History;

/// How often watched runs are read.
pub const EVERY: Duration = Duration::from_millis(250);

const PREFIX: &str = "bgflow://runs/";

/// What a URI names: a run, or one step's log of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Run(String),
    Log(String, String),
}

fn target(uri: &str) -> Option<Target> {
    let rest = uri.strip_prefix(PREFIX)?;
    match rest.split('/').collect::<Vec<_>>().as_slice() {
        [id] if !id.is_empty() => Some(Target::Run((*id).to_owned())),
        [id, "logs", step] if !id.is_empty() && !step.is_empty() => {
            Some(Target::Log((*id).to_owned(), (*step).to_owned()))
        }
        _ => None,
    }
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("bgflow://runs/{id}", "run")
            .with_description("A run and its steps (as get_run returns them)")
            .with_mime_type("application/json"),
        ResourceTemplate::new("bgflow://runs/{id}/logs/{step}", "step log")
            .with_description("The last 16 KiB of one step's log")
            .with_mime_type("text/plain"),
    ]
}

/// The 50 newest runs as resources (none when there is no history yet).
pub fn list(history: &History) -> Vec<Resource> {
    history
        .with(|store| runs::list(store, None, 50))
        .map(|l| {
            l.runs
                .iter()
                .map(|r| {
                    Resource::new(format!("{PREFIX}{}", r.id), format!("run {}", r.id))
                        .with_description(format!("{} ({})", r.workflow, r.state))
                        .with_mime_type("application/json")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The contents of `uri`.
pub fn read(history: &History, uri: &str) -> Result<ReadResourceResult, McpError> {
    let not_found = |why: String| McpError::resource_not_found(why, None);
    let t = target(uri).ok_or_else(|| not_found(format!("no resource {uri}")))?;
    history
        .with(|store| Ok(contents(store, t, uri)))
        .map_err(|e| not_found(e.to_string()))?
}

fn contents(
    store: &crate::store::Store,
    t: Target,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let not_found = |why: String| McpError::resource_not_found(why, None);
    let contents = match t {
        Target::Run(id) => {
            let v = runs::status(store, &id).map_err(|e| not_found(e.to_string()))?;
            let json = serde_json::json!({"version": 1, "run": v.run, "steps": v.steps});
            ResourceContents::text(json.to_string(), uri).with_mime_type("application/json")
        }
        Target::Log(id, step) => {
            let id = runs::resolve(store, &id).map_err(|e| not_found(e.to_string()))?;
            let steps =
                runs::logs::steps(store, &id, Some(&step)).map_err(|e| not_found(e.to_string()))?;
            let path = PathBuf::from(&steps[0].log_path);
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            let from = len.saturating_sub(LOG_CAP as u64);
            let (text, _, _) = runs::logs::read_page(&path, from, LOG_CAP)
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            ResourceContents::text(text, uri)
        }
    };
    Ok(ReadResourceResult::new(vec![contents]))
}

/// What a change of `uri` is seen by: a run's state, steps done and step states; a log's
/// size and its step's state. `None` when it cannot be read now.
fn fingerprint(store: &crate::store::Store, uri: &str) -> Option<String> {
    match target(uri)? {
        Target::Run(id) => {
            // What the history holds is enough to see a change; no /proc scan or `squeue`.
            let v = runs::status::stored(store, &id).ok()?;
            let steps: Vec<&str> = v.steps.iter().map(|s| s.state.as_str()).collect();
            Some(format!(
                "{} {} {}",
                v.run.state,
                v.run.steps_done,
                steps.join(",")
            ))
        }
        Target::Log(id, step) => {
            let id = runs::resolve(store, &id).ok()?;
            let s = runs::logs::steps(store, &id, Some(&step)).ok()?;
            let len = std::fs::metadata(&s[0].log_path).map_or(0, |m| m.len());
            Some(format!("{} {len}", s[0].state))
        }
    }
}

/// The fingerprints of `uris` now.
pub fn fingerprints(history: &History, uris: &[String]) -> BTreeMap<String, Option<String>> {
    history
        .with(|store| {
            Ok(uris
                .iter()
                .map(|u| (u.clone(), fingerprint(store, u)))
                .collect())
        })
        .unwrap_or_else(|_| uris.iter().map(|u| (u.clone(), None)).collect())
}

/// Watches the URIs `uris()` returns (read again each round) and calls `changed` with each
/// one whose fingerprint changed, until `changed` returns false.
pub async fn watch<U, F, Fut>(history: History, mut uris: U, mut changed: F)
where
    U: FnMut() -> Vec<String>,
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut last: BTreeMap<String, Option<String>> = BTreeMap::new();
    loop {
        let now_uris = uris();
        let h = history.clone();
        let now = tokio::task::spawn_blocking(move || fingerprints(&h, &now_uris))
            .await
            .unwrap_or_default();
        for (uri, fp) in &now {
            if let Some(before) = last.get(uri) {
                if before != fp && !changed(uri.clone()).await {
                    return;
                }
            }
        }
        last = now;
        tokio::time::sleep(EVERY).await;
    }
}

/// Sends `notifications/resources/updated` for `uri` to a client of the handshake
/// revision; false once the client is gone.
pub async fn notify(peer: &Peer<RoleServer>, uri: String) -> bool {
    peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
        .await
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::{target, Target};

    #[test]
    fn resource_uris_name_a_run_or_a_step_log_and_nothing_else() {
        assert_eq!(
            target("bgflow://runs/ab12"),
            Some(Target::Run("ab12".into()))
        );
        assert_eq!(
            target("bgflow://runs/ab12/logs/build"),
            Some(Target::Log("ab12".into(), "build".into()))
        );
        assert_eq!(target("bgflow://runs/"), None);
        assert_eq!(target("bgflow://runs/ab12/other/x"), None);
        assert_eq!(target("file:///etc/passwd"), None);
    }
}
