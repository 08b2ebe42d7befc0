//! Bearer tokens for API clients (`BEARER_TOKENS`), through real proxies: access tokens the real
//! IdP issues for an API (a machine client's through client_credentials, a user's through the
//! code flow with `resource=`) pass with their claims as the identity; wrong ones are a 401
//! `invalid_token` and never a sign-in redirect; a session cookie wins over a token.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::assertion::verified;
use crate::stack::{seen_headers, signed_in, Options, Stack, StoreKind};
use crate::support::browser::API_ACCEPT;
use crate::support::idp::{ResourceServer, PASSWORD};
use crate::support::{Browser, Hop, ProxyKind};

/// The API the IdP issues JWT access tokens for; its indicator is their `aud`.
const API: &str = "https://api.test/";
const MACHINE_ID: &str = "api-machine";
const MACHINE_SECRET: &str = "api-machine-secret";
/// A browser navigation: what must never turn a refused token into a sign-in.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn resource_server() -> ResourceServer {
    ResourceServer {
        indicator: API.to_string(),
        audience: None,
        machine_client_id: MACHINE_ID.to_string(),
        machine_client_secret: MACHINE_SECRET.to_string(),
        machine_groups: vec!["robots".to_string()],
    }
}

/// The API's audience, and portcullis' own client id: an ID token of this client then has an
/// audience that passes, so only what makes it an ID token can refuse it.
fn bearer_env() -> &'static [(&'static str, &'static str)] {
    &[
        ("BEARER_TOKENS", "true"),
        ("BEARER_AUDIENCES", "https://api.test/,portcullis-test"),
    ]
}

fn bearer_stack(proxy: ProxyKind, store: StoreKind) -> Stack {
    Stack::start(Options {
        proxy,
        store,
        env: bearer_env(),
        resource_server: Some(resource_server()),
        ..Options::default()
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn token_request(stack: &Stack, basic: (&str, &str), form: &[(&str, &str)]) -> Value {
    let response = http()
        .post(stack.idp.token_url())
        .basic_auth(basic.0, Some(basic.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "token endpoint: {status} {body}");
    body
}

/// The machine client's access token for the API (client_credentials).
async fn machine_token(stack: &Stack) -> String {
    let answer = token_request(
        stack,
        (MACHINE_ID, MACHINE_SECRET),
        &[
            ("grant_type", "client_credentials"),
            ("resource", API),
            ("scope", "api:read"),
        ],
    )
    .await;
    answer["access_token"].as_str().unwrap().to_string()
}

/// What a user's code flow with `resource=` gives portcullis' client: the token response (a JWT
/// access token for the API, the ID token of this real login with its nonce, a refresh token).
async fn user_tokens(stack: &Stack, user: &str) -> Value {
    let browser = Browser::new();
    let redirect_uri = format!("{}/oauth2/callback", stack.base());
    let verifier = format!("verifier-{user}-0123456789-0123456789-0123456789");
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut authorize = url::Url::parse(&format!("{}/auth", stack.idp.issuer())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &stack.idp.client_id())
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid profile email groups api:read")
        .append_pair("resource", API)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("nonce", "nonce-of-this-login")
        .append_pair("state", "state-of-this-login");
    // IdP -> its login page -> the form -> back to the authorization -> the callback, which is
    // where this flow stops: the code goes to the token endpoint from here, not to portcullis.
    let mut hop = browser.get(authorize.as_str()).await;
    let mut code = None;
    for _ in 0..8 {
        if hop.status == 200 && hop.body.contains("name=\"password\"") {
            hop = browser
                .submit_form_once(&hop, &[("login", user), ("password", PASSWORD)])
                .await;
            continue;
        }
        let location = hop.location.clone().unwrap_or_else(|| {
            panic!(
                "the IdP stopped at {} {}: {}",
                hop.status, hop.url, hop.body
            )
        });
        if location.as_str().starts_with(&redirect_uri) {
            code = location
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned());
            break;
        }
        hop = browser.get(location.as_str()).await;
    }
    let code = code.expect("a code at the callback");
    token_request(
        stack,
        (&stack.idp.client_id(), &stack.idp.client_secret()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("resource", API),
        ],
    )
    .await
}

/// The payload of a compact JWT, decoded without any check.
fn payload(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// GET `path` through the proxy as an API client would (no cookies) with `Authorization`.
async fn with_token(stack: &Stack, path: &str, token: &str, accept: &str) -> Hop {
    Browser::new()
        .get_with_headers(
            &stack.url(path),
            &[
                ("accept", accept),
                ("authorization", &format!("Bearer {token}")),
            ],
        )
        .await
}

fn assert_refused(hop: &Hop, what: &str) {
    assert_eq!(
        hop.status, 401,
        "{what}: {} {:?} {}",
        hop.status, hop.location, hop.body
    );
    let challenges = hop.header_all("www-authenticate");
    assert_eq!(challenges.len(), 1, "{what}: {challenges:?}");
    let challenge = &challenges[0];
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{what}: WWW-Authenticate {challenge:?}"
    );
    assert!(hop.location.is_none(), "{what}: redirected");
}

/// A token shaped like the IdP's JWT access tokens, signed with its real key: `patch` makes it
/// wrong in one way.
async fn signed(stack: &Stack, patch: impl FnOnce(&mut Value, &mut Value)) -> String {
    let now = now();
    let mut claims = json!({
        "iss": stack.idp.issuer(),
        "sub": "alice",
        "aud": API,
        "client_id": MACHINE_ID,
        "scope": "api:read",
        "jti": format!("jti-{now}"),
        "iat": now,
        "exp": now + 300,
        "groups": ["ops"],
    });
    let mut header = json!({"typ": "at+jwt"});
    patch(&mut claims, &mut header);
    stack.idp.sign(&claims, &header).await
}

async fn api_clients_through(proxy: ProxyKind) {
    let stack = bearer_stack(proxy, StoreKind::Memory);

    // A machine client's token: its id is the user, its groups the token's.
    let machine = machine_token(&stack).await;
    assert_eq!(header_of(&machine)["typ"], "at+jwt");
    let hop = with_token(&stack, "/api/items", &machine, API_ACCEPT).await;
    assert_eq!(hop.status, 200, "{proxy:?} machine token: {}", hop.body);
    let seen = seen_headers(&hop.json());
    assert_eq!(seen["x-auth-request-user"], MACHINE_ID, "{proxy:?}");
    assert_eq!(seen["x-auth-request-groups"], "robots", "{proxy:?}");
    // nginx leaves out the headers whose value is empty.
    assert_eq!(
        seen.get("x-auth-request-email").map_or("", String::as_str),
        "",
        "{proxy:?}"
    );

    // A user's token from a real login with resource=: username, groups and the verified email
    // from the token, as a session would show them.
    let tokens = user_tokens(&stack, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(payload(access)["aud"], API);
    for accept in [API_ACCEPT, BROWSER_ACCEPT] {
        let hop = with_token(&stack, "/api/items", access, accept).await;
        assert_eq!(hop.status, 200, "{proxy:?} alice's token: {}", hop.body);
        let seen = seen_headers(&hop.json());
        assert_eq!(seen["x-auth-request-user"], "alice");
        assert_eq!(seen["remote-user"], "alice");
        assert_eq!(seen["x-auth-request-groups"], "admins,ops");
        assert_eq!(seen["x-auth-request-email"], "alice@example.com");
        assert_eq!(seen["x-auth-request-preferred-username"], "alice");
    }

    // The per-route rule (group ops on /ops/) applies to tokens as to sessions.
    let hop = with_token(&stack, "/ops/", access, API_ACCEPT).await;
    assert_eq!(hop.status, 200, "{proxy:?} alice on /ops/");
    let hop = with_token(&stack, "/ops/", &machine, BROWSER_ACCEPT).await;
    assert_eq!(
        hop.status, 403,
        "{proxy:?} the machine on /ops/: {}",
        hop.body
    );
    assert!(hop.location.is_none());

    // Refused, each with 401 invalid_token, also for a browser navigation.
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    assert!(payload(&id_token).get("nonce").is_some());
    let refreshed = token_request(
        &stack,
        (&stack.idp.client_id(), &stack.idp.client_secret()),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    // Without resource=, the IdP's access token is an opaque one for its userinfo.
    let opaque = refreshed["access_token"].as_str().unwrap().to_string();
    assert_eq!(opaque.split('.').count(), 1, "{opaque}");
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt"}).to_string()),
        access.split('.').nth(1).unwrap()
    );
    let refused = [
        (
            "wrong audience",
            signed(&stack, |c, _| c["aud"] = json!("https://other.test/")).await,
        ),
        (
            "expired",
            signed(&stack, |c, _| {
                c["iat"] = json!(now() - 4000);
                c["exp"] = json!(now() - 3600);
            })
            .await,
        ),
        (
            "wrong issuer",
            signed(&stack, |c, _| {
                c["iss"] = json!("https://idp.elsewhere.test")
            })
            .await,
        ),
        ("alg none", alg_none),
        (
            "unknown kid",
            signed(&stack, |_, h| h["kid"] = json!("rotated-away")).await,
        ),
        ("opaque", opaque),
        ("the ID token of a real login", id_token),
        (
            "an ID token's nonce",
            signed(&stack, |c, h| {
                c["nonce"] = json!("n-1");
                h["typ"] = json!("JWT");
            })
            .await,
        ),
        (
            "a logout token's type",
            signed(&stack, |_, h| h["typ"] = json!("logout+jwt")).await,
        ),
        ("not one token", "two words".to_string()),
    ];
    for (what, token) in &refused {
        for accept in [BROWSER_ACCEPT, API_ACCEPT] {
            let hop = with_token(&stack, "/api/items", token, accept).await;
            assert_refused(&hop, &format!("{proxy:?} {what} ({accept})"));
        }
    }

    // A session cookie wins: a bad token beside it changes nothing.
    let (browser, _cookie) = signed_in(&stack, "bob").await;
    let hop = browser
        .get_with_headers(
            &stack.url("/api/items"),
            &[("authorization", "Bearer not-a-token")],
        )
        .await;
    assert_eq!(hop.status, 200, "{proxy:?} cookie and a bad token");
    assert_eq!(seen_headers(&hop.json())["x-auth-request-user"], "bob");
}

#[tokio::test]
async fn api_clients_through_traefik() {
    api_clients_through(ProxyKind::Traefik).await;
}

#[tokio::test]
async fn api_clients_through_nginx() {
    api_clients_through(ProxyKind::Nginx).await;
}

#[tokio::test]
async fn api_clients_through_caddy() {
    api_clients_through(ProxyKind::Caddy).await;
}

/// Bearer checks never ask the store: with Redis down, a token still passes while a session's
/// check fails closed.
#[tokio::test]
async fn a_store_outage_does_not_matter_to_bearer_tokens() {
    let mut stack = bearer_stack(ProxyKind::Traefik, StoreKind::Redis);
    let (browser, _cookie) = signed_in(&stack, "alice").await;
    let machine = machine_token(&stack).await;
    stack.redis.as_mut().unwrap().stop();
    let hop = with_token(&stack, "/api/items", &machine, API_ACCEPT).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    // A fresh token too: verified now, not answered from the cache.
    let other = machine_token(&stack).await;
    assert_ne!(other, machine);
    assert_eq!(
        with_token(&stack, "/api/items", &other, API_ACCEPT)
            .await
            .status,
        200
    );
    let hop = browser.get(&stack.url("/api/items")).await;
    assert_eq!(hop.status, 503, "the session's check: {}", hop.body);
}

/// Without `BEARER_TOKENS`, the `Authorization` header changes nothing: a valid token is not
/// looked at, and a browser is sent to sign in as always.
#[tokio::test]
async fn without_bearer_tokens_the_authorization_header_is_ignored() {
    let stack = Stack::start(Options {
        store: StoreKind::Memory,
        resource_server: Some(resource_server()),
        ..Options::default()
    });
    let machine = machine_token(&stack).await;
    let hop = with_token(&stack, "/api/items", &machine, API_ACCEPT).await;
    assert_eq!(hop.status, 401, "{}", hop.body);
    assert_eq!(hop.header("www-authenticate"), None);
    let hop = with_token(&stack, "/api/items", &machine, BROWSER_ACCEPT).await;
    assert_eq!(hop.status, 302, "{}", hop.body);
}

/// A token signed with a key the IdP rotated to after portcullis loaded its JWKS: fetched on
/// first use, as for ID tokens.
#[tokio::test]
async fn a_rotated_signing_key_is_fetched_for_a_token() {
    let mut stack = bearer_stack(ProxyKind::Traefik, StoreKind::Memory);
    let before = machine_token(&stack).await;
    stack.idp.restart();
    let after = machine_token(&stack).await;
    assert_ne!(header_of(&before)["kid"], header_of(&after)["kid"]);
    let hop = with_token(&stack, "/api/items", &after, API_ACCEPT).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
}

/// With several providers, a token is checked with the keys of the provider its `iss` names,
/// and the identity records that provider; one provider's key never vouches for the other.
#[tokio::test]
async fn each_providers_tokens_are_checked_with_its_own_keys() {
    use crate::providers::{two_provider_env, CORP, PARTNER};
    use crate::support::portcullis::Portcullis;
    use crate::support::{Traefik, Upstream};

    let upstream = Upstream::start();
    let mut portcullis = Portcullis::reserve();
    let proxy = Traefik::start(&portcullis.base_url(), &upstream.url());
    let base = proxy.base_url();
    let corp = crate::support::Idp::start_with_resource(
        &[format!("{base}/oauth2/callback/{CORP}")],
        &[],
        resource_server(),
    );
    let partner = crate::support::Idp::start_with_resource(
        &[format!("{base}/oauth2/callback/{PARTNER}")],
        &[],
        resource_server(),
    );
    let mut env = two_provider_env(&corp, &partner, &base, None);
    for (name, value) in bearer_env() {
        env.insert(name.to_string(), value.to_string());
    }
    portcullis.start(env);

    let get = |token: String| {
        let url = format!("{base}/api/items");
        async move {
            Browser::new()
                .get_with_headers(
                    &url,
                    &[
                        ("accept", API_ACCEPT),
                        ("authorization", &format!("Bearer {token}")),
                    ],
                )
                .await
        }
    };
    for (name, idp) in [(CORP, &corp), (PARTNER, &partner)] {
        let answer = http()
            .post(idp.token_url())
            .basic_auth(MACHINE_ID, Some(MACHINE_SECRET))
            .form(&[("grant_type", "client_credentials"), ("resource", API)])
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        let token = answer["access_token"].as_str().unwrap().to_string();
        let hop = get(token).await;
        assert_eq!(hop.status, 200, "{name}: {}", hop.body);
        let seen = seen_headers(&hop.json());
        assert_eq!(seen["x-auth-request-provider"], name);
        assert_eq!(seen["x-auth-request-user"], MACHINE_ID);
    }
    // partner's key, corp's issuer: checked with corp's keys, which do not have it.
    let now = now();
    let forged = partner
        .sign(
            &json!({"iss": corp.issuer(), "sub": "alice", "aud": API, "iat": now, "exp": now + 300}),
            &json!({"typ": "at+jwt"}),
        )
        .await;
    assert_refused(&get(forged).await, "partner's key for corp's issuer");
    // An issuer neither provider has.
    let stranger = partner
        .sign(
            &json!({"iss": "https://idp.elsewhere.test", "sub": "alice", "aud": API, "iat": now, "exp": now + 300}),
            &json!({"typ": "at+jwt"}),
        )
        .await;
    assert_refused(&get(stranger).await, "an unknown issuer");
}

/// With `UPSTREAM_JWT`, an API client's answer carries the signed assertion too: npm `jose`
/// verifies it with the JWKS the proxy serves, it names the token's user and groups, the same
/// token gets the same assertion again, and another token (alice's) gets its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_client_gets_the_signed_assertion_of_its_token() {
    let mut env = bearer_env().to_vec();
    env.push(("UPSTREAM_JWT", "true"));
    let stack = Stack::start(Options {
        proxy: ProxyKind::Nginx,
        store: StoreKind::Memory,
        env: &env,
        resource_server: Some(resource_server()),
        ..Options::default()
    });
    let (site, jwks) = (stack.base(), stack.url("/oauth2/jwks"));
    let assertion_of = |hop: &Hop| {
        assert_eq!(hop.status, 200, "{}", hop.body);
        seen_headers(&hop.json())
            .get("x-auth-request-jwt")
            .cloned()
            .filter(|value| !value.is_empty())
            .expect("the app got an assertion")
    };

    let machine = machine_token(&stack).await;
    let first = assertion_of(&with_token(&stack, "/api/items", &machine, API_ACCEPT).await);
    let seen = verified(&jwks, &first, &site, &site);
    let claims = &seen["payload"];
    assert_eq!(claims["sub"], MACHINE_ID);
    assert_eq!(claims["groups"], json!(["robots"]));
    assert!(claims.get("email").is_none(), "{claims}");
    let again = assertion_of(&with_token(&stack, "/api/other", &machine, API_ACCEPT).await);
    if payload(&again)["iat"].as_u64().unwrap()
        < claims["iat"].as_u64().unwrap() + portcullis::assertion::REUSE_SECS
    {
        assert_eq!(again, first, "the same token's assertion is reused");
    }

    let tokens = user_tokens(&stack, "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let alices = assertion_of(&with_token(&stack, "/api/items", access, API_ACCEPT).await);
    assert_ne!(alices, first);
    let seen = verified(&jwks, &alices, &site, &site);
    assert_eq!(seen["payload"]["sub"], "alice");
    assert_eq!(seen["payload"]["email"], "alice@example.com");
    assert_eq!(seen["payload"]["groups"], json!(["admins", "ops"]));
}
