//! Readiness and health probes of services: `http` (a 2xx answer), `tcp` (a connection),
//! `command` (exit 0). The `log` probe is a regex over the service's output, matched by
//! the log follower in `step`. Each try is bounded; the caller decides when to try again.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::manifest::Probe;

/// The longest one try of a probe may take.
pub const TRY_LIMIT: Duration = Duration::from_secs(5);

/// One try of a probe; `Err` is what to show if it never passes.
pub async fn try_once(probe: &Probe, cwd: &Path, limit: Duration) -> Result<(), String> {
    let attempt = async {
        if let Some(url) = &probe.http {
            http_get(url).await
        } else if let Some(addr) = &probe.tcp {
            TcpStream::connect(addr.as_str())
                .await
                .map(|_| ())
                .map_err(|e| format!("tcp {addr}: {e}"))
        } else if let Some(cmd) = &probe.command {
            command(cmd, cwd).await
        } else {
            // `log` probes are matched from the output, not tried here.
            Err("waiting for a matching log line".to_owned())
        }
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {}",
            crate::manifest::Duration(limit)
        )),
    }
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

/// Splits `http://host:port/path` into (host:port, host, path).
fn parse_http_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}`: only http:// URLs can be probed"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_owned(), path.to_owned()))
}

/// A GET whose status line must say 2xx.
async fn http_get(url: &str) -> Result<(), String> {
    let (addr, host, path) = parse_http_url(url)?;
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
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
        Ok(())
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
            parse_http_url("http://127.0.0.1:8000/health").ok(),
            Some((
                "127.0.0.1:8000".into(),
                "127.0.0.1:8000".into(),
                "/health".into()
            ))
        );
        assert_eq!(
            parse_http_url("http://localhost").ok(),
            Some(("localhost:80".into(), "localhost".into(), "/".into()))
        );
        assert!(parse_http_url("https://x/").is_err());
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
        assert_eq!(try_once(&probe(url.clone()), dir, TRY_LIMIT).await, Ok(()));
        let err = try_once(&probe(url), dir, TRY_LIMIT)
            .await
            .expect_err("503");
        assert!(err.contains("503"), "{err}");
        server.await.expect("server");
        let closed = Probe {
            tcp: Some(format!("127.0.0.1:{port}")),
            ..Probe::default()
        };
        assert!(
            try_once(&closed, dir, TRY_LIMIT).await.is_err(),
            "nothing listens any more"
        );
        let ok = Probe {
            command: Some("true".into()),
            ..Probe::default()
        };
        assert_eq!(try_once(&ok, dir, TRY_LIMIT).await, Ok(()));
    }
}
