//! redis-cli against one loopback port, bounded: the cluster and Sentinel launchers ask their
//! nodes many small questions while they wait, and a node that hangs must not hang the test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use crate::paths::require_program;
use crate::process::{try_run_with_timeout, ChildGuard};
use crate::wait::STARTUP_TIMEOUT;

const INSTALL_HINT: &str = "apt-get install redis-tools";

/// One redis-cli call: generous for a loaded machine, far shorter than the waits around it.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `redis-cli -e -h 127.0.0.1 -p PORT args...` and returns its stdout, trimmed. `-e` makes
/// an error reply a failure: without it redis-cli prints the error and exits 0.
pub fn try_cli(port: u16, args: &[&str]) -> Result<String, String> {
    run(port, &[], args)
}

/// [`try_cli`] with `-c`: a key command sent to the wrong cluster node follows MOVED and ASK.
pub fn try_cli_following_redirects(port: u16, args: &[&str]) -> Result<String, String> {
    run(port, &["-c"], args)
}

/// [`try_cli`], panicking with redis-cli's output if it fails.
pub fn cli(port: u16, args: &[&str]) -> String {
    try_cli(port, args).unwrap_or_else(|e| panic!("{e}"))
}

/// The certificates redis-cli needs for a port that speaks TLS only: `--cacert`, `--cert`,
/// `--key`.
#[derive(Debug, Clone)]
pub struct CliTls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CliTls {
    pub fn args(&self) -> Vec<std::ffi::OsString> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.clone().into(),
            "--cert".into(),
            self.cert.clone().into(),
            "--key".into(),
            self.key.clone().into(),
        ]
    }
}

/// Ports that speak TLS only, with what redis-cli presents there. Ports are unique within the
/// test process (free_port), so the helpers above reach a TLS node as they reach any other.
static TLS_PORTS: Mutex<Option<HashMap<u16, CliTls>>> = Mutex::new(None);

/// From now on, redis-cli talks TLS to `port` with `tls`.
pub fn speak_tls_to(port: u16, tls: CliTls) {
    let mut ports = TLS_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    ports.get_or_insert_with(HashMap::new).insert(port, tls);
}

/// redis-cli's TLS arguments for `port` (none for a plain port).
pub fn tls_args(port: u16) -> Vec<std::ffi::OsString> {
    let ports = TLS_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    ports
        .as_ref()
        .and_then(|ports| ports.get(&port))
        .map(CliTls::args)
        .unwrap_or_default()
}

fn run(port: u16, options: &[&str], args: &[&str]) -> Result<String, String> {
    let mut command = Command::new(require_program("redis-cli", INSTALL_HINT));
    command
        .arg("-e")
        .args(options)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(tls_args(port))
        .args(args);
    let output = try_run_with_timeout(command, CLI_TIMEOUT)?;
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "redis-cli -p {port} {args:?} failed ({}): {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Waits until the redis-server (or Sentinel) in `child` answers PING on `port`: accepting TCP
/// is not quite ready, it may still be loading. Panics with the log tail if it does not.
pub fn wait_for_pong(child: &mut ChildGuard, port: u16) {
    child.wait_for_tcp(port, STARTUP_TIMEOUT);
    child.wait_until(
        &format!("redis on {port} to answer PING"),
        STARTUP_TIMEOUT,
        || match try_cli(port, &["PING"])? {
            answer if answer == "PONG" => Ok(()),
            answer => Err(format!("PING answered {answer:?}")),
        },
    );
}

/// The `field:value` lines of an INFO-style answer (`CLUSTER INFO`, `INFO replication`).
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_info_fields() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\nmaster_port:7000\r\n";
        assert_eq!(info_field(info, "role"), Some("slave"));
        assert_eq!(info_field(info, "master_link_status"), Some("up"));
        assert_eq!(info_field(info, "master"), None);
        assert_eq!(info_field(info, "missing"), None);
    }
}
