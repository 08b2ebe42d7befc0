//! Content negotiation: is this request a person in a browser, who should be sent to sign in,
//! or a script, an XHR, an API client, who should get a 401?

/// Should an unauthenticated request be redirected to the login page (a person in a
/// browser) rather than answered with 401 (a script, an XHR, an API client)?
///
/// Only GET and HEAD navigations qualify, and only when `Accept` names `text/html` or
/// `application/xhtml+xml` with a non-zero quality. A bare `*/*` does not count:
/// curl, `fetch()`, XHR and most HTTP libraries send it by default, and answering them
/// with a redirect to an HTML login page breaks API clients in confusing ways, while
/// every browser lists `text/html` explicitly for top-level navigations.
pub fn wants_html(method: &str, accept: Option<&str>) -> bool {
    if method != "GET" && method != "HEAD" {
        return false;
    }
    let Some(accept) = accept else {
        return false;
    };
    let ranges: Vec<(&str, Option<f32>)> = split_outside_quotes(accept, ',')
        .into_iter()
        .filter_map(parse_media_range)
        .collect();
    ["text/html", "application/xhtml+xml"].iter().any(|wanted| {
        // Media types are case-insensitive; `wanted` is lower case.
        let mut matching = ranges
            .iter()
            .filter(|(kind, _)| kind.eq_ignore_ascii_case(wanted))
            .peekable();
        // Accepted only if listed, and every listing of it has a valid, non-zero q.
        // A repeated range with `q=0` is read as a refusal: when in doubt, answer 401.
        matching.peek().is_some() && matching.all(|(_, q)| q.is_some_and(|q| q > 0.0))
    })
}

/// `type/subtype` (compared without regard to case), with its `q` (1.0 when absent; `None`
/// when malformed). Borrowed: this runs on every anonymous check in redirect mode.
fn parse_media_range(range: &str) -> Option<(&str, Option<f32>)> {
    let mut parts = split_outside_quotes(range, ';').into_iter();
    let kind = parts.next()?.trim();
    if kind.is_empty() {
        return None;
    }
    let mut q = Some(1.0);
    for param in parts {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim().eq_ignore_ascii_case("q") {
                q = parse_qvalue(value.trim());
            }
        }
    }
    Some((kind, q))
}

/// RFC 9110 `qvalue`: `0[.ddd]` or `1[.000]`.
fn parse_qvalue(text: &str) -> Option<f32> {
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits_ok = fraction.len() <= 3 && fraction.bytes().all(|b| b.is_ascii_digit());
    match whole {
        "0" if digits_ok => text.parse().ok(),
        "1" if digits_ok && fraction.bytes().all(|b| b == b'0') => Some(1.0),
        _ => None,
    }
}

/// Splits on `sep` except inside double-quoted strings (media-type parameters may be
/// quoted and contain commas or semicolons).
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            c if c == sep && !in_quotes => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

#[cfg(test)]
#[path = "negotiation_tests.rs"]
mod tests;
