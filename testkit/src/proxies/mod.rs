//! Real reverse proxies (Traefik, nginx, Caddy) running the configuration
//! files of examples/, unchanged, on a free loopback port.

mod caddy;
pub mod nginx;
mod traefik;

use std::path::Path;
use std::time::Duration;

use crate::process::ChildGuard;
use crate::workdir::Workdir;

pub use caddy::Caddy;
pub use nginx::Nginx;
pub use traefik::Traefik;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    Traefik,
    Nginx,
    Caddy,
}

/// A running proxy. Dropping it stops the program, then removes its files.
pub struct Proxy {
    // Declared before `dir` so the program stops before its files go away.
    child: ChildGuard,
    kind: ProxyKind,
    port: u16,
    dir: Workdir,
}

impl Proxy {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn kind(&self) -> ProxyKind {
        self.kind
    }

    /// Where the rendered configuration and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.child.log_tail(lines)
    }

    /// Stops the proxy now (also done on Drop).
    pub fn stop(&mut self) {
        self.child.stop();
    }
}

/// The per-route rule the examples put on the auth URL of their `/ops/` route. A test may run
/// an example with another rule there (`start_with_ops_rule` of each proxy): the file is
/// derived from the example at run time with that one rule changed, so the two cannot drift
/// apart.
pub const EXAMPLE_OPS_RULE: &str = "require_group=ops";

/// `text` (the example `file`) with its one `needle` replaced; panics unless there is exactly
/// one, so that a derived fixture never silently stops differing from the example.
pub(crate) fn replace_once(text: &str, file: &str, needle: &str, replacement: &str) -> String {
    assert_eq!(
        text.matches(needle).count(),
        1,
        "{file} should contain exactly one `{needle}` to derive the test fixture from"
    );
    text.replace(needle, replacement)
}

/// Proxies get a little longer than other programs: Traefik loads its file
/// provider asynchronously after it already listens.
pub(crate) const PROXY_STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
