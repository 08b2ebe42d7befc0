//! Revalidation at the IdP (SESSION_REFRESH_INTERVAL, SESSION_REFRESH_GRACE) with the real IdP
//! and real Redis: what the IdP changes reaches a signed-in session without a new login (a
//! group removed or added, an account disabled), concurrent checks on two replicas cause one
//! refresh, and an IdP that does not answer is tolerated for the grace, then denies, then lets
//! in again once it answers. Polling loops are bounded; nothing asserts on the wall clock.

use std::time::Duration;

use crate::stack::{Options, Stack};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::{test_env, Portcullis, COOKIE_NAME};
use crate::support::Browser;

/// Enough tries for a refresh to land at any of the intervals below, on a slow machine.
const MAX_POLLS: usize = 100;
const POLL: Duration = Duration::from_millis(100);

fn stack(interval: &str, grace: &str) -> Stack {
    Stack::start(Options {
        env: &[
            ("SESSION_REFRESH_INTERVAL", interval),
            ("SESSION_REFRESH_GRACE", grace),
        ],
        ..Options::default()
    })
}

/// A fresh browser signed in as `user` through the proxy, and its session cookie.
async fn signed_in(stack: &Stack, user: &str) -> String {
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", user, PASSWORD)
        .await;
    browser.cookie(&stack.base(), COOKIE_NAME).expect("cookie")
}

struct Check {
    status: u16,
    groups: Option<String>,
}

/// The auth check (status mode) of one instance, with the auth URL's `query` (route rules).
async fn check(instance: &str, stack: &Stack, cookie: &str, query: &str) -> Check {
    check_at(instance, &stack.base(), cookie, query).await
}

/// [`check`], for an app at `base` (owned values, for spawned checks).
async fn check_at(instance: &str, base: &str, cookie: &str, query: &str) -> Check {
    let hop = Browser::new()
        .get_with_headers(
            &format!("{instance}/oauth2/auth{query}"),
            &[
                ("X-Original-URL", &format!("{base}/app")),
                ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
            ],
        )
        .await;
    Check {
        status: hop.status,
        groups: hop.header("x-auth-request-groups"),
    }
}

/// Checks until `done` says so, at most [`MAX_POLLS`] times; returns how many checks it took.
async fn checks_until(
    stack: &Stack,
    cookie: &str,
    query: &str,
    what: &str,
    done: impl Fn(&Check) -> bool,
) -> usize {
    let instance = stack.portcullis.base_url();
    for n in 1..=MAX_POLLS {
        let answer = check(&instance, stack, cookie, query).await;
        if done(&answer) {
            return n;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{what}: not after {MAX_POLLS} checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_changed_at_the_idp_reach_the_session_without_a_new_login() {
    let stack = stack("1s", "1m");
    let cookie = signed_in(&stack, "alice").await;
    let direct = stack.portcullis.base_url();
    let ops_only = "?require_group=ops";
    assert_eq!(check(&direct, &stack, &cookie, ops_only).await.status, 200);
    let logins = stack.idp.counters().await.authorization_code;

    stack
        .idp
        .set_claims("alice", serde_json::json!({"groups": ["admins"]}))
        .await;
    let removed = std::time::Instant::now();
    let checks = checks_until(&stack, &cookie, ops_only, "ops removed: 403", |c| {
        c.status == 403
    })
    .await;
    // For the README's "how fast" (not asserted: the wall clock is not the test's to judge).
    eprintln!(
        "group removal denied after {checks} checks, {:?} (interval 1s)",
        removed.elapsed()
    );
    // Still signed in, on the IdP's groups of now.
    let answer = check(&direct, &stack, &cookie, "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.groups.as_deref(), Some("admins"));

    stack
        .idp
        .set_claims(
            "alice",
            serde_json::json!({"groups": ["admins", "ops", "reviewers"]}),
        )
        .await;
    checks_until(&stack, &cookie, "", "reviewers added", |c| {
        c.status == 200 && c.groups.as_deref() == Some("admins,ops,reviewers")
    })
    .await;
    assert_eq!(check(&direct, &stack, &cookie, ops_only).await.status, 200);

    let counters = stack.idp.counters().await;
    assert_eq!(counters.authorization_code, logins, "no new login");
    assert!(counters.refresh >= 2, "{counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_is_signed_out_at_its_next_refresh() {
    let stack = stack("1s", "1m");
    let cookie = signed_in(&stack, "bob").await;
    let direct = stack.portcullis.base_url();
    assert_eq!(check(&direct, &stack, &cookie, "").await.status, 200);

    stack.idp.disable("bob").await;
    checks_until(&stack, &cookie, "", "disabled: 401", |c| c.status == 401).await;
    // Ended, not just denied: enabling the account again does not bring the session back.
    stack.idp.enable("bob").await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(check(&direct, &stack, &cookie, "").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_on_two_replicas_cause_one_refresh() {
    let stack = stack("2s", "1m");
    let redis = stack.redis.as_ref().expect("redis");
    let mut env = test_env(&stack.idp, &stack.base(), Some(&redis.url()));
    env.insert("SESSION_REFRESH_INTERVAL".into(), "2s".into());
    env.insert("SESSION_REFRESH_GRACE".into(), "1m".into());
    let mut replica = Portcullis::reserve();
    replica.start(env);

    let cookie = signed_in(&stack, "alice").await;
    stack.idp.reset_counters().await;
    // Until the session is due: the interval, and a little for the second to turn.
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let instances = [stack.portcullis.base_url(), replica.base_url()];
    let mut checks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let (instance, base, cookie) = (instances[n % 2].clone(), stack.base(), cookie.clone());
        checks.spawn(async move { check_at(&instance, &base, &cookie, "").await.status });
    }
    let statuses = checks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // The refresh and its userinfo request land; then nothing more comes.
    for n in 0..=MAX_POLLS {
        let counters = stack.idp.counters().await;
        if counters.refresh >= 1 && counters.userinfo >= 1 {
            break;
        }
        assert!(n < MAX_POLLS, "no refresh: {counters:?}");
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counters = stack.idp.counters().await;
    assert_eq!(counters.refresh, 1, "{counters:?}");
    assert_eq!(counters.userinfo, 1, "{counters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_that_does_not_answer_is_tolerated_for_the_grace_then_denies_until_it_answers() {
    let stack = stack("1s", "3s");
    let cookie = signed_in(&stack, "alice").await;
    let direct = stack.portcullis.base_url();
    // Due: the next check starts a refresh, which the paused IdP holds.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    stack.idp.pause(9_000).await;
    assert_eq!(
        check(&direct, &stack, &cookie, "").await.status,
        200,
        "within the grace"
    );
    checks_until(&stack, &cookie, "", "past the grace: 401", |c| {
        c.status == 401
    })
    .await;
    // The IdP answers what it held: the session passes again, without a new login.
    stack.idp.pause(0).await;
    checks_until(&stack, &cookie, "", "IdP back: 200", |c| c.status == 200).await;
}
