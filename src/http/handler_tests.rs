//! In-process tests of every handler: the real routes and state, the memory store, and an
//! identity provider that is never reachable (a closed loopback port), so that discovery fails
//! at once and the provider stays "not ready". What needs a working IdP (a complete sign-in, the
//! IdP logout) is left to tests/integration; everything else about status codes, headers,
//! cookies and pages is checked here, in milliseconds.
//!
//! Only the entry points that stay put are used: `build_state`, `routes`, the state's `store`,
//! `keys` and `config`, `Store::put_session`, `Session`, `Keys::sign`, `random_id` and
//! `unix_now`. Everything else is observed from the outside, as a proxy or a browser would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::cookie::Cookie;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web;

use super::{unix_now, AppState};
use crate::session::Session;

#[path = "observability_tests.rs"]
mod observability;
#[path = "providers_tests.rs"]
mod providers;

/// Set explicitly rather than relying on the default, so these tests do not depend on it.
const COOKIE_NAME: &str = "_portcullis";
/// A proxy on the same host: inside the default `TRUSTED_PROXIES`.
const PROXY: &str = "127.0.0.1:40000";
/// Not in any default trusted range (TEST-NET-3).
const STRANGER: &str = "203.0.113.7:40000";
/// The page the user wanted, as a proxy reports it.
const PAGE_URL: &str = "https://app.example.com/reports/q3?year=2024";

/// The eight identity headers, in (portcullis name, Remote-* name) pairs.
const IDENTITY_HEADERS: [(&str, &str); 4] = [
    ("x-auth-request-user", "remote-user"),
    ("x-auth-request-email", "remote-email"),
    ("x-auth-request-preferred-username", "remote-name"),
    ("x-auth-request-groups", "remote-groups"),
];

fn env(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        // Port 9 (discard) is closed on loopback: discovery is refused at once.
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "client-secret-value"),
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
        ("COOKIE_NAME", COOKIE_NAME),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

async fn state_with(extra: &[(&str, &str)]) -> web::Data<AppState> {
    let config = crate::config::Config::from_env_map(env(extra)).unwrap();
    crate::build_state(config).await.unwrap()
}

async fn state() -> web::Data<AppState> {
    state_with(&[]).await
}

/// Sends one request through the real routes. The app is cheap to build; the state (and so
/// the store) is shared between the requests of a test.
async fn send(state: &web::Data<AppState>, req: TestRequest) -> ServiceResponse {
    let app = test::init_service(super::app(state.clone())).await;
    test::call_service(&app, req.to_request())
        .await
        .map_into_boxed_body()
}

/// The response's headers and body, the body as text.
async fn read(response: ServiceResponse) -> (StatusCode, HeaderMap, String) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    let mut values = headers.get_all(name);
    let value = values
        .next()
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"));
    assert!(values.next().is_none(), "{name} sent more than once");
    value.to_str().unwrap()
}

fn alice() -> Session {
    let now = unix_now();
    Session {
        user: "alice".to_string(),
        email: Some("alice@example.com".to_string()),
        email_verified: true,
        preferred_username: Some("Alice A.".to_string()),
        groups: vec!["ops".to_string(), "Engineering, EMEA".to_string()],
        created_at: now,
        expires_at: now + 3600,
        subject: "alice-sub".to_string(),
        claims_read_at: now,
        ..Session::default()
    }
}

/// Stores `session` and returns the value of the session cookie that names it.
async fn sign_in(state: &web::Data<AppState>, session: &Session) -> String {
    let id = crate::crypto::random_id();
    state
        .store
        .put_session(&id, session, None, Duration::from_secs(3600))
        .await
        .unwrap();
    state.keys.sign(&id)
}

fn with_cookie(req: TestRequest, value: &str) -> TestRequest {
    req.insert_header((header::COOKIE, format!("{COOKIE_NAME}={value}")))
}

/// nginx's `auth_request`: `/oauth2/auth` with `X-Original-URL`, from the proxy.
fn status_check(query: &str) -> TestRequest {
    TestRequest::get()
        .uri(&format!("/oauth2/auth{query}"))
        .peer_addr(addr(PROXY))
        .insert_header(("X-Original-URL", PAGE_URL))
}

/// Traefik's or Caddy's forward auth: `/oauth2/forward-auth` with `X-Forwarded-*`.
fn redirect_check(query: &str, uri: &str) -> TestRequest {
    TestRequest::get()
        .uri(&format!("/oauth2/forward-auth{query}"))
        .peer_addr(addr(PROXY))
        .insert_header(("X-Forwarded-Proto", "https"))
        .insert_header(("X-Forwarded-Host", "app.example.com"))
        .insert_header(("X-Forwarded-Uri", uri))
        .insert_header(("X-Forwarded-Method", "GET"))
}

/// What a browser sends for a top-level navigation.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The provider's header: one name, no `Remote-*` twin.
const PROVIDER_HEADER: &str = "x-auth-request-provider";

/// The identity headers of a session of the one unnamed provider (its header present, empty).
fn assert_identity(headers: &HeaderMap, expected: [&str; 4]) {
    for ((ours, remote), value) in IDENTITY_HEADERS.iter().zip(expected) {
        assert_eq!(header(headers, ours), value, "{ours}");
        assert_eq!(header(headers, remote), value, "{remote}");
    }
    assert_eq!(header(headers, PROVIDER_HEADER), "", "{PROVIDER_HEADER}");
    assert_eq!(header(headers, "cache-control"), "no-store");
}

fn assert_no_identity(headers: &HeaderMap) {
    for (ours, remote) in IDENTITY_HEADERS {
        assert!(headers.get(ours).is_none(), "{ours} on a denial");
        assert!(headers.get(remote).is_none(), "{remote} on a denial");
    }
    assert!(
        headers.get(PROVIDER_HEADER).is_none(),
        "provider on a denial"
    );
}

/// The headers every page carries: no framing, no sniffing, no referrer, no caching.
fn assert_page_headers(headers: &HeaderMap) {
    assert_eq!(header(headers, "x-frame-options"), "DENY");
    let csp = header(headers, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer");
    assert_eq!(header(headers, "cache-control"), "no-store");
}

fn set_cookies(response: &ServiceResponse) -> Vec<Cookie<'static>> {
    response
        .response()
        .cookies()
        .map(Cookie::into_owned)
        .collect()
}

/// The session cookie is cleared: emptied and expired at once.
fn assert_session_cookie_cleared(response: &ServiceResponse) {
    let cookies = set_cookies(response);
    let cleared: Vec<_> = cookies.iter().filter(|c| c.name() == COOKIE_NAME).collect();
    assert_eq!(cleared.len(), 1, "{cookies:?}");
    assert_eq!(cleared[0].value(), "");
    assert_eq!(
        cleared[0].max_age(),
        Some(actix_web::cookie::time::Duration::ZERO)
    );
    assert_eq!(cleared[0].path(), Some("/"));
}

// ---- the auth checks: signed in ----

#[actix_web::test]
async fn status_mode_with_a_session_answers_200_with_every_identity_header() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    // A comma inside a group name is encoded, so the list still splits into two groups.
    assert_identity(
        &headers,
        [
            "alice",
            "alice@example.com",
            "Alice A.",
            "ops,Engineering%2C EMEA",
        ],
    );
}

#[actix_web::test]
async fn redirect_mode_with_a_session_answers_200_with_every_identity_header() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(redirect_check("", "/reports/q3?year=2024"), &cookie)
        .insert_header((header::ACCEPT, BROWSER_ACCEPT));
    let (status, headers, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_identity(
        &headers,
        [
            "alice",
            "alice@example.com",
            "Alice A.",
            "ops,Engineering%2C EMEA",
        ],
    );
}

/// GET and HEAD are answered ahead of the router (`ahead_of_router`), other methods by it: the
/// answers must not tell the two paths apart, and both carry the request id.
#[actix_web::test]
async fn head_is_checked_like_get_and_other_methods_are_refused_with_405() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let expected = [
        "alice",
        "alice@example.com",
        "Alice A.",
        "ops,Engineering%2C EMEA",
    ];
    for check in [
        status_check(""),
        redirect_check("", "/reports/q3?year=2024"),
    ] {
        let head = with_cookie(check, &cookie).method(actix_web::http::Method::HEAD);
        let (status, headers, _) = read(send(&state, head).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_identity(&headers, expected);
        assert_eq!(header(&headers, "x-request-id").len(), 22);
    }
    for path in ["/oauth2/auth", "/oauth2/forward-auth"] {
        for method in [actix_web::http::Method::POST, actix_web::http::Method::PUT] {
            let req = with_cookie(TestRequest::default(), &cookie)
                .method(method.clone())
                .uri(path)
                .peer_addr(addr(PROXY))
                .insert_header(("X-Original-URL", PAGE_URL));
            let (status, headers, _) = read(send(&state, req).await).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert_no_identity(&headers);
            assert_eq!(header(&headers, "x-request-id").len(), 22);
        }
    }
    // Another spelling of the path is not a check: the router answers it as any unknown path.
    let req = with_cookie(status_check(""), &cookie).uri("/oauth2/auth/");
    let (status, headers, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_no_identity(&headers);
}

#[actix_web::test]
async fn an_unverified_email_is_sent_empty_and_unknown_values_too() {
    let state = state().await;
    let session = Session {
        email_verified: false,
        preferred_username: None,
        groups: Vec::new(),
        ..alice()
    };
    let cookie = sign_in(&state, &session).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    // Present and empty, not absent: the proxy then replaces whatever the client sent.
    assert_identity(&headers, ["alice", "", "", ""]);
}

#[actix_web::test]
async fn identity_headers_sent_by_the_client_never_survive() {
    let state = state().await;
    let session = Session {
        email_verified: false,
        preferred_username: None,
        ..alice()
    };
    let cookie = sign_in(&state, &session).await;
    let mut req = with_cookie(status_check(""), &cookie);
    for (ours, remote) in IDENTITY_HEADERS {
        req = req
            .insert_header((ours, "admin"))
            .insert_header((remote, "admin"));
    }
    req = req.insert_header((PROVIDER_HEADER, "admin"));
    let (status, headers, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_identity(&headers, ["alice", "", "", "ops,Engineering%2C EMEA"]);
}

#[actix_web::test]
async fn a_route_rule_the_user_meets_lets_them_in() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(status_check("?require_group=ops"), &cookie);
    let (status, headers, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "x-auth-request-user"), "alice");
}

// ---- the auth checks: not signed in ----

#[actix_web::test]
async fn status_mode_without_a_valid_session_is_401() {
    let state = state().await;
    let real = sign_in(&state, &alice()).await;
    let expired = sign_in(
        &state,
        &Session {
            created_at: unix_now() - 7200,
            expires_at: unix_now() - 1,
            ..alice()
        },
    )
    .await;
    // A changed signature, and no signature, on the id of a session that exists. The first
    // character of the signature is changed: the last one has bits a decoder may ignore.
    let (id, signature) = real.rsplit_once('.').unwrap();
    let other = if signature.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{id}.{other}{}", &signature[1..]);
    let unsigned_id = id.to_string();
    let cases = [
        ("no cookie", None),
        ("tampered signature", Some(tampered)),
        ("unsigned id", Some(unsigned_id)),
        (
            "unknown id",
            Some(state.keys.sign(&crate::crypto::random_id())),
        ),
        ("expired session", Some(expired)),
        ("empty value", Some(String::new())),
    ];
    for (case, cookie) in cases {
        let req = match &cookie {
            Some(value) => with_cookie(status_check(""), value),
            None => status_check(""),
        };
        let (status, headers, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(body, "not signed in\n", "{case}");
        assert_no_identity(&headers);
    }
    // The real cookie still works: the 401s above are about the cookies, not the setup.
    let (status, _, _) = read(send(&state, with_cookie(status_check(""), &real)).await).await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn a_session_cookie_sent_twice_is_not_signed_in() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    // Cookie tossing: a sibling subdomain planted a second cookie of the same name. Even two
    // copies of the genuine value are refused: which one the browser put first is unknowable.
    for header_value in [
        format!("{COOKIE_NAME}={cookie}; {COOKIE_NAME}={cookie}"),
        format!("{COOKIE_NAME}=planted; {COOKIE_NAME}={cookie}"),
    ] {
        let req = status_check("").insert_header((header::COOKIE, header_value.clone()));
        let (status, headers, _) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{header_value}");
        assert_no_identity(&headers);
    }
    // Two Cookie header lines count as one list.
    let req = status_check("")
        .append_header((header::COOKIE, format!("{COOKIE_NAME}={cookie}")))
        .append_header((header::COOKIE, format!("{COOKIE_NAME}={cookie}")));
    let (status, _, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn redirect_mode_answers_api_clients_401() {
    let state = state().await;
    for accept in [Some("application/json"), Some("*/*"), None] {
        let mut req = redirect_check("", "/api/items");
        if let Some(accept) = accept {
            req = req.insert_header((header::ACCEPT, accept));
        }
        let (status, _, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "Accept: {accept:?}");
        assert_eq!(body, "not signed in\n");
    }
    // A form POST is not a navigation that can be replayed after sign-in, HTML or not.
    let req = redirect_check("", "/form")
        .insert_header(("X-Forwarded-Method", "POST"))
        .insert_header((header::ACCEPT, BROWSER_ACCEPT));
    let (status, _, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_browser_navigation_without_a_ready_provider_is_503() {
    let state = state().await;
    let req = redirect_check("", "/reports").insert_header((header::ACCEPT, BROWSER_ACCEPT));
    let response = send(&state, req).await;
    // No login cookie is set for a login that cannot start.
    assert!(set_cookies(&response).is_empty());
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get(header::LOCATION).is_none());
    assert_eq!(
        body,
        "identity provider not reachable yet, try again shortly\n"
    );
}

#[actix_web::test]
async fn status_mode_never_redirects_even_a_browser() {
    let state = state().await;
    let req = status_check("").insert_header((header::ACCEPT, BROWSER_ACCEPT));
    let (status, headers, _) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::LOCATION).is_none());
}

// ---- the auth checks: bad requests ----

#[actix_web::test]
async fn forwarded_headers_from_an_untrusted_peer_are_400() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let requests = [
        with_cookie(status_check(""), &cookie).peer_addr(addr(STRANGER)),
        with_cookie(redirect_check("", "/"), &cookie).peer_addr(addr(STRANGER)),
        // No peer address at all is no trusted peer either.
        with_cookie(
            TestRequest::get()
                .uri("/oauth2/auth")
                .insert_header(("X-Original-URL", PAGE_URL)),
            &cookie,
        ),
    ];
    for req in requests {
        let (status, headers, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            "forwarded headers are only accepted from TRUSTED_PROXIES\n"
        );
        assert_no_identity(&headers);
    }
}

#[actix_web::test]
async fn malformed_forwarded_headers_are_400_even_with_a_session() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let base = || {
        TestRequest::get()
            .uri("/oauth2/forward-auth")
            .peer_addr(addr(PROXY))
    };
    let cases = [
        (
            base()
                .insert_header(("X-Forwarded-Proto", "https"))
                .insert_header(("X-Forwarded-Uri", "/")),
            "the X-Forwarded-Host header is missing\n",
        ),
        (
            base()
                .insert_header(("X-Forwarded-Host", "app.example.com"))
                .insert_header(("X-Forwarded-Uri", "/")),
            "the X-Forwarded-Proto header is missing\n",
        ),
        (
            redirect_check("", "/").insert_header(("X-Forwarded-Proto", "gopher")),
            "the X-Forwarded-Proto header is not valid\n",
        ),
        (
            redirect_check("", "/").insert_header(("X-Forwarded-Host", "good.example@evil.net")),
            "the X-Forwarded-Host header is not valid\n",
        ),
        (
            redirect_check("", "no-slash"),
            "the X-Forwarded-Uri header is not valid\n",
        ),
        (
            redirect_check("", "/").insert_header(("X-Forwarded-Method", "get")),
            "the X-Forwarded-Method header is not valid\n",
        ),
        (
            status_check("").insert_header(("X-Original-URL", "app.example.com/page")),
            "the X-Original-URL header is not valid\n",
        ),
        (
            TestRequest::get()
                .uri("/oauth2/auth")
                .peer_addr(addr(PROXY)),
            "the X-Original-URL header is missing\n",
        ),
    ];
    for (req, expected) in cases {
        let (status, headers, body) = read(send(&state, with_cookie(req, &cookie)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
        assert_eq!(body, expected);
        assert_no_identity(&headers);
    }
}

#[actix_web::test]
async fn a_dot_segment_in_the_original_path_is_400() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    for uri in ["/x/../ops/", "/x/%2e%2e/ops/", "/ops/.", "/..;x/ops"] {
        let req = with_cookie(redirect_check("", uri), &cookie);
        let (status, headers, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(
            body,
            "the X-Forwarded-Uri header's path has a dot segment\n"
        );
        assert_no_identity(&headers);
    }
    let req = with_cookie(status_check(""), &cookie)
        .insert_header(("X-Original-URL", "https://app.example.com/public/../admin"));
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, "the X-Original-URL header's path has a dot segment\n");
}

#[actix_web::test]
async fn an_unknown_route_rule_is_400() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    for req in [
        status_check("?require_groups=ops"),
        redirect_check("?allowed_user=alice", "/"),
    ] {
        let (status, headers, body) = read(send(&state, with_cookie(req, &cookie)).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.starts_with("invalid rule on the auth URL: "), "{body}");
        assert_no_identity(&headers);
    }
}

// ---- the auth checks: refused by a rule ----

#[actix_web::test]
async fn a_route_rule_the_user_fails_is_403_page_in_redirect_mode() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(redirect_check("?require_group=x", "/finance"), &cookie)
        .insert_header((header::ACCEPT, BROWSER_ACCEPT));
    let (status, headers, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_page_headers(&headers);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert!(body.contains("<h1>Access denied</h1>"), "{body}");
    assert!(body.contains("<strong>alice</strong>"), "{body}");
    // The page's way out: a sign-out form posting to our own endpoint.
    assert!(
        body.contains("<form method=\"post\" action=\"/oauth2/sign_out\">"),
        "{body}"
    );
    assert_no_identity(&headers);
}

#[actix_web::test]
async fn a_route_rule_the_user_fails_is_403_text_in_status_mode() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(status_check("?require_group=x"), &cookie);
    let (status, headers, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        header(&headers, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(body, "access denied\n");
    assert_no_identity(&headers);
}

// ---- /oauth2/userinfo ----

#[actix_web::test]
async fn userinfo_answers_the_signed_in_user_as_json() {
    let state = state().await;
    let session = alice();
    let cookie = sign_in(&state, &session).await;
    let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &cookie);
    let (status, headers, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "cache-control"), "no-store");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "user": "alice",
            "email": "alice@example.com",
            "preferred_username": "Alice A.",
            "groups": ["ops", "Engineering, EMEA"],
            "provider": "",
            "session_expires_at": session.expires_at,
        })
    );
}

#[actix_web::test]
async fn userinfo_gives_a_null_email_when_it_is_not_verified() {
    let state = state().await;
    let session = Session {
        email_verified: false,
        ..alice()
    };
    let cookie = sign_in(&state, &session).await;
    let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &cookie);
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["user"], "alice");
    assert!(json["email"].is_null(), "{json}");
}

#[actix_web::test]
async fn userinfo_without_a_session_is_401() {
    let state = state().await;
    let forged = state.keys.sign(&crate::crypto::random_id());
    for req in [
        TestRequest::get().uri("/oauth2/userinfo"),
        with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &forged),
    ] {
        let (status, _, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "not signed in\n");
    }
}

// ---- /oauth2/sign_out ----

async fn auth_status(state: &web::Data<AppState>, cookie: &str) -> StatusCode {
    send(state, with_cookie(status_check(""), cookie))
        .await
        .status()
}

#[actix_web::test]
async fn sign_out_deletes_the_session_and_clears_the_cookie() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::OK);
    let req = with_cookie(TestRequest::get().uri("/oauth2/sign_out"), &cookie);
    let response = send(&state, req).await;
    assert_session_cookie_cleared(&response);
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_page_headers(&headers);
    assert!(body.contains("<h1>Signed out</h1>"), "{body}");
    // Deleted from the store: the same cookie, replayed, is worth nothing.
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn sign_out_by_post_from_our_own_page_signs_out() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    // What a browser sends for the form on our no-referrer pages.
    let req = with_cookie(TestRequest::post().uri("/oauth2/sign_out"), &cookie)
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .insert_header((header::ORIGIN, "null"));
    let response = send(&state, req).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_session_cookie_cleared(&response);
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn cross_site_sign_out_link_asks_for_confirmation_and_keeps_the_session() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(
        TestRequest::get().uri("/oauth2/sign_out?rd=https%3A%2F%2Fauth.example.com%2Fbye"),
        &cookie,
    )
    .insert_header(("Sec-Fetch-Site", "cross-site"));
    let response = send(&state, req).await;
    assert!(set_cookies(&response).is_empty());
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_page_headers(&headers);
    assert!(body.contains("<h1>Sign out?</h1>"), "{body}");
    // The button posts back to the same sign-out, `rd` included (attribute-escaped).
    assert!(
        body.contains(
            "<form method=\"post\" action=\"/oauth2/sign_out?rd=https%3A%2F%2Fauth.example.com%2Fbye\">"
        ),
        "{body}"
    );
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::OK);
}

#[actix_web::test]
async fn cross_site_sign_out_post_is_403_and_keeps_the_session() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let requests = [
        with_cookie(TestRequest::post().uri("/oauth2/sign_out"), &cookie)
            .insert_header(("Sec-Fetch-Site", "cross-site")),
        with_cookie(TestRequest::post().uri("/oauth2/sign_out"), &cookie)
            .insert_header((header::ORIGIN, "https://evil.example.net")),
    ];
    for req in requests {
        let response = send(&state, req).await;
        assert!(set_cookies(&response).is_empty());
        let (status, headers, body) = read(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_page_headers(&headers);
        assert_eq!(body, "sign-out from another site refused\n");
        assert_eq!(auth_status(&state, &cookie).await, StatusCode::OK);
    }
}

#[actix_web::test]
async fn sign_out_follows_an_allowed_rd_only() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(
        TestRequest::get().uri("/oauth2/sign_out?rd=https%3A%2F%2Fauth.example.com%2Fbye%3Fa%3D1"),
        &cookie,
    );
    let response = send(&state, req).await;
    assert_session_cookie_cleared(&response);
    let (status, headers, _) = read(response).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(
        header(&headers, "location"),
        "https://auth.example.com/bye?a=1"
    );
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::UNAUTHORIZED);

    // Another session, an `rd` off the allow-list: signed out all the same, but no redirect.
    let cookie = sign_in(&state, &alice()).await;
    for rd in [
        "https%3A%2F%2Fevil.example.net%2F",
        "%2F%2Fevil.example.net",
    ] {
        let req = with_cookie(
            TestRequest::get().uri(&format!("/oauth2/sign_out?rd={rd}")),
            &cookie,
        );
        let response = send(&state, req).await;
        assert_session_cookie_cleared(&response);
        let (status, headers, body) = read(response).await;
        assert_eq!(status, StatusCode::OK, "{rd}");
        assert!(headers.get(header::LOCATION).is_none(), "{rd}");
        assert!(body.contains("<h1>Signed out</h1>"), "{body}");
    }
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::UNAUTHORIZED);
}

// ---- /oauth2/start and /oauth2/callback without a provider ----

#[actix_web::test]
async fn start_without_a_ready_provider_is_503() {
    let state = state().await;
    let response = send(
        &state,
        TestRequest::get().uri("/oauth2/start?rd=https%3A%2F%2Fauth.example.com%2Fapp"),
    )
    .await;
    assert!(set_cookies(&response).is_empty());
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.get(header::LOCATION).is_none());
    assert_eq!(
        body,
        "identity provider not reachable yet, try again shortly\n"
    );
}

#[actix_web::test]
async fn callback_without_a_genuine_login_cookie_is_a_400_page() {
    let state = state().await;
    let state_param = "abcdefghijklmnopqrstuvwxyz0123456789";
    let login_cookie = format!("{COOKIE_NAME}_login_abcdefghijklmnop");
    let uri = format!("/oauth2/callback?code=some-code&state={state_param}");
    let requests = [
        TestRequest::get().uri(&uri),
        // A login cookie of the right name that we did not seal.
        TestRequest::get()
            .uri(&uri)
            .insert_header((header::COOKIE, format!("{login_cookie}=forged-value"))),
        // A session cookie is no login cookie.
        with_cookie(
            TestRequest::get().uri(&uri),
            &state.keys.sign(&crate::crypto::random_id()),
        ),
    ];
    for req in requests {
        let response = send(&state, req).await;
        // No session is created.
        assert!(
            !set_cookies(&response)
                .iter()
                .any(|c| c.name() == COOKIE_NAME && !c.value().is_empty()),
            "a session cookie was set"
        );
        let (status, headers, body) = read(response).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_page_headers(&headers);
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        assert!(body.contains("<h1>Sign-in failed</h1>"), "{body}");
        assert!(body.contains("href=\"/oauth2/start\""), "{body}");
        assert!(headers.get(header::LOCATION).is_none());
    }
}

#[actix_web::test]
async fn callback_with_access_denied_is_403() {
    let state = state().await;
    let response = send(
        &state,
        TestRequest::get().uri(
            "/oauth2/callback?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state=abc",
        ),
    )
    .await;
    let (status, headers, body) = read(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_page_headers(&headers);
    assert!(body.contains("<h1>Sign-in failed</h1>"), "{body}");
    // The IdP's description is attacker-reachable text: never echoed as markup.
    assert!(!body.contains("<b>no</b>"), "{body}");
}

#[actix_web::test]
async fn callback_with_another_idp_error_is_400() {
    let state = state().await;
    let response = send(
        &state,
        TestRequest::get().uri("/oauth2/callback?error=server_error&state=abc"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

// ---- health ----

#[actix_web::test]
async fn healthz_is_200_while_the_process_serves() {
    let state = state().await;
    let (status, _, body) = read(send(&state, TestRequest::get().uri("/healthz")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "ok\n");
}

#[actix_web::test]
async fn readyz_is_503_while_the_provider_is_not_ready() {
    let state = state().await;
    let (status, _, body) = read(send(&state, TestRequest::get().uri("/readyz")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // The memory store answers: the provider is the only reason given.
    assert_eq!(body, "not ready: identity provider discovery not loaded\n");
}

// ---- last seen and the idle timeout ----

/// The session id a cookie value names.
fn id_of(state: &web::Data<AppState>, cookie: &str) -> String {
    state.keys.verify(cookie).unwrap().to_string()
}

/// The session (whether it is still stored) and its last-seen mark.
async fn stored(state: &web::Data<AppState>, id: &str) -> (bool, Option<u64>) {
    let (session, seen) = state.store.get_session_seen(id).await.unwrap();
    (session.is_some(), seen)
}

/// Lets the writes a check spawned run: they are not awaited by the answer.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// One check through `with_session` at a chosen `now`: whether it was signed in, and why not.
async fn check_at(
    state: &web::Data<AppState>,
    cookie: &str,
    now: u64,
) -> Result<(), super::signed_in::NotSignedIn> {
    let req = with_cookie(TestRequest::get(), cookie).to_http_request();
    let answer = super::signed_in::with_session(&req, state, now, |s| s.map(|_| ()))
        .await
        .unwrap();
    settle().await;
    answer
}

#[actix_web::test]
async fn last_seen_is_written_at_most_once_a_minute_even_without_an_idle_timeout() {
    let state = state().await;
    let session = alice();
    let t0 = session.created_at;
    let cookie = sign_in(&state, &session).await;
    let id = id_of(&state, &cookie);
    assert_eq!(stored(&state, &id).await, (true, None));
    // (now of the check, the mark after it)
    for (now, mark) in [
        (t0, t0),
        (t0 + 30, t0),
        (t0 + 59, t0),
        (t0 + 60, t0 + 60),
        (t0 + 61, t0 + 60),
        (t0 + 119, t0 + 60),
        (t0 + 300, t0 + 300),
    ] {
        assert_eq!(check_at(&state, &cookie, now).await, Ok(()), "at {now}");
        assert_eq!(
            stored(&state, &id).await,
            (true, Some(mark)),
            "at t0+{}",
            now - t0
        );
    }
    // Through the real route too: an auth check marks a session that has no mark yet.
    let other = sign_in(&state, &alice()).await;
    let other_id = id_of(&state, &other);
    assert_eq!(auth_status(&state, &other).await, StatusCode::OK);
    settle().await;
    let (live, seen) = stored(&state, &other_id).await;
    assert!(live);
    assert!(seen.is_some_and(|seen| seen >= t0), "{seen:?}");
}

#[actix_web::test]
async fn an_idle_session_is_refused_and_ended() {
    let state = state_with(&[("SESSION_IDLE_TIMEOUT", "10m")]).await;
    let now = unix_now();
    let idle = sign_in(&state, &alice()).await;
    let idle_id = id_of(&state, &idle);
    let recent = sign_in(&state, &alice()).await;
    let recent_id = id_of(&state, &recent);
    let ttl = Duration::from_secs(3600);
    // Ten minutes of idleness plus the minute a mark stands for: ended.
    state
        .store
        .touch(&idle_id, now - 11 * 60 - 5, ttl)
        .await
        .unwrap();
    // Ten minutes exactly: not yet (the mark covers the minute after it).
    state
        .store
        .touch(&recent_id, now - 10 * 60, ttl)
        .await
        .unwrap();
    // Never checked since a sign-in twelve minutes ago: counted from the sign-in.
    let unmarked = sign_in(
        &state,
        &Session {
            created_at: now - 12 * 60,
            ..alice()
        },
    )
    .await;
    let unmarked_id = id_of(&state, &unmarked);

    for (cookie, id) in [(&idle, &idle_id), (&unmarked, &unmarked_id)] {
        let (status, headers, body) =
            read(send(&state, with_cookie(status_check(""), cookie)).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "not signed in\n");
        assert_no_identity(&headers);
        settle().await;
        assert_eq!(
            stored(&state, id).await,
            (false, None),
            "ended with its mark"
        );
        // userinfo says so too, and the session does not come back.
        let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), cookie);
        assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(auth_status(&state, &recent).await, StatusCode::OK);
    settle().await;
    let (live, seen) = stored(&state, &recent_id).await;
    assert!(live);
    assert!(seen.is_some_and(|seen| seen >= now), "re-marked: {seen:?}");

    // The decision is the check's clock: at the same mark, a minute later is too late.
    let later = sign_in(&state, &alice()).await;
    let later_id = id_of(&state, &later);
    state.store.touch(&later_id, now, ttl).await.unwrap();
    assert_eq!(check_at(&state, &later, now + 11 * 60 - 1).await, Ok(()));
    assert_eq!(
        stored(&state, &later_id).await,
        (true, Some(now + 11 * 60 - 1))
    );
    assert_eq!(
        check_at(&state, &later, now + 22 * 60 - 1).await,
        Err(super::signed_in::NotSignedIn::Idle)
    );
    assert_eq!(stored(&state, &later_id).await, (false, None));
}

#[actix_web::test]
async fn without_an_idle_timeout_an_old_mark_signs_nobody_out() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let id = id_of(&state, &cookie);
    let ago = unix_now() - 3000;
    state
        .store
        .touch(&id, ago, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(auth_status(&state, &cookie).await, StatusCode::OK);
    settle().await;
    assert!(stored(&state, &id).await.1.is_some_and(|seen| seen > ago));
}

#[actix_web::test]
async fn userinfo_tells_when_the_session_expires() {
    let state = state().await;
    let session = Session {
        expires_at: unix_now() + 1234,
        ..alice()
    };
    let cookie = sign_in(&state, &session).await;
    let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &cookie);
    let (status, _, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["session_expires_at"], session.expires_at);
}

// ---- /oauth2/sessions ----

fn bob() -> Session {
    Session {
        user: "bob".to_string(),
        subject: "bob-sub".to_string(),
        email: Some("bob@example.com".to_string()),
        ..alice()
    }
}

fn sessions_page(cookie: &str) -> TestRequest {
    with_cookie(TestRequest::get().uri("/oauth2/sessions"), cookie)
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
}

/// A sign-out form as a browser posts it from our page (no-referrer: `Origin: null`).
fn sessions_post(cookie: &str, fields: &[(&str, &str)]) -> TestRequest {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    with_cookie(TestRequest::post().uri("/oauth2/sessions/sign-out"), cookie)
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .insert_header(("Sec-Fetch-Site", "same-origin"))
        .insert_header((header::ORIGIN, "null"))
        .set_payload(body)
}

/// Alice in two browsers (the first one older) and bob in one.
struct Three {
    state: web::Data<AppState>,
    alice1: String,
    alice2: String,
    bob: String,
}

async fn three() -> Three {
    let state = state().await;
    let now = unix_now();
    let alice1 = sign_in(
        &state,
        &Session {
            created_at: now - 600,
            user_agent: Some("Firefox <on> Linux".to_string()),
            address: Some("192.0.2.1".to_string()),
            ..alice()
        },
    )
    .await;
    let alice2 = sign_in(
        &state,
        &Session {
            created_at: now - 300,
            user_agent: Some("Safari on iPhone".to_string()),
            address: Some("198.51.100.2".to_string()),
            ..alice()
        },
    )
    .await;
    let bob = sign_in(
        &state,
        &Session {
            user_agent: Some("Bob's browser".to_string()),
            ..bob()
        },
    )
    .await;
    Three {
        state,
        alice1,
        alice2,
        bob,
    }
}

#[actix_web::test]
async fn the_sessions_page_lists_the_users_sessions_and_marks_this_browser() {
    let t = three().await;
    let (status, headers, body) = read(send(&t.state, sessions_page(&t.alice1)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_page_headers(&headers);
    assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
    assert!(body.contains("<strong>alice</strong>"), "{body}");
    assert_eq!(
        body.matches("<tr").count(),
        3,
        "a header and two sessions: {body}"
    );
    assert_eq!(body.matches("<strong>this browser</strong>").count(), 1);
    // This browser's row (the older one, listed first) carries the mark.
    let this_row = body.find("this browser").unwrap();
    assert!(
        body.find("Firefox &lt;on&gt; Linux").unwrap() < this_row,
        "{body}"
    );
    assert!(body.find("Safari on iPhone").unwrap() > this_row, "{body}");
    assert!(body.contains("198.51.100.2") && body.contains("192.0.2.1"));
    assert!(
        !body.contains("Bob"),
        "another user's session shown: {body}"
    );
    // The other session by its handle, the form token of this session: never an id or a cookie.
    let (alice1, alice2, bob) = (
        id_of(&t.state, &t.alice1),
        id_of(&t.state, &t.alice2),
        id_of(&t.state, &t.bob),
    );
    assert!(body.contains(&format!(
        "name=\"session\" value=\"{}\"",
        t.state.keys.session_handle(&alice2)
    )));
    assert!(body.contains("name=\"session\" value=\"others\""), "{body}");
    assert!(body.contains(&t.state.keys.csrf_token(&alice1)));
    for secret in [&alice1, &alice2, &bob, &t.alice1, &t.alice2, &t.bob] {
        assert!(!body.contains(secret.as_str()), "{secret} in the page");
    }
}

#[actix_web::test]
async fn the_sessions_page_without_a_session_signs_in_or_is_401() {
    let state = state().await;
    let forged = state.keys.sign(&crate::crypto::random_id());
    for req in [
        TestRequest::get().uri("/oauth2/sessions"),
        with_cookie(TestRequest::get().uri("/oauth2/sessions"), &forged)
            .insert_header((header::ACCEPT, "application/json")),
    ] {
        let (status, _, body) = read(send(&state, req).await).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "not signed in\n");
    }
    // A browser is sent to sign in, which needs the provider: here it is not ready.
    let (status, _, body) = read(send(&state, sessions_page(&forged)).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "identity provider not reachable yet, try again shortly\n"
    );
    let req = sessions_post(&forged, &[("csrf", "x"), ("session", "others")]);
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn signing_out_another_session_ends_it_and_comes_back_to_the_page() {
    let t = three().await;
    let alice1 = id_of(&t.state, &t.alice1);
    let alice2 = id_of(&t.state, &t.alice2);
    let csrf = t.state.keys.csrf_token(&alice1);
    let handle = t.state.keys.session_handle(&alice2);
    let req = sessions_post(&t.alice1, &[("csrf", &csrf), ("session", &handle)]);
    let (status, headers, _) = read(send(&t.state, req).await).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/oauth2/sessions");
    assert_eq!(
        auth_status(&t.state, &t.alice2).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(auth_status(&t.state, &t.alice1).await, StatusCode::OK);
    assert_eq!(auth_status(&t.state, &t.bob).await, StatusCode::OK);
    let (_, _, body) = read(send(&t.state, sessions_page(&t.alice1)).await).await;
    assert!(!body.contains("Safari"), "{body}");
    assert!(!body.contains("value=\"others\""), "{body}");
}

#[actix_web::test]
async fn signing_out_everywhere_else_keeps_only_this_browser() {
    let t = three().await;
    let alice3 = sign_in(&t.state, &alice()).await;
    let alice2 = id_of(&t.state, &t.alice2);
    let csrf = t.state.keys.csrf_token(&alice2);
    let req = sessions_post(&t.alice2, &[("csrf", &csrf), ("session", "others")]);
    let (status, headers, _) = read(send(&t.state, req).await).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(header(&headers, "location"), "/oauth2/sessions");
    for gone in [&t.alice1, &alice3] {
        assert_eq!(auth_status(&t.state, gone).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(auth_status(&t.state, &t.alice2).await, StatusCode::OK);
    assert_eq!(auth_status(&t.state, &t.bob).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_sign_out_form_without_this_sessions_token_is_403_and_ends_nothing() {
    let t = three().await;
    let alice1 = id_of(&t.state, &t.alice1);
    let alice2 = id_of(&t.state, &t.alice2);
    let handle = t.state.keys.session_handle(&alice2);
    let own = t.state.keys.csrf_token(&alice1);
    // Alice's second browser's token, a made-up one, none.
    let theirs = t.state.keys.csrf_token(&alice2);
    for fields in [
        vec![("session", handle.as_str())],
        vec![("csrf", ""), ("session", handle.as_str())],
        vec![("csrf", theirs.as_str()), ("session", handle.as_str())],
        vec![("csrf", "AAAA"), ("session", "others")],
        vec![("csrf", alice1.as_str()), ("session", "others")],
    ] {
        let (status, headers, body) =
            read(send(&t.state, sessions_post(&t.alice1, &fields)).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{fields:?}");
        assert_page_headers(&headers);
        assert!(
            body.contains("did not come from your sessions page"),
            "{body}"
        );
        assert_eq!(auth_status(&t.state, &t.alice2).await, StatusCode::OK);
    }
    // The genuine token names nothing without a session field.
    let req = sessions_post(&t.alice1, &[("csrf", &own)]);
    assert_eq!(send(&t.state, req).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(auth_status(&t.state, &t.alice2).await, StatusCode::OK);
}

#[actix_web::test]
async fn another_users_handle_is_403_and_ends_nothing() {
    let t = three().await;
    let alice1 = id_of(&t.state, &t.alice1);
    let bob = id_of(&t.state, &t.bob);
    let csrf = t.state.keys.csrf_token(&alice1);
    for target in [
        t.state.keys.session_handle(&bob),
        // The id itself is no handle, and this browser's own handle names no *other* session.
        bob.clone(),
        t.state.keys.session_handle(&alice1),
    ] {
        let req = sessions_post(&t.alice1, &[("csrf", &csrf), ("session", &target)]);
        let (status, _, body) = read(send(&t.state, req).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("not one of your other sessions"), "{body}");
        for cookie in [&t.bob, &t.alice1, &t.alice2] {
            assert_eq!(auth_status(&t.state, cookie).await, StatusCode::OK);
        }
    }
}

#[actix_web::test]
async fn a_cross_site_sign_out_form_is_403_and_ends_nothing() {
    let t = three().await;
    let alice1 = id_of(&t.state, &t.alice1);
    let csrf = t.state.keys.csrf_token(&alice1);
    let fields = [("csrf", csrf.as_str()), ("session", "others")];
    for (site, origin) in [
        ("cross-site", "null"),
        ("cross-site", "https://auth.example.com"),
        ("same-site", "https://evil.example.net"),
        ("same-site", "null"),
    ] {
        let req = sessions_post(&t.alice1, &fields)
            .insert_header(("Sec-Fetch-Site", site))
            .insert_header((header::ORIGIN, origin));
        let (status, headers, body) = read(send(&t.state, req).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{site} {origin}");
        assert_page_headers(&headers);
        assert_eq!(body, "sign-out from another site refused\n");
        assert_eq!(auth_status(&t.state, &t.alice2).await, StatusCode::OK);
    }
    // The same form from our own origin goes through: the refusals were about the origin.
    let req = sessions_post(&t.alice1, &fields)
        .insert_header((header::ORIGIN, "https://auth.example.com"));
    assert_eq!(send(&t.state, req).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        auth_status(&t.state, &t.alice2).await,
        StatusCode::UNAUTHORIZED
    );
}

// ---- revalidation ----

#[actix_web::test]
async fn a_session_not_revalidated_within_the_grace_is_not_signed_in() {
    let state = state_with(&[
        ("SESSION_REFRESH_INTERVAL", "5m"),
        ("SESSION_REFRESH_GRACE", "15m"),
    ])
    .await;
    let now = unix_now();
    let min = 60;
    let cases = [
        // (claims read ago, refreshable until, status)
        (0, u64::MAX, StatusCode::OK),
        // Due: answered on its claims (the refresh runs in the background).
        (6 * min, u64::MAX, StatusCode::OK),
        (21 * min, u64::MAX, StatusCode::UNAUTHORIZED),
        (21 * min, now + 600, StatusCode::UNAUTHORIZED),
        // Nothing to revalidate with (no refresh token, the access token expired or never
        // kept): the login's claims hold, as without revalidation.
        (21 * min, now - 1, StatusCode::OK),
        (21 * min, 0, StatusCode::OK),
    ];
    for (ago, refreshable_until, expected) in cases {
        let cookie = sign_in(
            &state,
            &Session {
                created_at: now - ago,
                claims_read_at: now - ago,
                refreshable_until,
                ..alice()
            },
        )
        .await;
        assert_eq!(
            auth_status(&state, &cookie).await,
            expected,
            "read {ago}s ago, refreshable until {refreshable_until}"
        );
    }
    // Revalidation off: never past any grace.
    let off = state_with(&[("SESSION_REFRESH_INTERVAL", "0")]).await;
    let cookie = sign_in(
        &off,
        &Session {
            claims_read_at: now - 24 * 3600,
            refreshable_until: u64::MAX,
            ..alice()
        },
    )
    .await;
    assert_eq!(auth_status(&off, &cookie).await, StatusCode::OK);
}

#[actix_web::test]
async fn a_replica_asks_for_a_sessions_refresh_lock_at_most_once_a_second() {
    use super::revalidate::first_try_in_a_while;
    let state = state().await;
    let t0 = std::time::Instant::now();
    let ms = Duration::from_millis;
    let cases = [
        // (session, time after t0, whether this try goes to the store)
        ("a", ms(0), true),
        ("a", ms(10), false),
        ("b", ms(10), true),
        ("a", ms(999), false),
        ("a", ms(1_000), true),
        ("a", ms(1_500), false),
        ("b", ms(1_500), true),
    ];
    for (id, after, expected) in cases {
        assert_eq!(
            first_try_in_a_while(&state, id, t0 + after),
            expected,
            "{id} at {after:?}"
        );
    }
}

// ---- the signed identity assertion (UPSTREAM_JWT) ----

/// The claims of `token`, verified by jsonwebtoken with the JWKS `/oauth2/jwks` served.
async fn verified_claims(
    state: &web::Data<AppState>,
    token: &str,
    audience: &str,
) -> serde_json::Value {
    let (status, headers, body) =
        read(send(state, TestRequest::get().uri("/oauth2/jwks")).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), "application/json");
    assert_eq!(header(&headers, "cache-control"), "max-age=300");
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&body).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the kid is in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["https://auth.example.com"]);
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims
}

#[actix_web::test]
async fn with_upstream_jwt_both_checks_carry_a_verifiable_assertion() {
    let state = state_with(&[("UPSTREAM_JWT", "true")]).await;
    let cookie = sign_in(&state, &alice()).await;
    for (check, audience) in [
        (status_check(""), "https://app.example.com"),
        (redirect_check("", "/dashboard"), "https://app.example.com"),
    ] {
        let (status, headers, _) = read(send(&state, with_cookie(check, &cookie)).await).await;
        assert_eq!(status, StatusCode::OK);
        let token = header(&headers, "x-auth-request-jwt").to_string();
        let claims = verified_claims(&state, &token, audience).await;
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.com");
        assert_eq!(
            claims["groups"],
            serde_json::json!(["ops", "Engineering, EMEA"])
        );
        assert!(claims.get("provider").is_none(), "one unnamed provider");
        assert_eq!(
            claims["exp"].as_u64().unwrap(),
            claims["iat"].as_u64().unwrap() + 60
        );
    }
    // Denied (a route rule) and not signed in: no assertion.
    let (status, headers, _) = read(
        send(
            &state,
            with_cookie(status_check("?require_group=nobody"), &cookie),
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(headers.get("x-auth-request-jwt").is_none());
    let (status, headers, _) = read(send(&state, status_check("")).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get("x-auth-request-jwt").is_none());
}

#[actix_web::test]
async fn an_unverified_email_is_never_in_the_assertion() {
    let state = state_with(&[
        ("UPSTREAM_JWT", "true"),
        ("OIDC_ALLOW_UNVERIFIED_EMAIL", "true"),
    ])
    .await;
    let unverified = Session {
        email_verified: false,
        ..alice()
    };
    let cookie = sign_in(&state, &unverified).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    // The plain header carries it, as OIDC_ALLOW_UNVERIFIED_EMAIL says; the signed one does not.
    assert_eq!(
        header(&headers, "x-auth-request-email"),
        "alice@example.com"
    );
    let token = header(&headers, "x-auth-request-jwt").to_string();
    let claims = verified_claims(&state, &token, "https://app.example.com").await;
    assert!(claims.get("email").is_none(), "{claims}");
}

#[actix_web::test]
async fn without_upstream_jwt_there_is_no_assertion_and_no_jwks() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let (status, headers, _) =
        read(send(&state, with_cookie(status_check(""), &cookie)).await).await;
    assert_eq!(status, StatusCode::OK);
    // Empty, like every unknown identity value: never a client's copy, never an assertion.
    assert_eq!(header(&headers, "x-auth-request-jwt"), "");
    let (status, _, _) = read(send(&state, TestRequest::get().uri("/oauth2/jwks")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
