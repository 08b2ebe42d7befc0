//! Session lifecycle: sign-out, restarts, the in-memory store, and Redis going away.

use std::time::{Duration, Instant};

use crate::stack::{auth_status_at, seen_headers, signed_in, Options, Stack, StoreKind};
use crate::support::browser::API_ACCEPT;
use crate::support::idp::PASSWORD;
use crate::support::portcullis::COOKIE_NAME;
use crate::support::Browser;

async fn status_with_cookie(stack: &Stack, cookie: &str) -> u16 {
    auth_status_at(&stack.portcullis.base_url(), stack, cookie).await
}

async fn alice_signed_in(stack: &Stack) -> (Browser, String) {
    signed_in(stack, "alice").await
}

#[tokio::test]
async fn sign_out_deletes_the_session_so_the_old_cookie_no_longer_works() {
    let stack = Stack::traefik();
    let (browser, cookie) = alice_signed_in(&stack).await;
    assert_eq!(status_with_cookie(&stack, &cookie).await, 200);

    let out = browser
        .request(
            reqwest::Method::POST,
            &stack.url("/oauth2/sign_out"),
            &[],
            None,
        )
        .await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("Signed out"));
    assert!(out
        .set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE_NAME}=;")) || c.contains("Max-Age=0")));
    assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_none());
    // The copy an attacker might have kept is dead too: the session is gone from the store.
    assert_eq!(status_with_cookie(&stack, &cookie).await, 401);
    let redis = stack.redis.as_ref().expect("redis");
    assert_eq!(
        redis
            .cli(&["--scan", "--pattern", "portcullis:session:*"])
            .trim(),
        ""
    );
}

#[tokio::test]
async fn an_unreadable_session_in_redis_denies_as_signed_out() {
    // The test rewrites the session in Redis behind portcullis' back, which a cached copy
    // would not know of (an operator announces such edits; see the replicas tests).
    let stack = Stack::start(Options {
        env: &[("SESSION_CACHE_TTL", "0")],
        ..Options::default()
    });
    let (_, cookie) = alice_signed_in(&stack).await;
    assert_eq!(status_with_cookie(&stack, &cookie).await, 200);
    let id = cookie.split('.').next().expect("signed id");
    let key = format!("portcullis:session:{{{id}}}");
    let redis = stack.redis.as_ref().expect("redis");
    // Another format (JSON, as an older build or a hand-written key would hold), then bytes
    // cut short: the signature on the cookie is valid both times, the session is not.
    let unreadable = [
        r#"{"user":"root","groups":["admins"],"expires_at":99999999999}"#,
        // format 1, a 5-byte user name, then nothing
        "\x01\x05alice",
    ];
    for value in unreadable {
        redis.cli(&["SET", &key, value]);
        assert_eq!(
            status_with_cookie(&stack, &cookie).await,
            401,
            "stored value {value:?}"
        );
    }
}

#[tokio::test]
async fn a_restart_keeps_sessions_with_redis() {
    let mut stack = Stack::traefik();
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    stack.portcullis.restart();
    let hop = browser.get(&stack.url("/after-restart")).await;
    assert_eq!(hop.status, 200, "session lost across restart: {}", hop.body);
    assert_eq!(seen_headers(&hop.json())["x-auth-request-user"], "alice");
}

#[tokio::test]
async fn the_in_memory_store_serves_without_redis_and_forgets_on_restart() {
    let mut stack = Stack::start(Options {
        store: StoreKind::Memory,
        ..Options::default()
    });
    let browser = Browser::new();
    let landed = browser
        .sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    assert_eq!(seen_headers(&landed.json())["x-auth-request-user"], "bob");
    assert_eq!(browser.get(&stack.url("/second")).await.status, 200);
    stack.portcullis.restart();
    let after = browser
        .get_with_accept(&stack.url("/third"), API_ACCEPT)
        .await;
    assert_eq!(
        after.status, 401,
        "memory sessions do not survive a restart"
    );
}

#[tokio::test]
async fn redis_outage_denies_then_recovers_without_restart() {
    let mut stack = Stack::traefik();
    let (browser, cookie) = alice_signed_in(&stack).await;

    stack.redis.as_mut().expect("redis").stop();
    // Bounded: each request is bounded by portcullis' own Redis timeouts; we allow a few tries
    // for the connection to notice the loss.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut denied = None;
    while Instant::now() < deadline {
        let status = status_with_cookie(&stack, &cookie).await;
        if status != 200 {
            denied = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        denied,
        Some(503),
        "auth must deny (503) while Redis is down"
    );
    let through_proxy = browser.get(&stack.url("/during-outage")).await;
    assert!(
        through_proxy.status >= 400,
        "proxy let a request through: {}",
        through_proxy.status
    );
    assert_eq!(
        Browser::new().get(&stack.direct("/readyz")).await.status,
        503
    );
    assert_eq!(
        Browser::new().get(&stack.direct("/healthz")).await.status,
        200
    );

    stack.redis.as_mut().expect("redis").restart();
    // Redis came back empty (no persistence in tests): a new login must work, with no restart.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Browser::new().get(&stack.direct("/readyz")).await.status != 200 {
        assert!(Instant::now() < deadline, "/readyz did not recover");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fresh = Browser::new();
    let landed = fresh
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    assert_eq!(seen_headers(&landed.json())["x-auth-request-user"], "alice");
}

#[tokio::test]
async fn sign_out_at_the_idp_too_when_configured() {
    let stack = Stack::start(Options {
        idp_logout: true,
        ..Options::default()
    });
    let (browser, cookie) = alice_signed_in(&stack).await;

    let rd = format!("{}/bye", stack.base());
    let out = browser
        .get(&stack.url(&format!(
            "/oauth2/sign_out?rd={}",
            url::form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        )))
        .await;
    assert_eq!(out.status, 302);
    let to_idp = out.location.clone().expect("location");
    assert!(to_idp.as_str().starts_with(&stack.idp.issuer()), "{to_idp}");
    assert!(out.location_param("id_token_hint").is_some());
    assert_eq!(
        out.location_param("post_logout_redirect_uri"),
        Some(format!("{}/oauth2/signed_out", stack.base()))
    );
    assert_eq!(
        status_with_cookie(&stack, &cookie).await,
        401,
        "session deleted at once"
    );

    // The IdP asks for confirmation, then sends the browser back to /oauth2/signed_out, which
    // honours the (re-checked) rd.
    let hops = browser.follow(to_idp.as_str(), 6).await;
    let confirm = hops.last().expect("hops");
    let back = browser.submit_form(confirm, &[]).await;
    let trace = crate::support::browser::describe(&back);
    let signed_out = back
        .iter()
        .find(|h| h.url.path() == "/oauth2/signed_out")
        .unwrap_or_else(|| panic!("never came back to /oauth2/signed_out: {trace}"));
    assert_eq!(
        signed_out.location.as_ref().map(|u| u.as_str()),
        Some(rd.as_str())
    );
    // rd is itself protected, and the IdP no longer has a session: its login form shows.
    let last = back.last().expect("hops");
    assert!(
        last.body.contains("name=\"password\""),
        "no IdP login form: {trace}"
    );
}
