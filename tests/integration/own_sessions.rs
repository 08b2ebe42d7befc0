//! A user's own sessions (`/oauth2/sessions`) and the idle timeout, through Traefik with Redis
//! and the real IdP: browsers that sign in, list, and sign each other out.

use std::time::{Duration, Instant};

use crate::stack::{seen_headers, signed_in, Options, Stack};
use crate::support::browser::Hop;
use crate::support::idp::PASSWORD;
use crate::support::Browser;

async fn sessions_page(stack: &Stack, browser: &Browser) -> Hop {
    let page = browser.get(&stack.url("/oauth2/sessions")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    page
}

/// The values of every `<input name="{name}" value="...">` of a page, in order.
fn values(body: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    body.match_indices(&marker)
        .map(|(at, _)| {
            let rest = &body[at + marker.len()..];
            rest[..rest.find('"').expect("closing quote")].to_string()
        })
        .collect()
}

/// The page's one CSRF token (every form carries the same).
fn csrf(page: &Hop) -> String {
    let tokens = values(&page.body, "csrf");
    assert!(!tokens.is_empty(), "no form token: {}", page.body);
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    tokens[0].clone()
}

/// The handles of the other sessions listed on a page ("others" left out).
fn handles(page: &Hop) -> Vec<String> {
    values(&page.body, "session")
        .into_iter()
        .filter(|v| v != "others")
        .collect()
}

async fn post_sign_out(stack: &Stack, browser: &Browser, fields: &[(&str, &str)]) -> Hop {
    browser
        .post_form(&stack.url("/oauth2/sessions/sign-out"), fields)
        .await
}

/// A page of the app: 200 while signed in, a 302 to the IdP once the session is gone.
async fn app_status(stack: &Stack, browser: &Browser) -> Hop {
    browser.get(&stack.url("/app")).await
}

fn assert_sent_to_sign_in(stack: &Stack, hop: &Hop) {
    assert_eq!(hop.status, 302, "{}", hop.body);
    let to = hop.location.as_ref().expect("location");
    assert!(to.as_str().starts_with(&stack.idp.issuer()), "{to}");
}

fn assert_signed_in_as(hop: &Hop, user: &str) {
    assert_eq!(hop.status, 200, "{}", hop.body);
    assert_eq!(seen_headers(&hop.json())["x-auth-request-user"], user);
}

#[tokio::test]
async fn the_sessions_page_signs_in_first_and_comes_back() {
    let stack = Stack::traefik();
    let browser = Browser::new();
    let page = browser
        .sign_in_through(&stack.base(), "/oauth2/sessions", "alice", PASSWORD)
        .await;
    assert_eq!(page.url.path(), "/oauth2/sessions");
    assert!(
        page.body.contains("<strong>this browser</strong>"),
        "{}",
        page.body
    );
    // A script is told 401, not sent to sign in.
    let script = Browser::new()
        .get_with_accept(&stack.url("/oauth2/sessions"), "application/json")
        .await;
    assert_eq!(script.status, 401);
}

#[tokio::test]
async fn a_browser_lists_both_sessions_and_signs_the_other_one_out() {
    let stack = Stack::traefik();
    let (first, first_cookie) = signed_in(&stack, "alice").await;
    let (second, second_cookie) = signed_in(&stack, "alice").await;
    let page = sessions_page(&stack, &first).await;
    assert_eq!(
        page.body.matches("<strong>this browser</strong>").count(),
        1
    );
    assert_eq!(
        page.body.matches("portcullis-test-browser").count(),
        2,
        "{}",
        page.body
    );
    let others = handles(&page);
    assert_eq!(others.len(), 1, "{}", page.body);
    // Neither cookie, nor the session id inside it, is ever in the page.
    for cookie in [&first_cookie, &second_cookie] {
        let id = cookie.split('.').next().expect("id");
        assert!(!page.body.contains(id), "a session id in the page");
        assert!(!page.body.contains(cookie.as_str()), "a cookie in the page");
    }

    let out = post_sign_out(
        &stack,
        &first,
        &[("csrf", &csrf(&page)), ("session", &others[0])],
    )
    .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(
        out.location.as_ref().map(|l| l.path()),
        Some("/oauth2/sessions")
    );
    assert_sent_to_sign_in(&stack, &app_status(&stack, &second).await);
    assert_signed_in_as(&app_status(&stack, &first).await, "alice");
    let after = sessions_page(&stack, &first).await;
    assert!(handles(&after).is_empty(), "{}", after.body);
    let redis = stack.redis.as_ref().expect("redis");
    let second_id = second_cookie.split('.').next().expect("id");
    assert_eq!(
        redis.cli(&["EXISTS", &format!("portcullis:session:{{{second_id}}}")]),
        "0"
    );
}

#[tokio::test]
async fn signing_out_everywhere_else_leaves_only_this_browser() {
    let stack = Stack::traefik();
    let (first, _) = signed_in(&stack, "alice").await;
    let (second, _) = signed_in(&stack, "alice").await;
    let (third, _) = signed_in(&stack, "alice").await;
    let (bob, _) = signed_in(&stack, "bob").await;
    let page = sessions_page(&stack, &third).await;
    assert_eq!(handles(&page).len(), 2, "{}", page.body);
    let out = post_sign_out(
        &stack,
        &third,
        &[("csrf", &csrf(&page)), ("session", "others")],
    )
    .await;
    assert_eq!(out.status, 303, "{}", out.body);
    for gone in [&first, &second] {
        assert_sent_to_sign_in(&stack, &app_status(&stack, gone).await);
    }
    assert_signed_in_as(&app_status(&stack, &third).await, "alice");
    assert_signed_in_as(&app_status(&stack, &bob).await, "bob");
}

#[tokio::test]
async fn a_sign_out_without_the_form_token_is_403() {
    let stack = Stack::traefik();
    let (first, _) = signed_in(&stack, "alice").await;
    let (second, _) = signed_in(&stack, "alice").await;
    let page = sessions_page(&stack, &first).await;
    let handle = &handles(&page)[0];
    for fields in [
        vec![("session", handle.as_str())],
        vec![("csrf", "forged"), ("session", handle.as_str())],
    ] {
        let out = post_sign_out(&stack, &first, &fields).await;
        assert_eq!(out.status, 403, "{fields:?}: {}", out.body);
        assert_signed_in_as(&app_status(&stack, &second).await, "alice");
    }
    // The second browser's own token does not work with the first browser's cookie.
    let theirs = csrf(&sessions_page(&stack, &second).await);
    let out = post_sign_out(&stack, &first, &[("csrf", &theirs), ("session", handle)]).await;
    assert_eq!(out.status, 403, "{}", out.body);
    assert_signed_in_as(&app_status(&stack, &second).await, "alice");
}

#[tokio::test]
async fn bobs_handle_posted_with_alices_session_is_refused() {
    let stack = Stack::traefik();
    let (alice, _) = signed_in(&stack, "alice").await;
    // Alice's page has forms (and so her token) only with another session to sign out.
    let (alice_second, _) = signed_in(&stack, "alice").await;
    let (bob_first, _) = signed_in(&stack, "bob").await;
    let (bob_second, _) = signed_in(&stack, "bob").await;
    let bobs_page = sessions_page(&stack, &bob_first).await;
    let bobs_handle = &handles(&bobs_page)[0];
    let alices_page = sessions_page(&stack, &alice).await;
    let out = post_sign_out(
        &stack,
        &alice,
        &[("csrf", &csrf(&alices_page)), ("session", bobs_handle)],
    )
    .await;
    assert_eq!(out.status, 403, "{}", out.body);
    assert_signed_in_as(&app_status(&stack, &bob_second).await, "bob");
    assert_signed_in_as(&app_status(&stack, &bob_first).await, "bob");
    assert_signed_in_as(&app_status(&stack, &alice).await, "alice");
    assert_signed_in_as(&app_status(&stack, &alice_second).await, "alice");
    // The handle itself is good: from bob's own browser it signs his other one out.
    let out = post_sign_out(
        &stack,
        &bob_first,
        &[("csrf", &csrf(&bobs_page)), ("session", bobs_handle)],
    )
    .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_sent_to_sign_in(&stack, &app_status(&stack, &bob_second).await);
}

/// Writes `seen` as the session's last-seen mark the way portcullis stores it: 8 bytes,
/// little-endian unix seconds. Such bytes hold NULs, which no command-line argument can, so
/// they are built inside Redis by a script.
fn write_last_seen(stack: &Stack, id: &str, seen: u64) {
    let script = "local t = tonumber(ARGV[1]) local s = '' \
                  for i = 1, 8 do s = s .. string.char(t % 256) t = math.floor(t / 256) end \
                  return redis.call('SET', KEYS[1], s, 'EX', 3600)";
    let redis = stack.redis.as_ref().expect("redis");
    let key = format!("portcullis:seen:{{{id}}}");
    let answer = redis.cli(&["EVAL", script, "1", &key, &seen.to_string()]);
    assert_eq!(answer, "OK");
    assert_eq!(redis.cli(&["STRLEN", &key]), "8");
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn a_session_idle_past_the_timeout_is_refused_and_ended() {
    // The test writes last-seen marks into Redis behind portcullis' back, which a cached copy
    // would not know of (an operator announces such edits; see the replicas tests).
    let stack = Stack::start(Options {
        env: &[("SESSION_IDLE_TIMEOUT", "2m"), ("SESSION_CACHE_TTL", "0")],
        ..Options::default()
    });
    let (browser, _) = signed_in(&stack, "alice").await;
    let (other, _) = signed_in(&stack, "bob").await;
    assert_signed_in_as(&app_status(&stack, &browser).await, "alice");
    let redis = stack.redis.as_ref().expect("redis");
    let ids = redis.cli(&["SMEMBERS", "portcullis:user:alice"]);
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids[0];
    let session_key = format!("portcullis:session:{{{id}}}");
    // Checks recorded a mark (in the background: wait for it).
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.cli(&["EXISTS", &format!("portcullis:seen:{{{id}}}")]) != "1" {
        assert!(Instant::now() < deadline, "no last-seen mark was written");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Two minutes and a half: still within the timeout plus the minute a mark stands for.
    write_last_seen(&stack, id, unix_now() - 150);
    assert_signed_in_as(&app_status(&stack, &browser).await, "alice");
    // An hour ago: idle.
    write_last_seen(&stack, id, unix_now() - 3600);
    assert_sent_to_sign_in(&stack, &app_status(&stack, &browser).await);
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.cli(&["EXISTS", &session_key]) != "0" {
        assert!(Instant::now() < deadline, "the idle session was not ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        redis.cli(&["EXISTS", &format!("portcullis:seen:{{{id}}}")]),
        "0"
    );
    // Gone for good, and only alice's: bob was active.
    assert_sent_to_sign_in(&stack, &app_status(&stack, &browser).await);
    assert_signed_in_as(&app_status(&stack, &other).await, "bob");
}
