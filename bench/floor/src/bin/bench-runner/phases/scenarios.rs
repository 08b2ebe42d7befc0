//! The main phase: every check without a proxy, each scenario checked once by hand, then
//! measured in interleaved rounds at the first level of sessions in Redis.

use serde::Serialize;

use crate::bench::Bench;
use crate::processes::Processes;
use crate::procs;
use crate::scenario::{
    auth_headers, auth_url, forward_auth_headers, forward_auth_url, preflight,
    same_headers_as_floor, Scenario,
};

use super::fill::ExtraSessions;
use super::logins::{Logins, USER};
use super::setup::{Floors, Servers};
use super::Context;

/// Peak RSS (VmHWM, kB) of the servers after the main phase.
#[derive(Debug, Clone, Serialize)]
pub struct HwmAfterMain {
    #[serde(rename = "portcullis-redis")]
    pub portcullis_redis: u64,
    #[serde(rename = "portcullis-memory")]
    pub portcullis_memory: u64,
    #[serde(rename = "floor-a")]
    pub floor_a: u64,
    #[serde(rename = "floor-b")]
    pub floor_b: u64,
}

pub struct MainPhase {
    /// The scenarios (only those of --only, if given); later phases measure some again.
    pub scenarios: Vec<Scenario>,
    pub hwm_after_main: HwmAfterMain,
}

pub fn run(
    cx: &Context,
    bench: &mut Bench,
    live: &mut Processes,
    servers: &Servers,
    floors: &Floors,
    logins: &Logins,
    extra: &ExtraSessions,
) -> anyhow::Result<MainPhase> {
    let options = cx.options;
    let mut scenarios = scenarios(live, servers, floors, logins, extra);
    if !options.only.is_empty() {
        scenarios.retain(|s| options.only.contains(&s.name));
    }
    for s in &scenarios {
        cx.rt.block_on(preflight(&cx.client, s))?;
    }
    let named = |name: &str| scenarios.iter().find(|s| s.name == name);
    if let (Some(floor), Some(ours)) = (named("floor-a"), named("redis/forward-auth")) {
        cx.rt
            .block_on(same_headers_as_floor(&cx.client, floor, ours))?;
        println!("floor A answers the same headers as portcullis' allowed check");
    }
    println!(
        "preflight: every scenario answers as expected ({} scenarios)",
        scenarios.len()
    );

    let max_c = *options.connections.iter().max().unwrap_or(&16);
    if options.warmup {
        println!("warm-up (1 s per scenario, statuses checked, not reported)");
        bench.ours = live.all_pids();
        for s in &scenarios {
            bench.round("warmup", s, max_c, 0, 1)?;
        }
    }
    println!("main phase: {} sessions in Redis", options.levels[0]);
    let all: Vec<&Scenario> = scenarios.iter().collect();
    bench.interleaved("main", &all, live)?;
    let hwm = |name: &str| procs::status_kb(live.pid(name), "VmHWM");
    let hwm_after_main = HwmAfterMain {
        portcullis_redis: hwm("portcullis-redis")?,
        portcullis_memory: hwm("portcullis-memory")?,
        floor_a: hwm("floor-a")?,
        floor_b: hwm("floor-b")?,
    };
    Ok(MainPhase {
        scenarios,
        hwm_after_main,
    })
}

/// Every scenario of the main phase, in the order they run.
fn scenarios(
    live: &Processes,
    servers: &Servers,
    floors: &Floors,
    logins: &Logins,
    extra: &ExtraSessions,
) -> Vec<Scenario> {
    let pids = live.pids();
    let pid = |name: &str| (name.to_string(), pids.get(name).copied().unwrap_or(0));
    let pc_redis_port = servers.pc_redis_port;
    let pc_nocache_port = servers.pc_nocache_port;
    let pc_nocache_host = servers.pc_nocache_host();
    let pc_memory_port = servers.pc_memory_port;
    let pc_redis_host = servers.pc_redis_host();
    let pc_memory_host = servers.pc_memory_host();
    let pc_jwt_port = servers.pc_jwt_port;
    let pc_jwt_host = servers.pc_jwt_host();
    let jwt_watch = vec![pid("portcullis-redis-jwt"), pid("redis")];
    let cookie_redis = logins.cookie_redis.as_str();
    let cookie_memory = logins.cookie_memory.as_str();
    let redis_watch = vec![pid("portcullis-redis"), pid("redis")];
    let nocache_watch = vec![pid("portcullis-redis-nocache"), pid("redis")];
    // The floors get the very same request headers as the forward-auth check (parsing them is
    // framework work, not portcullis work).
    let floor_headers = forward_auth_headers(&pc_redis_host, Some(cookie_redis));
    vec![
        Scenario::new(
            "floor-a",
            format!("http://127.0.0.1:{}/", floors.floor_a_port),
            floor_headers.clone(),
            200,
            vec![pid("floor-a")],
            None,
        ),
        Scenario::new(
            "floor-b",
            format!("http://127.0.0.1:{}/", floors.floor_b_port),
            floor_headers,
            200,
            vec![pid("floor-b"), pid("redis")],
            None,
        ),
        Scenario::new(
            "redis/forward-auth",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(cookie_redis)),
            200,
            redis_watch.clone(),
            Some(USER),
        ),
        Scenario::new(
            "redis/auth",
            auth_url(pc_redis_port),
            auth_headers(&pc_redis_host, Some(cookie_redis)),
            200,
            redis_watch.clone(),
            Some(USER),
        ),
        // The same cached checks with UPSTREAM_JWT=true, right after them in every repetition:
        // their ratio is what the signed identity assertion costs.
        Scenario::new(
            "redis-jwt/forward-auth",
            forward_auth_url(pc_jwt_port),
            forward_auth_headers(&pc_jwt_host, Some(cookie_redis)),
            200,
            jwt_watch.clone(),
            Some(USER),
        )
        .with_assertion(),
        Scenario::new(
            "redis-jwt/auth",
            auth_url(pc_jwt_port),
            auth_headers(&pc_jwt_host, Some(cookie_redis)),
            200,
            jwt_watch,
            Some(USER),
        )
        .with_assertion(),
        Scenario::new(
            "redis-nocache/forward-auth",
            forward_auth_url(pc_nocache_port),
            forward_auth_headers(&pc_nocache_host, Some(cookie_redis)),
            200,
            nocache_watch.clone(),
            Some(USER),
        ),
        Scenario::new(
            "redis-nocache/auth",
            auth_url(pc_nocache_port),
            auth_headers(&pc_nocache_host, Some(cookie_redis)),
            200,
            nocache_watch,
            Some(USER),
        ),
        Scenario::new(
            "memory/forward-auth",
            forward_auth_url(pc_memory_port),
            forward_auth_headers(&pc_memory_host, Some(cookie_memory)),
            200,
            vec![pid("portcullis-memory")],
            Some(USER),
        ),
        Scenario::new(
            "memory/auth",
            auth_url(pc_memory_port),
            auth_headers(&pc_memory_host, Some(cookie_memory)),
            200,
            vec![pid("portcullis-memory")],
            Some(USER),
        ),
        Scenario::new(
            "deny/bad-signature",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&extra.cookie_forged)),
            401,
            redis_watch.clone(),
            None,
        ),
        Scenario::new(
            "deny/no-cookie",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, None),
            401,
            redis_watch.clone(),
            None,
        ),
        Scenario::new(
            "deny/unknown-session",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&extra.cookie_unknown)),
            401,
            redis_watch.clone(),
            None,
        ),
        Scenario::new(
            "redis/forward-auth/1-group",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&extra.cookie_1)),
            200,
            redis_watch.clone(),
            Some("grp01"),
        ),
        Scenario::new(
            "redis/forward-auth/50-groups",
            forward_auth_url(pc_redis_port),
            forward_auth_headers(&pc_redis_host, Some(&extra.cookie_50)),
            200,
            redis_watch,
            Some("grp50"),
        ),
    ]
}
