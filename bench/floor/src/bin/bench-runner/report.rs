//! Rounds -> rows (mean over repetitions), ratios to the floors, targets, table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::wrk::Round;

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub phase: String,
    pub scenario: String,
    pub connections: u32,
    pub repetitions: usize,
    pub requests: u64,
    pub rps_mean: f64,
    pub rps_min: f64,
    pub rps_max: f64,
    /// Means over the repetitions, microseconds.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: u64,
    pub vs_floor_a: Option<f64>,
    pub vs_floor_b: Option<f64>,
    /// End-to-end rows (`PROXY/ROUTE`): req/s divided by `PROXY/direct`'s (the proxy alone)
    /// and by `PROXY/null-auth`'s (the same proxy checked by the null auth server).
    pub vs_proxy_alone: Option<f64>,
    pub vs_null_auth: Option<f64>,
    /// CPU microseconds per request of each process on the path.
    pub cpu_us_per_request: BTreeMap<String, f64>,
    /// Share of the machine's CPU used by processes that are not the bench's, mean of rounds.
    pub other_load_pct: f64,
    pub statuses: BTreeMap<String, u64>,
    pub expected_status: u16,
    /// False for calibration rounds run without the status counter.
    pub counted: bool,
    pub ok: bool,
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// One row per (phase, scenario, connections), in first-seen order.
pub fn rows(rounds: &[Round]) -> Vec<Row> {
    let mut keys: Vec<(String, String, u32)> = Vec::new();
    for r in rounds {
        let key = (r.phase.clone(), r.scenario.clone(), r.connections);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    let mut rows: Vec<Row> = keys
        .into_iter()
        .map(|(phase, scenario, connections)| {
            let group: Vec<&Round> = rounds
                .iter()
                .filter(|r| {
                    r.phase == phase && r.scenario == scenario && r.connections == connections
                })
                .collect();
            let requests: u64 = group.iter().map(|r| r.requests).sum();
            let mut statuses = BTreeMap::new();
            for r in &group {
                for (status, count) in &r.statuses {
                    *statuses.entry(status.clone()).or_insert(0) += count;
                }
            }
            let mut cpu_us_per_request = BTreeMap::new();
            if let Some(first) = group.first() {
                for name in first.cpu_s.keys() {
                    let seconds: f64 = group.iter().filter_map(|r| r.cpu_s.get(name)).sum();
                    if requests > 0 && seconds.is_finite() {
                        cpu_us_per_request.insert(name.clone(), seconds * 1e6 / requests as f64);
                    }
                }
            }
            let rps: Vec<f64> = group.iter().map(|r| r.requests_per_s).collect();
            let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
            let other_load_pct = mean(
                group
                    .iter()
                    .map(|r| 100.0 * r.foreign_cpu_s / (f64::from(r.duration_s) * cores)),
            );
            Row {
                phase,
                scenario,
                connections,
                repetitions: group.len(),
                requests,
                rps_mean: mean(rps.iter().copied()),
                rps_min: rps.iter().copied().fold(f64::INFINITY, f64::min),
                rps_max: rps.iter().copied().fold(0.0, f64::max),
                p50_us: mean(group.iter().map(|r| r.latency_us.p50 as f64)),
                p90_us: mean(group.iter().map(|r| r.latency_us.p90 as f64)),
                p99_us: mean(group.iter().map(|r| r.latency_us.p99 as f64)),
                p999_us: mean(group.iter().map(|r| r.latency_us.p999 as f64)),
                max_us: group.iter().map(|r| r.latency_us.max).max().unwrap_or(0),
                vs_floor_a: None,
                vs_floor_b: None,
                vs_proxy_alone: None,
                vs_null_auth: None,
                cpu_us_per_request,
                other_load_pct,
                statuses,
                expected_status: group.first().map_or(0, |r| r.expected_status),
                counted: group.iter().all(|r| r.counted),
                ok: group.iter().all(|r| r.ok),
            }
        })
        .collect();
    // Ratios to the floors measured in the same phase at the same connection count.
    let floors: Vec<(String, String, u32, f64)> = rows
        .iter()
        .filter(|r| r.scenario == "floor-a" || r.scenario == "floor-b")
        .map(|r| {
            (
                r.phase.clone(),
                r.scenario.clone(),
                r.connections,
                r.rps_mean,
            )
        })
        .collect();
    for row in &mut rows {
        if row.phase == "paced" {
            // Throughput is set by the think time there: a ratio would mean nothing.
            continue;
        }
        let floor = |name: &str| {
            floors
                .iter()
                .find(|(p, s, c, _)| p == &row.phase && s == name && *c == row.connections)
                .map(|(_, _, _, rps)| row.rps_mean / rps)
        };
        row.vs_floor_a = floor("floor-a");
        row.vs_floor_b = floor("floor-b");
    }
    // Ratios to the same proxy alone and with the null auth server, in the same phase at the
    // same connection count.
    let rps: Vec<(String, String, u32, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.phase.clone(),
                r.scenario.clone(),
                r.connections,
                r.rps_mean,
            )
        })
        .collect();
    for row in &mut rows {
        let Some((proxy, route)) = row.scenario.split_once('/') else {
            continue;
        };
        let baseline = |route: &str| {
            let name = format!("{proxy}/{route}");
            rps.iter()
                .find(|(p, s, c, _)| p == &row.phase && *s == name && *c == row.connections)
                .map(|(_, _, _, base)| row.rps_mean / base)
        };
        row.vs_proxy_alone = baseline("direct");
        if route != "direct" {
            row.vs_null_auth = baseline("null-auth");
        }
    }
    rows
}

pub fn find<'r>(rows: &'r [Row], phase: &str, scenario: &str, connections: u32) -> Option<&'r Row> {
    rows.iter()
        .find(|r| r.phase == phase && r.scenario == scenario && r.connections == connections)
}

pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

pub fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "".to_string(), |v| format!("{v:.2}x"))
}

fn statuses(row: &Row) -> String {
    if !row.counted {
        let verdict = if row.ok { "ok" } else { "WRONG" };
        return format!("{verdict} (not counted: wrk saw no answer >= 400)");
    }
    let all: Vec<String> = row
        .statuses
        .iter()
        .map(|(status, count)| format!("{status}x{count}"))
        .collect();
    let verdict = if row.ok { "ok" } else { "WRONG" };
    format!("{verdict} {}", all.join(" "))
}

/// A Markdown table of the rows (all phases).
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| phase | scenario | conns | req/s | p50 ms | p99 ms | p99.9 ms | vs floor A | vs floor B | CPU µs/req (server) | other load | statuses |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
    );
    for row in rows {
        let cpu: Vec<String> = row
            .cpu_us_per_request
            .iter()
            .map(|(name, us)| format!("{name} {us:.1}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.0}% | {} |",
            row.phase,
            row.scenario,
            row.connections,
            row.rps_mean,
            ms(row.p50_us),
            ms(row.p99_us),
            ms(row.p999_us),
            ratio(row.vs_floor_a),
            ratio(row.vs_floor_b),
            cpu.join(", "),
            row.other_load_pct,
            statuses(row),
        );
    }
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub name: String,
    pub wanted: String,
    pub measured: String,
    pub met: Option<bool>,
}

impl Target {
    pub fn new(name: &str, wanted: &str, measured: String, met: Option<bool>) -> Target {
        Target {
            name: name.to_string(),
            wanted: wanted.to_string(),
            measured,
            met,
        }
    }
}

pub fn targets_markdown(targets: &[Target]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| target | wanted | measured | met |");
    let _ = writeln!(out, "|---|---|---|---|");
    for t in targets {
        let met = match t.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            t.name, t.wanted, t.measured, met
        );
    }
    out
}
