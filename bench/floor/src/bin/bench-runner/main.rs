//! bench-runner: the whole portcullis benchmark in one process (see bench/README.md).
//!
//! Starts redis-server, the test IdP, three portcullis binaries (Redis store with the session
//! cache on and off, memory store), the floors, an echo app, nginx, Traefik, Caddy and Apache
//! with mod_auth_openidc, all on loopback; signs in for real; then drives wrk (separate
//! processes) in interleaved rounds, checking the status of every answer.
//!
//! ```text
//! bench-runner [--smoke] [--duration S] [--reps N] [--connections 16,64]
//!              [--levels 1000,100000,1000000] [--memory-sessions N] [--out FILE]
//! bench-runner memory-server ...   (internal: see memory_server.rs)
//! ```

mod bench;
mod caught;
mod facts;
mod machine;
mod memory_server;
mod options;
mod phases;
mod processes;
mod procs;
mod proxies;
mod redis_admin;
mod report;
mod report_e2e;
mod results;
mod scenario;
mod sessions;
mod targets;
mod wrk;

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use bench::{Bench, PACE_MS};
use options::Options;
use processes::Binaries;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("memory-server") {
        memory_server::main(&args[1..]).map(|()| true)
    } else {
        options::parse(&args).and_then(run)
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

fn run(options: Options) -> anyhow::Result<bool> {
    // Every program started from here on dies with the runner, even if it is killed outright.
    portcullis_testkit::process::kill_children_with_parent();
    let started = Instant::now();
    let (date, started_at) = machine::utc_now();
    let bins = Binaries::find()?;
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = options.repo.join("bench/wrk/count.lua");
    let count_lua =
        std::fs::read_to_string(&script).with_context(|| format!("read {}", script.display()))?;
    let paced_script = dir.join("paced.lua");
    std::fs::write(
        &paced_script,
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
    let mut bench = Bench::new(&options, &paced_script, started);
    let outcome = match phases::run(&options, &mut bench, &dir, &bins) {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("logs kept in {}", dir.display());
            return Err(err);
        }
    };
    let start = results::Start {
        date: &date,
        started_at: &started_at,
    };
    results::finish(&options, &bench, outcome, &dir, start)
}
