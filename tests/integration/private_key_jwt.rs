//! `private_key_jwt` against the real test IdP (oidc-provider verifies every client assertion):
//! a login with an RSA key and with an EC P-256 key, each against a client registered with its
//! public key, a revalidation by refresh grant, a key the IdP does not know (refused: the error
//! page, no session), and `portcullis check` printing the JWK the IdP has registered. The keys
//! are made for each test by `openssl genpkey`; their registered JWKs come from Node's crypto,
//! not from portcullis.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::Duration;

use crate::providers::{sign_in_with, ProviderOptions, ProviderStack};
use crate::stack::{seen_headers, Options, Stack};
use crate::support::idp::{Extras, JwtClient, PASSWORD};
use crate::support::keys::{KeyKind, TestKey};
use crate::support::portcullis::{test_env, COOKIE_NAME};
use crate::support::process::run_with_timeout;
use crate::support::{Browser, Idp};

const CLIENT_ID: &str = "portcullis-jwt";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const MAX_POLLS: usize = 100;
const POLL: Duration = Duration::from_millis(100);

/// The IdP's client `CLIENT_ID`, registered with `registered`'s public key (and `kid`).
fn jwt_client(registered: &TestKey, kid: Option<&str>) -> Extras {
    Extras {
        private_key_jwt_clients: vec![JwtClient {
            id: CLIENT_ID.to_string(),
            jwks: serde_json::json!({ "keys": [registered.registered_jwk(kid)] }),
            alg: registered.kind.alg().to_string(),
        }],
        ..Extras::default()
    }
}

/// A Traefik stack whose IdP registers `registered` for `CLIENT_ID`, and whose portcullis
/// signs with `used` (and `kid`), without a client secret; then `env`.
fn stack(registered: &TestKey, used: &TestKey, kid: Option<&str>, env: &[(&str, &str)]) -> Stack {
    let key_file = used.path_string();
    let mut all: Vec<(&str, &str)> = vec![
        ("OIDC_CLIENT_ID", CLIENT_ID),
        // Empty is unset: the test environment's secret is taken away.
        ("OIDC_CLIENT_SECRET", ""),
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_PRIVATE_KEY_FILE", &key_file),
    ];
    if let Some(kid) = kid {
        all.push(("OIDC_PRIVATE_KEY_ID", kid));
    }
    all.extend_from_slice(env);
    Stack::start(Options {
        env: &all,
        idp_extras: jwt_client(registered, kid),
        ..Options::default()
    })
}

/// The token endpoint, as the IdP's discovery document names it.
async fn token_endpoint(idp: &Idp) -> String {
    let discovery: serde_json::Value = reqwest::get(idp.discovery_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    discovery["token_endpoint"].as_str().unwrap().to_string()
}

/// The token requests of `grant_type` the IdP recorded.
async fn requests_of(idp: &Idp, grant_type: &str) -> Vec<serde_json::Value> {
    idp.token_requests()
        .await
        .into_iter()
        .filter(|r| r["grant_type"] == grant_type)
        .collect()
}

/// What every accepted token request of ours must be: our client id in the body, no secret in
/// any form, a client assertion for the token endpoint, alive 60 seconds, signed with `alg`.
fn assert_authenticated_by_assertion(
    request: &serde_json::Value,
    token_endpoint: &str,
    alg: &str,
    kid: Option<&str>,
) {
    assert_eq!(request["status"], 200, "{request}");
    assert_eq!(request["client_id"], CLIENT_ID, "{request}");
    assert_eq!(request["authorization_header"], false, "{request}");
    assert_eq!(request["client_secret"], false, "{request}");
    assert_eq!(
        request["client_assertion_type"], ASSERTION_TYPE,
        "{request}"
    );
    let header = &request["client_assertion"]["header"];
    let claims = &request["client_assertion"]["claims"];
    assert_eq!(header["alg"], alg, "{request}");
    assert_eq!(header["typ"], "JWT", "{request}");
    match kid {
        Some(kid) => assert_eq!(header["kid"], kid, "{request}"),
        None => assert!(header.get("kid").is_none(), "{request}"),
    }
    assert_eq!(claims["iss"], CLIENT_ID, "{request}");
    assert_eq!(claims["sub"], CLIENT_ID, "{request}");
    assert_eq!(claims["aud"], token_endpoint, "{request}");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert_eq!(exp - iat, 60, "{request}");
    // 128 bits at least: 22 base64url characters.
    assert!(claims["jti"].as_str().unwrap().len() >= 22, "{request}");
}

async fn login_with(kind: KeyKind, kid: Option<&str>) {
    let key = TestKey::generate(kind);
    let stack = stack(&key, &key, kid, &[]);
    let browser = Browser::new();
    let landed = browser
        .sign_in_through(&stack.base(), "/page", "bob", PASSWORD)
        .await;
    assert_eq!(seen_headers(&landed.json())["x-auth-request-user"], "bob");

    let exchanges = requests_of(&stack.idp, "authorization_code").await;
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_authenticated_by_assertion(
        &exchanges[0],
        &token_endpoint(&stack.idp).await,
        kind.alg(),
        kid,
    );
}

/// With `OIDC_PRIVATE_KEY_CERT_FILE` (the key registered as a certificate, as at Entra ID),
/// every assertion's header carries the certificate's thumbprints as openssl computes them, and
/// the real IdP still accepts it.
#[tokio::test]
async fn a_key_with_its_certificate_sends_the_thumbprints_openssl_computes() {
    let key = TestKey::generate(KeyKind::Rsa);
    let certificate = key.certificate();
    let cert_file = certificate.path.display().to_string();
    let stack = stack(
        &key,
        &key,
        None,
        &[("OIDC_PRIVATE_KEY_CERT_FILE", &cert_file)],
    );
    let landed = Browser::new()
        .sign_in_through(&stack.base(), "/page", "bob", PASSWORD)
        .await;
    assert_eq!(seen_headers(&landed.json())["x-auth-request-user"], "bob");
    let exchanges = requests_of(&stack.idp, "authorization_code").await;
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    let endpoint = token_endpoint(&stack.idp).await;
    assert_authenticated_by_assertion(&exchanges[0], &endpoint, "RS256", None);
    let header = &exchanges[0]["client_assertion"]["header"];
    assert_eq!(header["x5t"], certificate.sha1.as_str(), "{header}");
    assert_eq!(header["x5t#S256"], certificate.sha256.as_str(), "{header}");
}

#[tokio::test]
async fn a_login_with_an_rsa_key_signs_rs256_for_a_client_registered_with_it() {
    login_with(KeyKind::Rsa, Some("portcullis-rsa-1")).await;
}

#[tokio::test]
async fn a_login_with_an_ec_p256_key_signs_es256_for_a_client_registered_with_it() {
    login_with(KeyKind::EcP256, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_by_refresh_grant_signs_a_fresh_assertion_each_time() {
    let key = TestKey::generate(KeyKind::EcP256);
    let stack = stack(
        &key,
        &key,
        Some("ec-1"),
        &[
            ("SESSION_REFRESH_INTERVAL", "1s"),
            ("SESSION_REFRESH_GRACE", "1m"),
        ],
    );
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let cookie = browser.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
    stack
        .idp
        .set_claims("alice", serde_json::json!({"groups": ["reviewers"]}))
        .await;

    // The auth check, until a refresh grant brought the IdP's new groups.
    let mut refreshed = false;
    for _ in 0..MAX_POLLS {
        let hop = Browser::new()
            .get_with_headers(
                &stack.direct("/oauth2/auth"),
                &[
                    ("X-Original-URL", &stack.url("/app")),
                    ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
                ],
            )
            .await;
        assert_eq!(hop.status, 200, "the session must stay signed in");
        if hop.header("x-auth-request-groups").as_deref() == Some("reviewers")
            && requests_of(&stack.idp, "refresh_token").await.len() >= 2
        {
            refreshed = true;
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    assert!(refreshed, "no refresh brought the new groups");

    let endpoint = token_endpoint(&stack.idp).await;
    let refreshes = requests_of(&stack.idp, "refresh_token").await;
    for request in &refreshes {
        assert_authenticated_by_assertion(request, &endpoint, "ES256", Some("ec-1"));
    }
    // A fresh assertion per request: every jti differs (the IdP refuses one it has seen).
    let mut jtis: Vec<String> = requests_of(&stack.idp, "authorization_code")
        .await
        .iter()
        .chain(&refreshes)
        .map(|r| {
            r["client_assertion"]["claims"]["jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let all = jtis.len();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), all, "a jti was used twice: {jtis:?}");
}

#[tokio::test]
async fn a_key_the_idp_has_not_registered_is_refused_and_no_session_is_made() {
    let registered = TestKey::generate(KeyKind::Rsa);
    let other = TestKey::generate(KeyKind::Rsa);
    let stack = stack(&registered, &other, Some("rsa-1"), &[]);
    let browser = Browser::new();
    let hops = browser
        .sign_in_trace(&stack.base(), "/page", "bob", PASSWORD)
        .await;
    let last = hops.last().unwrap();
    assert!(
        last.status >= 400 && last.body.contains("The sign-in could not be verified."),
        "expected the error page, got {} {}: {}",
        last.status,
        last.url,
        last.body
    );
    assert!(
        last.url.as_str().contains("/oauth2/callback"),
        "ended at {}",
        last.url
    );
    assert_eq!(browser.cookie(&stack.base(), COOKIE_NAME), None);
    assert_eq!(stack.upstream.request_count(), 0, "the app saw a request");
    let sessions =
        stack
            .redis
            .as_ref()
            .unwrap()
            .cli(&["--scan", "--pattern", "portcullis:session:*"]);
    assert_eq!(sessions.trim(), "", "a session was stored");

    let exchanges = requests_of(&stack.idp, "authorization_code").await;
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    assert_eq!(exchanges[0]["status"], 401, "{exchanges:?}");
    assert_eq!(exchanges[0]["error"], "invalid_client", "{exchanges:?}");
    assert_eq!(
        exchanges[0]["client_assertion_type"], ASSERTION_TYPE,
        "{exchanges:?}"
    );
}

#[tokio::test]
async fn per_provider_one_signs_with_its_key_while_the_other_keeps_its_secret() {
    let key = TestKey::generate(KeyKind::EcP256);
    let key_file = key.path_string();
    let stack = ProviderStack::start(ProviderOptions {
        env: &[
            ("OIDC_CORP_CLIENT_ID", CLIENT_ID),
            ("OIDC_CORP_CLIENT_SECRET", ""),
            ("OIDC_CORP_TOKEN_AUTH_METHOD", "private_key_jwt"),
            ("OIDC_CORP_PRIVATE_KEY_FILE", &key_file),
            ("OIDC_CORP_PRIVATE_KEY_ID", "corp-ec"),
        ],
        corp_extras: jwt_client(&key, Some("corp-ec")),
        ..ProviderOptions::default()
    });
    let landed = sign_in_with(&Browser::new(), &stack, "/", "corp", "alice").await;
    assert_eq!(
        seen_headers(&landed.json())["x-auth-request-provider"],
        "corp"
    );
    let landed = sign_in_with(&Browser::new(), &stack, "/", "partner", "bob").await;
    assert_eq!(
        seen_headers(&landed.json())["x-auth-request-provider"],
        "partner"
    );

    let corp = requests_of(&stack.corp, "authorization_code").await;
    assert_eq!(corp.len(), 1, "{corp:?}");
    assert_authenticated_by_assertion(
        &corp[0],
        &token_endpoint(&stack.corp).await,
        "ES256",
        Some("corp-ec"),
    );
    // The other provider's exchange: its secret in the Authorization header, no assertion.
    let partner = requests_of(&stack.partner, "authorization_code").await;
    assert_eq!(partner.len(), 1, "{partner:?}");
    assert_eq!(partner[0]["status"], 200, "{partner:?}");
    assert_eq!(partner[0]["authorization_header"], true, "{partner:?}");
    assert_eq!(
        partner[0]["client_assertion"],
        serde_json::Value::Null,
        "{partner:?}"
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

fn portcullis_check(env: &HashMap<String, String>) -> Output {
    let mut command = Command::new(BIN);
    command.arg("check").env_clear().envs(env);
    run_with_timeout(command, Duration::from_secs(30))
}

#[test]
fn check_prints_the_jwk_the_idp_has_registered() {
    for (kind, kid) in [(KeyKind::Rsa, Some("rsa-2026")), (KeyKind::EcP256, None)] {
        let key = TestKey::generate(kind);
        let idp = Idp::start_with_extras(
            &["http://127.0.0.1:8080/oauth2/callback".to_string()],
            &[],
            jwt_client(&key, kid),
        );
        let mut env = test_env(&idp, "http://127.0.0.1:8080", None);
        env.remove("OIDC_CLIENT_SECRET");
        env.insert("OIDC_CLIENT_ID".into(), CLIENT_ID.into());
        env.insert("OIDC_TOKEN_AUTH_METHOD".into(), "private_key_jwt".into());
        env.insert("OIDC_PRIVATE_KEY_FILE".into(), key.path_string());
        if let Some(kid) = kid {
            env.insert("OIDC_PRIVATE_KEY_ID".into(), kid.into());
        }
        let output = portcullis_check(&env);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{kind:?}: {}\n{}",
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("client authentication: private_key_jwt"),
            "{stdout}"
        );
        let jwk_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('{')).collect();
        assert_eq!(jwk_lines.len(), 1, "one JWK line: {stdout}");
        let printed: serde_json::Value = serde_json::from_str(jwk_lines[0]).unwrap();
        assert_eq!(printed, key.registered_jwk(kid), "{kind:?}: {stdout}");
        assert!(
            stdout.contains("register it at the IdP as this client's public key"),
            "{stdout}"
        );
        // Nothing of the private key is printed.
        let pem = std::fs::read_to_string(key.path()).unwrap();
        for line in pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!stdout.contains(line), "key material in {stdout}");
        }
    }
}
