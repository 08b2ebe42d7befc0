//! Each endpoint's answers to anonymous, forged and replayed requests (portcullis behind Traefik,
//! and directly, as a proxy would call it).

use url::Url;

use crate::stack::Stack;
use crate::support::browser::{API_ACCEPT, BROWSER_ACCEPT};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::{COOKIE_NAME, COOKIE_SECRET};
use crate::support::Browser;

/// Headers Traefik sends on a forward-auth sub-request for `path` on the proxy.
fn forwarded(stack: &Stack, path: &str) -> Vec<(String, String)> {
    let base = Url::parse(&stack.base()).expect("base");
    vec![
        ("X-Forwarded-Proto".into(), "http".into()),
        ("X-Forwarded-Host".into(), base.authority().to_string()),
        ("X-Forwarded-Uri".into(), path.into()),
        ("X-Forwarded-Method".into(), "GET".into()),
    ]
}

fn as_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[tokio::test]
async fn anonymous_requests_on_each_endpoint() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let original_url = format!("{}/app", stack.base());

    // Status mode never redirects, whatever the client accepts.
    for accept in [BROWSER_ACCEPT, API_ACCEPT] {
        let hop = browser
            .get_with_headers(
                &stack.direct("/oauth2/auth"),
                &[("Accept", accept), ("X-Original-URL", &original_url)],
            )
            .await;
        assert_eq!(hop.status, 401, "status mode with Accept {accept}");
        assert!(hop.location.is_none());
    }

    // Redirect mode: a browser navigation goes to the IdP with PKCE, state and nonce.
    let mut headers = forwarded(&stack, "/app?x=1");
    headers.push(("Accept".into(), BROWSER_ACCEPT.into()));
    let hop = browser
        .get_with_headers(&stack.direct("/oauth2/forward-auth"), &as_refs(&headers))
        .await;
    assert_eq!(hop.status, 302);
    let location = hop.location.clone().expect("location");
    assert!(
        location.as_str().starts_with(&stack.idp.issuer()),
        "redirected to {location}"
    );
    for param in ["state", "nonce", "code_challenge"] {
        assert!(
            hop.location_param(param).is_some(),
            "{param} missing in {location}"
        );
    }
    assert_eq!(
        hop.location_param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(hop.location_param("response_type").as_deref(), Some("code"));
    assert!(hop
        .set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE_NAME}_login_")) && c.contains("HttpOnly")));
    assert_eq!(hop.header("cache-control").as_deref(), Some("no-store"));

    // API clients and other methods get 401.
    let mut api = forwarded(&stack, "/app");
    api.push(("Accept".into(), API_ACCEPT.into()));
    let hop = browser
        .get_with_headers(&stack.direct("/oauth2/forward-auth"), &as_refs(&api))
        .await;
    assert_eq!(hop.status, 401);
    let mut post = forwarded(&stack, "/app");
    post.retain(|(k, _)| k != "X-Forwarded-Method");
    post.push(("X-Forwarded-Method".into(), "POST".into()));
    post.push(("Accept".into(), BROWSER_ACCEPT.into()));
    let hop = browser
        .get_with_headers(&stack.direct("/oauth2/forward-auth"), &as_refs(&post))
        .await;
    assert_eq!(hop.status, 401);

    // Missing or unparsable forwarded headers deny; they never fall back to anything else.
    let mut no_host = forwarded(&stack, "/app");
    no_host.retain(|(k, _)| k != "X-Forwarded-Host");
    no_host.push(("Accept".into(), BROWSER_ACCEPT.into()));
    let hop = browser
        .get_with_headers(&stack.direct("/oauth2/forward-auth"), &as_refs(&no_host))
        .await;
    assert_eq!(hop.status, 400);
    assert!(hop.body.contains("X-Forwarded-Host"), "{}", hop.body);
    let hop = browser.get(&stack.direct("/oauth2/auth")).await;
    assert_eq!(hop.status, 400, "status mode without X-Original-URL");
    let hop = browser
        .get_with_headers(
            &stack.direct("/oauth2/auth"),
            &[("X-Original-URL", "javascript:alert(1)")],
        )
        .await;
    assert_eq!(hop.status, 400);

    let hop = browser
        .get_with_accept(&stack.direct("/oauth2/userinfo"), API_ACCEPT)
        .await;
    assert_eq!(hop.status, 401);
    let hop = browser.get(&stack.direct("/oauth2/start?rd=/x")).await;
    assert_eq!(hop.status, 302);
    assert!(hop
        .location
        .expect("location")
        .as_str()
        .starts_with(&stack.idp.issuer()));
    assert_eq!(browser.get(&stack.direct("/healthz")).await.status, 200);
    assert_eq!(browser.get(&stack.direct("/readyz")).await.status, 200);
    assert_eq!(stack.upstream.request_count(), 0);
}

#[tokio::test]
async fn forged_truncated_and_unknown_cookies_deny() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let valid = browser
        .cookie(&stack.base(), COOKIE_NAME)
        .expect("session cookie after login");
    let original_url = format!("{}/app", stack.base());
    let check = |cookie: String| {
        let original_url = original_url.clone();
        let url = stack.direct("/oauth2/auth");
        async move {
            let anonymous = Browser::new();
            anonymous
                .get_with_headers(
                    &url,
                    &[
                        ("X-Original-URL", original_url.as_str()),
                        ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
                    ],
                )
                .await
                .status
        }
    };
    assert_eq!(
        check(valid.clone()).await,
        200,
        "the genuine cookie must pass"
    );

    let keys = portcullis::crypto::Keys::derive(COOKIE_SECRET.as_bytes()).expect("keys");
    let other_keys =
        portcullis::crypto::Keys::derive(b"some-other-secret-some-other-secret").expect("keys");
    let (id, _) = valid.split_once('.').expect("id.signature");
    let mut flipped = valid.clone().into_bytes();
    let last = flipped.len() - 2;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let forgeries = [
        ("garbage", "garbage".to_string()),
        ("truncated", valid[..valid.len() - 5].to_string()),
        ("id only", id.to_string()),
        (
            "flipped signature",
            String::from_utf8(flipped).expect("ascii"),
        ),
        ("signed by another secret", other_keys.sign(id)),
        (
            "unknown id, right secret",
            keys.sign(&portcullis::crypto::random_id()),
        ),
        ("empty", String::new()),
    ];
    for (what, cookie) in forgeries {
        assert_eq!(check(cookie).await, 401, "{what}");
    }
}

#[tokio::test]
async fn idp_error_on_callback_ends_on_an_error_page_without_session() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/", "denied", PASSWORD)
        .await;
    let last = hops.last().expect("hops");
    assert_eq!(
        last.status,
        403,
        "{}",
        crate::support::browser::describe(&hops)
    );
    assert!(last.url.path() == "/oauth2/callback");
    assert!(last.body.contains("did not allow"));
    assert!(last.body.contains("Try again"));
    assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_none());
    assert_eq!(stack.upstream.request_count(), 0);
}

/// Drives a login up to the IdP's redirect to our callback, without visiting it (an IdP that
/// still has a session of its own skips the form).
async fn callback_url(browser: &Browser, stack: &Stack, user: &str) -> Url {
    let mut hop = browser.get(&stack.url("/oauth2/start?rd=/")).await;
    for _ in 0..12 {
        if let Some(next) = hop.location.clone() {
            if next.path() == "/oauth2/callback" {
                return next;
            }
            hop = browser.get(next.as_str()).await;
            continue;
        }
        hop = browser
            .submit_form_once(&hop, &[("login", user), ("password", PASSWORD)])
            .await;
    }
    panic!("the IdP never redirected to the callback");
}

#[tokio::test]
async fn callback_replayed_or_carried_to_another_browser_fails() {
    let stack = Stack::traefik();

    let victim = Browser::new();
    let callback = callback_url(&victim, &stack, "alice").await;
    let attacker = Browser::new();
    let carried = attacker.get(callback.as_str()).await;
    assert_eq!(carried.status, 400, "callback in another browser");
    assert!(carried.body.contains("another browser"), "{}", carried.body);
    assert!(attacker.cookie(&stack.base(), COOKIE_NAME).is_none());

    let user = Browser::new();
    let callback = callback_url(&user, &stack, "alice").await;
    assert_eq!(user.get(callback.as_str()).await.status, 302, "first use");
    assert!(user.cookie(&stack.base(), COOKIE_NAME).is_some());
    let replay = user.get(callback.as_str()).await;
    assert_eq!(replay.status, 400, "replayed callback");
    assert!(replay.body.contains("already used"));
}

#[tokio::test]
async fn two_tabs_can_sign_in_at_once() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let first = callback_url(&browser, &stack, "alice").await;
    let second = callback_url(&browser, &stack, "alice").await;
    assert_eq!(browser.get(second.as_str()).await.status, 302);
    assert_eq!(browser.get(first.as_str()).await.status, 302);
}

#[tokio::test]
async fn redirect_targets_outside_the_allow_list_are_refused() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let base = stack.base();
    let allowed = format!("{base}/after");
    let hop = browser
        .get(&stack.url(&format!("/oauth2/sign_out?rd={}", urlencode(&allowed))))
        .await;
    assert_eq!(hop.status, 302);
    assert_eq!(hop.location.expect("location").as_str(), allowed);

    // Payloads from past advisories of oauth2-proxy, vouch-proxy, Authelia, traefik-forward-auth.
    let host = Url::parse(&base).expect("base").authority().to_string();
    let payloads = [
        "https://evil.example.com/".to_string(),
        "//evil.example.com/".to_string(),
        "/\\evil.example.com".to_string(),
        "/\t/evil.example.com".to_string(),
        "/%09/evil.example.com".to_string(),
        "/%5Cevil.example.com".to_string(),
        "https:evil.example.com".to_string(),
        format!("http://{host}@evil.example.com/"),
        format!("http://evil.example.com\\@{host}/"),
        format!("http://evil.example.com#@{host}/"),
        format!("http://evil.example.com?@{host}/"),
        format!("http://{host}.evil.example.com/"),
        "javascript:alert(1)".to_string(),
        "data:text/html,<script>alert(1)</script>".to_string(),
        " //evil.example.com".to_string(),
        "\\\\evil.example.com".to_string(),
    ];
    for payload in payloads {
        let hop = browser
            .get(&stack.url(&format!("/oauth2/sign_out?rd={}", urlencode(&payload))))
            .await;
        assert_eq!(
            hop.status, 200,
            "sign-out with rd={payload:?} must not redirect"
        );
        assert!(hop.location.is_none(), "rd={payload:?} redirected");
        // And the same payload as a login's return address lands on our own root.
        let start = browser
            .get(&stack.url(&format!("/oauth2/start?rd={}", urlencode(&payload))))
            .await;
        assert_eq!(start.status, 302, "start with rd={payload:?}");
    }
    // A full login that started with a hostile rd ends on our own site.
    let fresh = Browser::new();
    let hops = fresh
        .sign_in_trace(
            &base,
            "/oauth2/start?rd=https%3A%2F%2Fevil.example.com%2F",
            "bob",
            PASSWORD,
        )
        .await;
    for hop in &hops {
        if let Some(location) = &hop.location {
            assert_ne!(
                location.host_str(),
                Some("evil.example.com"),
                "redirected to {location}"
            );
        }
    }
    let last = hops.last().expect("hops");
    assert_eq!(last.url.as_str(), format!("{base}/"));
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused() {
    // RFC 9207: the test IdP names itself in `iss`; a response claiming another issuer (a
    // mix-up attack) must not be accepted even though the code and state are genuine.
    let stack = Stack::traefik();
    let browser = Browser::new();
    let mut callback = callback_url(&browser, &stack, "alice").await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "iss" {
                "http://127.0.0.1:1".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    assert!(pairs.iter().any(|(k, _)| k == "iss"), "the IdP sent no iss");
    callback.query_pairs_mut().clear().extend_pairs(&pairs);
    let hop = browser.get(callback.as_str()).await;
    assert_eq!(hop.status, 400);
    assert!(
        hop.body.contains("unexpected identity provider"),
        "{}",
        hop.body
    );
    assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_none());
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_on_first_use() {
    // The IdP restarts with a new signing key; portcullis still holds the old JWKS from
    // discovery, meets an unknown `kid`, refetches once and accepts the new token.
    let mut stack = Stack::traefik();
    let first = Browser::new();
    first
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    stack.idp.restart();
    let second = Browser::new();
    let landed = second
        .sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    assert_eq!(
        crate::stack::seen_headers(&landed.json())["x-auth-request-user"],
        "bob"
    );
}

#[tokio::test]
async fn the_session_cookie_is_http_only_lax_and_host_wide() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let set = hops
        .iter()
        .flat_map(|h| h.set_cookies())
        .find(|c| {
            c.starts_with(&format!("{COOKIE_NAME}=")) && !c.starts_with(&format!("{COOKIE_NAME}=;"))
        })
        .expect("a session cookie was set");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let callback = hops
        .iter()
        .find(|h| h.url.path() == "/oauth2/callback")
        .expect("callback hop");
    assert_eq!(
        callback.header("cache-control").as_deref(),
        Some("no-store")
    );
}
