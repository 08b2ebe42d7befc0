//! One suite, run against both backends (the Redis run starts a real `redis-server`).

use std::time::Duration;

use portcullis_testkit::{free_port, RedisServer};

use super::*;

fn session(user: &str) -> Session {
    Session {
        user: user.to_string(),
        email: Some(format!("{user}@example.com")),
        email_verified: true,
        preferred_username: Some(user.to_string()),
        groups: vec!["ops".to_string(), "ACME, Inc".to_string()],
        created_at: 1_000,
        expires_at: 2_000,
        subject: format!("{user}-sub"),
        idp_session: Some(format!("{user}-idp-session")),
        claims_read_at: 1_000,
        user_agent: Some("Firefox".to_string()),
        address: Some("192.0.2.1".to_string()),
        refreshable_until: u64::MAX,
        provider: Some("keycloak".to_string()),
    }
}

/// Within the sessions' lifetime.
const NOW: u64 = 1_500;

fn with_idp_session(user: &str, sid: &str) -> Session {
    Session {
        idp_session: Some(sid.to_string()),
        ..session(user)
    }
}

async fn listed(store: &Store, which: Selection<'_>) -> Vec<String> {
    store
        .list_sessions(which, NOW)
        .await
        .expect("list")
        .into_iter()
        .map(|entry| entry.id)
        .collect()
}

async fn read(store: &Store, id: &str) -> Option<Session> {
    let stored = store.get_session(id).await.expect("get")?;
    Some(stored.view().expect("readable").to_session())
}

async fn shared_suite(store: &Store) {
    let ttl = Duration::from_secs(60);
    store.ping().await.expect("ping");

    // put / get / delete
    store
        .put_session("id-1", &session("alice"), Some("sealed".into()), ttl)
        .await
        .expect("put");
    assert_eq!(read(store, "id-1").await, Some(session("alice")));
    assert_eq!(
        store
            .get_sealed_tokens("id-1")
            .await
            .expect("tokens")
            .as_deref(),
        Some("sealed")
    );
    assert_eq!(read(store, "unknown").await, None);
    store.touch("id-1", 1_234, ttl).await.expect("touch");
    let (stored, seen) = store.get_session_seen("id-1").await.expect("get");
    assert!(stored.is_some());
    assert_eq!(seen, Some(1_234));
    assert!(store.end_session("id-1").await.expect("end"));
    assert!(!store.end_session("id-1").await.expect("end again"));
    assert_eq!(read(store, "id-1").await, None);
    assert_eq!(store.get_sealed_tokens("id-1").await.expect("tokens"), None);
    assert_eq!(store.get_session_seen("id-1").await.expect("get").1, None);

    // ending by user, IdP subject or IdP session ends exactly those sessions
    for (id, session) in [
        ("a-1", with_idp_session("alice", "sid-a1")),
        ("a-2", with_idp_session("alice", "sid-a2")),
        ("b-1", with_idp_session("bob", "sid-b1")),
        ("c-1", with_idp_session("carol", "sid-c1")),
        ("d-1", with_idp_session("dave", "sid-d1")),
    ] {
        store
            .put_session(id, &session, None, ttl)
            .await
            .expect("put");
    }
    store.touch("b-1", 1_400, ttl).await.expect("touch");
    assert_eq!(
        listed(store, Selection::All).await,
        ["a-1", "a-2", "b-1", "c-1", "d-1"]
    );
    assert_eq!(
        listed(store, Selection::User("alice")).await,
        ["a-1", "a-2"]
    );
    let bob = store
        .list_sessions(Selection::User("bob"), NOW)
        .await
        .expect("list");
    assert_eq!(bob.len(), 1);
    assert_eq!(bob[0].session, with_idp_session("bob", "sid-b1"));
    assert_eq!(bob[0].last_seen, Some(1_400));
    // Expired sessions are not listed, whatever the store still holds.
    assert!(store
        .list_sessions(Selection::All, 2_000)
        .await
        .expect("list")
        .is_empty());

    assert_eq!(
        store
            .end_sessions(Selection::IdpSession("sid-a2"))
            .await
            .expect("end"),
        1
    );
    assert_eq!(listed(store, Selection::User("alice")).await, ["a-1"]);
    assert_eq!(
        store
            .end_sessions(Selection::Subject("alice-sub"))
            .await
            .expect("end"),
        1
    );
    assert_eq!(
        store
            .end_sessions(Selection::Subject(""))
            .await
            .expect("end"),
        0
    );
    assert_eq!(
        store
            .end_sessions(Selection::User("bob"))
            .await
            .expect("end"),
        1
    );
    assert_eq!(
        store
            .end_sessions(Selection::User("nobody"))
            .await
            .expect("end"),
        0
    );
    assert_eq!(listed(store, Selection::All).await, ["c-1", "d-1"]);
    assert_eq!(store.end_sessions(Selection::All).await.expect("end"), 2);
    assert!(listed(store, Selection::All).await.is_empty());
    assert_eq!(read(store, "c-1").await, None);

    // a logout token's jti is used once
    assert!(store.claim_logout_token("jti-1", ttl).await.expect("claim"));
    assert!(!store.claim_logout_token("jti-1", ttl).await.expect("claim"));

    // a login's state completes one callback only
    assert!(!store.login_used("state-1").await.expect("used"));
    assert!(store.claim_login("state-1", ttl).await.expect("claim"));
    assert!(!store.claim_login("state-1", ttl).await.expect("claim"));
    assert!(store.login_used("state-1").await.expect("used"));
    assert!(store
        .claim_login("state-2", Duration::from_millis(200))
        .await
        .expect("claim"));

    // A revalidation replaces a live session and its tokens, never an ended one.
    let refreshed = Session {
        groups: vec!["dev".to_string()],
        claims_read_at: 1_500,
        ..session("alice")
    };
    assert!(!store
        .replace_session("id-r", &refreshed, Some("t1".into()), ttl)
        .await
        .expect("replace"));
    assert_eq!(read(store, "id-r").await, None);
    store
        .put_session("id-r", &session("alice"), Some("t0".into()), ttl)
        .await
        .expect("put");
    assert!(store
        .replace_session("id-r", &refreshed, Some("t1".into()), ttl)
        .await
        .expect("replace"));
    assert_eq!(read(store, "id-r").await, Some(refreshed.clone()));
    assert_eq!(
        store
            .get_sealed_tokens("id-r")
            .await
            .expect("tokens")
            .as_deref(),
        Some("t1")
    );
    // Claims that name the user anew: revocation by the new name finds the session.
    let renamed = Session {
        user: "alice-renamed".to_string(),
        ..refreshed.clone()
    };
    assert!(store
        .replace_session("id-r", &renamed, None, ttl)
        .await
        .expect("replace"));
    assert_eq!(
        listed(store, Selection::User("alice-renamed")).await,
        ["id-r"]
    );
    assert_eq!(
        store
            .get_sealed_tokens("id-r")
            .await
            .expect("tokens")
            .as_deref(),
        Some("t1"),
        "no new tokens: the old ones stay"
    );
    assert!(store.end_session("id-r").await.expect("end"));
    assert!(!store
        .replace_session("id-r", &refreshed, Some("t2".into()), ttl)
        .await
        .expect("replace"));
    assert_eq!(read(store, "id-r").await, None);
    assert_eq!(store.get_sealed_tokens("id-r").await.expect("tokens"), None);

    // A provider's back-channel logout ends its own sessions of a subject, never another
    // provider's that share the `sub`.
    let at = |provider: &str| Session {
        subject: "shared-sub".to_string(),
        provider: Some(provider.to_string()),
        ..session("dora")
    };
    for (id, provider) in [("id-pa", "a"), ("id-pb", "b"), ("id-pa2", "a")] {
        store
            .put_session(id, &at(provider), None, ttl)
            .await
            .expect("put");
    }
    let ended = store
        .end_provider_sessions(Selection::Subject("shared-sub"), Some("a"))
        .await
        .expect("end");
    assert_eq!(ended, 2);
    assert_eq!(read(store, "id-pa").await, None);
    assert_eq!(read(store, "id-pa2").await, None);
    assert_eq!(read(store, "id-pb").await, Some(at("b")));
    // b's session is still found through the index, and ends with its own provider's logout.
    let ended = store
        .end_provider_sessions(Selection::Subject("shared-sub"), Some("b"))
        .await
        .expect("end");
    assert_eq!(ended, 1);
    assert_eq!(read(store, "id-pb").await, None);

    // One revalidation at a time per session; a failed one holds the lock for its pause.
    assert!(store.claim_refresh("id-1", ttl).await.expect("lock"));
    assert!(!store.claim_refresh("id-1", ttl).await.expect("lock"));
    store.release_refresh("id-1").await.expect("release");
    assert!(store.claim_refresh("id-1", ttl).await.expect("lock"));
    store
        .hold_refresh("id-1", Duration::from_millis(200))
        .await
        .expect("hold");
    assert!(!store.claim_refresh("id-1", ttl).await.expect("lock"));

    // entries expire
    store
        .put_session("short", &session("carol"), None, Duration::from_millis(200))
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(read(store, "short").await, None);
    assert!(!store.login_used("state-2").await.expect("used"));
    assert!(store
        .claim_login("state-2", ttl)
        .await
        .expect("claim again once expired"));
    assert!(store
        .claim_refresh("id-1", ttl)
        .await
        .expect("lock expired"));
}

#[tokio::test]
async fn memory_store_passes_the_shared_suite() {
    shared_suite(&Store::memory()).await;
}

#[tokio::test]
async fn redis_store_passes_the_shared_suite() {
    // Answers PING before start() returns; stopped (and its folder removed) when dropped.
    let redis = RedisServer::start();
    let store = Store::redis(&redis.url()).expect("client");
    shared_suite(&store).await;
}

#[tokio::test]
async fn redis_store_reports_unreachable_redis_as_unavailable() {
    let port = free_port();
    let store = Store::redis(&format!("redis://127.0.0.1:{port}")).expect("client");
    let started = std::time::Instant::now();
    let result = store.get_session("x").await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(store.ping().await.is_err());
    // Not a timing assertion on speed, only that it did not hang for the default TCP timeout.
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// A store like a server's: Redis behind a cache (TTL far longer than any test), listening.
async fn cached(redis: RedisStore) -> Store {
    let store = Store::Redis(RedisSessions {
        redis,
        cache: Some(Arc::new(SessionCache::new(crate::config::CacheSettings {
            ttl: Duration::from_secs(600),
            size: 1_000,
        }))),
        channel: invalidation::channel("_portcullis").into(),
    });
    store.listen();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !store.cache_listening() {
        assert!(std::time::Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    store
}

#[tokio::test]
async fn a_cached_redis_store_passes_the_shared_suite() {
    let redis = RedisServer::start();
    let store = cached(RedisStore::new(&redis.url()).expect("client")).await;
    shared_suite(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_store_passes_the_shared_suite_without_crossing_slots() {
    let cluster = tokio::task::spawn_blocking(portcullis_testkit::RedisCluster::start)
        .await
        .expect("cluster");
    let seeds = cluster
        .ports()
        .into_iter()
        .map(|port| crate::config::NodeAddress {
            host: "127.0.0.1".to_string(),
            port,
            tls: false,
        })
        .collect();
    let redis = RedisStore::from_settings(&crate::config::RedisSettings {
        topology: crate::config::RedisTopology::Cluster { seeds },
        username: None,
        password: None,
        timeout: Duration::from_secs(2),
        tls: Default::default(),
    })
    .expect("cluster client");
    shared_suite(&cached(redis).await).await;
    drop(cluster);
}

/// Polls `store` until it no longer finds `id` (what another replica's ending must cause).
async fn until_gone(store: &Store, id: &str) -> Duration {
    let started = std::time::Instant::now();
    while store.get_session_seen(id).await.expect("read").0.is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{id} still answered from a cache"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn what_one_replica_ends_or_changes_another_forgets() {
    let redis = RedisServer::start();
    let a = cached(RedisStore::new(&redis.url()).expect("client")).await;
    let b = cached(RedisStore::new(&redis.url()).expect("client")).await;
    let ttl = Duration::from_secs(3600);
    for id in ["s1", "s2", "s3"] {
        a.put_session(id, &session("alice"), None, ttl)
            .await
            .expect("put");
        // Read on B: kept in B's cache.
        assert!(b.get_session_seen(id).await.expect("read").0.is_some());
    }
    // Served from B's cache even when gone from Redis behind its back...
    redis.cli(&["DEL", &Space::Session.key("s1")]);
    assert!(b.get_session_seen("s1").await.expect("read").0.is_some());
    // ...so every ending on A is announced: sign-out, and revocation by user.
    assert!(a.end_session("s2").await.expect("end"));
    until_gone(&b, "s2").await;
    assert_eq!(
        a.end_sessions(Selection::User("alice")).await.expect("end"),
        1
    );
    until_gone(&b, "s1").await;
    until_gone(&b, "s3").await;

    // A change (a revalidation's new claims) too: B reads the new session afterwards.
    a.put_session("s4", &session("bob"), None, ttl)
        .await
        .expect("put");
    let stored = b.get_session_seen("s4").await.expect("read").0.expect("s4");
    assert_eq!(stored.live_view(NOW).expect("live").groups.len(), 2);
    let changed = Session {
        groups: vec!["new".to_string()],
        ..session("bob")
    };
    assert!(a
        .replace_session("s4", &changed, None, ttl)
        .await
        .expect("replace"));
    let started = std::time::Instant::now();
    loop {
        let stored = b.get_session_seen("s4").await.expect("read").0.expect("s4");
        if stored.live_view(NOW).expect("live").groups.len() == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B kept the old claims"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// What a check remembers of a verified cookie (and derives from its session) lives in the
/// cache entry: every way this replica ends or changes the session forgets it at once.
#[tokio::test]
async fn a_verified_cookie_is_forgotten_with_its_session() {
    let redis = RedisServer::start();
    let store = cached(RedisStore::new(&redis.url()).expect("client")).await;
    let ttl = Duration::from_secs(3600);
    let cookie = |id: &str| format!("{id}.tag");
    let remembered = |id: &str| store.cached_for_cookie(id, &cookie(id)).is_some();
    let verify = |id: &'static str| {
        let store = store.clone();
        async move {
            let found = store
                .find_session(id, Some(&format!("{id}.tag")))
                .await
                .expect("read");
            let cached = found.cached.expect("a cache entry");
            assert_eq!(
                cached.derived(|| id.to_string()).map(String::as_str),
                Some(id)
            );
        }
    };
    for id in ["s1", "s2", "s3", "s4"] {
        store
            .put_session(id, &session("alice"), None, ttl)
            .await
            .expect("put");
        assert!(!remembered(id), "{id}: never verified");
        verify(id).await;
        assert!(remembered(id), "{id}");
        // Only that very value, and only for its own id.
        assert!(store.cached_for_cookie(id, "s1.other").is_none());
        assert!(store.cached_for_cookie("s9", &cookie(id)).is_none());
    }
    // A read without a verified cookie (a listing, the sessions page) leaves the entry's alone.
    let (session_seen, _) = store.get_session_seen("s1").await.expect("read");
    assert!(session_seen.is_some());
    assert!(remembered("s1"));

    // Signed out.
    assert!(store.end_session("s1").await.expect("end"));
    assert!(!remembered("s1"));
    // Changed by a revalidation: the next check verifies again and derives anew.
    let changed = Session {
        groups: vec!["new".to_string()],
        ..session("alice")
    };
    assert!(store
        .replace_session("s2", &changed, None, ttl)
        .await
        .expect("replace"));
    assert!(!remembered("s2"));
    let found = store.find_session("s2", None).await.expect("read");
    assert_eq!(found.cached.expect("entry").derived(|| 2_u8), Some(&2));
    // Revoked, by user and by the IdP's session (back-channel logout).
    store
        .end_provider_sessions(Selection::IdpSession("alice-idp-session"), Some("keycloak"))
        .await
        .expect("end");
    assert!(!remembered("s3"));
    assert!(!remembered("s4"));
    store
        .put_session("s5", &session("bob"), None, ttl)
        .await
        .expect("put");
    verify("s5").await;
    store
        .end_sessions(Selection::User("bob"))
        .await
        .expect("end");
    assert!(!remembered("s5"));
}
