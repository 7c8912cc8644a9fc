//! `bgflow mcp`: a Model Context Protocol server over stdio (DESIGN.md §9), a front-end
//! beside `cli/`. Each tool parses its arguments into `runs::` options, calls one `runs::`
//! function on a blocking thread, and returns its data as structured content with a
//! compact JSON text copy; a `runs::Error` becomes an `isError` result carrying the CLI's
//! message (and a refused workflow's problems).
//!
//! Nothing but protocol messages is written to stdout: runs are always detached, and
//! their supervisors get a null stdin and their own log files (`runs::launch`).

mod args;
mod resources;
mod tools;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SubscribeRequestParams, SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{tool_handler, ServerHandler, ServiceExt};
use rmcp::{ErrorData as McpError, RoleServer};
use serde::Serialize;

use crate::exit;
use crate::runs::{self, Places};

pub use args::{LOG_CAP, WAIT_MAX_S};

/// The tools that change nothing: the only ones `--read-only` serves.
pub const OBSERVING: [&str; 6] = [
    "plan_workflow",
    "get_run",
    "list_runs",
    "get_logs",
    "wait_for_run",
    "get_events",
];

/// How the server was started.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--state-dir` / `BGFLOW_STATE_DIR`, `--config` / `BGFLOW_CONFIG`.
    pub places: Places,
    /// Serve only the observing tools.
    pub read_only: bool,
}

/// The server: its tools and where the history is.
#[derive(Clone)]
pub struct Server {
    tool_router: ToolRouter<Server>,
    places: Places,
    /// The history the reading tools share.
    history: runs::history::History,
    /// The resources subscribed to with `resources/subscribe` (the handshake revision).
    subscribed: Arc<Mutex<BTreeSet<String>>>,
    /// Whether the task that watches them runs.
    watching: Arc<AtomicBool>,
}

impl Server {
    pub fn new(opts: &Options) -> Self {
        let mut tool_router = Self::tool_router();
        if opts.read_only {
            let names: Vec<String> = tool_router
                .list_all()
                .iter()
                .map(|t| t.name.to_string())
                .collect();
            for n in names {
                if !OBSERVING.contains(&n.as_str()) {
                    tool_router.remove_route(&n);
                }
            }
        }
        Self {
            tool_router,
            places: opts.places.clone(),
            history: runs::history::History::new(opts.places.state_dir.clone()),
            subscribed: Arc::default(),
            watching: Arc::default(),
        }
    }

    fn state_dir(&self) -> Option<PathBuf> {
        self.places.state_dir.clone()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(Implementation::new("bgflow", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "bgflow runs workflow files (TOML) and single commands as supervised background \
                 runs. plan_workflow checks a file; run_workflow and start_process return a run_id \
                 at once; wait_for_run blocks up to timeout_s and returns each failure's reason \
                 and last log lines; get_logs pages a step's log with offsets. Resources \
                 bgflow://runs/{id} and bgflow://runs/{id}/logs/{step} tell when a run changes.",
        )
    }

    /// A call of a tool this server has, or an error that names the tools it has (and the
    /// closest to the name asked for): rmcp's own says only "tool not found", and an agent
    /// that guessed a name (`validate_workflow`) learns nothing from it.
    async fn call_tool(
        &self,
        request: rmcp::model::CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<rmcp::model::CallToolResponse, McpError> {
        if !self.tool_router.has_route(&request.name) {
            return Err(McpError::invalid_params(
                unknown_tool(&request.name, &self.tool_router.list_all()),
                None,
            ));
        }
        let tcc = rmcp::handler::server::tool::ToolCallContext::new(self, request, context);
        self.tool_router.call(tcc).await
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let h = self.history.clone();
        Ok(ListResourcesResult {
            resources: tokio::task::spawn_blocking(move || resources::list(&h))
                .await
                .unwrap_or_default(),
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult {
            resource_templates: resources::templates(),
            ..Default::default()
        })
    }

    async fn read_resource(
        &self,
        req: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let h = self.history.clone();
        tokio::task::spawn_blocking(move || resources::read(&h, &req.uri))
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?
            .map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        req: SubscribeRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.subscribed).insert(req.uri);
        if !self.watching.swap(true, Ordering::SeqCst) {
            let subscribed = self.subscribed.clone();
            let watching = self.watching.clone();
            let h = self.history.clone();
            let peer = ctx.peer.clone();
            tokio::spawn(async move {
                resources::watch(
                    h,
                    || lock(&subscribed).iter().cloned().collect(),
                    |uri| resources::notify(&peer, uri),
                )
                .await;
                watching.store(false, Ordering::SeqCst);
            });
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        req: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        lock(&self.subscribed).remove(&req.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut f = SubscriptionFilter::new();
        f.resource_subscriptions = requested.resource_subscriptions.clone();
        Some(f)
    }

    async fn listen(&self, ctx: SubscriptionContext) -> Result<(), McpError> {
        let uris = ctx
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        let sink = ctx.sink().clone();
        let watch = resources::watch(
            self.history.clone(),
            || uris.clone(),
            |uri| {
                let sink = sink.clone();
                async move {
                    let n = rmcp::model::ResourceUpdatedNotification::new(
                        rmcp::model::ResourceUpdatedNotificationParam::new(uri),
                    );
                    sink.send(n.into()).await.is_ok()
                }
            },
        );
        tokio::select! {
            () = ctx.cancelled() => {}
            () = watch => {}
        }
        Ok(())
    }
}

/// The set, even when a thread panicked while holding it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tool's result: `value` as structured content, with its compact JSON as the text.
pub(crate) fn ok<T: Serialize>(value: &T) -> CallToolResult {
    match serde_json::to_value(value) {
        Ok(v) => {
            let mut r = CallToolResult::structured(v);
            if let Some(v) = &r.structured_content {
                r.content = vec![ContentBlock::text(v.to_string())];
            }
            r
        }
        Err(e) => CallToolResult::error(vec![ContentBlock::text(format!(
            "error: cannot write output: {e}"
        ))]),
    }
}

/// A tool's failure: the CLI's message as the text, and as structured content
/// `{error, exit_code, problems}` (each problem as `plan --json` shows it).
pub(crate) fn fail(e: &runs::Error, problems: Vec<serde_json::Value>) -> CallToolResult {
    let mut text = e.message.trim_end().to_owned();
    if text.is_empty() {
        text = format!("error: failed with exit code {}", e.code);
    }
    for p in &problems {
        let at = |k: &str| p.get(k).and_then(|v| v.as_u64()).map(|n| n.to_string());
        text.push_str(&format!(
            "\n{}:{}:{}: {}[{}]: {}",
            p["file"].as_str().unwrap_or(""),
            at("line").unwrap_or_default(),
            at("column").unwrap_or_default(),
            p["severity"].as_str().unwrap_or(""),
            p["code"].as_str().unwrap_or(""),
            p["message"].as_str().unwrap_or(""),
        ));
    }
    let mut r = CallToolResult::structured_error(serde_json::json!({
        "error": text,
        "exit_code": e.code,
        "problems": problems,
    }));
    r.content = vec![ContentBlock::text(text)];
    r
}

/// Serves MCP on stdin/stdout until the client closes stdin; the exit code.
pub fn serve(opts: &Options) -> u8 {
    // One heap for every thread: the blocking threads' calls reuse what others freed.
    crate::par::one_heap();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the server: {e}");
            return exit::INTERNAL;
        }
    };
    let server = Server::new(opts);
    rt.block_on(async move {
        // Freed memory goes back to the system once a second, so the server idles small
        // whatever size its last reply had (DESIGN.md §9: ≤ 20 MB while a run goes on).
        tokio::spawn(async {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                crate::par::give_back_freed_memory();
            }
        });
        let service = match server.serve(rmcp::transport::stdio()).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: the MCP session did not start: {e}");
                return exit::INTERNAL;
            }
        };
        match service.waiting().await {
            Ok(_) => exit::SUCCESS,
            Err(e) => {
                eprintln!("error: the MCP session ended: {e}");
                exit::INTERNAL
            }
        }
    })
}

/// The error for a call of a tool this server does not have: the name, the closest tool,
/// and every tool.
fn unknown_tool(name: &str, tools: &[rmcp::model::Tool]) -> String {
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let hint = crate::diag::did_you_mean(name, names.iter().copied())
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    format!(
        "tool not found: `{name}`{hint}; this server's tools: {}",
        names.join(", ")
    )
}
