//! The tools of DESIGN.md §9. Each runs its `runs::` call on a blocking thread (the
//! history is SQLite, read synchronously) and returns `ok(..)` or `fail(..)`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rmcp::handler::server::common::schema_for_output;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, ErrorData as McpError, RoleServer};

use super::args::*;
use super::{fail, ok, Server};
use crate::runs::plan::Collect;
use crate::runs::{self, Error, Mode, Resumed, Started};

type Out = Result<CallToolResult, McpError>;

/// Runs `f` on a blocking thread; a panic there is an `isError` result, not a lost reply.
async fn blocking(f: impl FnOnce() -> CallToolResult + Send + 'static) -> Out {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r),
        Err(e) => Ok(fail(
            &Error::internal(format!("error: the call failed: {e}\n")),
            Vec::new(),
        )),
    }
}

fn vars(v: std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    v.into_iter().collect()
}

/// A launch's result: the run id, or the error with the problems the workflow had.
fn started(r: Result<Started, Error>, obs: Collect) -> CallToolResult {
    match r {
        Ok(Started::Detached(l)) => ok(&StartedOut {
            run_id: l.run_id,
            workflow: l.workflow,
            state_dir: l.state_dir.display().to_string(),
            log_dir: l.log_dir.display().to_string(),
        }),
        Ok(Started::Finished { code }) => fail(&Error::new(code, ""), obs.problems),
        Err(e) => fail(&e, obs.problems),
    }
}

fn open(dir: Option<&Path>) -> Result<crate::store::Store, Error> {
    runs::open(dir, &mut Collect::default())
}

fn run_out(v: &runs::RunView) -> Result<(serde_json::Value, Vec<serde_json::Value>), Error> {
    let bad = |e: serde_json::Error| Error::internal(format!("error: cannot write output: {e}\n"));
    let run = serde_json::to_value(&v.run).map_err(bad)?;
    let steps = v
        .steps
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    Ok((run, steps))
}

/// The steps of a run that failed, timed out, stalled or were lost, with their last lines.
fn failures(v: &runs::RunView) -> Vec<FailureOut> {
    v.steps
        .iter()
        .filter(|s| {
            matches!(
                s.state.as_str(),
                "failed" | "timed_out" | "stalled" | "lost"
            )
        })
        .map(|s| {
            let path = Path::new(&s.log_path);
            let from = runs::logs::tail_offset(path, LAST_LINES);
            let last_lines = runs::logs::read_page(path, from, 8 * 1024)
                .map(|(t, _, _)| t)
                .unwrap_or_default();
            FailureOut {
                step: s.name.clone(),
                state: s.state.clone(),
                reason: s.reason.clone(),
                exit_code: s.exit_code,
                log_path: s.log_path.clone(),
                last_lines,
                failing_tests: s
                    .tests_failing
                    .clone()
                    .filter(|f| f.as_array().is_some_and(|a| !a.is_empty())),
            }
        })
        .collect()
}

/// How often `wait_for_run` looks at the run (`runs::status::wait` reads it only when the
/// history changed, and once a second).
const WAIT_EVERY: Duration = Duration::from_millis(100);

/// Waits for run `id` to end, at most `timeout`, or until `cancelled()`, handing (steps
/// done, total, running steps) to `progress` whenever the run's state or count of finished
/// steps changes. The run with its steps at the end.
fn wait(
    store: &mut crate::store::Store,
    id: &str,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    progress: &tokio::sync::mpsc::UnboundedSender<(i64, i64, String)>,
) -> Result<runs::RunView, Error> {
    let mut last = None;
    runs::status::wait(store, id, Some(timeout), WAIT_EVERY, &mut |v| {
        let now = (v.run.state.clone(), v.run.steps_done);
        if last.as_ref() != Some(&now) {
            let running: Vec<&str> = v
                .steps
                .iter()
                .filter(|s| s.state == "running")
                .map(|s| s.name.as_str())
                .collect();
            let _ = progress.send((v.run.steps_done, v.run.steps_total, running.join(", ")));
            last = Some(now);
        }
        if cancelled() {
            std::ops::ControlFlow::Break(())
        } else {
            std::ops::ControlFlow::Continue(())
        }
    })
}

#[tool_router(vis = "pub(crate)")]
impl Server {
    #[tool(
        description = "Check a workflow file without running anything: its problems (each with file, line, column, code, message, help) and, when valid, its execution plan. Same data as `bgflow plan --json`.",
        output_schema = schema_for_output::<PlanOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn plan_workflow(&self, Parameters(a): Parameters<PlanArgs>) -> Out {
        let config = self.places.config.clone();
        blocking(move || {
            match runs::plan::plan(
                Path::new(&a.file),
                &vars(a.vars),
                false,
                a.strict,
                config.as_deref(),
            ) {
                Ok(v) => ok(&v),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }

    #[tool(
        description = "Validate a workflow file as plan_workflow does and, when valid, run it in the background. Returns {run_id} at once; never blocks. Refused (isError) with the plan's problems when invalid. Follow with wait_for_run, get_run, get_logs.",
        output_schema = schema_for_output::<StartedOut>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = true)
    )]
    async fn run_workflow(&self, Parameters(a): Parameters<RunArgs>) -> Out {
        let places = self.places.clone();
        blocking(move || {
            let req = runs::WorkflowRun {
                file: PathBuf::from(a.file),
                vars: vars(a.vars),
                only: a.only,
                keep_going: a.keep_going,
                force: a.force,
                jobs: a.jobs,
                allow_concurrent: false,
            };
            let mut obs = Collect::default();
            let r = runs::run_workflow(&req, Mode::Detached, &places, &mut obs);
            started(r, obs)
        })
        .await
    }

    #[tool(
        description = "Start one command in the background as a one-step run (as `bgflow start`). `command` is a shell line (run by sh -c) or an argv array. Returns {run_id} at once.",
        output_schema = schema_for_output::<StartedOut>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = true)
    )]
    async fn start_process(&self, Parameters(a): Parameters<StartArgs>) -> Out {
        let places = self.places.clone();
        blocking(move || {
            let argv = match a.command {
                CommandArg::Shell(s) => vec!["sh".to_owned(), "-c".to_owned(), s],
                CommandArg::Argv(v) => v,
            };
            let kind = a.kind.unwrap_or_else(|| "task".to_owned());
            if !["task", "service", "test"].contains(&kind.as_str()) {
                return fail(
                    &Error::usage(format!(
                        "error: kind `{kind}`: one of task, service, test\n"
                    )),
                    Vec::new(),
                );
            }
            let timeout = match a
                .timeout
                .as_deref()
                .map(str::parse::<crate::manifest::Duration>)
            {
                None => None,
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => {
                    return fail(&Error::usage(format!("error: timeout: {e}\n")), Vec::new())
                }
            };
            let cmd = runs::StartCommand {
                argv,
                name: a.name,
                kind,
                timeout,
                meta: a.metadata.into_iter().collect(),
                cwd: a.cwd.map(PathBuf::from),
            };
            let mut obs = Collect::default();
            let r = runs::start(&cmd, &places, &mut obs).map(Started::Detached);
            started(r, obs)
        })
        .await
    }

    #[tool(
        description = "One run and its steps (state, reason, exit code, progress, log path), as `bgflow status RUN --json`.",
        output_schema = schema_for_output::<RunOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_run(&self, Parameters(a): Parameters<RunIdArg>) -> Out {
        let h = self.history.clone();
        blocking(move || {
            let r = h
                .with(|s| runs::status(s, &a.run_id))
                .and_then(|v| run_out(&v));
            match r {
                Ok((run, steps)) => ok(&RunOut {
                    version: 1,
                    run,
                    steps,
                }),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }

    #[tool(
        description = "Runs newest first (default 20), optionally only those in one state, as `bgflow list --json`.",
        output_schema = schema_for_output::<ListOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn list_runs(&self, Parameters(a): Parameters<ListArgs>) -> Out {
        let h = self.history.clone();
        blocking(move || {
            let r = h.with(|s| runs::list(s, a.status.as_deref(), a.limit.unwrap_or(20)));
            match r {
                Ok(l) => ok(&serde_json::json!({
                    "version": 1, "runs": l.runs, "orphans": l.orphans
                })),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }

    #[tool(
        description = "A page of one step's log: from `offset` (a previous page's next_offset), or the last `tail` lines, or the start. At most max_bytes of text (default 16384); `truncated` says more followed. A run of one step needs no `step`.",
        output_schema = schema_for_output::<LogsOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_logs(&self, Parameters(a): Parameters<LogsArgs>) -> Out {
        let h = self.history.clone();
        blocking(move || {
            let r = h.with(|s| {
                let id = runs::resolve(s, &a.run_id)?;
                let q = runs::LogQuery {
                    step: a.step,
                    offset: a.offset,
                    tail: a.tail,
                    confine: false,
                    cap: Some(a.max_bytes.unwrap_or(LOG_CAP).clamp(1, LOG_CAP_MAX)),
                };
                runs::logs(s, &id, &q).map(|p| (id, p))
            });
            match r {
                Ok((run_id, p)) => ok(&LogsOut {
                    run_id,
                    step: p.step,
                    text: p.text,
                    next_offset: p.next_offset,
                    truncated: p.truncated,
                    state: p.state,
                }),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }

    #[tool(
        description = "Wait for a run to end, at most timeout_s seconds (default 60, at most 3600). Returns the run and its steps with `ended`, and each failed step's reason, log path and last lines. Sends progress notifications (steps done / total, current step) when the request has a progressToken.",
        output_schema = schema_for_output::<WaitOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn wait_for_run(
        &self,
        Parameters(a): Parameters<WaitArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Out {
        let dir = self.state_dir();
        let secs = a.timeout_s.unwrap_or(WAIT_DEFAULT_S);
        if !secs.is_finite() || secs < 0.0 {
            return Ok(fail(
                &Error::usage("error: timeout_s: a number of seconds, 0 or more\n"),
                Vec::new(),
            ));
        }
        let timeout = Duration::from_secs_f64(secs.min(WAIT_MAX_S));
        let token = ctx.meta.get_progress_token();
        let ct = ctx.ct.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(i64, i64, String)>();
        let work = tokio::task::spawn_blocking(move || {
            // A store of its own: a long wait does not hold the one the other tools share.
            let mut store = open(dir.as_deref())?;
            let id = runs::resolve(&store, &a.run_id)?;
            wait(&mut store, &id, timeout, &|| ct.is_cancelled(), &tx)
        });
        tokio::pin!(work);
        let res = loop {
            tokio::select! {
                r = &mut work => break r,
                Some((done, total, current)) = rx.recv() => {
                    if let Some(t) = &token {
                        let mut p = ProgressNotificationParam::new(t.clone(), done as f64)
                            .with_total(total as f64);
                        if !current.is_empty() {
                            p = p.with_message(format!("running: {current}"));
                        }
                        let _ = ctx.peer.notify_progress(p).await;
                    }
                }
            }
        };
        let v = match res {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Ok(fail(&e, Vec::new())),
            Err(e) => {
                return Ok(fail(
                    &Error::internal(format!("error: the wait failed: {e}\n")),
                    Vec::new(),
                ))
            }
        };
        Ok(match run_out(&v) {
            Ok((run, steps)) => ok(&WaitOut {
                version: 1,
                ended: !v.is_active(),
                failures: failures(&v),
                run,
                steps,
            }),
            Err(e) => fail(&e, Vec::new()),
        })
    }

    #[tool(
        description = "Stop a run: SIGTERM to its steps and SIGKILL after the grace (force: at once), then end whatever of it is left. Returns the run's state after stopping.",
        output_schema = schema_for_output::<StopOut>(),
        annotations(read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = false)
    )]
    async fn stop_run(&self, Parameters(a): Parameters<StopArgs>) -> Out {
        let dir = self.state_dir();
        blocking(move || {
            let r = open(dir.as_deref()).and_then(|mut s| {
                runs::stop(
                    &mut s,
                    &a.run_id,
                    runs::StopOptions {
                        force: a.force,
                        timeout: None,
                        by: "the MCP tool `stop_run`",
                    },
                    &mut |_| Ok(true),
                    &mut Collect::default(),
                )
            });
            match r {
                Ok(runs::Stopped::NotRunning { id, state }) => ok(&StopOut {
                    run_id: id,
                    state,
                    was_running: false,
                }),
                Ok(runs::Stopped::Stopped { id, state }) => ok(&StopOut {
                    run_id: id,
                    state,
                    was_running: true,
                }),
                Ok(runs::Stopped::Declined) => fail(
                    &Error::internal("error: the stop was declined\n"),
                    Vec::new(),
                ),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }

    #[tool(
        description = "Run again, in the background, what did not succeed in an ended run, keeping what did while it is up to date (as `bgflow resume -d`). Returns the new {run_id} at once; null when every step succeeded.",
        output_schema = schema_for_output::<ResumeOut>(),
        annotations(read_only_hint = false, destructive_hint = false, open_world_hint = true)
    )]
    async fn resume_run(&self, Parameters(a): Parameters<RunIdArg>) -> Out {
        let places = self.places.clone();
        blocking(move || {
            let req = runs::Resume {
                run: Some(a.run_id),
                mode: Mode::Detached,
                allow_concurrent: false,
            };
            let mut obs = Collect::default();
            match runs::resume(&req, &places, &mut obs) {
                Ok(Resumed::NothingToDo { run }) => ok(&ResumeOut {
                    run_id: None,
                    resumed_from: run,
                }),
                Ok(Resumed::Started {
                    from,
                    started: Started::Detached(l),
                }) => ok(&ResumeOut {
                    run_id: Some(l.run_id),
                    resumed_from: from,
                }),
                Ok(Resumed::Started { started: s, .. }) => started(Ok(s), obs),
                Err(e) => fail(&e, obs.problems),
            }
        })
        .await
    }

    #[tool(
        description = "State changes as JSON objects (as `bgflow events`), after event id `after`, of one run or every run. Pass the returned `next` as `after` to read on.",
        output_schema = schema_for_output::<EventsOut>(),
        annotations(read_only_hint = true, open_world_hint = false)
    )]
    async fn get_events(&self, Parameters(a): Parameters<EventsArgs>) -> Out {
        let h = self.history.clone();
        blocking(move || {
            let r = h.with(|s| {
                let id = match &a.run_id {
                    Some(p) => Some(runs::resolve(s, p)?),
                    None => None,
                };
                runs::events(
                    s,
                    id.as_deref(),
                    a.after.unwrap_or(0),
                    a.limit
                        .unwrap_or(runs::events::PAGE)
                        .min(runs::events::PAGE),
                )
            });
            match r {
                Ok(p) => ok(&p),
                Err(e) => fail(&e, Vec::new()),
            }
        })
        .await
    }
}
