//! The phases of a run, in the order they run, one module each:
//!
//! - setup: Redis, the IdP, the portcullis binaries (and, after the fill, the floors and the
//!   echo app: floor B reads alice's session key, which the login makes);
//! - logins: a real sign-in on portcullis, and what the session costs in Redis;
//! - fill: sessions made through the store code (1 and 50 groups, filler to the first level);
//! - scenarios: every check without a proxy, checked once, warm-up, then the main rounds;
//! - e2e: nginx, Traefik, Caddy and the peer (Apache with mod_auth_openidc) in front of the
//!   echo app, started and signed in here;
//! - latency: paced, pinned and calibration rounds;
//! - growth: the Redis check again with more sessions in Redis;
//! - memory: the in-memory store holding many sessions.
//!
//! Rounds go to [`Bench`]; each phase returns the rest of what the report needs of it.

pub mod e2e;
pub mod fill;
pub mod growth;
pub mod latency;
pub mod logins;
pub mod memory;
pub mod scenarios;
pub mod setup;

use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail};
use portcullis::crypto::Keys;
use portcullis_testkit::env::COOKIE_SECRET;

use crate::bench::Bench;
use crate::facts::Facts;
use crate::options::Options;
use crate::processes::Binaries;
use crate::redis_admin;

/// What every phase reads.
pub struct Context<'a> {
    pub options: &'a Options,
    /// The run's folder: logs, rendered configuration, Redis' folder.
    pub dir: &'a Path,
    pub bins: &'a Binaries,
    /// For the runner's own requests (sign-ins, filling, preflight): two threads, like wrk.
    pub rt: tokio::runtime::Runtime,
    /// The servers' cookie keys, for cookies of sessions made through the store code.
    pub keys: Keys,
    /// The client of the single checked request before a scenario's rounds.
    pub client: reqwest::Client,
}

/// What the phases found, beside the rounds.
pub struct Outcome {
    pub facts: Facts,
    pub counter_cost: String,
}

/// Every phase; whatever was started is stopped when this returns, even on an error.
pub fn run(
    options: &Options,
    bench: &mut Bench,
    dir: &Path,
    bins: &Binaries,
) -> anyhow::Result<Outcome> {
    let cx = Context {
        options,
        dir,
        bins,
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        keys: Keys::derive(COOKIE_SECRET.as_bytes()).map_err(|e| anyhow!("{e}"))?,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()?,
    };
    // Declared after `cx`, so dropped before it: the programs stop before the runtime goes.
    let (mut live, servers) = setup::start_servers(&cx)?;
    let mut admin = redis_admin::connect(&servers.redis_url)?;
    let logins = logins::run(&cx, &servers, &mut admin)?;
    let (extra, mut filler) = fill::run(&cx, &servers, &logins, &mut admin)?;
    let floors = setup::start_floors(&cx, &mut live, &servers, &logins.session_key)?;
    let main = scenarios::run(&cx, bench, &mut live, &servers, &floors, &logins, &extra)?;
    let e2e = e2e::run(&cx, bench, &mut live, &servers, &floors, &logins)?;
    if main.scenarios.is_empty() && e2e == 0 {
        bail!("--only matches no scenario");
    }
    let latency = latency::run(&cx, bench, &mut live, &main.scenarios)?;
    let growth = growth::run(
        &cx,
        bench,
        &mut live,
        &mut filler,
        &mut admin,
        &main.scenarios,
    )?;
    let memory = memory::run(&cx, bench, &mut live, &logins, &main.scenarios)?;
    let facts = Facts::new(
        options,
        logins.facts,
        &extra,
        filler,
        main.hwm_after_main,
        growth,
        memory,
    );
    Ok(Outcome {
        facts,
        counter_cost: latency.counter_cost,
    })
}
