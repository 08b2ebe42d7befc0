//! Caddy 2 with examples/caddy/Caddyfile.

use std::fs;
use std::process::Command;

use crate::paths::{repo_file, require_program};
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::workdir::Workdir;

use super::{replace_once, Proxy, ProxyKind, EXAMPLE_OPS_RULE, PROXY_STARTUP_TIMEOUT};

const INSTALL_HINT: &str = "apt-get install caddy";

/// The line of the example that the `naive_uri` variant changes.
const SAFE_URI_LINE: &str = "uri /oauth2/forward-auth?\n";
const NAIVE_URI_LINE: &str = "uri /oauth2/forward-auth\n";

pub struct Caddy;

impl Caddy {
    /// `portcullis_hostport` and `app_hostport` like `127.0.0.1:4180`.
    ///
    /// `naive_uri: true` runs a NEGATIVE fixture instead of the example: the
    /// same Caddyfile with `uri /oauth2/forward-auth` (no trailing "?"), so
    /// Caddy appends the visited page's query to the auth URL. It is derived
    /// from the example at run time so the two can never drift apart.
    pub fn start(portcullis_hostport: &str, app_hostport: &str, naive_uri: bool) -> Proxy {
        Self::start_derived(portcullis_hostport, app_hostport, naive_uri, None)
    }

    /// The example (never the naive variant), but the `/ops/` route's `forward_auth` carries
    /// `ops_rule` (e.g. `provider=corp`) instead of [`EXAMPLE_OPS_RULE`]: derived from the
    /// example at run time, that one rule changed.
    pub fn start_with_ops_rule(
        portcullis_hostport: &str,
        app_hostport: &str,
        ops_rule: &str,
    ) -> Proxy {
        Self::start_derived(portcullis_hostport, app_hostport, false, Some(ops_rule))
    }

    fn start_derived(
        portcullis_hostport: &str,
        app_hostport: &str,
        naive_uri: bool,
        ops_rule: Option<&str>,
    ) -> Proxy {
        let binary = require_program("caddy", INSTALL_HINT);
        let dir = Workdir::temp("caddy");
        let port = free_port();

        let example = repo_file("examples/caddy/Caddyfile");
        let config = if naive_uri {
            let text = fs::read_to_string(&example).expect("read examples/caddy/Caddyfile");
            assert_eq!(
                text.matches(SAFE_URI_LINE).count(),
                1,
                "examples/caddy/Caddyfile should contain exactly one `{}` line to derive the naive fixture from",
                SAFE_URI_LINE.trim()
            );
            let naive = dir.path().join("Caddyfile.naive-uri");
            fs::write(&naive, text.replace(SAFE_URI_LINE, NAIVE_URI_LINE))
                .expect("write naive Caddyfile");
            naive
        } else if let Some(rule) = ops_rule {
            let text = fs::read_to_string(&example).expect("read examples/caddy/Caddyfile");
            let derived = dir.path().join("Caddyfile.derived");
            let changed = replace_once(
                &text,
                "examples/caddy/Caddyfile",
                &format!("uri /oauth2/forward-auth?{EXAMPLE_OPS_RULE}\n"),
                &format!("uri /oauth2/forward-auth?{rule}\n"),
            );
            fs::write(&derived, changed).expect("write derived Caddyfile");
            derived
        } else {
            example
        };

        let mut command = Command::new(binary);
        command
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(["--adapter", "caddyfile"])
            .current_dir(dir.path())
            // Caddy keeps state (autosave.json, certificates) under these.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("SITE_ADDRESS", format!("http://127.0.0.1:{port}"))
            .env("PORTCULLIS_UPSTREAM", portcullis_hostport)
            .env("APP_UPSTREAM", app_hostport)
            .env("CADDY_ADMIN", "off");
        let mut child = ChildGuard::spawn("caddy", command, &dir.path().join("caddy.log"));
        // Caddy provisions the whole configuration before it listens.
        child.wait_for_tcp(port, PROXY_STARTUP_TIMEOUT);
        Proxy {
            child,
            kind: ProxyKind::Caddy,
            port,
            dir,
        }
    }
}
