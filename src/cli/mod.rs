//! Command-line parsing (clap) and dispatch. Every command returns its exit code.

mod discover;
pub mod history_cmd;
mod man_cmd;
mod plan_cmd;
mod run_cmd;
mod start_cmd;
mod stop_cmd;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::exit;
use crate::plan::export::GraphFormat;
use crate::report::{self, ColorChoice};

/// bgflow: workflows that are proven runnable before they run, then supervised to the end.
///
/// `bgflow plan` checks a workflow file (every input made or present, every tool on PATH,
/// every variable set, no cycle) and shows the execution plan. Exit codes: 0 ok, 1 a step
/// failed, 2 usage error, 3 validation failed, 4 internal error, 128+N stopped by signal N.
#[derive(Debug, Parser)]
#[command(
    name = "bgflow",
    version,
    max_term_width = 100,
    propagate_version = true
)]
pub struct Cli {
    /// When to use colors (NO_COLOR is honoured by `auto`).
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// The state folder (default: `.bgflow/` in the workflow's root).
    #[arg(long, env = "BGFLOW_STATE_DIR", global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A configuration file (default: bgflow.toml in the root, then $XDG_CONFIG_HOME/bgflow/config.toml).
    #[arg(long, env = "BGFLOW_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print less: only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Validate workflow files and show the execution plan; runs nothing.
    ///
    /// Every problem is reported at once with file:line:column. Exit 0 when valid (warnings
    /// alone too, unless --strict), 3 when problems were found, 2 when a file cannot be read.
    Plan(PlanArgs),
    /// Validate exactly as `plan` does, then run the steps as supervised processes.
    ///
    /// Refuses with exit 3 and the diagnostics when the workflow is not valid (nothing
    /// starts). Exit 0 when every step succeeded, 1 when one failed, 128+N on signal N.
    Run(RunArgs),
    /// Start one command as a detached one-step run (no manifest needed); prints the run id.
    Start(StartArgs),
    /// Show one run in detail (steps, progress, elapsed); without RUN, the active runs.
    Status(StatusArgs),
    /// List runs, newest first.
    List(ListArgs),
    /// Print a run's logs: one step's, or every step's lines prefixed by its name.
    Logs(LogsArgs),
    /// Stop a run: SIGTERM to its steps, SIGKILL after the grace (--force: at once).
    Stop(StopArgs),
    /// Run again what did not succeed in RUN, keeping what did while it is up to date (a new
    /// run id).
    Resume(ResumeArgs),
    /// Print state changes as JSON Lines (docs/json-output.md).
    Events(EventsArgs),
    /// Remove the records and logs of finished runs.
    Cleanup(CleanupArgs),
    /// Print the dependency graph as Graphviz dot or Mermaid.
    Graph(GraphArgs),
    /// Serve the Model Context Protocol over stdin/stdout, for coding agents (docs/agents.md).
    ///
    /// Tools: plan_workflow, run_workflow, start_process, get_run, list_runs, get_logs,
    /// wait_for_run, stop_run, resume_run, get_events. Runs are always detached. Relative
    /// paths are read from the folder the server was started in; the history is found as the
    /// other commands find it (--state-dir, BGFLOW_STATE_DIR). Nothing but protocol messages
    /// is written to stdout.
    Mcp {
        /// Serve only the tools that change nothing (plan_workflow, get_run, list_runs,
        /// get_logs, wait_for_run, get_events).
        #[arg(long)]
        read_only: bool,
    },
    /// Serve the status page and the HTTP API (docs/serve.md): runs, a run's step graph,
    /// live logs and a stop button, updated live.
    ///
    /// Listens on loopback (127.0.0.1:7340) unless --bind says otherwise; port 0 picks a
    /// free one. Prints the page's address with its token on stdout: every request needs
    /// the token (the page keeps it in a cookie), and POST needs it in the X-Bgflow-Token
    /// header. Requests whose Host header names another server are refused (DNS rebinding).
    /// Runs until SIGINT or SIGTERM (exit 130 or 143).
    Serve {
        /// The address and port to listen on. Another address than loopback makes the
        /// page reachable from other machines over plain HTTP (a warning says so).
        #[arg(long, value_name = "ADDR", default_value = crate::serve::DEFAULT_BIND)]
        bind: std::net::SocketAddr,
        /// Listen on loopback at this port: the same as `--bind 127.0.0.1:PORT`.
        #[arg(long, value_name = "PORT", conflicts_with = "bind")]
        port: Option<u16>,
    },
    /// Print the workflow file's JSON Schema (for editors: `#:schema` in Taplo / Even Better TOML).
    Schema,
    /// Print the manual page bgflow(1); with --dir, write it and one page per command
    /// (bgflow-run(1), …) into that folder.
    Man {
        /// Write every page into this folder instead of printing bgflow.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Internal: the detached supervisor of a run.
    #[command(name = "__supervise", hide = true)]
    Supervise { run: String },
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The run's (and step's) name; default: the program's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The step kind: task, service or test.
    #[arg(long, default_value = "task", value_parser = ["task", "service", "test"])]
    pub kind: String,
    /// Stop the command after this long (e.g. 30m).
    #[arg(long, value_parser = |s: &str| s.parse::<crate::manifest::Duration>().map_err(|e| e.to_string()))]
    pub timeout: Option<crate::manifest::Duration>,
    /// Free metadata stored with the run; repeatable.
    #[arg(long, value_name = "K=V", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A run id, or any unique prefix of one.
    pub run: Option<String>,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Redraw live until the run ends.
    #[arg(long, requires = "run")]
    pub watch: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only runs in this state.
    #[arg(long, value_parser = ["pending", "running", "unresponsive", "succeeded", "failed", "cancelled", "lost", "all"])]
    pub status: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// A run id, or any unique prefix of one (default: the newest run in the state folder).
    pub run: Option<String>,
    /// Only this step's log (else every step's lines, prefixed by its name).
    pub step: Option<String>,
    /// Follow until the step (or the run) ends.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines (of each step).
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// A run id, or any unique prefix of one.
    pub run: String,
    /// SIGKILL at once instead of SIGTERM and the grace.
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
    /// How long to wait for the run to end (default 60s, with --force 5s); exit 1 if it is
    /// still active then.
    #[arg(long, value_name = "DURATION", value_parser = |s: &str| s.parse::<crate::manifest::Duration>().map_err(|e| e.to_string()))]
    pub timeout: Option<crate::manifest::Duration>,
}

#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// A run id, or any unique prefix of one (default: the newest run in the state folder).
    pub run: Option<String>,
    /// Run under a detached supervisor; print the new run id and return at once.
    #[arg(short, long)]
    pub detach: bool,
    /// Progress bars (auto: when stderr is a terminal and CI is not set) or plain lines.
    #[arg(long, value_enum, default_value_t = crate::report::live::ProgressChoice::Auto)]
    pub progress: crate::report::live::ProgressChoice,
    /// Run even while another run of the same workflow root writes the same outputs.
    #[arg(long)]
    pub allow_concurrent: bool,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only this run's events.
    pub run: Option<String>,
    /// Keep printing new events (with RUN: until it ends).
    #[arg(short, long)]
    pub follow: bool,
}

#[derive(Debug, clap::Args)]
pub struct CleanupArgs {
    /// Only runs finished at least this long ago.
    #[arg(long, default_value = "7d", value_parser = |s: &str| s.parse::<crate::manifest::Duration>().map_err(|e| e.to_string()))]
    pub older_than: crate::manifest::Duration,
    /// Only runs in this state.
    #[arg(long, default_value = "all", value_parser = ["succeeded", "failed", "cancelled", "lost", "all"])]
    pub status: String,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Instead: remove the folders in runs/ that the history does not know (older than a
    /// minute).
    #[arg(long)]
    pub orphans: bool,
}

/// Parses `K=V` metadata.
pub fn parse_meta(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not K=V"))?;
    if k.is_empty() {
        return Err("the key is empty".to_owned());
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Workflow files (pre-commit passes a list). Default: the first bgflow.toml holding a
    /// [workflow] table, in the current folder or a folder above it.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Print the plan, or the problems, as one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Set a template variable, overriding [vars]; repeatable.
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Warnings are errors.
    #[arg(long)]
    pub strict: bool,
    /// Only file-local checks (syntax, schema, graph, templates): no PATH, env or disk checks.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflow file. Default: the first bgflow.toml holding a [workflow] table, in the
    /// current folder or a folder above it.
    pub file: Option<PathBuf>,
    /// Validate, then run under a detached supervisor; print the run id and return at once.
    #[arg(short, long)]
    pub detach: bool,
    /// Most steps running at once (default: workflow.max_parallel, else the CPU count).
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    /// Set a template variable, overriding [vars]; repeatable.
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Run only this step and what it depends on; repeatable. A matrix step's name selects
    /// every instance of it, `'step[v1,v2]'` one; `*` and `?` make a pattern over step and
    /// instance names (`'test[*,fast]'`).
    #[arg(long, value_name = "STEP")]
    pub only: Vec<String>,
    /// After a failure, go on with the steps that do not depend on it.
    #[arg(long, visible_alias = "no-fail-fast")]
    pub keep_going: bool,
    /// Run every step, even those whose outputs are up to date.
    #[arg(long)]
    pub force: bool,
    /// Progress bars (auto: when stderr is a terminal and CI is not set) or plain lines.
    #[arg(long, value_enum, default_value_t = crate::report::live::ProgressChoice::Auto)]
    pub progress: crate::report::live::ProgressChoice,
    /// Run even while another run of the same workflow root writes the same outputs.
    #[arg(long)]
    pub allow_concurrent: bool,
}

#[derive(Debug, clap::Args)]
pub struct GraphArgs {
    /// The workflow file. Default: the first bgflow.toml holding a [workflow] table, in the
    /// current folder or a folder above it.
    pub file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Set a template variable, overriding [vars]; repeatable.
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
}

/// Parses `K=V` where K is a variable name.
pub fn parse_var(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not K=V (e.g. --var prompt=\"Add a login page\")"))?;
    if !crate::validate::valid_name(k)
        || k.starts_with(|c: char| c.is_ascii_digit())
        || k.contains('-')
    {
        return Err(format!(
            "`{k}` is not a variable name (letters, digits and '_', not starting with a digit)"
        ));
    }
    Ok((k.to_owned(), v.to_owned()))
}

/// Runs a parsed command line; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    let color = cli.color.for_stderr();
    let g = run_cmd::Globals {
        state_dir: cli.state_dir.as_deref(),
        config: cli.config.as_deref(),
        color,
        quiet: cli.quiet,
        verbose: cli.verbose,
    };
    let result = match cli.command {
        Commands::Plan(args) => plan_cmd::plan(&args, color, cli.config.as_deref(), cli.quiet),
        Commands::Run(args) => run_cmd::run(&args, g),
        Commands::Start(args) => start_cmd::start(&args, g),
        Commands::Status(args) => history_cmd::status(&args, cli.state_dir.as_deref()),
        Commands::List(args) => history_cmd::list(&args, cli.state_dir.as_deref()),
        Commands::Logs(args) => history_cmd::logs(&args, cli.state_dir.as_deref()),
        Commands::Stop(args) => stop_cmd::stop(&args, cli.state_dir.as_deref()),
        Commands::Resume(args) => start_cmd::resume(&args, g),
        Commands::Events(args) => history_cmd::events(&args, cli.state_dir.as_deref()),
        Commands::Cleanup(args) => history_cmd::cleanup(&args, cli.state_dir.as_deref(), cli.quiet),
        Commands::Supervise { run } => Ok(run_cmd::supervise(&run, g)),
        Commands::Graph(args) => plan_cmd::graph(&args, color),
        Commands::Mcp { read_only } => Ok(crate::mcp::serve(&crate::mcp::Options {
            places: g.places(),
            read_only,
        })),
        Commands::Serve { bind, port } => Ok(crate::serve::serve(&crate::serve::Options {
            places: g.places(),
            bind: port.map_or(bind, |p| (std::net::Ipv4Addr::LOCALHOST, p).into()),
        })),
        Commands::Schema => report::stdout(&crate::schema::json_schema()).map(|()| exit::SUCCESS),
        Commands::Man { dir } => man_cmd::man(dir.as_deref()),
        Commands::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "bgflow", &mut buf);
            report::stdout(&String::from_utf8_lossy(&buf)).map(|()| exit::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report::stderr(&format!("error: cannot write output: {e}\n"));
            exit::INTERNAL
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn vars_parse() {
        assert_eq!(parse_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_var("x="), Ok(("x".into(), String::new())));
        assert!(parse_var("novalue").is_err());
        assert!(parse_var("1x=2").is_err());
        assert!(parse_var("a-b=2").is_err());
    }
}
