//! `bgflow mcp` driven by rmcp's client over the real binary's stdin/stdout: the tools,
//! their schemas, runs to the end, failures, logs, stop and resume. Every wait is a poll
//! with a deadline.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{json, Value};

#[derive(Clone, Default)]
struct Client {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    updated: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl ClientHandler for Client {
    fn on_progress(
        &self,
        p: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.progress.lock().expect("lock").push(p);
        std::future::ready(())
    }

    fn on_resource_updated(
        &self,
        p: rmcp::model::ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        let now = Instant::now();
        self.updated.lock().expect("lock").push((p.uri, now));
        std::future::ready(())
    }
}

type Session = RunningService<RoleClient, Client>;

/// `bgflow mcp [extra]` started in `dir`, with a client session on its pipes. Its state
/// folder is `dir/.bgflow`, where its workflows' runs go anyway: found by walking up from
/// `dir`, a stray `/tmp/.bgflow` left by someone's run in `/tmp` would be read instead.
async fn connect(dir: &Path, extra: &[&str]) -> (Session, Client) {
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_bgflow")).configure(|c| {
        c.arg("mcp").args(&extra).current_dir(dir);
        c.env("BGFLOW_STATE_DIR", dir.join(".bgflow"))
            .env_remove("BGFLOW_CONFIG");
    });
    let client = Client::default();
    let session = client
        .clone()
        .serve(TokioChildProcess::new(cmd).expect("spawn bgflow mcp"))
        .await
        .expect("an MCP session");
    (session, client)
}

async fn call_with(
    s: &Session,
    name: &str,
    args: Value,
    meta: Option<RequestMetaObject>,
) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let mut p = CallToolRequestParams::new(name.to_owned()).with_arguments(args);
    p.meta = meta;
    s.call_tool(p)
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn call(s: &Session, name: &str, args: Value) -> CallToolResult {
    call_with(s, name, args, None).await
}

/// The structured content of a successful result (panics with its text otherwise).
#[track_caller]
fn data(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "an error: {:?}", r.content);
    r.structured_content.clone().expect("structured content")
}

fn text(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for `run_id` through `wait_for_run` (calls of 5 s, 60 s in all).
async fn wait_end(s: &Session, run_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = data(&call(s, "wait_for_run", json!({"run_id": run_id, "timeout_s": 5})).await);
        if r["ended"] == true {
            return r;
        }
        assert!(Instant::now() < deadline, "run {run_id} did not end: {r}");
    }
}

/// `w.toml` holding `toml` in a new folder, run through a new session to its end: the
/// folder, the session, the run's id and `wait_for_run`'s answer.
async fn ran(toml: &str) -> (tempfile::TempDir, Session, String, Value) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("w.toml"), toml).expect("write");
    let (s, _) = connect(dir.path(), &[]).await;
    let run = data(&call(&s, "run_workflow", json!({"file": "w.toml"})).await);
    let id = run["run_id"].as_str().expect("a run id").to_owned();
    let end = wait_end(&s, &id).await;
    (dir, s, id, end)
}

const EVERY_TOOL: [&str; 10] = [
    "get_events",
    "get_logs",
    "get_run",
    "list_runs",
    "plan_workflow",
    "resume_run",
    "run_workflow",
    "start_process",
    "stop_run",
    "wait_for_run",
];

#[tokio::test]
async fn mcp_lists_every_tool_with_an_input_and_an_output_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    let tools = s.list_all_tools().await.expect("tools/list");
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, EVERY_TOOL);
    for t in &tools {
        assert!(t.output_schema.is_some(), "{} has no output schema", t.name);
        assert_eq!(
            t.input_schema.get("type"),
            Some(&json!("object")),
            "{}",
            t.name
        );
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 20),
            "{}",
            t.name
        );
        assert_eq!(
            t.input_schema.get("additionalProperties"),
            Some(&json!(false)),
            "{} must say that it takes no other argument",
            t.name
        );
    }
    s.cancel().await.expect("close");
}

/// A misspelt argument is refused, naming it and the tool's arguments, instead of being
/// dropped: `timeout_seconds` for `timeout_s` would otherwise wait 60 s, not what was asked.
#[tokio::test]
async fn mcp_an_unknown_argument_is_refused_with_the_arguments_the_tool_takes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    let args = json!({"run_id": "nope", "timeout_seconds": 600});
    let Value::Object(args) = args else {
        unreachable!()
    };
    let p = CallToolRequestParams::new("wait_for_run".to_owned()).with_arguments(args);
    let message = match s.call_tool(p).await {
        Ok(r) => {
            assert_eq!(r.is_error, Some(true), "accepted: {r:?}");
            text(&r)
        }
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("unknown field `timeout_seconds`") && message.contains("timeout_s"),
        "{message}"
    );
    // The same call spelt right reaches the tool (and fails there: no history yet).
    let r = call(
        &s,
        "wait_for_run",
        json!({"run_id": "nope", "timeout_s": 1}),
    )
    .await;
    assert!(text(&r).contains("no run history"), "{}", text(&r));
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_read_only_serves_only_the_observing_tools_and_refuses_run_workflow() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("w.toml"),
        "[workflow]\nname = \"w\"\n\n[steps.a]\nrun = \"true\"\n",
    )
    .expect("write");
    let (s, _) = connect(dir.path(), &["--read-only"]).await;
    let tools = s.list_all_tools().await.expect("tools/list");
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get_events",
            "get_logs",
            "get_run",
            "list_runs",
            "plan_workflow",
            "wait_for_run"
        ]
    );
    let mut p = CallToolRequestParams::new("run_workflow");
    p.arguments = json!({"file": "w.toml"}).as_object().cloned();
    let refused = s.call_tool(p).await;
    assert!(
        refused.is_err() || refused.as_ref().is_ok_and(|r| r.is_error == Some(true)),
        "run_workflow was served read-only: {refused:?}"
    );
    assert!(!dir.path().join(".bgflow").exists(), "something ran");
    // The refusal names the tools this server has, not the ones it left out.
    let message = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(
        message.contains("tool not found: `run_workflow`")
            && message.contains("this server's tools: get_events, get_logs")
            && !message.contains("stop_run"),
        "{message}"
    );
    s.cancel().await.expect("close");
}

/// Seen with the Python `mcp` client: a guessed tool name (`validate_workflow`) got rmcp's
/// bare "tool not found". The error names the tools, and the closest one.
#[tokio::test]
async fn mcp_an_unknown_tool_is_refused_with_the_tools_there_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    for (asked, hint) in [
        ("validate_workflow", None),
        ("get_runs", Some("(did you mean `get_run`?)")),
    ] {
        let p = CallToolRequestParams::new(asked.to_owned());
        let message = match s.call_tool(p).await {
            Ok(r) => panic!("{asked} was served: {r:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains(&format!("tool not found: `{asked}`"))
                && message.contains("this server's tools: get_events, get_logs, get_run,")
                && message.contains("plan_workflow")
                && hint.is_none_or(|h| message.contains(h)),
            "{message}"
        );
    }
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_plan_and_run_of_an_invalid_workflow_give_its_problems_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.toml"),
        "[workflow]\nname = \"bad\"\n\n[steps.a]\nrun = \"true\"\nneeds = [\"nope\"]\n",
    )
    .expect("write");
    let (s, _) = connect(dir.path(), &[]).await;
    let plan = data(&call(&s, "plan_workflow", json!({"file": "bad.toml"})).await);
    assert_eq!(plan["valid"], false, "{plan}");
    let p = &plan["problems"][0];
    assert_eq!(p["file"], "bad.toml", "{plan}");
    assert_eq!(p["line"], 6, "{plan}");
    assert!(p["column"].as_u64().is_some_and(|c| c > 0), "{plan}");

    let run = call(&s, "run_workflow", json!({"file": "bad.toml"})).await;
    assert_eq!(run.is_error, Some(true), "an invalid workflow ran: {run:?}");
    let sc = run
        .structured_content
        .clone()
        .expect("the refusal's problems");
    assert_eq!(sc["exit_code"], 3, "{sc}");
    assert_eq!(sc["problems"][0]["line"], 6, "{sc}");
    assert!(text(&run).contains("bad.toml:6:"), "{}", text(&run));
    // Nothing was recorded as run.
    let runs = call(&s, "list_runs", json!({})).await;
    assert!(
        runs.is_error == Some(true) || data(&runs)["runs"].as_array().is_some_and(Vec::is_empty)
    );
    s.cancel().await.expect("close");
}

/// A step that prints on stdout and reads stdin runs to the end through the server, and
/// the session goes on: the step never had the server's pipes.
#[tokio::test]
async fn mcp_run_workflow_runs_to_the_end_through_wait_for_run_and_steps_never_touch_the_protocol()
{
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("w.toml"),
        "[workflow]\nname = \"w\"\n\n[steps.noisy]\nrun = \"echo '{\\\"jsonrpc\\\":\\\"2.0\\\",\\\"id\\\":99}'; echo to-stdout; cat; echo after-cat\"\n\n[steps.second]\nrun = \"echo second-done\"\nneeds = [\"noisy\"]\n",
    )
    .expect("write");
    let (s, client) = connect(dir.path(), &[]).await;
    let started = Instant::now();
    let run = data(&call(&s, "run_workflow", json!({"file": "w.toml"})).await);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "run_workflow blocked"
    );
    let id = run["run_id"].as_str().expect("a run id").to_owned();
    let meta = RequestMetaObject::with_progress_token(ProgressToken(
        rmcp::model::NumberOrString::Number(7),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let end = loop {
        let r = data(
            &call_with(
                &s,
                "wait_for_run",
                json!({"run_id": id, "timeout_s": 5}),
                Some(meta.clone()),
            )
            .await,
        );
        if r["ended"] == true {
            break r;
        }
        assert!(Instant::now() < deadline, "the run did not end: {r}");
    };
    assert_eq!(end["run"]["state"], "succeeded", "{end}");
    assert_eq!(end["failures"], json!([]), "{end}");
    let progress = client.progress.lock().expect("lock").clone();
    assert!(!progress.is_empty(), "no progress notification was sent");
    assert!(
        progress.iter().all(|p| p.total == Some(2.0)),
        "{progress:?}"
    );
    let log = data(&call(&s, "get_logs", json!({"run_id": id, "step": "noisy"})).await);
    assert!(
        log["text"]
            .as_str()
            .is_some_and(|t| t.contains("to-stdout") && t.contains("after-cat")),
        "{log}"
    );
    // The session still answers after the steps printed.
    let again = data(&call(&s, "get_run", json!({"run_id": id})).await);
    assert_eq!(again["steps"].as_array().map(Vec::len), Some(2), "{again}");
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_wait_for_run_returns_each_failure_and_resume_runs_what_failed_once_fixed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wf = dir.path().join("w.toml");
    let body = |cmd: &str| {
        format!("[workflow]\nname = \"w\"\n\n[steps.ok]\nrun = \"echo fine > ok.txt\"\noutputs = [\"ok.txt\"]\n\n[steps.check]\nrun = \"{cmd}\"\nneeds = [\"ok\"]\n")
    };
    std::fs::write(
        &wf,
        body("test -e fixed || { echo the-reason-it-broke; exit 3; }"),
    )
    .expect("write");
    let (s, _) = connect(dir.path(), &[]).await;
    let id = data(&call(&s, "run_workflow", json!({"file": "w.toml"})).await)["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let end = wait_end(&s, &id).await;
    assert_eq!(end["run"]["state"], "failed", "{end}");
    let f = &end["failures"][0];
    assert_eq!(f["step"], "check", "{end}");
    assert_eq!(f["exit_code"], 3, "{end}");
    assert!(
        f["last_lines"]
            .as_str()
            .is_some_and(|t| t.contains("the-reason-it-broke")),
        "{end}"
    );
    assert!(
        f["log_path"]
            .as_str()
            .is_some_and(|p| Path::new(p).is_file()),
        "{end}"
    );

    std::fs::write(dir.path().join("fixed"), "").expect("fix");
    // A prefix of the id, as the CLI takes; `resumed_from` is the run's id in full.
    let resumed = data(&call(&s, "resume_run", json!({"run_id": &id[..5]})).await);
    assert_eq!(resumed["resumed_from"], id.as_str(), "{resumed}");
    let new_id = resumed["run_id"].as_str().expect("a new run id").to_owned();
    assert_ne!(new_id, id);
    let end = wait_end(&s, &new_id).await;
    assert_eq!(end["run"]["state"], "succeeded", "{end}");
    let ok_step = end["steps"]
        .as_array()
        .and_then(|v| v.iter().find(|s| s["name"] == "ok"))
        .expect("step ok")
        .clone();
    assert_eq!(
        ok_step["state"], "skipped",
        "the step that succeeded ran again: {ok_step}"
    );
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_start_process_then_get_logs_pages_with_offsets_and_says_when_it_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    let id = data(
        &call(&s, "start_process", json!({"command": "for i in 1 2 3 4 5 6 7 8 9 10; do echo line-$i; done", "name": "count"})).await,
    )["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let end = wait_end(&s, &id).await;
    assert_eq!(end["run"]["state"], "succeeded", "{end}");
    let mut offset = 0u64;
    let mut all = String::new();
    let mut pages = 0;
    loop {
        let p = data(
            &call(
                &s,
                "get_logs",
                json!({"run_id": id, "offset": offset, "max_bytes": 20}),
            )
            .await,
        );
        all.push_str(p["text"].as_str().expect("text"));
        offset = p["next_offset"].as_u64().expect("next_offset");
        pages += 1;
        assert!(pages < 50, "the pages do not end");
        if p["truncated"] == false {
            break;
        }
        assert!(p["text"].as_str().is_some_and(|t| t.len() <= 20), "{p}");
    }
    assert!(pages > 2, "20-byte pages of 80 bytes came in {pages}");
    let want: String = (1..=10).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(all, want);
    let tail = data(&call(&s, "get_logs", json!({"run_id": id, "tail": 2})).await);
    assert_eq!(tail["text"], "line-9\nline-10\n");
    assert_eq!(tail["truncated"], false);
    let ev = data(&call(&s, "get_events", json!({"run_id": id})).await);
    assert!(
        ev["events"].as_array().is_some_and(|e| !e.is_empty()),
        "{ev}"
    );
    let after = data(&call(&s, "get_events", json!({"run_id": id, "after": ev["next"]})).await);
    assert_eq!(after["events"], json!([]), "{after}");
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_stop_run_ends_a_running_command_and_leaves_no_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = format!("mcp-stop-marker-{}", std::process::id());
    let (s, _) = connect(dir.path(), &[]).await;
    let id = data(
        &call(&s, "start_process", json!({"command": ["sh", "-c", format!("sleep 3073; echo {marker}")], "name": "sleeper"})).await,
    )["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::live_processes(&marker).is_empty() {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A short wait returns the current state, not ended.
    let waited = data(&call(&s, "wait_for_run", json!({"run_id": id, "timeout_s": 0.2})).await);
    assert_eq!(waited["ended"], false, "{waited}");
    let stopped = data(&call(&s, "stop_run", json!({"run_id": id})).await);
    assert_eq!(stopped["was_running"], true, "{stopped}");
    assert_eq!(stopped["state"], "cancelled", "{stopped}");
    let run = data(&call(&s, "get_run", json!({"run_id": id})).await);
    assert!(
        run["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("asked to stop by the MCP tool `stop_run` (pid ")),
        "{run}"
    );
    // The shell and its `sleep` child (which does not carry the marker); a number no
    // other test's `sleep` uses, as the check matches command lines by substring.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::live_processes(&marker).is_empty()
        || !common::live_processes("sleep 3073").is_empty()
    {
        assert!(Instant::now() < deadline, "a process of the run survived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::assert_no_process(&marker);
    common::assert_no_process("sleep 3073");
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_get_run_and_list_runs_name_a_lost_runs_processes_and_stop_run_ends_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    let id = data(
        &call(
            &s,
            "start_process",
            json!({"command": ["sh", "-c", "sleep 3074 & sleep 3074; wait"], "name": "orphans"}),
        )
        .await,
    )["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::live_processes("sleep 3074").len() < 3 {
        assert!(Instant::now() < deadline, "the command never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let run = data(&call(&s, "get_run", json!({"run_id": id})).await);
    let supervisor = run["run"]["supervisor_pid"]
        .as_i64()
        .expect("supervisor pid");
    let killed = std::process::Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let sleeps = |run: &Value| {
        run["still_running"].as_array().map_or(0, |p| {
            p.iter().filter(|p| p["command"] == "sleep 3074").count()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let lost = loop {
        let r = data(&call(&s, "get_run", json!({"run_id": id})).await);
        if r["run"]["state"] == "lost" {
            break r;
        }
        assert!(Instant::now() < deadline, "never lost: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(sleeps(&lost["run"]), 2, "{lost}");
    let listed = data(&call(&s, "list_runs", json!({"status": "lost"})).await);
    assert_eq!(sleeps(&listed["runs"][0]), 2, "{listed}");
    data(&call(&s, "stop_run", json!({"run_id": id})).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !common::live_processes("sleep 3074").is_empty() {
        assert!(
            Instant::now() < deadline,
            "a process of the lost run survived stop_run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = data(&call(&s, "get_run", json!({"run_id": id})).await);
    assert_eq!(after["run"]["still_running"], json!([]), "{after}");
    s.cancel().await.expect("close");
}

/// Seen with the Python `mcp` client on markupsafe's workflow: a failing test step's entry
/// in `failures` said only "exit code 1" and pytest's last lines; the failing tests that
/// bgflow read from its JUnit report were only deep in `steps`. They are in the failure
/// now, as `failing_tests`; a step without a report has no such key.
#[tokio::test]
async fn mcp_wait_for_run_names_a_test_steps_failing_tests_in_its_failure() {
    let report = r#"<testsuite><testcase classname=\"t\" name=\"good\"/><testcase classname=\"t\" name=\"bad\"><failure type=\"AssertionError\" message=\"1 != 2\">trace</failure></testcase></testsuite>"#;
    let (_dir, s, _, end) = ran(&format!(
        "[workflow]\nname = \"w\"\nfail_fast = false\n\n[steps.unit]\nkind = \"test\"\njunit = \"r.xml\"\nrun = \"printf '%s' '{report}' > r.xml; exit 1\"\n\n[steps.plain]\nrun = \"exit 2\"\n"
    ))
    .await;
    let failure = |name: &str| {
        end["failures"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["step"] == name))
            .unwrap_or_else(|| panic!("no failure for {name}: {end}"))
            .clone()
    };
    let unit = failure("unit");
    assert_eq!(
        unit["failing_tests"].as_array().map(Vec::len),
        Some(1),
        "{unit}"
    );
    assert_eq!(unit["failing_tests"][0]["name"], "t::bad", "{unit}");
    assert_eq!(unit["failing_tests"][0]["type"], "AssertionError", "{unit}");
    assert!(failure("plain").get("failing_tests").is_none(), "{end}");
    s.cancel().await.expect("close");
}

/// Seen with the Python `mcp` client on markupsafe's workflow: `get_logs` with the matrix
/// step's name (`test`) answered "has no step `test` (did you mean `test`? …)". One log
/// is a page with its own offsets, so the tool does not merge the instances (as `bgflow
/// logs RUN test` does); it names them, and suggests nothing it was given.
#[tokio::test]
async fn mcp_get_logs_of_a_matrix_step_names_its_instances() {
    let (_dir, s, id, end) = ran(
        "[workflow]\nname = \"w\"\n\n[steps.test]\nmatrix = { n = [\"1\", \"2\"] }\nrun = \"echo n={{ matrix.n }}\"\n",
    )
    .await;
    assert_eq!(end["run"]["state"], "succeeded", "{end}");
    let r = call(&s, "get_logs", json!({"run_id": id, "step": "test"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    let t = text(&r);
    assert!(
        t.contains("matrix step") && t.contains("2 instances: test[1], test[2]"),
        "{t}"
    );
    assert!(!t.contains("did you mean"), "{t}");
    let one = data(&call(&s, "get_logs", json!({"run_id": id, "step": "test[2]"})).await);
    assert!(
        one["text"].as_str().is_some_and(|t| t.contains("n=2")),
        "{one}"
    );
    s.cancel().await.expect("close");
}

#[tokio::test]
async fn mcp_errors_are_is_error_results_with_the_cli_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, _) = connect(dir.path(), &[]).await;
    let r = call(&s, "get_run", json!({"run_id": "nope"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("no run history"), "{}", text(&r));
    let r = call(&s, "plan_workflow", json!({"file": "missing.toml"})).await;
    assert_eq!(r.is_error, Some(true), "{r:?}");
    assert!(text(&r).contains("missing.toml"), "{}", text(&r));
    assert_eq!(
        r.structured_content
            .as_ref()
            .map(|v| v["exit_code"].clone()),
        Some(json!(2))
    );
    s.cancel().await.expect("close");
}

/// The independent check: scripts/mcp-check.py with the Python `mcp` client from PyPI, over
/// both the `initialize` handshake (2025-11-25) and the current revision (server/discover),
/// with a resource update on a `subscriptions/listen` stream.
#[test]
fn mcp_python_client_check_passes_on_both_protocol_revisions() {
    let has_mcp = std::process::Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        has_mcp,
        "the Python `mcp` client is missing; install it with: python3 -m pip install --quiet mcp"
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mcp-check.py");
    // `timeout`: a session that hangs fails the test instead of the suite.
    let out = std::process::Command::new("timeout")
        .args(["300", "python3"])
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_bgflow"))
        .output()
        .expect("run scripts/mcp-check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "mcp-check failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("protocol 2025-11-25 and 2026-07-28"),
        "{stdout}"
    );
    assert!(stdout.contains("mcp-check: resource update"), "{stdout}");
    assert!(stdout.contains("mcp-check: ok"), "{stdout}");
}

/// `bgflow://runs/{id}` and its log read as resources, and a subscribed client (the
/// handshake revision) is told within about a second when the run it watches ends.
#[tokio::test]
async fn mcp_resources_read_a_run_and_its_log_and_tell_a_subscriber_when_the_run_changes() {
    use rmcp::model::{ReadResourceRequestParams, ResourceContents, SubscribeRequestParams};
    let dir = tempfile::tempdir().expect("tempdir");
    let go = dir.path().join("go");
    std::fs::write(dir.path().join("wait.sh"), common::WAIT_SH).expect("write");
    let (s, client) = connect(dir.path(), &[]).await;
    let command = format!("echo waiting; sh wait.sh {}; echo went", go.display());
    let started = call(
        &s,
        "start_process",
        json!({"command": command, "name": "gate"}),
    )
    .await;
    let id = data(&started)["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    let templates = s.list_all_resource_templates().await.expect("templates");
    assert_eq!(templates.len(), 2, "{templates:?}");
    let uri = format!("bgflow://runs/{id}");
    let read = |uri: String| {
        let s = &s;
        async move {
            let r = s
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
                .expect("read");
            match &r.contents[0] {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                other => panic!("not text: {other:?}"),
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = serde_json::from_str(&read(uri.clone()).await).expect("JSON");
        assert_eq!(v["run"]["id"], id.as_str());
        if v["steps"][0]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the run never ran: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    #[allow(deprecated)]
    s.subscribe(SubscribeRequestParams::new(uri.clone()))
        .await
        .expect("resources/subscribe");
    // The watcher reads its first fingerprint before the change.
    tokio::time::sleep(Duration::from_millis(600)).await;
    client.updated.lock().expect("lock").clear();
    std::fs::write(&go, "").expect("go");
    let changed_at = Instant::now();
    let deadline = changed_at + Duration::from_secs(10);
    let told_at = loop {
        let seen = client.updated.lock().expect("lock").clone();
        if let Some((_, at)) = seen.iter().find(|(u, _)| *u == uri) {
            break *at;
        }
        assert!(
            Instant::now() < deadline,
            "no update notification within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Generous: "does not hang"; the latency itself is for scripts/bench-mcp.sh.
    assert!(
        told_at - changed_at < Duration::from_secs(5),
        "{:?}",
        told_at - changed_at
    );
    let log = read(format!("{uri}/logs/gate")).await;
    assert!(log.starts_with("waiting\n"), "{log}");
    let missing = s
        .read_resource(ReadResourceRequestParams::new("bgflow://runs/zzzzzzzz"))
        .await;
    assert!(missing.is_err(), "an unknown run was read: {missing:?}");
    s.cancel().await.expect("close");
}
