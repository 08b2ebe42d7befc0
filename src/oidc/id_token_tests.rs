//! ID token verification against tokens signed here, with the test-only keys in testdata/
//! (generated with `openssl genpkey`; they sign nothing but these tests).

use super::*;
use crate::oidc::test_tokens::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::json;

const CLIENT_ID: &str = "portcullis";
const NONCE: &str = "nonce-of-this-login";

fn expected() -> Expected<'static> {
    Expected {
        issuer: ISSUER,
        client_id: CLIENT_ID,
        nonce: NonceRule::Equal(NONCE),
        now: NOW,
    }
}

fn valid_claims() -> Value {
    json!({
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "exp": NOW + 300,
        "iat": NOW,
        "nonce": NONCE,
        "email": "user@example.com",
    })
}

fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value, key: &EncodingKey) -> String {
    sign_with(header(alg, kid, None), claims, key)
}

fn sign_es256(claims: &Value) -> String {
    sign(Algorithm::ES256, Some("ec-1"), claims, &ec_key())
}

fn failure(result: Result<Map<String, Value>, VerifyFailure>) -> String {
    match result {
        Ok(claims) => panic!("accepted: {claims:?}"),
        Err(VerifyFailure::Invalid(reason)) => reason,
        Err(VerifyFailure::UnknownKey) => "unknown key".to_string(),
    }
}

#[test]
fn a_valid_token_is_accepted_with_all_its_claims() {
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa-1", rsa_key()),
        (Algorithm::ES256, "ec-1", ec_key()),
    ] {
        let token = sign(alg, Some(kid), &valid_claims(), &key);
        let claims = verify(&token, &keys(), &expected()).unwrap();
        assert_eq!(Value::Object(claims), valid_claims(), "{alg:?}");
    }
}

#[test]
fn claims_of_unexpected_types_do_not_fail_the_token() {
    let mut claims = valid_claims();
    let odd = json!({
        // AWS Cognito
        "email_verified": "true",
        "phone_number_verified": "yes",
        "name": 42,
        "given_name": ["Ann", "Marie"],
        "preferred_username": 1234,
        "updated_at": "x",
        "address": "1 Main Street",
        "groups": "solo",
        "cognito:groups": ["a", "b"],
        "locale": null,
    });
    for (name, value) in odd.as_object().unwrap() {
        claims[name] = value.clone();
    }
    let verified = verify(&sign_es256(&claims), &keys(), &expected()).unwrap();
    assert_eq!(Value::Object(verified), claims);
}

#[test]
fn claims_are_checked_against_this_login() {
    type Patch = fn(&mut Value);
    let cases: &[(&str, Patch, Option<&str>)] = &[
        ("unchanged", |_| {}, None),
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
        (
            "iss as a list",
            |c| c["iss"] = json!([ISSUER]),
            Some("no iss"),
        ),
        ("no iss", |c| remove(c, "iss"), Some("no iss")),
        ("no sub", |c| remove(c, "sub"), Some("no sub")),
        ("empty sub", |c| c["sub"] = json!(""), Some("no sub")),
        ("numeric sub", |c| c["sub"] = json!(7), Some("no sub")),
        (
            "wrong aud",
            |c| c["aud"] = json!("someone-else"),
            Some("not for client"),
        ),
        (
            "aud list without us",
            |c| c["aud"] = json!(["a", "b"]),
            Some("not for client"),
        ),
        (
            "aud list with us",
            |c| c["aud"] = json!(["other", CLIENT_ID]),
            None,
        ),
        (
            "aud list with a number",
            |c| c["aud"] = json!([CLIENT_ID, 1]),
            Some("non-string"),
        ),
        ("no aud", |c| remove(c, "aud"), Some("no aud")),
        (
            "several audiences, azp is us",
            |c| {
                c["aud"] = json!(["other", CLIENT_ID]);
                c["azp"] = json!(CLIENT_ID);
            },
            None,
        ),
        (
            "several audiences, azp is another party",
            |c| {
                c["aud"] = json!(["other", CLIENT_ID]);
                c["azp"] = json!("other");
            },
            Some("issued to azp"),
        ),
        (
            "several audiences, azp not a string",
            |c| {
                c["aud"] = json!(["other", CLIENT_ID]);
                c["azp"] = json!(1);
            },
            Some("issued to azp"),
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
            "fractional exp",
            |c| c["exp"] = json!(NOW as f64 + 0.5),
            None,
        ),
        ("no exp", |c| remove(c, "exp"), Some("no exp")),
        (
            "exp as a string",
            |c| c["exp"] = json!((NOW + 300).to_string()),
            Some("exp is not a time"),
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
        ("no iat", |c| remove(c, "iat"), Some("no iat")),
        (
            "negative iat",
            |c| c["iat"] = json!(-1),
            Some("iat is not a time"),
        ),
        (
            "wrong nonce",
            |c| c["nonce"] = json!("nonce-of-another-login"),
            Some("not this login's"),
        ),
        (
            "nonce with a suffix",
            |c| c["nonce"] = json!(format!("{NONCE}x")),
            Some("not this login's"),
        ),
        ("no nonce", |c| remove(c, "nonce"), Some("no nonce")),
        (
            "nonce not a string",
            |c| c["nonce"] = json!(7),
            Some("not a string"),
        ),
    ];
    for (name, patch, expected_error) in cases {
        let mut claims = valid_claims();
        patch(&mut claims);
        let result = verify(&sign_es256(&claims), &keys(), &expected());
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
fn an_unknown_kid_asks_for_a_jwks_refetch() {
    let token = sign(
        Algorithm::RS256,
        Some("rotated-away"),
        &valid_claims(),
        &rsa_key(),
    );
    assert_eq!(
        verify(&token, &keys(), &expected()),
        Err(VerifyFailure::UnknownKey)
    );
    // After the refetch, the key is known.
    let jwks = json!({"keys": [jwk(&rsa_key(), Algorithm::RS256, "rotated-away")]});
    assert!(verify(&token, &SigningKeys::from_jwks(&jwks), &expected()).is_ok());
}

#[test]
fn a_key_of_another_type_or_algorithm_does_not_fit() {
    // ES256 under the RSA key's kid: that key cannot verify it.
    let token = sign(Algorithm::ES256, Some("rsa-1"), &valid_claims(), &ec_key());
    assert_eq!(
        verify(&token, &keys(), &expected()),
        Err(VerifyFailure::UnknownKey)
    );
    // The RSA key is published for RS256 only; a PS256 token under it does not fit.
    let token = sign(Algorithm::PS256, Some("rsa-1"), &valid_claims(), &rsa_key());
    assert_eq!(
        verify(&token, &keys(), &expected()),
        Err(VerifyFailure::UnknownKey)
    );
    // The same key without a published alg verifies PS256 too.
    let mut open = jwk(&rsa_key(), Algorithm::RS256, "rsa-1");
    open.as_object_mut().unwrap().remove("alg");
    let jwks = json!({ "keys": [open] });
    assert!(verify(&token, &SigningKeys::from_jwks(&jwks), &expected()).is_ok());
    // An EC key without a published alg still only fits EC algorithms.
    let mut open_ec = jwk(&ec_key(), Algorithm::ES256, "ec-1");
    open_ec.as_object_mut().unwrap().remove("alg");
    let jwks = SigningKeys::from_jwks(&json!({ "keys": [open_ec] }));
    let token = sign(Algorithm::RS256, Some("ec-1"), &valid_claims(), &rsa_key());
    assert_eq!(
        verify(&token, &jwks, &expected()),
        Err(VerifyFailure::UnknownKey)
    );
}

#[test]
fn keys_that_cannot_verify_signatures_are_left_out() {
    let mut encryption = jwk(&rsa_key(), Algorithm::RS256, "enc-1");
    encryption["use"] = json!("enc");
    let jwks = json!({"keys": [
        encryption,
        {"kty": "oct", "kid": "hmac-1", "k": URL_SAFE_NO_PAD.encode("client-secret")},
        {"kty": "unknown", "kid": "x"},
        {"kty": "RSA", "kid": "broken"},
        "not a key",
        jwk(&ec_key(), Algorithm::ES256, "ec-1"),
    ]});
    let keys = SigningKeys::from_jwks(&jwks);
    assert_eq!(keys.len(), 1);
    let token = sign(Algorithm::RS256, Some("enc-1"), &valid_claims(), &rsa_key());
    assert_eq!(
        verify(&token, &keys, &expected()),
        Err(VerifyFailure::UnknownKey)
    );
    assert_eq!(SigningKeys::from_jwks(&json!({})).len(), 0);
    assert_eq!(SigningKeys::from_jwks(&json!({"keys": "x"})).len(), 0);
}

#[test]
fn without_a_kid_exactly_one_key_must_fit() {
    let token = sign(Algorithm::ES256, None, &valid_claims(), &ec_key());
    assert!(verify(&token, &keys(), &expected()).is_ok());

    let token = sign(Algorithm::RS256, None, &valid_claims(), &rsa_key());
    let jwks = json!({"keys": [
        jwk(&rsa_key(), Algorithm::RS256, "rsa-1"),
        jwk(&rsa_key(), Algorithm::RS256, "rsa-2"),
    ]});
    let reason = failure(verify(&token, &SigningKeys::from_jwks(&jwks), &expected()));
    assert!(reason.contains("several"), "{reason}");
}

#[test]
fn symmetric_and_missing_signatures_are_refused() {
    let secret = EncodingKey::from_secret(b"the-client-secret").unwrap();
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = sign(alg, Some("rsa-1"), &valid_claims(), &secret);
        let reason = failure(verify(&token, &keys(), &expected()));
        assert!(reason.contains("is not allowed"), "{alg:?}: {reason}");
    }
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "rsa-1"}),
        json!({"alg": "RS256 ", "kid": "rsa-1"}),
    ] {
        let token = unsigned(&header, &valid_claims(), "");
        let reason = failure(verify(&token, &keys(), &expected()));
        assert!(reason.contains("is not allowed"), "{header}: {reason}");
    }
    let reason = failure(verify(
        &unsigned(&json!({"kid": "rsa-1"}), &valid_claims(), "x"),
        &keys(),
        &expected(),
    ));
    assert!(reason.contains("no alg"), "{reason}");
}

#[test]
fn a_changed_token_does_not_verify() {
    let token = sign_es256(&valid_claims());
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = valid_claims();
    forged["sub"] = json!("admin");
    let forged_payload = URL_SAFE_NO_PAD.encode(forged.to_string());
    parts[1] = &forged_payload;
    let reason = failure(verify(&parts.join("."), &keys(), &expected()));
    assert!(reason.contains("signature does not verify"), "{reason}");

    // The RSA key's signature on a token that names the EC key.
    let rsa_signature = sign(Algorithm::RS256, Some("rsa-1"), &valid_claims(), &rsa_key());
    let header = json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"});
    let signature = rsa_signature.rsplit('.').next().unwrap();
    let token = unsigned(&header, &forged, signature);
    let reason = failure(verify(&token, &keys(), &expected()));
    assert!(reason.contains("signature does not verify"), "{reason}");
}

#[test]
fn tokens_that_are_not_signed_jwts_are_refused() {
    let cases: &[(&str, &str)] = &[
        ("", "not a signed JWT"),
        ("abc", "not a signed JWT"),
        ("a.b", "not a signed JWT"),
        ("a.b.c.d", "not a signed JWT"),
        ("a.b.c.d.e", "encrypted ID tokens"),
        ("!!!.e30.x", "not base64url"),
        // `[]` and `"x"` as headers.
        ("W10.e30.x", "not a JSON object"),
        ("Ing.e30.x", "not a JSON object"),
    ];
    for (token, part) in cases {
        let reason = failure(verify(token, &keys(), &expected()));
        assert!(reason.contains(part), "{token:?}: {reason}");
    }
    let reason = failure(verify(
        &unsigned(&json!({"alg": "RS256", "kid": 1}), &valid_claims(), "x"),
        &keys(),
        &expected(),
    ));
    assert!(reason.contains("kid is not a string"), "{reason}");
}

#[test]
fn a_refreshed_id_token_may_leave_the_nonce_out_but_not_change_it() {
    let other = json!("nonce-of-another-login");
    let cases = [
        // (rule, the token's nonce, accepted)
        (NonceRule::Equal(NONCE), Some(json!(NONCE)), true),
        (NonceRule::Equal(NONCE), None, false),
        (NonceRule::Equal(NONCE), Some(other.clone()), false),
        (NonceRule::AbsentOrEqual(Some(NONCE)), None, true),
        (
            NonceRule::AbsentOrEqual(Some(NONCE)),
            Some(json!(NONCE)),
            true,
        ),
        (
            NonceRule::AbsentOrEqual(Some(NONCE)),
            Some(other.clone()),
            false,
        ),
        (NonceRule::AbsentOrEqual(Some(NONCE)), Some(json!(1)), false),
        (NonceRule::AbsentOrEqual(None), None, true),
        (NonceRule::AbsentOrEqual(None), Some(json!(NONCE)), false),
    ];
    for (rule, nonce, accepted) in cases {
        let mut claims = valid_claims();
        match &nonce {
            Some(value) => claims["nonce"] = value.clone(),
            None => remove(&mut claims, "nonce"),
        }
        let expected = Expected {
            nonce: rule,
            ..expected()
        };
        let result = check_claims(claims.as_object().unwrap(), &expected);
        assert_eq!(result.is_ok(), accepted, "{rule:?} {nonce:?}: {result:?}");
    }
}
