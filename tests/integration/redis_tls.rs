//! Sessions in a Redis reached over TLS (`rediss://`), as production Redis often is: real
//! redis-servers that speak TLS with a certificate of a CA made for the test and
//! `tls-auth-clients yes`, so portcullis must trust the CA (`REDIS_CA_FILE`) and present a
//! client certificate (`REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE`): one server, a
//! Sentinel set and a Cluster. Without either, the store is unavailable and the auth endpoints
//! fail closed (503), never open.

use crate::stack::{signed_in, Options, Stack, StoreKind};
use crate::support::portcullis::COOKIE_NAME;
use crate::support::redis_cluster::RedisCluster;
use crate::support::redis_sentinel::RedisSentinels;
use crate::support::tls::TestPki;
use crate::support::{Browser, RedisServer};

/// `store` (the topology's variables) with `pki`'s CA and client certificate, and the session
/// cache off so that every check reads the store.
fn tls_env(pki: &TestPki, store: &[(&str, &str)]) -> Vec<(String, String)> {
    let files = [
        ("REDIS_CA_FILE", pki.ca()),
        ("REDIS_CLIENT_CERT_FILE", pki.client_cert()),
        ("REDIS_CLIENT_KEY_FILE", pki.client_key()),
    ];
    store
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .chain(
            files
                .into_iter()
                .map(|(name, file)| (name.to_string(), file.display().to_string())),
        )
        .chain([("SESSION_CACHE_TTL".to_string(), "0".to_string())])
        .collect()
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// A Traefik stack whose portcullis keeps its sessions where `env` says.
fn start(env: &[(String, String)]) -> Stack {
    Stack::start(Options {
        store: StoreKind::Memory,
        env: &pairs(env),
        ..Options::default()
    })
}

/// The status-mode check of the stack's `/app` with the session `cookie`, asked directly.
async fn check(stack: &Stack, cookie: &str) -> u16 {
    Browser::new()
        .get_with_headers(
            &stack.direct("/oauth2/auth"),
            &[
                ("X-Original-URL", &stack.url("/app")),
                ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
            ],
        )
        .await
        .status
}

/// Restarted without the CA, nothing verifies: the same session cookie gets 503.
async fn unavailable_without_the_ca(stack: &mut Stack, cookie: &str) {
    stack.portcullis.restart_with(&[], &["REDIS_CA_FILE"]);
    assert_eq!(check(stack, cookie).await, 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_live_in_a_tls_redis_with_a_private_ca_and_a_client_certificate() {
    let pki = TestPki::generate();
    let redis = RedisServer::start_tls(&pki);
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let stack = start(&tls_env(&pki, &[("REDIS_URL", &url)]));
    let ready = Browser::new().get(&stack.direct("/readyz")).await;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let (browser, cookie) = signed_in(&stack, "alice").await;
    assert_eq!(check(&stack, &cookie).await, 200);
    let page = browser.get(&stack.url("/app")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    // The session is in that Redis, read over TLS by redis-cli with the same certificates.
    let keys: usize = redis.cli(&["DBSIZE"]).parse().unwrap();
    assert!(keys >= 1, "no session key in the TLS Redis");
    // And it is read from there: emptied, the session is gone (the cache is off).
    redis.cli(&["FLUSHALL"]);
    assert_eq!(check(&stack, &cookie).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_redis_without_its_ca_or_a_client_certificate_is_unavailable_and_fails_closed() {
    let pki = TestPki::generate();
    let redis = RedisServer::start_tls(&pki);
    let url = redis.url();
    let all = tls_env(&pki, &[("REDIS_URL", &url)]);
    let mut stack = start(&all);
    let (_browser, cookie) = signed_in(&stack, "alice").await;
    assert_eq!(check(&stack, &cookie).await, 200);

    let cases: [(&str, &[&str]); 2] = [
        (
            "no CA: the public web roots do not know the test CA",
            &["REDIS_CA_FILE"],
        ),
        (
            "no client certificate: the server wants one",
            &["REDIS_CLIENT_CERT_FILE", "REDIS_CLIENT_KEY_FILE"],
        ),
    ];
    for (what, unset) in cases {
        stack.portcullis.restart_with(&pairs(&all), unset);
        let ready = Browser::new().get(&stack.direct("/readyz")).await;
        assert_eq!(ready.status, 503, "{what}: /readyz {}", ready.body);
        // A validly signed cookie whose session cannot be read: 503, never 2xx, never 401.
        assert_eq!(check(&stack, &cookie).await, 503, "{what}");
    }
    // With both again, the session (still in Redis) works: nothing had to be repaired.
    stack.portcullis.restart_with(&pairs(&all), &[]);
    assert_eq!(check(&stack, &cookie).await, 200);
}

/// Sentinel over TLS: the client asks the Sentinels over TLS for the primary, which they name by
/// its TLS port, and reaches it over TLS, presenting the client certificate to both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_live_in_a_sentinel_set_over_tls() {
    let pki = TestPki::generate();
    let sentinels = RedisSentinels::start_tls(&pki);
    let urls = sentinels.sentinel_urls().join(",");
    assert!(urls.starts_with("rediss://"), "{urls}");
    let mut stack = start(&tls_env(
        &pki,
        &[
            ("REDIS_SENTINEL_URLS", &urls),
            ("REDIS_SENTINEL_MASTER", sentinels.master_name()),
        ],
    ));
    let (_browser, cookie) = signed_in(&stack, "alice").await;
    assert_eq!(check(&stack, &cookie).await, 200);
    // In the primary, and replicated to the replica (the kit reads both on their plain ports).
    for port in sentinels.data_ports() {
        let keys: usize = sentinels.cli(port, &["DBSIZE"]).parse().unwrap();
        assert!(keys >= 1, "no session key on data node {port}");
    }
    unavailable_without_the_ca(&mut stack, &cookie).await;
}

/// Cluster over TLS: seeds, the nodes the client learns from `CLUSTER SLOTS` and the cluster
/// bus all speak TLS only; a session's keys land on the cluster and pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_live_in_a_cluster_over_tls() {
    let pki = TestPki::generate();
    let cluster = RedisCluster::start_tls(&pki);
    let seeds = cluster.seed_urls().join(",");
    assert!(seeds.starts_with("rediss://"), "{seeds}");
    let mut stack = start(&tls_env(&pki, &[("REDIS_CLUSTER_URLS", &seeds)]));
    let (_browser, cookie) = signed_in(&stack, "alice").await;
    assert_eq!(check(&stack, &cookie).await, 200);
    let keys: usize = cluster
        .primaries()
        .into_iter()
        .map(|port| cluster.cli(port, &["DBSIZE"]).parse::<usize>().unwrap())
        .sum();
    assert!(keys >= 1, "no session key in the cluster");
    unavailable_without_the_ca(&mut stack, &cookie).await;
}
