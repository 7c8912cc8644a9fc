//! HTML for the pages: escaping, the frame every page shares, and the small pieces (a
//! state badge, a duration, a time) the runs list and the run page both draw.

use std::fmt::Write as _;

/// `text` safe inside HTML text and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `text` as one component of a URL path or query value.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A time in ms since the epoch as `2026-12-06 05:10:03 UTC`.
pub fn time(ms: Option<i64>) -> String {
    let Some(t) = ms.and_then(|m| jiff::Timestamp::from_millisecond(m).ok()) else {
        return "—".to_owned();
    };
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// How long from `start` to `end` (or to now while it has none): `1h02m`, `3m04s`, `5.2s`.
pub fn duration(start: Option<i64>, end: Option<i64>) -> String {
    let Some(s) = start else {
        return "—".to_owned();
    };
    let ms = u64::try_from(end.unwrap_or_else(now_ms).saturating_sub(s)).unwrap_or(0);
    let secs = ms / 1000;
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}.{}s", secs, (ms % 1000) / 100)
    }
}

/// A state as a coloured badge (its class is the state: `st-running`).
pub fn badge(state: &str) -> String {
    format!(
        r#"<span class="badge st-{s}" data-state="{s}">{s}</span>"#,
        s = esc(state)
    )
}

/// A `<progress>` bar and its text, from a percent and a current/total.
pub fn progress(percent: Option<f64>, current: Option<i64>, total: Option<i64>) -> String {
    let pct = percent.or_else(|| match (current, total) {
        #[allow(clippy::cast_precision_loss)]
        (Some(c), Some(t)) if t > 0 => Some(c as f64 * 100.0 / t as f64),
        _ => None,
    });
    let Some(p) = pct else {
        return String::new();
    };
    let p = p.clamp(0.0, 100.0);
    let text = match (current, total) {
        (Some(c), Some(t)) => format!("{c}/{t}"),
        _ => format!("{p:.0}%"),
    };
    format!(r#"<progress max="100" value="{p:.0}"></progress> <span class="num">{text}</span>"#)
}

/// The page around `body`: the token for the page's script (the request that asked for
/// the page carried it), and `title`.
pub fn page(title: &str, token: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="bgflow-token" content="{token}">
<title>{title}</title>
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/app.js" defer></script>
</head>
<body>
<header><a href="/" class="home">bgflow</a> <span id="conn" class="conn" title="live updates">●</span></header>
<main>
{body}
</main>
</body>
</html>
"#,
        token = esc(token),
        title = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(esc(r#"<b a="x">'&"#), "&lt;b a=&quot;x&quot;&gt;&#39;&amp;");
        assert_eq!(url("test[a,b] x/y"), "test%5Ba%2Cb%5D%20x%2Fy");
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(Some(0), Some(5_250)), "5.2s");
        assert_eq!(duration(Some(0), Some(184_000)), "3m04s");
        assert_eq!(duration(Some(0), Some(3_720_000)), "1h02m");
        assert_eq!(duration(None, Some(1)), "—");
    }
}
