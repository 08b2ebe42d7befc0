//! Revocation by an operator, on real programs: users signed in through Traefik and the test
//! IdP, sessions in a real Redis, `portcullis sessions list|revoke` as the real binary with the
//! servers' environment, and the admin API of two replicas sharing that Redis.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::stack::{auth_status_at, signed_in, Options, Stack};
use crate::support::free_port;
use crate::support::portcullis::{test_env, Portcullis, REQUIRED};
use crate::support::process::run_with_timeout;

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const TOKEN: &str = "test-admin-token-0123456789abcdef-0123";
/// What the test browser sends as `User-Agent`, and where Traefik says it came from.
const USER_AGENT: &str = "portcullis-test-browser";
const ADDRESS: &str = "127.0.0.1";

fn portcullis(args: &[&str], env: &HashMap<String, String>) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().envs(env);
    run_with_timeout(command, Duration::from_secs(30))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

/// Runs a sessions command that must succeed; its stdout.
fn sessions(args: &[&str], env: &HashMap<String, String>) -> String {
    let mut all = vec!["sessions"];
    all.extend_from_slice(args);
    let output = portcullis(&all, env);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    text(&output.stdout)
}

/// The table's data rows whose first column is `user`.
fn rows_of<'t>(table: &'t str, user: &str) -> Vec<&'t str> {
    table
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().next() == Some(user))
        .collect()
}

/// The UTC times of a table row (`2026-12-01 20:11:33Z`), in order: created, last seen if
/// known, expires.
fn times_in(row: &str) -> Vec<SystemTime> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let times: Vec<SystemTime> = words
        .windows(2)
        .filter(|pair| {
            pair[0].len() == 10 && pair[0].as_bytes()[4] == b'-' && pair[1].ends_with('Z')
        })
        .map(|pair| {
            humantime::parse_rfc3339(&format!("{}T{}", pair[0], pair[1]))
                .unwrap_or_else(|e| panic!("{pair:?} is not a UTC time ({e}): {row}"))
        })
        .collect();
    assert!((2..=3).contains(&times.len()), "{times:?} in {row}");
    times
}

#[tokio::test]
async fn the_sessions_command_lists_and_ends_sessions_by_user_then_everyones() {
    let stack = Stack::traefik();
    let (alice_browser, alice_1) = signed_in(&stack, "alice").await;
    let (_, alice_2) = signed_in(&stack, "alice").await;
    let (_, bob) = signed_in(&stack, "bob").await;
    let direct = stack.portcullis.base_url();
    for cookie in [&alice_1, &alice_2, &bob] {
        assert_eq!(auth_status_at(&direct, &stack, cookie).await, 200);
    }
    let redis = stack.redis.as_ref().expect("redis");
    // The servers' environment, as an operator's shell on the same host would have it.
    let env = test_env(&stack.idp, &stack.base(), Some(&redis.url()));

    let table = sessions(&["list"], &env);
    let heading = table.lines().next().unwrap_or_default();
    for column in [
        "USER",
        "PROVIDER SESSION",
        "CREATED",
        "LAST SEEN",
        "EXPIRES",
        "USER AGENT",
        "ADDRESS",
    ] {
        assert!(heading.contains(column), "{column} missing: {table}");
    }
    assert_eq!(table.lines().count(), 4, "{table}");
    assert_eq!(rows_of(&table, "alice").len(), 2, "{table}");
    assert_eq!(rows_of(&table, "bob").len(), 1, "{table}");
    for row in rows_of(&table, "alice")
        .into_iter()
        .chain(rows_of(&table, "bob"))
    {
        assert!(row.contains(USER_AGENT), "no user agent: {row}");
        assert!(row.ends_with(ADDRESS), "no address: {row}");
        // Created just now, expiring SESSION_LIFETIME (12h) later, in UTC.
        let times = times_in(row);
        let (created, expires) = (times[0], times[times.len() - 1]);
        let age = SystemTime::now()
            .duration_since(created)
            .expect("created in the past");
        assert!(age < Duration::from_secs(300), "created {age:?} ago: {row}");
        assert_eq!(
            expires.duration_since(created).expect("expires later"),
            Duration::from_secs(12 * 3600),
            "{row}"
        );
        for secret in [&alice_1, &alice_2, &bob] {
            let id = secret.split('.').next().expect("id");
            assert!(!row.contains(id), "a session id is listed: {row}");
        }
    }
    let alices = sessions(&["list", "--user", "alice"], &env);
    assert_eq!(alices.lines().count(), 3, "{alices}");
    assert_eq!(rows_of(&alices, "alice").len(), 2, "{alices}");

    // One user: exactly their sessions end, the other user is untouched.
    let started = Instant::now();
    assert_eq!(
        sessions(&["revoke", "--user", "alice"], &env),
        "ended 2 sessions\n"
    );
    let exited = started.elapsed();
    assert_eq!(auth_status_at(&direct, &stack, &alice_1).await, 401);
    println!(
        "revocation: `portcullis sessions revoke --user alice` ran {exited:?} (start to exit); \
         the next auth check was refused {:?} after it started",
        started.elapsed()
    );
    assert_eq!(auth_status_at(&direct, &stack, &alice_2).await, 401);
    assert_eq!(auth_status_at(&direct, &stack, &bob).await, 200);
    // Through the proxy, the revoked browser is sent to sign in again.
    let page = alice_browser.get(&stack.url("/after-revoke")).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let to = page.location.expect("location").to_string();
    assert!(to.starts_with(&stack.idp.issuer()), "{to}");
    assert_eq!(
        sessions(&["revoke", "--user", "alice"], &env),
        "ended 0 sessions\n"
    );

    // Everyone: the rest.
    assert_eq!(sessions(&["revoke", "--all"], &env), "ended 1 session\n");
    assert_eq!(auth_status_at(&direct, &stack, &bob).await, 401);
    assert_eq!(sessions(&["list"], &env), "no sessions\n");
}

#[test]
fn the_sessions_command_refuses_bad_arguments_and_the_memory_store() {
    let env: HashMap<String, String> = [
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "secret"),
        ("OIDC_REDIRECT_URL", "http://127.0.0.1:8080/oauth2/callback"),
        ("COOKIE_SECRET", crate::support::portcullis::COOKIE_SECRET),
        ("COOKIE_SECURE", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for args in [
        &["sessions"][..],
        &["sessions", "revoke"],
        &["sessions", "revoke", "--user"],
        &["sessions", "revoke", "--all", "--user", "alice"],
        &["sessions", "list", "--everyone"],
        &["sessions", "purge"],
    ] {
        let output = portcullis(args, &env);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            describe(&output)
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("Usage:") && stderr.contains("sessions revoke --all"),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{}", describe(&output));
    }
    let help = portcullis(&["sessions", "--help"], &HashMap::new());
    assert_eq!(help.status.code(), Some(0), "{}", describe(&help));
    assert!(text(&help.stdout).contains("sessions list [--user NAME]"));

    // Without REDIS_URL the sessions are in each server's memory: nothing to see from here.
    for args in [&["sessions", "list"][..], &["sessions", "revoke", "--all"]] {
        let output = portcullis(args, &env);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(
            text(&output.stderr).contains("REDIS_URL"),
            "{args:?}: {}",
            describe(&output)
        );
        assert!(output.stdout.is_empty(), "{}", describe(&output));
    }
    // And the configuration is checked as the server checks it.
    let output = portcullis(&["sessions", "list"], &HashMap::new());
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    for name in REQUIRED {
        assert!(text(&output.stderr).contains(name), "{}", describe(&output));
    }
}

/// An admin API client: `method path` with `authorization` (a whole header value, if any).
async fn admin(
    port: u16,
    method: reqwest::Method,
    path: &str,
    authorization: Option<&str>,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut request = client.request(method, format!("http://127.0.0.1:{port}{path}"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("admin API answers")
}

fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

#[tokio::test]
async fn the_admin_api_lists_and_ends_sessions_for_every_replica() {
    let admin_a = free_port();
    let addr_a = format!("127.0.0.1:{admin_a}");
    let stack = Stack::start(Options {
        env: &[("ADMIN_ADDR", &addr_a), ("ADMIN_TOKEN", TOKEN)],
        ..Options::default()
    });
    // A second replica on the same Redis, reached directly (as the proxy would on failover).
    let redis_url = stack.redis.as_ref().expect("redis").url();
    let admin_b = free_port();
    let mut env_b = test_env(&stack.idp, &stack.base(), Some(&redis_url));
    env_b.insert("ADMIN_ADDR".into(), format!("127.0.0.1:{admin_b}"));
    env_b.insert("ADMIN_TOKEN".into(), TOKEN.into());
    let mut replica = Portcullis::reserve();
    replica.start(env_b);
    let (a, b) = (stack.portcullis.base_url(), replica.base_url());

    let (_, alice_1) = signed_in(&stack, "alice").await;
    let (_, alice_2) = signed_in(&stack, "alice").await;
    let (_, bob) = signed_in(&stack, "bob").await;
    for cookie in [&alice_1, &alice_2, &bob] {
        assert_eq!(auth_status_at(&b, &stack, cookie).await, 200, "replica b");
    }

    // Without the right token: 401, nothing else said, whatever the method.
    let short = format!("Bearer {}", &TOKEN[..TOKEN.len() - 1]);
    let long = format!("Bearer {TOKEN}x");
    let wrong = format!("Bearer {}", "x".repeat(TOKEN.len()));
    let basic = format!("Basic {TOKEN}");
    for authorization in [None, Some(&wrong), Some(&short), Some(&long), Some(&basic)] {
        for (method, path) in [
            (reqwest::Method::GET, "/sessions"),
            (reqwest::Method::DELETE, "/sessions?all=true"),
        ] {
            let response =
                admin(admin_a, method.clone(), path, authorization.map(|s| &s[..])).await;
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {authorization:?}"
            );
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_eq!(response.headers()["cache-control"], "no-store");
            let body = response.text().await.expect("body");
            assert_eq!(body, r#"{"error":"unauthorized"}"#);
        }
    }
    for cookie in [&alice_1, &alice_2, &bob] {
        assert_eq!(
            auth_status_at(&b, &stack, cookie).await,
            200,
            "a refused DELETE ended a session"
        );
    }
    // The main listeners never serve it, token or not.
    for base in [&a, &b] {
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let response = reqwest::Client::new()
                .request(method.clone(), format!("{base}/sessions?all=true"))
                .header("authorization", bearer())
                .send()
                .await
                .expect("main listener answers");
            assert_eq!(response.status(), 404, "{method} {base}/sessions");
        }
    }
    // Deleting needs to be told whose sessions.
    let response = admin(
        admin_a,
        reqwest::Method::DELETE,
        "/sessions",
        Some(&bearer()),
    )
    .await;
    assert_eq!(response.status(), 400);

    // Listing: the same sessions from either replica's admin API, without ids.
    let response = admin(admin_b, reqwest::Method::GET, "/sessions", Some(&bearer())).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let listed: serde_json::Value = response.json().await.expect("json");
    let listed = listed.as_array().expect("a list").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for session in &listed {
        assert_eq!(session["user_agent"], USER_AGENT, "{session}");
        assert_eq!(session["address"], ADDRESS, "{session}");
        let keys: Vec<&String> = session.as_object().expect("object").keys().collect();
        assert_eq!(
            keys,
            [
                "address",
                "created_at",
                "expires_at",
                "idp_session",
                "last_seen",
                "provider",
                "user",
                "user_agent"
            ],
            "{session}"
        );
        let created = session["created_at"].as_u64().expect("created_at");
        assert!(session["expires_at"].as_u64().expect("expires_at") > created);
    }
    let text = serde_json::Value::Array(listed).to_string();
    for cookie in [&alice_1, &alice_2, &bob] {
        assert!(
            !text.contains(cookie.split('.').next().expect("id")),
            "an id is listed"
        );
    }
    let response = admin(
        admin_a,
        reqwest::Method::GET,
        "/sessions?user=alice",
        Some(&bearer()),
    )
    .await;
    let alices: serde_json::Value = response.json().await.expect("json");
    assert_eq!(alices.as_array().expect("list").len(), 2, "{alices}");

    // One user, through replica a's API: refused on replica b at its very next check.
    let revoked = Instant::now();
    let response = admin(
        admin_a,
        reqwest::Method::DELETE,
        "/sessions?user=alice",
        Some(&bearer()),
    )
    .await;
    let answered = revoked.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(
        response.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!({"ended": 2})
    );
    let status = auth_status_at(&b, &stack, &alice_1).await;
    let refused = revoked.elapsed();
    assert_eq!(
        status, 401,
        "the first check on replica b after the revoke answered"
    );
    assert_eq!(auth_status_at(&b, &stack, &alice_2).await, 401);
    assert_eq!(auth_status_at(&a, &stack, &alice_2).await, 401);
    assert_eq!(
        auth_status_at(&b, &stack, &bob).await,
        200,
        "bob was not revoked"
    );
    println!(
        "revocation: DELETE ?user=alice answered in {answered:?}; the first auth check on the \
         other replica, sent after the answer, was refused {refused:?} after the DELETE was sent"
    );

    // Everyone, through replica b's API.
    let response = admin(
        admin_b,
        reqwest::Method::DELETE,
        "/sessions?all=true",
        Some(&bearer()),
    )
    .await;
    assert_eq!(
        response.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!({"ended": 1})
    );
    assert_eq!(auth_status_at(&a, &stack, &bob).await, 401);
    assert_eq!(auth_status_at(&b, &stack, &bob).await, 401);
    let response = admin(admin_a, reqwest::Method::GET, "/sessions", Some(&bearer())).await;
    assert_eq!(
        response.json::<serde_json::Value>().await.expect("json"),
        serde_json::json!([])
    );

    // The admin listener has /healthz, and stops with its replica.
    let response = admin(admin_b, reqwest::Method::GET, "/healthz", None).await;
    assert_eq!(response.status(), 200);
    replica.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", admin_b)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the admin listener outlived its replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn an_admin_address_without_a_token_does_not_start() {
    let mut env: HashMap<String, String> = [
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "secret"),
        ("OIDC_REDIRECT_URL", "http://127.0.0.1:8080/oauth2/callback"),
        ("COOKIE_SECRET", crate::support::portcullis::COOKIE_SECRET),
        ("COOKIE_SECURE", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (listen, admin) = (free_port(), free_port());
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{listen}"));
    env.insert("ADMIN_ADDR".into(), format!("127.0.0.1:{admin}"));
    let output = portcullis(&[], &env);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("invalid configuration (1 problem)")
            && stderr.contains("ADMIN_ADDR is set but ADMIN_TOKEN (or ADMIN_TOKEN_FILE) is not"),
        "{}",
        describe(&output)
    );
    for port in [listen, admin] {
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
