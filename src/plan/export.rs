//! The graph as Graphviz dot or Mermaid text (`bgflow graph`).

use std::fmt::Write;

use super::Plan;

/// Output formats of `bgflow graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

/// Renders the steps (by name) and their edges, one edge per pair of steps.
pub fn render(name: &str, steps: &[&str], plan: &Plan, format: GraphFormat) -> String {
    let mut out = String::new();
    match format {
        GraphFormat::Dot => {
            let _ = writeln!(out, "digraph {} {{", dot_id(name));
            let _ = writeln!(out, "  rankdir=LR;");
            for &s in &plan.order {
                let _ = writeln!(out, "  {};", dot_id(steps[s]));
            }
            for (from, list) in plan.downstream.iter().enumerate() {
                for &to in list {
                    let _ = writeln!(out, "  {} -> {};", dot_id(steps[from]), dot_id(steps[to]));
                }
            }
            out.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            out.push_str("flowchart LR\n");
            for &s in &plan.order {
                let _ = writeln!(out, "  s{s}[\"{}\"]", steps[s].replace('"', "#quot;"));
            }
            for (from, list) in plan.downstream.iter().enumerate() {
                for &to in list {
                    let _ = writeln!(out, "  s{from} --> s{to}");
                }
            }
        }
    }
    out
}

fn dot_id(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}
