//! In-process tests of what an operator observes: `/metrics` after real requests, request ids,
//! the log lines they carry, `ACCESS_LOG`, and `/readyz` once a shutdown has begun. A child of
//! the handler tests, sharing their requests and helpers.
//!
//! The metrics tests count in metrics of their own ([`Metrics::isolated`]): every test of this
//! process shares the global recorder, so only a state's own counters can be held to exact
//! numbers while other tests run beside them.

use std::io;
use std::sync::{Arc, Mutex};

use actix_web::http::ConnectionType;
use portcullis_testkit::scrape;

use super::*;
use crate::admin::api::{self, TokenDigest};
use crate::metrics::{self as names, Metrics};
use crate::secret::Secret;

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef-0123456789";

async fn counted_state(extra: &[(&str, &str)]) -> web::Data<AppState> {
    let config = crate::config::Config::from_env_map(env(extra)).unwrap();
    crate::build_state_with(config, Arc::new(Metrics::isolated()))
        .await
        .unwrap()
}

/// One request to the admin listener's application.
async fn send_admin(state: &web::Data<AppState>, req: TestRequest) -> ServiceResponse {
    let digest = TokenDigest::of(&Secret::new(ADMIN_TOKEN));
    let app = test::init_service(api::app(state.clone(), digest)).await;
    test::call_service(&app, req.to_request())
        .await
        .map_into_boxed_body()
}

async fn scraped(state: &web::Data<AppState>) -> String {
    let (status, headers, body) =
        read(send_admin(state, TestRequest::get().uri("/metrics")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        header(&headers, "content-type"),
        "text/plain; version=0.0.4"
    );
    body
}

fn decisions(text: &str, endpoint: &str, outcome: &str, reason: &str) -> Option<f64> {
    scrape::value(
        text,
        names::AUTH_DECISIONS,
        &[
            ("endpoint", endpoint),
            ("outcome", outcome),
            ("reason", reason),
        ],
    )
}

#[actix_web::test]
async fn metrics_count_auth_checks_by_endpoint_outcome_and_reason() {
    let state = counted_state(&[]).await;
    let before = scraped(&state).await;
    assert_eq!(
        decisions(&before, "auth", "allow", "none"),
        Some(0.0),
        "{before}"
    );

    let cookie = sign_in(&state, &alice()).await;
    for _ in 0..3 {
        let req = with_cookie(status_check(""), &cookie);
        assert_eq!(send(&state, req).await.status(), StatusCode::OK);
    }
    let req = with_cookie(redirect_check("", "/reports"), &cookie);
    assert_eq!(send(&state, req).await.status(), StatusCode::OK);
    let req = with_cookie(status_check("?allowed_users=bob"), &cookie);
    assert_eq!(send(&state, req).await.status(), StatusCode::FORBIDDEN);
    let req = redirect_check("", "/api").insert_header((header::ACCEPT, "application/json"));
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    let twice = format!("{COOKIE_NAME}={cookie}; {COOKIE_NAME}={cookie}");
    let req = status_check("").insert_header((header::COOKIE, twice));
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    let req = with_cookie(status_check(""), "forged.value");
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    let req = with_cookie(status_check(""), &cookie).peer_addr(addr(STRANGER));
    assert_eq!(send(&state, req).await.status(), StatusCode::BAD_REQUEST);
    let req = with_cookie(status_check("?colour=red"), &cookie);
    assert_eq!(send(&state, req).await.status(), StatusCode::BAD_REQUEST);
    // A browser in redirect mode would be sent to the IdP, which is not ready here: 503.
    let req = redirect_check("", "/page").insert_header((header::ACCEPT, BROWSER_ACCEPT));
    assert_eq!(
        send(&state, req).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let text = scraped(&state).await;
    let expected = [
        ("auth", "allow", "none", 3.0),
        ("forward-auth", "allow", "none", 1.0),
        ("auth", "deny", "route_user_not_allowed", 1.0),
        ("forward-auth", "deny", "route_user_not_allowed", 0.0),
        ("forward-auth", "not_signed_in", "no_cookie", 1.0),
        ("auth", "not_signed_in", "no_cookie", 0.0),
        ("auth", "not_signed_in", "cookie_repeated", 1.0),
        ("auth", "not_signed_in", "cookie_not_valid", 1.0),
        ("auth", "error", "bad_request", 2.0),
        ("forward-auth", "error", "provider", 1.0),
        ("auth", "error", "store", 0.0),
    ];
    for (endpoint, outcome, reason, count) in expected {
        assert_eq!(
            decisions(&text, endpoint, outcome, reason),
            Some(count),
            "{endpoint} {outcome} {reason}:\n{text}"
        );
    }
    let checks = |endpoint| {
        scrape::value(
            &text,
            &format!("{}_count", names::AUTH_CHECK_DURATION),
            &[("endpoint", endpoint)],
        )
    };
    assert_eq!(checks("auth"), Some(8.0), "{text}");
    assert_eq!(checks("forward-auth"), Some(3.0), "{text}");
    // Labels are fixed sets: the user, the path and the rule's value never become one.
    for private in ["alice", "reports", "bob", "colour"] {
        assert!(!text.contains(private), "{private} in\n{text}");
    }
}

#[actix_web::test]
async fn metrics_count_sign_outs_failed_callbacks_and_back_channel_logouts() {
    let state = counted_state(&[]).await;
    let cookie = sign_in(&state, &alice()).await;
    let req = with_cookie(TestRequest::get().uri("/oauth2/sign_out"), &cookie);
    send(&state, req).await;
    // Signed out already: nothing more ends.
    let req = with_cookie(TestRequest::get().uri("/oauth2/sign_out"), &cookie);
    send(&state, req).await;
    let req = TestRequest::get().uri("/oauth2/callback?state=abc&code=xyz");
    assert_eq!(send(&state, req).await.status(), StatusCode::BAD_REQUEST);
    let req = TestRequest::get().uri("/oauth2/callback?error=access_denied&state=abc");
    assert_eq!(send(&state, req).await.status(), StatusCode::FORBIDDEN);
    let req = TestRequest::post()
        .uri("/oauth2/backchannel-logout")
        .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
        .set_payload("state=x");
    assert_eq!(send(&state, req).await.status(), StatusCode::BAD_REQUEST);

    let text = scraped(&state).await;
    let value = |name, label, value| scrape::value(&text, name, &[(label, value)]);
    assert_eq!(
        value(names::SESSIONS_ENDED, "reason", "sign_out"),
        Some(1.0)
    );
    assert_eq!(value(names::SESSIONS_ENDED, "reason", "admin"), Some(0.0));
    assert_eq!(
        value(names::LOGINS, "outcome", "state"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(names::LOGINS, "outcome", "idp_error"), Some(1.0));
    assert_eq!(value(names::LOGINS, "outcome", "success"), Some(0.0));
    let logouts = |outcome| value(names::BACKCHANNEL_LOGOUTS, "outcome", outcome);
    assert_eq!(logouts("invalid"), Some(1.0), "{text}");
    assert_eq!(logouts("success"), Some(0.0), "{text}");
}

#[actix_web::test]
async fn metrics_are_on_the_admin_listener_only_and_need_no_token() {
    let state = counted_state(&[]).await;
    let text = scraped(&state).await;
    for family in [
        names::AUTH_DECISIONS,
        names::AUTH_CHECK_DURATION,
        names::LOGINS,
        names::REFRESHES,
        names::BACKCHANNEL_LOGOUTS,
        names::SESSIONS_ENDED,
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            text.contains(&format!("# HELP {family} ")),
            "no help for {family}:\n{text}"
        );
    }
    // The main listener is what the proxy routes to: nothing there.
    let (status, _, _) = read(send(&state, TestRequest::get().uri("/metrics")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Whereas the sessions next to it still want the token.
    let (status, _, _) = read(send_admin(&state, TestRequest::get().uri("/sessions")).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

fn request_id(response: &ServiceResponse) -> String {
    header(response.headers(), "x-request-id").to_string()
}

fn is_generated(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[actix_web::test]
async fn a_request_id_is_echoed_when_usable_and_replaced_otherwise() {
    let state = state().await;
    let given = "0af7651916cd43dd8448eb211c80319c";
    // On every kind of answer: 401, a page, a 404, the admin listener.
    for req in [
        status_check(""),
        TestRequest::get().uri("/healthz"),
        TestRequest::get().uri("/nowhere"),
    ] {
        let response = send(&state, req.insert_header(("X-Request-Id", given))).await;
        assert_eq!(request_id(&response), given);
    }
    let req = TestRequest::get()
        .uri("/healthz")
        .insert_header(("X-Request-Id", given));
    assert_eq!(request_id(&send_admin(&state, req).await), given);

    // Without one, a new one each time.
    let one = request_id(&send(&state, status_check("")).await);
    let two = request_id(&send(&state, status_check("")).await);
    assert!(is_generated(&one) && is_generated(&two), "{one} {two}");
    assert_ne!(one, two);

    let too_long = "a".repeat(129);
    for bad in ["", "two words", too_long.as_str(), "caf\u{e9}"] {
        let response = send(
            &state,
            status_check("").insert_header(("X-Request-Id", bad)),
        )
        .await;
        let id = request_id(&response);
        assert!(is_generated(&id), "{bad:?} -> {id}");
    }
    let twice = status_check("")
        .append_header(("X-Request-Id", "first"))
        .append_header(("X-Request-Id", "second"));
    let id = request_id(&send(&state, twice).await);
    assert!(is_generated(&id), "{id}");
    let longest = "b".repeat(128);
    let response = send(
        &state,
        status_check("").insert_header(("X-Request-Id", longest.as_str())),
    )
    .await;
    assert_eq!(request_id(&response), longest);
}

/// What the text log writes, collected while `run` runs on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The text format portcullis logs in (`LOG_FORMAT=text`), at info, for this thread only:
    /// the tests of this process run beside each other.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .fmt_fields(crate::telemetry::EscapedFields)
            .event_format(crate::telemetry::TextLines::default())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }
}

#[actix_web::test]
async fn every_line_of_a_request_names_its_request_id() {
    let state = state().await;
    let cookie = sign_in(&state, &alice()).await;
    let captured = Captured::default();
    let _guard = captured.install();
    let req = with_cookie(status_check("?require_group=nobody"), &cookie)
        .insert_header(("X-Request-Id", "req-denied-1"));
    assert_eq!(send(&state, req).await.status(), StatusCode::FORBIDDEN);
    let req = with_cookie(status_check(""), &cookie).peer_addr(addr(STRANGER));
    let response = send(&state, req).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let generated = request_id(&response);

    let lines = captured.lines();
    let denied: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("access denied"))
        .collect();
    assert_eq!(denied.len(), 1, "{lines:#?}");
    assert!(denied[0].contains("request_id=req-denied-1"), "{lines:#?}");
    // Text fields as the text log writes them: strings quoted (escaped), ids and numbers bare.
    assert!(denied[0].contains("user=\"alice\""), "{lines:#?}");
    assert!(
        denied[0].contains("rule=\"route_group_not_matched\""),
        "{lines:#?}"
    );
    // The page without its query: the query may carry tokens.
    assert!(
        denied[0].contains("route=\"https://app.example.com/reports/q3\""),
        "{lines:#?}"
    );
    assert!(!denied[0].contains("year=2024"), "{lines:#?}");
    let bad: Vec<&String> = lines.iter().filter(|l| l.contains("bad request")).collect();
    assert_eq!(bad.len(), 1, "{lines:#?}");
    assert!(
        bad[0].contains(&format!("request_id={generated}")),
        "{lines:#?}"
    );
    // Without ACCESS_LOG, no line per check.
    assert!(
        !lines.iter().any(|l| l.contains("auth check")),
        "{lines:#?}"
    );
}

#[actix_web::test]
async fn the_access_log_has_one_line_per_check_without_the_query() {
    let state = state_with(&[("ACCESS_LOG", "true")]).await;
    let cookie = sign_in(&state, &alice()).await;
    let captured = Captured::default();
    let _guard = captured.install();
    let req = with_cookie(
        redirect_check("", "/inbox?access_token=sekrit").insert_header(("X-Request-Id", "a-1")),
        &cookie,
    );
    assert_eq!(send(&state, req).await.status(), StatusCode::OK);
    let req = status_check("")
        .insert_header(("X-Original-Method", "DELETE"))
        .insert_header(("X-Request-Id", "a-2"));
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    let req = status_check("").peer_addr(addr(STRANGER));
    assert_eq!(send(&state, req).await.status(), StatusCode::BAD_REQUEST);

    let lines = captured.lines();
    let checks: Vec<&String> = lines.iter().filter(|l| l.contains("auth check")).collect();
    assert_eq!(checks.len(), 3, "{lines:#?}");
    for part in [
        "request_id=a-1",
        "method=\"GET\"",
        "host=\"app.example.com\"",
        "path=\"/inbox\"",
        "status=200",
        "outcome=\"allow\"",
        "user=\"alice\"",
        "duration_us=",
    ] {
        assert!(checks[0].contains(part), "{part} not in {}", checks[0]);
    }
    for part in [
        "request_id=a-2",
        "method=\"DELETE\"",
        "path=\"/reports/q3\"",
        "status=401",
        "outcome=\"not_signed_in\"",
        "reason=\"no_cookie\"",
    ] {
        assert!(checks[1].contains(part), "{part} not in {}", checks[1]);
    }
    assert!(!checks[1].contains("user="), "{}", checks[1]);
    // Refused before the forwarded headers were read: the sub-request's own method, no page.
    for part in [
        "method=\"GET\"",
        "status=400",
        "outcome=\"error\"",
        "reason=\"bad_request\"",
    ] {
        assert!(checks[2].contains(part), "{part} not in {}", checks[2]);
    }
    assert!(!checks[2].contains("path="), "{}", checks[2]);
    for line in &lines {
        assert!(
            !line.contains("sekrit") && !line.contains("year=2024"),
            "{line}"
        );
    }
}

#[actix_web::test]
async fn once_shutting_down_readyz_is_503_and_answers_close_their_connection() {
    let state = state().await;
    let response = send(&state, TestRequest::get().uri("/healthz")).await;
    assert_ne!(
        response.response().head().connection_type(),
        ConnectionType::Close
    );
    state.begin_shutdown();
    let (status, _, body) = read(send(&state, TestRequest::get().uri("/readyz")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "not ready: shutting down\n");
    // Everything else is still served, each answer closing its connection.
    let cookie = sign_in(&state, &alice()).await;
    let response = send(&state, with_cookie(status_check(""), &cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.response().head().connection_type(),
        ConnectionType::Close
    );
    let response = send(&state, TestRequest::get().uri("/healthz")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.response().head().connection_type(),
        ConnectionType::Close
    );
}

#[actix_web::test]
async fn an_idle_session_is_counted_once_as_ended() {
    let state = counted_state(&[("SESSION_IDLE_TIMEOUT", "10m")]).await;
    let cookie = sign_in(&state, &alice()).await;
    let id = id_of(&state, &cookie);
    let long_ago = unix_now() - 11 * 60 - 5;
    let ttl = Duration::from_secs(3600);
    state.store.touch(&id, long_ago, ttl).await.unwrap();
    let req = with_cookie(status_check(""), &cookie);
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    settle().await;
    assert_eq!(stored(&state, &id).await, (false, None), "ended");
    // Gone now: the next request finds no session, which ends nothing more.
    let req = with_cookie(TestRequest::get().uri("/oauth2/userinfo"), &cookie);
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);

    let text = scraped(&state).await;
    assert_eq!(
        decisions(&text, "auth", "not_signed_in", "idle"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        scrape::value(&text, names::SESSIONS_ENDED, &[("reason", "idle")]),
        Some(1.0),
        "{text}"
    );
}

#[actix_web::test]
async fn refused_bearer_tokens_are_counted_and_never_redirected() {
    let state = counted_state(&[
        ("BEARER_TOKENS", "true"),
        ("BEARER_AUDIENCES", "https://api.example.com"),
    ])
    .await;
    let bearer = |token: &str| (header::AUTHORIZATION, format!("Bearer {token}"));
    // An opaque token, for a browser navigation in redirect mode: 401, never a sign-in.
    let req = redirect_check("", "/reports")
        .insert_header((header::ACCEPT, BROWSER_ACCEPT))
        .insert_header(bearer("2YotnFZFEjr1zCsicMWpAA"));
    let (status, headers, body) = read(send(&state, req).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers.get(header::LOCATION).is_none());
    assert_eq!(
        header(&headers, "www-authenticate"),
        "Bearer error=\"invalid_token\", error_description=\"the token is not a signed JWT\""
    );
    assert!(!body.contains("2YotnFZFEjr1zCsicMWpAA"), "{body}");
    // `Bearer` without a token, in status mode.
    let req = status_check("").insert_header((header::AUTHORIZATION, "Bearer"));
    assert_eq!(send(&state, req).await.status(), StatusCode::UNAUTHORIZED);
    // A JWT while the provider's keys are not loaded: 503, fail closed, not the token's fault.
    let req = status_check("").insert_header(bearer("e30.e30.c2ln"));
    assert_eq!(
        send(&state, req).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Without a token, as always: not signed in, and no bearer challenge (nginx's example
    // tells the two 401s apart by it).
    let req = redirect_check("", "/api").insert_header((header::ACCEPT, "application/json"));
    let response = send(&state, req).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers().get("www-authenticate").is_none());

    let text = scraped(&state).await;
    assert_eq!(
        decisions(&text, "forward-auth", "invalid_token", "not_jwt"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions(&text, "auth", "invalid_token", "not_jwt"),
        Some(1.0)
    );
    assert_eq!(decisions(&text, "auth", "error", "provider"), Some(1.0));
    assert_eq!(
        decisions(&text, "forward-auth", "not_signed_in", "no_cookie"),
        Some(1.0)
    );
    assert_eq!(
        decisions(&text, "forward-auth", "invalid_token", "audience"),
        Some(0.0)
    );
}
