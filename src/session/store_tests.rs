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
    }
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
    store.delete_session("id-1").await.expect("delete");
    assert_eq!(read(store, "id-1").await, None);
    assert_eq!(store.get_sealed_tokens("id-1").await.expect("tokens"), None);

    // revoking a user removes all of their sessions and nobody else's
    for id in ["a-1", "a-2"] {
        store
            .put_session(id, &session("alice"), None, ttl)
            .await
            .expect("put");
    }
    store
        .put_session("b-1", &session("bob"), None, ttl)
        .await
        .expect("put");
    assert_eq!(
        store.delete_user_sessions("alice").await.expect("revoke"),
        2
    );
    assert_eq!(read(store, "a-1").await, None);
    assert_eq!(read(store, "a-2").await, None);
    assert_eq!(read(store, "b-1").await, Some(session("bob")));

    // a login's state completes one callback only
    assert!(!store.login_used("state-1").await.expect("used"));
    assert!(store.claim_login("state-1", ttl).await.expect("claim"));
    assert!(!store.claim_login("state-1", ttl).await.expect("claim"));
    assert!(store.login_used("state-1").await.expect("used"));
    assert!(store
        .claim_login("state-2", Duration::from_millis(200))
        .await
        .expect("claim"));

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
