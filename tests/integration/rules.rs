//! Who gets in, through real proxies: global rules, per-route rules on the auth URL, and
//! route rules that only narrow whatever a visitor appends to the page's query.

use crate::stack::{seen_headers, Options, Stack};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::COOKIE_NAME;
use crate::support::{Browser, ProxyKind};

const RULES: &[(&str, &str)] = &[
    ("REQUIRE_GROUP", "ops,dev,^RT_"),
    ("ALLOWED_EMAIL_DOMAINS", "example.com,example.org"),
    ("ADMINS", "carol"),
    ("GROUP_MAP", r#"{"ACME, Inc": "acme"}"#),
];

fn stack(proxy: ProxyKind, naive_caddy: bool) -> Stack {
    Stack::start(Options {
        proxy,
        env: RULES,
        naive_caddy,
        ..Options::default()
    })
}

async fn status_of(browser: &Browser, stack: &Stack, path: &str) -> (u16, String) {
    let hop = browser.get(&stack.url(path)).await;
    (hop.status, hop.body)
}

async fn routes_and_users(proxy: ProxyKind) {
    let stack = stack(proxy, false);

    let alice = Browser::new();
    alice
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    assert_eq!(
        status_of(&alice, &stack, "/ops/").await.0,
        200,
        "{proxy:?} alice on /ops/"
    );

    let bob = Browser::new();
    let landed = bob
        .sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    // GROUP_MAP applied to what the app sees.
    assert_eq!(
        seen_headers(&landed.json())["x-auth-request-groups"],
        "dev,RT_users,acme"
    );
    let (status, body) = status_of(&bob, &stack, "/ops/").await;
    assert_eq!(status, 403, "{proxy:?} bob on /ops/");
    if proxy != ProxyKind::Nginx {
        assert!(body.contains("signed in as <strong>bob</strong>"), "{body}");
        assert!(body.contains("Sign out"));
    }

    // An admin without any group passes every rule, route rules included.
    let carol = Browser::new();
    let landed = carol
        .sign_in_through(&stack.base(), "/", "carol", PASSWORD)
        .await;
    // nginx drops headers whose value is empty; the others pass them empty.
    let groups = seen_headers(&landed.json()).remove("x-auth-request-groups");
    assert_eq!(groups.unwrap_or_default(), "");
    assert_eq!(
        status_of(&carol, &stack, "/ops/").await.0,
        200,
        "{proxy:?} admin on /ops/"
    );

    // Users the global rules refuse are stopped at login, with no session.
    for user in ["erin", "dave"] {
        let browser = Browser::new();
        let hops = browser
            .sign_in_trace(&stack.base(), "/", user, PASSWORD)
            .await;
        let last = hops.last().expect("hops");
        assert_eq!(last.status, 403, "{proxy:?} {user} at login");
        assert!(last.url.path() == "/oauth2/callback");
        assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_none());
    }

    // Issue 7: whatever a visitor appends to the page's query, route rules only narrow.
    assert_eq!(
        status_of(&bob, &stack, "/page?x=1").await.0,
        200,
        "{proxy:?} page query"
    );
    for query in [
        "require_group=",
        "require_group=%5E",
        "require_group=dev",
        "allowed_users=bob",
        "allowed_email_domains=example.com",
    ] {
        let (status, _) = status_of(&bob, &stack, &format!("/ops/?{query}")).await;
        assert!(
            status == 403 || status == 400,
            "{proxy:?}: bob on /ops/?{query} answered {status}"
        );
        let (status, _) = status_of(&bob, &stack, &format!("/?{query}")).await;
        assert_eq!(
            status, 200,
            "{proxy:?}: bob on /?{query} (a route he may use)"
        );
    }
}

#[tokio::test]
async fn routes_and_users_through_traefik() {
    routes_and_users(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn routes_and_users_through_nginx() {
    routes_and_users(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn routes_and_users_through_caddy() {
    routes_and_users(ProxyKind::Caddy).await;
}

/// The Caddy snippet most guides show (`uri` without `?`) copies the page's query onto the auth
/// URL. That must never open anything: it can only lock the visitor out.
#[tokio::test]
async fn naive_caddy_snippet_cannot_widen_access() {
    let mut stack = stack(ProxyKind::Caddy, true);
    let bob = Browser::new();
    bob.sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    // Unknown copied parameters deny (a typo must not open a route).
    assert_eq!(status_of(&bob, &stack, "/page?x=1").await.0, 400);
    for query in [
        "require_group=dev",
        "allowed_users=bob",
        "require_group=%5E",
    ] {
        let (status, _) = status_of(&bob, &stack, &format!("/ops/?{query}")).await;
        assert!(
            status == 403 || status == 400,
            "/ops/?{query} answered {status}"
        );
    }

    // Tighter global rules after a restart apply to existing sessions; a visitor-written
    // route rule naming himself does not get him back in.
    let mut env = crate::support::portcullis::test_env(
        &stack.idp,
        &stack.base(),
        stack.redis.as_ref().map(|r| r.url()).as_deref(),
    );
    env.insert("REQUIRE_GROUP".into(), "ops".into());
    stack.portcullis.stop();
    stack.portcullis.start(env);
    assert_eq!(status_of(&bob, &stack, "/").await.0, 403);
    for query in [
        "allowed_users=bob",
        "require_group=dev",
        "allowed_email_domains=example.com",
    ] {
        let (status, _) = status_of(&bob, &stack, &format!("/?{query}")).await;
        assert!(
            status == 403 || status == 400,
            "/?{query} answered {status}"
        );
    }
}
