//! Original URLs that hide their path (dot segments, encoded slashes) are refused, directly and
//! through each real proxy; the examples strip portcullis' cookie before the app sees it.
//!
//! What each proxy did with the crafted requests (Traefik 3.7.15, nginx 1.22.1, Caddy 2.6.2):
//! see [`CRAFTED`].

use url::Url;

use crate::stack::{seen_headers, Options, Stack};
use crate::support::browser::{API_ACCEPT, BROWSER_ACCEPT};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::{test_env, COOKIE_NAME};
use crate::support::raw_http::{self, RawResponse};
use crate::support::{Browser, ProxyKind};

/// Refused whatever `ALLOW_ENCODED_SLASHES` says: dot segments (literal, encoded, half
/// encoded, last, with `;params`, ended by an encoded slash) and a literal backslash.
const ALWAYS_REFUSED: &[&str] = &[
    "/x/../ops/",
    "/x/%2e%2e/ops/",
    "/x/%2E%2e/ops/",
    "/x/.%2e/ops/",
    "/ops/%2e/",
    "/ops/./",
    "/ops/..",
    "/x/..;/ops/",
    "/x/..%2fops/",
    "/x/..%5Cops/",
    "/x\\ops/",
];

/// Refused unless `ALLOW_ENCODED_SLASHES=true`.
const ENCODED_SLASHES: &[&str] = &[
    "/ops%2f",
    "/x%2Fops/",
    "/x%5cops/",
    "/api/v4/projects/group%2Fproject",
];

/// Names with dots, and a query that is never looked at: these pass (200 for a signed-in user).
const PLAIN: &[&str] = &["/ops/", "/v1.2/..a/", "/.well-known/x", "/a?next=/../%2f"];

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    /// `/oauth2/auth` with `X-Original-URL` (nginx).
    Status,
    /// `/oauth2/forward-auth` with `X-Forwarded-*` (Traefik, Caddy).
    Redirect,
}

/// The auth check called directly, as a proxy would, for `path` on the proxy's host, with
/// `session` as the session cookie. Returns status and body.
async fn check_directly(
    stack: &Stack,
    endpoint: Endpoint,
    path: &str,
    session: &str,
) -> (u16, String) {
    let cookie = format!("{COOKIE_NAME}={session}");
    let authority = Url::parse(&stack.base())
        .expect("base")
        .authority()
        .to_string();
    let original_url = format!("{}{path}", stack.base());
    let (url, headers) = match endpoint {
        Endpoint::Status => (
            stack.direct("/oauth2/auth"),
            vec![("X-Original-URL", original_url.as_str())],
        ),
        Endpoint::Redirect => (
            stack.direct("/oauth2/forward-auth"),
            vec![
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", authority.as_str()),
                ("X-Forwarded-Uri", path),
                ("X-Forwarded-Method", "GET"),
            ],
        ),
    };
    let mut all = vec![("Accept", API_ACCEPT), ("Cookie", cookie.as_str())];
    all.extend(headers);
    // A fresh browser: the session travels only in the Cookie header given here.
    let hop = Browser::new().get_with_headers(&url, &all).await;
    (hop.status, hop.body)
}

async fn assert_statuses(
    stack: &Stack,
    session: &str,
    paths: &[&str],
    expected: u16,
    body_part: Option<&str>,
    what: &str,
) {
    for endpoint in [Endpoint::Status, Endpoint::Redirect] {
        for path in paths {
            let (status, body) = check_directly(stack, endpoint, path, session).await;
            assert_eq!(status, expected, "{what}: {endpoint:?} {path:?}: {body}");
            if let Some(part) = body_part {
                assert!(body.contains(part), "{what}: {endpoint:?} {path:?}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn hidden_paths_get_400_on_both_endpoints() {
    let mut stack = Stack::traefik();
    let alice = Browser::new();
    alice
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let session = alice
        .cookie(&stack.base(), COOKIE_NAME)
        .expect("session cookie");

    // A valid session and no rules: everything else would be 200.
    assert_statuses(&stack, &session, PLAIN, 200, None, "plain").await;
    let dot_segments = &ALWAYS_REFUSED[..ALWAYS_REFUSED.len() - 1];
    let backslash = &ALWAYS_REFUSED[ALWAYS_REFUSED.len() - 1..];
    assert_statuses(
        &stack,
        &session,
        dot_segments,
        400,
        Some("path has a dot segment"),
        "default",
    )
    .await;
    assert_statuses(&stack, &session, backslash, 400, None, "default").await;
    assert_statuses(
        &stack,
        &session,
        ENCODED_SLASHES,
        400,
        Some("path has an encoded slash"),
        "default",
    )
    .await;

    // ALLOW_ENCODED_SLASHES=true: encoded slashes pass, dot segments still do not. The session
    // lives in Redis, so it survives the restart.
    let mut env = test_env(
        &stack.idp,
        &stack.base(),
        stack.redis.as_ref().map(|r| r.url()).as_deref(),
    );
    env.insert("ALLOW_ENCODED_SLASHES".into(), "true".into());
    stack.portcullis.stop();
    stack.portcullis.start(env);
    assert_statuses(&stack, &session, ENCODED_SLASHES, 200, None, "allowed").await;
    assert_statuses(&stack, &session, PLAIN, 200, None, "allowed").await;
    assert_statuses(
        &stack,
        &session,
        dot_segments,
        400,
        Some("path has a dot segment"),
        "allowed",
    )
    .await;
    assert_statuses(&stack, &session, backslash, 400, None, "allowed").await;
    assert_eq!(stack.upstream.request_count(), 1, "only alice's sign-in");
}

/// Crafted requests for the protected `/ops/` (group "ops"), sent as written.
///
/// What the proxies did with them (the test prints it; bob lacks "ops"):
/// - Traefik 3.7.15 resolves literal and `%2e` dot segments itself (`/x/../ops/`,
///   `/x/%2e%2e/ops/`, `/ops/%2e/`...) and routes the result: the `/ops/` router, portcullis'
///   403. Everything with an encoded slash or backslash (`/x/..%2fops/`, `/ops%2f`,
///   `/x/..%5cops/`) and `/x/..;/ops/` it passes on raw: portcullis' 400. Without that 400,
///   `/x/..%2fops/` went to the catch-all router and reached the app.
/// - nginx 1.22.1 decodes and resolves the path before choosing a location (`/x/..%2fops/` and
///   `/ops%2f` are `/ops/` to it, `/x/..%5cops/` is `/x/..\ops/`), then sends portcullis the
///   raw `$request_uri` in `X-Original-URL`: portcullis answers 400, which `auth_request`
///   turns into 500. `/page/..%2f..%2fops/` climbs above the root: nginx's own 400. Without
///   portcullis' 400, `/x/..%5cops/` went to the `/` location and reached the app.
/// - Caddy 2.6.2 sends every one of them raw in `X-Forwarded-Uri` and passes portcullis' 400
///   on. Without it, `/x/..%5cops/` went to the catch-all and reached the app.
const CRAFTED: &[&str] = &[
    "/x/../ops/",
    "/./ops/",
    "/ops/./",
    "/x/%2e%2e/ops/",
    "/x/%2E%2E/ops/",
    "/x/.%2e/ops/",
    "/ops/%2e/",
    "/x/..%2fops/",
    "/x/..%2Fops/",
    "/x/%2e%2e%2fops/",
    "/x/..%5cops/",
    "/x/..;/ops/",
    "/page/..%2f..%2fops/",
    "/ops%2f",
    "/ops%2F",
    "/ops%5c",
];

/// `GET target` through the proxy as written, with the browser's cookies for the proxy.
fn raw_through(stack: &Stack, browser: &Browser, target: &str) -> RawResponse {
    let cookies = browser
        .cookies(&stack.base())
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("; ");
    raw_http::get(
        stack.proxy.port(),
        target,
        &[("Accept", BROWSER_ACCEPT), ("Cookie", &cookies)],
    )
    .unwrap_or_else(|e| panic!("{target}: {e}"))
}

async fn crafted_paths_never_reach_the_protected_route(proxy: ProxyKind) {
    let stack = Stack::start(Options {
        proxy,
        ..Options::default()
    });

    // The raw client really sends what it is given (reqwest would have sent `/ops/`).
    let echoed = raw_http::get(stack.upstream.port(), "/x/../ops/", &[]).expect("echo");
    let echoed: serde_json::Value = serde_json::from_str(&echoed.body).expect("echo JSON");
    assert_eq!(echoed["path"], "/x/../ops/");

    // bob may use the app but is not in "ops".
    let bob = Browser::new();
    bob.sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    stack.upstream.clear_requests();
    assert_eq!(raw_through(&stack, &bob, "/page").status, 200, "{proxy:?}");
    assert_eq!(stack.upstream.request_count(), 1, "{proxy:?}: /page");
    assert_eq!(raw_through(&stack, &bob, "/ops/").status, 403, "{proxy:?}");
    stack.upstream.clear_requests();

    let mut answers = Vec::new();
    for target in CRAFTED {
        let response = raw_through(&stack, &bob, target);
        // Who answered shows in the body: the proxy's own error page or portcullis' reason.
        let said: String = response
            .body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let said: String = said.chars().take(90).collect();
        answers.push(format!("{target} -> {} {said}", response.status));
        assert!(
            !(200..300).contains(&response.status),
            "{proxy:?}: bob got {} for {target}: {}",
            response.status,
            response.body
        );
    }
    println!("{proxy:?}:\n  {}", answers.join("\n  "));
    assert_eq!(
        stack.upstream.requests(),
        Vec::<serde_json::Value>::new(),
        "{proxy:?}: a crafted request reached the app"
    );

    // The bare `/ops` is the route's too: 403, not the catch-all's 200. nginx first redirects
    // it to `/ops/` (before any check: the app does not see it).
    let bare = raw_through(&stack, &bob, "/ops");
    let bare = if proxy == ProxyKind::Nginx {
        assert_eq!(bare.status, 301, "nginx: /ops");
        assert_eq!(bare.header("location"), Some("/ops/"), "nginx: /ops");
        raw_through(&stack, &bob, "/ops/")
    } else {
        bare
    };
    assert_eq!(bare.status, 403, "{proxy:?}: bob on /ops: {}", bare.body);
    assert_eq!(stack.upstream.request_count(), 0, "{proxy:?}: /ops");

    // ...and it does lead to the app for someone in "ops" (nginx: by way of `/ops/`).
    let alice = Browser::new();
    alice
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let hops = alice.follow(&stack.url("/ops"), 3).await;
    let last = hops.last().expect("hops");
    assert_eq!(last.status, 200, "{proxy:?}: alice on /ops");
    let expected = if proxy == ProxyKind::Nginx {
        "/ops/"
    } else {
        "/ops"
    };
    assert_eq!(last.json()["path"], expected, "{proxy:?}");
}

#[tokio::test]
async fn crafted_paths_never_reach_the_protected_route_through_traefik() {
    crafted_paths_never_reach_the_protected_route(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn crafted_paths_never_reach_the_protected_route_through_nginx() {
    crafted_paths_never_reach_the_protected_route(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn crafted_paths_never_reach_the_protected_route_through_caddy() {
    crafted_paths_never_reach_the_protected_route(ProxyKind::Caddy).await;
}

/// The Cookie header the app received for `target`, sending `cookie_header` through the proxy.
/// The request must be allowed, which also shows that portcullis itself got the session.
fn cookie_seen_by_app(stack: &Stack, target: &str, cookie_header: &str) -> String {
    let response = raw_http::get(
        stack.proxy.port(),
        target,
        &[("Accept", API_ACCEPT), ("Cookie", cookie_header)],
    )
    .unwrap_or_else(|e| panic!("{target}: {e}"));
    assert_eq!(
        response.status, 200,
        "{target} with {cookie_header}: {}",
        response.body
    );
    let echo: serde_json::Value = serde_json::from_str(&response.body).expect("echo JSON");
    // nginx sends no Cookie header when none is left; Caddy sends an empty one.
    seen_headers(&echo).remove("cookie").unwrap_or_default()
}

async fn portcullis_cookies_never_reach_the_app(proxy: ProxyKind) {
    let stack = Stack::start(Options {
        proxy,
        ..Options::default()
    });
    let alice = Browser::new();
    alice
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let session = alice
        .cookie(&stack.base(), COOKIE_NAME)
        .expect("session cookie");

    // As a browser sends them.
    alice.set_cookie(&stack.base(), "theme=dark; Path=/");
    let hop = alice.get(&stack.url("/page")).await;
    assert_eq!(hop.status, 200);
    let seen = seen_headers(&hop.json())
        .remove("cookie")
        .unwrap_or_default();
    assert!(seen.contains("theme=dark"), "{proxy:?}: {seen:?}");
    assert!(!seen.contains(COOKIE_NAME), "{proxy:?}: {seen:?}");

    // First, last, between others, with a sign-in cookie on `/` (as `__Host-` names will
    // need), and an app cookie whose name merely contains ours.
    let ours = format!("{COOKIE_NAME}={session}");
    let login = format!("{COOKIE_NAME}_login_abc=pending");
    let cases = [
        (format!("{ours}; theme=dark"), "theme=dark"),
        (format!("theme=dark; {ours}"), "theme=dark"),
        (
            format!("theme=dark; {login}; {ours}; lang=en; my{COOKIE_NAME}=keep"),
            "theme=dark; lang=en; my_portcullis=keep",
        ),
        (format!("{login}; {ours}"), ""),
    ];
    for target in ["/page", "/ops/"] {
        for (sent, expected) in &cases {
            assert_eq!(
                cookie_seen_by_app(&stack, target, sent),
                *expected,
                "{proxy:?} {target}: sent {sent:?}"
            );
        }
    }
}

#[tokio::test]
async fn portcullis_cookies_never_reach_the_app_through_nginx() {
    portcullis_cookies_never_reach_the_app(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn portcullis_cookies_never_reach_the_app_through_caddy() {
    portcullis_cookies_never_reach_the_app(ProxyKind::Caddy).await;
}
