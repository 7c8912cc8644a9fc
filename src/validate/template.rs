//! Templates in `run`, `cwd`, `env` values and hooks (minijinja, strict undefined).
//!
//! In a shell string every interpolated value is shell-quoted, and a list becomes separately
//! quoted words; `| safe` opts out. Elsewhere (argv elements, env values, cwd) values are
//! inserted as they are, since no shell reads them.
//!
//! Every rendering is bounded (`limits`): fuel, an output cap, and a language without
//! the statements and filters that could build a value of any size. The caller's
//! environment is reachable only one name at a time (`env.NAME`): it cannot be listed,
//! printed whole or dumped with `debug()`, and what `plan` shows renders each value as
//! `<env:NAME>` (`Renderer::render_shown`).

mod explain;
pub mod limits;
mod simple;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, StringInput, Value, ValueKind};
use minijinja::{Environment, ErrorKind, State, UndefinedBehavior};

/// Whether rendered text is read by a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shell,
    Plain,
}

/// Quotes `s` as one word for a POSIX shell: left bare when it is made of safe characters.
pub fn shell_quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./=:,+@%^".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// A template error with its place inside the template text.
#[derive(Debug, Clone)]
pub struct TemplateError {
    pub message: String,
    pub help: Option<String>,
    /// Byte range inside the template source.
    pub range: Option<std::ops::Range<usize>>,
}

/// The two minijinja environments (shell and plain) and the shared context values.
pub struct Renderer {
    shell: Environment<'static>,
    plain: Environment<'static>,
    base: BTreeMap<&'static str, Value>,
    /// `env` as `plan` shows it: each value `<env:NAME>`.
    shown_env: Value,
    var_names: Vec<String>,
    /// The most bytes one name of the context can reach (the run's and the workflow's
    /// names), for the bound on what a template can build (`limits`).
    leaf: usize,
    /// All of `[vars]` (a template that names `vars` whole), and its largest value (one
    /// that names only `vars.NAME`).
    vars_all: usize,
    vars_max: usize,
    /// The largest value of the caller's environment.
    env_leaf: usize,
    /// Fuel burnt by every rendering so far (`limits::TOTAL_FUEL`).
    spent: AtomicU64,
    /// Bytes rendered by every rendering so far (`limits::TOTAL_OUTPUT`).
    rendered: AtomicUsize,
    /// Whether `spent` and `rendered` are bounded: while checking, not once a run has its id (`set_run`).
    checking: bool,
}

/// What a step's templates can see of the run (placeholders at plan time).
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub id: String,
    pub dir: String,
}

/// What a step's templates can see of the step.
pub struct StepInfo<'a> {
    pub name: &'a str,
    pub inputs: &'a [String],
    pub outputs: &'a [String],
    pub attempt: u32,
    /// A matrix instance's values, `{{ matrix.NAME }}`; `None`: the step has no matrix.
    pub matrix: Option<&'a [(String, String)]>,
}

/// Whether `text` holds anything the renderer acts on; text that does not renders as itself.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Renderer {
    /// `env`: the caller's environment; `None` renders every `env.X` as a placeholder
    /// (`--offline`, where the caller's environment is not the one the workflow will see).
    pub fn new(
        vars: &indexmap::IndexMap<String, String>,
        env: Option<BTreeMap<String, String>>,
        workflow_name: &str,
        root: &str,
        run: &RunInfo,
    ) -> Self {
        let mut base = BTreeMap::new();
        base.insert("vars", Value::from_serialize(vars));
        let env_leaf = env
            .as_ref()
            .map_or(0, |m| m.values().map(String::len).max().unwrap_or(0));
        let (env, shown_env) = match env {
            Some(map) => {
                let map = Arc::new(map);
                (
                    Value::from_object(CallerEnv {
                        map: Arc::clone(&map),
                        shown: false,
                    }),
                    Value::from_object(CallerEnv { map, shown: true }),
                )
            }
            None => (Value::from_object(AnyEnv), Value::from_object(AnyEnv)),
        };
        base.insert("env", env);
        base.insert(
            "workflow",
            Value::from_serialize(BTreeMap::from([("name", workflow_name), ("root", root)])),
        );
        base.insert("run", run_value(run));
        let vars_all = vars.iter().map(|(k, v)| k.len() + v.len() + 8).sum();
        let vars_max = vars.values().map(String::len).max().unwrap_or(0);
        let leaf = workflow_name.len() + root.len() + 2 * run.dir.len() + 64;
        Self {
            shell: environment(Mode::Shell),
            plain: environment(Mode::Plain),
            base,
            shown_env,
            var_names: vars.keys().cloned().collect(),
            leaf,
            vars_all,
            vars_max,
            env_leaf,
            spent: AtomicU64::new(0),
            rendered: AtomicUsize::new(0),
            checking: true,
        }
    }

    /// Replaces the run context (the real id and folder, at run time).
    /// The run's templates are no longer bound by the check's total (`limits::TOTAL_FUEL`):
    /// a long run renders every command again for each attempt. Each rendering keeps its
    /// own fuel and output cap.
    pub fn set_run(&mut self, run: &RunInfo) {
        self.base.insert("run", run_value(run));
        self.checking = false;
    }

    /// Renders `source`; text without template syntax is returned untouched.
    pub fn render(
        &self,
        source: &str,
        mode: Mode,
        step: Option<&StepInfo<'_>>,
    ) -> Result<String, TemplateError> {
        self.render_with(source, mode, step, false)
    }

    /// Renders `source` as `plan` shows it: each value of the caller's environment is
    /// `<env:NAME>`, so that a check that runs nothing prints no secret.
    pub fn render_shown(
        &self,
        source: &str,
        mode: Mode,
        step: Option<&StepInfo<'_>>,
    ) -> Result<String, TemplateError> {
        self.render_with(source, mode, step, true)
    }

    fn render_with(
        &self,
        source: &str,
        mode: Mode,
        step: Option<&StepInfo<'_>>,
        shown: bool,
    ) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        let names = limits::names_in(source)?;
        let leaf = self.leaf
            + if names_vars_whole(source) {
                self.vars_all
            } else {
                self.vars_max
            }
            + step.map_or(0, |s| {
                s.name.len()
                    + s.inputs.iter().chain(s.outputs).map(|p| p.len() + 3).sum::<usize>()
                    + s.matrix.map_or(0, |m| m.iter().map(|(k, v)| k.len() + v.len() + 3).sum())
            })
            + if source.contains("env") { self.env_leaf } else { 0 }
            // `range` and `list` make up to 100,000 items.
            + if source.contains("range") || source.contains("list") {
                limits::LIST_CAP * 8
            } else {
                0
            };
        let bound = names.saturating_add(1).saturating_mul(leaf);
        if bound > limits::VALUE_CAP {
            return Err(TemplateError {
                message: format!(
                    "this template could build a value of {} MB; bgflow renders at most {} MB",
                    bound >> 20,
                    limits::VALUE_CAP >> 20
                ),
                help: Some(
                    "use fewer names in one template, or pass large data in a file".to_owned(),
                ),
                range: None,
            });
        }
        if self.checking && self.rendered.load(Ordering::Relaxed) >= limits::TOTAL_OUTPUT {
            return Err(TemplateError {
                message: format!(
                    "the workflow's templates rendered more than {} MB together; this one was not rendered",
                    limits::TOTAL_OUTPUT >> 20
                ),
                help: Some("pass large data in files, not in commands".to_owned()),
                range: None,
            });
        }
        if self.checking && self.spent.load(Ordering::Relaxed) >= limits::TOTAL_FUEL {
            return Err(TemplateError {
                message: format!(
                    "the workflow's templates took more than {} steps together; this one was not rendered",
                    limits::TOTAL_FUEL
                ),
                help: Some("loop less in templates; put longer logic in a script".to_owned()),
                range: None,
            });
        }
        // Within the same bounds as minijinja's rendering (`simple`).
        if let Some(out) = simple::render(source, mode, self.base.get("vars"), step) {
            self.rendered.fetch_add(out.len(), Ordering::Relaxed);
            return Ok(out);
        }
        let env = match mode {
            Mode::Shell => &self.shell,
            Mode::Plain => &self.plain,
        };
        let mut ctx = self.base.clone();
        if shown {
            ctx.insert("env", self.shown_env.clone());
        }
        if let Some(step) = step {
            ctx.insert(
                "step",
                minijinja::context! {
                    name => step.name,
                    inputs => step.inputs,
                    outputs => step.outputs,
                    attempt => step.attempt,
                },
            );
            if let Some(values) = step.matrix {
                ctx.insert(
                    "matrix",
                    Value::from_iter(values.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
                );
            }
        }
        let mut out = limits::Capped {
            out: Vec::new(),
            over: false,
        };
        let template = env
            .template_from_str(source)
            .map_err(|e| explain::explain(source, &e, &self.var_names, step))?;
        let result = template.render_captured_to(ctx, &mut out);
        match result {
            Ok(done) => {
                let used = done.state().fuel_levels().map_or(0, |(used, _)| used);
                self.spent.fetch_add(used, Ordering::Relaxed);
                self.rendered.fetch_add(out.out.len(), Ordering::Relaxed);
            }
            Err(e) => {
                // What ran before the error is not known; count it all.
                self.spent.fetch_add(limits::FUEL, Ordering::Relaxed);
                if out.over {
                    return Err(TemplateError {
                        message: format!(
                            "this template renders more than {} KiB",
                            limits::OUTPUT_CAP >> 10
                        ),
                        help: Some(
                            "a longer argument or environment value cannot start on Linux; pass large data in a file"
                                .to_owned(),
                        ),
                        range: None,
                    });
                }
                return Err(explain::explain(source, &e, &self.var_names, step));
            }
        }
        String::from_utf8(out.out).map_err(|_| TemplateError {
            message: "the template rendered text that is not UTF-8".to_owned(),
            help: None,
            range: None,
        })
    }
}

/// Whether `vars` appears other than as `vars.NAME` or `vars[...]` (so that one name could
/// reach every variable).
fn names_vars_whole(source: &str) -> bool {
    source
        .match_indices("vars")
        .any(|(i, _)| !matches!(source.as_bytes().get(i + 4), Some(b'.' | b'[')))
}

fn run_value(run: &RunInfo) -> Value {
    Value::from_serialize(BTreeMap::from([
        ("id", run.id.as_str()),
        ("dir", run.dir.as_str()),
    ]))
}

fn environment(mode: Mode) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_debug(true);
    env.set_fuel(Some(limits::FUEL));
    for f in limits::REMOVED_FILTERS {
        env.remove_filter(f);
    }
    for f in limits::REMOVED_FUNCTIONS {
        env.remove_global(f);
    }
    env.add_filter("replace", capped_replace);
    env.add_filter("join", capped_join);
    env.add_filter("list", capped_list);
    // For matrix values over files (`{ glob = "data/*.csv" }`): `data/a.csv` is `a.csv`,
    // `a` and `data`.
    // An undefined value given to them is the undefined name's error, not "value is not a
    // string" (strict undefined does not stop it before a filter).
    env.add_filter("basename", |p: &Value| path_filter(p, PathPart::Base));
    env.add_filter("stem", |p: &Value| path_filter(p, PathPart::Stem));
    env.add_filter("dirname", |p: &Value| path_filter(p, PathPart::Dir));
    env.set_formatter(move |out, _state, value| {
        if value.downcast_object_ref::<CallerEnv>().is_some() {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "the caller's environment is reachable only one name at a time, as `env.NAME`",
            ));
        }
        let text = match (mode, value.kind()) {
            _ if value.is_safe() => value.to_string(),
            (_, ValueKind::Seq) => {
                let words: Vec<String> = match value.try_iter() {
                    Ok(items) => items.map(|v| word(mode, &v)).collect(),
                    Err(_) => vec![word(mode, value)],
                };
                words.join(" ")
            }
            _ => word(mode, value),
        };
        out.write_str(&text).map_err(minijinja::Error::from)
    });
    env
}

enum PathPart {
    Base,
    Stem,
    Dir,
}

fn path_filter(value: &Value, part: PathPart) -> Result<String, minijinja::Error> {
    if value.is_undefined() {
        return Err(minijinja::Error::from(ErrorKind::UndefinedError));
    }
    value
        .as_str()
        .map(|p| path_part(p, part))
        .ok_or_else(|| minijinja::Error::new(ErrorKind::InvalidOperation, "value is not a string"))
}

/// A part of a `/`-separated path, by its text alone: `dirname` of `a.csv` is `.`.
fn path_part(path: &str, part: PathPart) -> String {
    let trimmed = path.trim_end_matches('/');
    let (dir, base) = match trimmed.rsplit_once('/') {
        Some(("", base)) => ("/", base),
        Some((dir, base)) => (dir, base),
        None => (".", trimmed),
    };
    match part {
        PathPart::Base => base.to_owned(),
        PathPart::Dir => dir.to_owned(),
        PathPart::Stem => match base.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem.to_owned(),
            _ => base.to_owned(),
        },
    }
}

fn word(mode: Mode, value: &Value) -> String {
    let s = if value.is_none() {
        String::new()
    } else {
        value.to_string()
    };
    match mode {
        Mode::Shell if !value.is_safe() => shell_quote(&s),
        _ => s,
    }
}

fn too_large(what: &str) -> minijinja::Error {
    minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} would be larger than {} MB", limits::VALUE_CAP >> 20),
    )
}

/// `replace`, refused when its result would be larger than `VALUE_CAP`.
fn capped_replace(
    state: &State<'_, '_>,
    value: Value,
    from: Value,
    to: Value,
) -> Result<Value, minijinja::Error> {
    let (text, old, new) = (value.to_string(), from.to_string(), to.to_string());
    let count = if old.is_empty() {
        text.chars().count() + 1
    } else {
        text.matches(old.as_str()).count()
    };
    let len = count.saturating_mul(new.len()).saturating_add(text.len());
    if len > limits::VALUE_CAP {
        return Err(too_large("the result of `replace`"));
    }
    minijinja::filters::replace(
        state,
        StringInput::new(state, &value)?,
        StringInput::new(state, &from)?,
        StringInput::new(state, &to)?,
    )
}

/// `join`, refused when its result would be larger than `VALUE_CAP`.
fn capped_join(
    state: &State<'_, '_>,
    value: Value,
    joiner: Option<Value>,
) -> Result<Value, minijinja::Error> {
    let sep = joiner.as_ref().map_or(0, |j| j.to_string().len());
    let mut len = 0usize;
    if let Ok(items) = value.try_iter() {
        for item in items {
            let item_len = item
                .as_str()
                .map_or_else(|| item.to_string().len(), str::len);
            len = len.saturating_add(item_len).saturating_add(sep);
            if len > limits::VALUE_CAP {
                return Err(too_large("the result of `join`"));
            }
        }
    }
    let joiner = match &joiner {
        Some(j) => Some(StringInput::new(state, j)?),
        None => None,
    };
    minijinja::filters::join(state, &value, joiner)
}

/// `list`, refused beyond `LIST_CAP` items (as `range`).
fn capped_list(state: &State<'_, '_>, value: Value) -> Result<Value, minijinja::Error> {
    let items = value
        .as_str()
        .map_or_else(|| value.len().unwrap_or(0), |s| s.chars().count());
    if items > limits::LIST_CAP {
        return Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            format!("`list` would make more than {} items", limits::LIST_CAP),
        ));
    }
    minijinja::filters::list(state, value)
}

/// The caller's environment: one name at a time. It cannot be listed or printed whole, and
/// its `Debug` form (what `pprint` would show) names no value.
struct CallerEnv {
    map: Arc<BTreeMap<String, String>>,
    /// Each value as `<env:NAME>`, for what `plan` shows.
    shown: bool,
}

impl fmt::Debug for CallerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<the caller's environment>")
    }
}

impl Object for CallerEnv {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let value = self.map.get(name)?;
        Some(if self.shown {
            Value::from(format!("<env:{name}>"))
        } else {
            Value::from(value.as_str())
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::NonEnumerable
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<env>")
    }
}

/// `env` under `--offline`: every name exists and renders as `${NAME}`.
#[derive(Debug)]
struct AnyEnv;

impl Object for AnyEnv {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        key.as_str().map(|k| Value::from(format!("${{{k}}}")))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(vars: &[(&str, &str)]) -> Renderer {
        let vars = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let env = BTreeMap::from([("HOME".to_owned(), "/home/me".to_owned())]);
        Renderer::new(
            &vars,
            Some(env),
            "wf",
            "/root",
            &RunInfo {
                id: "RUN".into(),
                dir: "/runs/RUN".into(),
            },
        )
    }

    #[test]
    fn quotes_hostile_values_as_one_word() {
        for hostile in [
            "'; touch PWNED; '",
            "$(touch PWNED)",
            "`touch PWNED`",
            "a\nb",
            "x y",
            "",
        ] {
            let r = renderer(&[("v", hostile)]);
            let out = r
                .render("echo {{ vars.v }}", Mode::Shell, None)
                .expect("renders");
            assert_eq!(out, format!("echo {}", shell_quote(hostile)));
            assert!(out.starts_with("echo '"), "{out}");
        }
        assert_eq!(shell_quote("plain-word_1.txt"), "plain-word_1.txt");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn lists_become_separate_words_and_safe_opts_out() {
        let r = renderer(&[("v", "a > b")]);
        let step = StepInfo {
            name: "s",
            inputs: &["a b.txt".to_owned(), "c.txt".to_owned()],
            outputs: &[],
            attempt: 2,
            matrix: None,
        };
        let out = r
            .render(
                "cat {{ step.inputs }} #{{ step.attempt }}",
                Mode::Shell,
                Some(&step),
            )
            .expect("renders");
        assert_eq!(out, "cat 'a b.txt' c.txt #2");
        let raw = r
            .render("echo {{ vars.v | safe }}", Mode::Shell, None)
            .expect("renders");
        assert_eq!(raw, "echo a > b");
        let plain = r
            .render("{{ vars.v }}", Mode::Plain, None)
            .expect("renders");
        assert_eq!(plain, "a > b");
    }

    #[test]
    fn undefined_names_are_errors_with_a_place() {
        let r = renderer(&[("prompt", "x")]);
        let err = r
            .render("echo {{ vars.promt }}", Mode::Shell, None)
            .expect_err("undefined");
        assert!(err.message.contains("vars.promt"), "{}", err.message);
        assert_eq!(err.help.as_deref(), Some("did you mean `vars.prompt`?"));
        let range = err.range.expect("a range");
        assert!("echo {{ vars.promt }}"[range].contains("promt"));
        assert!(r.render("{{ nope }}", Mode::Plain, None).is_err());
        assert!(r
            .render("{{ env.UNSET_FOR_SURE }}", Mode::Plain, None)
            .is_err());
        assert_eq!(
            r.render("{{ env.HOME }}", Mode::Plain, None)
                .ok()
                .as_deref(),
            Some("/home/me")
        );
    }

    #[test]
    fn syntax_errors_are_reported() {
        let r = renderer(&[]);
        let err = r
            .render("echo {{ vars.x ", Mode::Shell, None)
            .expect_err("bad syntax");
        assert!(
            err.message.starts_with("invalid template"),
            "{}",
            err.message
        );
    }

    #[test]
    fn the_bound_counts_what_each_name_can_reach() {
        let big = "a".repeat(1 << 20);
        let r = renderer(&[("big", &big), ("small", "s")]);
        // 100 names, each `vars.NAME`: at most the largest var each, 100 MB.
        let many = "{{ vars.small }}".repeat(100);
        let err = r
            .render(&many, Mode::Plain, None)
            .expect_err("over the bound");
        assert!(
            err.message.contains("could build a value of"),
            "{}",
            err.message
        );
        // 20 of them: 20 MB at most, rendered.
        let few = "{{ vars.small }}".repeat(20);
        assert_eq!(r.render(&few, Mode::Plain, None).ok(), Some("s".repeat(20)));
        // `vars` whole reaches every var.
        assert!(names_vars_whole("{{ vars|length }}"));
        assert!(!names_vars_whole("{{ vars.a ~ vars['b'] }}"));
    }

    #[test]
    fn fuel_and_output_are_capped() {
        let r = renderer(&[("k", &"k".repeat(1000))]);
        let loops = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}";
        let err = r.render(loops, Mode::Plain, None).expect_err("out of fuel");
        assert!(err.message.contains("steps to render"), "{}", err.message);
        let long = "{% for i in range(200) %}{{ vars.k }}{% endfor %}";
        let err = r.render(long, Mode::Plain, None).expect_err("over the cap");
        assert!(err.message.contains("more than 128 KiB"), "{}", err.message);
        let fits = "{% for i in range(100) %}{{ vars.k }}{% endfor %}";
        assert_eq!(
            r.render(fits, Mode::Plain, None).map(|s| s.len()).ok(),
            Some(100_000)
        );
    }

    #[test]
    fn the_environment_is_shown_masked() {
        let r = renderer(&[]);
        assert_eq!(
            r.render_shown("{{ env.HOME }}", Mode::Plain, None)
                .ok()
                .as_deref(),
            Some("<env:HOME>")
        );
        assert!(r.render_shown("{{ env.NOPE }}", Mode::Plain, None).is_err());
        assert!(r.render("{{ env }}", Mode::Plain, None).is_err());
    }
}
