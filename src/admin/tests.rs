use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderMap};
use actix_web::http::{Method, StatusCode};
use actix_web::test::{self, TestRequest};
use actix_web::web;

use super::api::{self, TokenDigest};
use super::cli::{self, SessionsCommand, UsageError};
use super::*;
use crate::http::{unix_now, AppState};
use crate::secret::Secret;
use crate::session::Session;

fn args(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

#[test]
fn sessions_arguments_make_exactly_the_commands_documented() {
    let user = |name: &str| Target::User(name.to_string());
    for (line, expected) in [
        ("list", SessionsCommand::List(Target::All)),
        ("list --user alice", SessionsCommand::List(user("alice"))),
        ("list --user=alice", SessionsCommand::List(user("alice"))),
        (
            "revoke --user alice",
            SessionsCommand::Revoke(user("alice")),
        ),
        ("revoke --user=a=b", SessionsCommand::Revoke(user("a=b"))),
        ("revoke --all", SessionsCommand::Revoke(Target::All)),
        ("--help", SessionsCommand::Help),
        ("-h", SessionsCommand::Help),
        ("help", SessionsCommand::Help),
    ] {
        assert_eq!(cli::parse(&args(line)), Ok(expected), "{line}");
    }
    // An empty name cannot be written with split_whitespace.
    assert_eq!(
        cli::parse(&["revoke".into(), "--user".into(), String::new()]),
        Err(UsageError("--user needs a NAME".into()))
    );
}

#[test]
fn sessions_arguments_that_could_mean_something_else_are_refused() {
    for (line, message) in [
        ("", "a command is needed: list or revoke"),
        ("remove --all", "unknown sessions command \"remove\""),
        (
            "list --all",
            "list takes --user NAME or nothing (all sessions), not --all",
        ),
        ("list alice", "unknown argument \"alice\""),
        ("list --user", "--user needs a NAME"),
        ("list --user=", "--user needs a NAME"),
        ("list --user alice --user bob", "--user is given twice"),
        ("revoke", "revoke needs --user NAME or --all"),
        ("revoke alice", "unknown argument \"alice\""),
        ("revoke --user", "--user needs a NAME"),
        ("revoke --user --all", "--user needs a NAME"),
        ("revoke --all --all", "--all is given twice"),
        (
            "revoke --all --user alice",
            "revoke takes --user NAME or --all, not both",
        ),
        (
            "revoke --user alice --all",
            "revoke takes --user NAME or --all, not both",
        ),
        ("revoke --everyone", "unknown argument \"--everyone\""),
        ("revoke -a", "unknown argument \"-a\""),
        ("--help list", "unknown sessions command \"--help\""),
    ] {
        assert_eq!(
            cli::parse(&args(line)),
            Err(UsageError(message.to_string())),
            "{line:?}"
        );
    }
}

#[test]
fn times_are_written_in_utc() {
    for (unix, text) in [
        (0, "1970-01-01 00:00:00Z"),
        (86_399, "1970-01-01 23:59:59Z"),
        (86_400, "1970-01-02 00:00:00Z"),
        (951_782_400, "2000-02-29 00:00:00Z"),
        (951_868_799, "2000-02-29 23:59:59Z"),
        (1_709_164_800, "2024-02-29 00:00:00Z"),
        (1_796_155_893, "2026-12-01 20:11:33Z"),
        (1_798_834_293, "2027-01-01 20:11:33Z"),
        (4_102_444_800, "2100-01-01 00:00:00Z"),
        (253_402_300_799, "9999-12-31 23:59:59Z"),
        (68_256_000_000, "4132-12-12 00:00:00Z"),
    ] {
        assert_eq!(cli::utc(unix), text, "{unix}");
    }
    // And agree with humantime's RFC 3339 writer across its whole range, every 1,000,003 s
    // (about 11.6 days, so every day of the month and time of day comes round).
    for unix in (0..253_402_300_800u64).step_by(1_000_003) {
        let rfc3339 = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix));
        assert_eq!(
            cli::utc(unix),
            rfc3339.to_string().replace('T', " "),
            "{unix}"
        );
    }
}

fn listed(user: &str, created_at: u64) -> Listed {
    Listed {
        user: user.to_string(),
        provider: None,
        idp_session: Some(format!("sid-{user}")),
        created_at,
        last_seen: Some(created_at + 60),
        expires_at: created_at + 12 * 3600,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0".to_string()),
        address: Some("192.0.2.10".to_string()),
    }
}

#[test]
fn the_table_aligns_columns_and_marks_what_is_unknown() {
    let mut bob = listed("bob", 1_796_155_893);
    bob.idp_session = None;
    bob.last_seen = None;
    bob.user_agent = None;
    bob.address = Some("2001:db8::1".to_string());
    let table = cli::table(&[listed("alice", 1_796_155_800), bob]);
    let expected = "\
USER   PROVIDER SESSION  CREATED               LAST SEEN             EXPIRES               USER AGENT                                     ADDRESS
alice  sid-alice         2026-12-01 20:10:00Z  2026-12-01 20:11:00Z  2026-12-02 08:10:00Z  Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0  192.0.2.10
bob    -                 2026-12-01 20:11:33Z  -                     2026-12-02 08:11:33Z  -                                              2001:db8::1
";
    assert_eq!(table, expected);
    assert_eq!(cli::table(&[]), "no sessions\n");
}

#[test]
fn the_table_escapes_what_a_terminal_would_obey() {
    let mut row = listed("eve\nalice  sid-alice", 0);
    row.user_agent = Some("curl\u{1b}[2J\u{1b}[H\r".to_string());
    let table = cli::table(&[row]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\r'),
        "{table:?}"
    );
    assert!(table.contains("eve\\nalice  sid-alice"), "{table}");
    assert!(table.contains("curl\\u{1b}[2J\\u{1b}[H\\r"), "{table}");
}

#[test]
fn the_count_ended_reads_as_a_sentence() {
    assert_eq!(ended(0), "ended 0 sessions");
    assert_eq!(ended(1), "ended 1 session");
    assert_eq!(ended(2), "ended 2 sessions");
}

#[test]
fn only_a_single_bearer_header_carries_a_token() {
    for (headers, expected) in [
        (&["Bearer abc"][..], Some("abc")),
        (&["bearer abc"], Some("abc")),
        (&["BEARER   abc"], Some("abc")),
        (&["Bearer a b"], Some("a b")),
        (&[], None),
        (&["Bearer"], None),
        (&["Bearer "], None),
        (&["Basic YWxpY2U6cHc="], None),
        (&["Bearerabc"], None),
        (&["Token abc"], None),
        (&["Bearer abc", "Bearer abc"], None),
    ] {
        let found = api::bearer(headers.iter().map(|h| h.as_bytes()));
        assert_eq!(found, expected.map(str::as_bytes), "{headers:?}");
    }
}

#[test]
fn the_token_matches_itself_only() {
    let digest = TokenDigest::of(&Secret::new("admin-token-0123456789abcdef-0123456789"));
    assert!(digest.matches(b"admin-token-0123456789abcdef-0123456789"));
    for wrong in [
        &b""[..],
        b"admin-token-0123456789abcdef-012345678",
        b"admin-token-0123456789abcdef-01234567890",
        b"Admin-token-0123456789abcdef-0123456789",
        b"admin-token-0123456789abcdef-0123456789 ",
    ] {
        assert!(!digest.matches(wrong), "{wrong:?}");
    }
}

#[test]
fn queries_name_a_user_or_everyone_and_deleting_everyone_is_never_implied() {
    let user = |name: &str| Ok(Target::User(name.to_string()));
    for (query, list, revoke) in [
        (
            "",
            Ok(Target::All),
            Err("say whose sessions to end: ?user=NAME or ?all=true"),
        ),
        ("all=true", Ok(Target::All), Ok(Target::All)),
        ("user=alice", user("alice"), user("alice")),
        ("user=a%20b%2Cc", user("a b,c"), user("a b,c")),
        (
            "user=alice&all=true",
            Err("give user or all, not both"),
            Err("give user or all, not both"),
        ),
        (
            "all=false",
            Err("all can only be true"),
            Err("all can only be true"),
        ),
        (
            "all=1",
            Err("all can only be true"),
            Err("all can only be true"),
        ),
        ("user=", Err("user is empty"), Err("user is empty")),
        ("all=", Err("all is empty"), Err("all is empty")),
        (
            "user=a&user=b",
            Err("user is given twice"),
            Err("user is given twice"),
        ),
        (
            "users=alice",
            Err("unknown parameter \"users\" (user or all)"),
            Err("unknown parameter \"users\" (user or all)"),
        ),
        ("user", Err("user is empty"), Err("user is empty")),
    ] {
        let text = |r: Result<Target, &str>| r.map_err(str::to_string);
        assert_eq!(api::list_target(query), text(list), "GET ?{query}");
        assert_eq!(api::revoke_target(query), text(revoke), "DELETE ?{query}");
    }
}

const TOKEN: &str = "admin-token-0123456789abcdef-0123456789";

fn env() -> HashMap<String, String> {
    [
        // Port 9 (discard) is closed on loopback: discovery is refused at once.
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "client-secret-value"),
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("ADMIN_TOKEN", TOKEN),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn state() -> web::Data<AppState> {
    let config = crate::config::Config::from_env_map(env()).unwrap();
    crate::build_state(config).await.unwrap()
}

fn session(user: &str, now: u64) -> Session {
    Session {
        user: user.to_string(),
        created_at: now,
        expires_at: now + 3600,
        subject: format!("{user}-sub"),
        idp_session: Some(format!("{user}-sid")),
        claims_read_at: now,
        user_agent: Some("Firefox".to_string()),
        address: Some("192.0.2.1".to_string()),
        ..Session::default()
    }
}

async fn send(state: &web::Data<AppState>, req: TestRequest) -> ServiceResponse {
    let digest = TokenDigest::of(&Secret::new(TOKEN));
    let app = test::init_service(api::app(state.clone(), digest)).await;
    test::call_service(&app, req.to_request())
        .await
        .map_into_boxed_body()
}

async fn read(response: ServiceResponse) -> (StatusCode, HeaderMap, serde_json::Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let body = test::read_body(response).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, headers, json)
}

fn request(method: Method, uri: &str, authorization: Option<&str>) -> TestRequest {
    let req = TestRequest::default().method(method).uri(uri);
    match authorization {
        Some(value) => req.insert_header((header::AUTHORIZATION, value)),
        None => req,
    }
}

const BEARER: &str = "Bearer admin-token-0123456789abcdef-0123456789";

#[actix_web::test]
async fn every_sessions_request_needs_the_token_and_learns_nothing_without_it() {
    let state = state().await;
    let short = format!("Bearer {}", &TOKEN[..20]);
    let long = format!("{BEARER}0");
    let basic = format!("Basic {TOKEN}");
    for authorization in [
        None,
        Some("Bearer wrong"),
        Some(&short[..]),
        Some(&long[..]),
        Some(&basic[..]),
    ] {
        for (method, uri) in [
            (Method::GET, "/sessions"),
            (Method::GET, "/sessions?user=alice"),
            (Method::DELETE, "/sessions?all=true"),
            // Not even whether the query would have been accepted.
            (Method::DELETE, "/sessions"),
        ] {
            let (status, headers, json) =
                read(send(&state, request(method.clone(), uri, authorization)).await).await;
            assert_eq!(status, 401, "{method} {uri} with {authorization:?}");
            assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
            assert_eq!(headers.get("cache-control").unwrap(), "no-store");
            assert_eq!(json, serde_json::json!({ "error": "unauthorized" }));
        }
    }
}

#[actix_web::test]
async fn listing_shows_who_and_from_where_but_never_an_id() {
    let state = state().await;
    let now = unix_now();
    let mut ids = Vec::new();
    for (user, created) in [("alice", now - 20), ("bob", now - 10), ("alice", now)] {
        let id = crate::crypto::random_id();
        state
            .store
            .put_session(
                &id,
                &session(user, created),
                None,
                Duration::from_secs(3600),
            )
            .await
            .unwrap();
        ids.push(id);
    }
    let (status, headers, all) =
        read(send(&state, request(Method::GET, "/sessions", Some(BEARER))).await).await;
    assert_eq!(status, 200);
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(headers.get("content-type").unwrap(), "application/json");
    let users: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["alice", "bob", "alice"]);
    assert_eq!(
        all[0],
        serde_json::json!({
            "user": "alice",
            "provider": null,
            "idp_session": "alice-sid",
            "created_at": now - 20,
            "last_seen": null,
            "expires_at": now - 20 + 3600,
            "user_agent": "Firefox",
            "address": "192.0.2.1",
        })
    );
    let text = all.to_string();
    for id in &ids {
        assert!(!text.contains(id.as_str()), "a session id is listed");
    }
    let (_, _, alice) = read(
        send(
            &state,
            request(Method::GET, "/sessions?user=alice", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(alice.as_array().unwrap().len(), 2);
    let (_, _, nobody) = read(
        send(
            &state,
            request(Method::GET, "/sessions?user=carol", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(nobody, serde_json::json!([]));
}

#[actix_web::test]
async fn deleting_ends_one_users_sessions_or_everyones_but_never_by_default() {
    let state = state().await;
    let now = unix_now();
    for user in ["alice", "alice", "bob", "carol"] {
        let id = crate::crypto::random_id();
        state
            .store
            .put_session(&id, &session(user, now), None, Duration::from_secs(3600))
            .await
            .unwrap();
    }
    let (status, headers, json) =
        read(send(&state, request(Method::DELETE, "/sessions", Some(BEARER))).await).await;
    assert_eq!(status, 400);
    assert_eq!(headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(
        json["error"],
        "say whose sessions to end: ?user=NAME or ?all=true"
    );
    let (status, _, _) = read(
        send(
            &state,
            request(Method::DELETE, "/sessions?all=yes", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    let left = state
        .store
        .list_sessions(crate::session::Selection::All, now)
        .await
        .unwrap();
    assert_eq!(left.len(), 4, "a refused request ended sessions");

    let (status, _, json) = read(
        send(
            &state,
            request(Method::DELETE, "/sessions?user=alice", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, json),
        (StatusCode::OK, serde_json::json!({ "ended": 2 }))
    );
    let (_, _, json) = read(
        send(
            &state,
            request(Method::DELETE, "/sessions?user=alice", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(json, serde_json::json!({ "ended": 0 }));
    let (_, _, json) = read(
        send(
            &state,
            request(Method::DELETE, "/sessions?all=true", Some(BEARER)),
        )
        .await,
    )
    .await;
    assert_eq!(json, serde_json::json!({ "ended": 2 }));
    let left = state
        .store
        .list_sessions(crate::session::Selection::All, now)
        .await
        .unwrap();
    assert!(left.is_empty());
}

#[actix_web::test]
async fn health_needs_no_token_and_every_other_answer_is_not_cached() {
    let state = state().await;
    let response = send(&state, request(Method::GET, "/healthz", None)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    for (method, uri) in [
        (Method::GET, "/oauth2/auth"),
        (Method::POST, "/sessions"),
        (Method::GET, "/"),
    ] {
        let response = send(&state, request(method.clone(), uri, Some(BEARER))).await;
        assert!(
            response.status().is_client_error(),
            "{method} {uri}: {}",
            response.status()
        );
        assert_eq!(
            response.headers().get("cache-control").unwrap(),
            "no-store",
            "{method} {uri}"
        );
    }
}

/// Plain HTTP/1.1 over loopback: the status code, or `None` when nothing listens.
async fn status_of(port: u16, method: &str, path: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {BEARER}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[actix_web::test]
async fn build_starts_the_admin_listener_apart_and_stops_it_with_the_main_one() {
    let config = crate::config::Config::from_env_map(env()).unwrap();
    let running = crate::build(config).await.unwrap();
    let admin_port = running.admin_port.expect("admin port");
    assert_ne!(admin_port, running.port);
    let handle = running.server.handle();
    let main = actix_web::rt::spawn(running.server);

    assert_eq!(status_of(admin_port, "GET", "/healthz").await, Some(200));
    assert_eq!(status_of(admin_port, "GET", "/sessions").await, Some(200));
    // The main listener never serves the admin API, token or not.
    assert_eq!(status_of(running.port, "GET", "/healthz").await, Some(200));
    assert_eq!(status_of(running.port, "GET", "/sessions").await, Some(404));
    assert_eq!(
        status_of(running.port, "DELETE", "/sessions?all=true").await,
        Some(404)
    );

    handle.stop(true).await;
    main.await.unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status_of(admin_port, "GET", "/healthz").await.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the admin listener outlived the main one"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }

    // Without ADMIN_ADDR there is no admin listener at all.
    let mut plain = env();
    plain.remove("ADMIN_ADDR");
    plain.remove("ADMIN_TOKEN");
    let running = crate::build(crate::config::Config::from_env_map(plain).unwrap())
        .await
        .unwrap();
    assert_eq!(running.admin_port, None);
}

#[tokio::test]
async fn a_qualified_user_names_one_providers_user_only() {
    let store = Store::memory();
    let now = unix_now();
    let at = |provider: &str| Session {
        provider: Some(provider.to_string()),
        ..session("alice", now)
    };
    for (id, provider) in [("a1", "keycloak"), ("a2", "google"), ("a3", "keycloak")] {
        store
            .put_session(id, &at(provider), None, Duration::from_secs(3600))
            .await
            .unwrap();
    }
    let providers = ["keycloak", "google"];
    let qualified = Target::User("google:alice".to_string());
    let listed = list(&store, &qualified, &providers, now).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].provider.as_deref(), Some("google"));
    // A bare name is every provider's alice; a prefix that names no provider is part of the name.
    let bare = Target::User("alice".to_string());
    assert_eq!(list(&store, &bare, &providers, now).await.unwrap().len(), 3);
    let unknown = Target::User("okta:alice".to_string());
    assert_eq!(
        list(&store, &unknown, &providers, now).await.unwrap().len(),
        0
    );
    assert_eq!(revoke(&store, &qualified, &providers).await.unwrap(), 1);
    let left = list(&store, &bare, &providers, now).await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left
        .iter()
        .all(|l| l.provider.as_deref() == Some("keycloak")));
}
