//! Caddy 2 (bench/proxies/Caddyfile.template): `forward_auth` to portcullis'
//! `/oauth2/forward-auth`.

use std::path::Path;
use std::process::Command;

use portcullis_testkit::free_port;

use crate::processes::Processes;

use super::{render, wait_ready, Upstreams};

/// Starts Caddy as `caddy` and returns its port.
pub fn start(live: &mut Processes, repo: &Path, dir: &Path, up: &Upstreams) -> anyhow::Result<u16> {
    let port = free_port();
    let conf = render(
        repo,
        "Caddyfile.template",
        &[
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("NULL_AUTH", up.null_auth.clone()),
            ("PORTCULLIS", up.portcullis.clone()),
            ("PORTCULLIS_NOCACHE", up.portcullis_nocache.clone()),
            ("APP", up.app.clone()),
        ],
        dir,
        "Caddyfile",
    )?;
    let data = dir.join("caddy-data");
    let mut command = Command::new("caddy");
    command
        .arg("run")
        .arg("--config")
        .arg(&conf)
        .args(["--adapter", "caddyfile"])
        .current_dir(dir)
        // Caddy keeps state (autosave.json, certificates) under these: in the run's folder.
        .env("HOME", &data)
        .env("XDG_DATA_HOME", data.join("data"))
        .env("XDG_CONFIG_HOME", data.join("config"));
    let child = live.spawn("caddy", command, dir)?;
    wait_ready(child, port, "/open/")?;
    Ok(port)
}
