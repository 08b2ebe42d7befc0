//! A real redis-server on loopback, that tests can stop and bring back on
//! the same port (to check how portcullis behaves while Redis is away).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::paths::require_program;
use super::ports::free_port;
use super::process::{run_with_timeout, ChildGuard};
use super::wait::{poll_until, STARTUP_TIMEOUT};

const INSTALL_HINT: &str = "apt-get install redis-server";

pub struct RedisServer {
    port: u16,
    dir: TempDir,
    child: Option<ChildGuard>,
}

impl RedisServer {
    /// Starts redis-server on a free port, without persistence.
    pub fn start() -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-redis-")
            .tempdir()
            .expect("temp dir for redis");
        let mut redis = RedisServer {
            port: free_port(),
            dir,
            child: None,
        };
        redis.launch();
        redis
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` (valid whether or not the server is running).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(ChildGuard::is_running)
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
        super::process::log_tail(&self.log_path(), lines)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    fn launch(&mut self) {
        let binary = require_program("redis-server", INSTALL_HINT);
        let mut command = Command::new(binary);
        command
            .args(["--port", &self.port.to_string()])
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
            command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "PING"]);
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
