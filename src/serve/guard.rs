//! What every request passes before a handler sees it, and the headers every response
//! carries. In order:
//!
//! 1. `Host` must name the bound address (its IP and port), `localhost` with that port,
//!    or, when bound to every address (`0.0.0.0`, `::`), any IP literal with that port:
//!    a page of another site that a DNS name was rebound to 127.0.0.1 sends its own name
//!    (DNS rebinding, process-compose GHSA-5gm3-9crp-6g3v). Else 421.
//! 2. `POST` must carry the token in `X-Bgflow-Token` or `Authorization: Bearer` (a cookie
//!    is not enough: a browser sends it with a cross-site form), and its `Origin`, when
//!    sent, must be this server's. Else 403.
//! 3. Every other request but `/assets/` must carry the token: in one of those headers or
//!    in the cookie that opening the printed URL (`/?token=…`) sets. Else 401. A page
//!    opened with the right `?token=` is answered with the cookie and a redirect to itself
//!    without it.
//!
//! No response carries `Access-Control-Allow-*`: a page of another origin cannot read
//! any answer, nor send the token header (a preflight gets 405).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-bgflow-token";

/// The cookie that carries the token for a browser (one per port: cookies do not tell
/// ports apart).
pub fn cookie_name(bound: SocketAddr) -> String {
    format!("bgflow_token_{}", bound.port())
}

/// Whether `host` (a `Host` header's value) names the server bound at `bound`.
pub fn host_allowed(host: &str, bound: SocketAddr) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        // `[::1]:7340`, `127.0.0.1:7340`, `localhost:7340`; not the `::` inside `[::1]`.
        Some((n, p)) if !p.contains(']') => (n, p.parse::<u16>().ok()),
        _ => (host, Some(80)),
    };
    if port != Some(bound.port()) {
        return false;
    }
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = name.trim_start_matches('[').trim_end_matches(']');
    match literal.parse::<IpAddr>() {
        Ok(ip) => bound.ip().is_unspecified() || ip == bound.ip(),
        Err(_) => false,
    }
}

/// Compares two strings in time that depends on their lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token a request carries in a header.
fn header_token(h: &HeaderMap) -> Option<&str> {
    if let Some(v) = h.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The token a request carries in its cookie.
fn cookie_token<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The `token` parameter of a query string.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

/// A query string without its `token` parameter.
fn without_token(query: &str) -> String {
    query
        .split('&')
        .filter(|kv| !kv.starts_with("token=") && !kv.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

fn refuse(status: StatusCode, why: &str) -> Response {
    let body = serde_json::json!({"version": 1, "error": why});
    (status, axum::Json(body)).into_response()
}

/// The checks above, then the handler, then the headers every response carries.
pub async fn guard(State(app): State<App>, req: Request, next: Next) -> Response {
    let mut resp = check(&app, req, next).await;
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

async fn check(app: &App, req: Request, next: Next) -> Response {
    let h = req.headers();
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, app.bound) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            &format!(
                "the Host header `{host}` does not name this server ({}, or localhost:{})",
                app.bound,
                app.bound.port()
            ),
        );
    }
    let token = &*app.token;
    if req.method() == Method::POST {
        if !header_token(h).is_some_and(|t| same(t, token)) {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!(
                    "POST needs the token that bgflow serve printed, in the {TOKEN_HEADER} header"
                ),
            );
        }
        if let Some(origin) = h.get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .ok()
                .and_then(|o| o.strip_prefix("http://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host));
            if !ok {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "the request's Origin is not this server",
                );
            }
        }
        return next.run(req).await;
    }
    if req.uri().path().starts_with("/assets/") {
        return next.run(req).await;
    }
    let cookie = cookie_name(app.bound);
    let carried = header_token(h).or_else(|| cookie_token(h, &cookie));
    if carried.is_some_and(|t| same(t, token)) {
        return next.run(req).await;
    }
    let page = !req.uri().path().starts_with("/api/");
    if page && req.method() == Method::GET {
        if let Some(t) = query_token(req.uri().query()) {
            if same(t, token) {
                // Into the cookie, and out of the address bar.
                let rest = without_token(req.uri().query().unwrap_or(""));
                let to = if rest.is_empty() {
                    req.uri().path().to_owned()
                } else {
                    format!("{}?{rest}", req.uri().path())
                };
                let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{cookie}={token}; HttpOnly; SameSite=Strict; Path=/"
                )) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
        }
        return (
            StatusCode::UNAUTHORIZED,
            axum::response::Html(
                "<!doctype html><title>bgflow</title><p>Open the address that \
                 <code>bgflow serve</code> printed (it ends in <code>?token=…</code>).</p>",
            ),
        )
            .into_response();
    }
    refuse(
        StatusCode::UNAUTHORIZED,
        &format!("this needs the token that bgflow serve printed, in the {TOKEN_HEADER} header"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_must_name_the_bound_address_or_localhost() {
        let b: SocketAddr = "127.0.0.1:7340".parse().expect("addr");
        assert!(host_allowed("127.0.0.1:7340", b));
        assert!(host_allowed("localhost:7340", b));
        assert!(host_allowed("LOCALHOST:7340", b));
        assert!(!host_allowed("localhost:7341", b));
        assert!(!host_allowed("localhost", b));
        assert!(!host_allowed("evil.example:7340", b));
        assert!(!host_allowed("127.0.0.2:7340", b));
        assert!(!host_allowed("", b));
        let v6: SocketAddr = "[::1]:7340".parse().expect("addr");
        assert!(host_allowed("[::1]:7340", v6));
        assert!(!host_allowed("127.0.0.1:7340", v6));
        let any: SocketAddr = "0.0.0.0:80".parse().expect("addr");
        assert!(host_allowed("10.1.2.3", any));
        assert!(!host_allowed("rebound.example", any));
    }

    #[test]
    fn tokens_are_read_from_headers_cookies_and_the_query() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; bgflow_token_1=t"),
        );
        assert_eq!(cookie_token(&h, "bgflow_token_1"), Some("t"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(header_token(&h), Some("abc"));
        assert_eq!(query_token(Some("state=failed&token=x")), Some("x"));
        assert_eq!(without_token("state=failed&token=x"), "state=failed");
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
