//! The end of a run: the summary table and the targets printed, and everything written as one
//! JSON file to bench/results/.

use std::path::Path;

use serde::Serialize;

use crate::bench::Bench;
use crate::facts::Facts;
use crate::machine;
use crate::options::Options;
use crate::phases::Outcome;
use crate::report::{self, Row, Target};
use crate::report_e2e;
use crate::targets;
use crate::wrk::Round;

/// The results file.
#[derive(Serialize)]
struct Results<'a> {
    kind: &'static str,
    started_at: &'a str,
    finished_at: String,
    elapsed_s: f64,
    revision: String,
    machine: serde_json::Value,
    options: &'a Options,
    ok: bool,
    failures: &'a [String],
    targets: Vec<Target>,
    summary: Vec<Row>,
    facts: Facts,
    counter_cost: String,
    rounds: &'a [Round],
    markdown: Markdown,
}

#[derive(Serialize)]
struct Markdown {
    table: String,
    /// The end-to-end rows, with their ratios to the proxy alone and to the null auth server.
    e2e: String,
    targets: String,
}

/// When the run started: `date` (for the file name) and `started_at` (UTC).
pub struct Start<'a> {
    pub date: &'a str,
    pub started_at: &'a str,
}

/// Prints and writes the results; true when every answer had the expected status. The run's
/// folder `dir` is removed then, and kept (with its logs) otherwise.
pub fn finish(
    options: &Options,
    bench: &Bench,
    outcome: Outcome,
    dir: &Path,
    start: Start,
) -> anyhow::Result<bool> {
    let mut rows = report::rows(&bench.rounds);
    rows.retain(|r| r.phase != "warmup");
    let targets = targets::evaluate_targets(options, &rows, &outcome.facts.memory_store);
    let (_, finished_at) = machine::utc_now();
    let all_ok = bench.failures.is_empty();
    let table = report::markdown(&rows);
    let e2e = report_e2e::markdown(&rows);
    let targets_table = report::targets_markdown(&targets);
    println!("\n{table}\n{e2e}\n{targets_table}");
    println!("{}", outcome.facts.notes);
    if !outcome.counter_cost.is_empty() {
        println!("{}", outcome.counter_cost);
    }

    let results = Results {
        kind: if options.smoke { "smoke" } else { "full" },
        started_at: start.started_at,
        finished_at,
        elapsed_s: bench.started.elapsed().as_secs_f64(),
        revision: machine::git_revision(&options.repo),
        machine: machine::machine(),
        options,
        ok: all_ok,
        failures: &bench.failures,
        targets,
        summary: rows,
        facts: outcome.facts,
        counter_cost: outcome.counter_cost,
        rounds: &bench.rounds,
        markdown: Markdown {
            table,
            e2e,
            targets: targets_table,
        },
    };
    // Through a Value, whose maps are sorted: the files keep the key order they always had.
    let results = serde_json::to_value(&results)?;
    let out = options.out.clone().unwrap_or_else(|| {
        let name = if options.smoke {
            format!("tmp-smoke-{}.json", start.date)
        } else {
            format!("{}.json", start.date)
        };
        options.repo.join("bench/results").join(name)
    });
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")?;
    println!("results written to {}", out.display());
    if all_ok {
        let _ = std::fs::remove_dir_all(dir);
        println!(
            "every answer had the expected status ({} rounds, {:.0} s)",
            bench.rounds.len(),
            bench.started.elapsed().as_secs_f64()
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
