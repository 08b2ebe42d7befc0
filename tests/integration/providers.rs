//! Several identity providers at once (`OIDC_PROVIDERS`, issue #15), with two REAL IdPs: two
//! instances of the test IdP (tests/idp), each on its own port and so with its own issuer, both
//! with the same accounts (alice, bob, ...) and the same `sub`s. portcullis runs with
//! `OIDC_PROVIDERS=corp,partner` behind each real proxy, through the sign-in page, route rules
//! that pin a provider, mix-ups of one provider's response presented at the other's callback,
//! `provider:user` in `ADMINS` and `allowed_users`, back-channel logout by issuer, and the
//! configuration errors of the real binary.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::json;
use url::Url;

use crate::stack::seen_headers;
use crate::support::browser::{describe, Hop, API_ACCEPT, MAX_HOPS};
use crate::support::html::decode_entities;
use crate::support::idp::{Extras, PASSWORD};
use crate::support::portcullis::{test_env, Portcullis, COOKIE_NAME, COOKIE_SECRET};
use crate::support::process::run_with_timeout;
use crate::support::{
    free_port, Browser, Caddy, Idp, Nginx, Proxy, ProxyKind, RedisServer, Traefik, Upstream,
};

pub const CORP: &str = "corp";
pub const PARTNER: &str = "partner";
pub const CORP_DISPLAY: &str = "Corp SSO";
/// With an `&`, which the page must escape and a browser must show as written.
pub const PARTNER_DISPLAY: &str = "Partner & Co.";
pub const SIGN_IN_TITLE: &str = "Example Intranet";
/// The rule the derived proxy configurations put on the examples' `/ops/` route.
const PINNED_TO_CORP: &str = "provider=corp";
const MIX_UP: &str = "The sign-in response came from an unexpected identity provider.";

/// The provider variables `test_env` sets unprefixed: with `OIDC_PROVIDERS` each must go.
const UNPREFIXED_PROVIDER_VARS: &[&str] = &[
    "OIDC_ISSUER_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_CLIENT_SECRET_FILE",
    "OIDC_SCOPES",
    "OIDC_USERNAME_CLAIM",
    "OIDC_GROUPS_CLAIM",
    "OIDC_TOKEN_AUTH_METHOD",
];

/// A whole deployment with two identity providers: echo app, proxy, two IdPs, Redis, portcullis.
pub struct ProviderStack {
    // Field order is drop order: portcullis first, then what it talks to.
    pub portcullis: Portcullis,
    pub proxy: Proxy,
    pub corp: Idp,
    pub partner: Idp,
    /// Held for its lifetime only: portcullis talks to it.
    _redis: RedisServer,
    pub upstream: Upstream,
}

pub struct ProviderOptions<'a> {
    pub proxy: ProxyKind,
    /// The rule on the auth URL of the example's `/ops/` route instead of `require_group=ops`
    /// (a fixture derived from the example, that one rule changed); `None`: the example.
    pub ops_rule: Option<&'a str>,
    pub env: &'a [(&'a str, &'a str)],
    /// More clients at the `corp` IdP (e.g. a `private_key_jwt` one).
    pub corp_extras: Extras,
}

impl Default for ProviderOptions<'_> {
    fn default() -> Self {
        ProviderOptions {
            proxy: ProxyKind::Traefik,
            ops_rule: None,
            env: &[],
            corp_extras: Extras::default(),
        }
    }
}

/// `OIDC_<NAME>_`, as portcullis reads it.
fn prefix(name: &str) -> String {
    format!("OIDC_{}_", name.to_ascii_uppercase().replace('-', "_"))
}

/// `test_env` with its one unnamed provider replaced by `corp` and `partner`: every
/// unprefixed provider variable removed, the prefixed ones and the sign-in page's title set.
pub fn two_provider_env(
    corp: &Idp,
    partner: &Idp,
    public_base: &str,
    redis_url: Option<&str>,
) -> HashMap<String, String> {
    let mut env = test_env(corp, public_base, redis_url);
    for var in UNPREFIXED_PROVIDER_VARS {
        env.remove(*var);
    }
    env.insert("OIDC_PROVIDERS".into(), format!("{CORP},{PARTNER}"));
    for (name, idp, display) in [
        (CORP, corp, CORP_DISPLAY),
        (PARTNER, partner, PARTNER_DISPLAY),
    ] {
        let prefix = prefix(name);
        env.insert(format!("{prefix}ISSUER_URL"), idp.issuer());
        env.insert(format!("{prefix}CLIENT_ID"), idp.client_id());
        env.insert(format!("{prefix}CLIENT_SECRET"), idp.client_secret());
        env.insert(
            format!("{prefix}SCOPES"),
            "openid profile email groups".into(),
        );
        env.insert(format!("{prefix}DISPLAY_NAME"), display.into());
    }
    env.insert("SIGN_IN_TITLE".into(), SIGN_IN_TITLE.into());
    env
}

impl ProviderStack {
    pub fn start(options: ProviderOptions<'_>) -> ProviderStack {
        let upstream = Upstream::start();
        let mut portcullis = Portcullis::reserve();
        let (pc_url, pc_hostport) = (portcullis.base_url(), portcullis.hostport());
        let proxy = match (options.proxy, options.ops_rule) {
            (ProxyKind::Traefik, None) => Traefik::start(&pc_url, &upstream.url()),
            (ProxyKind::Traefik, Some(rule)) => {
                Traefik::start_with_ops_rule(&pc_url, &upstream.url(), rule)
            }
            (ProxyKind::Nginx, None) => Nginx::start(&pc_hostport, &upstream.addr()),
            (ProxyKind::Nginx, Some(rule)) => {
                Nginx::start_with_ops_rule(&pc_hostport, &upstream.addr(), rule)
            }
            (ProxyKind::Caddy, None) => Caddy::start(&pc_hostport, &upstream.addr(), false),
            (ProxyKind::Caddy, Some(rule)) => {
                Caddy::start_with_ops_rule(&pc_hostport, &upstream.addr(), rule)
            }
        };
        let base = proxy.base_url();
        let post_logout = [format!("{base}/oauth2/signed_out")];
        // Each IdP knows only its own callback: a response of one can never be sent by the IdP
        // itself to the other's.
        let corp = Idp::start_with_extras(
            &[format!("{base}/oauth2/callback/{CORP}")],
            &post_logout,
            options.corp_extras,
        );
        let partner = Idp::start(&[format!("{base}/oauth2/callback/{PARTNER}")], &post_logout);
        assert_ne!(corp.issuer(), partner.issuer(), "two IdPs, two issuers");
        let redis = RedisServer::start();
        let mut env = two_provider_env(&corp, &partner, &base, Some(&redis.url()));
        for (k, v) in options.env {
            env.insert(k.to_string(), v.to_string());
        }
        portcullis.start(env);
        ProviderStack {
            portcullis,
            proxy,
            corp,
            partner,
            _redis: redis,
            upstream,
        }
    }

    pub fn base(&self) -> String {
        self.proxy.base_url()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base(), path)
    }

    /// portcullis directly, not through the proxy.
    pub fn direct(&self, path: &str) -> String {
        format!("{}{}", self.portcullis.base_url(), path)
    }

    pub fn idp(&self, provider: &str) -> &Idp {
        match provider {
            CORP => &self.corp,
            PARTNER => &self.partner,
            other => panic!("no IdP named {other}"),
        }
    }

    pub fn display_name(provider: &str) -> &'static str {
        match provider {
            CORP => CORP_DISPLAY,
            PARTNER => PARTNER_DISPLAY,
            other => panic!("no IdP named {other}"),
        }
    }
}

fn origin(url: &str) -> String {
    Url::parse(url)
        .unwrap_or_else(|e| panic!("bad URL {url}: {e}"))
        .origin()
        .ascii_serialization()
}

fn is_idp_login_page(hop: &Hop) -> bool {
    hop.status == 200 && hop.body.contains("name=\"password\"")
}

/// One button of the sign-in page: its text and where it leads, entities decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub text: String,
    pub href: String,
}

/// Every `<a class="button" href="...">TEXT</a>` of a page, in order.
pub fn buttons(page: &str) -> Vec<Choice> {
    const OPEN: &str = "<a class=\"button\" href=\"";
    let mut found = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find(OPEN) {
        rest = &rest[at + OPEN.len()..];
        let href_end = rest.find('"').expect("a closed href");
        let href = decode_entities(&rest[..href_end]);
        let text_start = rest.find('>').expect("a closed <a>") + 1;
        let text_end = rest.find("</a>").expect("a closed </a>");
        found.push(Choice {
            text: decode_entities(&rest[text_start..text_end]),
            href,
        });
        rest = &rest[text_end..];
    }
    found
}

/// The query parameters of a URL, in order.
fn params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An anonymous browser navigation to `path` through the proxy: it must end on portcullis'
/// sign-in page (never at an IdP, never at the app), which lists both providers in the order of
/// `OIDC_PROVIDERS`, each leading to `/oauth2/start?provider=NAME&rd=<the page>`.
pub async fn reach_sign_in_page(browser: &Browser, stack: &ProviderStack, path: &str) -> Hop {
    let before = stack.upstream.request_count();
    let hops = browser.follow(&stack.url(path), MAX_HOPS).await;
    let page = hops.last().expect("hops").clone();
    let kind = stack.proxy.kind();
    assert!(
        page.status == 200
            && page.url.path() == "/oauth2/start"
            && origin(page.url.as_str()) == stack.base(),
        "{kind:?}: {path} did not lead to the sign-in page:\n{}",
        describe(&hops)
    );
    assert!(
        hops.iter()
            .all(|hop| origin(hop.url.as_str()) == stack.base()),
        "{kind:?}: the way to the sign-in page left the site:\n{}",
        describe(&hops)
    );
    assert_eq!(
        stack.upstream.request_count(),
        before,
        "{kind:?}: the app saw an anonymous request"
    );
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{kind:?}: the sign-in page's content type: {:?}",
        page.header("content-type")
    );
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(page.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(
        page.body.contains(&format!("<h1>{SIGN_IN_TITLE}</h1>")),
        "{kind:?}: SIGN_IN_TITLE is not the page's heading: {}",
        page.body
    );
    // The display names as the page must write them, escaped.
    assert!(
        page.body.contains("Sign in with Corp SSO</a>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("Sign in with Partner &amp; Co.</a>"),
        "{kind:?}: the display name is not escaped as expected: {}",
        page.body
    );
    let choices = buttons(&page.body);
    let texts: Vec<&str> = choices.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            format!("Sign in with {CORP_DISPLAY}"),
            format!("Sign in with {PARTNER_DISPLAY}")
        ],
        "{kind:?}: the sign-in page's buttons"
    );
    let wanted = stack.url(path);
    for (choice, name) in choices.iter().zip([CORP, PARTNER]) {
        let target = page
            .url
            .join(&choice.href)
            .unwrap_or_else(|e| panic!("bad href {:?}: {e}", choice.href));
        assert_eq!(target.path(), "/oauth2/start", "{choice:?}");
        assert_eq!(
            params(&target),
            [
                ("provider".to_string(), name.to_string()),
                ("rd".to_string(), wanted.clone())
            ],
            "{kind:?}: the button of {name} on the sign-in page of {path}"
        );
    }
    page
}

/// On the sign-in page, follow the button of `provider`: it must lead straight to that IdP's
/// login form (and not the other's). Returns the login form.
pub async fn choose(browser: &Browser, stack: &ProviderStack, page: &Hop, provider: &str) -> Hop {
    let text = format!("Sign in with {}", ProviderStack::display_name(provider));
    let choice = buttons(&page.body)
        .into_iter()
        .find(|c| c.text == text)
        .unwrap_or_else(|| panic!("no button {text:?} on {}", page.body));
    let target = page.url.join(&choice.href).expect("href");
    let hops = browser.follow(target.as_str(), MAX_HOPS).await;
    let login = hops.last().expect("hops").clone();
    assert!(
        is_idp_login_page(&login) && origin(login.url.as_str()) == stack.idp(provider).issuer(),
        "the button {text:?} did not lead to the login form of {provider} ({}):\n{}",
        stack.idp(provider).issuer(),
        describe(&hops)
    );
    // Straight there: the start answered with the IdP's authorization endpoint itself.
    let first = &hops[0];
    assert_eq!(first.status, 302, "{}", describe(&hops));
    let location = first.location.as_ref().expect("location");
    assert_eq!(
        location.origin().ascii_serialization(),
        stack.idp(provider).issuer(),
        "{}",
        describe(&hops)
    );
    assert_eq!(location.path(), "/auth", "{}", describe(&hops));
    login
}

/// The whole sign-in of `user` at `provider` from an anonymous navigation to `path`, through
/// the sign-in page and the real IdP's form. Returns the app's answer (the echo JSON).
pub async fn sign_in_with(
    browser: &Browser,
    stack: &ProviderStack,
    path: &str,
    provider: &str,
    user: &str,
) -> Hop {
    let page = reach_sign_in_page(browser, stack, path).await;
    let login = choose(browser, stack, &page, provider).await;
    let hops = browser.login_at_idp(&login, user, PASSWORD).await;
    let landed = hops.last().expect("hops").clone();
    assert!(
        landed.status == 200
            && !is_idp_login_page(&landed)
            && origin(landed.url.as_str()) == stack.base(),
        "{:?}: {user} at {provider} did not land on the app:\n{}",
        stack.proxy.kind(),
        describe(&hops)
    );
    let callback = format!("/oauth2/callback/{provider}");
    assert!(
        hops.iter()
            .any(|hop| hop.url.path() == callback && origin(hop.url.as_str()) == stack.base()),
        "the sign-in at {provider} did not come back to {callback}:\n{}",
        describe(&hops)
    );
    landed
}

/// The session cookie's value in `browser`.
fn session_cookie(browser: &Browser, stack: &ProviderStack) -> String {
    browser
        .cookie(&stack.base(), COOKIE_NAME)
        .expect("a session cookie")
}

/// portcullis' status-mode check, asked directly as nginx asks it (from loopback, a trusted
/// proxy address): `query` on the auth URL, the page `/app` of the stack, `cookie` the session
/// cookie's value (`None`: no cookie).
async fn direct_auth(stack: &ProviderStack, query: &str, cookie: Option<&str>) -> Hop {
    let mut headers = vec![("X-Original-URL".to_string(), stack.url("/app"))];
    if let Some(cookie) = cookie {
        headers.push(("Cookie".to_string(), format!("{COOKIE_NAME}={cookie}")));
    }
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Browser::new()
        .get_with_headers(&stack.direct(&format!("/oauth2/auth{query}")), &headers)
        .await
}

/// The same check with every cookie `browser` holds for the site.
async fn direct_auth_as(browser: &Browser, stack: &ProviderStack) -> u16 {
    browser
        .get_with_headers(
            &stack.direct("/oauth2/auth"),
            &[("X-Original-URL", &stack.url("/app"))],
        )
        .await
        .status
}

/// What the app received from the proxy after a sign-in, checked for one user and provider.
fn assert_identity(
    kind: ProxyKind,
    echo: &serde_json::Value,
    user: &str,
    provider: &str,
    email: &str,
    groups: &str,
) {
    let headers = seen_headers(echo);
    let who = format!("{kind:?}, {user} at {provider}");
    assert_eq!(headers["x-auth-request-user"], user, "{who}: {echo}");
    assert_eq!(
        headers["x-auth-request-provider"], provider,
        "{who}: {echo}"
    );
    assert_eq!(headers["x-auth-request-email"], email, "{who}: {echo}");
    assert_eq!(headers["x-auth-request-groups"], groups, "{who}: {echo}");
    assert_eq!(headers["remote-user"], user, "{who}: {echo}");
}

/// `/oauth2/userinfo` through the proxy.
async fn userinfo(browser: &Browser, stack: &ProviderStack) -> serde_json::Value {
    let info = browser
        .get_with_accept(&stack.url("/oauth2/userinfo"), API_ACCEPT)
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert!(!info.to_string().contains("eyJ"), "a token leaked: {info}");
    info
}

/// What partner's alice is: the same `sub` as corp's alice, other claims.
async fn make_partner_alice_differ(stack: &ProviderStack) {
    stack
        .partner
        .set_claims(
            "alice",
            json!({
                "email": "alice@partner.example",
                "groups": ["partners"],
                "name": "Alice Partner",
            }),
        )
        .await;
}

async fn two_providers_through(proxy: ProxyKind) {
    let stack = ProviderStack::start(ProviderOptions {
        proxy,
        ops_rule: Some(PINNED_TO_CORP),
        ..ProviderOptions::default()
    });
    make_partner_alice_differ(&stack).await;

    // Anonymous API clients: 401 (or nginx's sign-in redirect), never the app.
    let api = Browser::new()
        .get_with_accept(&stack.url("/"), API_ACCEPT)
        .await;
    assert!(
        api.status == 401 || (proxy == ProxyKind::Nginx && api.status == 302),
        "{proxy:?}: anonymous API request answered {}",
        api.status
    );

    // alice at corp, through the sign-in page and corp's form.
    let corp_alice = Browser::new();
    let landed = sign_in_with(&corp_alice, &stack, "/some/page?x=1&y=a%20b", CORP, "alice").await;
    let echo = landed.json();
    assert_eq!(echo["path"], "/some/page", "{proxy:?}: {echo}");
    assert_eq!(echo["query"], "x=1&y=a%20b", "{proxy:?}: {echo}");
    assert_identity(
        proxy,
        &echo,
        "alice",
        CORP,
        "alice@example.com",
        "admins,ops",
    );
    let info = userinfo(&corp_alice, &stack).await;
    assert_eq!(info["provider"], CORP, "{info}");
    assert_eq!(info["user"], "alice", "{info}");
    assert_eq!(info["email"], "alice@example.com", "{info}");

    // alice at partner: the same sub, partner's claims, partner's name.
    let partner_alice = Browser::new();
    let landed = sign_in_with(&partner_alice, &stack, "/", PARTNER, "alice").await;
    let echo = landed.json();
    assert_eq!(echo["path"], "/", "{proxy:?}: {echo}");
    assert_identity(
        proxy,
        &echo,
        "alice",
        PARTNER,
        "alice@partner.example",
        "partners",
    );
    let info = userinfo(&partner_alice, &stack).await;
    assert_eq!(info["provider"], PARTNER, "{info}");
    assert_eq!(info["user"], "alice", "{info}");
    assert_eq!(info["email"], "alice@partner.example", "{info}");
    assert_eq!(info["groups"], json!(["partners"]), "{info}");

    // A signed-in request that names another provider itself: the app sees portcullis' value.
    let spoofed = partner_alice
        .get_with_headers(&stack.url("/again"), &[("X-Auth-Request-Provider", CORP)])
        .await;
    assert_eq!(spoofed.status, 200);
    assert_eq!(
        seen_headers(&spoofed.json())["x-auth-request-provider"],
        PARTNER,
        "{proxy:?}"
    );

    let corp_cookie = session_cookie(&corp_alice, &stack);
    let partner_cookie = session_cookie(&partner_alice, &stack);
    assert_ne!(corp_cookie, partner_cookie);

    pinned_route_through_the_proxy(&stack, &corp_alice, &partner_alice).await;
    route_rules_asked_directly(&stack, &corp_cookie, &partner_cookie).await;
    pinned_forward_auth_asked_directly(&stack).await;
    mix_up_at_the_other_callback(&stack).await;
    state_of_one_with_the_code_of_the_other(&stack).await;
}

/// The example's `/ops/` route, its rule changed to `provider=corp`.
async fn pinned_route_through_the_proxy(
    stack: &ProviderStack,
    corp_alice: &Browser,
    partner_alice: &Browser,
) {
    let kind = stack.proxy.kind();
    let allowed = corp_alice.get(&stack.url("/ops/report")).await;
    assert_eq!(allowed.status, 200, "{kind:?}: corp's alice on /ops/");
    assert_eq!(
        seen_headers(&allowed.json())["x-auth-request-provider"],
        CORP
    );
    let before = stack.upstream.request_count();
    let denied = partner_alice.get(&stack.url("/ops/report")).await;
    assert_eq!(denied.status, 403, "{kind:?}: partner's alice on /ops/");
    assert_eq!(stack.upstream.request_count(), before, "{kind:?}");
    if kind != ProxyKind::Nginx {
        assert!(
            denied.body.contains("signed in as <strong>alice</strong>"),
            "{kind:?}: {}",
            denied.body
        );
    }

    // An anonymous browser on the pinned route: straight to corp's IdP, no sign-in page.
    let browser = Browser::new();
    let first = browser.get(&stack.url("/ops/report?q=1")).await;
    if kind == ProxyKind::Nginx {
        // nginx's 401 handler sends every route to /oauth2/start?rd=... (it cannot say which
        // auth location refused), and the start then offers every provider: the pinned route
        // only narrows who gets in. The app is not reached either way.
        assert_eq!(first.status, 302, "{kind:?}");
        let location = first.location.as_ref().expect("location");
        assert_eq!(location.path(), "/oauth2/start", "{kind:?}");
        assert_eq!(stack.upstream.request_count(), before, "{kind:?}");
        return;
    }
    assert_eq!(first.status, 302, "{kind:?}: {}", first.body);
    let location = first.location.clone().expect("location");
    assert_eq!(
        location.origin().ascii_serialization(),
        stack.corp.issuer(),
        "{kind:?}: the pinned route did not go straight to corp's IdP: {location}"
    );
    assert_eq!(location.path(), "/auth", "{kind:?}: {location}");
    let redirect_uri = params(&location)
        .into_iter()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v);
    assert_eq!(
        redirect_uri.as_deref(),
        Some(stack.url("/oauth2/callback/corp").as_str()),
        "{kind:?}"
    );
    let hops = browser.follow_from(first, MAX_HOPS).await;
    let login = hops.last().expect("hops").clone();
    assert!(is_idp_login_page(&login), "{}", describe(&hops));
    let hops = browser.login_at_idp(&login, "bob", PASSWORD).await;
    let landed = hops.last().expect("hops");
    assert_eq!(landed.status, 200, "{kind:?}:\n{}", describe(&hops));
    let echo = landed.json();
    assert_eq!(echo["path"], "/ops/report", "{kind:?}: {echo}");
    assert_eq!(echo["query"], "q=1", "{kind:?}: {echo}");
    assert_identity(
        kind,
        &echo,
        "bob",
        CORP,
        "bob@example.com",
        "dev,RT_users,ACME%2C Inc",
    );
}

/// `provider=` and `allowed_users=` on the status-mode auth URL, asked as nginx asks.
async fn route_rules_asked_directly(stack: &ProviderStack, corp: &str, partner: &str) {
    for (query, corp_status, partner_status) in [
        ("", 200, 200),
        ("?provider=corp", 200, 403),
        ("?provider=partner", 403, 200),
        ("?provider=corp,partner", 200, 200),
        ("?allowed_users=partner:alice", 403, 200),
        ("?allowed_users=corp:alice", 200, 403),
        ("?allowed_users=corp:bob,partner:alice", 403, 200),
        // Both rules: each must hold.
        ("?provider=corp&allowed_users=partner:alice", 403, 403),
        // Rules that name what is not configured, or a user without a provider.
        ("?provider=nope", 400, 400),
        ("?allowed_users=alice", 400, 400),
        ("?allowed_users=nope:alice", 400, 400),
    ] {
        for (who, cookie, expected) in [
            ("corp's alice", corp, corp_status),
            ("partner's alice", partner, partner_status),
        ] {
            let answer = direct_auth(stack, query, Some(cookie)).await;
            assert_eq!(
                answer.status, expected,
                "/oauth2/auth{query} for {who}: {}",
                answer.body
            );
            if expected == 200 {
                let provider = if cookie == corp { CORP } else { PARTNER };
                assert_eq!(
                    answer.header("x-auth-request-provider").as_deref(),
                    Some(provider),
                    "/oauth2/auth{query} for {who}"
                );
                assert_eq!(
                    answer.header("x-auth-request-user").as_deref(),
                    Some("alice")
                );
            }
        }
    }
    // Without a session: 401 whatever the rule (status mode never redirects).
    for query in ["", "?provider=corp"] {
        assert_eq!(direct_auth(stack, query, None).await.status, 401, "{query}");
    }
}

/// `/oauth2/forward-auth` asked as Traefik and Caddy ask, for an anonymous browser navigation.
async fn pinned_forward_auth_asked_directly(stack: &ProviderStack) {
    let host = stack.base().trim_start_matches("http://").to_string();
    let check = |query: &'static str| {
        let host = host.clone();
        async move {
            Browser::new()
                .get_with_headers(
                    &stack.direct(&format!("/oauth2/forward-auth{query}")),
                    &[
                        ("X-Forwarded-Proto", "http"),
                        ("X-Forwarded-Host", &host),
                        ("X-Forwarded-Uri", "/docs/a?b=1"),
                        ("X-Forwarded-Method", "GET"),
                    ],
                )
                .await
        }
    };
    let page = stack.url("/docs/a?b=1");
    for (query, provider) in [("?provider=corp", CORP), ("?provider=partner", PARTNER)] {
        let answer = check(query).await;
        assert_eq!(answer.status, 302, "{query}: {}", answer.body);
        let location = answer.location.expect("location");
        assert_eq!(
            location.origin().ascii_serialization(),
            stack.idp(provider).issuer(),
            "forward-auth{query} sent the browser to {location}"
        );
        assert_eq!(location.path(), "/auth");
    }
    // Unpinned, or pinned to both: the sign-in page, on the site, with the page to return to.
    for (query, listed) in [("", None), ("?provider=corp,partner", Some("corp,partner"))] {
        let answer = check(query).await;
        assert_eq!(answer.status, 302, "{query}: {}", answer.body);
        let location = answer.location.expect("location");
        assert_eq!(
            location.origin().ascii_serialization(),
            stack.base(),
            "{query}"
        );
        assert_eq!(location.path(), "/oauth2/start", "{query}");
        let mut expected = Vec::new();
        if let Some(listed) = listed {
            expected.push(("provider".to_string(), listed.to_string()));
        }
        expected.push(("rd".to_string(), page.clone()));
        assert_eq!(params(&location), expected, "{query}");
    }
    let answer = check("?provider=nope").await;
    assert_eq!(answer.status, 400, "{}", answer.body);
}

/// A login at `provider` up to the IdP's redirect back: the callback URL (with `code`, `state`
/// and `iss`), not followed. The login cookie is in `browser`.
async fn callback_url_of(
    browser: &Browser,
    stack: &ProviderStack,
    provider: &str,
    user: &str,
) -> Url {
    let start = stack.url(&format!(
        "/oauth2/start?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("provider", provider)
            .append_pair("rd", &stack.url("/after"))
            .finish()
    ));
    let hops = browser.follow(&start, MAX_HOPS).await;
    let login = hops.last().expect("hops").clone();
    assert!(
        is_idp_login_page(&login) && origin(login.url.as_str()) == stack.idp(provider).issuer(),
        "{}",
        describe(&hops)
    );
    let mut hop = browser
        .submit_form_once(&login, &[("login", user), ("password", PASSWORD)])
        .await;
    for _ in 0..MAX_HOPS {
        let location = hop.location.clone().unwrap_or_else(|| {
            panic!(
                "the IdP stopped at {} {}: {}",
                hop.status, hop.url, hop.body
            )
        });
        if location.path().starts_with("/oauth2/callback") {
            assert_eq!(
                location.as_str().split('?').next(),
                Some(stack.url(&format!("/oauth2/callback/{provider}")).as_str())
            );
            let query = params(&location);
            for name in ["code", "state", "iss"] {
                assert!(
                    query.iter().any(|(k, v)| k == name && !v.is_empty()),
                    "no {name} in {location}"
                );
            }
            assert!(query
                .iter()
                .any(|(k, v)| k == "iss" && *v == stack.idp(provider).issuer()));
            return location;
        }
        hop = browser.get(location.as_str()).await;
    }
    panic!("the IdP never redirected back to portcullis");
}

fn param(url: &Url, name: &str) -> String {
    params(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// `/oauth2/callback/<provider>` through the proxy with these parameters.
fn callback_at(stack: &ProviderStack, provider: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = Url::parse(&stack.url(&format!("/oauth2/callback/{provider}"))).expect("url");
    url.query_pairs_mut().extend_pairs(pairs);
    url.to_string()
}

/// A failed callback: the error page with `message`, status 400, no session cookie set.
async fn assert_callback_fails(browser: &Browser, stack: &ProviderStack, url: &str, message: &str) {
    let kind = stack.proxy.kind();
    let answer = browser.get(url).await;
    assert_eq!(answer.status, 400, "{kind:?}: {url}: {}", answer.body);
    assert!(
        answer.body.contains(message) && answer.body.contains("<h1>Sign-in failed</h1>"),
        "{kind:?}: {url} did not answer the error page with {message:?}: {}",
        answer.body
    );
    let sets_session = answer
        .set_cookies()
        .iter()
        .any(|c| c.starts_with(&format!("{COOKIE_NAME}=")));
    assert!(!sets_session, "{kind:?}: {url} set a session cookie");
    assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_none());
    assert_eq!(
        direct_auth_as(browser, stack).await,
        401,
        "{kind:?}: after {url} the browser is signed in"
    );
}

/// The genuine callback completes its login: proof that what was presented elsewhere was a
/// good code and state, refused only for where it was presented.
async fn assert_callback_completes(
    browser: &Browser,
    stack: &ProviderStack,
    url: &str,
    provider: &str,
) {
    let kind = stack.proxy.kind();
    let answer = browser.get(url).await;
    assert_eq!(answer.status, 302, "{kind:?}: {url}: {}", answer.body);
    assert_eq!(
        answer.location.as_ref().map(Url::as_str),
        Some(stack.url("/after").as_str())
    );
    assert!(browser.cookie(&stack.base(), COOKIE_NAME).is_some());
    let check = browser
        .get_with_headers(
            &stack.direct("/oauth2/auth"),
            &[("X-Original-URL", &stack.url("/app"))],
        )
        .await;
    assert_eq!(check.status, 200, "{kind:?}");
    assert_eq!(
        check.header("x-auth-request-provider").as_deref(),
        Some(provider)
    );
}

/// A login started at corp, its response (code, state, iss) presented at partner's callback.
async fn mix_up_at_the_other_callback(stack: &ProviderStack) {
    let browser = Browser::new();
    let genuine = callback_url_of(&browser, stack, CORP, "alice").await;
    let (code, state, iss) = (
        param(&genuine, "code"),
        param(&genuine, "state"),
        param(&genuine, "iss"),
    );
    // As the IdP sent it, at the other provider's path.
    let moved = callback_at(
        stack,
        PARTNER,
        &[("code", &code), ("state", &state), ("iss", &iss)],
    );
    assert_callback_fails(&browser, stack, &moved, MIX_UP).await;
    // Without the RFC 9207 `iss` (an IdP that does not send it): still the login's provider.
    let moved = callback_at(stack, PARTNER, &[("code", &code), ("state", &state)]);
    assert_callback_fails(&browser, stack, &moved, MIX_UP).await;
    // A callback for a provider that is not configured.
    let nowhere = callback_at(stack, "nope", &[("code", &code), ("state", &state)]);
    assert_callback_fails(&browser, stack, &nowhere, MIX_UP).await;
    // The right one still works: nothing above spent the login.
    assert_callback_completes(&browser, stack, genuine.as_str(), CORP).await;
}

/// One browser with two logins under way: corp's state (its login cookie) with partner's code.
async fn state_of_one_with_the_code_of_the_other(stack: &ProviderStack) {
    let browser = Browser::new();
    let corp = callback_url_of(&browser, stack, CORP, "alice").await;
    let partner = callback_url_of(&browser, stack, PARTNER, "alice").await;
    let corp_state = param(&corp, "state");
    let (partner_code, partner_iss) = (param(&partner, "code"), param(&partner, "iss"));
    assert_ne!(corp_state, param(&partner, "state"));

    // At partner's callback: the login cookie of that state was sent to corp.
    let url = callback_at(
        stack,
        PARTNER,
        &[
            ("code", &partner_code),
            ("state", &corp_state),
            ("iss", &partner_iss),
        ],
    );
    assert_callback_fails(&browser, stack, &url, MIX_UP).await;
    // At corp's callback: partner's iss is not corp's issuer (RFC 9207).
    let url = callback_at(
        stack,
        CORP,
        &[
            ("code", &partner_code),
            ("state", &corp_state),
            ("iss", &partner_iss),
        ],
    );
    assert_callback_fails(&browser, stack, &url, MIX_UP).await;
    // At corp's callback without iss: corp does not know partner's code.
    let url = callback_at(
        stack,
        CORP,
        &[("code", &partner_code), ("state", &corp_state)],
    );
    assert_callback_fails(&browser, stack, &url, "The sign-in could not be verified.").await;
    // Partner's own login is untouched by all of this.
    assert_callback_completes(&browser, stack, partner.as_str(), PARTNER).await;
}

#[tokio::test]
async fn two_providers_through_traefik() {
    two_providers_through(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn two_providers_through_nginx() {
    two_providers_through(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn two_providers_through_caddy() {
    two_providers_through(ProxyKind::Caddy).await;
}

/// `ADMINS=corp:alice` with a `REQUIRE_GROUP` alice does not meet: the same `sub` at the two
/// providers are two users, one an admin, the other not.
async fn same_sub_two_users_through(proxy: ProxyKind) {
    let stack = ProviderStack::start(ProviderOptions {
        proxy,
        env: &[("ADMINS", "corp:alice"), ("REQUIRE_GROUP", "dev")],
        ..ProviderOptions::default()
    });
    // Neither alice is in "dev" or (at corp) "ops": only being an admin lets one in.
    stack
        .corp
        .set_claims("alice", json!({"groups": ["admins"]}))
        .await;

    let corp_alice = Browser::new();
    let landed = sign_in_with(&corp_alice, &stack, "/", CORP, "alice").await;
    assert_identity(
        proxy,
        &landed.json(),
        "alice",
        CORP,
        "alice@example.com",
        "admins",
    );
    // The example's /ops/ (require_group=ops): an admin passes route rules too.
    let ops = corp_alice.get(&stack.url("/ops/")).await;
    assert_eq!(ops.status, 200, "{proxy:?}: corp's alice (admin) on /ops/");
    // Asked directly: an admin skips `allowed_users`, but never which provider a route admits.
    let cookie = session_cookie(&corp_alice, &stack);
    for (query, expected) in [
        ("?allowed_users=partner:bob", 200),
        ("?provider=corp", 200),
        ("?provider=partner", 403),
    ] {
        let answer = direct_auth(&stack, query, Some(&cookie)).await;
        assert_eq!(answer.status, expected, "corp's alice (admin) at {query}");
    }

    // partner's alice (groups admins, ops: still not "dev") is refused at login, no session.
    let partner_alice = Browser::new();
    let page = reach_sign_in_page(&partner_alice, &stack, "/").await;
    let login = choose(&partner_alice, &stack, &page, PARTNER).await;
    let hops = partner_alice.login_at_idp(&login, "alice", PASSWORD).await;
    let last = hops.last().expect("hops");
    assert_eq!(
        last.status,
        403,
        "{proxy:?}: partner's alice at login:\n{}",
        describe(&hops)
    );
    assert_eq!(last.url.path(), "/oauth2/callback/partner");
    assert!(
        last.body.contains("signed in as <strong>alice</strong>")
            || last.body.contains("may not open"),
        "{}",
        last.body
    );
    assert!(partner_alice.cookie(&stack.base(), COOKIE_NAME).is_none());
    assert_eq!(direct_auth_as(&partner_alice, &stack).await, 401);

    // In "dev" at partner she signs in, but as partner's alice: no admin, /ops/ is closed.
    stack
        .partner
        .set_claims("alice", json!({"groups": ["dev"]}))
        .await;
    let partner_alice = Browser::new();
    let landed = sign_in_with(&partner_alice, &stack, "/", PARTNER, "alice").await;
    assert_identity(
        proxy,
        &landed.json(),
        "alice",
        PARTNER,
        "alice@example.com",
        "dev",
    );
    let ops = partner_alice.get(&stack.url("/ops/")).await;
    assert_eq!(ops.status, 403, "{proxy:?}: partner's alice on /ops/");
}

#[tokio::test]
async fn same_sub_two_users_through_traefik() {
    same_sub_two_users_through(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn same_sub_two_users_through_nginx() {
    same_sub_two_users_through(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn same_sub_two_users_through_caddy() {
    same_sub_two_users_through(ProxyKind::Caddy).await;
}

// --- Per-provider group map ------------------------------------------------------------------

/// `OIDC_PARTNER_GROUP_MAP` replaces `GROUP_MAP` for partner's users: in the headers and in
/// `/oauth2/userinfo` (which says "groups after GROUP_MAP"), alike.
#[tokio::test]
async fn a_providers_group_map_applies_to_its_users_in_headers_and_userinfo() {
    let stack = ProviderStack::start(ProviderOptions {
        env: &[
            ("GROUP_MAP", r#"{"ops": "operations"}"#),
            ("OIDC_PARTNER_GROUP_MAP", r#"{"ops": "partner-ops"}"#),
        ],
        ..ProviderOptions::default()
    });
    for (provider, mapped) in [(CORP, "operations"), (PARTNER, "partner-ops")] {
        let browser = Browser::new();
        let landed = sign_in_with(&browser, &stack, "/", provider, "alice").await;
        let groups = format!("admins,{mapped}");
        assert_eq!(
            seen_headers(&landed.json())["x-auth-request-groups"],
            groups,
            "{provider}: the app's groups"
        );
        let info = userinfo(&browser, &stack).await;
        assert_eq!(
            info["groups"],
            json!(["admins", mapped]),
            "{provider}: /oauth2/userinfo's groups differ from the app's {groups}"
        );
    }
}

// --- Back-channel logout ---------------------------------------------------------------------

const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A logout token naming only the subject, as `issuer` would send it.
fn logout_claims(issuer: &str, client_id: &str, sub: &str, jti: &str) -> serde_json::Value {
    let now = unix_now();
    json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now,
        "exp": now + 120,
        "jti": jti,
        "sub": sub,
        "events": {LOGOUT_EVENT: {}},
    })
}

async fn post_logout_token(stack: &ProviderStack, token: &str) -> (u16, String) {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", token)
        .finish();
    let response = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .post(stack.direct("/oauth2/backchannel-logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Back-channel logout finds the provider by the token's `iss`, checks it with that provider's
/// keys, and ends only that provider's sessions of the subject.
#[tokio::test]
async fn backchannel_logout_ends_only_the_issuing_providers_sessions() {
    let stack = ProviderStack::start(ProviderOptions::default());
    let mut sessions = Vec::new();
    for (provider, user) in [(CORP, "alice"), (PARTNER, "alice"), (CORP, "bob")] {
        let browser = Browser::new();
        sign_in_with(&browser, &stack, "/", provider, user).await;
        sessions.push(((provider, user), session_cookie(&browser, &stack)));
    }
    let stack = &stack;
    let status_of = |i: usize| {
        let cookie: String = sessions[i].1.clone();
        async move { direct_auth(stack, "", Some(&cookie)).await.status }
    };

    // Claims naming corp, signed with partner's key: refused, nothing ends.
    let forged = stack
        .partner
        .sign(
            &logout_claims(
                &stack.corp.issuer(),
                &stack.corp.client_id(),
                "alice",
                "jti-1",
            ),
            &json!({}),
        )
        .await;
    let (status, body) = post_logout_token(stack, &forged).await;
    assert_eq!(status, 400, "a token of corp signed by partner: {body}");
    for (i, (who, _)) in sessions.iter().enumerate() {
        assert_eq!(status_of(i).await, 200, "{who:?} after the forged token");
    }

    // corp ends its alice: partner's alice and corp's bob stay.
    let token = stack
        .corp
        .sign(
            &logout_claims(
                &stack.corp.issuer(),
                &stack.corp.client_id(),
                "alice",
                "jti-2",
            ),
            &json!({}),
        )
        .await;
    let (status, body) = post_logout_token(stack, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(status_of(0).await, 401, "corp's alice after corp's logout");
    assert_eq!(
        status_of(1).await,
        200,
        "partner's alice after corp's logout"
    );
    assert_eq!(
        status_of(2).await,
        200,
        "corp's bob after corp's logout of alice"
    );

    // partner ends its alice.
    let token = stack
        .partner
        .sign(
            &logout_claims(
                &stack.partner.issuer(),
                &stack.partner.client_id(),
                "alice",
                "jti-3",
            ),
            &json!({}),
        )
        .await;
    let (status, body) = post_logout_token(stack, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        status_of(1).await,
        401,
        "partner's alice after partner's logout"
    );
    assert_eq!(status_of(2).await, 200, "corp's bob after partner's logout");
}

// --- Configuration errors of the real binary -------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// The binary with exactly `env` (nothing inherited).
fn portcullis_binary(args: &[&str], env: &HashMap<String, String>) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().envs(env);
    run_with_timeout(command, Duration::from_secs(30))
}

fn describe_output(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A valid two-provider environment whose IdPs need not exist (validation comes first).
fn valid_two_provider_env(listen: u16) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("OIDC_PROVIDERS", "corp,partner"),
        ("OIDC_CORP_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CORP_CLIENT_ID", "portcullis"),
        ("OIDC_CORP_CLIENT_SECRET", "secret"),
        ("OIDC_PARTNER_ISSUER_URL", "http://127.0.0.1:10"),
        ("OIDC_PARTNER_CLIENT_ID", "portcullis"),
        ("OIDC_PARTNER_CLIENT_SECRET", "secret"),
        ("OIDC_REDIRECT_URL", "http://127.0.0.1:8080/oauth2/callback"),
        ("COOKIE_SECRET", COOKIE_SECRET),
        ("COOKIE_SECURE", "false"),
        ("SHUTDOWN_DELAY", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{listen}"));
    env
}

/// Each problem, alone and all at once: the binary exits 1 with one message that lists them
/// all, and never listens.
#[test]
fn configuration_errors_of_several_providers_stop_the_binary_with_every_problem_named() {
    let both = (
        ("OIDC_ISSUER_URL", "http://127.0.0.1:11"),
        "OIDC_ISSUER_URL is set together with OIDC_PROVIDERS: set it per provider, as \
         OIDC_<NAME>_ISSUER_URL",
    );
    let typo = (
        ("OIDC_PARTNR_CLIENT_ID", "portcullis"),
        "OIDC_PARTNR_CLIENT_ID is set for a provider named \"partnr\", which OIDC_PROVIDERS \
         does not list: did you mean \"partner\" (OIDC_PARTNER_CLIENT_ID)?",
    );
    let bare_admin = (
        ("ADMINS", "alice"),
        "ADMINS: \"alice\" does not name its provider; with several providers write \
         provider:user, e.g. corp:alice",
    );
    let cases = [
        vec![both],
        vec![typo],
        vec![bare_admin],
        vec![both, typo, bare_admin],
    ];
    for case in cases {
        let listen = free_port();
        let mut env = valid_two_provider_env(listen);
        for ((var, value), _) in &case {
            env.insert(var.to_string(), value.to_string());
        }
        let output = portcullis_binary(&[], &env);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe_output(&output)
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let count = case.len();
        let heading = format!(
            "invalid configuration ({count} problem{}):",
            if count == 1 { "" } else { "s" }
        );
        assert_eq!(
            stderr.matches("invalid configuration").count(),
            1,
            "one message: {}",
            describe_output(&output)
        );
        assert!(stderr.contains(&heading), "{}", describe_output(&output));
        for (_, message) in &case {
            assert!(
                stderr.contains(&format!("  - {message}\n")),
                "stderr lacks the line {message:?}: {}",
                describe_output(&output)
            );
        }
        assert!(!stderr.contains("panicked"), "{}", describe_output(&output));
        assert!(std::net::TcpStream::connect(("127.0.0.1", listen)).is_err());

        // `check` validates the same way.
        let output = portcullis_binary(&["check"], &env);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}",
            describe_output(&output)
        );
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(&heading),
            "{}",
            describe_output(&output)
        );
    }
}

/// The control of the test above: the same environment without the problems is valid, and
/// `check` against two real IdPs names each provider and the callback to register there.
#[test]
fn check_with_two_real_providers_names_each_and_its_callback() {
    let public = "http://app.example.test:8080";
    let corp = Idp::start(&[format!("{public}/oauth2/callback/corp")], &[]);
    let partner = Idp::start(&[format!("{public}/oauth2/callback/partner")], &[]);
    let redis = RedisServer::start();
    let mut env = two_provider_env(&corp, &partner, public, Some(&redis.url()));
    env.insert("ADMINS".into(), "corp:alice,partner:bob".into());
    let output = portcullis_binary(&["check"], &env);
    assert!(output.status.success(), "{}", describe_output(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        format!(
            "identity provider corp ({CORP_DISPLAY}): ok, issuer {}",
            corp.issuer()
        ),
        format!(
            "identity provider partner ({PARTNER_DISPLAY}): ok, issuer {}",
            partner.issuer()
        ),
        format!("Register at {CORP_DISPLAY} (provider corp)"),
        format!("Register at {PARTNER_DISPLAY} (provider partner)"),
        format!("redirect URI:             {public}/oauth2/callback/corp\n"),
        format!("redirect URI:             {public}/oauth2/callback/partner\n"),
        "check passed".to_string(),
    ] {
        assert!(
            stdout.contains(&expected),
            "`check` lacks {expected:?}: {}",
            describe_output(&output)
        );
    }
}
