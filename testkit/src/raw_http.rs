//! A raw HTTP client over a plain TcpStream, one request per connection.
//!
//! [`get`] sends the request target exactly as written: reqwest (through `url`) resolves dot
//! segments before sending, so `/x/../ops/` would leave as `/ops/` and a test of what a proxy
//! does with the crafted path would test nothing. [`get_url`] is the readiness probe: blocking,
//! so that it works where a test is already inside an async runtime. Every connect, read and
//! write has a timeout, and an answer is read to the end of the connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::wait::excerpt;

/// Each connect, read and write of [`get`] gets this long.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A probe must not hold up the polling loop it is part of.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Answers are small (echo JSON, error pages); this only bounds a runaway one.
const MAX_RESPONSE: u64 = 1 << 20;

/// What came back.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as sent, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked if it was chunked.
    pub body: String,
}

impl RawResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `GET <target> HTTP/1.1` to `127.0.0.1:<port>`, with `Host: 127.0.0.1:<port>`,
/// `Connection: close` and `headers` (written as given, so they must not contain CR/LF).
pub fn get(port: u16, target: &str, headers: &[(&str, &str)]) -> Result<RawResponse, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        if [name, value].iter().any(|s| s.contains(['\r', '\n'])) {
            return Err(format!("header {name:?} would break the request"));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");

    exchange(addr, &request, TIMEOUT).map_err(|e| format!("GET {target}: {e}"))
}

/// A minimal HTTP/1.0 GET of `url` (plain http) with 2 s timeouts. HTTP/1.0 keeps the answer
/// unchunked and closes the connection.
pub fn get_url(url: &str) -> Result<RawResponse, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad url {url}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("get_url speaks plain http only, not {url}"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("no host in {url}"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("cannot resolve {host}"))?;
    let target = match parsed.query() {
        Some(query) => format!("{}?{}", parsed.path(), query),
        None => parsed.path().to_string(),
    };
    let host_header = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let request = format!(
        "GET {target} HTTP/1.0\r\nHost: {host_header}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    exchange(addr, &request, PROBE_TIMEOUT)
}

/// Writes `request` on a new connection and reads the answer to the end of the connection
/// (bounded by `timeout` per read and by the size cap).
fn exchange(addr: SocketAddr, request: &str, timeout: Duration) -> Result<RawResponse, String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    Read::by_ref(&mut stream)
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    parse(&raw)
}

/// The status line, the header lines and the body of one answer.
fn parse(raw: &[u8]) -> Result<RawResponse, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {:?}", excerpt(&text)))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.split(' ').collect::<Vec<_>>().as_slice() {
        [version, code, ..] if version.starts_with("HTTP/1.") => code
            .parse::<u16>()
            .map_err(|_| format!("bad status line {status_line:?}"))?,
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

/// A chunked body's data. Each round consumes one chunk, so the loop ends.
fn dechunk(mut rest: &str) -> Result<String, String> {
    let mut body = String::new();
    loop {
        let (size_line, after) = rest
            .split_once("\r\n")
            .ok_or("chunked body without a size line")?;
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_line:?}"))?;
        if size == 0 {
            return Ok(body);
        }
        let chunk = after.get(..size).ok_or("chunk shorter than its size")?;
        body.push_str(chunk);
        rest = after
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or("chunk not followed by CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_answers() {
        let plain = parse(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno").unwrap();
        assert_eq!((plain.status, plain.body.as_str()), (403, "no"));
        let chunked =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.body.as_str()), (200, "abcde"));
        assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
        assert!(parse(b"garbage").is_err());
        assert!(parse(b"SSH-2.0 x\r\n\r\n").is_err());
    }
}
