//! One measured round: wrk in its own process, with bench/wrk/count.lua tallying every status.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use crate::procs;

/// What wrk requests, and what every answer must be.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expect: u16,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Errors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// wrk's own count of answers >= 400 (expected in deny rounds).
    pub status: u64,
    pub timeout: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Latency {
    pub min: u64,
    pub mean: f64,
    pub stdev: f64,
    pub max: u64,
    pub p50: u64,
    pub p75: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct WrkOutput {
    requests: u64,
    duration_us: u64,
    bytes: u64,
    errors: Errors,
    latency_us: Latency,
    statuses: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Round {
    pub scenario: String,
    pub connections: u32,
    pub duration_s: u32,
    pub repetition: u32,
    pub phase: String,
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes: u64,
    pub errors: Errors,
    pub latency_us: Latency,
    /// Every answer's status, as counted by wrk's `response` callback.
    pub statuses: BTreeMap<String, u64>,
    pub expected_status: u16,
    /// Whether every status was counted (false only in calibration rounds).
    pub counted: bool,
    pub pace_ms: Option<u32>,
    /// True only when every answer had the expected status and no request failed.
    pub ok: bool,
    pub problems: Vec<String>,
    /// CPU seconds used during the round by each process of the path (name -> seconds).
    pub cpu_s: BTreeMap<String, f64>,
    /// CPU seconds the machine spent on processes that are not the bench's during the round
    /// (other builds, tests...): the bench is only as good as this is small.
    pub foreign_cpu_s: f64,
}

pub struct Settings<'a> {
    pub script: &'a Path,
    pub threads: u32,
    /// False for a script without the `response` callback (calibration only): then only wrk's
    /// own count of answers >= 400 is available, and a 3xx would go unnoticed.
    pub counted: bool,
    /// Think time per request set by the script (paced rounds), in milliseconds.
    pub pace_ms: Option<u32>,
    /// The CPU wrk is confined to (pinned rounds), given to `taskset -c`.
    pub cpu: Option<&'a str>,
}

/// Runs wrk for `duration_s` with `connections`, bounded to the duration plus 20 s.
#[allow(clippy::too_many_arguments)]
pub fn run(
    settings: &Settings<'_>,
    phase: &str,
    scenario: &str,
    target: &Target,
    connections: u32,
    duration_s: u32,
    repetition: u32,
    watch: &[(String, u32)],
    ours: &[u32],
) -> anyhow::Result<Round> {
    let threads = settings.threads.min(connections).max(1);
    let mut command = match settings.cpu {
        Some(cpu) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpu, "wrk"]);
            taskset
        }
        None => Command::new("wrk"),
    };
    command
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{duration_s}s"))
        .args(["--timeout", "2s"])
        .arg("-s")
        .arg(settings.script);
    for (name, value) in &target.headers {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command
        .arg(&target.url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ours_cpu = || -> f64 {
        ours.iter()
            .map(|pid| procs::cpu_seconds(*pid).unwrap_or(0.0))
            .sum::<f64>()
            + procs::own_and_reaped_seconds()
    };
    let machine_before = procs::machine_busy_seconds();
    let ours_before = ours_cpu();
    let cpu_before: Vec<f64> = watch
        .iter()
        .map(|(_, pid)| procs::cpu_seconds(*pid).unwrap_or(f64::NAN))
        .collect();
    let mut child = command
        .spawn()
        .context("cannot start wrk (apt-get install wrk)")?;
    let mut stdout = child.stdout.take().context("wrk stdout")?;
    let mut stderr = child.stderr.take().context("wrk stderr")?;
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        (out, err)
    });
    let deadline = Instant::now() + Duration::from_secs(u64::from(duration_s) + 20);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("wrk did not finish {scenario} within {duration_s} s + 20 s; killed it");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let foreign_cpu_s =
        (procs::machine_busy_seconds() - machine_before) - (ours_cpu() - ours_before);
    let cpu_s: BTreeMap<String, f64> = watch
        .iter()
        .zip(cpu_before)
        .map(|((name, pid), before)| {
            let after = procs::cpu_seconds(*pid).unwrap_or(f64::NAN);
            (name.clone(), after - before)
        })
        .collect();
    let (out, err) = reader
        .join()
        .map_err(|_| anyhow!("wrk output reader panicked"))?;
    if !status.success() {
        bail!("wrk failed for {scenario} ({status}): {err}{out}");
    }
    let json = out
        .lines()
        .find_map(|line| line.strip_prefix("BENCH_JSON "))
        .ok_or_else(|| anyhow!("no BENCH_JSON line from wrk for {scenario}:\n{out}\n{err}"))?;
    let parsed: WrkOutput =
        serde_json::from_str(json).with_context(|| format!("wrk JSON for {scenario}: {json}"))?;

    let mut problems = Vec::new();
    if parsed.requests == 0 {
        problems.push("no request completed".to_string());
    }
    if settings.counted {
        let counted: u64 = parsed.statuses.values().sum();
        if counted != parsed.requests {
            problems.push(format!(
                "{counted} statuses counted for {} completed requests",
                parsed.requests
            ));
        }
        let expected = target.expect.to_string();
        for (status, count) in &parsed.statuses {
            if *status != expected {
                problems.push(format!("{count} answers {status}, expected {expected}"));
            }
        }
    } else if target.expect < 400 && parsed.errors.status > 0 {
        problems.push(format!("{} answers >= 400", parsed.errors.status));
    } else if target.expect >= 400 && parsed.errors.status != parsed.requests {
        problems.push(format!(
            "only {} of {} answers >= 400",
            parsed.errors.status, parsed.requests
        ));
    }
    let e = &parsed.errors;
    if e.connect + e.read + e.write + e.timeout > 0 {
        problems.push(format!(
            "socket errors: connect {}, read {}, write {}, timeout {}",
            e.connect, e.read, e.write, e.timeout
        ));
    }
    let seconds = parsed.duration_us as f64 / 1e6;
    Ok(Round {
        scenario: scenario.to_string(),
        connections,
        duration_s,
        repetition,
        phase: phase.to_string(),
        requests: parsed.requests,
        requests_per_s: if seconds > 0.0 {
            parsed.requests as f64 / seconds
        } else {
            0.0
        },
        bytes: parsed.bytes,
        errors: parsed.errors,
        latency_us: parsed.latency_us,
        statuses: parsed.statuses,
        expected_status: target.expect,
        counted: settings.counted,
        pace_ms: settings.pace_ms,
        ok: problems.is_empty(),
        problems,
        cpu_s,
        foreign_cpu_s,
    })
}
