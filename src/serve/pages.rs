//! The two pages: the runs list (`/`) and a run (`/runs/{id}`). Each is whole HTML holding
//! the current state; `?fragment=1` returns only its live part (`#live`), which the page's
//! script fetches again when an event of interest arrives, so the HTML is drawn in one
//! place (here) whether JavaScript runs or not.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::exit;
use crate::runs::{self, RunRow, RunView, StepRow};

use super::api::{self, with_history, PAGE, STATES};
use super::html::{badge, duration, esc, page, progress, time, url};
use super::{svg, App};

/// Lines of a step's log the run page shows at first.
const LOG_LINES: usize = 200;

fn fragment(q: &HashMap<String, String>) -> bool {
    q.get("fragment").is_some_and(|v| v == "1")
}

/// `GET /?state=&page=`: the runs, newest first, `PAGE` a page.
pub async fn runs_page(
    State(app): State<App>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let state = match api::state_filter(&q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let n = q
        .get("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let after = app.last_event();
    let st = state.clone();
    let r = with_history(&app, move |s| {
        runs::status::page(s, st.as_deref(), (n - 1).saturating_mul(PAGE), PAGE)
    })
    .await;
    let mut query = String::new();
    if let Some(s) = &state {
        let _ = write!(query, "state={}&", url(s));
    }
    let live = match r {
        Ok(p) => runs_table(&p, state.as_deref(), n),
        // No history yet: the page waits for one.
        Err(e) if e.code == exit::USAGE => {
            format!(r#"<p class="note">{}</p>"#, esc(e.message.trim_end()))
        }
        Err(e) => return api::error(&e),
    };
    if fragment(&q) {
        return Html(live).into_response();
    }
    let mut body = String::from("<h1>Runs</h1>\n<nav class=\"filters\">");
    for s in STATES {
        let here = state.as_deref().unwrap_or("all") == s;
        let _ = write!(
            body,
            r#"<a href="/?state={s}"{}>{s}</a> "#,
            if here { r#" class="here""# } else { "" }
        );
    }
    let _ = write!(
        body,
        "</nav>\n<div id=\"live\" data-src=\"/?{query}page={n}&amp;fragment=1\" data-after=\"{after}\">\n{live}</div>\n"
    );
    Html(page("bgflow runs", &app.token, &body)).into_response()
}

fn runs_table(p: &runs::RunPage, state: Option<&str>, n: usize) -> String {
    let mut out = String::from(
        "<table class=\"runs\">\n<thead><tr><th>run</th><th>workflow</th><th>state</th><th>progress</th><th>started</th><th>duration</th></tr></thead>\n<tbody>\n",
    );
    if p.runs.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"note\">No runs.</td></tr>\n");
    }
    for r in &p.runs {
        let _ = writeln!(
            out,
            r#"<tr id="run-{id}" data-state="{state}"><td><a href="/runs/{id_q}"><code>{id}</code></a></td><td>{wf}</td><td>{badge}</td><td>{prog}</td><td>{started}</td><td>{dur}</td></tr>"#,
            id = esc(&r.id),
            id_q = url(&r.id),
            state = esc(&r.state),
            wf = esc(&r.workflow),
            badge = badge(&r.state),
            prog = progress(None, Some(r.steps_done), Some(r.steps_total)),
            started = time(r.started_at.or(Some(r.created_at))),
            dur = duration(r.started_at, r.finished_at.or(ended(r))),
        );
    }
    out.push_str("</tbody>\n</table>\n<nav class=\"pager\">");
    let st = state
        .map(|s| format!("state={}&amp;", url(s)))
        .unwrap_or_default();
    if n > 1 {
        let _ = write!(
            out,
            r#"<a href="/?{st}page={}" rel="prev">← newer</a> "#,
            n - 1
        );
    }
    let _ = write!(out, "page {n}");
    if p.more {
        let _ = write!(
            out,
            r#" <a href="/?{st}page={}" rel="next">older →</a>"#,
            n + 1
        );
    }
    out.push_str("</nav>\n");
    if !p.orphans.is_empty() {
        let _ = writeln!(
            out,
            r#"<p class="note">{} run folder(s) that the history does not know (bgflow cleanup --orphans).</p>"#,
            p.orphans.len()
        );
    }
    out
}

/// A run that ended without a recorded end time (lost): its heartbeat, to stop the clock.
fn ended(r: &RunRow) -> Option<i64> {
    if r.is_active() {
        None
    } else {
        r.heartbeat_at.or(r.started_at)
    }
}

/// The step the log section shows: the one asked for, else a running one, else the first
/// that failed, else the first.
fn chosen(steps: &[StepRow], asked: Option<&str>) -> Option<String> {
    if let Some(a) = asked {
        return Some(a.to_owned());
    }
    let by = |f: &dyn Fn(&StepRow) -> bool| steps.iter().find(|s| f(s)).map(|s| s.name.clone());
    by(&|s| s.state == "running")
        .or_else(|| {
            by(&|s| {
                matches!(
                    s.state.as_str(),
                    "failed" | "timed_out" | "stalled" | "lost"
                )
            })
        })
        .or_else(|| steps.first().map(|s| s.name.clone()))
}

/// `GET /runs/{id}?step=`: a run, its graph, its steps and the log of one step.
pub async fn run_page(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let after = app.last_event();
    let asked = q.get("step").cloned();
    let graphs = app.graphs.clone();
    let r = with_history(&app, move |s| {
        let view = runs::status(s, &id)?;
        let graph = super::edges(&graphs, s, &view.run.id)?;
        let step = chosen(&view.steps, asked.as_deref());
        let log = match &step {
            Some(name) => Some(runs::logs(
                s,
                &view.run.id,
                &runs::LogQuery {
                    step: Some(name.clone()),
                    tail: Some(LOG_LINES),
                    confine: true,
                    ..runs::LogQuery::default()
                },
            )),
            None => None,
        };
        Ok((view, graph, log))
    })
    .await;
    let (view, graph, log) = match r {
        Ok(v) => v,
        Err(e) => {
            let status = api::error(&e).status();
            let title = if status == StatusCode::NOT_FOUND {
                "No such run"
            } else {
                "The run cannot be shown"
            };
            let body = format!(
                "<h1>{title}</h1>\n<p class=\"note\">{}</p>\n<p><a href=\"/\">All runs</a></p>\n",
                esc(e.message.trim_end())
            );
            return (status, Html(page("bgflow", &app.token, &body))).into_response();
        }
    };
    let live = run_live(&view, &graph);
    if fragment(&q) {
        return Html(live).into_response();
    }
    let id = &view.run.id;
    let mut body = format!(
        "<h1>Run <code>{}</code> <span class=\"wf\">{}</span></h1>\n<div id=\"live\" data-src=\"/runs/{}?fragment=1\" data-run=\"{}\" data-after=\"{after}\">\n{live}</div>\n",
        esc(id),
        esc(&view.run.workflow),
        url(id),
        esc(id),
    );
    body.push_str(&log_section(id, &view.steps, log));
    Html(page(&format!("bgflow run {id}"), &app.token, &body)).into_response()
}

/// The live part of a run page: its summary, the stop button, the graph, the steps and
/// the failures.
fn run_live(v: &RunView, g: &runs::graph::Graph) -> String {
    let r = &v.run;
    let mut out = String::from("<dl class=\"summary\">");
    let _ = write!(
        out,
        "<dt>state</dt><dd id=\"run-state\" data-state=\"{}\">{}</dd>",
        esc(&r.state),
        badge(&r.state)
    );
    let _ = write!(
        out,
        "<dt>steps</dt><dd>{}</dd><dt>started</dt><dd>{}</dd><dt>duration</dt><dd>{}</dd>",
        progress(None, Some(r.steps_done), Some(r.steps_total)),
        time(r.started_at.or(Some(r.created_at))),
        duration(r.started_at, r.finished_at.or(ended(r))),
    );
    if let Some(file) = &r.file {
        let _ = write!(out, "<dt>file</dt><dd><code>{}</code></dd>", esc(file));
    }
    if let Some(reason) = &r.reason {
        let _ = write!(
            out,
            "<dt>reason</dt><dd class=\"reason\">{}</dd>",
            esc(reason)
        );
    }
    if let Some(note) = runs::status::left_running_note(r) {
        let _ = write!(
            out,
            "<dt>still running</dt><dd class=\"reason\" id=\"still-running\">{}</dd>",
            esc(&note)
        );
    }
    out.push_str("</dl>\n");
    // A lost run whose processes or jobs still run is stopped as an active one is (`stop`
    // ends them).
    if r.is_active() || r.is_left_running() {
        let _ = writeln!(
            out,
            r#"<p><button type="button" class="stop" data-stop="{id}">Stop run</button> <span id="stop-status"></span></p><noscript><p class="note">Stopping needs JavaScript here, or: <code>bgflow stop {id}</code></p></noscript>"#,
            id = esc(&r.id)
        );
    }
    out.push_str(&svg::graph(&r.id, &v.steps, &g.edges));
    if let Some(note) = &g.note {
        let _ = writeln!(out, r#"<p class="note">No edges: {}</p>"#, esc(note));
    }
    out.push_str(&steps_table(&r.id, &v.steps));
    let failed: Vec<&StepRow> = v
        .steps
        .iter()
        .filter(|s| {
            matches!(
                s.state.as_str(),
                "failed" | "timed_out" | "stalled" | "lost"
            )
        })
        .collect();
    if !failed.is_empty() {
        out.push_str("<h2>Failures</h2>\n<ul class=\"failures\">\n");
        for s in failed {
            let _ = write!(
                out,
                r##"<li><a href="/runs/{}?step={}#log">{}</a> {}: {}"##,
                url(&r.id),
                url(&s.name),
                esc(&s.name),
                badge(&s.state),
                esc(s.reason.as_deref().unwrap_or("no reason recorded")),
            );
            if let Some(serde_json::Value::Array(tests)) = &s.tests_failing {
                out.push_str("<ul>");
                for t in tests {
                    let name = t.get("name").and_then(|n| n.as_str()).unwrap_or("?");
                    let msg = t.get("message").and_then(|n| n.as_str()).unwrap_or("");
                    let _ = write!(out, "<li><code>{}</code> {}</li>", esc(name), esc(msg));
                }
                out.push_str("</ul>");
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul>\n");
    }
    out
}

fn tests(s: &StepRow) -> String {
    match (
        s.tests_passed,
        s.tests_failed,
        s.tests_errors,
        s.tests_skipped,
    ) {
        (None, None, None, None) => String::new(),
        (p, f, e, k) => format!(
            "{} passed, {} failed, {}, {} skipped",
            p.unwrap_or(0),
            f.unwrap_or(0),
            runs::errors_text(e.unwrap_or(0) as u64),
            k.unwrap_or(0)
        ),
    }
}

fn steps_table(run: &str, steps: &[StepRow]) -> String {
    let mut out = String::from(
        "<table class=\"steps\">\n<thead><tr><th>step</th><th>state</th><th>progress</th><th>message</th><th>attempts</th><th>duration</th><th>tests</th><th>reason</th></tr></thead>\n<tbody>\n",
    );
    for s in steps {
        let message = s
            .progress_message
            .as_deref()
            .or(s.last_line.as_deref())
            .unwrap_or("");
        let _ = writeln!(
            out,
            r##"<tr id="step-{idx}" data-step="{name}" data-state="{state}"><td><a href="/runs/{run_q}?step={name_q}#log">{name}</a></td><td>{badge}</td><td>{prog}</td><td class="msg">{msg}</td><td class="num">{att}</td><td>{dur}</td><td>{tests}</td><td class="reason">{reason}</td></tr>"##,
            idx = s.idx,
            name = esc(&s.name),
            name_q = url(&s.name),
            run_q = url(run),
            state = esc(&s.state),
            badge = badge(&s.state),
            prog = progress(s.progress_percent, s.progress_current, s.progress_total),
            msg = esc(message),
            att = s.attempts,
            dur = duration(s.started_at, s.finished_at),
            tests = esc(&tests(s)),
            reason = esc(s.reason.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The log of the chosen step: the last lines, which the script follows from their end.
fn log_section(
    run: &str,
    steps: &[StepRow],
    log: Option<Result<runs::LogPage, runs::Error>>,
) -> String {
    let mut out = String::from("<section id=\"log\">\n<h2>Log</h2>\n<nav class=\"steps\">");
    let current = match &log {
        Some(Ok(p)) => Some(p.step.as_str()),
        _ => None,
    };
    for s in steps.iter().take(svg::MAX_DRAWN) {
        let _ = write!(
            out,
            r##"<a href="/runs/{}?step={}#log"{}>{}</a> "##,
            url(run),
            url(&s.name),
            if current == Some(s.name.as_str()) {
                r#" class="here""#
            } else {
                ""
            },
            esc(&s.name)
        );
    }
    out.push_str("</nav>\n");
    match log {
        Some(Ok(p)) => {
            let _ = writeln!(
                out,
                r#"<pre id="logtext" data-run="{}" data-step="{}" data-offset="{}" data-state="{}">{}</pre>"#,
                esc(run),
                esc(&p.step),
                p.next_offset,
                esc(&p.state),
                esc(&p.text)
            );
        }
        Some(Err(e)) => {
            let status = if e.code == exit::INVALID {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::NOT_FOUND
            };
            let _ = writeln!(
                out,
                r#"<p class="note">{} ({})</p>"#,
                esc(e.message.trim_end()),
                status.as_u16()
            );
        }
        None => out.push_str("<p class=\"note\">This run has no steps.</p>\n"),
    }
    out.push_str("</section>\n");
    out
}
