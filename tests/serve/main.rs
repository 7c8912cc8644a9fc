//! `bgflow serve` over real HTTP (DESIGN.md §11, docs/serve.md): the real binary serving a
//! real history in a temp dir, asked with a plain TCP client (`http.rs`) that can forge
//! any header. Each refusal of the security rules has its test; the browser test that
//! drives the page in Chromium is `browser.rs`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

mod browser;
mod http;

#[path = "../common/mod.rs"]
mod common;

use http::{request, Events};

const BIN: &str = env!("CARGO_BIN_EXE_bgflow");
/// Longest a test waits for what it expects.
const DEADLINE: Duration = Duration::from_secs(40);

/// A temp dir with workflow files and a state folder.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("wait.sh"), common::WAIT_SH).expect("wait.sh");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join(".bgflow")
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// `bgflow run -d FILE`: the run id.
    pub fn detach(&self, file: &str) -> String {
        let out = Command::new(BIN)
            .arg("--state-dir")
            .arg(self.state())
            .args(["run", "-d", file])
            .current_dir(self.path())
            .output()
            .expect("bgflow run -d");
        assert!(
            out.status.success(),
            "run -d failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A bgflow command's stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = Command::new(BIN)
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .output()
            .expect("bgflow");
        serde_json::from_slice(&out.stdout).expect("JSON")
    }
}

/// A failing test leaves no supervisor behind: what is still active is force-stopped, and
/// so is a lost run whose processes still run.
impl Drop for Home {
    fn drop(&mut self) {
        if !self.state().join("bgflow.db").exists() {
            return;
        }
        let list = self.json(&["list", "--json"]);
        for r in list["runs"].as_array().into_iter().flatten() {
            let still = r["still_running"].as_array().is_some_and(|p| !p.is_empty());
            if still
                || matches!(
                    r["state"].as_str(),
                    Some("pending" | "running" | "unresponsive")
                )
            {
                let id = r["id"].as_str().unwrap_or_default();
                let _ = Command::new(BIN)
                    .arg("--state-dir")
                    .arg(self.state())
                    .args(["stop", id, "--force", "--yes"])
                    .output();
            }
        }
    }
}

/// A running `bgflow serve`, killed when dropped.
pub struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub token: String,
    /// The URL it printed.
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start(home: &Home) -> Self {
        Self::bind(home, "127.0.0.1:0")
    }

    pub fn bind(home: &Home, bind: &str) -> Self {
        Self::with(home, &["--bind", bind])
    }

    /// `bgflow serve ARGS`.
    pub fn with(home: &Home, args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .arg("--state-dir")
            .arg(home.state())
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bgflow serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let keep = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                keep.lock()
                    .expect("lock")
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the URL");
        let url = line.trim().to_owned();
        let rest = url.strip_prefix("http://").unwrap_or_else(|| {
            panic!(
                "no URL printed: {url:?}; stderr: {}",
                stderr.lock().expect("lock")
            )
        });
        let (addr, query) = rest.split_once("/?token=").expect("URL with a token");
        Self {
            addr: addr.replace("0.0.0.0", "127.0.0.1"),
            token: query.to_owned(),
            url,
            child,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// GET with the token.
    pub fn get(&self, path: &str) -> http::Answer {
        request("GET", &self.addr, path, &[("X-Bgflow-Token", &self.token)])
    }

    /// POST a stop of run `id`, with the token, as the page's button does.
    pub fn stop(&self, id: &str) -> http::Answer {
        request(
            "POST",
            &self.addr,
            &format!("/api/runs/{id}/stop"),
            &[("X-Bgflow-Token", &self.token)],
        )
    }

    /// The run, polled until `done` says so.
    pub fn wait_run(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            let a = self.get(&format!("/api/runs/{id}"));
            assert_eq!(a.status, 200, "{}", a.body);
            let v = a.json();
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < end, "run {id} never got there: {v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ended(v: &Value) -> bool {
    !matches!(
        v["run"]["state"].as_str(),
        Some("pending" | "running" | "unresponsive")
    )
}

const QUICK: &str = r#"[workflow]
name = "quick"

[steps.hello]
run = "echo hello from a"

[steps.after]
run = "echo after"
needs = ["hello"]

[steps.markup]
run = ["printf", "<script>alert(1)</script>\\n"]
"#;

#[test]
fn the_api_answers_with_the_shapes_of_list_and_status_json() {
    let home = Home::new();
    home.write("quick.toml", QUICK);
    let first = home.detach("quick.toml");
    let second = home.detach("quick.toml");
    let s = Serve::start(&home);
    s.wait_run(&first, ended);
    let run = s.wait_run(&second, ended);
    let status = home.json(&["status", "--json", &second]);
    assert_eq!(run["version"], 1);
    assert_eq!(run["run"]["state"], status["run"]["state"]);
    assert_eq!(run["steps"], status["steps"]);
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&run["run"]), keys(&status["run"]));

    let list = s.get("/api/runs").json();
    let cli = home.json(&["list", "--json"]);
    assert_eq!(list["runs"], cli["runs"]);
    assert_eq!(list["more"], false);
    // Paginated, newest first.
    let one = s.get("/api/runs?limit=1").json();
    assert_eq!(one["runs"][0]["id"].as_str(), Some(second.as_str()));
    assert_eq!(one["more"], true);
    let next = s.get("/api/runs?limit=1&offset=1").json();
    assert_eq!(next["runs"][0]["id"].as_str(), Some(first.as_str()));
    assert_eq!(next["more"], false);
    assert_eq!(
        s.get("/api/runs?state=failed").json()["runs"],
        Value::Array(vec![])
    );
    assert_eq!(s.get("/api/runs?state=nonsense").status, 400);

    let log = s.get(&format!("/api/runs/{second}/logs/hello")).json();
    assert_eq!(log["text"], "hello from a\n");
    assert_eq!(log["next_offset"], 13);
    let rest = s
        .get(&format!("/api/runs/{second}/logs/hello?offset=6"))
        .json();
    assert_eq!(rest["text"], "from a\n");
    assert_eq!(s.get("/api/runs/zzzzzzzz").status, 404);
    assert_eq!(
        s.get(&format!("/api/runs/{second}/logs/nostep")).status,
        404
    );
}

#[test]
fn the_first_html_holds_the_current_state_without_javascript() {
    let home = Home::new();
    home.write("quick.toml", QUICK);
    let id = home.detach("quick.toml");
    let s = Serve::start(&home);
    s.wait_run(&id, ended);
    let list = s.get("/");
    assert_eq!(list.status, 200);
    assert!(
        list.body
            .contains(&format!(r#"<tr id="run-{id}" data-state="succeeded">"#)),
        "{}",
        list.body
    );
    let page = s.get(&format!("/runs/{id}?step=hello"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<g class="node st-succeeded" data-step="hello""#),
        "{}",
        page.body
    );
    // The edge hello -> after, drawn from the plan.
    assert_eq!(
        page.body.matches(r#"<path class="edge""#).count(),
        1,
        "{}",
        page.body
    );
    assert!(page.body.contains("hello from a\n</pre>"), "{}", page.body);
    let none = s.get("/runs/zzzzzzzz");
    assert_eq!(none.status, 404);
    assert!(none.body.contains("<h1>No such run</h1>"), "{}", none.body);
    // What a step printed is text, never markup.
    let markup = s.get(&format!("/runs/{id}?step=markup"));
    assert!(
        markup
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        markup.body
    );
    assert!(!markup.body.contains("<script>alert"), "{}", markup.body);
    // Everything the page loads is served by bgflow itself.
    assert!(!page.body.contains("https://"), "{}", page.body);
    let js = request("GET", &s.addr, "/assets/app.js", &[]);
    assert_eq!(
        (js.status, js.header("content-type")),
        (200, Some("text/javascript; charset=utf-8"))
    );
    assert!(js.body.contains("EventSource"));
}

#[test]
fn a_request_whose_host_names_another_server_is_refused_with_421() {
    let home = Home::new();
    let s = Serve::start(&home);
    let port = s.addr.rsplit_once(':').expect("port").1.to_owned();
    for host in [
        "evil.example",
        &format!("evil.example:{port}"),
        "127.0.0.1:1",
        &format!("10.9.8.7:{port}"),
    ] {
        let a = request(
            "GET",
            &s.addr,
            "/api/runs",
            &[("Host", host), ("X-Bgflow-Token", &s.token)],
        );
        assert_eq!(a.status, 421, "Host {host}: {}", a.body);
    }
    // The page and the stop request alike.
    let a = request(
        "POST",
        &s.addr,
        "/api/runs/x/stop",
        &[("Host", "evil.example"), ("X-Bgflow-Token", &s.token)],
    );
    assert_eq!(a.status, 421);
    let ok = request(
        "GET",
        &s.addr,
        "/api/runs",
        &[
            ("Host", &format!("localhost:{port}")),
            ("X-Bgflow-Token", &s.token),
        ],
    );
    assert_ne!(ok.status, 421, "{}", ok.body);
}

/// `--port N`, as other servers spell it, is `--bind 127.0.0.1:N`; with `--bind` it is an
/// error (exit 2), not one of them dropped.
#[test]
fn port_listens_on_loopback_at_that_port_and_conflicts_with_bind() {
    let home = Home::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let s = Serve::with(&home, &["--port", &port.to_string()]);
    assert_eq!(s.addr, format!("127.0.0.1:{port}"));
    let page = s.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    let both = Command::new(BIN)
        .arg("--state-dir")
        .arg(home.state())
        .args(["serve", "--port", "1", "--bind", "127.0.0.1:2"])
        .output()
        .expect("bgflow serve");
    assert_eq!(both.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&both.stderr).contains("cannot be used with"),
        "{}",
        String::from_utf8_lossy(&both.stderr)
    );
}

#[test]
fn a_request_without_the_token_is_refused_and_the_printed_url_sets_a_cookie() {
    let home = Home::new();
    let s = Serve::start(&home);
    assert_eq!(request("GET", &s.addr, "/api/runs", &[]).status, 401);
    assert_eq!(
        request("GET", &s.addr, "/api/runs", &[("X-Bgflow-Token", "wrong")]).status,
        401
    );
    assert_eq!(request("GET", &s.addr, "/", &[]).status, 401);
    assert_eq!(request("GET", &s.addr, "/api/events", &[]).status, 401);
    assert_eq!(request("GET", &s.addr, "/?token=wrong", &[]).status, 401);
    // The printed URL: the token goes into a cookie and out of the address.
    let path = s.url.split_once(&s.addr).expect("path").1;
    let a = request("GET", &s.addr, path, &[]);
    assert_eq!((a.status, a.header("location")), (303, Some("/")));
    let cookie = a.header("set-cookie").expect("a cookie").to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value");
    assert_eq!(
        request("GET", &s.addr, "/", &[("Cookie", pair)]).status,
        200
    );
    assert_eq!(
        request(
            "GET",
            &s.addr,
            "/api/runs",
            &[("Authorization", &format!("Bearer {}", s.token))]
        )
        .status,
        404,
        "no history yet: 404 past the guard"
    );
}

#[test]
fn post_needs_the_token_in_a_header_and_a_matching_origin_and_no_cors_is_sent() {
    let home = Home::new();
    home.write("quick.toml", QUICK);
    let id = home.detach("quick.toml");
    let s = Serve::start(&home);
    s.wait_run(&id, ended);
    let stop = format!("/api/runs/{id}/stop");
    let cookie = format!(
        "bgflow_token_{}={}",
        s.addr.rsplit_once(':').expect("port").1,
        s.token
    );
    // No token, a wrong one, or only the cookie (a cross-site form sends that): 403.
    assert_eq!(request("POST", &s.addr, &stop, &[]).status, 403);
    assert_eq!(
        request("POST", &s.addr, &stop, &[("X-Bgflow-Token", "nope")]).status,
        403
    );
    assert_eq!(
        request("POST", &s.addr, &stop, &[("Cookie", &cookie)]).status,
        403
    );
    // The token with another site's Origin: 403.
    for origin in [
        "http://evil.example",
        "null",
        &format!("https://{}", s.addr),
    ] {
        let a = request(
            "POST",
            &s.addr,
            &stop,
            &[("X-Bgflow-Token", &s.token), ("Origin", origin)],
        );
        assert_eq!(a.status, 403, "Origin {origin}: {}", a.body);
    }
    // Its own Origin, or none (curl): allowed.
    let own = format!("http://{}", s.addr);
    let a = request(
        "POST",
        &s.addr,
        &stop,
        &[("X-Bgflow-Token", &s.token), ("Origin", &own)],
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["was_running"], false);
    // A stop through GET does nothing.
    assert_eq!(s.get(&stop).status, 405);
    // No CORS: a preflight is not answered with permission, nor any other request.
    let pre = request(
        "OPTIONS",
        &s.addr,
        &stop,
        &[
            ("Origin", "http://evil.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "x-bgflow-token"),
        ],
    );
    assert_ne!(pre.status / 100, 2);
    for a in [
        pre,
        s.get("/api/runs"),
        request(
            "GET",
            &s.addr,
            "/api/runs",
            &[
                ("X-Bgflow-Token", &s.token),
                ("Origin", "http://evil.example"),
            ],
        ),
    ] {
        assert!(
            a.headers
                .iter()
                .all(|(k, _)| !k.starts_with("access-control-")),
            "{:?}",
            a.headers
        );
    }
}

#[test]
fn a_log_path_cannot_leave_the_run_folder() {
    let home = Home::new();
    home.write("quick.toml", QUICK);
    let secret = home.write("secret.txt", "the secret\n");
    let id = home.detach("quick.toml");
    let s = Serve::start(&home);
    s.wait_run(&id, ended);
    // `..` in the step: no such step (the name is looked up, never joined to a path).
    for step in ["..%2F..%2Fsecret.txt", "..", "%2E%2E%2Fsecret.txt"] {
        let a = s.get(&format!("/api/runs/{id}/logs/{step}"));
        assert_eq!(a.status, 404, "{step}: {}", a.body);
        assert!(!a.body.contains("the secret"));
    }
    // A log replaced by a symbolic link out of the run folder: 403.
    let log = home.state().join("runs").join(&id).join("hello.log");
    std::fs::remove_file(&log).expect("rm");
    std::os::unix::fs::symlink(&secret, &log).expect("ln");
    let a = s.get(&format!("/api/runs/{id}/logs/hello"));
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(!a.body.contains("the secret"));
    let page = s.get(&format!("/runs/{id}?step=hello"));
    assert!(!page.body.contains("the secret"), "{}", page.body);
}

#[test]
fn events_arrive_as_server_sent_events_and_stop_ends_every_process() {
    let home = Home::new();
    home.write(
        "slow.toml",
        r#"[workflow]
name = "slow"

[steps.first]
run = "echo one"

[steps.long]
run = "sh -c 'sleep 317 & sleep 317'"
needs = ["first"]
"#,
    );
    let s = Serve::start(&home);
    // Served before any history exists; the stream starts at what comes next.
    let mut events = Events::open(&s.addr, "/api/events", &[("X-Bgflow-Token", &s.token)]);
    assert_eq!(events.status, 200);
    let id = home.detach("slow.toml");
    let done = events
        .until(DEADLINE, |e| {
            e["type"] == "step_finished" && e["step"] == "first"
        })
        .expect("first's step_finished as an event");
    assert_eq!(
        (done["run"].as_str(), done["state"].as_str()),
        (Some(id.as_str()), Some("succeeded"))
    );
    s.wait_run(&id, |v| v["steps"][1]["state"] == "running");
    assert!(!common::live_processes("sleep 317").is_empty());
    let a = s.stop(&id);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        (
            a.json()["state"].as_str(),
            a.json()["was_running"].as_bool()
        ),
        (Some("cancelled"), Some(true))
    );
    let run = s.get(&format!("/api/runs/{id}")).json();
    assert!(
        run["run"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("asked to stop by `bgflow serve` (pid ")),
        "{run}"
    );
    common::assert_no_process("sleep 317");
    events
        .until(DEADLINE, |e| {
            e["type"] == "run_finished" && e["run"] == id.as_str()
        })
        .expect("run_finished as an event");
    // A stream for one run from an event id replays what followed it.
    let mut replay = Events::open(
        &s.addr,
        &format!("/api/events?run={id}&after=0"),
        &[("X-Bgflow-Token", &s.token)],
    );
    let first = replay.until(DEADLINE, |_| true).expect("an event");
    assert_eq!(first["type"], "run_created");
}

#[test]
fn a_bind_off_loopback_warns_and_the_host_check_still_holds() {
    let home = Home::new();
    let s = Serve::bind(&home, "0.0.0.0:0");
    assert_eq!(s.get("/").status, 200);
    let end = Instant::now() + DEADLINE;
    while !s
        .stderr()
        .contains("warning: bgflow serve listens on 0.0.0.0:")
    {
        assert!(Instant::now() < end, "no warning: {}", s.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let a = request(
        "GET",
        &s.addr,
        "/",
        &[("Host", "rebound.example"), ("X-Bgflow-Token", &s.token)],
    );
    assert_eq!(a.status, 421);
    // On loopback, no warning.
    let quiet = Serve::start(&home);
    assert_eq!(quiet.get("/").status, 200);
    assert!(!quiet.stderr().contains("warning"), "{}", quiet.stderr());
}

#[test]
fn a_lost_run_whose_processes_still_run_says_so_and_its_page_can_stop_them() {
    let home = Home::new();
    home.write(
        "orphan.toml",
        "[workflow]\nname = \"orphan\"\n\n[steps.long]\nrun = \"sh -c 'sleep 322 & sleep 322; wait'\"\n",
    );
    let id = home.detach("orphan.toml");
    let s = Serve::start(&home);
    let v = s.wait_run(&id, |v| {
        v["steps"][0]["state"] == "running" && common::live_processes("sleep 322").len() >= 3
    });
    let supervisor = v["run"]["supervisor_pid"].as_i64().expect("supervisor pid");
    let killed = Command::new("kill")
        .args(["-9", &supervisor.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Lost, and the API and the page name what still runs.
    let v = s.wait_run(&id, |v| v["run"]["state"] == "lost");
    let still = v["run"]["still_running"].as_array().expect("still_running");
    assert_eq!(
        still.iter().filter(|p| p["command"] == "sleep 322").count(),
        2,
        "{v}"
    );
    let page = s.get(&format!("/runs/{id}"));
    assert!(page.body.contains(r#"id="still-running""#), "{}", page.body);
    assert!(page.body.contains("sleep 322 (pid "), "{}", page.body);
    assert!(
        page.body.contains(&format!(r#"data-stop="{id}""#)),
        "{}",
        page.body
    );
    // The page's stop ends them, as `bgflow stop` does.
    let a = s.stop(&id);
    assert_eq!(a.status, 200, "{}", a.body);
    common::assert_no_process("sleep 322");
    let v = s.wait_run(&id, |v| v["run"]["still_running"] == serde_json::json!([]));
    assert_eq!(v["run"]["state"], "lost");
    let page = s.get(&format!("/runs/{id}"));
    assert!(
        !page.body.contains(r#"id="still-running""#),
        "{}",
        page.body
    );
    assert!(!page.body.contains("data-stop="), "{}", page.body);
}
