//! Rendering without minijinja when a template only substitutes values: text with
//! `{{ matrix.NAME }}` or `{{ vars.NAME }}`, each optionally through `basename`, `stem` or
//! `dirname`. A matrix makes one step per instance from the same templates, and
//! compiling each instance's templates again made `plan` of 10,000 instances four times
//! as slow as the same steps written out (`scripts/bench-plan-matrix.sh`).
//!
//! It runs after the bounds on the template's text (`limits`) and stops at the output
//! cap, as minijinja's rendering does. It gives exactly what minijinja gives, or `None` and
//! minijinja renders the template (with its errors): anything else in a tag, a `{%` or `{#`, a name that is not defined,
//! a `-` that trims whitespace, or a trailing newline (which minijinja drops).

use minijinja::value::Value;

use super::{path_part, shell_quote, Mode, PathPart, StepInfo};

/// `source` rendered, or `None` when it is not a plain substitution.
pub(super) fn render(
    source: &str,
    mode: Mode,
    vars: Option<&Value>,
    step: Option<&StepInfo<'_>>,
) -> Option<String> {
    if source.contains("{%") || source.contains("{#") || source.ends_with('\n') {
        return None;
    }
    let mut out = String::with_capacity(source.len() + 16);
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let tail = &rest[open + 2..];
        let close = tail.find("}}")?;
        let value = expression(&tail[..close], vars, step)?;
        match mode {
            Mode::Shell => out.push_str(&shell_quote(&value)),
            Mode::Plain => out.push_str(&value),
        }
        // Past the cap, minijinja's rendering says so.
        if out.len() > super::limits::OUTPUT_CAP {
            return None;
        }
        rest = &tail[close + 2..];
    }
    out.push_str(rest);
    (out.len() <= super::limits::OUTPUT_CAP).then_some(out)
}

/// `matrix.NAME` or `vars.NAME`, then `| basename`, `| stem` or `| dirname`, with blanks
/// around each part.
fn expression(expr: &str, vars: Option<&Value>, step: Option<&StepInfo<'_>>) -> Option<String> {
    let mut parts = expr.split('|');
    let name = parts.next()?.trim_matches(' ');
    let (root, key) = name.split_once('.')?;
    let ident = |s: &str| {
        !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !s.as_bytes()[0].is_ascii_digit()
    };
    if !ident(root) || !ident(key) {
        return None;
    }
    let mut value = match root {
        "matrix" => step?
            .matrix?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())?,
        "vars" => vars?.get_attr(key).ok()?.as_str()?.to_owned(),
        _ => return None,
    };
    for filter in parts {
        let part = match filter.trim_matches(' ') {
            "basename" => PathPart::Base,
            "stem" => PathPart::Stem,
            "dirname" => PathPart::Dir,
            _ => return None,
        };
        value = path_part(&value, part);
    }
    Some(value)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Mode, Renderer, RunInfo, StepInfo};

    /// The fast path gives what minijinja gives: each template is rendered by both (a
    /// comment at the end sends it to minijinja).
    #[test]
    fn plain_substitutions_render_as_minijinja_renders_them() {
        let vars = indexmap::IndexMap::from([
            ("v".to_owned(), "it's $(x) a b".to_owned()),
            ("p".to_owned(), "3.12".to_owned()),
            // Over the output cap: minijinja's rendering refuses it.
            ("big".to_owned(), "b".repeat(200 * 1024)),
        ]);
        let r = Renderer::new(
            &vars,
            None,
            "wf",
            "/root",
            &RunInfo {
                id: "RUN".into(),
                dir: "/runs/RUN".into(),
            },
        );
        let matrix = [
            ("f".to_owned(), "data/a b.csv".to_owned()),
            ("x".to_owned(), "'; rm -rf ~".to_owned()),
            ("e".to_owned(), String::new()),
            ("d".to_owned(), "/top".to_owned()),
            ("n".to_owned(), ".hidden".to_owned()),
        ];
        let info = StepInfo {
            name: "s",
            inputs: &[],
            outputs: &[],
            attempt: 1,
            matrix: Some(&matrix),
        };
        for source in [
            "echo {{ matrix.f }} {{matrix.x}} > out/{{ matrix.f | stem }}.txt",
            "{{ matrix.f | basename }}/{{ matrix.f | dirname }}/{{ matrix.f|stem|basename }}",
            "{{ matrix.e }}|{{ matrix.e | stem }}|{{ matrix.e | dirname }}",
            "{{ matrix.d | dirname }} {{ matrix.d | basename }} {{ matrix.n | stem }}",
            ".venv-{{ vars.p }}/bin/python {{ vars.v }}",
            "a }} b {{ vars.p }} { c",
            "{{   vars.p   }}{{ vars.v|stem }}",
        ] {
            for mode in [Mode::Shell, Mode::Plain] {
                let fast = super::render(source, mode, r.base.get("vars"), Some(&info));
                assert!(fast.is_some(), "{source} took the slow path");
                let slow = r
                    .render(&format!("{source}{{# slow #}}"), mode, Some(&info))
                    .unwrap();
                assert_eq!(fast.unwrap(), slow, "{source} ({mode:?})");
            }
        }
        for source in [
            "{{ matrix.missing }}",
            "{{ vars.missing }}",
            "{{ matrix.f | upper }}",
            "{{- matrix.f }}",
            "{{ matrix.f }}\n",
            "{% if true %}x{% endif %}",
            "{{ step.name }}",
            "{{ matrix.f ",
            "{{ vars.big }}",
        ] {
            assert!(
                super::render(source, Mode::Shell, r.base.get("vars"), Some(&info)).is_none(),
                "{source}"
            );
        }
    }
}
