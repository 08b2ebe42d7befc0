//! Microsoft Entra ID's groups overage, with the real test IdP (its `entra` account's ID token
//! carries the marker and no `groups`), the Graph stand-in (tests/idp/graph.mjs, which pages and
//! checks every access token at the IdP's userinfo), real Traefik and Redis: the groups come
//! from Graph across pages, go through GROUP_MAP and the rules, follow a membership change at
//! revalidation, and a Graph that cannot be reached fails the login without a session. A
//! generic provider does not follow the marker.

use crate::stack::{seen_headers, Options, Stack};
use crate::support::idp::PASSWORD;
use crate::support::portcullis::COOKIE_NAME;
use crate::support::{Browser, Graph};

const ENGINEERING: &str = "5b4f3a1e-0c2d-4e6f-8a9b-000000000001";
const OPERATIONS: &str = "5b4f3a1e-0c2d-4e6f-8a9b-000000000002";
const SUPPORT: &str = "5b4f3a1e-0c2d-4e6f-8a9b-000000000003";
const FINANCE: &str = "5b4f3a1e-0c2d-4e6f-8a9b-000000000004";
/// A group Graph has no displayName for.
const UNNAMED: &str = "5b4f3a1e-0c2d-4e6f-8a9b-000000000005";

/// Five groups: three pages of two.
const PAGE_SIZE: usize = 2;

fn entra_groups() -> serde_json::Value {
    serde_json::json!({
        "entra": [
            {"id": ENGINEERING, "displayName": "Engineering"},
            {"id": OPERATIONS, "displayName": "Operations"},
            {"id": SUPPORT, "displayName": "Support"},
            {"id": FINANCE, "displayName": "Finance"},
            {"id": UNNAMED, "displayName": null},
        ],
    })
}

/// A stack whose provider reads overage groups from the stand-in (`ENTRA_GRAPH_URL`), with
/// `env` on top; `kind` is `OIDC_PROVIDER_KIND` (`None`: unset, so detected: the test IdP's
/// issuer is generic).
fn stack_with_graph(kind: Option<&str>, env: &[(&str, &str)]) -> (Stack, Graph) {
    let mut graph = Graph::reserve();
    let graph_url = graph.url();
    let mut all: Vec<(&str, &str)> = vec![("ENTRA_GRAPH_URL", &graph_url)];
    if let Some(kind) = kind {
        all.push(("OIDC_PROVIDER_KIND", kind));
    }
    all.extend_from_slice(env);
    let stack = Stack::start(Options {
        env: &all,
        ..Options::default()
    });
    graph.start(&stack.idp, entra_groups(), PAGE_SIZE);
    (stack, graph)
}

/// The groups the app saw when `user` signed in through the proxy, and the session cookie.
async fn sign_in(stack: &Stack, user: &str) -> (String, String) {
    let browser = Browser::new();
    let landed = browser
        .sign_in_through(&stack.base(), "/", user, PASSWORD)
        .await;
    let groups = seen_headers(&landed.json())
        .remove("x-auth-request-groups")
        .unwrap_or_default();
    let cookie = browser.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
    (groups, cookie)
}

/// The auth check (status mode) on portcullis directly, with route rules `query`.
async fn check(stack: &Stack, cookie: &str, query: &str) -> (u16, Option<String>) {
    let hop = Browser::new()
        .get_with_headers(
            &stack.direct(&format!("/oauth2/auth{query}")),
            &[
                ("X-Original-URL", &format!("{}/app", stack.base())),
                ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
            ],
        )
        .await;
    (hop.status, hop.header("x-auth-request-groups"))
}

#[tokio::test]
async fn overage_groups_come_from_graph_across_pages_through_group_map_and_the_rules() {
    let group_map =
        format!(r#"{{"{ENGINEERING}": "engineering", "{OPERATIONS}": ["ops", "oncall"]}}"#);
    let (stack, graph) = stack_with_graph(
        Some("entra"),
        &[
            ("SESSION_REFRESH_INTERVAL", "0"),
            ("GROUP_MAP", &group_map),
            // By object id, as Entra's groups are matched before the map.
            ("REQUIRE_GROUP", OPERATIONS),
        ],
    );
    let (groups, cookie) = sign_in(&stack, "entra").await;
    assert_eq!(
        groups,
        format!("engineering,ops,oncall,{SUPPORT},{FINANCE},{UNNAMED}"),
        "graph log:\n{}",
        graph.log_tail(20)
    );
    let counters = graph.counters().await;
    assert_eq!(counters.pages, 3, "five groups, two per page");
    assert_eq!(counters.refused, 0);

    // Route rules decide on the same groups: one the user is in, and one they are not.
    assert_eq!(
        check(&stack, &cookie, &format!("?require_group={FINANCE}"))
            .await
            .0,
        200
    );
    assert_eq!(
        check(&stack, &cookie, "?require_group=GroupMap").await.0,
        200
    );
    assert_eq!(
        check(&stack, &cookie, "?require_group=nobody-has-this")
            .await
            .0,
        403
    );

    // A user without the marker keeps the token's groups, which REQUIRE_GROUP refuses.
    let hops = Browser::new()
        .sign_in_trace(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let last = hops.last().expect("hops");
    assert_eq!(last.status, 403, "alice: {}", last.body);
    assert_eq!(
        graph.counters().await.pages,
        3,
        "Graph is asked only for the overage"
    );
}

#[tokio::test]
async fn entra_group_names_sends_display_names_and_ids_without_one() {
    let (stack, _graph) = stack_with_graph(
        Some("entra"),
        &[
            ("SESSION_REFRESH_INTERVAL", "0"),
            ("ENTRA_GROUP_NAMES", "true"),
            ("GROUP_MAP", r#"{"Operations": "ops"}"#),
            ("REQUIRE_GROUP", "Support"),
        ],
    );
    let (groups, _) = sign_in(&stack, "entra").await;
    assert_eq!(groups, format!("Engineering,ops,Support,Finance,{UNNAMED}"));
}

#[tokio::test]
async fn a_revalidation_reads_a_changed_membership_from_graph() {
    let (stack, mut graph) = stack_with_graph(
        Some("entra"),
        &[
            ("SESSION_REFRESH_INTERVAL", "1s"),
            ("SESSION_REFRESH_GRACE", "1m"),
            ("ENTRA_GROUP_NAMES", "true"),
        ],
    );
    let (groups, cookie) = sign_in(&stack, "entra").await;
    assert_eq!(
        groups,
        format!("Engineering,Operations,Support,Finance,{UNNAMED}")
    );
    graph
        .set_groups(
            "entra",
            serde_json::json!([
                {"id": SUPPORT, "displayName": "Support"},
                {"id": "5b4f3a1e-0c2d-4e6f-8a9b-000000000006", "displayName": "Auditors"},
                {"id": "5b4f3a1e-0c2d-4e6f-8a9b-000000000007", "displayName": "Reviewers"},
            ]),
        )
        .await;
    let mut seen = None;
    for _ in 0..100 {
        let (status, groups) = check(&stack, &cookie, "").await;
        assert_eq!(status, 200, "still signed in while revalidating");
        if groups.as_deref() == Some("Support,Auditors,Reviewers") {
            seen = groups;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen.as_deref(),
        Some("Support,Auditors,Reviewers"),
        "the changed membership never arrived; graph log:\n{}",
        graph.log_tail(20)
    );
    // Each revalidation read every page with the refresh's new access token, which Graph
    // checked at the IdP.
    assert_eq!(graph.counters().await.refused, 0);

    // Graph away at a revalidation: tried again later, the user still signed in on the groups
    // read last (never on none).
    graph.stop();
    stack.idp.reset_counters().await;
    let mut refreshed = false;
    for _ in 0..100 {
        let (status, groups) = check(&stack, &cookie, "").await;
        assert_eq!(status, 200);
        assert_eq!(groups.as_deref(), Some("Support,Auditors,Reviewers"));
        if stack.idp.counters().await.refresh > 0 {
            refreshed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refreshed, "no revalidation was attempted");
    for _ in 0..10 {
        let (status, groups) = check(&stack, &cookie, "").await;
        assert_eq!(
            status, 200,
            "an unreachable Graph does not sign the user out"
        );
        assert_eq!(groups.as_deref(), Some("Support,Auditors,Reviewers"));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn graph_down_at_login_is_the_error_page_and_no_session() {
    let (stack, mut graph) = stack_with_graph(Some("entra"), &[("SESSION_REFRESH_INTERVAL", "0")]);
    graph.stop();
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/", "entra", PASSWORD)
        .await;
    let last = hops.last().expect("hops");
    assert_eq!(last.status, 502, "{}", last.body);
    assert!(
        last.body
            .contains("Your group memberships could not be read from the identity provider"),
        "{}",
        last.body
    );
    assert_eq!(
        browser.cookie(&stack.base(), COOKIE_NAME),
        None,
        "no session cookie"
    );
    // Not signed in: the app is still behind the login.
    let again = browser.get(&stack.url("/app")).await;
    assert!(again.is_redirect(), "{} {}", again.status, again.body);

    // Back, and the same user signs in.
    graph.restart();
    let (groups, _) = sign_in(&stack, "entra").await;
    assert!(groups.contains(ENGINEERING), "{groups}");
}

#[tokio::test]
async fn a_generic_provider_does_not_follow_the_overage_marker() {
    // No OIDC_PROVIDER_KIND: the test IdP's issuer is not Entra's, so the provider is generic.
    let (stack, graph) = stack_with_graph(None, &[("SESSION_REFRESH_INTERVAL", "0")]);
    let (groups, cookie) = sign_in(&stack, "entra").await;
    assert_eq!(groups, "", "no groups: the marker is not a group");
    assert_eq!(
        check(&stack, &cookie, &format!("?require_group={ENGINEERING}"))
            .await
            .0,
        403
    );
    assert_eq!(check(&stack, &cookie, "").await.0, 200);
    assert_eq!(
        graph.counters().await,
        Default::default(),
        "Graph was never asked"
    );
}

#[tokio::test]
async fn portcullis_check_says_where_an_entra_provider_reads_groups() {
    let idp = crate::support::Idp::start(&["http://127.0.0.1:9/oauth2/callback".to_string()], &[]);
    let mut env = crate::support::portcullis::test_env(&idp, "http://127.0.0.1:9", None);
    env.insert("OIDC_PROVIDER_KIND".into(), "entra".into());
    env.insert("ENTRA_GRAPH_URL".into(), "http://127.0.0.1:9/graph".into());
    let config = portcullis::config::Config::from_env_map(env).expect("valid");
    let report = portcullis::preflight::run(config).await;
    assert!(
        report.text.contains(
            "kind entra: a groups overage is read from Microsoft Graph at \
             http://127.0.0.1:9/graph (as object ids)"
        ),
        "{}",
        report.text
    );
}
