//! A real redis-server on loopback, that tests can stop and bring back on
//! the same port (to check how portcullis behaves while Redis is away).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::paths::require_program;
use crate::ports::free_port;
use crate::process::{run_with_timeout, ChildGuard};
use crate::redis_cli::CliTls;
use crate::tls::TestPki;
use crate::wait::{poll_until, STARTUP_TIMEOUT};
use crate::workdir::Workdir;

const INSTALL_HINT: &str = "apt-get install redis-server";

pub struct RedisServer {
    port: u16,
    /// Served over TLS only (`--port 0`), with these certificates; clients must present one.
    tls: Option<TlsFiles>,
    // Declared before `dir` so the server stops before its folder goes away.
    child: Option<ChildGuard>,
    dir: Workdir,
}

impl RedisServer {
    /// Starts redis-server on a free port, without persistence, in a temporary folder.
    pub fn start() -> RedisServer {
        Self::start_with(Workdir::temp("redis"))
    }

    /// The same, with its log (`redis.log`) in `dir`, which is kept.
    pub fn start_in(dir: &Path) -> RedisServer {
        Self::start_with(Workdir::kept(dir))
    }

    /// A server that speaks TLS only, with `pki`'s server certificate, and requires a client
    /// certificate of `pki`'s CA (`tls-auth-clients yes`).
    pub fn start_tls(pki: &TestPki) -> RedisServer {
        let mut redis = RedisServer {
            port: free_port(),
            tls: Some(TlsFiles {
                ca: pki.ca(),
                cert: pki.server_cert(),
                key: pki.server_key(),
                cli: CliTls {
                    ca: pki.ca(),
                    cert: pki.client_cert(),
                    key: pki.client_key(),
                },
            }),
            child: None,
            dir: Workdir::temp("redis-tls"),
        };
        redis.launch();
        redis
    }

    fn start_with(dir: Workdir) -> RedisServer {
        let mut redis = RedisServer {
            port: free_port(),
            tls: None,
            child: None,
            dir,
        };
        redis.launch();
        redis
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (`rediss://` over TLS; valid whether or not the server is
    /// running).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(ChildGuard::is_running)
    }

    /// The server's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(ChildGuard::pid)
    }

    /// An error with the log tail if the server has exited (Ok while stopped on purpose).
    pub fn ensure_running(&mut self) -> Result<(), String> {
        self.child
            .as_mut()
            .map_or(Ok(()), ChildGuard::ensure_running)
    }

    /// Stops the server (SIGTERM); the port stays reserved for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
        // Stopped means refusing connections, not merely signalled.
        let port = self.port;
        poll_until(
            &format!("redis on {port} to stop listening"),
            STARTUP_TIMEOUT,
            || match std::net::TcpStream::connect(("127.0.0.1", port)) {
                Ok(_) => Err("still accepting".to_string()),
                Err(_) => Ok(()),
            },
        )
        .expect("redis stops listening");
    }

    /// Stops (if running) and starts again on the SAME port, empty
    /// (no persistence), as after a crash of a cache-only Redis.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Runs `redis-cli -h 127.0.0.1 -p PORT args...` and returns its stdout
    /// (trimmed). Panics if redis-cli fails or hangs.
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = require_program("redis-cli", "apt-get install redis-tools");
        let mut command = Command::new(cli);
        command
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(self.cli_tls_args())
            .args(args);
        let output = run_with_timeout(command, Duration::from_secs(10));
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_string();
        assert!(
            output.status.success(),
            "redis-cli {args:?} failed ({}): {stdout} {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log_path(), lines)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// What redis-cli needs to reach this server over TLS (nothing without TLS).
    fn cli_tls_args(&self) -> Vec<std::ffi::OsString> {
        self.tls
            .as_ref()
            .map(|tls| tls.cli.args())
            .unwrap_or_default()
    }

    fn launch(&mut self) {
        let binary = require_program("redis-server", INSTALL_HINT);
        let mut command = Command::new(binary);
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.cert)
                .arg("--tls-key-file")
                .arg(&tls.key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca)
                .args(["--tls-auth-clients", "yes"]),
        };
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            // Log to stdout so it lands in the harness log file.
            .args(["--logfile", ""]);
        let mut child = ChildGuard::spawn("redis-server", command, &self.log_path());
        child.wait_for_tcp(self.port, STARTUP_TIMEOUT);
        // Accepting TCP is not quite ready (it may still be loading): wait for PONG.
        child.wait_until("redis PING", STARTUP_TIMEOUT, || {
            let cli = require_program("redis-cli", "apt-get install redis-tools");
            let mut command = Command::new(cli);
            command
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(self.cli_tls_args())
                .arg("PING");
            let output = run_with_timeout(command, Duration::from_secs(5));
            let answer = String::from_utf8_lossy(&output.stdout).trim().to_string();
            if answer == "PONG" {
                Ok(())
            } else {
                Err(format!("PING answered {answer:?}"))
            }
        });
        self.child = Some(child);
    }
}

/// A TLS server's certificates, and the client certificate redis-cli presents to it.
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    /// What redis-cli presents to it.
    cli: CliTls,
}
