//! Traefik v3 (bench/proxies/traefik*.yml.template): `forwardAuth` to portcullis'
//! `/oauth2/forward-auth`.

use std::path::Path;
use std::process::Command;

use portcullis_testkit::free_port;

use crate::processes::Processes;

use super::{render, wait_ready, Upstreams};

/// Starts Traefik as `traefik` and returns its port.
pub fn start(live: &mut Processes, repo: &Path, dir: &Path, up: &Upstreams) -> anyhow::Result<u16> {
    let port = free_port();
    render(
        repo,
        "traefik-dynamic.yml.template",
        &[
            ("NULL_AUTH", up.null_auth.clone()),
            ("PORTCULLIS", up.portcullis.clone()),
            ("PORTCULLIS_NOCACHE", up.portcullis_nocache.clone()),
            ("APP", up.app.clone()),
        ],
        dir,
        "traefik-dynamic.yml",
    )?;
    let conf = render(
        repo,
        "traefik.yml.template",
        &[
            ("LISTEN", format!("127.0.0.1:{port}")),
            ("DIR", dir.display().to_string()),
        ],
        dir,
        "traefik.yml",
    )?;
    let mut command = Command::new("traefik");
    command
        .arg(format!("--configFile={}", conf.display()))
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir);
    let child = live.spawn("traefik", command, dir)?;
    // Listening is not routing: the file provider loads after the entry point listens, and
    // until then every path is Traefik's own 404.
    wait_ready(child, port, "/open/")?;
    Ok(port)
}
