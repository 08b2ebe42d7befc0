//! Access token verification against tokens signed here, with the test-only keys in testdata/
//! (as `id_token_tests.rs`; they sign nothing but tests).

use super::*;
use crate::oidc::test_tokens::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

const API: &str = "https://api.example.com";

fn audiences() -> Vec<String> {
    vec!["other-api".to_string(), API.to_string()]
}

/// What oidc-provider 8 puts in a JWT access token for a resource (RFC 9068), at NOW.
fn valid_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": API,
        "client_id": "api-client",
        "scope": "api:read",
        "jti": "jti-1",
        "iat": NOW,
        "exp": NOW + 300,
        "groups": ["admins", "ops"],
    })
}

fn token_header(alg: Algorithm, kid: &str, typ: Option<&str>) -> Header {
    header(alg, Some(kid), typ)
}

fn sign_rs256(claims: &Value) -> String {
    sign_with(
        token_header(Algorithm::RS256, "rsa-1", Some("at+jwt")),
        claims,
        &rsa_key(),
    )
}

fn check(token: &str, now: u64) -> Result<Map<String, Value>, Failure> {
    let audiences = audiences();
    verify(
        token,
        &keys(),
        &Expected {
            issuer: ISSUER,
            audiences: &audiences,
            now,
        },
    )
}

/// The kind a refusal came to (an unknown key is its own answer).
fn kind(result: Result<Map<String, Value>, Failure>) -> Option<TokenRefusal> {
    match result {
        Ok(_) => None,
        Err(Failure::Refused(refused)) => {
            assert!(!refused.detail.is_empty());
            Some(refused.kind)
        }
        Err(Failure::UnknownKey) => Some(TokenRefusal::Signature),
    }
}

#[test]
fn a_valid_token_gives_all_its_claims() {
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", rsa_key()),
        (Algorithm::ES256, "ec-1", ec_key()),
    ] {
        let token = sign_with(
            token_header(alg, kid, Some("at+jwt")),
            &valid_claims(),
            &key,
        );
        let claims = check(&token, NOW).unwrap();
        assert_eq!(Value::Object(claims), valid_claims(), "{alg:?}");
    }
}

#[test]
fn the_header_type_must_be_an_access_tokens() {
    let cases: &[(Option<&str>, Option<TokenRefusal>)] = &[
        (None, None),
        (Some("at+jwt"), None),
        (Some("AT+JWT"), None),
        (Some("application/at+jwt"), None),
        (Some("JWT"), None),
        (Some("jwt"), None),
        (Some("logout+jwt"), Some(TokenRefusal::NotAccessToken)),
        (Some("id_token+jwt"), Some(TokenRefusal::NotAccessToken)),
        (Some("secevent+jwt"), Some(TokenRefusal::NotAccessToken)),
        (Some(""), Some(TokenRefusal::NotAccessToken)),
    ];
    for (typ, expected) in cases {
        let token = sign_with(
            token_header(Algorithm::RS256, "rsa-1", *typ),
            &valid_claims(),
            &rsa_key(),
        );
        assert_eq!(kind(check(&token, NOW)), *expected, "typ {typ:?}");
    }
    let not_text = unsigned(
        &json!({"alg": "RS256", "kid": "rsa-1", "typ": 1}),
        &valid_claims(),
        "sig",
    );
    assert_eq!(
        kind(check(&not_text, NOW)),
        Some(TokenRefusal::NotAccessToken)
    );
}

#[test]
fn claims_are_checked() {
    type Patch = fn(&mut Value);
    let cases: &[(&str, Patch, Option<TokenRefusal>)] = &[
        ("unchanged", |_| {}, None),
        // ID token markers
        (
            "a nonce",
            |c| c["nonce"] = json!("n-1"),
            Some(TokenRefusal::NotAccessToken),
        ),
        (
            "an empty nonce",
            |c| c["nonce"] = json!(""),
            Some(TokenRefusal::NotAccessToken),
        ),
        (
            "at_hash",
            |c| c["at_hash"] = json!("x"),
            Some(TokenRefusal::NotAccessToken),
        ),
        (
            "c_hash",
            |c| c["c_hash"] = json!("x"),
            Some(TokenRefusal::NotAccessToken),
        ),
        (
            "Keycloak's typ ID",
            |c| c["typ"] = json!("ID"),
            Some(TokenRefusal::NotAccessToken),
        ),
        (
            "Keycloak's typ Bearer",
            |c| c["typ"] = json!("Bearer"),
            None,
        ),
        // What access tokens may carry
        ("auth_time", |c| c["auth_time"] = json!(NOW - 60), None),
        ("azp", |c| c["azp"] = json!("api-client"), None),
        ("sid", |c| c["sid"] = json!("s-1"), None),
        // iss
        (
            "wrong iss",
            |c| c["iss"] = json!("https://evil.example.com"),
            Some(TokenRefusal::Issuer),
        ),
        (
            "iss with a trailing slash",
            |c| c["iss"] = json!(format!("{ISSUER}/")),
            Some(TokenRefusal::Issuer),
        ),
        ("no iss", |c| remove(c, "iss"), Some(TokenRefusal::Issuer)),
        (
            "iss a number",
            |c| c["iss"] = json!(1),
            Some(TokenRefusal::Issuer),
        ),
        // exp, nbf, iat with the skew
        ("no exp", |c| remove(c, "exp"), Some(TokenRefusal::Expired)),
        (
            "exp a string",
            |c| c["exp"] = json!("tomorrow"),
            Some(TokenRefusal::Expired),
        ),
        (
            "expired within the skew",
            |c| c["exp"] = json!(NOW - 119),
            None,
        ),
        (
            "expired at the skew",
            |c| c["exp"] = json!(NOW - 120),
            Some(TokenRefusal::Expired),
        ),
        (
            "expired long ago",
            |c| c["exp"] = json!(NOW - 3600),
            Some(TokenRefusal::Expired),
        ),
        ("nbf now", |c| c["nbf"] = json!(NOW), None),
        ("nbf within the skew", |c| c["nbf"] = json!(NOW + 120), None),
        (
            "nbf past the skew",
            |c| c["nbf"] = json!(NOW + 121),
            Some(TokenRefusal::Expired),
        ),
        (
            "nbf not a time",
            |c| c["nbf"] = json!(true),
            Some(TokenRefusal::Expired),
        ),
        ("no iat", |c| remove(c, "iat"), None),
        (
            "iat in the future",
            |c| c["iat"] = json!(NOW + 121),
            Some(TokenRefusal::Expired),
        ),
        // aud
        (
            "aud another API",
            |c| c["aud"] = json!("https://elsewhere.example.com"),
            Some(TokenRefusal::Audience),
        ),
        (
            "aud a list with ours",
            |c| c["aud"] = json!(["https://elsewhere.example.com", API]),
            None,
        ),
        (
            "aud the other configured audience",
            |c| c["aud"] = json!("other-api"),
            None,
        ),
        (
            "aud a list without ours",
            |c| c["aud"] = json!(["a", "b"]),
            Some(TokenRefusal::Audience),
        ),
        (
            "aud an empty list",
            |c| c["aud"] = json!([]),
            Some(TokenRefusal::Audience),
        ),
        (
            "aud ours with another case",
            |c| c["aud"] = json!(API.to_uppercase()),
            Some(TokenRefusal::Audience),
        ),
        ("no aud", |c| remove(c, "aud"), Some(TokenRefusal::Audience)),
        (
            "aud a number",
            |c| c["aud"] = json!(7),
            Some(TokenRefusal::Audience),
        ),
    ];
    for (name, patch, expected) in cases {
        let mut claims = valid_claims();
        patch(&mut claims);
        // The pure check, and the same through a real signature.
        let audiences = audiences();
        let expected_claims = Expected {
            issuer: ISSUER,
            audiences: &audiences,
            now: NOW,
        };
        let pure = check_claims(claims.as_object().unwrap(), &expected_claims);
        assert_eq!(kind(pure.map(|()| Map::new())), *expected, "{name} (pure)");
        assert_eq!(kind(check(&sign_rs256(&claims), NOW)), *expected, "{name}");
    }
}

#[test]
fn only_asymmetric_signatures_by_the_providers_keys_pass() {
    let claims = valid_claims();
    // alg none, with and without a signature part.
    let none = json!({"alg": "none", "typ": "at+jwt"});
    for signature in ["", "sig"] {
        assert_eq!(
            kind(check(&unsigned(&none, &claims, signature), NOW)),
            Some(TokenRefusal::Signature),
            "alg none, signature {signature:?}"
        );
    }
    // HS256 with the public key's bytes as the secret (the classic confusion attack), or any.
    let hs = sign_with(
        token_header(Algorithm::HS256, "rsa-1", Some("at+jwt")),
        &claims,
        &EncodingKey::from_secret(b"the client secret").unwrap(),
    );
    assert_eq!(kind(check(&hs, NOW)), Some(TokenRefusal::Signature));
    // A kid the provider does not list: the caller may refetch its JWKS.
    let unknown = sign_with(
        token_header(Algorithm::RS256, "rsa-2", Some("at+jwt")),
        &claims,
        &rsa_key(),
    );
    assert_eq!(check(&unknown, NOW), Err(Failure::UnknownKey));
    // The RSA key's kid with the EC key's signature.
    let wrong_key = sign_with(
        token_header(Algorithm::ES256, "rsa-1", Some("at+jwt")),
        &claims,
        &ec_key(),
    );
    assert_eq!(kind(check(&wrong_key, NOW)), Some(TokenRefusal::Signature));
    // A valid token with its claims changed after signing.
    let token = sign_rs256(&claims);
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut altered = claims.clone();
    altered["sub"] = json!("mallory");
    let payload = URL_SAFE_NO_PAD.encode(altered.to_string());
    parts[1] = &payload;
    assert_eq!(
        kind(check(&parts.join("."), NOW)),
        Some(TokenRefusal::Signature)
    );
}

#[test]
fn opaque_and_encrypted_tokens_are_not_jwts() {
    let cases = [
        "",
        "2YotnFZFEjr1zCsicMWpAA",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e",
        // Three parts whose header is not base64url JSON.
        "!!!.e30.sig",
        "WzFd.e30.sig",
    ];
    for token in cases {
        assert_eq!(
            kind(check(token, NOW)),
            Some(TokenRefusal::NotJwt),
            "{token:?}"
        );
    }
}

#[test]
fn descriptions_never_vary_and_names_are_distinct() {
    let names: std::collections::HashSet<&str> =
        TokenRefusal::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), TokenRefusal::ALL.len());
    for kind in TokenRefusal::ALL {
        // The description goes into a quoted header parameter: no quote, no backslash.
        assert!(!kind.description().contains(['"', '\\']), "{kind:?}");
    }
}
