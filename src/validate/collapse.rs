//! Problems that every instance of a matrix step has at the same line of the file, told
//! once (`validate::sort_problems`).

use std::collections::HashMap;
use std::ops::Range;

use super::valid_name;
use crate::diag::Problem;

/// One problem for a line of the file that every instance of a matrix step has, instead of
/// one per instance: `step `test[…]` needs unknown step `compil` (13 matrix instances)`.
/// Problems of the same code at the same place whose messages differ only in the instance
/// names they quote are one; the first keeps its label and help.
pub(super) fn instances(problems: &mut Vec<Problem>) {
    if problems.len() < 2 || !problems.iter().any(|p| p.message.contains("]`")) {
        return;
    }
    let mut first: HashMap<(&'static str, Option<Range<usize>>, String), usize> = HashMap::new();
    let mut count = vec![0usize; problems.len()];
    let mut keep = vec![true; problems.len()];
    for (i, p) in problems.iter().enumerate() {
        let k = (p.code, p.span.clone(), instances_unnamed(&p.message));
        let at = *first.entry(k).or_insert(i);
        count[at] += 1;
        keep[i] = at == i;
    }
    for (i, p) in problems.iter_mut().enumerate() {
        if count[i] > 1 {
            p.message = format!(
                "{} ({} matrix instances)",
                instances_unnamed(&p.message),
                count[i]
            );
        }
    }
    let mut i = 0;
    problems.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

/// `message` with each quoted instance name (`` `test[a.py]` ``) as `` `test[…]` ``.
fn instances_unnamed(message: &str) -> String {
    message
        .split('`')
        .enumerate()
        .map(|(i, part)| match part.split_once('[') {
            Some((base, _)) if i % 2 == 1 && part.ends_with(']') && valid_name(base) => {
                format!("{base}[…]")
            }
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("`")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(step: &str, at: usize) -> Problem {
        Problem::error(
            "unknown-step",
            format!("step `{step}` needs unknown step `compil`"),
        )
        .at(at..at + 8, "no step by this name")
    }

    #[test]
    fn one_problem_for_every_instance_at_the_same_place() {
        let mut ps = vec![
            unknown("test[a.py]", 10),
            unknown("test[b.py]", 10),
            unknown("test[c.py]", 10),
            unknown("lint", 40),
            unknown("other[x]", 50),
        ];
        instances(&mut ps);
        let messages: Vec<&str> = ps.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "step `test[…]` needs unknown step `compil` (3 matrix instances)",
                "step `lint` needs unknown step `compil`",
                "step `other[x]` needs unknown step `compil`",
            ]
        );
    }

    #[test]
    fn only_quoted_step_names_are_instances() {
        assert_eq!(
            instances_unnamed("`reports/[ab].xml` and `s[1,2]` and s[3]"),
            "`reports/[ab].xml` and `s[…]` and s[3]"
        );
    }
}
