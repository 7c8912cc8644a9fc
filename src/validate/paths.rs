//! Templated paths (DESIGN.md §8): `inputs`, `outputs`, `needs` and `junit` are rendered
//! with the context of `run` (vars, env, workflow, matrix, `step.name`), as paths: nothing
//! is shell-quoted.
//!
//! A path is what the plan is proved on, so a rendered path must say what it means: `{{`
//! or `{%` left in it (text a template could not have meant as a path), or a brace that a
//! value brought in (it would turn the path into a glob `{a,b}`), is an error at the path.
//! A path but `cwd` cannot name the run (`run.id`, `run.dir`): `plan` proves the paths
//! before the run has an id (`cwd` is rendered again when it has one, `set_run`).

use std::ops::Range;

use super::template::{self, Mode, Renderer, StepInfo};
use super::Cx;
use crate::diag::Problem;

/// Paths as rendered, and as `plan` shows them when a template reads the caller's
/// environment (its values shown as `<env:NAME>`).
pub(super) struct Rendered {
    pub paths: Vec<String>,
    pub shown: Option<Vec<String>>,
}

/// `{` and `}` outside the template tags of `text`: the braces written as they are.
fn written_braces(text: &str) -> usize {
    let mut count = 0;
    let mut rest = text;
    while let Some(open) = rest.find(['{', '}']) {
        let tail = &rest[open..];
        let close = match tail.get(..2) {
            Some("{{") => Some("}}"),
            Some("{%") => Some("%}"),
            Some("{#") => Some("#}"),
            _ => None,
        };
        match close.and_then(|c| tail.find(c).map(|i| i + 2)) {
            Some(end) => rest = &tail[end..],
            None => {
                count += 1;
                rest = &tail[1..];
            }
        }
    }
    count
}

impl Cx<'_, '_> {
    /// Renders the paths of `field` (`inputs`, `outputs`, `needs`) of step `key`; `None`
    /// for one that failed (reported at its place).
    pub(super) fn paths(
        &mut self,
        r: &Renderer,
        list: Vec<String>,
        info: &StepInfo<'_>,
        key: &str,
        field: &str,
    ) -> Rendered {
        if !list.iter().any(|p| template::is_template(p)) {
            return Rendered {
                paths: list,
                shown: None,
            };
        }
        let doc = self.doc;
        let mut paths = Vec::with_capacity(list.len());
        let mut shown = None;
        let masked = list
            .iter()
            .any(|p| p.contains("env") && template::is_template(p));
        for (i, text) in list.iter().enumerate() {
            let span = || doc.item_span(&["steps", key, field], i);
            let out = self
                .path(r, text, info, field, span)
                .unwrap_or_else(|| text.clone());
            paths.push(out);
        }
        if masked {
            shown = Some(
                list.iter()
                    .zip(&paths)
                    .map(|(text, out)| {
                        if text.contains("env") && template::is_template(text) {
                            r.render_shown(text, Mode::Plain, Some(info))
                                .unwrap_or_else(|_| text.clone())
                        } else {
                            out.clone()
                        }
                    })
                    .collect(),
            );
        }
        Rendered { paths, shown }
    }

    /// One templated path; `span` places it (looked up only for a problem).
    pub(super) fn path(
        &mut self,
        r: &Renderer,
        text: &str,
        info: &StepInfo<'_>,
        field: &str,
        span: impl Fn() -> Option<Range<usize>>,
    ) -> Option<String> {
        if !template::is_template(text) {
            return Some(text.to_owned());
        }
        // The step's paths are what is being rendered: a path made of them would be empty.
        if field != "cwd" && (text.contains("step.inputs") || text.contains("step.outputs")) {
            self.push(
                Problem::error(
                    "template",
                    format!("a path in `{field}` cannot use `step.inputs` or `step.outputs`"),
                )
                .at_opt(span(), "here")
                .help("the step's paths are made from these templates; name the path itself, or use `vars` or `matrix`"),
            );
            return None;
        }
        let out = match r.render(text, Mode::Plain, Some(info)) {
            Ok(out) => out,
            Err(e) => {
                let place = self.inside(span(), text, e.range.clone());
                let mut p = Problem::error("template", e.message).at_opt(place, "here");
                if let Some(h) = e.help {
                    p = p.help(h);
                }
                self.push(p);
                return None;
            }
        };
        let problem = if out.contains("{{") || out.contains("{%") {
            Some((
                format!("a path in `{field}` still holds `{{{{` or `{{%` after rendering"),
                "a value put template text into the path; bgflow renders a path once".to_owned(),
            ))
        } else if out.matches(['{', '}']).count() > written_braces(text) {
            Some((
                format!("a value rendered into a path in `{field}` holds a brace"),
                "in a path, braces are a glob (`{a,b}`); a value must not make one. Write the glob in the path itself".to_owned(),
            ))
        } else if field != "cwd"
            && super::rendering::names_the_run(text)
            && out.contains("<run-id>")
        {
            Some((
                format!("a path in `{field}` names the run (`run.id` or `run.dir`)"),
                "`plan` proves the paths before the run has an id; write run-specific files under a path of your own".to_owned(),
            ))
        } else {
            None
        };
        if let Some((mut message, help)) = problem {
            // Which instance: the value that made the path differs from one to the next.
            if info.matrix.is_some() {
                message.push_str(&format!(" (instance `{}`)", info.name));
            }
            self.push(
                Problem::error("template", message)
                    .at_opt(span(), "here")
                    .help(help),
            );
            return None;
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::written_braces;

    #[test]
    fn braces_outside_tags_are_counted() {
        assert_eq!(written_braces("a/{x,y}/{{ vars.v }}"), 2);
        assert_eq!(written_braces("{{ matrix.a }}{% if x %}b{% endif %}"), 0);
        assert_eq!(written_braces("{{ unclosed"), 2);
    }
}
