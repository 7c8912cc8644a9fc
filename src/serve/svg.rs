//! A run's step graph as SVG: one column per wave (a step stands one column right of its
//! latest upstream step), a box per step coloured by its state (classes `st-STATE`, styled
//! by app.css) with its progress, and an arrow per edge of the plan. Each box links to the
//! step's log. A graph of more than `MAX_DRAWN` steps is not drawn (the table lists them).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::runs::StepRow;

use super::html::{esc, url};

/// Steps drawn at most.
pub const MAX_DRAWN: usize = 400;

const W: i64 = 176;
const H: i64 = 48;
const GAP_X: i64 = 56;
const GAP_Y: i64 = 14;
const PAD: i64 = 10;

/// The column of each step: 0 for a step without upstream, else one more than its latest
/// upstream step's (Kahn's order; a step left in a cycle, which a checked plan never has,
/// stays in column 0).
fn columns(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut down: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        indegree[b] += 1;
        down[a].push(b);
    }
    let mut col = vec![0usize; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(i) = ready.pop() {
        for &d in &down[i] {
            col[d] = col[d].max(col[i] + 1);
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }
    col
}

/// The graph of run `run`'s `steps` with `edges` (`[from, to]` by name).
pub fn graph(run: &str, steps: &[StepRow], edges: &[[String; 2]]) -> String {
    if steps.len() > MAX_DRAWN {
        return format!(
            r#"<p class="note">The graph of {} steps is not drawn; the table below lists every step.</p>"#,
            steps.len()
        );
    }
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let pairs: Vec<(usize, usize)> = edges
        .iter()
        .filter_map(|[a, b]| Some((*index.get(a.as_str())?, *index.get(b.as_str())?)))
        .collect();
    let col = columns(steps.len(), &pairs);
    // Rows within each column, in the steps' order.
    let mut filled: HashMap<usize, i64> = HashMap::new();
    let place: Vec<(i64, i64)> = col
        .iter()
        .map(|&c| {
            let row = filled.entry(c).or_insert(0);
            let at = (
                PAD + i64::try_from(c).unwrap_or(0) * (W + GAP_X),
                PAD + *row * (H + GAP_Y),
            );
            *row += 1;
            at
        })
        .collect();
    let cols = i64::try_from(col.iter().max().map_or(1, |m| m + 1)).unwrap_or(1);
    let rows = filled.values().copied().max().unwrap_or(1);
    let width = 2 * PAD + cols * W + (cols - 1) * GAP_X;
    let height = 2 * PAD + rows * H + (rows - 1).max(0) * GAP_Y;
    let mut out = format!(
        r#"<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="step graph">
<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0,0 L8,4 L0,8 z" class="arrowhead"/></marker></defs>
"#
    );
    for &(a, b) in &pairs {
        let (x1, y1) = (place[a].0 + W, place[a].1 + H / 2);
        let (x2, y2) = (place[b].0, place[b].1 + H / 2);
        let mid = (x1 + x2) / 2;
        let _ = writeln!(
            out,
            r#"<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"/>"#
        );
    }
    for (i, s) in steps.iter().enumerate() {
        let (x, y) = place[i];
        let (name, instance_of) = label(&s.name);
        let pct = s
            .progress_percent
            .or_else(|| match (s.progress_current, s.progress_total) {
                #[allow(clippy::cast_precision_loss)]
                (Some(c), Some(t)) if t > 0 => Some(c as f64 * 100.0 / t as f64),
                _ => None,
            });
        let sub = match (&*s.state, pct) {
            ("running", Some(p)) => format!("running {p:.0}%"),
            (st, _) => st.to_owned(),
        };
        let sub = match instance_of {
            // The step's name before the state, cut so that `running 100%` still fits.
            Some(step) => format!("{} · {sub}", keep_start(step, 12)),
            None => sub,
        };
        let bar = pct.map_or(String::new(), |p| {
            #[allow(clippy::cast_possible_truncation)]
            let w = ((p.clamp(0.0, 100.0) / 100.0) * (W - 2) as f64) as i64;
            format!(
                r#"<rect class="bar" x="1" y="{}" width="{w}" height="4"/>"#,
                H - 5
            )
        });
        let why = s
            .reason
            .as_deref()
            .map(|r| format!(" — {}", esc(r)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            r##"<a href="/runs/{run}?step={step_q}#log"><g class="node st-{state}" data-step="{step}" data-state="{state}" transform="translate({x},{y})"><title>{step}: {state}{why}</title><rect width="{W}" height="{H}" rx="6"/>{bar}<text x="10" y="19" class="name">{label}</text><text x="10" y="37" class="sub">{sub}</text></g></a>"##,
            run = url(run),
            step_q = url(&s.name),
            step = esc(&s.name),
            state = esc(&s.state),
            label = esc(&name),
            sub = esc(&sub),
        );
    }
    out.push_str("</svg>\n");
    out
}

/// Characters of a name a node shows (at 13px bold, about what its width holds).
const LABEL: usize = 19;

/// What a node shows as its name, and the step a matrix instance belongs to (shown beside
/// its state). An instance (`test[tests/test_api.py]`) is told apart from its siblings by
/// its value, so the node shows the value, cut at its start when long
/// (`…/test_async_filters.py`); another name is cut at its end. The node's tooltip holds
/// the whole name.
fn label(name: &str) -> (String, Option<&str>) {
    let instance = (name.split_once('['))
        .and_then(|(step, rest)| Some((step, rest.strip_suffix(']')?)))
        .filter(|(step, value)| !step.is_empty() && !value.is_empty());
    match instance {
        Some((step, value)) => (keep_end(value, LABEL), Some(step)),
        None => (keep_start(name, LABEL), None),
    }
}

/// `text`, or its first characters and `…` when it is longer than `max`.
fn keep_start(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    text.chars().take(max - 1).collect::<String>() + "…"
}

/// `text`, or `…` and its last characters when it is longer than `max`.
fn keep_end(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_owned();
    }
    "…".to_owned() + &text.chars().skip(n - (max - 1)).collect::<String>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_instance_shows_its_value_and_a_long_name_is_cut() {
        assert_eq!(label("build"), ("build".to_owned(), None));
        assert_eq!(
            label("test[tests/test_api.py]"),
            ("tests/test_api.py".to_owned(), Some("test"))
        );
        // Siblings that share a long start stay apart: the end is kept.
        assert_eq!(
            label("test[tests/test_async_filters.py]"),
            ("…t_async_filters.py".to_owned(), Some("test"))
        );
        assert_eq!(
            label("a-very-long-step-name-indeed"),
            ("a-very-long-step-n…".to_owned(), None)
        );
    }

    #[test]
    fn a_step_stands_right_of_its_latest_upstream_step() {
        // 0 -> 1 -> 3, 0 -> 3, 2 alone.
        assert_eq!(columns(4, &[(0, 1), (1, 3), (0, 3)]), vec![0, 1, 0, 2]);
    }
}
