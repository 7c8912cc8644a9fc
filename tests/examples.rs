//! Every example workflow is checked by `plan`, and every one not named `broken*` runs to
//! success on a copy of `examples/` (sh and python3 only). Issue: real example workflows.

use std::path::{Path, PathBuf};
use std::process::Command;

fn bgflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bgflow"));
    c.args(["--color", "never"])
        .env_remove("BGFLOW_STATE_DIR")
        .env_remove("BGFLOW_CONFIG");
    c
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let name = entry.file_name();
        if name == ".bgflow" || name == "out" || name == "build" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).expect("copy");
        }
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn workflows(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("examples/workflows")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    all.sort();
    all
}

#[test]
fn examples_plan_and_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"),
        tmp.path(),
    );
    let dir = tmp.path().join("workflows");
    let files = workflows(&dir);
    assert!(
        files.len() >= 5,
        "expected the example workflows, found {files:?}"
    );
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let broken = name.starts_with("broken");
        let plan = bgflow().arg("plan").arg(&file).output().expect("plan");
        let stderr = String::from_utf8_lossy(&plan.stderr);
        if broken {
            assert_eq!(
                plan.status.code(),
                Some(3),
                "{name} is meant to fail plan:\n{stderr}"
            );
            continue;
        }
        assert_eq!(plan.status.code(), Some(0), "{name} should plan:\n{stderr}");
        let mut run = bgflow();
        run.current_dir(&dir)
            .args(["run", "--progress", "never"])
            .arg(&file);
        let text = std::fs::read_to_string(&file).expect("read");
        if text.contains("vars.port") {
            run.arg("--var").arg(format!("port={}", free_port()));
        }
        let out = run.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name} should run:\n{stderr}");
        assert!(stderr.contains(": succeeded"), "{name}:\n{stderr}");
    }
    // The full SDLC example read its JUnit report and served its build.
    let summary = std::fs::read_dir(dir.join(".bgflow/runs"))
        .expect("runs")
        .flatten()
        .map(|e| e.path().join("summary.json"))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .find(|s| s.contains("\"full-sdlc\""))
        .expect("a summary of full-sdlc");
    let json: serde_json::Value = serde_json::from_str(&summary).expect("json");
    let tests = json["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "tests"))
        .map(|s| s["tests"].clone())
        .expect("tests step");
    assert_eq!(tests["passed"], 2, "{tests}");
    assert_eq!(tests["failed"], 0, "{tests}");
}
