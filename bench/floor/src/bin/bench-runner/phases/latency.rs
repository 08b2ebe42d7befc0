//! Latency below saturation (paced rounds), without the load generator on the servers' CPU
//! (pinned rounds), and what counting every status costs wrk (calibration rounds).

use crate::bench::{Bench, Load, PACE_MS, SERVER_CPUS, WRK_CPU};
use crate::processes::Processes;
use crate::procs;
use crate::report;
use crate::scenario::Scenario;

use super::Context;

pub struct Latency {
    /// What the calibration rounds say the status counter costs ("" without them).
    pub counter_cost: String,
}

/// Nothing here with --only (a profiling run measures the main phase only).
pub fn run(
    cx: &Context,
    bench: &mut Bench,
    live: &mut Processes,
    scenarios: &[Scenario],
) -> anyhow::Result<Latency> {
    let options = cx.options;
    let max_c = *options.connections.iter().max().unwrap_or(&16);
    let pick = |names: &[&str]| -> Vec<&Scenario> {
        names
            .iter()
            .filter_map(|n| scenarios.iter().find(|s| s.name == *n))
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
    Ok(Latency {
        counter_cost: counter_cost(bench),
    })
}

/// Each calibrated scenario's req/s with and without the counter.
fn counter_cost(bench: &Bench) -> String {
    let calibration: Vec<_> = bench
        .rounds
        .iter()
        .filter(|r| r.phase == "calibration")
        .cloned()
        .collect();
    let rows = report::rows(&calibration);
    let mut costs = Vec::new();
    for counted in &rows {
        let uncounted = format!("{} (uncounted)", counted.scenario);
        if let Some(u) = report::find(&rows, "calibration", &uncounted, counted.connections) {
            costs.push(format!(
                "{}: {:.0} req/s counted, {:.0} uncounted ({:+.1}%)",
                counted.scenario,
                counted.rps_mean,
                u.rps_mean,
                (u.rps_mean / counted.rps_mean - 1.0) * 100.0
            ));
        }
    }
    if costs.is_empty() {
        String::new()
    } else {
        format!(
            "wrk's status counter (response callback), calibration rounds: {}",
            costs.join("; ")
        )
    }
}
