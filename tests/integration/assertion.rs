//! The signed identity assertion (`UPSTREAM_JWT=true`) end to end: a real login at the test
//! IdP through each real proxy, the app's `X-Auth-Request-Jwt` verified with the JWKS the proxy
//! serves from `/oauth2/jwks`, by the npm package `jose` (tests/idp/verify-jwt.mjs), never by
//! portcullis' own code. Forged and expired assertions fail that verification; a rotation
//! lists both keys; one assertion is reused per session and origin, never past a revalidation
//! that changed what it says; without `UPSTREAM_JWT` no proxy lets a client's copy through.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::pkcs8::EncodePrivateKey;
use portcullis::assertion::{self, SigningKey, Subject};
use serde_json::Value;

use crate::stack::{seen_headers, Options, Stack};
use crate::support::idp::PASSWORD;
use crate::support::paths::{repo_file, require_program};
use crate::support::portcullis::COOKIE_NAME;
use crate::support::process::run_with_timeout;
use crate::support::{Browser, ProxyKind};

/// What bob's assertion must say: the test IdP's bob, his groups as `X-Auth-Request-Groups`
/// sends them (`dev,RT_users,ACME%2C Inc`), decoded.
const BOB_GROUPS: [&str; 3] = ["dev", "RT_users", "ACME, Inc"];

/// A fresh P-256 key written as PEM (PKCS#8, or SEC1 as `openssl ec` writes it).
fn write_key(dir: &Path, name: &str, sec1: bool) -> PathBuf {
    let secret = loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
            break secret;
        }
    };
    let pem = if sec1 {
        secret
            .to_sec1_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    } else {
        secret
            .to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
            .unwrap()
            .to_string()
    };
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

fn read_key(path: &Path) -> SigningKey {
    SigningKey::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// jose's verdict on `token` with the JWKS at `jwks` (a URL or a file): the verified header
/// and payload, or jose's error code and message.
fn jose_verify(jwks: &str, token: &str, issuer: &str, audience: &str) -> Result<Value, String> {
    let node = require_program("node", "apt-get install nodejs npm (Node.js 18 or newer)");
    let mut command = Command::new(node);
    command
        .arg(repo_file("tests/idp/verify-jwt.mjs"))
        .args([jwks, token, issuer, audience]);
    let output = run_with_timeout(command, Duration::from_secs(30));
    match output.status.code() {
        Some(0) => Ok(serde_json::from_slice(&output.stdout).unwrap()),
        Some(1) => Err(String::from_utf8_lossy(&output.stderr).trim().to_string()),
        other => panic!(
            "verify-jwt.mjs exited {other:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

pub(crate) fn verified(jwks: &str, token: &str, issuer: &str, audience: &str) -> Value {
    jose_verify(jwks, token, issuer, audience)
        .unwrap_or_else(|err| panic!("jose refused portcullis' assertion: {err}\n{token}"))
}

fn refused(jwks: &str, token: &str, issuer: &str, audience: &str, code: &str) {
    match jose_verify(jwks, token, issuer, audience) {
        Ok(claims) => panic!("jose accepted a bad assertion: {claims}"),
        Err(err) => assert!(err.starts_with(code), "expected {code}, jose said {err}"),
    }
}

/// `token` with its payload replaced by `payload`, the signature kept.
fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let payload = URL_SAFE_NO_PAD.encode(payload.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// `token`'s header and payload (the real `kid` included) signed by another P-256 key.
fn signed_by_another_key(token: &str, dir: &Path) -> String {
    let other = p256::SecretKey::from_pkcs8_pem(
        &std::fs::read_to_string(write_key(dir, "forger.pem", false)).unwrap(),
    );
    use p256::pkcs8::DecodePrivateKey;
    let signing = p256::ecdsa::SigningKey::from(other.unwrap());
    let (input, _) = token.rsplit_once('.').unwrap();
    let signature: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn payload_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The assertion portcullis answers a status-mode check of `page` with, asked directly.
async fn assertion_for(stack: &Stack, cookie: &str, page: &str) -> String {
    let check = Browser::new()
        .get_with_headers(
            &stack.direct("/oauth2/auth"),
            &[
                ("X-Original-URL", page),
                ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
            ],
        )
        .await;
    assert_eq!(check.status, 200, "{}", check.body);
    check.header("x-auth-request-jwt").expect("an assertion")
}

/// Which key signs, per proxy, so that the three runs cover the three ways to have one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeySetup {
    /// Derived from COOKIE_SECRET.
    Derived,
    /// UPSTREAM_JWT_KEY_FILE (SEC1).
    File,
    /// UPSTREAM_JWT_KEY_FILE and UPSTREAM_JWT_PREVIOUS_KEY_FILE (a rotation).
    Rotation,
}

async fn assertion_through(proxy: ProxyKind, keys: KeySetup) {
    let dir = tempfile::tempdir().unwrap();
    let current = write_key(dir.path(), "current.pem", keys == KeySetup::File);
    let previous = write_key(dir.path(), "previous.pem", false);
    let (current_path, previous_path) = (
        current.to_str().unwrap().to_string(),
        previous.to_str().unwrap().to_string(),
    );
    let mut env = vec![("UPSTREAM_JWT", "true")];
    if keys != KeySetup::Derived {
        env.push(("UPSTREAM_JWT_KEY_FILE", current_path.as_str()));
    }
    if keys == KeySetup::Rotation {
        env.push(("UPSTREAM_JWT_PREVIOUS_KEY_FILE", previous_path.as_str()));
    }
    let stack = Stack::start(Options {
        proxy,
        env: &env,
        ..Options::default()
    });
    let site = stack.base();
    // iss: the origin of OIDC_REDIRECT_URL, which the tests put on the proxy.
    let issuer = site.clone();
    let jwks_url = stack.url("/oauth2/jwks");

    // The JWKS, through the proxy, as an app fetches it.
    let jwks_answer = Browser::new().get(&jwks_url).await;
    assert_eq!(jwks_answer.status, 200, "{proxy:?}: {}", jwks_answer.body);
    assert_eq!(
        jwks_answer.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        jwks_answer.header("cache-control").as_deref(),
        Some("max-age=300")
    );
    let jwks = jwks_answer.json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    let expected_kid = match keys {
        KeySetup::Derived => {
            SigningKey::derive(crate::support::portcullis::COOKIE_SECRET.as_bytes())
                .unwrap()
                .kid()
                .to_string()
        }
        _ => read_key(&current).kid().to_string(),
    };
    match keys {
        KeySetup::Rotation => assert_eq!(kids, [expected_kid.as_str(), read_key(&previous).kid()]),
        _ => assert_eq!(kids, [expected_kid.as_str()]),
    }
    for key in jwks["keys"].as_array().unwrap() {
        for (member, value) in [
            ("kty", "EC"),
            ("crv", "P-256"),
            ("alg", "ES256"),
            ("use", "sig"),
        ] {
            assert_eq!(key[member], value, "{proxy:?}: {key}");
        }
        assert!(key.get("d").is_none(), "private key in the JWKS: {key}");
    }

    // A real login; the app receives the assertion, and a client-sent one never reaches it.
    let browser = Browser::new();
    let landed = browser
        .sign_in_through(&site, "/first", "bob", PASSWORD)
        .await;
    let token = seen_headers(&landed.json())
        .get("x-auth-request-jwt")
        .cloned()
        .unwrap_or_else(|| panic!("{proxy:?}: the app got no X-Auth-Request-Jwt"));
    let spoofed = browser
        .get_with_headers(
            &stack.url("/second"),
            &[("X-Auth-Request-Jwt", "forged.by.client")],
        )
        .await;
    let second = seen_headers(&spoofed.json())["x-auth-request-jwt"].clone();
    assert!(
        !second.contains("forged"),
        "{proxy:?}: the client's copy reached the app"
    );

    let seen = verified(&jwks_url, &token, &issuer, &site);
    let (header, claims) = (&seen["header"], &seen["payload"]);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        header["kid"],
        expected_kid.as_str(),
        "signed by the current key"
    );
    assert_eq!(claims["iss"], issuer.as_str());
    assert_eq!(claims["aud"], site.as_str());
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["email"], "bob@example.com");
    assert_eq!(claims["groups"], serde_json::json!(BOB_GROUPS));
    assert!(
        claims.get("provider").is_none(),
        "one unnamed provider: {claims}"
    );
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap(),
        iat + assertion::LIFETIME_SECS
    );
    let jti = claims["jti"].as_str().unwrap();
    assert!(jti.len() >= 22, "{jti}");

    // Reuse: the next request within 30 s carries the same assertion (same jti), and so does a
    // check of the same origin asked directly; another origin gets its own.
    let second_iat = payload_of(&second)["iat"].as_u64().unwrap();
    if second_iat < iat + assertion::REUSE_SECS {
        assert_eq!(second, token, "{proxy:?}: not reused within 30 s");
    }
    let cookie = browser.cookie(&site, COOKIE_NAME).expect("cookie");
    let direct = assertion_for(&stack, &cookie, &format!("{site}/elsewhere")).await;
    if payload_of(&direct)["iat"].as_u64().unwrap() < iat + assertion::REUSE_SECS {
        assert_eq!(payload_of(&direct)["jti"], jti, "same session and origin");
    }
    let other_site = "https://other.example.test:8443";
    let other = assertion_for(&stack, &cookie, &format!("{other_site}/x")).await;
    assert_ne!(payload_of(&other)["jti"], jti);
    let other_claims = verified(&jwks_url, &other, &issuer, other_site);
    assert_eq!(other_claims["payload"]["aud"], other_site);
    refused(
        &jwks_url,
        &other,
        &issuer,
        &site,
        "ERR_JWT_CLAIM_VALIDATION_FAILED",
    );

    // Forged: the payload changed, or another P-256 key's signature under the real kid.
    let mut mallory = claims.clone();
    mallory["sub"] = "mallory".into();
    refused(
        &jwks_url,
        &with_payload(&token, &mallory),
        &issuer,
        &site,
        "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    );
    refused(
        &jwks_url,
        &signed_by_another_key(&token, dir.path()),
        &issuer,
        &site,
        "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
    );

    if keys != KeySetup::Derived {
        // The real key (from the file the test wrote): fresh, it verifies; expired, it fails.
        let key = read_key(&current);
        let subject = Subject {
            username: "bob",
            email: Some("bob@example.com"),
            groups: &BOB_GROUPS,
            provider: None,
        };
        let now = iat;
        let fresh = key
            .sign(&assertion::claims(&issuer, &site, &subject, now, "fresh"))
            .unwrap();
        verified(&jwks_url, &fresh, &issuer, &site);
        let expired = key
            .sign(&assertion::claims(
                &issuer,
                &site,
                &subject,
                now - 600,
                "old",
            ))
            .unwrap();
        refused(&jwks_url, &expired, &issuer, &site, "ERR_JWT_EXPIRED");
    }
    if keys == KeySetup::Rotation {
        // An assertion of the previous key still verifies during the rotation.
        let subject = Subject {
            username: "bob",
            email: None,
            groups: &[],
            provider: None,
        };
        let old = read_key(&previous)
            .sign(&assertion::claims(&issuer, &site, &subject, iat, "before"))
            .unwrap();
        let seen = verified(&jwks_url, &old, &issuer, &site);
        assert_eq!(seen["header"]["kid"], read_key(&previous).kid());
        // A key in neither place does not.
        let stranger = read_key(&write_key(dir.path(), "stranger.pem", false))
            .sign(&assertion::claims(&issuer, &site, &subject, iat, "x"))
            .unwrap();
        refused(
            &jwks_url,
            &stranger,
            &issuer,
            &site,
            "ERR_JWKS_NO_MATCHING_KEY",
        );
    }
}

#[actix_web::test]
async fn traefik_app_gets_an_assertion_that_jose_verifies_during_a_rotation() {
    assertion_through(ProxyKind::Traefik, KeySetup::Rotation).await;
}

#[actix_web::test]
async fn nginx_app_gets_an_assertion_signed_by_the_key_file() {
    assertion_through(ProxyKind::Nginx, KeySetup::File).await;
}

#[actix_web::test]
async fn caddy_app_gets_an_assertion_signed_by_the_derived_key() {
    assertion_through(ProxyKind::Caddy, KeySetup::Derived).await;
}

#[actix_web::test]
async fn without_upstream_jwt_no_proxy_passes_a_client_sent_assertion_and_jwks_is_404() {
    for proxy in [ProxyKind::Traefik, ProxyKind::Nginx, ProxyKind::Caddy] {
        let stack = Stack::start(Options {
            proxy,
            store: crate::stack::StoreKind::Memory,
            ..Options::default()
        });
        let browser = Browser::new();
        browser
            .sign_in_through(&stack.base(), "/", "bob", PASSWORD)
            .await;
        let spoofed = browser
            .get_with_headers(
                &stack.url("/x"),
                &[("X-Auth-Request-Jwt", "forged.by.client")],
            )
            .await;
        assert_eq!(spoofed.status, 200, "{proxy:?}");
        // portcullis sends it empty: Traefik passes it on empty, nginx and Caddy drop it.
        assert_eq!(
            seen_headers(&spoofed.json())
                .get("x-auth-request-jwt")
                .map_or("", String::as_str),
            "",
            "{proxy:?}: {}",
            spoofed.body
        );
        let jwks = Browser::new().get(&stack.url("/oauth2/jwks")).await;
        assert_eq!(jwks.status, 404, "{proxy:?}");
    }
}

#[test]
fn bad_key_files_stop_the_binary_at_startup_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p384 = dir.path().join("p384.pem");
    std::fs::copy(repo_file("src/assertion_testdata/p384-pkcs8.pem"), &p384).unwrap();
    let missing = dir.path().join("missing.pem");
    let mut env: std::collections::HashMap<String, String> = [
        ("OIDC_ISSUER_URL", "http://127.0.0.1:9"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "secret"),
        ("OIDC_REDIRECT_URL", "http://127.0.0.1:9/oauth2/callback"),
        ("COOKIE_SECRET", crate::support::portcullis::COOKIE_SECRET),
        ("UPSTREAM_JWT", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("UPSTREAM_JWT_KEY_FILE".into(), p384.display().to_string());
    env.insert(
        "UPSTREAM_JWT_PREVIOUS_KEY_FILE".into(),
        missing.display().to_string(),
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command.env_clear().envs(&env);
    let output = run_with_timeout(command, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("invalid configuration (2 problems)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "UPSTREAM_JWT_KEY_FILE: the file {} is not a P-256 private key",
            p384.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "UPSTREAM_JWT_PREVIOUS_KEY_FILE: cannot read {}",
            missing.display()
        )),
        "{stderr}"
    );
    let key_text = std::fs::read_to_string(&p384).unwrap();
    let body = key_text.lines().nth(1).unwrap();
    assert!(!stderr.contains(body), "key material in {stderr}");
}

/// Every answer's assertion says the groups its `X-Auth-Request-Groups` says: a revalidation
/// that changes them is never answered with the assertion kept from before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_changed_by_revalidation_are_in_the_next_assertion_at_once() {
    let stack = Stack::start(Options {
        env: &[("UPSTREAM_JWT", "true"), ("SESSION_REFRESH_INTERVAL", "1s")],
        ..Options::default()
    });
    let browser = Browser::new();
    browser
        .sign_in_through(&stack.base(), "/", "alice", PASSWORD)
        .await;
    let cookie = browser.cookie(&stack.base(), COOKIE_NAME).expect("cookie");
    let page = format!("{}/app", stack.base());
    let check = || async {
        let hop = Browser::new()
            .get_with_headers(
                &stack.direct("/oauth2/auth"),
                &[
                    ("X-Original-URL", page.as_str()),
                    ("Cookie", &format!("{COOKIE_NAME}={cookie}")),
                ],
            )
            .await;
        assert_eq!(hop.status, 200, "{}", hop.body);
        let groups = hop.header("x-auth-request-groups").unwrap_or_default();
        let token = hop.header("x-auth-request-jwt").expect("an assertion");
        let signed: Vec<String> = payload_of(&token)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            signed.join(","),
            groups,
            "the assertion and the header disagree"
        );
        (groups, token)
    };
    let (before, first) = check().await;
    assert_eq!(before, "admins,ops");

    stack
        .idp
        .set_claims("alice", serde_json::json!({"groups": ["admins"]}))
        .await;
    let mut changed = None;
    for _ in 0..100 {
        let (groups, token) = check().await;
        if groups == "admins" {
            changed = Some(token);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let changed = changed.expect("the revalidation never changed the groups");
    assert_ne!(payload_of(&changed)["jti"], payload_of(&first)["jti"]);
    let seen = verified(
        &stack.url("/oauth2/jwks"),
        &changed,
        &stack.base(),
        &stack.base(),
    );
    assert_eq!(seen["payload"]["groups"], serde_json::json!(["admins"]));
}
