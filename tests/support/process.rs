//! Owning a child program: its log file, and stopping it on Drop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use super::wait::{self, POLL_INTERVAL};

/// How long a program gets to exit after SIGTERM before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A running program. Dropping the guard stops it (SIGTERM, then SIGKILL).
/// stdout and stderr both go to one log file, appended, so a restarted
/// program keeps the earlier history in the same file.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ChildGuard {
    /// Starts `command` with stdin closed and its output in `log_path`.
    pub fn spawn(name: &str, mut command: Command, log_path: &Path) -> ChildGuard {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .unwrap_or_else(|e| panic!("open log file {} for {name}: {e}", log_path.display()));
        // A marker so a restarted program's lines can be told apart.
        let _ = writeln!(log, "=== harness: starting {name}: {command:?}");
        let stderr = log.try_clone().expect("clone log file handle for stderr");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("failed to start {name} ({command:?}): {e}"));
        ChildGuard {
            name: name.to_string(),
            child: Some(child),
            log_path: log_path.to_path_buf(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the program's output.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    /// Some(status) once the program has exited (and was reaped).
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.exit_status().is_none()
    }

    /// SIGTERM, wait up to STOP_GRACE, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // `kill` the program rather than libc: no extra dependency, and
        // SIGTERM lets servers shut down the way they do in production.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGKILL at once: a crash, as opposed to `stop`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics (with the log tail) unless TCP `port` accepts within `timeout`,
    /// or at once if the program exits meanwhile.
    pub fn wait_for_tcp(&mut self, port: u16, timeout: Duration) {
        self.wait_until(&format!("TCP 127.0.0.1:{port}"), timeout, || {
            wait::wait_for_tcp(port, Duration::ZERO)
        });
    }

    /// Like `wait::wait_for_http`, failing with the log tail.
    pub fn wait_for_http(
        &mut self,
        url: &str,
        timeout: Duration,
        accept: impl Fn(u16) -> bool,
    ) -> u16 {
        self.wait_until(&format!("HTTP GET {url}"), timeout, || {
            wait::wait_for_http(url, Duration::ZERO, &accept)
        })
    }

    /// Polls `probe` until Ok; panics with the log tail on timeout or if the
    /// program exits first.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        let result = wait::poll_until(what, timeout, || {
            if let Some(status) = self.exit_status() {
                return Ok(Err(format!(
                    "{} exited ({status}) while waiting for {what}",
                    self.name
                )));
            }
            probe().map(Ok)
        });
        match result {
            Ok(Ok(value)) => value,
            Ok(Err(exited)) => panic!(
                "{exited}\n--- {} log tail ---\n{}",
                self.name,
                self.log_tail(40)
            ),
            Err(timed_out) => panic!(
                "{}: {timed_out}\n--- log tail ---\n{}",
                self.name,
                self.log_tail(40)
            ),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `lines` lines of a log file ("" if unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() {
        return String::new();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs a short-lived command in its own process group, killing the whole group if it takes
/// longer than `timeout` (and afterwards, so that no helper it started outlives it). Output is
/// read on threads so a chatty command cannot block on a full pipe.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Output {
    use std::os::unix::process::CommandExt;

    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let kill_group = |pid: u32| {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stderr(Stdio::null())
            .status();
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            let status = child.wait().expect("wait for killed command");
            let out = out_reader.join().unwrap_or_default();
            let err = err_reader.join().unwrap_or_default();
            panic!(
                "{command:?} did not finish within {timeout:?} and was killed ({status})\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    kill_group(child.id());
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}
