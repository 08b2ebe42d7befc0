//! The rounds: wrk runs, each printed as it ends and kept for the report, with every wrong
//! status recorded as a failure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::options::Options;
use crate::processes::Processes;
use crate::scenario::Scenario;
use crate::wrk::{self, Round};

pub struct Bench {
    options: Options,
    /// bench/wrk/count.lua: every status counted.
    count_script: PathBuf,
    /// bench/wrk/latency.lua: no `response` callback (calibration of the counter's cost).
    uncounted_script: PathBuf,
    /// count.lua plus a 10 ms think time per request (paced rounds).
    paced_script: PathBuf,
    pub rounds: Vec<Round>,
    pub failures: Vec<String>,
    pub started: Instant,
    /// Every process of the bench (to tell other load on the machine apart).
    pub ours: Vec<u32>,
    cores: f64,
}

/// How wrk runs a round.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Load {
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
pub const WRK_CPU: &str = "1";
pub const SERVER_CPUS: &str = "0";

/// Think time of each connection in paced rounds.
pub const PACE_MS: u32 = 10;

impl Bench {
    /// `paced_script` is count.lua with the think time added (written by the caller).
    pub fn new(options: &Options, paced_script: &Path, started: Instant) -> Bench {
        Bench {
            options: options.clone(),
            count_script: options.repo.join("bench/wrk/count.lua"),
            uncounted_script: options.repo.join("bench/wrk/latency.lua"),
            paced_script: paced_script.to_path_buf(),
            rounds: Vec::new(),
            failures: Vec::new(),
            started,
            ours: Vec::new(),
            cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        }
    }

    pub fn round(
        &mut self,
        phase: &str,
        scenario: &Scenario,
        connections: u32,
        rep: u32,
        duration_s: u32,
    ) -> anyhow::Result<()> {
        self.round_with(phase, scenario, connections, rep, duration_s, Load::Counted)
    }

    pub fn round_with(
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
    pub fn interleaved(
        &mut self,
        phase: &str,
        scenarios: &[&Scenario],
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
