//! A minijinja error told as a workflow's author needs it: what is wrong, where, and for an
//! undefined name the names that are there (`did you mean `matrix.file`?`).

use minijinja::ErrorKind;

use super::{limits, StepInfo, TemplateError};
use crate::diag::{did_you_mean, some_names};

/// The names each part of the context has (`step`, `workflow`, `run`), for suggestions.
const STEP_NAMES: [&str; 4] = ["name", "inputs", "outputs", "attempt"];
const WORKFLOW_NAMES: [&str; 2] = ["name", "root"];
const RUN_NAMES: [&str; 2] = ["id", "dir"];
const TOP_NAMES: &str = "vars, env, workflow, run, step, matrix";

pub(super) fn explain(
    source: &str,
    e: &minijinja::Error,
    var_names: &[String],
    step: Option<&StepInfo<'_>>,
) -> TemplateError {
    let range = e.range();
    let snippet = range.clone().and_then(|r| source.get(r)).map(|s| {
        s.trim()
            .trim_start_matches("{{")
            .trim_end_matches("}}")
            .trim()
            .to_owned()
    });
    match e.kind() {
        ErrorKind::OutOfFuel => TemplateError {
            message: format!(
                "this template takes more than {} steps to render",
                limits::FUEL
            ),
            help: Some("loop less in templates; put longer logic in a script".to_owned()),
            range,
        },
        ErrorKind::UnknownFilter | ErrorKind::UnknownFunction
            if snippet.as_deref().is_some_and(|s| {
                limits::REMOVED_FILTERS
                    .iter()
                    .chain(&limits::REMOVED_FUNCTIONS)
                    .any(|f| s.contains(f))
            }) =>
        {
            TemplateError {
                message: format!(
                    "invalid template: {}",
                    e.detail().map_or_else(|| e.kind().to_string(), str::to_owned)
                ),
                help: Some(format!(
                    "bgflow templates leave out {} and {}: they could print the environment or build a value of any size",
                    limits::REMOVED_FUNCTIONS.map(|f| format!("{f}()")).join(", "),
                    limits::REMOVED_FILTERS.join(", ")
                )),
                range,
            }
        }
        ErrorKind::UndefinedError => {
            // From a filter (`{{ matrix.fil | stem }}`) the range is the filter's name: the
            // undefined value is what the expression starts with.
            // The place is then moved onto that value.
            let piped = range.as_ref().and_then(|r| {
                let before = source.get(..r.start)?.trim_end().strip_suffix('|')?;
                let open = before.rfind("{{")? + 2;
                let expr = before[open..].split('|').next()?;
                let start = open + (expr.len() - expr.trim_start().len());
                Some((expr.trim().to_owned(), start..start + expr.trim().len()))
            });
            let (what, range) = match piped {
                Some((expr, at)) => (expr, Some(at)),
                None => (snippet.unwrap_or_else(|| "a name".to_owned()), range),
            };
            let name = what
                .split(['|', ' ', '('])
                .next()
                .unwrap_or(&what)
                .trim()
                .to_owned();
            TemplateError {
                help: Some(undefined_help(&name, var_names, step)),
                message: format!("undefined value `{name}` in template"),
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

/// The names beside an undefined one: the closest, else those there are.
fn undefined_help(name: &str, var_names: &[String], step: Option<&StepInfo<'_>>) -> String {
    let Some((head, rest)) = name.split_once('.') else {
        return match did_you_mean(name, TOP_NAMES.split(", ")) {
            Some(close) => format!("did you mean `{close}`?"),
            None => format!("names available: {TOP_NAMES}"),
        };
    };
    let fixed = |names: &[&str]| match did_you_mean(rest, names.iter().copied()) {
        Some(close) => format!("did you mean `{head}.{close}`?"),
        None => format!("`{head}` has {}", some_names(names.iter().copied(), 10)),
    };
    match head {
        "vars" => {
            // Each suggestion compares with every var: only for a few hundred of them.
            let close = (var_names.len() <= 500)
                .then(|| did_you_mean(rest, var_names.iter().map(String::as_str)))
                .flatten();
            match close {
                Some(close) => format!("did you mean `vars.{close}`?"),
                None if var_names.is_empty() => {
                    format!("define it under [vars] or pass `--var {rest}=VALUE`")
                }
                None => format!(
                    "defined vars: {}; add `{rest}` under [vars] or pass `--var {rest}=VALUE`",
                    some_names(var_names.iter().map(String::as_str), 10)
                ),
            }
        }
        "env" => {
            "the variable is not set in this environment; set it, or use `env.X | default(\"...\")`"
                .to_owned()
        }
        "matrix" => match step.and_then(|s| s.matrix) {
            Some(values) => fixed(&values.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>()),
            None => "the step has no `matrix`".to_owned(),
        },
        "step" => fixed(&STEP_NAMES),
        "workflow" => fixed(&WORKFLOW_NAMES),
        "run" => fixed(&RUN_NAMES),
        _ => match did_you_mean(head, TOP_NAMES.split(", ")) {
            Some(close) => format!("did you mean `{close}.{rest}`?"),
            None => format!("names available: {TOP_NAMES}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Mode, Renderer, RunInfo, StepInfo};

    fn help(source: &str, matrix: Option<&[(String, String)]>) -> (String, String) {
        let (message, help, _) = help_at(source, matrix);
        (message, help)
    }

    fn help_at(
        source: &str,
        matrix: Option<&[(String, String)]>,
    ) -> (String, String, std::ops::Range<usize>) {
        let vars = [("port".to_owned(), "80".to_owned())].into_iter().collect();
        let r = Renderer::new(
            &vars,
            Some(BTreeMap::new()),
            "wf",
            "/root",
            &RunInfo {
                id: "RUN".into(),
                dir: "/runs/RUN".into(),
            },
        );
        let step = StepInfo {
            name: "s",
            inputs: &[],
            outputs: &[],
            attempt: 1,
            matrix,
        };
        let err = r
            .render(source, Mode::Shell, Some(&step))
            .expect_err("undefined");
        (
            err.message,
            err.help.unwrap_or_default(),
            err.range.expect("a place"),
        )
    }

    #[test]
    fn an_undefined_name_gets_the_closest_name_of_its_part_of_the_context() {
        let file = [("file".to_owned(), "tests/a.py".to_owned())];
        let cases = [
            ("{{ matrix.fil }}", "did you mean `matrix.file`?"),
            ("{{ step.nam }}", "did you mean `step.name`?"),
            ("{{ run.idd }}", "did you mean `run.id`?"),
            ("{{ workflow.rot }}", "did you mean `workflow.root`?"),
            ("{{ workflw.name }}", "did you mean `workflow.name`?"),
            ("{{ vars.prot }}", "did you mean `vars.port`?"),
            (
                "{{ step.zzzzzz }}",
                "`step` has name, inputs, outputs, attempt",
            ),
        ];
        for (source, want) in cases {
            let (message, help) = help(source, Some(&file));
            assert!(
                message.starts_with("undefined value `"),
                "{source}: {message}"
            );
            assert_eq!(help, want, "{source}");
        }
        assert_eq!(
            help("{{ matrix.file }}", None).1,
            "the step has no `matrix`"
        );
    }

    #[test]
    fn an_undefined_value_given_to_a_filter_is_named_not_called_a_non_string() {
        let file = [("file".to_owned(), "tests/a.py".to_owned())];
        for source in [
            "x {{ matrix.fil | stem }}.xml",
            "{{ matrix.fil|basename|upper }}",
            "{{matrix.fil | dirname}}",
        ] {
            let (message, help, range) = help_at(source, Some(&file));
            assert_eq!(
                &source[range], "matrix.fil",
                "{source}: the place is the value"
            );
            assert_eq!(
                message, "undefined value `matrix.fil` in template",
                "{source}"
            );
            assert_eq!(help, "did you mean `matrix.file`?", "{source}");
        }
    }
}
