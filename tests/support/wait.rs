//! Bounded waiting: every loop here has a deadline, and failures say what
//! was awaited and what was last seen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How often to poll something that is not ready yet.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long a program gets to become ready, unless a caller says otherwise.
/// Generous: a loaded 2-core CI machine starting Traefik or node can take well over 15 s.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of one probe connection or request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Calls `probe` every POLL_INTERVAL until it returns Ok or `timeout` passes.
/// The error names `what` and carries the last probe error.
pub fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let last_error = match probe() {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "timed out after {timeout:?} waiting for {what}; last error: {last_error}"
            ));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_tcp(port: u16, timeout: Duration) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    poll_until(&format!("TCP {addr}"), timeout, || {
        TcpStream::connect_timeout(&addr, PROBE_TIMEOUT)
            .map(drop)
            .map_err(|e| e.to_string())
    })
}

/// Waits until GET `url` answers with a status that `accept` likes; returns it.
pub fn wait_for_http(
    url: &str,
    timeout: Duration,
    accept: impl Fn(u16) -> bool,
) -> Result<u16, String> {
    poll_until(&format!("HTTP GET {url}"), timeout, || {
        let response = raw_get(url)?;
        if accept(response.status) {
            Ok(response.status)
        } else {
            Err(format!(
                "status {} not accepted; body: {}",
                response.status,
                excerpt(&response.body)
            ))
        }
    })
}

/// What `raw_get` saw.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header lines as sent, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A minimal blocking HTTP/1.0 GET, for readiness probes that must not need
/// an async runtime (tests may be waiting inside one). HTTP/1.0 keeps the
/// answer unchunked and closes the connection, so reading to EOF is the body.
pub fn raw_get(url: &str) -> Result<RawResponse, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("bad url {url}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("raw_get speaks plain http only, not {url}"));
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
    let mut stream = TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(PROBE_TIMEOUT))
        .map_err(|e| e.to_string())?;
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
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // Bounded by the read timeout and by the size cap.
    Read::by_ref(&mut stream)
        .take(1 << 20)
        .read_to_end(&mut raw)
        .map_err(|e| e.to_string())?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<RawResponse, String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("no HTTP status line in answer: {}", excerpt(&text)))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Ok(RawResponse {
        status,
        headers,
        body: body.to_string(),
    })
}

/// The first few hundred characters of a body, for error messages.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}
