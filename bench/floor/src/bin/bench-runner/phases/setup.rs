//! Starting the servers: Redis, the IdP and the portcullis binaries first; the floors and the
//! echo app once alice's session exists (floor B reads its key). The proxies start with their
//! phase (phases/e2e.rs).

use std::collections::HashMap;
use std::process::Command;

use portcullis_testkit::idp::Extras;
use portcullis_testkit::{env, free_port, Idp, RedisServer};

use crate::caught::caught;
use crate::processes::{launcher, Processes};
use crate::proxies::apache;

use super::Context;

/// The session cache of the portcullis with the Redis store (SESSION_CACHE_TTL), and of the
/// one without: every other setting is the same.
pub const SESSION_CACHE_ON: &str = "10s";
pub const SESSION_CACHE_OFF: &str = "0";

/// How long the IdP's sessions and refresh tokens last: as long as portcullis' (12 h).
const IDP_SESSION_LIFETIME_S: u64 = 12 * 3600;

/// Where the servers of the first step listen.
pub struct Servers {
    pub redis_url: String,
    /// portcullis with the Redis store and its session cache on (the default configuration).
    pub pc_redis_port: u16,
    /// The same Redis and cookie secret with the session cache off: alice's cookie works on
    /// both, as on two replicas.
    pub pc_nocache_port: u16,
    pub pc_memory_port: u16,
    /// portcullis-redis again with `UPSTREAM_JWT=true` (same Redis, cookie secret and cache):
    /// what the signed identity assertion adds to the cached check.
    pub pc_jwt_port: u16,
    /// The ports of the two Apache instances (their redirect URIs are registered at the IdP).
    pub apache_redis_port: u16,
    pub apache_shm_port: u16,
}

impl Servers {
    pub fn pc_redis_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_redis_port)
    }

    pub fn pc_nocache_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_nocache_port)
    }

    pub fn pc_jwt_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_jwt_port)
    }

    pub fn pc_memory_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_memory_port)
    }

    /// host:port of Redis.
    pub fn redis_host(&self) -> &str {
        self.redis_url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
    }
}

/// Where the servers of the second step listen.
pub struct Floors {
    pub floor_a_port: u16,
    pub floor_b_port: u16,
    pub echo_port: u16,
}

/// The tests' environment for an instance on `port` (its own callback), as a release binary
/// is configured in production: by environment only, logging at `warn`.
pub fn portcullis_env(idp: &Idp, port: u16, redis: Option<&str>) -> HashMap<String, String> {
    let mut env = env::test_env(idp, &format!("http://127.0.0.1:{port}"), redis);
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    env
}

/// redis-server, the test IdP (with a client for Apache), then portcullis with the Redis
/// store (session cache on and off) and with the memory store.
pub fn start_servers(cx: &Context) -> anyhow::Result<(Processes, Servers)> {
    let redis = caught("starting redis-server", || RedisServer::start_in(cx.dir))?;
    let servers = Servers {
        redis_url: redis.url(),
        pc_redis_port: free_port(),
        pc_nocache_port: free_port(),
        pc_memory_port: free_port(),
        pc_jwt_port: free_port(),
        apache_redis_port: free_port(),
        apache_shm_port: free_port(),
    };
    let redirect_uris: Vec<String> = [
        servers.pc_redis_port,
        servers.pc_nocache_port,
        servers.pc_memory_port,
        servers.pc_jwt_port,
    ]
    .iter()
    .map(|p| format!("http://127.0.0.1:{p}/oauth2/callback"))
    .collect();
    let extras = Extras {
        client: Some(apache::client(&[
            servers.apache_redis_port,
            servers.apache_shm_port,
        ])),
        // portcullis refreshes alice's sessions every SESSION_REFRESH_INTERVAL (5 minutes) for
        // the whole run; past the IdP's default 10 minutes a refresh would end them.
        session_lifetime_s: Some(IDP_SESSION_LIFETIME_S),
        ..Extras::default()
    };
    let idp = caught("starting the test IdP", || {
        Idp::start_in_with(cx.dir, &redirect_uris, extras)
    })?;
    let mut live = Processes::new(redis, idp);
    let redis_url = Some(servers.redis_url.as_str());
    for (name, port, redis, cache, jwt) in [
        (
            "portcullis-redis",
            servers.pc_redis_port,
            redis_url,
            Some(SESSION_CACHE_ON),
            false,
        ),
        (
            "portcullis-redis-nocache",
            servers.pc_nocache_port,
            redis_url,
            Some(SESSION_CACHE_OFF),
            false,
        ),
        (
            "portcullis-memory",
            servers.pc_memory_port,
            None,
            None,
            false,
        ),
        (
            "portcullis-redis-jwt",
            servers.pc_jwt_port,
            redis_url,
            Some(SESSION_CACHE_ON),
            true,
        ),
    ] {
        let mut env = portcullis_env(&live.idp, port, redis);
        if jwt {
            // The key derived from COOKIE_SECRET, as a deployment without a key file signs.
            env.insert("UPSTREAM_JWT".into(), "true".into());
        }
        if let Some(ttl) = cache {
            // Set explicitly in both, whatever the default.
            env.insert("SESSION_CACHE_TTL".into(), ttl.into());
        }
        let command = launcher(cx.options, name, &cx.bins.portcullis, Some(&env));
        live.spawn_until_ok(name, command, cx.dir, port, "/readyz")?
            .measure_wrapped(cx.options)?;
    }
    Ok((live, servers))
}

/// Floor A, floor B (one Redis GET of `session_key`) and the echo app.
pub fn start_floors(
    cx: &Context,
    live: &mut Processes,
    servers: &Servers,
    session_key: &str,
) -> anyhow::Result<Floors> {
    let floor_a_port = free_port();
    let floor_b_port = free_port();
    let echo_port = free_port();
    for (name, mode, port) in [
        ("floor-a", "plain", floor_a_port),
        ("floor-b", "redis", floor_b_port),
        ("echo", "echo", echo_port),
    ] {
        // The echo app is never measured on its own: it is not profiled either.
        let wrapped = name != "echo";
        let mut command = if wrapped {
            launcher(cx.options, name, &cx.bins.floor, None)
        } else {
            Command::new(&cx.bins.floor)
        };
        command.args([mode, "--listen", &format!("127.0.0.1:{port}")]);
        if mode == "redis" {
            command.args(["--redis", &servers.redis_url, "--key", session_key]);
        }
        let child = live.spawn_until_ok(name, command, cx.dir, port, "/")?;
        if wrapped {
            child.measure_wrapped(cx.options)?;
        }
    }
    Ok(Floors {
        floor_a_port,
        floor_b_port,
        echo_port,
    })
}
