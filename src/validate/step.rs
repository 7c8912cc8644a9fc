//! Checking one step of the manifest: its name, command, paths, durations, regexes and
//! probes, into a compact checked `Step` (the rest of `check` is in `mod.rs`).

use super::matrix::Instance;
use super::*;

impl Cx<'_, '_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &mut self,
        name: String,
        mut spec: StepSpec,
        defaults: StepDefaults,
        r: &Renderer,
        root: &Arc<Path>,
        broken: bool,
        instance: Option<Arc<Instance>>,
    ) -> Step {
        // Probes are rendered apart, then put back (the step info below borrows `spec`).
        let (mut ready, mut health) = (spec.ready.take(), spec.health.take());
        let owned = name;
        let name = owned.as_str();
        let spec_kind = spec.kind;
        // `sh` by default; a pipeline is warned of unless a shell was chosen.
        let chosen_shell = spec.shell.or(defaults.shell);
        let shell = chosen_shell.unwrap_or_default();
        // Places are looked up only for a problem (`Document`).
        let doc = self.doc;
        let key = || doc.key_span(&["steps", name]);
        let at = |field: &'static str| vec!["steps", name, field];
        // A matrix instance is checked once as the step written in the file.
        let in_file = instance.as_deref().map_or(name, |i| i.base.as_str());
        let first = instance.as_deref().is_none_or(|i| i.first);
        if first && !valid_name(in_file) {
            self.push(
                Problem::error("invalid-name", format!("invalid step name `{in_file}`"))
                    .at_opt(key(), "letters, digits, '-' and '_' only")
                    .help("rename the step, e.g. `[steps.build-docs]`"),
            );
        }
        if first {
            self.reserved_name(in_file);
        }
        let matrix = instance.as_deref().map(|i| i.values.as_slice());
        // Paths are templates too, rendered with what `run` sees but the step's own paths.
        let info = StepInfo {
            name,
            inputs: &[],
            outputs: &[],
            attempt: 1,
            matrix,
        };
        let inputs = self.paths(r, std::mem::take(&mut spec.inputs), &info, name, "inputs");
        let outputs = self.paths(r, std::mem::take(&mut spec.outputs), &info, name, "outputs");
        spec.inputs = inputs.paths;
        spec.outputs = outputs.paths;
        spec.needs = self
            .paths(r, std::mem::take(&mut spec.needs), &info, name, "needs")
            .paths;
        if let Some(j) = spec.junit.take() {
            // A pattern that did not render is already an error: left out, so that it is
            // not compared as text with the other steps' (`shared-junit`, once a pair).
            spec.junit = self.path(r, &j, &info, "junit", || doc.value_span(&at("junit")));
        }
        let shown_paths = match (inputs.shown, outputs.shown) {
            (None, None) => None,
            (i, o) => Some(Box::new([
                i.unwrap_or_else(|| spec.inputs.clone()),
                o.unwrap_or_else(|| spec.outputs.clone()),
            ])),
        };
        self.not_zero(
            spec.timeout,
            &at("timeout"),
            "a step with no time to run fails at once; leave `timeout` out for no limit",
        );
        self.not_zero(
            spec.stall_timeout,
            &at("stall_timeout"),
            "every step would count as stalled at once; leave `stall_timeout` out for no limit",
        );
        // `cwd` is rendered with the paths as written (relative to the root); everything
        // that runs in the step's folder sees them relative to it.
        let info = StepInfo {
            name,
            inputs: &spec.inputs,
            outputs: &spec.outputs,
            attempt: 1,
            matrix,
        };
        let cwd_rel = match &spec.cwd {
            Some(c) => self
                .path(r, c, &info, "cwd", || doc.value_span(&at("cwd")))
                .unwrap_or_default(),
            None => String::new(),
        };
        self.no_nul(&cwd_rel, "`cwd`", || doc.value_span(&at("cwd")));
        let cwd = if cwd_rel.is_empty() {
            Arc::clone(root)
        } else {
            Arc::from(root.join(&cwd_rel))
        };
        let relative = [&spec.inputs, &spec.outputs].map(|paths| cwd_relative(root, &cwd, paths));
        let info = StepInfo {
            name,
            inputs: relative[0].as_deref().unwrap_or(&spec.inputs),
            outputs: relative[1].as_deref().unwrap_or(&spec.outputs),
            attempt: 1,
            matrix,
        };
        let command = match &spec.run {
            None if !broken => {
                self.push(
                    Problem::error("missing-key", format!("step `{in_file}` has no `run`"))
                        .at_opt(key(), "this step")
                        .help("add `run = \"...\"` (a shell string) or `run = [\"prog\", \"arg\"]` (argv)"),
                );
                Command::Argv(Vec::new())
            }
            None => Command::Argv(Vec::new()),
            Some(RunSpec::Argv(argv)) if argv.is_empty() => {
                self.error_at(
                    "invalid-value",
                    "`run` must not be an empty array",
                    &at("run"),
                    "empty",
                );
                Command::Argv(Vec::new())
            }
            Some(RunSpec::Shell(s)) if s.trim().is_empty() => {
                self.error_at(
                    "invalid-value",
                    "`run` must not be empty",
                    &at("run"),
                    "empty",
                );
                Command::Shell(String::new())
            }
            Some(run) => match render_run(r, Some(run), &info, shell) {
                Ok(c) => c,
                Err((e, item)) => {
                    let span = match item {
                        Some(i) => self.doc.item_span(&at("run"), i),
                        None => self.doc.value_span(&at("run")),
                    };
                    let text = match (run, item) {
                        (RunSpec::Shell(s), _) => s.as_str(),
                        (RunSpec::Argv(a), Some(i)) => a[i].as_str(),
                        (RunSpec::Argv(_), None) => "",
                    };
                    let place = self.inside(span, text, e.range.clone());
                    let mut p = Problem::error("template", e.message).at_opt(place, "here");
                    if let Some(h) = e.help {
                        p = p.help(h);
                    }
                    self.push(p);
                    Command::Shell(String::new())
                }
            },
        };
        match &command {
            Command::Shell(s) => self.no_nul(s, "`run`", || doc.value_span(&at("run"))),
            Command::Argv(argv) => {
                for (i, a) in argv.iter().enumerate() {
                    self.no_nul(a, "`run`", || doc.item_span(&at("run"), i));
                }
            }
        }
        if let Some(how) = super::cleans::cleans_the_state_folder(&command) {
            self.push(
                Problem::warning(
                    "cleans-state-folder",
                    format!(
                        "step `{in_file}` runs `{how}`, which deletes the state folder `.bgflow`: the run ends when its history is gone"
                    ),
                )
                .at_opt(doc.value_span(&at("run")), "here")
                .help(if how.contains("git") {
                    "leave it out: `git clean -fdx -e .bgflow`, or keep the state elsewhere with --state-dir"
                } else {
                    "delete what the run makes, not the state folder (`bgflow cleanup` removes old runs), or keep the state elsewhere with --state-dir"
                }),
            );
        }
        let mut env = Vec::new();
        let mut env_of_run = Vec::new();
        for (k, v) in &spec.env {
            let path = ["steps", name, "env", k];
            self.env_name(k, &path);
            if let Some(out) = self.render(r, v, Mode::Plain, Some(&info), &path) {
                if names_the_run(v) {
                    env_of_run.push((env.len(), v.clone()));
                }
                self.no_nul(&out, &format!("environment variable `{k}`"), || {
                    doc.value_span(&path)
                });
                env.push((k.clone(), out));
            }
        }
        for (field, list) in [("inputs", &spec.inputs), ("outputs", &spec.outputs)] {
            for (i, pattern) in list.iter().enumerate() {
                self.no_nul(pattern, &format!("a path in `{field}`"), || {
                    doc.item_span(&at(field), i)
                });
                if pattern.trim().is_empty() {
                    self.push(
                        Problem::error("invalid-value", format!("empty path in `{field}`"))
                            .at_opt(self.doc.item_span(&at(field), i), "empty"),
                    );
                } else if is_glob(pattern) && !template::is_template(pattern) {
                    if let Err(e) = compile_glob(pattern) {
                        self.push(
                            Problem::error(
                                "invalid-glob",
                                format!("invalid glob `{pattern}`: {}", e.kind()),
                            )
                            .at_opt(self.doc.item_span(&at(field), i), "here"),
                        );
                    }
                }
            }
        }
        let progress = spec.progress.as_ref().and_then(|p| {
            let re = self.regex(p, || doc.value_span(&at("progress")))?;
            let names: Vec<&str> = re.capture_names().flatten().collect();
            let useful = names.contains(&"percent")
                || names.contains(&"message")
                || (names.contains(&"current") && names.contains(&"total"));
            if !useful {
                self.push(
                    Problem::warning(
                        "progress-groups",
                        "the `progress` regex has no named group bgflow reads",
                    )
                    .at_opt(
                        self.doc.value_span(&at("progress")),
                        "no (?P<percent>…), (?P<current>…)+(?P<total>…) or (?P<message>…)",
                    )
                    .help("e.g. progress = '(?P<current>\\d+)/(?P<total>\\d+): (?P<message>.*)'"),
                );
            }
            Some(re)
        });
        let fail_on = spec
            .fail_on
            .iter()
            .enumerate()
            .filter_map(|(i, p)| self.regex(p, || doc.item_span(&at("fail_on"), i)))
            .collect();
        for (i, tool) in spec.tools.iter().enumerate() {
            self.no_nul(tool, "a tool in `tools`", || doc.item_span(&at("tools"), i));
        }
        if let Some(junit) = &spec.junit {
            self.no_nul(junit, "`junit`", || doc.value_span(&at("junit")));
            if let (false, Err(e)) = (template::is_template(junit), compile_glob(junit)) {
                self.push(
                    Problem::error(
                        "invalid-glob",
                        format!("invalid glob `{junit}`: {}", e.kind()),
                    )
                    .at_opt(self.doc.value_span(&at("junit")), "here"),
                );
            }
            if spec.kind != StepKind::Test {
                self.push(
                    Problem::warning(
                        "kind-mismatch",
                        format!(
                            "`junit` is read only for `kind = \"test\"`; step `{in_file}` is a {}",
                            spec.kind.as_str()
                        ),
                    )
                    .at_opt(self.doc.key_span(&at("junit")), "ignored")
                    .help("add `kind = \"test\"` to the step"),
                );
            }
        }
        if let Some((flag, path)) = (spec.run.as_ref())
            .filter(|_| first && spec.kind == StepKind::Test && spec.junit.is_none())
            .and_then(super::junit_flag::report_flag)
            // A `junit` that did not render is an error of its own (a place looked up
            // only once there is a problem to report).
            .filter(|_| doc.key_span(&at("junit")).is_none())
        {
            self.push(
                Problem::warning(
                    "junit-not-read",
                    format!(
                        "test step `{in_file}` writes a JUnit report (`{flag}`) but has no `junit`: its tests are not counted, nor its failing tests named"
                    ),
                )
                .at_opt(doc.value_span(&at("run")), "writes a report")
                .help(format!(
                    "add `junit = \"{path}\"` (relative to the workflow's root), and list it in `outputs` for `resume` to keep the step"
                )),
            );
        }
        // A pipeline under `sh`: a failure before its last command is lost.
        if let Some((written, pipe)) = match &spec.run {
            Some(RunSpec::Shell(w)) if first && chosen_shell.is_none() => {
                super::pipeline::first_pipe(w).map(|p| (w.as_str(), p))
            }
            _ => None,
        } {
            let place = self.inside(doc.value_span(&at("run")), written, Some(pipe));
            self.push(
                Problem::warning(
                    "pipe-status",
                    format!(
                        "step `{in_file}` runs a pipeline under `sh`, which takes its exit status from the last command: a failure before the `|` is lost"
                    ),
                )
                .at_opt(place, "what fails before this is not seen")
                .help("add `shell = \"bash\"` to the step or to [workflow]: it runs under `bash -eo pipefail`, where a failing command fails the step (`shell = \"sh\"` keeps sh's rule and says so)"),
            );
        }
        // Probes are templates too (a port from `vars`); checked as rendered.
        for (probe_key, probe) in [("ready", &mut ready), ("health", &mut health)] {
            if let Some(probe) = probe {
                // Messages quote a value as written when it uses the caller's environment.
                let written = probe.clone();
                let mut rendered_ok = true;
                for (field, value, mode) in [
                    ("http", &mut probe.http, Mode::Plain),
                    ("tcp", &mut probe.tcp, Mode::Plain),
                    ("command", &mut probe.command, Mode::Shell),
                ] {
                    if let Some(text) = value.as_mut() {
                        let path = ["steps", name, probe_key, field];
                        match self.render(r, text, mode, Some(&info), &path) {
                            Some(out) => *text = out,
                            None => rendered_ok = false,
                        }
                    }
                }
                if rendered_ok {
                    self.probe(name, probe_key, probe, &written, spec_kind);
                }
                self.probe_values(name, probe_key, probe);
            }
        }
        // A `ready` the file has but that could not be read is an error already.
        if spec_kind == StepKind::Service && ready.is_none() && doc.key_span(&at("ready")).is_none()
        {
            self.push(
                Problem::warning(
                    "service-without-ready",
                    format!("service `{in_file}` has no `ready` probe"),
                )
                .at_opt(key(), "dependents will start as soon as it is spawned")
                .help("add e.g. `ready = { tcp = \"127.0.0.1:8000\", timeout = \"30s\" }`"),
            );
        }
        let run = spec
            .run
            .filter(|run| match run {
                RunSpec::Shell(s) => template::is_template(s),
                RunSpec::Argv(argv) => argv.iter().any(|a| template::is_template(a)),
            })
            .map(Box::new);
        let slurm = self.slurm_job(
            in_file,
            first,
            spec_kind,
            spec.executor,
            defaults.executor,
            spec.resources.as_deref(),
        );
        let more = More {
            slurm,
            needs: spec.needs,
            cwd: spec.cwd,
            env,
            env_of_run,
            timeout: spec.timeout,
            retry_delay: spec.retry_delay,
            stall_timeout: spec.stall_timeout,
            progress,
            fail_on,
            tools: spec.tools,
            tags: spec.tags,
            ready,
            health,
            junit: spec.junit,
            instance,
            shown_paths,
        };
        Step {
            name: owned,
            kind: spec.kind,
            allow_failure: spec.allow_failure,
            retries: spec.retries,
            kill_grace: spec.kill_grace,
            input_exists: vec![None; spec.inputs.len()].into_boxed_slice(),
            inputs: spec.inputs.into_boxed_slice(),
            outputs: spec.outputs.into_boxed_slice(),
            command,
            run,
            cwd,
            more: (!more.is_empty()).then(|| Box::new(more)),
        }
    }

    /// Compiles `pattern`; `span` places it, looked up only for a problem.
    fn regex(
        &mut self,
        pattern: &str,
        span: impl FnOnce() -> Option<Range<usize>>,
    ) -> Option<Regex> {
        match Regex::new(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                let detail = e.to_string();
                let last = detail
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .trim_start_matches("error: ")
                    .to_owned();
                self.push(
                    Problem::error("invalid-regex", format!("invalid regex: {last}"))
                        .at_opt(span(), "here"),
                );
                None
            }
        }
    }

    fn probe(&mut self, step: &str, key: &str, probe: &Probe, written: &Probe, kind: StepKind) {
        // A value from the caller's environment is never printed (guarantee 12).
        let shown = |rendered: &str, written: &Option<String>| match written {
            Some(w) if w.contains("env") && template::is_template(w) => w.clone(),
            _ => rendered.to_owned(),
        };
        let path = ["steps", step, key];
        let set = [&probe.http, &probe.tcp, &probe.command, &probe.log]
            .iter()
            .filter(|p| p.is_some())
            .count();
        if set != 1 {
            self.push(
                Problem::error("invalid-probe", format!("`{key}` needs exactly one of `http`, `tcp`, `command`, `log` (found {set})"))
                    .at_opt(self.doc.value_span(&path), "here")
                    .help("e.g. `{ tcp = \"127.0.0.1:8000\" }` or `{ http = \"http://127.0.0.1:8000/\" }`"),
            );
        }
        if let Some(log) = &probe.log {
            let doc = self.doc;
            self.regex(log, || doc.value_span(&["steps", step, key, "log"]));
            if key == "health" {
                self.push(
                    Problem::error(
                        "invalid-probe",
                        "a `health` probe cannot be `log`: output shows readiness, not health",
                    )
                    .at_opt(
                        self.doc.key_span(&["steps", step, key, "log"]),
                        "only for `ready`",
                    )
                    .help("use `http`, `tcp` or `command` for health"),
                );
            }
        }
        if let Some(url) = &probe.http {
            if !url.starts_with("http://") {
                self.push(
                    Problem::error(
                        "invalid-probe",
                        format!(
                            "`http` probe `{}` is not an http:// URL (https is not probed)",
                            shown(url, &written.http)
                        ),
                    )
                    .at_opt(self.doc.value_span(&["steps", step, key, "http"]), "here"),
                );
            }
        }
        if let Some(addr) = &probe.tcp {
            if addr
                .rsplit_once(':')
                .is_none_or(|(_, port)| port.parse::<u16>().is_err())
            {
                self.push(
                    Problem::error(
                        "invalid-probe",
                        format!(
                            "`tcp` probe `{}` is not HOST:PORT",
                            shown(addr, &written.tcp)
                        ),
                    )
                    .at_opt(self.doc.value_span(&["steps", step, key, "tcp"]), "here"),
                );
            }
        }
        if kind != StepKind::Service {
            self.push(
                Problem::warning(
                    "kind-mismatch",
                    format!("`{key}` is used only by `kind = \"service\"` steps"),
                )
                .at_opt(self.doc.key_span(&path), "ignored")
                .help("add `kind = \"service\"` to the step"),
            );
        }
    }
}
