//! Logout token verification against tokens signed here, with the test-only keys in testdata/
//! (as `id_token_tests.rs`; they sign nothing but tests).

use super::*;
use crate::oidc::test_tokens::*;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;

const CLIENT_ID: &str = "portcullis";
/// MAX_TOKEN_AGE plus the clock skew, in seconds.
const BOUND: u64 = 600 + 120;

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        now: NOW,
    }
}

/// What oidc-provider 8 sends (see tests/idp/README.md), at NOW.
fn valid_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": "jti-1",
        "sid": "idp-session-1",
        "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
    })
}

fn sign(alg: Algorithm, kid: &str, claims: &Value, key: &EncodingKey) -> String {
    sign_with(header(alg, Some(kid), Some("logout+jwt")), claims, key)
}

fn sign_rs256(claims: &Value) -> String {
    sign(Algorithm::RS256, "rsa-1", claims, &rsa_key())
}

fn failure(result: Result<LogoutToken, VerifyFailure>) -> String {
    match result {
        Ok(token) => panic!("accepted: {token:?}"),
        Err(VerifyFailure::Invalid(reason)) => reason,
        Err(VerifyFailure::UnknownKey) => "unknown key".to_string(),
    }
}

#[test]
fn a_valid_token_names_the_sessions_and_its_replay_window() {
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", rsa_key()),
        (Algorithm::ES256, "ec-1", ec_key()),
    ] {
        let token = sign(alg, kid, &valid_claims(), &key);
        assert_eq!(
            verify(&token, &keys(), &expected()),
            Ok(LogoutToken {
                sid: Some("idp-session-1".into()),
                sub: Some("user-1".into()),
                jti: "jti-1".into(),
                // exp + skew - now
                replay_window: Duration::from_secs(120 + 120),
            }),
            "{alg:?}"
        );
    }
}

#[test]
fn claims_are_checked_as_the_spec_says() {
    type Patch = fn(&mut Value);
    let cases: &[(&str, Patch, Option<&str>)] = &[
        ("unchanged", |_| {}, None),
        // iss, aud, iat, exp as for ID tokens
        (
            "wrong iss",
            |c| c["iss"] = json!("https://evil.example.com"),
            Some("issued by"),
        ),
        (
            "iss with a trailing slash",
            |c| c["iss"] = json!(format!("{ISSUER}/")),
            Some("issued by"),
        ),
        ("no iss", |c| remove(c, "iss"), Some("no iss")),
        (
            "wrong aud",
            |c| c["aud"] = json!("someone-else"),
            Some("not for client"),
        ),
        (
            "aud list with us",
            |c| c["aud"] = json!(["other", CLIENT_ID]),
            None,
        ),
        (
            "aud list without us",
            |c| c["aud"] = json!(["a", "b"]),
            Some("not for client"),
        ),
        (
            "aud list with a number",
            |c| c["aud"] = json!([CLIENT_ID, 1]),
            Some("non-string"),
        ),
        ("no aud", |c| remove(c, "aud"), Some("no aud")),
        ("no iat", |c| remove(c, "iat"), Some("no iat")),
        (
            "iat as a string",
            |c| c["iat"] = json!(NOW.to_string()),
            Some("iat is not a time"),
        ),
        (
            "iat in the future beyond the skew",
            |c| c["iat"] = json!(NOW + 121),
            Some("issued in the future"),
        ),
        (
            "iat in the future within the skew",
            |c| c["iat"] = json!(NOW + 120),
            None,
        ),
        (
            "expired beyond the skew",
            |c| c["exp"] = json!(NOW - 121),
            Some("expired"),
        ),
        (
            "expired exactly at the skew",
            |c| c["exp"] = json!(NOW - 120),
            Some("expired"),
        ),
        (
            "expired within the skew",
            |c| c["exp"] = json!(NOW - 100),
            None,
        ),
        (
            "exp as a string",
            |c| c["exp"] = json!((NOW + 60).to_string()),
            Some("exp is not a time"),
        ),
        (
            "exp null",
            |c| c["exp"] = json!(null),
            Some("exp is not a time"),
        ),
        ("no exp", |c| remove(c, "exp"), None),
        (
            "no exp, issued just within the bound",
            |c| {
                remove(c, "exp");
                c["iat"] = json!(NOW - BOUND + 1);
            },
            None,
        ),
        (
            "no exp, issued exactly at the bound",
            |c| {
                remove(c, "exp");
                c["iat"] = json!(NOW - BOUND);
            },
            Some("more than 720 seconds ago"),
        ),
        (
            "a far exp does not lift the age bound",
            |c| {
                c["iat"] = json!(NOW - BOUND - 1);
                c["exp"] = json!(NOW + 86_400);
            },
            Some("more than 720 seconds ago"),
        ),
        // events
        ("no events", |c| remove(c, "events"), Some("no events")),
        (
            "events is a list",
            |c| c["events"] = json!([BACKCHANNEL_LOGOUT_EVENT]),
            Some("events is not a JSON object"),
        ),
        (
            "events is a string",
            |c| c["events"] = json!(BACKCHANNEL_LOGOUT_EVENT),
            Some("events is not a JSON object"),
        ),
        (
            "events without the member",
            |c| c["events"] = json!({"http://schemas.openid.net/event/other": {}}),
            Some("has no"),
        ),
        (
            "the member with a near-miss name",
            |c| c["events"] = json!({format!("{BACKCHANNEL_LOGOUT_EVENT}/"): {}}),
            Some("has no"),
        ),
        (
            "the member is true",
            |c| c["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: true}),
            Some("is not a JSON object"),
        ),
        (
            "the member is a string",
            |c| c["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: "{}"}),
            Some("is not a JSON object"),
        ),
        (
            "the member is null",
            |c| c["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: null}),
            Some("is not a JSON object"),
        ),
        (
            "the member is a non-empty object, and other events",
            |c| {
                c["events"] = json!({
                    BACKCHANNEL_LOGOUT_EVENT: {"reason": "x"},
                    "urn:other": 1,
                })
            },
            None,
        ),
        // nonce
        (
            "a nonce",
            |c| c["nonce"] = json!("n-1"),
            Some("must not contain a nonce"),
        ),
        (
            "an empty nonce",
            |c| c["nonce"] = json!(""),
            Some("must not contain a nonce"),
        ),
        (
            "a null nonce",
            |c| c["nonce"] = json!(null),
            Some("must not contain a nonce"),
        ),
        // jti
        ("no jti", |c| remove(c, "jti"), Some("no jti")),
        ("empty jti", |c| c["jti"] = json!(""), Some("jti is empty")),
        (
            "numeric jti",
            |c| c["jti"] = json!(7),
            Some("jti is not a string"),
        ),
        // sid and sub
        ("sid only", |c| remove(c, "sub"), None),
        ("sub only", |c| remove(c, "sid"), None),
        (
            "neither sid nor sub",
            |c| {
                remove(c, "sid");
                remove(c, "sub");
            },
            Some("neither sid nor sub"),
        ),
        ("empty sid", |c| c["sid"] = json!(""), Some("sid is empty")),
        (
            "numeric sub",
            |c| c["sub"] = json!(42),
            Some("sub is not a string"),
        ),
        (
            "sid as a list",
            |c| c["sid"] = json!(["idp-session-1"]),
            Some("sid is not a string"),
        ),
        (
            "claims it does not know are ignored",
            |c| c["acr"] = json!({"odd": [1, 2]}),
            None,
        ),
    ];
    for (name, patch, expected_error) in cases {
        let mut claims = valid_claims();
        patch(&mut claims);
        // Each case through the whole verification, and through the pure check alone.
        let result = verify(&sign_rs256(&claims), &keys(), &expected());
        let pure = check_claims(claims.as_object().unwrap(), &expected());
        assert_eq!(result, pure, "{name}");
        match expected_error {
            None => assert!(result.is_ok(), "{name}: {result:?}"),
            Some(part) => {
                let reason = failure(result);
                assert!(reason.contains(part), "{name}: {reason}");
            }
        }
    }
}

#[test]
fn the_replay_window_lasts_as_long_as_the_token_is_accepted() {
    let window = |claims: &Value, now: u64| {
        check_claims(claims.as_object().unwrap(), &Expected { now, ..expected() })
            .map(|token| token.replay_window.as_secs())
    };
    // With exp: until exp + skew. A replay at the end of the window is refused anyway.
    let claims = valid_claims();
    assert_eq!(window(&claims, NOW), Ok(240));
    assert_eq!(window(&claims, NOW + 239), Ok(1));
    assert!(window(&claims, NOW + 240).is_err());
    // Without exp: until iat + MAX_TOKEN_AGE + skew.
    let mut no_exp = valid_claims();
    remove(&mut no_exp, "exp");
    assert_eq!(window(&no_exp, NOW), Ok(BOUND));
    assert_eq!(window(&no_exp, NOW + 700), Ok(BOUND - 700));
    assert!(window(&no_exp, NOW + BOUND).is_err());
    // A far exp is cut to the age bound.
    let mut far = valid_claims();
    far["exp"] = json!(NOW + 86_400);
    assert_eq!(window(&far, NOW), Ok(BOUND));
    // Issued a little in the future (skew): the window counts from its iat.
    let mut ahead = no_exp.clone();
    ahead["iat"] = json!(NOW + 100);
    assert_eq!(window(&ahead, NOW), Ok(BOUND + 100));
    // Whatever the claims, every window that is accepted is at least one second.
    for now in [NOW, NOW + 1, NOW + 239] {
        assert!(window(&claims, now).unwrap() >= 1);
    }
}

#[test]
fn signatures_are_checked_as_for_id_tokens() {
    // A valid signature over other claims: the claims were changed after signing.
    let rsa_signature = sign_rs256(&valid_claims());
    let mut forged = valid_claims();
    forged["sub"] = json!("admin");
    let signature = rsa_signature.rsplit('.').next().unwrap();
    let token = unsigned(
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": "logout+jwt"}),
        &forged,
        signature,
    );
    let reason = failure(verify(&token, &keys(), &expected()));
    assert!(reason.contains("signature does not verify"), "{reason}");

    // `none`, and symmetric algorithms (the client secret is no signing key).
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "HS256", "kid": "rsa-1"}),
    ] {
        let token = unsigned(&header, &valid_claims(), "");
        let reason = failure(verify(&token, &keys(), &expected()));
        assert!(reason.contains("is not allowed"), "{header}: {reason}");
    }
    let secret = EncodingKey::from_secret(b"the-client-secret").unwrap();
    let token = sign(Algorithm::HS256, "rsa-1", &valid_claims(), &secret);
    let reason = failure(verify(&token, &keys(), &expected()));
    assert!(reason.contains("is not allowed"), "{reason}");

    // An unknown kid asks the caller for a JWKS refetch, as for ID tokens.
    let token = sign(Algorithm::RS256, "rotated", &valid_claims(), &rsa_key());
    assert_eq!(
        verify(&token, &keys(), &expected()),
        Err(VerifyFailure::UnknownKey)
    );
}

#[test]
fn an_id_token_is_not_a_logout_token() {
    // What the provider signs for a login: same issuer, audience and keys, but a nonce and no
    // events. Each of the two alone refuses it.
    let id_token = json!({
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT_ID, "iat": NOW, "exp": NOW + 300,
        "nonce": "n-1", "sid": "idp-session-1", "jti": "j",
    });
    let reason = failure(verify(&sign_rs256(&id_token), &keys(), &expected()));
    assert!(reason.contains("no events"), "{reason}");
    let mut with_events = id_token.clone();
    with_events["events"] = json!({BACKCHANNEL_LOGOUT_EVENT: {}});
    let reason = failure(verify(&sign_rs256(&with_events), &keys(), &expected()));
    assert!(reason.contains("nonce"), "{reason}");
}

#[test]
fn what_is_not_a_signed_jwt_is_refused() {
    let cases: &[(&str, &str)] = &[
        ("", "not a signed JWT"),
        ("abc", "not a signed JWT"),
        ("a.b", "not a signed JWT"),
        ("a.b.c.d", "not a signed JWT"),
        ("a.b.c.d.e", "encrypted logout tokens"),
        ("!!!.b.c", "not base64url"),
        ("e30.e30.", "no alg"),
    ];
    for (token, part) in cases {
        let reason = failure(verify(token, &keys(), &expected()));
        assert!(reason.contains(part), "{token:?}: {reason}");
    }
}

#[test]
fn discovery_says_whether_back_channel_logout_is_supported() {
    let cases = [
        (json!({}), false, false),
        (
            json!({"backchannel_logout_supported": true, "backchannel_logout_session_supported": true}),
            true,
            true,
        ),
        (json!({"backchannel_logout_supported": true}), true, false),
        (
            json!({"backchannel_logout_supported": "true", "backchannel_logout_session_supported": 1}),
            false,
            false,
        ),
        (json!({"backchannel_logout_supported": false}), false, false),
        (json!([]), false, false),
    ];
    for (document, supported, session_supported) in cases {
        assert_eq!(
            BackchannelSupport::from_discovery(&document),
            BackchannelSupport {
                supported,
                session_supported
            },
            "{document}"
        );
    }
}
