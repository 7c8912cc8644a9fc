//! `matrix` on a step and templated paths (issue 20, DESIGN.md §8): every instance is known
//! and proven by `plan`; what cannot be proven (a glob over made files, an empty matrix, a
//! path left with template braces) is an error at its place.

use super::*;

/// The plan's steps by name: (wave, upstream names, outputs, matrix values).
fn steps(out: &Output) -> Vec<Value> {
    out.json()["files"][0]["plan"]["steps"]
        .as_array()
        .expect("plan steps")
        .clone()
}

fn names(out: &Output) -> Vec<String> {
    steps(out)
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_owned())
        .collect()
}

fn step<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {all:#?}"))
}

const TWO_BY_TWO: &str = r#"
[workflow]
name = "m"

[steps.test]
matrix = { python = ["3.11", "3.12"], mode = ["fast", "slow"], exclude = [{ python = "3.11", mode = "slow" }] }
run = "echo {{ matrix.python }} {{ matrix.mode }} > r-{{ matrix.python }}-{{ matrix.mode }}.txt"
outputs = ["r-{{ matrix.python }}-{{ matrix.mode }}.txt"]

[steps.report]
needs = ["test"]
run = "cat r-*.txt"
"#;

#[test]
fn a_two_by_two_matrix_with_an_exclude_plans_three_instances_with_their_values() {
    let out = Test::manifest(TWO_BY_TWO)
        .args(["plan", "--json", "--offline", "bgflow.toml"])
        .run();
    assert_eq!(
        names(&out),
        [
            "test[3.11,fast]",
            "test[3.12,fast]",
            "test[3.12,slow]",
            "report"
        ]
    );
    let all = steps(&out);
    let one = step(&all, "test[3.12,slow]");
    assert_eq!(one["matrix"]["step"], "test");
    assert_eq!(one["matrix"]["values"]["python"], "3.12");
    assert_eq!(one["matrix"]["values"]["mode"], "slow");
    assert_eq!(one["outputs"][0], "r-3.12-slow.txt");
    assert_eq!(one["command"]["shell"], "echo 3.12 slow > r-3.12-slow.txt");
    // `needs = ["test"]` waits for every instance.
    let report = step(&all, "report");
    assert_eq!(
        report["upstream"],
        serde_json::json!(["test[3.11,fast]", "test[3.12,fast]", "test[3.12,slow]"])
    );
    assert_eq!(report["wave"], 2);
    assert!(report.get("matrix").is_none(), "{report:#}");
}

#[test]
fn the_human_plan_and_both_graphs_show_every_instance() {
    let out = Test::manifest(TWO_BY_TWO)
        .args(["plan", "--offline", "bgflow.toml"])
        .run();
    // A step after every instance names the matrix step once (seen building Lua: 32
    // instance names on one line); one after some of them names those.
    out.stdout_has("test[3.12,slow] (task)")
        .stdout_has("after  test (all 3 instances)\n");
    let some = format!(
        "{TWO_BY_TWO}\n[steps.some]\nneeds = [\"test[3.12,fast]\", \"test[3.12,slow]\"]\nrun = \"true\"\n"
    );
    Test::manifest(&some)
        .args(["plan", "--offline", "bgflow.toml"])
        .run()
        .stdout_has("after  test[3.12,fast], test[3.12,slow]\n")
        .stdout_has("after  test (all 3 instances)\n");
    let dot = Test::manifest(TWO_BY_TWO)
        .args(["graph", "bgflow.toml"])
        .run();
    dot.stdout_has("\"test[3.11,fast]\" -> \"report\";");
    let mermaid = Test::manifest(TWO_BY_TWO)
        .args(["graph", "--format", "mermaid", "bgflow.toml"])
        .run();
    mermaid.stdout_has("[\"test[3.12,slow]\"]");
}

#[test]
fn include_adds_keys_to_matching_combinations_and_makes_unmatched_ones_its_own() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.t]
matrix = { os = ["linux", "mac"], py = [3, 4], include = [{ os = "mac", extra = "x" }, { os = "bsd", py = 5 }] }
run = "echo {{ matrix.os }} {{ matrix.py }} {{ matrix.extra | default('-') }}"
"#,
    )
    .args(["plan", "--json", "--offline", "bgflow.toml"])
    .run();
    assert_eq!(
        names(&out),
        [
            "t[linux,3]",
            "t[linux,4]",
            "t[mac,3]",
            "t[mac,4]",
            "t[bsd,5]"
        ]
    );
    let all = steps(&out);
    assert_eq!(step(&all, "t[mac,4]")["command"]["shell"], "echo mac 4 x");
    assert_eq!(
        step(&all, "t[linux,3]")["command"]["shell"],
        "echo linux 3 -"
    );
    assert_eq!(step(&all, "t[bsd,5]")["command"]["shell"], "echo bsd 5 -");
}

#[test]
fn a_glob_matrix_makes_an_instance_per_file_with_path_filters_and_per_instance_edges() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.convert]
matrix = { csv = { glob = "data/*.csv" } }
run = "cp {{ matrix.csv }} out/{{ matrix.csv | stem }}.txt"
inputs = ["{{ matrix.csv }}"]
outputs = ["out/{{ matrix.csv | stem }}.txt"]

[steps.check]
matrix = { name = ["a", "b"] }
run = "test -s out/{{ matrix.name }}.txt"
inputs = ["out/{{ matrix.name }}.txt"]

[steps.where]
matrix = { csv = { glob = "data/*.csv" } }
run = "echo {{ matrix.csv | basename }} {{ matrix.csv | dirname }}"
"#,
    )
    .file("data/a.csv", "1\n")
    .file("data/b.csv", "2\n")
    .file("data/c.csv", "3\n")
    .file("data/notes.txt", "no\n")
    .folder("out")
    .args(["plan", "--json", "bgflow.toml"])
    .run();
    let all = steps(&out);
    for f in ["a", "b", "c"] {
        let s = step(&all, &format!("convert[data/{f}.csv]"));
        assert_eq!(s["outputs"][0], format!("out/{f}.txt"));
    }
    assert!(!names(&out).iter().any(|n| n.contains("notes")));
    // Each `check` instance reads one `convert` instance's output: one edge each.
    assert_eq!(
        step(&all, "check[b]")["upstream"],
        serde_json::json!(["convert[data/b.csv]"])
    );
    assert_eq!(
        step(&all, "where[data/c.csv]")["command"]["shell"],
        "echo c.csv data"
    );
}

#[test]
fn needs_may_name_one_instance() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.t]
matrix = { v = ["a,b", "c"] }
run = "echo {{ matrix.v }}"

[steps.after]
needs = ['t[a\,b]']
run = "true"
"#,
    )
    .args(["plan", "--json", "--offline", "bgflow.toml"])
    .run();
    assert_eq!(names(&out), [r"t[a\,b]", "t[c]", "after"]);
    assert_eq!(
        step(&steps(&out), "after")["upstream"],
        serde_json::json!([r"t[a\,b]"])
    );
}

/// Issue 20: with `outputs = [".venv-{{ vars.python }}/bin/python"]` the braces became a
/// brace glob and the error that followed pointed elsewhere. Paths are templates now.
#[test]
fn templated_outputs_with_a_var_are_rendered_paths_that_feed_inputs() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[vars]
python = "3.12"

[steps.venv]
run = "python3 -m venv .venv-{{ vars.python }}"
outputs = [".venv-{{ vars.python }}/bin/python"]

[steps.use]
run = "true"
inputs = [".venv-3.12/bin/python"]
cwd = "{{ 'sub' }}"

[steps.sub]
run = "mkdir -p sub"
outputs = ["{{ 'sub' }}/"]
"#,
    )
    .args(["plan", "--json", "--offline", "bgflow.toml"])
    .run();
    let all = steps(&out);
    assert_eq!(step(&all, "venv")["outputs"][0], ".venv-3.12/bin/python");
    assert_eq!(
        step(&all, "use")["inputs"][0]["made_by"],
        serde_json::json!(["venv"])
    );
    assert_eq!(
        step(&all, "use")["upstream"],
        serde_json::json!(["venv", "sub"])
    );
}

#[test]
fn braces_left_in_a_path_after_rendering_are_errors_at_the_path() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[vars]
alt = "{a,b}"

[steps.a]
run = "true"
outputs = ["ok.txt", "x-{{ vars.alt }}.txt", "{% raw %}{{{% endraw %} vars.y }}"]
junit = "{{ vars.nope }}/*.xml"
kind = "test"
"#,
    )
    .args(["plan", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "a value rendered into a path in `outputs` holds a brace",
        "bgflow.toml:10:22",
    )
    .problem_at(
        "a path in `outputs` still holds `{{` or `{%` after rendering",
        "bgflow.toml:10:46",
    )
    .problem_at(
        "undefined value `vars.nope` in template",
        "bgflow.toml:11:13",
    )
    .stderr_has("3 errors");
}

#[test]
fn a_path_cannot_name_the_run() {
    Test::manifest(
        r#"
[workflow]
name = "m"

[steps.a]
run = "true"
outputs = ["{{ run.dir }}/x"]
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run()
    .problem_at("a path in `outputs` names the run", "bgflow.toml:7:12");
}

#[test]
fn a_matrix_glob_over_files_a_step_makes_is_an_error_saying_why() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.split]
run = "mkdir -p parts && touch parts/a.csv"
outputs = ["parts/a.csv"]

[steps.each]
matrix = { part = { glob = "parts/*.csv" } }
run = "wc -l {{ matrix.part }}"
"#,
    )
    .file("parts/a.csv", "made by a run before\n")
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "matrix `part` of step `each` is a glob over files that step `split` makes (`parts/a.csv`)",
        "bgflow.toml:10:19",
    )
    .stderr_has("bgflow proves the plan before it runs");
}

#[test]
fn an_empty_matrix_is_an_error() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.none]
matrix = { v = [] }
run = "true"

[steps.all-excluded]
matrix = { v = ["a"], exclude = [{ v = "a" }] }
run = "true"

[steps.no-file]
matrix = { f = { glob = "data/*.csv" } }
run = "true"

[steps.no-axis]
matrix = {}
run = "true"
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "matrix `v` of step `none` has no values: the list is empty",
        "bgflow.toml:6:16",
    )
    .problem_at(
        "the matrix of step `all-excluded` is empty: `exclude` removes every combination",
        "bgflow.toml:10:10",
    )
    .problem_at(
        "matrix `f` of step `no-file` has no values: `data/*.csv` matches no file",
        "bgflow.toml:14:16",
    )
    .problem_at(
        "the matrix of step `no-axis` is empty: it has no values and no `include`",
        "bgflow.toml:18:10",
    );
}

#[test]
fn matrix_names_must_be_identifiers_and_values_not_floats() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.a]
matrix = { "py-version" = ["3"], v = [3.10], ok = [1, true] }
run = "true"

[steps.b]
matrix = { v = ["x"], exclude = [{ w = "x" }] }
run = "true"

[steps.c]
run = "echo {{ matrix.v }}"
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at("invalid matrix name `py-version`", "bgflow.toml:6:12")
        .problem_at("a matrix value cannot be a float", "bgflow.toml:6:38")
        .stderr_has("write \"3.10\"")
        .problem_at(
            "`w` in `exclude` of step `b` is not a name of its matrix",
            "bgflow.toml:10:34",
        )
        .problem_at(
            "undefined value `matrix.v` in template",
            "bgflow.toml:14:16",
        );
}

#[test]
fn a_matrix_value_of_another_type_and_a_path_of_the_steps_own_paths_are_errors() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.a]
matrix = { v = { list = ["x"] } }
run = "true"

[steps.b]
run = "true"
inputs = ["in.txt"]
outputs = ["{{ step.inputs }}.bak"]
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "a `matrix` value must be a list of strings or `{ glob = \"...\" }`",
        "bgflow.toml:6:10",
    )
    .problem_at(
        "a path in `outputs` cannot use `step.inputs` or `step.outputs`",
        "bgflow.toml:12:12",
    );
}

#[test]
fn integers_and_booleans_are_taken_as_their_text() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.a]
matrix = { n = [1, 2], flag = [true] }
run = "echo {{ matrix.n }} {{ matrix.flag }}"
"#,
    )
    .args(["plan", "--json", "--offline", "bgflow.toml"])
    .run();
    assert_eq!(names(&out), ["a[1,true]", "a[2,true]"]);
}

/// Guarantee 12 holds for templated paths: a value of the caller's environment is shown
/// as `<env:NAME>` in the plan, human and JSON, and in a missing-input error.
#[test]
fn a_path_from_the_callers_environment_is_masked_in_plan() {
    let text = r#"
[workflow]
name = "m"

[steps.a]
run = "true"
inputs = ["{{ env.SECRET_DIR }}/in.txt"]
outputs = ["{{ env.SECRET_DIR }}/out.txt"]
"#;
    let out = Test::manifest(text)
        .folder("hunter2")
        .file("hunter2/in.txt", "x")
        .env("SECRET_DIR", "hunter2")
        .args(["plan", "bgflow.toml"])
        .run();
    out.stdout_has("in     <env:SECRET_DIR>/in.txt (exists)")
        .stdout_has("out    <env:SECRET_DIR>/out.txt");
    assert!(!out.stdout.contains("hunter2") && !out.stderr.contains("hunter2"));
    let json = Test::manifest(text)
        .folder("hunter2")
        .file("hunter2/in.txt", "x")
        .env("SECRET_DIR", "hunter2")
        .args(["plan", "--json", "bgflow.toml"])
        .run();
    assert!(!json.stdout.contains("hunter2"), "{}", json.stdout);
    let missing = Test::manifest(text)
        .env("SECRET_DIR", "hunter2")
        .args(["plan", "bgflow.toml"])
        .status(INVALID)
        .run();
    missing.stderr_has("input `<env:SECRET_DIR>/in.txt` of step `a` does not exist");
    assert!(!missing.stderr.contains("hunter2"), "{}", missing.stderr);
}

/// One generated step: its matrix (axis sizes; empty: no matrix), and what it depends on:
/// `(j, None)` all of step j through `needs`, `(j, Some(k))` step j's k-th instance through
/// `needs`, and `reads` the steps whose every output it reads through an input glob.
#[derive(Debug, Clone)]
struct Gen {
    axes: Vec<usize>,
    needs: Vec<(usize, Option<usize>)>,
    reads: Vec<usize>,
}

fn gen_workflow() -> impl proptest::strategy::Strategy<Value = Vec<Gen>> {
    use proptest::prelude::*;
    proptest::collection::vec(
        (
            proptest::collection::vec(1usize..4, 0..3),
            proptest::collection::vec((0usize..8, proptest::option::of(0usize..9)), 0..3),
            proptest::collection::vec(0usize..8, 0..2),
        ),
        1..7,
    )
    .prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (axes, needs, reads))| Gen {
                axes,
                // Only earlier steps: the graph stays acyclic.
                needs: if i == 0 {
                    Vec::new()
                } else {
                    needs.into_iter().map(|(j, k)| (j % i, k)).collect()
                },
                reads: if i == 0 {
                    Vec::new()
                } else {
                    reads.into_iter().map(|j| j % i).collect()
                },
            })
            .collect()
    })
}

/// The names of step `i`'s instances, in the order bgflow makes them.
fn instance_names(i: usize, axes: &[usize]) -> Vec<String> {
    if axes.is_empty() {
        return vec![format!("s{i}")];
    }
    let mut combos: Vec<Vec<String>> = vec![Vec::new()];
    for (a, &n) in axes.iter().enumerate() {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                (0..n).map(move |v| {
                    let mut c = c.clone();
                    c.push(format!("x{a}v{v}"));
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|c| format!("s{i}[{}]", c.join(",")))
        .collect()
}

fn gen_manifest(steps: &[Gen]) -> String {
    let mut text = String::from("[workflow]\nname = \"prop\"\n");
    for (i, s) in steps.iter().enumerate() {
        text.push_str(&format!("\n[steps.s{i}]\nrun = \"true\"\n"));
        let mut out = format!("o/s{i}");
        if !s.axes.is_empty() {
            let axes: Vec<String> = s
                .axes
                .iter()
                .enumerate()
                .map(|(a, &n)| {
                    let values: Vec<String> = (0..n).map(|v| format!("\"x{a}v{v}\"")).collect();
                    format!("x{a} = [{}]", values.join(", "))
                })
                .collect();
            text.push_str(&format!("matrix = {{ {} }}\n", axes.join(", ")));
            for a in 0..s.axes.len() {
                out.push_str(&format!("-{{{{ matrix.x{a} }}}}"));
            }
        }
        text.push_str(&format!("outputs = [\"{out}.out\"]\n"));
        let needs: Vec<String> = s
            .needs
            .iter()
            .map(|&(j, k)| match k {
                Some(k) => {
                    let names = instance_names(j, &steps[j].axes);
                    format!("'{}'", names[k % names.len()])
                }
                None => format!("\"s{j}\""),
            })
            .collect();
        text.push_str(&format!("needs = [{}]\n", needs.join(", ")));
        let reads: Vec<String> = s.reads.iter().map(|j| format!("\"o/s{j}*.out\"")).collect();
        text.push_str(&format!("inputs = [{}]\n", reads.join(", ")));
    }
    text
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]

    /// Every instance of a step that another needs (by name, or one instance by its name)
    /// or whose outputs it reads is in an earlier wave than every instance of the other.
    #[test]
    fn every_matrix_instance_set_is_respected_by_the_order(steps in gen_workflow()) {
        let text = gen_manifest(&steps);
        let out = Test::manifest(&text)
            .args(["plan", "--json", "--offline", "bgflow.toml"])
            .run();
        let all = super::matrix::steps(&out);
        let wave = |name: &str| -> u64 {
            all.iter()
                .find(|s| s["name"] == name)
                .and_then(|s| s["wave"].as_u64())
                .unwrap_or_else(|| panic!("no step {name} in the plan of\n{text}"))
        };
        let expected: usize = steps.iter().enumerate().map(|(i, s)| instance_names(i, &s.axes).len()).sum();
        proptest::prop_assert_eq!(all.len(), expected, "{}", text);
        for (i, s) in steps.iter().enumerate() {
            for me in instance_names(i, &s.axes) {
                let mut before: Vec<String> = Vec::new();
                for &(j, k) in &s.needs {
                    let names = instance_names(j, &steps[j].axes);
                    match k {
                        Some(k) => before.push(names[k % names.len()].clone()),
                        None => before.extend(names),
                    }
                }
                for &j in &s.reads {
                    before.extend(instance_names(j, &steps[j].axes));
                }
                for other in before {
                    proptest::prop_assert!(
                        wave(&other) < wave(&me),
                        "{} (wave {}) must come before {} (wave {}) in\n{}",
                        other, wave(&other), me, wave(&me), text
                    );
                }
            }
        }
    }
}

#[test]
fn needs_are_templates_and_a_matrix_step_cannot_need_itself() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[vars]
first = "setup"

[steps.setup]
run = "true"

[steps.t]
matrix = { v = ["a", "b"] }
needs = ["{{ vars.first }}", "t"]
run = "true"
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "step `t[…]` needs itself (2 matrix instances)",
        "bgflow.toml:13:30",
    );
    let ok = Test::manifest(
        r#"
[workflow]
name = "m"

[vars]
first = "setup"

[steps.setup]
run = "true"

[steps.t]
matrix = { v = ["a", "b"] }
needs = ["{{ vars.first }}"]
junit = "reports/{{ matrix.v }}/*.xml"
kind = "test"
run = "true"
"#,
    )
    .args(["plan", "--json", "--offline", "bgflow.toml"])
    .run();
    let all = steps(&ok);
    assert_eq!(step(&all, "t[b]")["upstream"], serde_json::json!(["setup"]));
}

/// Seen on a real project (packaging 24.2's tests, one instance per test file): a misspelt
/// `matrix.file` piped into `stem`, a misspelt `needs` and a duration with a space gave 30
/// errors and a false warning: "value is not a string" for the misspelling, 12
/// `shared-junit` errors comparing the unrendered pattern, the unknown step once per
/// instance, and "no `ready` probe" for a service whose probe had the bad duration.
#[test]
fn a_matrix_steps_mistakes_are_each_told_once_and_nothing_follows_from_them() {
    let out = Test::manifest(
        r#"
[workflow]
name = "m"

[steps.compile]
run = "true"

[steps.test]
kind = "test"
matrix = { file = ["a.py", "b.py", "c.py"] }
run = "pytest {{ matrix.file }} --junitxml=reports/{{ matrix.fil | stem }}.xml"
junit = "reports/{{ matrix.fil | stem }}.xml"
needs = ["compil"]

[steps.server]
kind = "service"
run = "sleep 600"
ready = { tcp = "127.0.0.1:1", timeout = "20 s" }
"#,
    )
    .args(["plan", "--offline", "bgflow.toml"])
    .status(INVALID)
    .run();
    out.problem_at(
        "undefined value `matrix.fil` in template",
        "bgflow.toml:11:55",
    )
    .problem_at(
        "undefined value `matrix.fil` in template",
        "bgflow.toml:12:21",
    )
    .problem_at(
        "step `test[…]` needs unknown step `compil` (3 matrix instances)",
        "bgflow.toml:13:10",
    )
    .stderr_has("did you mean `matrix.file`?")
    .stderr_has("did you mean `compile`?")
    .stderr_has("4 errors, 0 warnings");
    for absent in [
        "not a string",
        "shared-junit",
        "at the same time",
        "no `ready` probe",
    ] {
        assert!(!out.stderr.contains(absent), "{absent}:\n{}", out.stderr);
    }
}
