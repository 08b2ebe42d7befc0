//! The proxies in front of the echo app, one module each, all started from a template of
//! bench/proxies/ rendered into the run's folder: nginx, Traefik and Caddy (each with a route
//! straight to the app, one checked by the null auth server and two checked by portcullis),
//! and the peer, Apache with mod_auth_openidc.

pub mod apache;
pub mod caddy;
pub mod nginx;
pub mod traefik;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::processes::{http_status, Child, Processes, STARTUP};

/// The proxies in front of portcullis, in the order their rounds run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    Nginx,
    Traefik,
    Caddy,
}

impl Proxy {
    pub const ALL: [Proxy; 3] = [Proxy::Nginx, Proxy::Traefik, Proxy::Caddy];

    /// Its program name, and the first part of its scenarios' names.
    pub fn name(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Traefik => "traefik",
            Proxy::Caddy => "caddy",
        }
    }

    /// Starts it in front of `up` (its files in `dir`) and returns its port once it routes.
    pub fn start(
        self,
        live: &mut Processes,
        repo: &Path,
        dir: &Path,
        up: &Upstreams,
    ) -> anyhow::Result<u16> {
        match self {
            Proxy::Nginx => nginx::start(live, repo, dir, up),
            Proxy::Traefik => traefik::start(live, repo, dir, up),
            Proxy::Caddy => caddy::start(live, repo, dir, up),
        }
    }
}

/// Where each proxy sends what (host:port, loopback).
pub struct Upstreams {
    /// The echo app behind every route.
    pub app: String,
    /// Floor A as the auth server: answers 200 with identity headers to any request.
    pub null_auth: String,
    /// portcullis with the Redis store, session cache on.
    pub portcullis: String,
    /// The same with the session cache off.
    pub portcullis_nocache: String,
}

/// The paths of the routes nginx, Traefik and Caddy serve, in the order the rounds run:
/// (scenario suffix, path).
pub const ROUTES: [(&str, &str); 4] = [
    ("direct", "/open/"),
    ("null-auth", "/null/"),
    ("portcullis", "/protected/"),
    ("portcullis-nocache", "/nocache/"),
];

/// bench/proxies/`file` with every `@NAME@` of `vars` replaced, written to `dir/out`; an error
/// names any placeholder left over.
pub fn render(
    repo: &Path,
    file: &str,
    vars: &[(&str, String)],
    dir: &Path,
    out: &str,
) -> anyhow::Result<PathBuf> {
    let source = repo.join("bench/proxies").join(file);
    let mut text =
        std::fs::read_to_string(&source).with_context(|| format!("read {}", source.display()))?;
    for (name, value) in vars {
        text = text.replace(&format!("@{name}@"), value);
    }
    if let Some(left) = leftover_placeholder(&text) {
        bail!("bench/proxies/{file} has a placeholder the runner does not fill: @{left}@");
    }
    let path = dir.join(out);
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// The first `@NAME@` (capitals, digits and `_`) in `text` outside `#` comments (every
/// template's syntax has them, and their headers name the placeholders).
fn leftover_placeholder(text: &str) -> Option<&str> {
    text.lines()
        .filter_map(|line| line.split('#').next())
        .find_map(|code| {
            let pieces: Vec<&str> = code.split('@').collect();
            let inner = pieces.get(1..pieces.len().saturating_sub(1))?;
            inner.iter().copied().find(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            })
        })
}

/// Waits until `path` on `port` answers 200 through the proxy (routes loaded, upstream up).
pub fn wait_ready(child: &mut Child, port: u16, path: &str) -> anyhow::Result<()> {
    child.wait_until(&format!("200 on {path}"), STARTUP, || {
        match http_status(port, path)? {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::leftover_placeholder;

    #[test]
    fn finds_only_placeholders() {
        assert_eq!(leftover_placeholder("a @APP@ b"), Some("APP"));
        assert_eq!(leftover_placeholder("user@example.com @ops path"), None);
        assert_eq!(leftover_placeholder("x @ y @NULL_AUTH@"), Some("NULL_AUTH"));
        assert_eq!(leftover_placeholder("@@ done"), None);
        assert_eq!(
            leftover_placeholder("# (@NAME@ placeholders)\nlisten 1;"),
            None
        );
        assert_eq!(
            leftover_placeholder("a\nlisten @LISTEN@; # @X@"),
            Some("LISTEN")
        );
    }
}
