//! bench-runner: the whole portcullis benchmark in one process (see bench/README.md).
//!
//! Starts redis-server, the test IdP, two portcullis binaries (Redis store, memory store), the
//! floors, an echo app and nginx, all on loopback; signs in for real; then drives wrk
//! (separate processes) in interleaved rounds, checking the status of every answer.
//!
//! ```text
//! bench-runner [--smoke] [--duration S] [--reps N] [--connections 16,64]
//!              [--levels 1000,100000,1000000] [--memory-sessions N] [--out FILE]
//! bench-runner memory-server ...   (internal: see memory_server.rs)
//! ```

mod fill;
mod login;
mod memory_server;
mod procs;
mod report;
mod wrk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context};
use portcullis::crypto::Keys;
use portcullis::session::Store;
use serde::Serialize;
use serde_json::json;

use procs::Child;
use report::{Row, Target as Goal};
use wrk::{Round, Target};

const COOKIE_SECRET: &str = "bench-cookie-secret-0123456789abcdef-not-for-production";
const COOKIE_NAME: &str = "_portcullis";
const CLIENT_ID: &str = "portcullis-bench";
const USER: &str = "alice";
const PASSWORD: &str = "password";
const STARTUP: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize)]
struct Options {
    smoke: bool,
    duration_s: u32,
    repetitions: u32,
    connections: Vec<u32>,
    /// Sessions in Redis for the growth phase (the main phase runs at the first level).
    levels: Vec<u64>,
    memory_sessions: u64,
    warmup: bool,
    wrk_threads: u32,
    /// Only these main-phase scenarios, and no growth or memory phase (for profiling).
    only: Vec<String>,
    /// Run both portcullis binaries under `perf record` (bench/profile.sh).
    perf: bool,
    #[serde(skip)]
    out: Option<PathBuf>,
    #[serde(skip)]
    repo: PathBuf,
}

fn parse_list<T: std::str::FromStr>(value: &str) -> anyhow::Result<Vec<T>> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| anyhow!("bad number {v:?}"))
        })
        .collect()
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let smoke = args.iter().any(|a| a == "--smoke");
    let mut options = Options {
        smoke,
        duration_s: if smoke { 1 } else { 5 },
        repetitions: if smoke { 1 } else { 2 },
        connections: if smoke { vec![16] } else { vec![16, 64] },
        levels: if smoke {
            vec![1_000, 10_000]
        } else {
            vec![1_000, 100_000, 1_000_000]
        },
        memory_sessions: if smoke { 10_000 } else { 100_000 },
        warmup: !smoke,
        wrk_threads: 2,
        only: Vec::new(),
        perf: false,
        out: None,
        repo: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--smoke" {
            continue;
        }
        if flag == "--perf" {
            options.perf = true;
            continue;
        }
        if flag == "--no-warmup" {
            options.warmup = false;
            continue;
        }
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| anyhow!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--duration" => options.duration_s = value()?.parse()?,
            "--reps" => options.repetitions = value()?.parse()?,
            "--connections" => options.connections = parse_list(&value()?)?,
            "--levels" => options.levels = parse_list(&value()?)?,
            "--memory-sessions" => options.memory_sessions = value()?.parse()?,
            "--wrk-threads" => options.wrk_threads = value()?.parse()?,
            "--only" => options.only = value()?.split(',').map(|s| s.trim().to_string()).collect(),
            "--out" => options.out = Some(PathBuf::from(value()?)),
            "--repo" => options.repo = PathBuf::from(value()?),
            other => bail!("unknown option {other} (see bench/README.md)"),
        }
    }
    if options.connections.is_empty() || options.levels.is_empty() || options.repetitions == 0 {
        bail!("--connections, --levels and --reps must not be empty or zero");
    }
    options.repo = options
        .repo
        .canonicalize()
        .with_context(|| format!("repository {}", options.repo.display()))?;
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("memory-server") {
        memory_server::main(&args[1..]).map(|()| true)
    } else {
        parse_options(&args).and_then(run)
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("bench-runner: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Everything that was started, stopped in reverse order when dropped.
struct Processes {
    children: Vec<Child>,
}

impl Processes {
    fn pid(&self, name: &str) -> u32 {
        self.children
            .iter()
            .find(|c| c.name() == name)
            .map_or(0, Child::pid)
    }

    fn get(&mut self, name: &str) -> anyhow::Result<&mut Child> {
        self.children
            .iter_mut()
            .find(|c| c.name() == name)
            .ok_or_else(|| anyhow!("no process {name}"))
    }

    /// Starts `command` as `name` (log in `dir`) and waits until `path` on `port` answers 200.
    fn spawn_until_ok(
        &mut self,
        name: &str,
        command: Command,
        dir: &Path,
        port: u16,
        path: &str,
    ) -> anyhow::Result<&mut Child> {
        self.children.push(Child::spawn(
            name,
            command,
            &dir.join(format!("{name}.log")),
        )?);
        let child = self.get(name)?;
        child.wait_until(
            &format!("200 on {path}"),
            STARTUP,
            || match procs::http_status(port, path)? {
                200 => Ok(()),
                other => Err(format!("status {other}")),
            },
        )?;
        Ok(child)
    }

    /// Every pid of the bench: our children, what perf wraps, and their children (nginx workers).
    fn all_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for child in &self.children {
            for pid in [child.own_pid(), child.pid()] {
                if !pids.contains(&pid) {
                    pids.push(pid);
                    pids.extend(children_of(pid));
                }
            }
        }
        pids
    }

    fn ensure_running(&mut self) -> anyhow::Result<()> {
        for child in &mut self.children {
            child.ensure_running()?;
        }
        Ok(())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        while let Some(mut child) = self.children.pop() {
            child.stop();
        }
    }
}

struct Scenario {
    name: String,
    target: Target,
    /// Processes whose CPU time is recorded (name, pid).
    watch: Vec<(String, u32)>,
    /// For 2xx scenarios through portcullis: the user its identity header must name.
    user: Option<String>,
}

fn forward_auth_headers(host: &str, cookie: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Forwarded-Proto".to_string(), "http".to_string()),
        ("X-Forwarded-Host".to_string(), host.to_string()),
        ("X-Forwarded-Uri".to_string(), "/".to_string()),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}")));
    }
    headers
}

fn auth_headers(host: &str, cookie: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("X-Original-URL".to_string(), format!("http://{host}/")),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    if let Some(cookie) = cookie {
        headers.push(("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}")));
    }
    headers
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total = meminfo.lines().next().unwrap_or_default().to_string();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu_model,
        "memory": mem_total,
        "kernel": procs::command_output("uname", &["-sr"]),
        "rustc": procs::command_output("rustc", &["--version"]),
        "wrk": procs::command_output("wrk", &["--version"]).lines().next().unwrap_or_default(),
        "redis_server": procs::command_output("redis-server", &["--version"]),
        "nginx": procs::command_output("nginx", &["-v"]),
        "node": procs::command_output("node", &["--version"]),
    })
}

fn git_revision(repo: &Path) -> String {
    let dir = repo.display().to_string();
    let rev = procs::command_output("git", &["-C", &dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !procs::command_output(
        "git",
        &[
            "-C",
            &dir,
            "status",
            "--porcelain",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
        ],
    )
    .is_empty();
    if dirty {
        format!("{rev} (with uncommitted changes to src/ or Cargo files)")
    } else {
        rev
    }
}

/// UTC date and time from the Unix clock (no date crate needed).
fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let time = format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    (date, time)
}

fn redis_conn(url: &str) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_write_timeout(Some(Duration::from_secs(30)))?;
    Ok(conn)
}

fn redis_used_memory(conn: &mut redis::Connection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no used_memory in INFO"))
}

fn memory_usage(conn: &mut redis::Connection, key: &str) -> anyhow::Result<u64> {
    let bytes: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query(conn)?;
    bytes.ok_or_else(|| anyhow!("no key {key} in Redis"))
}

/// One request as wrk would send it; checks the status (and the identity for 2xx).
async fn preflight(client: &reqwest::Client, scenario: &Scenario) -> anyhow::Result<()> {
    let mut request = client.get(&scenario.target.url);
    for (name, value) in &scenario.target.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("preflight {}", scenario.name))?;
    let status = response.status().as_u16();
    if status != scenario.target.expect {
        let body = response.text().await.unwrap_or_default();
        bail!(
            "preflight {}: answered {status}, expected {}: {}",
            scenario.name,
            scenario.target.expect,
            body.chars().take(200).collect::<String>()
        );
    }
    if let Some(user) = &scenario.user {
        let seen = response
            .headers()
            .get("x-auth-request-user")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if seen != user {
            bail!(
                "preflight {}: X-Auth-Request-User is {seen:?}, expected {user:?}",
                scenario.name
            );
        }
    }
    Ok(())
}

fn portcullis_env(
    idp_port: u16,
    client_secret: &str,
    port: u16,
    redis: Option<&str>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("OIDC_ISSUER_URL", format!("http://127.0.0.1:{idp_port}")),
        ("OIDC_CLIENT_ID", CLIENT_ID.to_string()),
        ("OIDC_CLIENT_SECRET", client_secret.to_string()),
        (
            "OIDC_REDIRECT_URL",
            format!("http://127.0.0.1:{port}/oauth2/callback"),
        ),
        ("OIDC_SCOPES", "openid profile email groups".to_string()),
        ("COOKIE_SECRET", COOKIE_SECRET.to_string()),
        ("COOKIE_SECURE", "false".to_string()),
        ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
        ("RUST_LOG", "warn".to_string()),
    ];
    if let Some(url) = redis {
        env.push(("REDIS_URL", url.to_string()));
    }
    env.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn clean_command(program: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(value) = std::env::var(key) {
            command.env(key, value);
        }
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command
}

fn nginx_temp_paths(dir: &Path) -> String {
    let build = procs::command_output("nginx", &["-V"]);
    ["fastcgi", "uwsgi", "scgi"]
        .into_iter()
        .filter(|m| !build.contains(&format!("--without-http_{m}_module")))
        .map(|m| format!("    {m}_temp_path {}/{m};\n", dir.display()))
        .collect()
}

/// PIDs of the direct children of `pid` (nginx workers).
fn children_of(pid: u32) -> Vec<u32> {
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

/// `program`, or `perf record ... -- program` with --perf (data in bench/results/tmp-perf-NAME.data).
/// With `env`, the environment is exactly that (plus PATH, HOME, TMPDIR).
fn launcher(
    options: &Options,
    repo: &Path,
    name: &str,
    program: &Path,
    env: Option<&[(String, String)]>,
) -> Command {
    let start = |program: &Path| match env {
        Some(env) => clean_command(program, env),
        None => Command::new(program),
    };
    if !options.perf {
        return start(program);
    }
    let mut command = start(Path::new("perf"));
    command
        .args(["record", "-e", "task-clock", "-F", "999"])
        .args(["--call-graph", "dwarf,16384", "-o"])
        .arg(repo.join(format!("bench/results/tmp-perf-{name}.data")))
        .arg("--")
        .arg(program);
    command
}

/// With --perf, CPU and RSS are read from the program perf started, not from perf.
fn measure_wrapped(options: &Options, child: &mut Child) -> anyhow::Result<()> {
    if options.perf {
        let inner = children_of(child.own_pid())
            .first()
            .copied()
            .context("perf record has no child")?;
        child.measure(inner);
    }
    Ok(())
}

struct Bench {
    options: Options,
    /// bench/wrk/count.lua: every status counted.
    count_script: PathBuf,
    /// bench/wrk/latency.lua: no `response` callback (calibration of the counter's cost).
    uncounted_script: PathBuf,
    /// count.lua plus a 10 ms think time per request (paced rounds).
    paced_script: PathBuf,
    rounds: Vec<Round>,
    failures: Vec<String>,
    started: Instant,
    /// Every process of the bench (to tell other load on the machine apart).
    ours: Vec<u32>,
    cores: f64,
}

/// How wrk runs a round.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// As fast as the connections go, every status counted (all figures come from these).
    Counted,
    /// The same without the `response` callback: only to measure what counting costs wrk.
    Uncounted,
    /// Counted, each connection waiting PACE_MS between requests: latency below saturation.
    Paced,
    /// Counted, as fast as the connections go, with wrk (one thread) alone on CPU 1 and every
    /// server on CPU 0: latency without the load generator competing for the servers' core.
    Pinned,
}

/// The CPU the load generator gets in pinned rounds; the servers get every other one.
const WRK_CPU: &str = "1";
const SERVER_CPUS: &str = "0";

const PACE_MS: u32 = 10;

impl Bench {
    fn round(
        &mut self,
        phase: &str,
        scenario: &Scenario,
        connections: u32,
        rep: u32,
        duration_s: u32,
    ) -> anyhow::Result<()> {
        self.round_with(phase, scenario, connections, rep, duration_s, Load::Counted)
    }

    fn round_with(
        &mut self,
        phase: &str,
        scenario: &Scenario,
        connections: u32,
        rep: u32,
        duration_s: u32,
        load: Load,
    ) -> anyhow::Result<()> {
        let settings = wrk::Settings {
            script: match load {
                Load::Counted | Load::Pinned => &self.count_script,
                Load::Uncounted => &self.uncounted_script,
                Load::Paced => &self.paced_script,
            },
            threads: if load == Load::Pinned {
                1
            } else {
                self.options.wrk_threads
            },
            counted: load != Load::Uncounted,
            pace_ms: (load == Load::Paced).then_some(PACE_MS),
            cpu: (load == Load::Pinned).then_some(WRK_CPU),
        };
        let name = match load {
            Load::Uncounted => format!("{} (uncounted)", scenario.name),
            _ => scenario.name.clone(),
        };
        let round = wrk::run(
            &settings,
            phase,
            &name,
            &scenario.target,
            connections,
            duration_s,
            rep,
            &scenario.watch,
            &self.ours,
        )?;
        println!(
            "  [{:>5.0}s] {:<14} {:<34} c={:<3} {:>9.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  p99.9 {:>6.2} ms  other load {:>4.0}%  {}",
            self.started.elapsed().as_secs_f64(),
            phase,
            name,
            connections,
            round.requests_per_s,
            round.latency_us.p50 as f64 / 1000.0,
            round.latency_us.p99 as f64 / 1000.0,
            round.latency_us.p999 as f64 / 1000.0,
            100.0 * round.foreign_cpu_s / (f64::from(duration_s) * self.cores),
            if round.ok {
                "statuses ok".to_string()
            } else {
                format!("WRONG: {}", round.problems.join("; "))
            }
        );
        if !round.ok {
            self.failures.push(format!(
                "{phase} {name} c={connections} rep {rep}: {}",
                round.problems.join("; ")
            ));
        }
        self.rounds.push(round);
        Ok(())
    }

    /// Every scenario once per connection count per repetition, in that nesting order, so that
    /// slow drift of the machine spreads over all scenarios alike.
    fn interleaved(
        &mut self,
        phase: &str,
        scenarios: &[Scenario],
        live: &mut Processes,
    ) -> anyhow::Result<()> {
        let connections = self.options.connections.clone();
        for rep in 1..=self.options.repetitions {
            for &c in &connections {
                for scenario in scenarios {
                    live.ensure_running()?;
                    self.ours = live.all_pids();
                    self.round(phase, scenario, c, rep, self.options.duration_s)?;
                }
            }
        }
        Ok(())
    }
}

fn wait_file(path: &Path, child: &mut Child, timeout: Duration) -> anyhow::Result<String> {
    child.wait_until(&format!("{}", path.display()), timeout, || {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    })
}

fn run(options: Options) -> anyhow::Result<bool> {
    let started = Instant::now();
    let (date, started_at) = utc_now();
    let repo = options.repo.clone();
    let exe_dir = std::env::current_exe()?
        .parent()
        .ok_or_else(|| anyhow!("no directory for the runner"))?
        .to_path_buf();
    let portcullis_bin = exe_dir.join("portcullis");
    let floor_bin = exe_dir.join("floor");
    let runner_bin = std::env::current_exe()?;
    for bin in [&portcullis_bin, &floor_bin] {
        if !bin.is_file() {
            bail!("{} is missing: build with bash bench/run.sh", bin.display());
        }
    }
    let script = repo.join("bench/wrk/count.lua");
    let idp_dir = repo.join("tests/idp");
    if !idp_dir.join("node_modules/oidc-provider").is_dir() {
        bail!("the test IdP is not installed: npm ci --prefix tests/idp");
    }
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let count_lua =
        std::fs::read_to_string(&script).with_context(|| format!("read {}", script.display()))?;
    std::fs::write(
        dir.join("paced.lua"),
        format!("{count_lua}\n-- paced: each connection waits between requests\nfunction delay()\n  return {PACE_MS}\nend\n"),
    )?;
    println!(
        "portcullis bench ({}): {} s rounds, {} repetition(s), connections {:?}, Redis session levels {:?}; logs in {}",
        if options.smoke { "smoke" } else { "full" },
        options.duration_s,
        options.repetitions,
        options.connections,
        options.levels,
        dir.display()
    );
    let mut bench = Bench {
        options: options.clone(),
        count_script: script.clone(),
        uncounted_script: repo.join("bench/wrk/latency.lua"),
        paced_script: dir.join("paced.lua"),
        rounds: Vec::new(),
        failures: Vec::new(),
        started,
        ours: Vec::new(),
        cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    };
    let outcome = run_phases(
        &options,
        &mut bench,
        &dir,
        &portcullis_bin,
        &floor_bin,
        &runner_bin,
        &repo,
    );
    let extra = match outcome {
        Ok(extra) => extra,
        Err(err) => {
            eprintln!("logs kept in {}", dir.display());
            return Err(err);
        }
    };

    let mut rows = report::rows(&bench.rounds);
    rows.retain(|r| r.phase != "warmup");
    let targets = evaluate_targets(&options, &rows, &extra);
    let mut counter_cost = Vec::new();
    for counted in rows.iter().filter(|r| r.phase == "calibration") {
        let uncounted = format!("{} (uncounted)", counted.scenario);
        if let Some(u) = report::find(&rows, "calibration", &uncounted, counted.connections) {
            counter_cost.push(format!(
                "{}: {:.0} req/s counted, {:.0} uncounted ({:+.1}%)",
                counted.scenario,
                counted.rps_mean,
                u.rps_mean,
                (u.rps_mean / counted.rps_mean - 1.0) * 100.0
            ));
        }
    }
    let counter_note = if counter_cost.is_empty() {
        String::new()
    } else {
        format!(
            "wrk's status counter (response callback), calibration rounds: {}",
            counter_cost.join("; ")
        )
    };
    let (_, finished_at) = utc_now();
    let all_ok = bench.failures.is_empty();
    let table = report::markdown(&rows);
    let targets_table = report::targets_markdown(&targets);
    println!("\n{table}\n{targets_table}");
    println!("{}", extra["notes"].as_str().unwrap_or_default());
    if !counter_note.is_empty() {
        println!("{counter_note}");
    }

    let result = json!({
        "kind": if options.smoke { "smoke" } else { "full" },
        "started_at": started_at,
        "finished_at": finished_at,
        "elapsed_s": started.elapsed().as_secs_f64(),
        "revision": git_revision(&repo),
        "machine": machine(),
        "options": options,
        "ok": all_ok,
        "failures": bench.failures,
        "targets": targets,
        "summary": rows,
        "facts": extra,
        "counter_cost": counter_note,
        "rounds": bench.rounds,
        "markdown": { "table": table, "targets": targets_table },
    });
    let out = options.out.clone().unwrap_or_else(|| {
        let name = if options.smoke {
            format!("tmp-smoke-{date}.json")
        } else {
            format!("{date}.json")
        };
        repo.join("bench/results").join(name)
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!("results written to {}", out.display());
    if all_ok {
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "every answer had the expected status ({} rounds, {:.0} s)",
            bench.rounds.len(),
            started.elapsed().as_secs_f64()
        );
    } else {
        eprintln!("WRONG STATUSES in {} round(s):", bench.failures.len());
        for failure in &bench.failures {
            eprintln!("  {failure}");
        }
        eprintln!("logs kept in {}", dir.display());
    }
    Ok(all_ok)
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[allow(clippy::too_many_arguments)]
fn run_phases(
    options: &Options,
    bench: &mut Bench,
    dir: &Path,
    portcullis_bin: &Path,
    floor_bin: &Path,
    runner_bin: &Path,
    repo: &Path,
) -> anyhow::Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut live = Processes {
        children: Vec::new(),
    };
    let keys = Keys::derive(COOKIE_SECRET.as_bytes()).map_err(|e| anyhow!("{e}"))?;

    // --- Redis -----------------------------------------------------------------------------
    let redis_port = procs::free_port()?;
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--logfile", ""])
        .arg("--dir")
        .arg(dir);
    live.children
        .push(Child::spawn("redis", command, &dir.join("redis.log"))?);
    {
        let url = redis_url.clone();
        live.get("redis")?.wait_until("redis PING", STARTUP, || {
            let mut conn = redis_conn(&url).map_err(|e| e.to_string())?;
            redis::cmd("PING")
                .query::<String>(&mut conn)
                .map_err(|e| e.to_string())
        })?;
    }
    let mut admin = redis_conn(&redis_url)?;

    // --- ports, IdP ----------------------------------------------------------------------------
    let idp_port = procs::free_port()?;
    let pc_redis_port = procs::free_port()?;
    let pc_memory_port = procs::free_port()?;
    let client_secret = format!("bench-secret-{idp_port}");
    let redirect_uris = [pc_redis_port, pc_memory_port]
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/oauth2/callback"))
        .collect::<Vec<_>>()
        .join(",");
    let idp_dir = repo.join("tests/idp");
    let mut command = Command::new("node");
    command
        .arg(idp_dir.join("idp.mjs"))
        .current_dir(&idp_dir)
        .env("PORT", idp_port.to_string())
        .env("ISSUER", format!("http://127.0.0.1:{idp_port}"))
        .env("CLIENT_ID", CLIENT_ID)
        .env("CLIENT_SECRET", &client_secret)
        .env("REDIRECT_URIS", &redirect_uris)
        .env_remove("DEBUG")
        .env("NODE_ENV", "test");
    live.children
        .push(Child::spawn("idp", command, &dir.join("idp.log"))?);
    live.get("idp")?.wait_until("IdP discovery", STARTUP, || {
        match procs::http_status(idp_port, "/.well-known/openid-configuration")? {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })?;

    // --- portcullis, Redis store and memory store -------------------------------------------
    for (name, port, redis) in [
        ("portcullis-redis", pc_redis_port, Some(redis_url.as_str())),
        ("portcullis-memory", pc_memory_port, None),
    ] {
        let env = portcullis_env(idp_port, &client_secret, port, redis);
        let command = launcher(options, repo, name, portcullis_bin, Some(&env));
        let child = live.spawn_until_ok(name, command, dir, port, "/readyz")?;
        if options.perf {
            let wrapped = children_of(child.own_pid());
            let inner = wrapped
                .first()
                .copied()
                .context("perf record has no child")?;
            child.measure(inner);
        }
    }

    // --- real logins -------------------------------------------------------------------------
    let cookie_redis = rt.block_on(login::sign_in(
        &format!("http://127.0.0.1:{pc_redis_port}"),
        COOKIE_NAME,
        USER,
        PASSWORD,
    ))?;
    let cookie_memory = rt.block_on(login::sign_in(
        &format!("http://127.0.0.1:{pc_memory_port}"),
        COOKIE_NAME,
        USER,
        PASSWORD,
    ))?;
    let alice_id = keys
        .verify(&cookie_redis)
        .map_err(|e| anyhow!("the login's cookie does not verify with COOKIE_SECRET: {e}"))?
        .to_string();
    println!("signed in as {USER} on both instances");
    let session_key = format!("portcullis:session:{alice_id}");
    let tokens_key = format!("portcullis:tokens:{alice_id}");
    let session_bytes = memory_usage(&mut admin, &session_key)?;
    // Sealed tokens are stored only when a later request needs them (IdP logout): maybe none.
    let tokens_bytes = memory_usage(&mut admin, &tokens_key).ok();
    let session_len: u64 = redis::cmd("STRLEN").arg(&session_key).query(&mut admin)?;
    let sealed_len: u64 = redis::cmd("STRLEN").arg(&tokens_key).query(&mut admin)?;
    let user_index_bytes = memory_usage(&mut admin, &format!("portcullis:user:{USER}"))?;

    // --- sessions made through the store code: 1 group, 50 groups, and filler ---------------
    let store = Store::redis(&redis_url).map_err(|e| anyhow!("{e}"))?;
    let sealed = fill::sealed_tokens(&keys, sealed_len as usize)?;
    let id_1 = portcullis::crypto::random_id();
    let id_50 = portcullis::crypto::random_id();
    rt.block_on(async {
        store
            .put_session(
                &id_1,
                &fill::session("grp01", fill::groups(1)),
                (!sealed.is_empty()).then(|| sealed.clone()),
                fill::TTL,
            )
            .await?;
        store
            .put_session(
                &id_50,
                &fill::session("grp50", fill::groups(50)),
                (!sealed.is_empty()).then(|| sealed.clone()),
                fill::TTL,
            )
            .await
    })?;
    let cookie_1 = keys.sign(&id_1);
    let cookie_50 = keys.sign(&id_50);
    let session_1_bytes = memory_usage(&mut admin, &format!("portcullis:session:{id_1}"))?;
    let session_50_bytes = memory_usage(&mut admin, &format!("portcullis:session:{id_50}"))?;
    // Signed with the right key, but no such session: the deny path that reads the store.
    let cookie_unknown = keys.sign(&portcullis::crypto::random_id());
    // Alice's cookie with one character of its signature changed: same length, bad signature.
    let cookie_forged = {
        let mut chars: Vec<char> = cookie_redis.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let mut sessions_in_redis: u64 = 3;
    let used_before_fill = redis_used_memory(&mut admin)?;
    let mut fills = Vec::new();
    let mut fill_to = |target: u64, admin: &mut redis::Connection| -> anyhow::Result<()> {
        if target <= sessions_in_redis {
            return Ok(());
        }
        let count = target - sessions_in_redis;
        let timeout = Duration::from_secs(60 + count / 2_000);
        print!("filling Redis to {target} sessions (put_session x {count}) ... ");
        let took = rt.block_on(fill::fill(
            &store,
            sessions_in_redis,
            count,
            &sealed,
            512,
            timeout,
        ))?;
        sessions_in_redis = target;
        let keys_in_db: u64 = redis::cmd("DBSIZE").query(admin)?;
        let used = redis_used_memory(admin)?;
        println!(
            "{:.1} s, {keys_in_db} keys, Redis used_memory {:.0} MB",
            took.as_secs_f64(),
            used as f64 / 1e6
        );
        fills.push(json!({
            "sessions": target, "seconds": took.as_secs_f64(), "keys": keys_in_db,
            "used_memory_bytes": used,
            "used_memory_per_session_bytes": (used.saturating_sub(used_before_fill)) as f64 / (target - 3) as f64,
        }));
        Ok(())
    };
    fill_to(options.levels[0], &mut admin)?;

    // --- floors, echo app, nginx --------------------------------------------------------------
    let floor_a_port = procs::free_port()?;
    let floor_b_port = procs::free_port()?;
    let echo_port = procs::free_port()?;
    let nginx_port = procs::free_port()?;
    for (name, mode, port) in [
        ("floor-a", "plain", floor_a_port),
        ("floor-b", "redis", floor_b_port),
        ("echo", "echo", echo_port),
    ] {
        let wrapped = name != "echo";
        let mut command = if wrapped {
            launcher(options, repo, name, floor_bin, None)
        } else {
            Command::new(floor_bin)
        };
        command.args([mode, "--listen", &format!("127.0.0.1:{port}")]);
        if mode == "redis" {
            command.args(["--redis", &redis_url, "--key", &session_key]);
        }
        let child = live.spawn_until_ok(name, command, dir, port, "/")?;
        if wrapped {
            measure_wrapped(options, child)?;
        }
    }
    let template = std::fs::read_to_string(repo.join("bench/nginx.conf.template"))?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let nginx_conf = template
        .replace("@USER@", if root { "user root;" } else { "" })
        .replace("@DIR@", &dir.display().to_string())
        .replace("@TEMP_PATHS@", &nginx_temp_paths(dir))
        .replace("@PORTCULLIS@", &format!("127.0.0.1:{pc_redis_port}"))
        .replace("@APP@", &format!("127.0.0.1:{echo_port}"))
        .replace("@LISTEN@", &format!("127.0.0.1:{nginx_port}"));
    let leftover = nginx_conf.lines().any(|line| {
        let code = line.split('#').next().unwrap_or_default();
        code.contains('@')
    });
    if leftover {
        bail!("bench/nginx.conf.template has a placeholder the runner does not know");
    }
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, nginx_conf)?;
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(format!("{}/", dir.display()))
        .arg("-c")
        .arg(&conf_path)
        .args(["-e", "stderr"]);
    live.children
        .push(Child::spawn("nginx", command, &dir.join("nginx.log"))?);
    live.get("nginx")?.wait_until("nginx /open/", STARTUP, || {
        match procs::http_status(nginx_port, "/open/")? {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        }
    })?;

    // --- scenarios ----------------------------------------------------------------------------
    let pids: BTreeMap<String, u32> = live
        .children
        .iter()
        .map(|c| (c.name().to_string(), c.pid()))
        .collect();
    let pid = |name: &str| (name.to_string(), pids.get(name).copied().unwrap_or(0));
    let nginx_pids: Vec<(String, u32)> = {
        let master = live.pid("nginx");
        let mut all = vec![("nginx".to_string(), master)];
        for (i, worker) in children_of(master).into_iter().enumerate() {
            all.push((format!("nginx-worker-{}", i + 1), worker));
        }
        all
    };
    let pc_redis_host = format!("127.0.0.1:{pc_redis_port}");
    let pc_memory_host = format!("127.0.0.1:{pc_memory_port}");
    let redis_watch = vec![pid("portcullis-redis"), pid("redis")];
    let scenario = |name: &str,
                    url: String,
                    headers: Vec<(String, String)>,
                    expect: u16,
                    watch: Vec<(String, u32)>,
                    user: Option<&str>| Scenario {
        name: name.to_string(),
        target: Target {
            url,
            headers,
            expect,
        },
        watch,
        user: user.map(str::to_string),
    };
    let fa_url = |port: u16| format!("http://127.0.0.1:{port}/oauth2/forward-auth");
    let auth_url = |port: u16| format!("http://127.0.0.1:{port}/oauth2/auth");
    let redis_fa = scenario(
        "redis/forward-auth",
        fa_url(pc_redis_port),
        forward_auth_headers(&pc_redis_host, Some(&cookie_redis)),
        200,
        redis_watch.clone(),
        Some(USER),
    );
    // The floors get the very same request headers as the forward-auth check (parsing them is
    // framework work, not portcullis work).
    let floor_headers = forward_auth_headers(&pc_redis_host, Some(&cookie_redis));
    let floor_b = scenario(
        "floor-b",
        format!("http://127.0.0.1:{floor_b_port}/"),
        floor_headers.clone(),
        200,
        vec![pid("floor-b"), pid("redis")],
        None,
    );
    let mut nginx_auth_watch = nginx_pids.clone();
    nginx_auth_watch.extend([pid("portcullis-redis"), pid("echo")]);
    let mut nginx_direct_watch = nginx_pids.clone();
    nginx_direct_watch.push(pid("echo"));
    let mut main_scenarios = vec![
        scenario(
            "floor-a",
            format!("http://127.0.0.1:{floor_a_port}/"),
            floor_headers.clone(),
            200,
            vec![pid("floor-a")],
            None,
        ),
        scenario(
            "floor-b",
            floor_b.target.url.clone(),
            floor_b.target.headers.clone(),
            200,
            floor_b.watch.clone(),
            None,
        ),
        scenario(
            "redis/forward-auth",
            redis_fa.target.url.clone(),
            redis_fa.target.headers.clone(),
            200,
            redis_watch.clone(),
            Some(USER),
        ),
        scenario(
            "redis/auth",
            auth_url(pc_redis_port),
            auth_headers(&pc_redis_host, Some(&cookie_redis)),
            200,
            redis_watch.clone(),
            Some(USER),
        ),
        scenario(
            "memory/forward-auth",
            fa_url(pc_memory_port),
            forward_auth_headers(&pc_memory_host, Some(&cookie_memory)),
            200,
            vec![pid("portcullis-memory")],
            Some(USER),
        ),
        scenario(
            "memory/auth",
            auth_url(pc_memory_port),
            auth_headers(&pc_memory_host, Some(&cookie_memory)),
            200,
            vec![pid("portcullis-memory")],
            Some(USER),
        ),
        scenario(
            "deny/bad-signature",
            fa_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&cookie_forged)),
            401,
            redis_watch.clone(),
            None,
        ),
        scenario(
            "deny/no-cookie",
            fa_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, None),
            401,
            redis_watch.clone(),
            None,
        ),
        scenario(
            "deny/unknown-session",
            fa_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&cookie_unknown)),
            401,
            redis_watch.clone(),
            None,
        ),
        scenario(
            "nginx/direct",
            format!("http://127.0.0.1:{nginx_port}/open/"),
            vec![],
            200,
            nginx_direct_watch,
            None,
        ),
        scenario(
            "nginx/auth_request",
            format!("http://127.0.0.1:{nginx_port}/protected/"),
            vec![(
                "Cookie".to_string(),
                format!("{COOKIE_NAME}={cookie_redis}"),
            )],
            200,
            nginx_auth_watch,
            None,
        ),
        scenario(
            "redis/forward-auth/1-group",
            fa_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&cookie_1)),
            200,
            redis_watch.clone(),
            Some("grp01"),
        ),
        scenario(
            "redis/forward-auth/50-groups",
            fa_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&cookie_50)),
            200,
            redis_watch.clone(),
            Some("grp50"),
        ),
    ];
    if !options.only.is_empty() {
        main_scenarios.retain(|s| options.only.contains(&s.name));
        if main_scenarios.is_empty() {
            bail!("--only matches no scenario");
        }
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()?;
    for s in &main_scenarios {
        rt.block_on(preflight(&client, s))?;
    }
    println!(
        "preflight: every scenario answers as expected ({} scenarios)",
        main_scenarios.len()
    );

    // --- warm-up, then the main interleaved phase ---------------------------------------------
    let max_c = *options.connections.iter().max().unwrap_or(&16);
    if options.warmup {
        println!("warm-up (1 s per scenario, statuses checked, not reported)");
        bench.ours = live.all_pids();
        for s in &main_scenarios {
            bench.round("warmup", s, max_c, 0, 1)?;
        }
    }
    let main_phase = "main";
    println!("main phase: {} sessions in Redis", options.levels[0]);
    bench.interleaved(main_phase, &main_scenarios, &mut live)?;
    let hwm_after_main = json!({
        "portcullis-redis": procs::status_kb(live.pid("portcullis-redis"), "VmHWM")?,
        "portcullis-memory": procs::status_kb(live.pid("portcullis-memory"), "VmHWM")?,
        "floor-a": procs::status_kb(live.pid("floor-a"), "VmHWM")?,
        "floor-b": procs::status_kb(live.pid("floor-b"), "VmHWM")?,
    });

    // --- latency below saturation, and what counting statuses costs wrk -----------------------
    let pick = |names: &[&str]| -> Vec<&Scenario> {
        names
            .iter()
            .filter_map(|n| main_scenarios.iter().find(|s| s.name == *n))
            .collect()
    };
    let partial = !options.only.is_empty();
    let paced = pick(&[
        "floor-a",
        "floor-b",
        "redis/forward-auth",
        "memory/forward-auth",
    ]);
    if !partial && !paced.is_empty() {
        println!("paced phase: {max_c} connections, each waiting {PACE_MS} ms between requests");
        for rep in 1..=options.repetitions {
            for s in &paced {
                live.ensure_running()?;
                bench.ours = live.all_pids();
                bench.round_with("paced", s, max_c, rep, options.duration_s, Load::Paced)?;
            }
        }
    }
    let pinned = pick(&[
        "floor-a",
        "floor-b",
        "redis/forward-auth",
        "redis/auth",
        "memory/forward-auth",
        "memory/auth",
    ]);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !partial && !pinned.is_empty() && cpus < 2 {
        println!("pinned phase skipped: it needs two CPUs, this machine has {cpus}");
    } else if !partial && !pinned.is_empty() {
        println!(
            "pinned phase: {max_c} connections, wrk (1 thread) on CPU {WRK_CPU}, servers on CPU {SERVER_CPUS}"
        );
        for rep in 1..=options.repetitions {
            for s in &pinned {
                live.ensure_running()?;
                bench.ours = live.all_pids();
                procs::set_affinity(&bench.ours, SERVER_CPUS)?;
                let result =
                    bench.round_with("pinned", s, max_c, rep, options.duration_s, Load::Pinned);
                procs::set_affinity(&bench.ours, &format!("0-{}", cpus - 1))?;
                result?;
            }
        }
    }
    let calibrated = pick(&["floor-a", "memory/forward-auth"]);
    if !partial && !options.smoke && !calibrated.is_empty() {
        println!("calibration: the same rounds with and without wrk's per-answer status counter");
        for rep in 1..=options.repetitions {
            for s in &calibrated {
                for load in [Load::Counted, Load::Uncounted] {
                    live.ensure_running()?;
                    bench.ours = live.all_pids();
                    bench.round_with("calibration", s, max_c, rep, options.duration_s, load)?;
                }
            }
        }
    }

    // --- growth: the same check with more sessions in Redis -----------------------------------
    let growth = [floor_b, redis_fa];
    for &level in &options.levels {
        if partial {
            break;
        }
        fill_to(level, &mut admin)?;
        println!("growth phase: {level} sessions in Redis");
        for s in &growth {
            rt.block_on(preflight(&client, s))?;
        }
        bench.interleaved(&format!("sessions-{level}"), &growth, &mut live)?;
    }
    let redis_used_final = redis_used_memory(&mut admin)?;
    let hwm_portcullis_redis_final = procs::status_kb(live.pid("portcullis-redis"), "VmHWM")?;

    // --- in-memory store with many sessions ---------------------------------------------------
    let mut memory_reports = Vec::new();
    let variants = if partial {
        vec![]
    } else {
        // As the login stored it; and without tokens too, if the login stored any.
        let mut variants = vec![("as-login", sealed_len)];
        if sealed_len > 0 {
            variants.push(("without-tokens", 0));
        }
        variants
    };
    for (variant, sealed_len_now) in variants {
        let name = format!("memory-server-{variant}");
        let port = procs::free_port()?;
        let ready = dir.join(format!("{name}.json"));
        let cookie_id = portcullis::crypto::random_id();
        let env = portcullis_env(idp_port, &client_secret, port, None);
        let mut command = clean_command(runner_bin, &env);
        command.args([
            "memory-server",
            "--sessions",
            &options.memory_sessions.to_string(),
            "--sealed-len",
            &sealed_len_now.to_string(),
            "--cookie-id",
            &cookie_id,
            "--ready",
            &ready.display().to_string(),
        ]);
        live.children.push(Child::spawn(
            &name,
            command,
            &dir.join(format!("{name}.log")),
        )?);
        let text = {
            let child = live.get(&name)?;
            wait_file(
                &ready,
                child,
                Duration::from_secs(60 + options.memory_sessions / 1_000),
            )?
        };
        let mut facts: serde_json::Value = serde_json::from_str(&text)?;
        let memory_pid = live.pid(&name);
        let host = format!("127.0.0.1:{port}");
        let filled = scenario(
            &format!("memory-{}/forward-auth", options.memory_sessions),
            fa_url(port),
            forward_auth_headers(&host, Some(&keys.sign(&cookie_id))),
            200,
            vec![(name.clone(), memory_pid)],
            Some(USER),
        );
        rt.block_on(preflight(&client, &filled))?;
        if variant == "as-login" {
            println!(
                "memory phase: portcullis (library, memory store) holding {} sessions",
                options.memory_sessions
            );
            let one = scenario(
                "memory/forward-auth",
                fa_url(pc_memory_port),
                forward_auth_headers(&pc_memory_host, Some(&cookie_memory)),
                200,
                vec![pid("portcullis-memory")],
                Some(USER),
            );
            let floor_a = scenario(
                "floor-a",
                format!("http://127.0.0.1:{floor_a_port}/"),
                floor_headers.clone(),
                200,
                vec![pid("floor-a")],
                None,
            );
            bench.interleaved(
                &format!("memory-{}", options.memory_sessions),
                &[floor_a, one, filled],
                &mut live,
            )?;
        }
        facts["hwm_kb_after_load"] = json!(procs::status_kb(memory_pid, "VmHWM")?);
        facts["variant"] = json!(variant);
        memory_reports.push(facts);
        // Stop it now: two filled servers need not share the machine.
        if let Some(index) = live.children.iter().position(|c| c.name() == name) {
            let mut child = live.children.remove(index);
            child.stop();
        }
    }

    let hwm_final = json!({
        "portcullis-redis": hwm_portcullis_redis_final,
        "portcullis-memory": procs::status_kb(live.pid("portcullis-memory"), "VmHWM")?,
    });
    let no_report = json!({});
    let with_tokens = memory_reports.first().unwrap_or(&no_report);
    let memory_note = if memory_reports.is_empty() {
        String::new()
    } else {
        format!(
            "memory store with {} sessions (stored as a login stores them): RSS {:.1} MB serving empty -> {:.1} MB filled, peak {:.1} MB under load.",
            options.memory_sessions,
            kb_to_mb(with_tokens["rss_kb_serving_empty"].as_u64().unwrap_or(0)),
            kb_to_mb(with_tokens["rss_kb_filled"].as_u64().unwrap_or(0)),
            kb_to_mb(with_tokens["hwm_kb_after_load"].as_u64().unwrap_or(0)),
        )
    };
    let notes = format!(
        "Redis: session value {session_len} B (MEMORY USAGE {session_bytes} B; 1 group {session_1_bytes} B, 50 groups {session_50_bytes} B), \
         sealed tokens {}, user index {user_index_bytes} B; \
         used_memory {:.0} MB with {} sessions.\n\
         portcullis peak RSS (VmHWM) after the main phase: Redis store {:.1} MB, memory store {:.1} MB; floors A {:.1} MB, B {:.1} MB.\n{memory_note}",
        match tokens_bytes {
            Some(bytes) => format!("{sealed_len} B (MEMORY USAGE {bytes} B)"),
            None => "none stored by the login".to_string(),
        },
        redis_used_final as f64 / 1e6,
        sessions_in_redis,
        kb_to_mb(hwm_after_main["portcullis-redis"].as_u64().unwrap_or(0)),
        kb_to_mb(hwm_after_main["portcullis-memory"].as_u64().unwrap_or(0)),
        kb_to_mb(hwm_after_main["floor-a"].as_u64().unwrap_or(0)),
        kb_to_mb(hwm_after_main["floor-b"].as_u64().unwrap_or(0)),
    );
    Ok(json!({
        "notes": notes,
        "redis": {
            "session_value_bytes": session_len,
            "session_memory_usage_bytes": session_bytes,
            "session_1_group_memory_usage_bytes": session_1_bytes,
            "session_50_groups_memory_usage_bytes": session_50_bytes,
            "sealed_tokens_bytes": sealed_len,
            "tokens_memory_usage_bytes": tokens_bytes,
            "user_index_memory_usage_bytes": user_index_bytes,
            "fills": fills,
            "used_memory_bytes_final": redis_used_final,
            "sessions_final": sessions_in_redis,
        },
        "rss_kb": { "after_main_phase": hwm_after_main, "final": hwm_final },
        "memory_store": memory_reports,
    }))
}

fn evaluate_targets(options: &Options, rows: &[Row], extra: &serde_json::Value) -> Vec<Goal> {
    let c = *options.connections.iter().max().unwrap_or(&64);
    let main = "main".to_string();
    let mut goals = Vec::new();
    let note = if c == 64 {
        String::new()
    } else {
        format!(" (measured at {c} connections)")
    };
    for scenario in ["redis/forward-auth", "redis/auth"] {
        let row = report::find(rows, &main, scenario, c);
        let v = row.and_then(|r| r.vs_floor_b);
        goals.push(Goal::new(
            &format!("{scenario} vs floor B, 64 conns{note}"),
            ">= 0.70x",
            v.map_or("missing".into(), |v| format!("{v:.2}x")),
            v.map(|v| v >= 0.70),
        ));
    }
    for scenario in ["memory/forward-auth", "memory/auth"] {
        let row = report::find(rows, &main, scenario, c);
        let v = row.and_then(|r| r.vs_floor_a);
        goals.push(Goal::new(
            &format!("{scenario} vs floor A, 64 conns{note}"),
            ">= 0.80x",
            v.map_or("missing".into(), |v| format!("{v:.2}x")),
            v.map(|v| v >= 0.80),
        ));
    }
    for scenario in [
        "redis/forward-auth",
        "redis/auth",
        "memory/forward-auth",
        "memory/auth",
    ] {
        let row = report::find(rows, &main, scenario, c);
        let floor = report::find(rows, &main, "floor-a", c);
        goals.push(Goal::new(
            &format!("{scenario} p99, 64 conns{note}"),
            "< 2 ms",
            row.map_or("missing".into(), |r| {
                format!(
                    "{:.2} ms (floor A: {:.2} ms)",
                    r.p99_us / 1000.0,
                    floor.map_or(f64::NAN, |f| f.p99_us / 1000.0)
                )
            }),
            row.map(|r| r.p99_us < 2000.0),
        ));
    }
    for (scenario, floor_name, floor_label) in [
        ("redis/forward-auth", "floor-b", "floor B"),
        ("memory/forward-auth", "floor-a", "floor A"),
    ] {
        if let Some(row) = report::find(rows, "paced", scenario, c) {
            let floor = report::find(rows, "paced", floor_name, c);
            goals.push(Goal::new(
                &format!(
                    "{scenario} p99, {c} conns paced ({PACE_MS} ms think time, {:.0} req/s)",
                    row.rps_mean
                ),
                "< 2 ms",
                format!(
                    "{:.2} ms ({floor_label}: {:.2} ms)",
                    row.p99_us / 1000.0,
                    floor.map_or(f64::NAN, |f| f.p99_us / 1000.0)
                ),
                Some(row.p99_us < 2000.0),
            ));
        }
    }
    for (scenario, floor_name, floor_label) in [
        ("redis/forward-auth", "floor-b", "floor B"),
        ("redis/auth", "floor-b", "floor B"),
        ("memory/forward-auth", "floor-a", "floor A"),
        ("memory/auth", "floor-a", "floor A"),
    ] {
        if let Some(row) = report::find(rows, "pinned", scenario, c) {
            let floor = report::find(rows, "pinned", floor_name, c);
            goals.push(Goal::new(
                &format!("{scenario} p99, {c} conns, wrk alone on CPU {WRK_CPU}"),
                "< 2 ms",
                format!(
                    "{:.2} ms ({floor_label}: {:.2} ms; {:.0} req/s)",
                    row.p99_us / 1000.0,
                    floor.map_or(f64::NAN, |f| f.p99_us / 1000.0),
                    row.rps_mean
                ),
                Some(row.p99_us < 2000.0),
            ));
        }
    }
    let memory = extra["memory_store"].as_array();
    for report in memory.into_iter().flatten() {
        let variant = report["variant"].as_str().unwrap_or_default();
        let hwm = report["hwm_kb_after_load"].as_u64().unwrap_or(0);
        let sessions = report["sessions"].as_u64().unwrap_or(0);
        let counts = sessions >= 100_000;
        goals.push(Goal::new(
            &format!("peak RSS, memory store, {sessions} sessions ({variant})"),
            "< 40 MB at 100k",
            format!("{:.1} MB", kb_to_mb(hwm)),
            counts.then_some(kb_to_mb(hwm) < 40.0),
        ));
    }
    let first = options.levels[0];
    let last = *options.levels.last().unwrap_or(&first);
    for conns in &options.connections {
        let a = report::find(
            rows,
            &format!("sessions-{first}"),
            "redis/forward-auth",
            *conns,
        );
        let b = report::find(
            rows,
            &format!("sessions-{last}"),
            "redis/forward-auth",
            *conns,
        );
        if let (Some(a), Some(b)) = (a, b) {
            let change = b.rps_mean / a.rps_mean - 1.0;
            let ratio_change = match (a.vs_floor_b, b.vs_floor_b) {
                (Some(x), Some(y)) => y / x - 1.0,
                _ => f64::NAN,
            };
            // Judged on the ratio to floor B measured in the same phase: floor B reads one key
            // from the same Redis, so it is the control for the machine's own drift between
            // phases minutes apart (floor B's req/s moves by 10-20% on the 2-core VM).
            goals.push(Goal::new(
                &format!("redis/forward-auth {first} -> {last} sessions, {conns} conns"),
                "within 10% (ratio to floor B)",
                format!(
                    "vs floor B {:+.1}% ({:.2}x -> {:.2}x); req/s {:+.1}% ({:.0} -> {:.0}); p99 {:.2} -> {:.2} ms",
                    ratio_change * 100.0,
                    a.vs_floor_b.unwrap_or(f64::NAN),
                    b.vs_floor_b.unwrap_or(f64::NAN),
                    change * 100.0,
                    a.rps_mean,
                    b.rps_mean,
                    a.p99_us / 1000.0,
                    b.p99_us / 1000.0
                ),
                (last >= 1_000_000 && ratio_change.is_finite())
                    .then_some(ratio_change.abs() <= 0.10),
            ));
        }
    }
    goals
}
