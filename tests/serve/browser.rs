//! The page in a real browser: Debian's `chromium` driven by `playwright-core` (npm,
//! `tests/browser/`, installed by `.ci/run` with `npm ci`) runs `tests/browser/serve.mjs`
//! against a real server and run: the runs list, a running run, a step turning green
//! live, stop, the run cancelled, and no process of it left. It saves a screenshot of the
//! run page (in the test's temp folder, or at `BGFLOW_SCREENSHOT`, which is how
//! docs/serve-run.png is made).
//!
//! When chromium, node or playwright-core is missing the test fails, saying what to
//! install, unless `BGFLOW_SKIP_BROWSER=1` (for a quick local loop; CI never sets it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{common, ended, Home, Serve};

const WORKFLOW: &str = r#"[workflow]
name = "release"

[steps.fetch]
run = "echo fetching sources; sh wait.sh go; echo fetched"

[steps.lint]
run = "echo lint ok"
needs = ["fetch"]

[steps.build]
run = """
i=0
while [ $i -lt 40 ]; do
  i=$((i+1)); echo "$i/100 compiling unit $i" >> "$BGFLOW_PROGRESS"; echo "compiling unit $i"; sleep 0.02
done
sleep 319
"""
needs = ["fetch"]

[steps.test]
run = "echo tests"
needs = ["build"]

[steps.package]
run = "echo package"
needs = ["test", "lint"]
"#;

fn chromium() -> PathBuf {
    std::env::var_os("BGFLOW_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What is missing to run the browser test.
fn missing(browser_dir: &Path) -> Vec<String> {
    let mut m = Vec::new();
    if !chromium().is_file() {
        m.push(format!(
            "{} (apt-get install chromium)",
            chromium().display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        m.push("node (apt-get install nodejs npm)".to_owned());
    }
    if !browser_dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        m.push(format!(
            "playwright-core (cd {} && npm ci)",
            browser_dir.display()
        ));
    }
    m
}

#[test]
fn the_page_shows_a_step_turn_green_live_and_stops_the_run() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let lacking = missing(&browser_dir);
    if !lacking.is_empty() {
        if std::env::var_os("BGFLOW_SKIP_BROWSER").is_some_and(|v| v == "1") {
            eprintln!(
                "skipped (BGFLOW_SKIP_BROWSER=1): missing {}",
                lacking.join(", ")
            );
            return;
        }
        panic!(
            "the browser test needs: {} (or set BGFLOW_SKIP_BROWSER=1 to skip it locally)",
            lacking.join(", ")
        );
    }
    let home = Home::new();
    home.write("release.toml", WORKFLOW);
    let id = home.detach("release.toml");
    let s = Serve::start(&home);
    s.wait_run(&id, |v| v["steps"][0]["state"] == "running");
    let shot = std::env::var_os("BGFLOW_SCREENSHOT")
        .map_or_else(|| home.path().join("serve-run.png"), PathBuf::from);
    let shot = if shot.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(shot)
    } else {
        shot
    };
    let _ = std::fs::remove_file(&shot);
    let mut node = Command::new("node")
        .arg(browser_dir.join("serve.mjs"))
        .current_dir(&browser_dir)
        .env("BGFLOW_URL", &s.url)
        .env("BGFLOW_RUN", &id)
        .env("BGFLOW_MARKER", home.path().join("go"))
        .env("BGFLOW_SHOT", &shot)
        .env("BGFLOW_CHROMIUM", chromium())
        .env("BGFLOW_PROFILE", home.path().join("chromium-profile"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let end = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = node.try_wait().expect("wait") {
            break Some(st);
        }
        if Instant::now() > end {
            let _ = node.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = node.wait_with_output().expect("output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the browser test failed ({status:?}):\n{said}\nserver:\n{}",
        s.stderr()
    );
    assert!(
        said.contains("browser: stopped: the run is cancelled"),
        "{said}"
    );
    let run = s.wait_run(&id, ended);
    assert_eq!(run["run"]["state"], "cancelled", "{run}");
    common::assert_no_process("sleep 319");
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG: {}", shot.display());
}
