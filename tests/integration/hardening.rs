//! Hardening: pending-login floods, cross-site sign-out, duplicate and `__Host-` cookies,
//! allow-list ports, our pages' headers, Redis coming back.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use url::Url;

use crate::stack::{auth_status_with_header, seen_headers, signed_in, Options, Stack};
use crate::support::browser::{API_ACCEPT, BROWSER_ACCEPT};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::{test_env, Portcullis, COOKIE_NAME};
use crate::support::process::ChildGuard;
use crate::support::{free_port, Browser, Idp};

const FLOOD_REQUESTS: usize = 20_000;
const FLOOD_WORKERS: usize = 16;
/// What 20,000 pending logins may cost the process or Redis, at most.
const FLOOD_BUDGET_BYTES: u64 = 32 * 1024 * 1024;

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An allowed return address of exactly 4,000 characters on `base`.
fn long_return_address(base: &str) -> String {
    let prefix = format!("{base}/long/");
    let filler: String = (0..4000 - prefix.len())
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let url = prefix + &filler;
    assert_eq!(url.len(), 4000);
    url
}

/// `FLOOD_REQUESTS` anonymous `GET url` from `FLOOD_WORKERS` connections; every answer must be
/// a 302 to the IdP. Returns how long it took.
async fn flood(url: &str) -> Duration {
    let started = Instant::now();
    let url = Arc::new(url.to_string());
    let mut workers = Vec::new();
    for _ in 0..FLOOD_WORKERS {
        let url = Arc::clone(&url);
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client");
            let mut unexpected = Vec::new();
            for _ in 0..FLOOD_REQUESTS / FLOOD_WORKERS {
                match client.get(url.as_str()).send().await {
                    Ok(response) if response.status() == 302 => {
                        let _ = response.bytes().await;
                    }
                    Ok(response) => unexpected.push(response.status().to_string()),
                    Err(err) => unexpected.push(err.to_string()),
                }
            }
            unexpected
        }));
    }
    let mut unexpected = Vec::new();
    for worker in workers {
        unexpected.extend(worker.await.expect("flood worker"));
    }
    assert!(
        unexpected.is_empty(),
        "{} of {FLOOD_REQUESTS} starts were not 302: {:?}",
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    started.elapsed()
}

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in /proc status");
    kib * 1024
}

fn redis_used_memory(stack: &Stack) -> u64 {
    let info = stack
        .redis
        .as_ref()
        .expect("redis")
        .cli(&["INFO", "memory"]);
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory in INFO")
}

/// A signed-in browser's `/oauth2/userinfo` user, or the status when it is not 200.
async fn userinfo_user(browser: &Browser, base: &str) -> Result<String, u16> {
    let hop = browser
        .get_with_accept(&format!("{base}/oauth2/userinfo"), API_ACCEPT)
        .await;
    if hop.status != 200 {
        return Err(hop.status);
    }
    Ok(hop.json()["user"].as_str().unwrap_or_default().to_string())
}

/// Signs in through a portcullis reached directly (no proxy, no app); the callback must set a
/// session that userinfo then names.
async fn sign_in_directly(base: &str, user: &str) -> Browser {
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(base, "/oauth2/start?rd=/", user, PASSWORD)
        .await;
    let callback = hops
        .iter()
        .find(|h| h.url.path() == "/oauth2/callback")
        .expect("a callback hop");
    assert_eq!(
        callback.status,
        302,
        "{}",
        crate::support::browser::describe(&hops)
    );
    assert_eq!(userinfo_user(&browser, base).await.as_deref(), Ok(user));
    browser
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_anonymous_logins_costs_the_memory_store_process_little() {
    // The real binary in a process of its own, so that its resident memory is its own.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&[format!("{base}/oauth2/callback")], &[]);
    let mut env: HashMap<String, String> = test_env(&idp, &base, None);
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.env_clear().envs(&env);
    let mut child = ChildGuard::spawn("portcullis", command, log.path());
    child.wait_for_http(
        &format!("{base}/readyz"),
        Duration::from_secs(30),
        |status| status == 200,
    );
    let pid = child.pid().expect("pid");

    let before_flood = sign_in_directly(&base, "alice").await;
    let start = format!(
        "{base}/oauth2/start?rd={}",
        urlencode(&long_return_address(&base))
    );
    let rss_before = resident_bytes(pid);
    let took = flood(&start).await;
    let rss_after = resident_bytes(pid);
    let growth = rss_after.saturating_sub(rss_before);
    println!(
        "memory store: {FLOOD_REQUESTS} starts with a 4,000-character rd in {took:?}; \
         resident {rss_before} -> {rss_after} bytes (+{growth})"
    );
    assert!(
        growth < FLOOD_BUDGET_BYTES,
        "resident memory grew by {growth} bytes"
    );
    assert_eq!(
        userinfo_user(&before_flood, &base).await.as_deref(),
        Ok("alice"),
        "a session from before the flood"
    );
    sign_in_directly(&base, "bob").await;
    assert!(child.is_running(), "{}", child.log_tail(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_anonymous_logins_costs_redis_little_and_evicts_nothing() {
    let stack = Stack::traefik();
    let before_flood = Browser::new();
    before_flood
        .sign_in_through(&stack.base(), "/before", "alice", PASSWORD)
        .await;
    let long = long_return_address(&stack.base());
    let start = stack.direct(&format!("/oauth2/start?rd={}", urlencode(&long)));
    let used_before = redis_used_memory(&stack);
    let took = flood(&start).await;
    let used_after = redis_used_memory(&stack);
    let growth = used_after.saturating_sub(used_before);
    println!(
        "Redis store: {FLOOD_REQUESTS} starts in {took:?}; used_memory {used_before} -> \
         {used_after} bytes (+{growth})"
    );
    assert!(growth < FLOOD_BUDGET_BYTES, "Redis grew by {growth} bytes");

    let kept = before_flood.get(&stack.url("/after")).await;
    assert_eq!(kept.status, 200, "a session from before the flood");
    // A normal login right after, with the same 4,000-character return address: its login
    // travels in two cookie chunks and the browser lands where it was going.
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(
            &stack.base(),
            &format!("/oauth2/start?rd={}", urlencode(&long)),
            "bob",
            PASSWORD,
        )
        .await;
    let start_hop = &hops[0];
    let login_cookies: Vec<String> = start_hop
        .set_cookies()
        .into_iter()
        .filter(|c| c.starts_with(&format!("{COOKIE_NAME}_login_")))
        .collect();
    assert_eq!(login_cookies.len(), 2, "{login_cookies:?}");
    for cookie in &login_cookies {
        let name_and_value = cookie.split(';').next().unwrap_or_default();
        assert!(
            name_and_value.len() < 4096,
            "{} bytes",
            name_and_value.len()
        );
    }
    let last = hops.last().expect("hops");
    assert_eq!(
        last.status,
        200,
        "{}",
        crate::support::browser::describe(&hops)
    );
    assert_eq!(last.url.as_str(), long);
    assert_eq!(seen_headers(&last.json())["x-auth-request-user"], "bob");
}

async fn auth_status(stack: &Stack, cookie_header: &str) -> u16 {
    auth_status_with_header(&stack.portcullis.base_url(), stack, cookie_header).await
}

#[tokio::test]
async fn sign_out_from_another_site_keeps_the_session() {
    let stack = Stack::traefik();
    let (mut browser, cookie) = signed_in(&stack, "alice").await;
    let mut session = format!("{COOKIE_NAME}={cookie}");
    let sign_out = stack.url("/oauth2/sign_out?rd=%2Fbye");

    // A link from another site: a page with a button, and the session stays.
    let hop = browser
        .get_with_headers(&sign_out, &[("Sec-Fetch-Site", "cross-site")])
        .await;
    assert_eq!(hop.status, 200);
    assert!(hop.body.contains("method=\"post\""), "{}", hop.body);
    assert!(
        hop.body.contains("action=\"/oauth2/sign_out?rd=%2Fbye\""),
        "{}",
        hop.body
    );
    assert_eq!(hop.header("x-frame-options").as_deref(), Some("DENY"));
    assert_eq!(auth_status(&stack, &session).await, 200);

    // A form on another site, or from an origin we do not know: 403, session kept.
    let evil = "https://evil.example.com";
    for headers in [
        vec![("Sec-Fetch-Site", "cross-site")],
        vec![("Origin", evil)],
        vec![("Origin", "null")],
        vec![("Sec-Fetch-Site", "same-site"), ("Origin", evil)],
    ] {
        let hop = browser
            .request(Method::POST, &sign_out, &headers, Some(&[]))
            .await;
        assert_eq!(hop.status, 403, "{headers:?}");
        assert_eq!(auth_status(&stack, &session).await, 200, "{headers:?}");
    }

    // The confirmation page's own button: a same-origin POST signs out. Under our pages'
    // `Referrer-Policy: no-referrer` a browser sends its Origin as `null`.
    let own_origin = stack.base();
    for origin in [own_origin.as_str(), "null"] {
        let hop = browser
            .request(
                Method::POST,
                &sign_out,
                &[("Sec-Fetch-Site", "same-origin"), ("Origin", origin)],
                Some(&[]),
            )
            .await;
        assert_eq!(hop.status, 302, "Origin {origin}");
        assert_eq!(auth_status(&stack, &session).await, 401, "Origin {origin}");
        let fresh = Browser::new();
        fresh
            .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
            .await;
        let cookie = fresh.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
        session = format!("{COOKIE_NAME}={cookie}");
        browser = fresh;
    }
}

#[tokio::test]
async fn same_origin_and_header_less_sign_outs_work_as_before() {
    let stack = Stack::traefik();
    let cases: [&[(&str, &str)]; 3] = [
        &[("Sec-Fetch-Site", "same-origin")],
        &[],
        &[("Sec-Fetch-Site", "none")],
    ];
    for headers in cases {
        let (browser, cookie) = signed_in(&stack, "alice").await;
        let hop = browser
            .get_with_headers(&stack.url("/oauth2/sign_out"), headers)
            .await;
        assert_eq!(hop.status, 200, "{headers:?}");
        assert!(hop.body.contains("You have been signed out"), "{headers:?}");
        assert_eq!(
            auth_status(&stack, &format!("{COOKIE_NAME}={cookie}")).await,
            401,
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn a_session_cookie_sent_twice_is_not_signed_in() {
    let stack = Stack::traefik();
    let (_browser, cookie) = signed_in(&stack, "alice").await;
    let once = format!("theme=dark; {COOKIE_NAME}={cookie}");
    assert_eq!(auth_status(&stack, &once).await, 200);
    // Tossed from a sibling subdomain: another value under the same name, before or after.
    for header in [
        format!("{COOKIE_NAME}={cookie}; {COOKIE_NAME}={cookie}"),
        format!("{COOKIE_NAME}=planted; {COOKIE_NAME}={cookie}"),
        format!("{COOKIE_NAME}={cookie}; theme=dark; {COOKIE_NAME}=planted"),
    ] {
        assert_eq!(auth_status(&stack, &header).await, 401, "{header}");
    }
    // Through the proxy, as a browser that holds both would send them.
    let hop = Browser::new()
        .get_with_headers(
            &stack.url("/app"),
            &[(
                "Cookie",
                &format!("{COOKIE_NAME}=planted; {COOKIE_NAME}={cookie}"),
            )],
        )
        .await;
    assert_eq!(
        hop.status, 302,
        "a browser navigation without a session signs in"
    );
    assert_eq!(
        stack.upstream.request_count(),
        1,
        "only the sign-in reached the app"
    );
}

#[tokio::test]
async fn host_prefixed_cookie_names_work_end_to_end() {
    const NAME: &str = "__Host-portcullis";
    let stack = Stack::start(Options {
        env: &[("COOKIE_NAME", NAME), ("COOKIE_SECURE", "true")],
        ..Options::default()
    });
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/hello", "alice", PASSWORD)
        .await;
    let last = hops.last().expect("hops");
    assert_eq!(
        last.status,
        200,
        "{}",
        crate::support::browser::describe(&hops)
    );
    assert_eq!(seen_headers(&last.json())["x-auth-request-user"], "alice");
    let ours: Vec<String> = hops
        .iter()
        .flat_map(|h| h.set_cookies())
        .filter(|c| c.starts_with(NAME))
        .collect();
    // The login cookie, its removal and the session cookie at least.
    assert!(ours.len() >= 3, "{ours:?}");
    assert!(ours
        .iter()
        .any(|c| c.starts_with(&format!("{NAME}_login_"))));
    for cookie in &ours {
        assert!(cookie.contains("; Secure"), "{cookie}");
        assert!(
            cookie.contains("; Path=/;") || cookie.ends_with("; Path=/"),
            "{cookie}"
        );
        assert!(!cookie.to_ascii_lowercase().contains("domain="), "{cookie}");
    }
    let sign_out = browser.get(&stack.url("/oauth2/sign_out")).await;
    let cleared = sign_out.set_cookies();
    assert!(
        cleared
            .iter()
            .any(|c| c.starts_with(&format!("{NAME}=;")) && c.contains("; Secure")),
        "{cleared:?}"
    );
}

#[tokio::test]
async fn allow_list_entries_mean_the_default_port_a_given_port_or_any() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = Idp::start(&[format!("{base}/oauth2/callback")], &[]);
    let other = free_port();
    // (ALLOWED_REDIRECT_DOMAINS, rd, redirected?)
    let cases = [
        ("127.0.0.1", format!("http://127.0.0.1:{other}/x"), false),
        ("127.0.0.1", "http://127.0.0.1/x".to_string(), true),
        ("127.0.0.1", "http://127.0.0.1:80/x".to_string(), true),
        (
            &*format!("127.0.0.1:{other}"),
            format!("http://127.0.0.1:{other}/x"),
            true,
        ),
        (
            &*format!("127.0.0.1:{other}"),
            "http://127.0.0.1/x".to_string(),
            false,
        ),
        ("127.0.0.1:*", format!("http://127.0.0.1:{other}/x"), true),
        ("localhost", format!("http://localhost:{other}/x"), false),
        (
            ".localhost:*",
            format!("http://app.localhost:{other}/x"),
            true,
        ),
        // The default list, from OIDC_REDIRECT_URL: its own host and port.
        ("", format!("{base}/x"), true),
        ("", format!("http://127.0.0.1:{other}/x"), false),
    ];
    for (list, rd, redirected) in cases {
        let mut env = test_env(&idp, &base, None);
        if !list.is_empty() {
            env.insert("ALLOWED_REDIRECT_DOMAINS".into(), list.to_string());
        }
        let mut fresh = Portcullis::reserve();
        fresh.start(env);
        let hop = Browser::new()
            .get(&format!(
                "{}/oauth2/sign_out?rd={}",
                fresh.base_url(),
                urlencode(&rd)
            ))
            .await;
        let location = hop.location.as_ref().map(Url::as_str);
        if redirected {
            assert_eq!(hop.status, 302, "{list:?} {rd}");
            assert_eq!(
                location.map(|l| l.trim_end_matches('/')),
                Some(rd.replace(":80/", "/").as_str()),
                "{list:?} {rd}"
            );
        } else {
            assert_eq!(hop.status, 200, "{list:?} {rd} redirected to {location:?}");
        }
    }
}

#[tokio::test]
async fn our_pages_cannot_be_framed_and_send_no_referrer() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let callback = hops
        .iter()
        .find(|h| h.url.path() == "/oauth2/callback")
        .expect("callback hop");
    assert_eq!(
        callback.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );

    let authority = Url::parse(&stack.base()).expect("base");
    let forbidden = browser
        .get_with_headers(
            &stack.direct("/oauth2/forward-auth?allowed_users=nobody"),
            &[
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Host", authority.authority()),
                ("X-Forwarded-Uri", "/x"),
                ("Accept", BROWSER_ACCEPT),
            ],
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let pages = [
        ("403 page", forbidden),
        (
            "sign-in error page",
            browser
                .get(&stack.url("/oauth2/callback?state=x&code=y"))
                .await,
        ),
        (
            "sign-out confirmation",
            browser
                .get_with_headers(
                    &stack.url("/oauth2/sign_out"),
                    &[("Sec-Fetch-Site", "cross-site")],
                )
                .await,
        ),
        (
            "signed-out page",
            browser.get(&stack.url("/oauth2/sign_out")).await,
        ),
        (
            "signed_out",
            browser.get(&stack.url("/oauth2/signed_out")).await,
        ),
    ];
    for (what, hop) in pages {
        assert!(hop.body.contains("<!doctype html>"), "{what}: {}", hop.body);
        assert_eq!(
            hop.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{what}"
        );
        assert!(
            hop.header("content-security-policy")
                .is_some_and(|csp| csp.contains("frame-ancestors 'none'")),
            "{what}"
        );
        assert_eq!(
            hop.header("x-content-type-options").as_deref(),
            Some("nosniff"),
            "{what}"
        );
        assert_eq!(
            hop.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{what}"
        );
    }
}

#[tokio::test]
async fn the_first_check_after_redis_restarts_already_answers_right() {
    let mut stack = Stack::traefik();
    let (alice, cookie) = signed_in(&stack, "alice").await;
    let alice_session = format!("{COOKIE_NAME}={cookie}");
    assert_eq!(auth_status(&stack, &alice_session).await, 200);

    // Back empty: the session is gone, and the very first check says so (401), not 503.
    stack.redis.as_mut().expect("redis").restart();
    assert_eq!(auth_status(&stack, &alice_session).await, 401);
    let navigation = alice.get(&stack.url("/again")).await;
    assert_eq!(navigation.status, 302, "a browser is sent to sign in");

    // Back with its data: the first check passes.
    let bob = Browser::new();
    bob.sign_in_through(&stack.base(), "/", "bob", PASSWORD)
        .await;
    let cookie = bob.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
    let bob_session = format!("{COOKIE_NAME}={cookie}");
    let redis = stack.redis.as_mut().expect("redis");
    assert_eq!(redis.cli(&["SAVE"]), "OK");
    redis.restart();
    assert_eq!(auth_status(&stack, &bob_session).await, 200);
    assert_eq!(bob.get(&stack.url("/kept")).await.status, 200);
}
