//! The end-to-end phase: real proxies in front of the same echo app, in interleaved rounds.
//!
//! - nginx, Traefik and Caddy, each with four routes: straight to the app (the proxy alone),
//!   checked by the null auth server (floor A: the most any auth service can keep behind that
//!   proxy), and checked by portcullis with the Redis store, its session cache on and off;
//! - the peer: Apache with mod_auth_openidc, signed in at the same IdP, its sessions in the same
//!   Redis and in its default shared memory, and Apache alone.
//!
//! Every checked route is confirmed before the rounds: alice's cookie gives 200, no cookie a
//! 401 (portcullis) or a sign-in redirect (mod_auth_openidc).

use anyhow::bail;
use portcullis_testkit::env::COOKIE_NAME;

use crate::bench::Bench;
use crate::processes::{children_of, Processes};
use crate::proxies::{apache, Proxy, Upstreams, ROUTES};
use crate::scenario::{preflight, Scenario};

use super::logins::{self, Logins};
use super::setup::{Floors, Servers};
use super::Context;

/// The peer's scenarios: (name, instance, path).
const PEER: [(&str, apache::Store, &str); 3] = [
    ("apache/direct", apache::Store::Redis, apache::OPEN),
    (
        "apache/openidc-redis",
        apache::Store::Redis,
        apache::PROTECTED,
    ),
    ("apache/openidc-shm", apache::Store::Shm, apache::PROTECTED),
];

/// Every scenario name of the phase, in the order they run.
pub fn scenario_names() -> Vec<String> {
    let mut names: Vec<String> = Proxy::ALL
        .iter()
        .flat_map(|proxy| {
            ROUTES
                .iter()
                .map(move |(route, _)| format!("{}/{route}", proxy.name()))
        })
        .collect();
    names.extend(PEER.iter().map(|(name, _, _)| name.to_string()));
    names
}

/// Runs the phase; returns how many scenarios it measured (none when --only names none of
/// them: then nothing of it starts).
pub fn run(
    cx: &Context,
    bench: &mut Bench,
    live: &mut Processes,
    servers: &Servers,
    floors: &Floors,
    logins: &Logins,
) -> anyhow::Result<usize> {
    let only = &cx.options.only;
    if !only.is_empty() && !scenario_names().iter().any(|n| only.contains(n)) {
        return Ok(0);
    }
    let up = Upstreams {
        app: format!("127.0.0.1:{}", floors.echo_port),
        null_auth: format!("127.0.0.1:{}", floors.floor_a_port),
        portcullis: servers.pc_redis_host(),
        portcullis_nocache: servers.pc_nocache_host(),
    };
    let repo = &cx.options.repo;
    let mut ports = Vec::new();
    for proxy in Proxy::ALL {
        ports.push((proxy, proxy.start(live, repo, cx.dir, &up)?));
    }
    let issuer = live.idp.issuer();
    let mut peer_cookies = Vec::new();
    for (store, port) in [
        (apache::Store::Redis, servers.apache_redis_port),
        (apache::Store::Shm, servers.apache_shm_port),
    ] {
        let settings = apache::Settings {
            store,
            port,
            issuer: &issuer,
            app: &up.app,
            redis: servers.redis_host(),
        };
        apache::start(live, repo, cx.dir, &settings)?;
        let base = format!("http://127.0.0.1:{port}");
        let cookie = logins::sign_in(cx, &base, apache::PROTECTED, apache::SESSION_COOKIE)?;
        peer_cookies.push((store, port, cookie));
    }
    println!("proxies up: nginx, Traefik, Caddy, and Apache with mod_auth_openidc (signed in as alice on both)");

    let mut scenarios = proxy_scenarios(live, &ports, &logins.cookie_redis);
    scenarios.extend(peer_scenarios(live, &peer_cookies));
    if !only.is_empty() {
        scenarios.retain(|s| only.contains(&s.name));
    }
    for s in &scenarios {
        cx.rt.block_on(preflight(&cx.client, s))?;
        if s.target.expect == 200 && checked(&s.name) {
            cx.rt.block_on(refused_without_cookie(&cx.client, s))?;
        }
    }
    println!(
        "preflight: every proxy route answers as expected, and refuses a request without a cookie ({} scenarios)",
        scenarios.len()
    );
    let max_c = *cx.options.connections.iter().max().unwrap_or(&16);
    if cx.options.warmup {
        println!("warm-up (1 s per scenario, statuses checked, not reported)");
        bench.ours = live.all_pids();
        for s in &scenarios {
            bench.round("warmup", s, max_c, 0, 1)?;
        }
    }
    println!("end-to-end phase: proxies in front of the echo app");
    let all: Vec<&Scenario> = scenarios.iter().collect();
    bench.interleaved("e2e", &all, live)?;
    Ok(scenarios.len())
}

/// Whether the route is checked by portcullis or mod_auth_openidc (and so refuses a request
/// without a session).
fn checked(name: &str) -> bool {
    name.contains("/portcullis") || name.contains("/openidc")
}

/// The program `name` and its children (nginx and Apache workers), as (name, pid).
fn program_pids(live: &Processes, name: &str) -> Vec<(String, u32)> {
    let main = live.pid(name);
    let mut all = vec![(name.to_string(), main)];
    for (i, child) in children_of(main).into_iter().enumerate() {
        all.push((format!("{name}-worker-{}", i + 1), child));
    }
    all
}

/// nginx, Traefik and Caddy, every route, with alice's portcullis cookie on every request (the
/// routes that do not read it get the same request).
fn proxy_scenarios(live: &Processes, ports: &[(Proxy, u16)], cookie: &str) -> Vec<Scenario> {
    let pids = live.pids();
    let pid = |name: &str| (name.to_string(), pids.get(name).copied().unwrap_or(0));
    let headers = vec![("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}"))];
    let mut scenarios = Vec::new();
    for (proxy, port) in ports {
        for (route, path) in ROUTES {
            let mut watch = program_pids(live, proxy.name());
            match route {
                "null-auth" => watch.push(pid("floor-a")),
                "portcullis" => watch.extend([pid("portcullis-redis"), pid("redis")]),
                "portcullis-nocache" => {
                    watch.extend([pid("portcullis-redis-nocache"), pid("redis")])
                }
                _ => {}
            }
            watch.push(pid("echo"));
            scenarios.push(Scenario::new(
                &format!("{}/{route}", proxy.name()),
                format!("http://127.0.0.1:{port}{path}"),
                headers.clone(),
                200,
                watch,
                None,
            ));
        }
    }
    scenarios
}

/// Apache alone and with mod_auth_openidc, with its session cookie.
fn peer_scenarios(live: &Processes, cookies: &[(apache::Store, u16, String)]) -> Vec<Scenario> {
    let pids = live.pids();
    let pid = |name: &str| (name.to_string(), pids.get(name).copied().unwrap_or(0));
    let mut scenarios = Vec::new();
    for (name, store, path) in PEER {
        let Some((_, port, cookie)) = cookies.iter().find(|(s, _, _)| *s == store) else {
            continue;
        };
        let mut watch = program_pids(live, store.name());
        if store == apache::Store::Redis && path == apache::PROTECTED {
            watch.push(pid("redis"));
        }
        watch.push(pid("echo"));
        scenarios.push(Scenario::new(
            name,
            format!("http://127.0.0.1:{port}{path}"),
            vec![(
                "Cookie".to_string(),
                format!("{}={cookie}", apache::SESSION_COOKIE),
            )],
            200,
            watch,
            None,
        ));
    }
    scenarios
}

/// The scenario's request without its cookie must be refused: 401 (portcullis, through any
/// proxy) or a redirect to sign in (mod_auth_openidc).
async fn refused_without_cookie(
    client: &reqwest::Client,
    scenario: &Scenario,
) -> anyhow::Result<()> {
    let mut request = client.get(&scenario.target.url);
    for (name, value) in &scenario.target.headers {
        if !name.eq_ignore_ascii_case("cookie") {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let status = request.send().await?.status().as_u16();
    if status != 401 && status != 302 {
        bail!(
            "preflight {}: without a cookie it answered {status}, expected 401 or 302",
            scenario.name
        );
    }
    Ok(())
}
