//! The growth phase: the forward-auth check (session cache on and off) and both floors again at
//! each level of sessions in Redis, filled through the store code before each level's rounds.

use crate::bench::Bench;
use crate::processes::Processes;
use crate::procs;
use crate::redis_admin::used_memory;
use crate::scenario::{preflight, Scenario};

use super::fill::Filler;
use super::Context;

pub struct Growth {
    pub redis_used_memory_final: u64,
    /// Peak RSS (kB) of portcullis-redis after the last level.
    pub hwm_portcullis_redis_final: u64,
}

/// No rounds with --only (a profiling run measures the main phase only).
pub fn run(
    cx: &Context,
    bench: &mut Bench,
    live: &mut Processes,
    filler: &mut Filler,
    admin: &mut redis::Connection,
    scenarios: &[Scenario],
) -> anyhow::Result<Growth> {
    let options = cx.options;
    // floor B reads one key from the same Redis: the control for what more keys cost Redis,
    // and for the portcullis without its session cache, which reads the store on every check.
    // floor A reads nothing: the control for the cached check, which reads its cache.
    let growth: Vec<&Scenario> = [
        "floor-a",
        "floor-b",
        "redis/forward-auth",
        "redis-nocache/forward-auth",
    ]
    .iter()
    .filter_map(|n| scenarios.iter().find(|s| s.name == *n))
    .collect();
    for &level in &options.levels {
        if !options.only.is_empty() {
            break;
        }
        filler.fill_to(cx, level, admin)?;
        println!("growth phase: {level} sessions in Redis");
        for s in &growth {
            cx.rt.block_on(preflight(&cx.client, s))?;
        }
        bench.interleaved(&format!("sessions-{level}"), &growth, live)?;
    }
    Ok(Growth {
        redis_used_memory_final: used_memory(admin)?,
        hwm_portcullis_redis_final: procs::status_kb(live.pid("portcullis-redis"), "VmHWM")?,
    })
}
