//! Readiness and health probes of services: `http` (a 2xx answer), `tcp` (a connection),
//! `command` (exit 0). The `log` probe is a regex over the service's output, matched by
//! the log follower in `step`. Each try is bounded; the caller decides when to try again.
//!
//! An `http` or `tcp` answer from this machine counts only when the socket that took the
//! connection is held by a process of the service (guarantee 10, `crate::listeners`): a
//! server left over on the port, or any other process, fails the try for good
//! (`Failure::foreign`). A `command` probe is not checked: what it talks to is its own.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::contain::Members;
use crate::listeners::{self, split_http_url};
use crate::manifest::Probe;

/// The longest one try of a probe may take.
pub const TRY_LIMIT: Duration = Duration::from_secs(5);

/// Why a try did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub text: String,
    /// A process that is not the service's answered: trying again would not make the
    /// service the one answering.
    pub foreign: bool,
}

impl Failure {
    fn again(text: String) -> Self {
        Self {
            text,
            foreign: false,
        }
    }
}

/// The two ends of the probe's connection: (local, peer).
type Ends = (SocketAddr, SocketAddr);

/// One try of a probe. With `service`, an `http` or `tcp` answer from this machine passes
/// only when a process of the service holds the listening socket.
pub async fn try_once(
    probe: &Probe,
    cwd: &Path,
    limit: Duration,
    service: Option<&Members>,
) -> Result<(), Failure> {
    let attempt = async {
        if let Some(url) = &probe.http {
            http_get(url).await.map(Some)
        } else if let Some(addr) = &probe.tcp {
            let stream = TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| format!("tcp {addr}: {e}"))?;
            Ok(ends(&stream))
        } else if let Some(cmd) = &probe.command {
            command(cmd, cwd).await.map(|()| None)
        } else {
            // `log` probes are matched from the output, not tried here.
            Err("waiting for a matching log line".to_owned())
        }
    };
    let ends = match tokio::time::timeout(limit, attempt).await {
        Ok(Ok(ends)) => ends,
        Ok(Err(e)) => return Err(Failure::again(e)),
        Err(_) => {
            return Err(Failure::again(format!(
                "no answer within {}",
                crate::manifest::Duration(limit)
            )))
        }
    };
    let (Some((local, peer)), Some(service)) = (ends, service) else {
        return Ok(());
    };
    let what = match (&probe.http, &probe.tcp) {
        (Some(url), _) => format!("GET {url}"),
        (None, Some(addr)) => format!("tcp {addr}"),
        (None, None) => String::new(),
    };
    let service = service.clone();
    // /proc is read off the runtime: a scan of every process names a foreign holder.
    tokio::task::spawn_blocking(move || answered_by_service(&what, local, peer, &service))
        .await
        .unwrap_or_else(|e| {
            Err(Failure::again(format!(
                "could not tell who answered the probe: {e}"
            )))
        })
}

/// For a service: the first of its probes whose port another process already listens on,
/// said for the step's failure (checked before it starts).
pub fn port_taken(step: &crate::validate::Step) -> Option<String> {
    use crate::validate::ports::{has_port_probe, taken_ports};
    if !has_port_probe(step) {
        return None;
    }
    let taken = taken_ports(step, &listeners::all());
    taken.first().map(|t| {
        format!(
            "{} before the service started: that process, not the service, would answer",
            t.describe()
        )
    })
}

/// `run`'s check before anything starts: for each of the `selected` steps (indices) that
/// is a service whose probe port another process holds, a line saying so (`resume` never
/// keeps a service, so every selected one counts). Empty: nothing is taken.
pub fn taken_before_run(wf: &crate::validate::Workflow, selected: &[usize]) -> Vec<String> {
    use crate::validate::ports::{has_port_probe, taken_ports};
    let probed: Vec<&crate::validate::Step> = selected
        .iter()
        .filter(|&&i| has_port_probe(&wf.steps[i]))
        .map(|&i| &wf.steps[i])
        .collect();
    if probed.is_empty() {
        return Vec::new();
    }
    let table = listeners::all();
    probed
        .into_iter()
        .flat_map(|s| {
            taken_ports(s, &table)
                .into_iter()
                .map(move |t| format!("service `{}`: {}", s.name, t.describe()))
        })
        .collect()
}

/// What `run` prints when it refuses for `taken` (from `taken_before_run`).
pub fn refusal(taken: &[String]) -> String {
    let mut text: String = taken.iter().map(|t| format!("error: {t}\n")).collect();
    text.push_str(&format!(
        "error: {} port{} that a service of the run probes {} taken by another process; \
         nothing ran\n  help: stop that process, or give the service a free port \
         (a port from `[vars]` can be changed with `--var`)\n",
        taken.len(),
        if taken.len() == 1 { "" } else { "s" },
        if taken.len() == 1 { "is" } else { "are" },
    ));
    text
}

fn ends(stream: &TcpStream) -> Option<Ends> {
    Some((stream.local_addr().ok()?, stream.peer_addr().ok()?))
}

/// `Ok` when the socket that took the connection `local -> peer` is held by a process of
/// the service, or when the peer is another machine (nothing to look at).
fn answered_by_service(
    what: &str,
    local: SocketAddr,
    peer: SocketAddr,
    service: &Members,
) -> Result<(), Failure> {
    if !listeners::is_local_connection(local, peer) {
        return Ok(());
    }
    let table = listeners::all();
    let answering = listeners::answering(&table, peer.ip(), peer.port());
    if answering.is_empty() {
        return Err(Failure::again(format!(
            "{what}: answered, but no socket of this machine listens on {peer} (a port forwarded \
             elsewhere? a `command` probe can check it)"
        )));
    }
    let inodes: Vec<u64> = answering.iter().map(|l| l.inode).collect();
    let held = listeners::holders(&inodes, service.list());
    let others: Vec<&listeners::Listener> = answering
        .into_iter()
        .filter(|l| !held.iter().any(|&(_, inode)| inode == l.inode))
        .collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(Failure {
        text: format!(
            "{what}: answered by {}, which is not a process of the service",
            listeners::describe(&others)
        ),
        foreign: true,
    })
}

async fn command(cmd: &str, cwd: &Path) -> Result<(), String> {
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .map_err(|e| format!("command `{cmd}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("command `{cmd}` exited with {status}"))
    }
}

/// A GET whose status line must say 2xx; the connection's ends.
async fn http_get(url: &str) -> Result<Ends, String> {
    let (addr, host, path) = split_http_url(url)?;
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let ends = ends(&stream).ok_or_else(|| format!("GET {url}: the connection has no address"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bgflow\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let status_line = line.lines().next().unwrap_or("").to_owned();
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("GET {url}: not an HTTP answer: `{status_line}`"))?;
    if (200..300).contains(&code) {
        Ok(ends)
    } else {
        Err(format!("GET {url}: {status_line}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8000/health").ok(),
            Some((
                "127.0.0.1:8000".into(),
                "127.0.0.1:8000".into(),
                "/health".into()
            ))
        );
        assert_eq!(
            split_http_url("http://localhost").ok(),
            Some(("localhost:80".into(), "localhost".into(), "/".into()))
        );
        assert!(split_http_url("https://x/").is_err());
    }

    #[tokio::test]
    async fn http_and_tcp_against_a_real_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 503 Busy\r\n\r\n"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer.as_bytes()).await;
            }
        });
        let probe = |url: String| Probe {
            http: Some(url),
            ..Probe::default()
        };
        let dir = Path::new(".");
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(
            try_once(&probe(url.clone()), dir, TRY_LIMIT, None).await,
            Ok(())
        );
        let err = try_once(&probe(url), dir, TRY_LIMIT, None)
            .await
            .expect_err("503");
        assert!(err.text.contains("503"), "{err:?}");
        server.await.expect("server");
        let closed = Probe {
            tcp: Some(format!("127.0.0.1:{port}")),
            ..Probe::default()
        };
        assert!(
            try_once(&closed, dir, TRY_LIMIT, None).await.is_err(),
            "nothing listens any more"
        );
        let ok = Probe {
            command: Some("true".into()),
            ..Probe::default()
        };
        assert_eq!(try_once(&ok, dir, TRY_LIMIT, None).await, Ok(()));
    }
}
