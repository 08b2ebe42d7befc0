//! Owning a child program: its log file, bounded waits on it, and stopping it on Drop.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::wait::{self, POLL_INTERVAL};

/// How long a program gets to exit after SIGTERM before it is SIGKILLed, unless its guard
/// says otherwise ([`ChildGuard::set_stop_grace`]).
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// Lines of the log shown when a program fails.
const TAIL_LINES: usize = 40;

static KILL_WITH_PARENT: AtomicBool = AtomicBool::new(false);

/// From now on, every program this process starts through [`ChildGuard`] is killed by the
/// kernel (PR_SET_PDEATHSIG) when the thread that started it ends, so that a runner killed
/// outright leaves nothing running. Opt-in, for a runner that starts everything from its main
/// thread (the bench): tests start programs from many threads, and some of those threads end
/// while their programs are still in use.
pub fn kill_children_with_parent() {
    KILL_WITH_PARENT.store(true, Ordering::Relaxed);
}

/// A running program. Dropping the guard stops it (SIGTERM, then SIGKILL).
/// stdout and stderr both go to one log file, appended, so a restarted
/// program keeps the earlier history in the same file.
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
    stop_grace: Duration,
}

impl ChildGuard {
    /// Starts `command` with stdin closed and its output in `log_path`; panics if it cannot.
    pub fn spawn(name: &str, command: Command, log_path: &Path) -> ChildGuard {
        Self::try_spawn(name, command, log_path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ChildGuard::spawn`], with the failure as an error.
    pub fn try_spawn(
        name: &str,
        mut command: Command,
        log_path: &Path,
    ) -> Result<ChildGuard, String> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(|e| format!("open log file {} for {name}: {e}", log_path.display()))?;
        // A marker so a restarted program's lines can be told apart.
        let _ = writeln!(log, "=== harness: starting {name}: {command:?}");
        let stderr = log
            .try_clone()
            .map_err(|e| format!("clone log file handle for {name}: {e}"))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr));
        if KILL_WITH_PARENT.load(Ordering::Relaxed) {
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("failed to start {name} ({command:?}): {e}"))?;
        Ok(ChildGuard {
            name: name.to_string(),
            child: Some(child),
            log_path: log_path.to_path_buf(),
            stop_grace: STOP_GRACE,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// None once stopped.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// How long [`ChildGuard::stop`] waits after SIGTERM (a profiler writing its data needs
    /// far longer than a server).
    pub fn set_stop_grace(&mut self, grace: Duration) {
        self.stop_grace = grace;
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

    /// An error naming the program and showing the end of its log if it has exited.
    pub fn ensure_running(&mut self) -> Result<(), String> {
        match self.exit_status() {
            Some(status) => Err(format!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(TAIL_LINES)
            )),
            None => Ok(()),
        }
    }

    /// Sends SIGTERM and returns at once, the program still owned (waited for with
    /// [`ChildGuard::exit_status`], stopped for good by [`ChildGuard::stop`] or Drop): for
    /// tests of what a program does while it shuts down.
    pub fn terminate(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: kill(2) on our own child, which has not been reaped (so the pid is still its).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
    }

    /// SIGTERM, wait up to the stop grace, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM lets servers shut down the way they do in production.
        // SAFETY: kill(2) on our own child, which has not been reaped (so the pid is still its).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + self.stop_grace;
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
        self.try_wait_for_http(url, timeout, accept)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ChildGuard::wait_for_http`], with the failure as an error.
    pub fn try_wait_for_http(
        &mut self,
        url: &str,
        timeout: Duration,
        accept: impl Fn(u16) -> bool,
    ) -> Result<u16, String> {
        self.try_wait_until(&format!("HTTP GET {url}"), timeout, || {
            wait::wait_for_http(url, Duration::ZERO, &accept)
        })
    }

    /// Polls `probe` until Ok; panics with the log tail on timeout or if the
    /// program exits first.
    pub fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        self.try_wait_until(what, timeout, probe)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`ChildGuard::wait_until`], with the failure (and the log tail) as an error.
    pub fn try_wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> Result<T, String> {
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
            Ok(Ok(value)) => Ok(value),
            Ok(Err(exited)) => Err(format!(
                "{exited}\n--- {} log tail ---\n{}",
                self.name,
                self.log_tail(TAIL_LINES)
            )),
            Err(timed_out) => Err(format!(
                "{}: {timed_out}\n--- log tail ---\n{}",
                self.name,
                self.log_tail(TAIL_LINES)
            )),
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
/// read on threads so a chatty command cannot block on a full pipe. Panics if it cannot start
/// or does not finish in time.
pub fn run_with_timeout(command: Command, timeout: Duration) -> Output {
    try_run_with_timeout(command, timeout).unwrap_or_else(|e| panic!("{e}"))
}

/// [`run_with_timeout`], with the failure as an error.
pub fn try_run_with_timeout(mut command: Command, timeout: Duration) -> Result<Output, String> {
    command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("failed to run {command:?}: {e}"))?;
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
        // SAFETY: kill(2) of the group the child leads (process_group(0) above).
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            kill_group(child.id());
            let _ = child.kill();
            let status = child
                .wait()
                .map_err(|e| format!("wait for {command:?}: {e}"))?;
            let out = out_reader.join().unwrap_or_default();
            let err = err_reader.join().unwrap_or_default();
            return Err(format!(
                "{command:?} did not finish within {timeout:?} and was killed ({status})\n\
                 --- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    kill_group(child.id());
    Ok(Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    })
}
