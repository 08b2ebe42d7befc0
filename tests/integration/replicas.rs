//! Several replicas on a highly available Redis (a real Cluster of six `redis-server`s, a
//! real Sentinel set), with each replica's session cache: sessions made on one work on the
//! other, endings reach every replica at once, and failures deny or answer 503, never 2xx.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stack::{auth_status_at, signed_in, Options, Stack, StoreKind};
use crate::support::portcullis::{test_env, Portcullis, COOKIE_SECRET};
use crate::support::{free_port, Browser, RedisCluster, RedisSentinels, RedisServer};

const TOKEN: &str = "test-admin-token-0123456789abcdef-0123";

/// Where the replicas keep sessions.
enum Topology {
    Cluster(RedisCluster),
    Sentinel(RedisSentinels),
}

impl Topology {
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Topology::Cluster(cluster) => {
                vec![("REDIS_CLUSTER_URLS".into(), cluster.seed_urls().join(","))]
            }
            Topology::Sentinel(sentinels) => vec![
                (
                    "REDIS_SENTINEL_URLS".into(),
                    sentinels.sentinel_urls().join(","),
                ),
                (
                    "REDIS_SENTINEL_MASTER".into(),
                    sentinels.master_name().to_string(),
                ),
            ],
        }
    }

    /// redis-cli on the node holding `key` (Cluster) or on the primary (Sentinel).
    fn cli(&self, args: &[&str]) -> String {
        match self {
            Topology::Cluster(cluster) => {
                let port = cluster.primaries()[0];
                cluster.cli(port, args)
            }
            Topology::Sentinel(sentinels) => sentinels.cli(sentinels.primary_port(), args),
        }
    }
}

/// Replica A behind Traefik (where users sign in), replica B reached directly (as a proxy
/// would after a failover), both on `topology`, each with an admin listener.
struct Replicas {
    b: Portcullis,
    b_admin: u16,
    stack: Stack,
    topology: Topology,
}

fn replicas(topology: Topology, extra: &[(&str, &str)]) -> Replicas {
    let a_admin = format!("127.0.0.1:{}", free_port());
    let mut env: Vec<(String, String)> = topology.env();
    env.push(("ADMIN_ADDR".into(), a_admin));
    env.push(("ADMIN_TOKEN".into(), TOKEN.into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stack = Stack::start(Options {
        store: StoreKind::Memory,
        env: &borrowed,
        ..Options::default()
    });
    let b_admin = free_port();
    let mut env_b = test_env(&stack.idp, &stack.base(), None);
    for (k, v) in &env {
        env_b.insert(k.clone(), v.clone());
    }
    env_b.insert("ADMIN_ADDR".into(), format!("127.0.0.1:{b_admin}"));
    let mut b = Portcullis::reserve();
    b.start(env_b);
    Replicas {
        b,
        b_admin,
        stack,
        topology,
    }
}

fn session_id(cookie: &str) -> &str {
    cookie.split('.').next().expect("signed id")
}

/// Polls the auth check at `instance` until it answers `want`; how long that took.
async fn time_until(instance: &str, stack: &Stack, cookie: &str, want: u16) -> Duration {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(10);
    loop {
        let status = auth_status_at(instance, stack, cookie).await;
        if status == want {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{instance} still answers {status}, not {want}, after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The whole story on one topology, with a cache TTL far longer than the polling: only an
/// invalidation can explain a refusal.
async fn endings_reach_every_replica(topology: Topology) {
    let r = replicas(topology, &[("SESSION_CACHE_TTL", "2m")]);
    let (stack, b) = (&r.stack, r.b.base_url());
    r.stack.portcullis.wait_until_cache_listens();
    r.b.wait_until_cache_listens();

    let (alice, alice_cookie) = signed_in(stack, "alice").await;
    let (_, bob_cookie) = signed_in(stack, "bob").await;
    // Made on A, valid on B; B keeps both in its cache.
    assert_eq!(auth_status_at(&b, stack, &alice_cookie).await, 200);
    assert_eq!(auth_status_at(&b, stack, &bob_cookie).await, 200);

    // The cache answers: a session deleted behind portcullis' back (no announcement) is
    // still served by B from memory...
    let bob_key = format!("portcullis:session:{{{}}}", session_id(&bob_cookie));
    match &r.topology {
        Topology::Cluster(cluster) => {
            let port = cluster.primary_of_key(&bob_key);
            assert_eq!(cluster.cli(port, &["DEL", &bob_key]), "1");
        }
        Topology::Sentinel(_) => assert_eq!(r.topology.cli(&["DEL", &bob_key]), "1"),
    }
    assert_eq!(auth_status_at(&b, stack, &bob_cookie).await, 200);
    // ...until such an edit is announced by hand, as the README tells operators to.
    let channel = "portcullis:invalidate:_portcullis";
    r.topology
        .cli(&["PUBLISH", channel, session_id(&bob_cookie)]);
    let by_hand_delay = time_until(&b, stack, &bob_cookie, 401).await;

    // A sign-out on A is refused by B at once.
    let out = alice
        .request(
            reqwest::Method::POST,
            &stack.url("/oauth2/sign_out"),
            &[],
            None,
        )
        .await;
    assert_eq!(out.status, 200);
    let sign_out_delay = time_until(&b, stack, &alice_cookie, 401).await;

    // A revocation on B's admin API is refused by A, which holds carol in its cache.
    let (_, carol_cookie) = signed_in(stack, "carol").await;
    let a = stack.portcullis.base_url();
    assert_eq!(auth_status_at(&a, stack, &carol_cookie).await, 200);
    assert_eq!(auth_status_at(&b, stack, &carol_cookie).await, 200);
    let revoked = reqwest::Client::new()
        .delete(format!(
            "http://127.0.0.1:{}/sessions?user=carol",
            r.b_admin
        ))
        .header("authorization", format!("Bearer {TOKEN}"))
        .send()
        .await
        .expect("admin API");
    assert_eq!(revoked.status(), 200);
    let revoke_delay = time_until(&a, stack, &carol_cookie, 401).await;
    println!(
        "ended on one replica, refused by the other after: sign-out {sign_out_delay:?}, \
         revocation {revoke_delay:?}, announced by hand {by_hand_delay:?} (cache TTL 2m)"
    );
}

#[tokio::test]
async fn cluster_sessions_are_shared_and_endings_reach_every_replica_at_once() {
    endings_reach_every_replica(Topology::Cluster(RedisCluster::start())).await;
}

#[tokio::test]
async fn sentinel_sessions_are_shared_and_endings_reach_every_replica_at_once() {
    endings_reach_every_replica(Topology::Sentinel(RedisSentinels::start())).await;
}

/// What a steady load saw: every answer, by kind of request.
#[derive(Default)]
struct Seen {
    /// (when, status) of checks with the valid session.
    valid: Vec<(Instant, u16)>,
    /// Statuses of checks without a valid session (unknown but well-signed id, no cookie).
    invalid: Vec<u16>,
}

/// A forged cookie that carries a valid signature (the test knows the secret) for a session
/// that does not exist: only the store can say no.
fn signed_unknown_session() -> String {
    let keys = portcullis::crypto::Keys::derive(COOKIE_SECRET.as_bytes()).expect("keys");
    keys.sign("no-such-session-0123456789abcdefghij")
}

/// Runs `until` while four tasks check at both replicas, then stops them.
async fn under_load<F: std::future::Future<Output = ()>>(
    instances: [String; 2],
    stack: &Stack,
    cookie: &str,
    until: F,
) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let unknown = signed_unknown_session();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("client");
    let app = format!("{}/app", stack.base());
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (seen, stop, client) = (seen.clone(), stop.clone(), client.clone());
        let instance = instances[worker % 2].clone();
        let (cookie, unknown, app) = (cookie.to_string(), unknown.clone(), app.clone());
        tasks.push(tokio::spawn(async move {
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                round += 1;
                let (valid, header) = match round % 3 {
                    0 => (false, format!("_portcullis={unknown}")),
                    1 => (false, String::new()),
                    _ => (true, format!("_portcullis={cookie}")),
                };
                let mut request = client
                    .get(format!("{instance}/oauth2/auth"))
                    .header("X-Original-URL", &app);
                if !header.is_empty() {
                    request = request.header("Cookie", header);
                }
                // A request that times out counts as a failure, not a pass: 599.
                let status = match request.send().await {
                    Ok(response) => response.status().as_u16(),
                    Err(_) => 599,
                };
                {
                    let mut seen = seen.lock().expect("seen");
                    if valid {
                        seen.valid.push((Instant::now(), status));
                    } else {
                        seen.invalid.push(status);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    until.await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.expect("load task");
    }
    Arc::try_unwrap(seen)
        .ok()
        .expect("tasks done")
        .into_inner()
        .expect("seen")
}

/// The judgement of a load around a failure: nothing without a session passed; the valid
/// session's failures were 503s or denials; and it passes again, steadily, at the end.
fn judge(seen: &Seen, killed_at: Instant, what: &str) -> Duration {
    let passed_without_session: Vec<&u16> = seen
        .invalid
        .iter()
        .filter(|s| (200..300).contains(*s))
        .collect();
    assert!(
        passed_without_session.is_empty(),
        "{what}: {} checks without a valid session got 2xx",
        passed_without_session.len()
    );
    assert!(
        seen.invalid.iter().all(|s| [401, 503, 599].contains(s)),
        "{what}: unexpected statuses without a session: {:?}",
        seen.invalid
            .iter()
            .filter(|s| ![401, 503, 599].contains(*s))
            .collect::<Vec<_>>()
    );
    let odd: Vec<u16> = seen
        .valid
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| ![200, 401, 503, 599].contains(s))
        .collect();
    assert!(odd.is_empty(), "{what}: unexpected statuses: {odd:?}");
    let failures = seen.valid.iter().filter(|(_, s)| *s != 200).count();
    // Recovery: the first moment after which every check of the valid session passed.
    let last_failure = seen
        .valid
        .iter()
        .filter(|(_, s)| *s != 200)
        .map(|(at, _)| *at)
        .max();
    let tail_ok = seen
        .valid
        .iter()
        .rev()
        .take_while(|(_, s)| *s == 200)
        .count();
    assert!(
        tail_ok >= 20,
        "{what}: the valid session did not pass steadily at the end ({tail_ok} passes after the \
         last failure)"
    );
    let recovery =
        last_failure.map_or(Duration::ZERO, |at| at.saturating_duration_since(killed_at));
    println!(
        "{what}: {} checks with the session ({failures} failed: 503 or denied), {} without \
         (none passed); recovered {recovery:?} after the primary was killed",
        seen.valid.len(),
        seen.invalid.len()
    );
    recovery
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_primary_killed_under_load_fails_closed_and_recovers() {
    // The cache off: every check reaches the store, which is what is being failed.
    let mut r = replicas(
        Topology::Cluster(RedisCluster::start()),
        &[("SESSION_CACHE_TTL", "0")],
    );
    let (_, cookie) = signed_in(&r.stack, "alice").await;
    let key = format!("portcullis:session:{{{}}}", session_id(&cookie));
    let Topology::Cluster(cluster) = &mut r.topology else {
        unreachable!()
    };
    // The replica has the session before its primary dies (replication is asynchronous).
    let primary = cluster.primary_of_key(&key);
    assert_eq!(cluster.cli(primary, &["WAIT", "1", "5000"]), "1");
    let instances = [r.stack.portcullis.base_url(), r.b.base_url()];
    let killed_at = Arc::new(Mutex::new(None));
    let seen = {
        let killed_at = killed_at.clone();
        let cluster = &mut *cluster;
        let key = key.clone();
        under_load(instances, &r.stack, &cookie, async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let port = tokio::task::block_in_place(|| cluster.kill_primary_of_key(&key));
            *killed_at.lock().expect("killed") = Some(Instant::now());
            tokio::task::block_in_place(|| cluster.wait_until_ok(Duration::from_secs(60)));
            println!("killed cluster primary on port {port}");
            // Then a few seconds of steady service.
            tokio::time::sleep(Duration::from_secs(3)).await;
        })
        .await
    };
    let killed_at = killed_at.lock().expect("killed").expect("killed");
    judge(&seen, killed_at, "cluster");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_primary_killed_under_load_fails_closed_and_recovers() {
    let mut r = replicas(
        Topology::Sentinel(RedisSentinels::start()),
        &[("SESSION_CACHE_TTL", "0")],
    );
    let (_, cookie) = signed_in(&r.stack, "alice").await;
    let Topology::Sentinel(sentinels) = &mut r.topology else {
        unreachable!()
    };
    let primary = sentinels.primary_port();
    assert_eq!(sentinels.cli(primary, &["WAIT", "1", "5000"]), "1");
    let instances = [r.stack.portcullis.base_url(), r.b.base_url()];
    let killed_at = Arc::new(Mutex::new(None));
    let seen = {
        let killed_at = killed_at.clone();
        let sentinels = &mut *sentinels;
        under_load(instances, &r.stack, &cookie, async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let old = tokio::task::block_in_place(|| sentinels.kill_primary());
            *killed_at.lock().expect("killed") = Some(Instant::now());
            let new = tokio::task::block_in_place(|| {
                sentinels.wait_for_failover(old, Duration::from_secs(60))
            });
            println!("sentinel failover: primary {old} killed, {new} promoted");
            tokio::time::sleep(Duration::from_secs(3)).await;
        })
        .await
    };
    let killed_at = killed_at.lock().expect("killed").expect("killed");
    judge(&seen, killed_at, "sentinel");
}

/// Redis restarted empty (no persistence): every replica asks its users to sign in again,
/// also the one whose cache held the session, and nothing crashes.
#[tokio::test]
async fn redis_restarted_empty_asks_users_to_sign_in_again_even_from_a_warm_cache() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let stack = Stack::start(Options {
        store: StoreKind::Memory,
        env: &[("REDIS_URL", &url), ("SESSION_CACHE_TTL", "2m")],
        ..Options::default()
    });
    stack.portcullis.wait_until_cache_listens();
    let (browser, cookie) = signed_in(&stack, "alice").await;
    let a = stack.portcullis.base_url();
    assert_eq!(auth_status_at(&a, &stack, &cookie).await, 200);
    redis.stop();
    let stopped = Instant::now();
    // While Redis is away: 503, never the cached 200 (the subscription is gone, so the cache
    // is emptied and bypassed).
    let during = time_until(&a, &stack, &cookie, 503).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while stack.portcullis.cache_listening() {
        assert!(
            Instant::now() < deadline,
            "the lost subscription went unnoticed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let noticed = stopped.elapsed();
    redis.restart();
    let after = time_until(&a, &stack, &cookie, 401).await;
    stack.portcullis.wait_until_cache_listens();
    println!(
        "Redis away: 503 after {during:?}, subscription loss noticed after {noticed:?}; back \
         empty: 401 after {after:?}"
    );
    // A browser is sent to sign in again, and can.
    let again = browser.get(&stack.url("/app")).await;
    assert!(again.is_redirect(), "{}", again.status);
    let (_, fresh) = signed_in(&stack, "alice").await;
    assert_eq!(auth_status_at(&a, &stack, &fresh).await, 200);
}

/// The IdP down: signed-in users keep working, a new login gets the error page, and logins
/// work again once it is back, without restarting portcullis.
#[tokio::test]
async fn idp_down_keeps_sessions_and_fails_new_logins_clearly_until_it_is_back() {
    let mut stack = Stack::start(Options {
        env: &[("SESSION_REFRESH_INTERVAL", "0")],
        ..Options::default()
    });
    let (_, cookie) = signed_in(&stack, "alice").await;
    let a = stack.portcullis.base_url();
    stack.idp.stop();
    for _ in 0..5 {
        assert_eq!(auth_status_at(&a, &stack, &cookie).await, 200);
    }
    // A new login starts (portcullis only sends the browser to the IdP), and its callback,
    // which needs the IdP's token endpoint, ends on the error page, creating nothing.
    let browser = Browser::new();
    let start = browser.get(&stack.url("/oauth2/start?rd=/app")).await;
    assert!(start.is_redirect(), "{}", start.status);
    let location = start.header("location").expect("location");
    assert!(location.starts_with(&stack.idp.issuer()), "{location}");
    let state = start.location_param("state").expect("state");
    let callback = browser
        .get(&stack.url(&format!("/oauth2/callback?code=made-up&state={state}")))
        .await;
    assert_eq!(
        callback.status, 502,
        "callback with the IdP down: {}",
        callback.body
    );
    assert!(
        callback
            .body
            .contains("The identity provider could not be reached"),
        "{}",
        callback.body
    );
    stack.idp.restart();
    let (_, fresh) = signed_in(&stack, "bob").await;
    assert_eq!(auth_status_at(&a, &stack, &fresh).await, 200);
    assert_eq!(auth_status_at(&a, &stack, &cookie).await, 200);
}

/// `REDIS_USERNAME` and `REDIS_PASSWORD_FILE` on an ACL-protected Redis, with the least an
/// ACL user needs (its keys and its channel): sessions and the cache's subscription work;
/// a wrong password is a 503 and a not-ready instance, never a pass.
#[tokio::test]
async fn redis_credentials_from_the_environment_reach_the_data_and_the_channel() {
    let redis = RedisServer::start();
    let acl = redis.cli(&[
        "ACL",
        "SETUSER",
        "portcullis",
        "on",
        ">data-node-password",
        "~portcullis:*",
        "&portcullis:*",
        "+@all",
    ]);
    assert_eq!(acl, "OK");
    assert_eq!(redis.cli(&["ACL", "SETUSER", "default", "off"]), "OK");
    let dir = tempfile::tempdir().expect("dir");
    let password_file = dir.path().join("redis-password");
    std::fs::write(&password_file, "data-node-password\n").expect("write");
    let url = redis.url();
    let password_file = password_file.to_string_lossy().to_string();
    let stack = Stack::start(Options {
        store: StoreKind::Memory,
        env: &[
            ("REDIS_URL", &url),
            ("REDIS_USERNAME", "portcullis"),
            ("REDIS_PASSWORD_FILE", &password_file),
        ],
        ..Options::default()
    });
    stack.portcullis.wait_until_cache_listens();
    let (_, cookie) = signed_in(&stack, "alice").await;
    let a = stack.portcullis.base_url();
    assert_eq!(auth_status_at(&a, &stack, &cookie).await, 200);

    let mut env = test_env(&stack.idp, &stack.base(), Some(&url));
    env.insert("REDIS_USERNAME".into(), "portcullis".into());
    env.insert("REDIS_PASSWORD".into(), "not-the-password".into());
    let mut wrong = Portcullis::reserve();
    wrong.start(env);
    assert_eq!(
        auth_status_at(&wrong.base_url(), &stack, &cookie).await,
        503
    );
    let ready = Browser::new()
        .get(&format!("{}/readyz", wrong.base_url()))
        .await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(!ready.body.contains("not-the-password"), "{}", ready.body);
    assert!(!wrong.cache_listening());
}
