//! A whole login through each real proxy, and what the app then sees.

use crate::stack::{seen_headers, Options, Stack};
use crate::support::browser::API_ACCEPT;
use crate::support::idp::PASSWORD;
use crate::support::{Browser, ProxyKind};

async fn login_through(proxy: ProxyKind) {
    let stack = Stack::start(Options {
        proxy,
        ..Options::default()
    });
    let browser = Browser::new();

    // Anonymous API clients get 401 (or the proxy's sign-in redirect for nginx), never the app.
    let api = browser.get_with_accept(&stack.url("/"), API_ACCEPT).await;
    assert!(
        api.status == 401 || (proxy == ProxyKind::Nginx && api.status == 302),
        "{proxy:?}: anonymous API request answered {}",
        api.status
    );
    assert_eq!(
        stack.upstream.request_count(),
        0,
        "the app saw an anonymous request"
    );

    let landed = browser
        .sign_in_through(&stack.base(), "/some/page?x=1&y=a%20b", "bob", PASSWORD)
        .await;
    let echo = landed.json();
    assert_eq!(
        echo["path"], "/some/page",
        "{proxy:?} landed elsewhere: {echo}"
    );
    assert_eq!(
        echo["query"], "x=1&y=a%20b",
        "{proxy:?} lost the query through login"
    );
    let headers = seen_headers(&echo);
    assert_eq!(headers["x-auth-request-user"], "bob");
    assert_eq!(headers["x-auth-request-email"], "bob@example.com");
    assert_eq!(headers["x-auth-request-preferred-username"], "bob");
    assert_eq!(headers["x-auth-request-groups"], "dev,RT_users,ACME%2C Inc");
    assert_eq!(headers["remote-user"], "bob");
    assert_eq!(headers["remote-email"], "bob@example.com");
    assert_eq!(headers["remote-name"], "bob");
    assert_eq!(headers["remote-groups"], "dev,RT_users,ACME%2C Inc");

    // A signed-in request that tries to pass its own identity: the app sees portcullis' values.
    let spoofed = browser
        .get_with_headers(
            &stack.url("/again"),
            &[
                ("X-Auth-Request-User", "mallory"),
                ("Remote-User", "mallory"),
                ("Remote-Groups", "admins"),
                ("X-Auth-Request-Provider", "corporate"),
            ],
        )
        .await;
    assert_eq!(spoofed.status, 200);
    let headers = seen_headers(&spoofed.json());
    assert_eq!(headers["x-auth-request-user"], "bob", "{proxy:?}");
    // One unnamed provider: empty, which nginx and Caddy send as no header at all.
    assert_eq!(
        headers
            .get("x-auth-request-provider")
            .map_or("", String::as_str),
        "",
        "{proxy:?}"
    );
    assert_eq!(headers["remote-user"], "bob", "{proxy:?}");
    assert_eq!(
        headers["remote-groups"], "dev,RT_users,ACME%2C Inc",
        "{proxy:?}"
    );

    // /oauth2/userinfo through the proxy, JSON, never tokens.
    let info = browser
        .get_with_accept(&stack.url("/oauth2/userinfo"), API_ACCEPT)
        .await;
    assert_eq!(info.status, 200);
    let info = info.json();
    assert_eq!(info["user"], "bob");
    assert_eq!(info["email"], "bob@example.com");
    assert_eq!(
        info["groups"],
        serde_json::json!(["dev", "RT_users", "ACME, Inc"])
    );
    assert!(!info.to_string().contains("eyJ"), "a token leaked: {info}");
}

#[tokio::test]
async fn login_through_traefik() {
    login_through(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn login_through_nginx() {
    login_through(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn login_through_caddy() {
    login_through(ProxyKind::Caddy).await;
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let stack = Stack::start(Options {
        client_secret_post: true,
        ..Options::default()
    });
    let browser = Browser::new();
    let landed = browser
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    assert_eq!(seen_headers(&landed.json())["x-auth-request-user"], "alice");
}
