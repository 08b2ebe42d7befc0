//! nginx (bench/proxies/nginx.conf.template): `auth_request` to portcullis' `/oauth2/auth`.

use std::path::Path;
use std::process::Command;

use portcullis_testkit::free_port;
use portcullis_testkit::proxies::nginx::compiled_temp_path_modules;

use crate::caught::caught;
use crate::processes::Processes;

use super::{render, wait_ready, Upstreams};

/// Starts nginx (2 workers) as `nginx` and returns its port.
pub fn start(live: &mut Processes, repo: &Path, dir: &Path, up: &Upstreams) -> anyhow::Result<u16> {
    let port = free_port();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let conf = render(
        repo,
        "nginx.conf.template",
        &[
            ("USER", if root { "user root;" } else { "" }.to_string()),
            ("DIR", dir.display().to_string()),
            ("TEMP_PATHS", temp_paths(dir)?),
            ("NULL_AUTH", up.null_auth.clone()),
            ("PORTCULLIS", up.portcullis.clone()),
            ("PORTCULLIS_NOCACHE", up.portcullis_nocache.clone()),
            ("APP", up.app.clone()),
            ("LISTEN", format!("127.0.0.1:{port}")),
        ],
        dir,
        "nginx.conf",
    )?;
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(format!("{}/", dir.display()))
        .arg("-c")
        .arg(&conf)
        .args(["-e", "stderr"]);
    let child = live.spawn("nginx", command, dir)?;
    wait_ready(child, port, "/open/")?;
    Ok(port)
}

/// The temp paths of the modules this nginx has, in the run's folder (as the tests' nginx).
fn temp_paths(dir: &Path) -> anyhow::Result<String> {
    let modules = caught("nginx -V", || {
        compiled_temp_path_modules(Path::new("nginx"))
    })?;
    Ok(modules
        .into_iter()
        .map(|m| format!("    {m}_temp_path {}/{m};\n", dir.display()))
        .collect())
}
