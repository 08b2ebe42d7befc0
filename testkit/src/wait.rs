//! Bounded waiting: every loop here has a deadline, and failures say what
//! was awaited and what was last seen.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::raw_http;

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
        let response = raw_http::get_url(url)?;
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

/// The first few hundred characters of a body, for error messages.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}
