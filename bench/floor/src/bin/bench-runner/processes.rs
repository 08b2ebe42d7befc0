//! The programs the runner starts, as one set: found, started (optionally under `perf record`)
//! with a clean environment, checked between rounds, and stopped in reverse order when dropped.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use portcullis_testkit::process::ChildGuard;
use portcullis_testkit::{raw_http, Idp, RedisServer};

use crate::options::Options;

/// How long a server gets to answer its readiness check.
pub const STARTUP: Duration = Duration::from_secs(30);
/// `perf record` needs a while to write its data once its program is stopped.
const PERF_STOP_GRACE: Duration = Duration::from_secs(60);

/// The binaries built next to the runner (bash bench/run.sh builds both).
pub struct Binaries {
    pub portcullis: PathBuf,
    pub floor: PathBuf,
    /// The runner itself, for `bench-runner memory-server`.
    pub runner: PathBuf,
}

impl Binaries {
    pub fn find() -> anyhow::Result<Binaries> {
        let runner = std::env::current_exe()?;
        let dir = runner
            .parent()
            .ok_or_else(|| anyhow!("no directory for the runner"))?
            .to_path_buf();
        let binaries = Binaries {
            portcullis: dir.join("portcullis"),
            floor: dir.join("floor"),
            runner,
        };
        for bin in [&binaries.portcullis, &binaries.floor] {
            if !bin.is_file() {
                bail!("{} is missing: build with bash bench/run.sh", bin.display());
            }
        }
        Ok(binaries)
    }
}

/// A started program, and the pid to measure when it runs under `perf record`.
pub struct Child {
    guard: ChildGuard,
    measured: Option<u32>,
}

impl Child {
    pub fn name(&self) -> &str {
        self.guard.name()
    }

    /// The pid to measure (CPU, RSS): the process itself, or the one it wraps.
    pub fn pid(&self) -> u32 {
        self.measured.unwrap_or_else(|| self.own_pid())
    }

    pub fn own_pid(&self) -> u32 {
        self.guard.pid().unwrap_or(0)
    }

    /// With --perf, CPU and RSS are read from the program perf started, not from perf.
    pub fn measure_wrapped(&mut self, options: &Options) -> anyhow::Result<()> {
        if options.callgrind {
            // valgrind runs the program in its own process: the pid is the program's.
            self.guard.set_stop_grace(PERF_STOP_GRACE);
        }
        if options.perf {
            let inner = children_of(self.own_pid())
                .first()
                .copied()
                .context("perf record has no child")?;
            self.measured = Some(inner);
            self.guard.set_stop_grace(PERF_STOP_GRACE);
        }
        Ok(())
    }

    pub fn wait_until<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        probe: impl FnMut() -> Result<T, String>,
    ) -> anyhow::Result<T> {
        self.guard
            .try_wait_until(what, timeout, probe)
            .map_err(|e| anyhow!(e))
    }
}

/// Everything that was started. Redis and the IdP come first and go last.
pub struct Processes {
    /// Stopped in reverse order by Drop, before the fields below are dropped.
    children: Vec<Child>,
    // Field order is drop order: the IdP, then Redis (the reverse of their start).
    pub idp: Idp,
    pub redis: RedisServer,
}

impl Processes {
    pub fn new(redis: RedisServer, idp: Idp) -> Processes {
        Processes {
            children: Vec::new(),
            idp,
            redis,
        }
    }

    /// Every program by name, in start order, with the pid to measure.
    fn named_pids(&self) -> Vec<(String, u32, u32)> {
        let mut all = vec![
            ("redis".to_string(), self.redis.pid().unwrap_or(0)),
            ("idp".to_string(), self.idp.pid().unwrap_or(0)),
        ]
        .into_iter()
        .map(|(name, pid)| (name, pid, pid))
        .collect::<Vec<_>>();
        all.extend(
            self.children
                .iter()
                .map(|c| (c.name().to_string(), c.own_pid(), c.pid())),
        );
        all
    }

    /// The pid to measure of program `name` (0 if there is none).
    pub fn pid(&self, name: &str) -> u32 {
        self.named_pids()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map_or(0, |(_, _, pid)| pid)
    }

    /// Every program's pid to measure, by name.
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.named_pids()
            .into_iter()
            .map(|(name, _, pid)| (name, pid))
            .collect()
    }

    fn get(&mut self, name: &str) -> anyhow::Result<&mut Child> {
        self.children
            .iter_mut()
            .find(|c| c.name() == name)
            .ok_or_else(|| anyhow!("no process {name}"))
    }

    /// Starts `command` as `name`, its output in `dir/NAME.log`.
    pub fn spawn(
        &mut self,
        name: &str,
        command: Command,
        dir: &Path,
    ) -> anyhow::Result<&mut Child> {
        let guard = ChildGuard::try_spawn(name, command, &dir.join(format!("{name}.log")))
            .map_err(|e| anyhow!(e))?;
        self.children.push(Child {
            guard,
            measured: None,
        });
        self.get(name)
    }

    /// Starts `command` as `name` (log in `dir`) and waits until `path` on `port` answers 200.
    pub fn spawn_until_ok(
        &mut self,
        name: &str,
        command: Command,
        dir: &Path,
        port: u16,
        path: &str,
    ) -> anyhow::Result<&mut Child> {
        let child = self.spawn(name, command, dir)?;
        child.wait_until(&format!("200 on {path}"), STARTUP, || {
            match http_status(port, path)? {
                200 => Ok(()),
                other => Err(format!("status {other}")),
            }
        })?;
        Ok(child)
    }

    /// Stops program `name` now and forgets it.
    pub fn stop(&mut self, name: &str) {
        if let Some(index) = self.children.iter().position(|c| c.name() == name) {
            // Dropping the guard stops the program.
            drop(self.children.remove(index));
        }
    }

    /// Every pid of the bench: our children, what perf wraps, and their children (nginx workers).
    pub fn all_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for (_, own, measured) in self.named_pids() {
            for pid in [own, measured] {
                if !pids.contains(&pid) {
                    pids.push(pid);
                    pids.extend(children_of(pid));
                }
            }
        }
        pids
    }

    /// An error naming the first program that has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        self.redis.ensure_running().map_err(|e| anyhow!(e))?;
        self.idp.ensure_running().map_err(|e| anyhow!(e))?;
        for child in &mut self.children {
            child.guard.ensure_running().map_err(|e| anyhow!(e))?;
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        while let Some(child) = self.children.pop() {
            drop(child);
        }
    }
}

/// The status of GET 127.0.0.1:`port``path` (HTTP/1.0, 2 s timeouts).
pub fn http_status(port: u16, path: &str) -> Result<u16, String> {
    raw_http::get_url(&format!("http://127.0.0.1:{port}{path}")).map(|r| r.status)
}

/// `program` with exactly `env` (plus PATH, HOME, TMPDIR), as a container would run it.
pub fn clean_command<'a>(
    program: &Path,
    env: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    command.envs(env);
    command
}

/// `program`, or `perf record ... -- program` with --perf (data in bench/results/tmp-perf-NAME.data).
/// With `env`, the environment is exactly that (plus PATH, HOME, TMPDIR).
pub fn launcher(
    options: &Options,
    name: &str,
    program: &Path,
    env: Option<&HashMap<String, String>>,
) -> Command {
    let start = |program: &Path| match env {
        Some(env) => clean_command(program, env),
        None => Command::new(program),
    };
    if options.callgrind {
        let mut command = start(Path::new("valgrind"));
        command
            .args(["--tool=callgrind", "--quiet"])
            .arg(format!(
                "--callgrind-out-file={}",
                options
                    .repo
                    .join(format!("bench/results/tmp-callgrind-{name}.out"))
                    .display()
            ))
            .arg(program);
        return command;
    }
    if !options.perf {
        return start(program);
    }
    let mut command = start(Path::new("perf"));
    command
        .args(["record", "-e", "task-clock", "-F", "999"])
        .args(["--call-graph", "dwarf,16384", "-o"])
        .arg(
            options
                .repo
                .join(format!("bench/results/tmp-perf-{name}.data")),
        )
        .arg("--")
        .arg(program);
    command
}

/// PIDs of the direct children of `pid` (nginx workers, what perf runs).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.to_string();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}
