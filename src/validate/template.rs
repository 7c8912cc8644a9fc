//! Templates in `run`, `cwd`, `env` values and hooks (minijinja, strict undefined).
//!
//! In a shell string every interpolated value is shell-quoted, and a list becomes separately
//! quoted words; `| safe` opts out. Elsewhere (argv elements, env values, cwd) values are
//! inserted as they are, since no shell reads them.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, Value, ValueKind};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};

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
    var_names: Vec<String>,
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
        base.insert(
            "env",
            match env {
                Some(map) => Value::from_serialize(map),
                None => Value::from_object(AnyEnv),
            },
        );
        base.insert(
            "workflow",
            Value::from_serialize(BTreeMap::from([("name", workflow_name), ("root", root)])),
        );
        base.insert("run", run_value(run));
        Self {
            shell: environment(Mode::Shell),
            plain: environment(Mode::Plain),
            base,
            var_names: vars.keys().cloned().collect(),
        }
    }

    /// Replaces the run context (the real id and folder, at run time).
    pub fn set_run(&mut self, run: &RunInfo) {
        self.base.insert("run", run_value(run));
    }

    /// Renders `source`; text without template syntax is returned untouched.
    pub fn render(
        &self,
        source: &str,
        mode: Mode,
        step: Option<&StepInfo<'_>>,
    ) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        let env = match mode {
            Mode::Shell => &self.shell,
            Mode::Plain => &self.plain,
        };
        let mut ctx = self.base.clone();
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
        }
        let result = env.template_from_str(source).and_then(|t| t.render(ctx));
        result.map_err(|e| self.explain(source, &e))
    }

    fn explain(&self, source: &str, e: &minijinja::Error) -> TemplateError {
        let range = e.range();
        let snippet = range.clone().and_then(|r| source.get(r)).map(|s| {
            s.trim()
                .trim_start_matches("{{")
                .trim_end_matches("}}")
                .trim()
                .to_owned()
        });
        match e.kind() {
            ErrorKind::UndefinedError => {
                let what = snippet.unwrap_or_else(|| "a name".to_owned());
                let name = what
                    .split(['|', ' ', '('])
                    .next()
                    .unwrap_or(&what)
                    .trim()
                    .to_owned();
                let help = match name.strip_prefix("vars.") {
                    Some(var) => match crate::diag::did_you_mean(var, self.var_names.iter().map(String::as_str)) {
                        Some(close) => format!("did you mean `vars.{close}`?"),
                        None if self.var_names.is_empty() => {
                            format!("define it under [vars] or pass `--var {var}=VALUE`")
                        }
                        None => format!(
                            "defined vars: {}; add `{var}` under [vars] or pass `--var {var}=VALUE`",
                            self.var_names.join(", ")
                        ),
                    },
                    None if name.starts_with("env.") => {
                        "the variable is not set in this environment; set it, or use `env.X | default(\"...\")`"
                            .to_owned()
                    }
                    None => "names available: vars, env, workflow, run, step".to_owned(),
                };
                TemplateError {
                    message: format!("undefined value `{name}` in template"),
                    help: Some(help),
                    range,
                }
            }
            _ => TemplateError {
                message: format!(
                    "invalid template: {}",
                    e.detail()
                        .map_or_else(|| e.kind().to_string(), str::to_owned)
                ),
                help: None,
                range,
            },
        }
    }
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
    env.set_formatter(move |out, _state, value| {
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
}
