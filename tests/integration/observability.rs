//! What an operator observes of a real portcullis process: `/metrics` on the admin listener
//! after a real sign-in and auth checks, request ids in its log, and how it stops on SIGTERM
//! (`/readyz` 503 during `SHUTDOWN_DELAY`, the request in flight finished, exit status 0).
//!
//! The real binary, each in a process of its own: the in-process instances of the other tests
//! share one metrics recorder, so only a process of its own counts exactly what a test did.

use std::collections::HashMap;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::browser::{Hop, API_ACCEPT, BROWSER_ACCEPT};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::{test_env, COOKIE_NAME};
use crate::support::process::ChildGuard;
use crate::support::wait::{self, poll_until};
use crate::support::workdir::Workdir;
use crate::support::{free_port, raw_http, scrape, Browser, Idp};

const ADMIN_TOKEN: &str = "admin-token-for-the-observability-tests-0123456789";

/// The binary on a port of its own, with the test IdP; `env` on top of the tests' environment.
struct Instance {
    child: ChildGuard,
    port: u16,
    admin_port: u16,
    // Kept until the test ends: the log is read at the end, and shown when a wait fails.
    _dir: Workdir,
}

impl Instance {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.child.log_path()).unwrap_or_default()
    }
}

/// The IdP knows the callback of the port the instance will listen on, so both start here.
fn start(extra: &[(&str, &str)]) -> (Idp, Instance) {
    let port = free_port();
    let admin_port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&[format!("{base}/oauth2/callback")], &[]);
    let mut env: HashMap<String, String> = test_env(&idp, &base, None);
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("ADMIN_ADDR".into(), format!("127.0.0.1:{admin_port}"));
    env.insert("ADMIN_TOKEN".into(), ADMIN_TOKEN.into());
    env.insert("RUST_LOG".into(), "info".into());
    for (name, value) in extra {
        env.insert(name.to_string(), value.to_string());
    }
    let dir = Workdir::temp("portcullis-observed");
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.env_clear().envs(&env);
    let mut child = ChildGuard::spawn("portcullis", command, &dir.path().join("portcullis.log"));
    child.wait_for_http(&format!("{base}/readyz"), wait::STARTUP_TIMEOUT, |s| {
        s == 200
    });
    let instance = Instance {
        child,
        port,
        admin_port,
        _dir: dir,
    };
    (idp, instance)
}

/// The status mode auth check of `/app` with `cookie` (when any) and `query` on the auth URL.
async fn auth_check(instance: &Instance, query: &str, cookie: Option<&str>) -> u16 {
    let page = format!("{}/app", instance.base());
    let cookie = cookie.map(|value| format!("{COOKIE_NAME}={value}"));
    let mut headers = vec![("X-Original-URL", page.as_str())];
    if let Some(cookie) = &cookie {
        headers.push(("Cookie", cookie.as_str()));
    }
    Browser::new()
        .get_with_headers(&format!("{}/oauth2/auth{query}", instance.base()), &headers)
        .await
        .status
}

fn scrape_metrics(instance: &Instance) -> raw_http::RawResponse {
    let response = raw_http::get(instance.admin_port, "/metrics", &[]).expect("GET /metrics");
    assert_eq!(response.status, 200, "{}", response.body);
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_admin_listener_count_a_real_sign_in_and_auth_checks() {
    let (_idp, instance) = start(&[]);
    let base = instance.base();
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&base, "/oauth2/start?rd=/", "alice", PASSWORD)
        .await;
    let callback = hops
        .iter()
        .find(|hop| hop.url.path() == "/oauth2/callback")
        .expect("a callback hop");
    assert_eq!(
        callback.status,
        302,
        "{}",
        crate::support::browser::describe(&hops)
    );
    let cookie = browser.cookie(&base, COOKIE_NAME).expect("session cookie");

    assert_eq!(auth_check(&instance, "", Some(&cookie)).await, 200);
    assert_eq!(auth_check(&instance, "", Some(&cookie)).await, 200);
    assert_eq!(
        auth_check(&instance, "?allowed_users=bob", Some(&cookie)).await,
        403
    );
    assert_eq!(auth_check(&instance, "", None).await, 401);
    let api = Browser::new()
        .get_with_headers(
            &format!("{base}/oauth2/forward-auth"),
            &[
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", &format!("127.0.0.1:{}", instance.port)),
                ("X-Forwarded-Uri", "/api/items"),
                ("Accept", API_ACCEPT),
            ],
        )
        .await;
    assert_eq!(api.status, 401);

    let scraped = scrape_metrics(&instance);
    assert_eq!(
        scraped.header("content-type"),
        Some("text/plain; version=0.0.4")
    );
    let text = &scraped.body;
    let decisions = |endpoint, outcome, reason| {
        scrape::value(
            text,
            "portcullis_auth_decisions_total",
            &[
                ("endpoint", endpoint),
                ("outcome", outcome),
                ("reason", reason),
            ],
        )
    };
    assert_eq!(decisions("auth", "allow", "none"), Some(2.0), "{text}");
    assert_eq!(
        decisions("auth", "deny", "route_user_not_allowed"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions("auth", "not_signed_in", "no_cookie"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions("forward-auth", "not_signed_in", "no_cookie"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(decisions("forward-auth", "allow", "none"), Some(0.0));
    let checks = |endpoint| {
        scrape::value(
            text,
            "portcullis_auth_check_duration_seconds_count",
            &[("endpoint", endpoint)],
        )
    };
    assert_eq!(checks("auth"), Some(4.0), "{text}");
    assert_eq!(checks("forward-auth"), Some(1.0), "{text}");
    let logins = |outcome| scrape::value(text, "portcullis_logins_total", &[("outcome", outcome)]);
    assert_eq!(logins("success"), Some(1.0), "{text}");
    assert_eq!(logins("state"), Some(0.0), "{text}");
    // The process itself, read at the scrape.
    for gauge in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(
            scrape::value(text, gauge, &[]).is_some_and(|v| v > 0.0),
            "{gauge}: {text}"
        );
    }
    assert!(
        scrape::value(text, "process_cpu_seconds_total", &[]).is_some(),
        "{text}"
    );
    // Not one user name, page or session in the labels.
    for private in ["alice", "/app", cookie.as_str()] {
        assert!(!text.contains(private), "{private} in {text}");
    }

    // An operator's revocation counts as sessions ended by an admin.
    let listed = raw_http::get(
        instance.admin_port,
        "/sessions?user=alice",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
    )
    .expect("list");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.body.contains("\"alice\""), "{}", listed.body);
    let revoke = Browser::new()
        .client()
        .delete(format!(
            "http://127.0.0.1:{}/sessions?user=alice",
            instance.admin_port
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("DELETE /sessions");
    assert_eq!(revoke.status(), 200);
    let text = scrape_metrics(&instance).body;
    assert_eq!(
        scrape::value(
            &text,
            "portcullis_sessions_ended_total",
            &[("reason", "admin")]
        ),
        Some(1.0),
        "{text}"
    );

    // What the proxy can reach has no /metrics.
    let main = raw_http::get(instance.port, "/metrics", &[]).expect("GET /metrics");
    assert_eq!(main.status, 404);

    // The callback's request id names its log line.
    let id = callback.header("x-request-id").expect("x-request-id");
    let log = instance.log();
    let signed_in = log
        .lines()
        .find(|line| line.contains("signed in"))
        .unwrap_or_else(|| panic!("no sign-in line in\n{log}"));
    assert!(
        signed_in.contains(&format!("request_id={id}")),
        "{signed_in}"
    );
}

/// Follows the sign-in up to the IdP's redirect to our callback, without requesting it.
async fn callback_url(browser: &Browser, base: &str) -> String {
    let hops = browser
        .follow(&format!("{base}/oauth2/start?rd=/"), 10)
        .await;
    let login_page = hops.last().expect("a hop");
    let mut hop: Hop = browser
        .submit_form_once(login_page, &[("login", "alice"), ("password", PASSWORD)])
        .await;
    for _ in 0..10 {
        let next = hop
            .location
            .clone()
            .filter(|_| hop.is_redirect())
            .unwrap_or_else(|| panic!("the IdP stopped at {} {}", hop.status, hop.url));
        if next.path() == "/oauth2/callback" {
            return next.to_string();
        }
        hop = browser.get(next.as_str()).await;
    }
    panic!("no redirect to the callback");
}

fn refuses_connections(port: u16) -> Result<(), String> {
    match TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => Err("still accepting".to_string()),
        Err(_) => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readyz_503_then_closes_and_finishes_the_request_in_flight() {
    let delay = Duration::from_secs(2);
    let (idp, mut instance) = start(&[("SHUTDOWN_DELAY", "2s")]);
    let base = instance.base();
    let browser = Browser::new();
    let callback = callback_url(&browser, &base).await;

    // The IdP holds its token answer: the callback waits in portcullis for the code exchange.
    idp.reset_counters().await;
    idp.pause(60_000).await;
    let client = browser.client().clone();
    let in_flight = tokio::spawn(async move {
        client
            .get(&callback)
            .header("accept", BROWSER_ACCEPT)
            .timeout(Duration::from_secs(60))
            .send()
            .await
    });
    let waited = Instant::now();
    while idp.counters().await.authorization_code == 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(20),
            "the code exchange never reached the IdP"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let signalled = Instant::now();
    instance.child.terminate();
    let port = instance.port;
    let not_ready = poll_until(
        "/readyz to say shutting down",
        Duration::from_secs(10),
        || {
            let response = raw_http::get(port, "/readyz", &[])?;
            match response.status {
                503 => Ok(response.body),
                other => Err(format!("{other} {}", response.body)),
            }
        },
    )
    .expect("readyz during the delay");
    assert_eq!(not_ready, "not ready: shutting down\n");
    // Still serving while it says so: liveness stays fine, and the admin API is there.
    assert_eq!(
        raw_http::get(port, "/healthz", &[])
            .expect("healthz")
            .status,
        200
    );

    poll_until("the listener to close", Duration::from_secs(20), || {
        refuses_connections(port)
    })
    .expect("the listener closes after the delay");
    assert!(
        signalled.elapsed() >= delay,
        "closed {:?} after the signal, before SHUTDOWN_DELAY",
        signalled.elapsed()
    );
    assert!(
        !in_flight.is_finished(),
        "the callback should still wait for the IdP"
    );
    assert!(
        instance.child.exit_status().is_none(),
        "exited with a request in flight"
    );

    idp.pause(0).await;
    let answer = in_flight
        .await
        .expect("callback task")
        .expect("the callback in flight is answered");
    assert_eq!(answer.status(), 302);
    let cookies: Vec<String> = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("{COOKIE_NAME}="))),
        "{cookies:?}"
    );
    drop(answer);

    let status = poll_until("portcullis to exit", Duration::from_secs(20), || {
        instance
            .child
            .exit_status()
            .ok_or_else(|| "running".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", instance.log()));
    assert!(status.success(), "{status}\n{}", instance.log());
    let log = instance.log();
    for line in [
        "shutting down: /readyz answers 503",
        "signal=\"SIGTERM\"",
        "listeners closed",
        "signed in",
        "stopped",
    ] {
        assert!(log.contains(line), "no {line:?} in\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_ends_the_delay() {
    let (_idp, mut instance) = start(&[("SHUTDOWN_DELAY", "1h")]);
    let port = instance.port;
    instance.child.terminate();
    poll_until(
        "/readyz to say shutting down",
        Duration::from_secs(10),
        || match raw_http::get(port, "/readyz", &[])?.status {
            503 => Ok(()),
            other => Err(other.to_string()),
        },
    )
    .expect("readyz 503");
    instance.child.terminate();
    // Far within the hour: only the second signal can have ended it.
    let status = poll_until("portcullis to exit", Duration::from_secs(20), || {
        instance
            .child
            .exit_status()
            .ok_or_else(|| "running".to_string())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", instance.log()));
    assert!(status.success(), "{status}\n{}", instance.log());
    assert!(
        instance.log().contains("a second signal"),
        "{}",
        instance.log()
    );
}

/// Tokens are credentials: with every log line on (`RUST_LOG=debug`, `ACCESS_LOG=true`), the
/// real binary's log has a line for each API client's check and a refusal reason, yet none of
/// the bearer tokens it was shown (accepted, refused, opaque), nor the session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_cookie_reaches_the_log_even_at_debug() {
    let (idp, instance) = start(&[
        ("BEARER_TOKENS", "true"),
        ("BEARER_AUDIENCES", "https://api.test/"),
        ("ACCESS_LOG", "true"),
        ("RUST_LOG", "debug"),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |aud: &str, exp: u64| {
        serde_json::json!({
            "iss": idp.issuer(), "sub": "alice", "aud": aud, "iat": now, "exp": exp,
            "jti": format!("jti-{aud}-{exp}"), "groups": ["ops"],
        })
    };
    let header = serde_json::json!({"typ": "at+jwt"});
    let valid = idp
        .sign(&claims("https://api.test/", now + 300), &header)
        .await;
    let wrong_audience = idp
        .sign(&claims("https://other.test/", now + 300), &header)
        .await;
    let expired = idp
        .sign(&claims("https://api.test/", now - 600), &header)
        .await;
    let opaque = "opaque-access-token-0123456789abcdefghijklmnopqrstuvwxyz".to_string();
    let cases = [
        (&valid, 200),
        (&wrong_audience, 401),
        (&expired, 401),
        (&opaque, 401),
    ];
    for (token, status) in cases {
        let hop = Browser::new()
            .get_with_headers(
                &format!("{}/oauth2/auth", instance.base()),
                &[
                    ("X-Original-URL", &format!("{}/api/items", instance.base())),
                    ("Authorization", &format!("Bearer {token}")),
                    ("Accept", API_ACCEPT),
                ],
            )
            .await;
        assert_eq!(hop.status, status, "{}", hop.body);
    }
    let browser = Browser::new();
    browser
        .sign_in_trace(&instance.base(), "/oauth2/start?rd=/", "alice", PASSWORD)
        .await;
    let cookie = browser
        .cookie(&instance.base(), COOKIE_NAME)
        .expect("session cookie");
    assert_eq!(auth_check(&instance, "", Some(&cookie)).await, 200);

    let log = instance.log();
    let bearer_lines = log.lines().filter(|l| l.contains("bearer=true")).count();
    assert!(
        bearer_lines >= 4,
        "no access log line per token check:\n{log}"
    );
    assert!(log.contains("audience"), "no refusal reason logged:\n{log}");
    for (what, secret) in [
        ("valid token", valid.as_str()),
        ("wrong-audience token", wrong_audience.as_str()),
        ("expired token", expired.as_str()),
        ("opaque token", opaque.as_str()),
        ("session cookie", cookie.as_str()),
    ] {
        // A JWT's signature is what makes it a credential; the whole value for the others.
        let tail = secret.rsplit('.').next().unwrap_or(secret);
        assert!(!log.contains(tail), "the {what} is in the log:\n{log}");
    }
}
