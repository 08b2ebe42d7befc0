//! The runner's command line (see bench/README.md); serialised into the results as given.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub smoke: bool,
    pub duration_s: u32,
    pub repetitions: u32,
    pub connections: Vec<u32>,
    /// Sessions in Redis for the growth phase (the main phase runs at the first level).
    pub levels: Vec<u64>,
    pub memory_sessions: u64,
    pub warmup: bool,
    pub wrk_threads: u32,
    /// Only these main-phase scenarios, and no growth or memory phase (for profiling).
    pub only: Vec<String>,
    /// Run both portcullis binaries under `perf record` (bench/profile.sh).
    pub perf: bool,
    /// Run portcullis and the floors under `valgrind --tool=callgrind` (bench/profile.sh
    /// --callgrind): instruction counts, repeatable whatever else the machine does.
    pub callgrind: bool,
    #[serde(skip)]
    pub out: Option<PathBuf>,
    #[serde(skip)]
    pub repo: PathBuf,
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

/// The options of `args` (the smoke run's defaults with --smoke), the repository canonical.
pub fn parse(args: &[String]) -> anyhow::Result<Options> {
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
        callgrind: false,
        out: None,
        repo: portcullis_testkit::paths::repo_root(),
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
        if flag == "--callgrind" {
            options.callgrind = true;
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
    if options.perf && options.callgrind {
        bail!("--perf and --callgrind exclude each other");
    }
    options.repo = options
        .repo
        .canonicalize()
        .with_context(|| format!("repository {}", options.repo.display()))?;
    Ok(options)
}
