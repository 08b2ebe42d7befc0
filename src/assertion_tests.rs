use jsonwebtoken::{decode, decode_header, jwk::Jwk, Algorithm, DecodingKey, Validation};

use super::*;

const PKCS8: &str = include_str!("assertion_testdata/p256-pkcs8.pem");
const SEC1: &str = include_str!("assertion_testdata/p256-sec1.pem");
const ENCRYPTED: &str = include_str!("assertion_testdata/p256-encrypted.pem");
const PUBLIC: &str = include_str!("assertion_testdata/p256-public.pem");
const P384: &str = include_str!("assertion_testdata/p384-pkcs8.pem");
const RSA: &str = include_str!("oidc/testdata/rsa-test-key.pem");

const ISSUER: &str = "https://auth.example.com";
const APP: &str = "https://app.example.com";

fn subject<'a>(groups: &'a [&'a str]) -> Subject<'a> {
    Subject {
        username: "alice",
        email: Some("alice@example.com"),
        groups,
        provider: None,
    }
}

/// Verified by jsonwebtoken (not our verification code): the JWK we publish as the key.
fn verify(key: &SigningKey, token: &str, audience: &str) -> serde_json::Value {
    let jwk: Jwk = serde_json::from_value(key.public_jwk()).expect("a JWK");
    let decoding = DecodingKey::from_jwk(&jwk).expect("a decoding key");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    validation.validate_exp = false;
    decode::<serde_json::Value>(token, &decoding, &validation)
        .expect("verifies")
        .claims
}

#[test]
fn claims_say_who_for_whom_and_until_when() {
    let groups = ["eng", "Smith, John"];
    let named = Subject {
        provider: Some("corp"),
        ..subject(&groups)
    };
    let unverified = Subject {
        email: None,
        ..subject(&groups)
    };
    let cases = [
        (
            subject(&groups),
            serde_json::json!({"iss": ISSUER, "aud": APP, "sub": "alice",
                "email": "alice@example.com", "groups": ["eng", "Smith, John"],
                "iat": 1000, "exp": 1060, "jti": "j"}),
        ),
        (
            named,
            serde_json::json!({"iss": ISSUER, "aud": APP, "sub": "alice",
                "email": "alice@example.com", "groups": ["eng", "Smith, John"],
                "provider": "corp", "iat": 1000, "exp": 1060, "jti": "j"}),
        ),
        (
            unverified,
            serde_json::json!({"iss": ISSUER, "aud": APP, "sub": "alice",
                "groups": ["eng", "Smith, John"], "iat": 1000, "exp": 1060, "jti": "j"}),
        ),
    ];
    for (subject, expected) in cases {
        let claims = claims(ISSUER, APP, &subject, 1000, "j");
        assert_eq!(serde_json::to_value(&claims).expect("json"), expected);
    }
}

#[test]
fn a_signed_assertion_verifies_with_the_published_key_and_names_it() {
    let key = SigningKey::from_pem(PKCS8).expect("key");
    let groups = ["eng"];
    let token = key
        .sign(&claims(ISSUER, APP, &subject(&groups), 1000, "j"))
        .expect("signed");
    let header = decode_header(&token).expect("header");
    assert_eq!(header.alg, Algorithm::ES256);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid.as_deref(), Some(key.kid()));
    let verified = verify(&key, &token, APP);
    assert_eq!(verified["sub"], "alice");
    assert_eq!(verified["groups"], serde_json::json!(["eng"]));

    // Another key's JWK does not verify it.
    let other = SigningKey::derive(b"0123456789abcdef0123456789abcdef").expect("derived");
    let jwk: Jwk = serde_json::from_value(other.public_jwk()).expect("a JWK");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&[APP]);
    validation.validate_exp = false;
    let wrong = DecodingKey::from_jwk(&jwk).expect("key");
    assert!(decode::<serde_json::Value>(&token, &wrong, &validation).is_err());
}

#[test]
fn the_published_jwk_has_what_verifiers_look_for() {
    let key = SigningKey::from_pem(PKCS8).expect("key");
    let jwk = key.public_jwk();
    for (member, value) in [
        ("kty", "EC"),
        ("crv", "P-256"),
        ("alg", "ES256"),
        ("use", "sig"),
    ] {
        assert_eq!(jwk[member], value, "{member}");
    }
    assert_eq!(jwk["kid"], key.kid());
    for coordinate in ["x", "y"] {
        let text = jwk[coordinate].as_str().expect("a string");
        assert_eq!(URL_SAFE_NO_PAD.decode(text).expect("base64url").len(), 32);
    }
    assert!(jwk.get("d").is_none(), "never the private part");
    assert!(!format!("{key:?}").contains(jwk["x"].as_str().unwrap_or("x")));
}

#[test]
fn thumbprint_is_rfc_7638() {
    // RFC 7638 §3.1's example key and its thumbprint.
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6t\
             Soc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-6\
             5YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNL\
             yrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awap\
             JzKnqDKgw";
    assert_eq!(
        thumbprint(&[("kty", "RSA"), ("n", n), ("e", "AQAB")]),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // The kid is the thumbprint of the EC key, as jsonwebtoken computes it too.
    let key = SigningKey::from_pem(PKCS8).expect("key");
    let jwk: Jwk = serde_json::from_value(key.public_jwk()).expect("a JWK");
    assert_eq!(
        key.kid(),
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .expect("a thumbprint")
    );
}

#[test]
fn derived_keys_are_deterministic_and_differ_per_secret() {
    let a = SigningKey::derive(b"0123456789abcdef0123456789abcdef").expect("derived");
    let again = SigningKey::derive(b"0123456789abcdef0123456789abcdef").expect("derived");
    let other = SigningKey::derive(b"another secret, another secret!!").expect("derived");
    assert_eq!(a.kid(), again.kid());
    assert_eq!(a.public_jwk(), again.public_jwk());
    assert_ne!(a.kid(), other.kid());
    // Same key, same signature (RFC 6979): another replica's assertion is byte for byte ours.
    let groups = [];
    let claims = claims(ISSUER, APP, &subject(&groups), 1, "j");
    assert_eq!(a.sign(&claims).ok(), again.sign(&claims).ok());
    // Not the key of any file, nor of the cookie's other keys: its own label.
    assert_ne!(a, SigningKey::from_pem(PKCS8).expect("key"));
}

#[test]
fn pem_keys_load_in_both_formats_and_nothing_else_does() {
    let pkcs8 = SigningKey::from_pem(PKCS8).expect("PKCS#8");
    let sec1 = SigningKey::from_pem(SEC1).expect("SEC1");
    assert_eq!(pkcs8, sec1, "the same key in two formats");
    let cases = [
        ("", KeyError::NotPem),
        ("not a key", KeyError::NotPem),
        (ENCRYPTED, KeyError::NotPem),
        (PUBLIC, KeyError::NotPem),
        (P384, KeyError::NotP256),
        (RSA, KeyError::NotP256),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            KeyError::NotP256,
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(
            SigningKey::from_pem(text).err(),
            Some(expected.clone()),
            "{text:.40}"
        );
    }
}

#[test]
fn an_assertion_is_reused_while_more_than_half_its_lifetime_remains() {
    // (issued at, same claims, now, reused)
    let cases = [
        (1000, true, 1000, true),
        (1000, true, 1029, true),
        (1000, true, 1030, false),
        (1000, true, 1059, false),
        (1000, true, 1061, false),
        (1000, false, 1000, false),
        (1000, false, 1010, false),
        // The clock stepped back: its iat would be in the future.
        (1000, true, 999, false),
        (u64::MAX, true, u64::MAX, true),
    ];
    for (issued_at, same_claims, now, reused) in cases {
        assert_eq!(
            reusable(issued_at, same_claims, now),
            reused,
            "issued {issued_at}, same claims {same_claims}, now {now}"
        );
    }
}

#[test]
fn the_cache_keeps_one_assertion_per_session_audience_and_claims() {
    let key = SigningKey::from_pem(PKCS8).expect("key");
    let assertions = Assertions::new(key.clone(), None, ISSUER.to_string(), 100);
    let groups = ["eng"];
    let alice = subject(&groups);
    let header = |id: &str, aud: &str, subject: &Subject<'_>, now: u64| {
        assertions
            .header(id, aud, subject, now)
            .expect("signed")
            .to_str()
            .expect("ascii")
            .to_string()
    };
    let first = header("s1", APP, &alice, 1000);
    assert_eq!(header("s1", APP, &alice, 1029), first, "reused");
    let other_site = header("s1", "https://other.example.com", &alice, 1001);
    assert_ne!(other_site, first);
    assert_eq!(
        verify(&key, &other_site, "https://other.example.com")["iat"],
        1001
    );
    assert_ne!(header("s2", APP, &alice, 1001), first, "another session");
    let fewer = Subject {
        groups: &[],
        ..alice
    };
    let changed = header("s1", APP, &fewer, 1002);
    assert_ne!(changed, first, "claims changed by revalidation");
    assert_eq!(verify(&key, &changed, APP)["groups"], serde_json::json!([]));
    // At iat + 30 a new one, with a new jti.
    let renewed = header("s1", APP, &fewer, 1032);
    let (old, new) = (verify(&key, &changed, APP), verify(&key, &renewed, APP));
    assert_eq!(new["iat"], 1032);
    assert_eq!(new["exp"], 1092);
    assert_ne!(old["jti"], new["jti"]);
}

#[test]
fn the_jwks_lists_the_current_key_then_the_previous_one() {
    let current = SigningKey::from_pem(PKCS8).expect("key");
    let previous = SigningKey::derive(b"0123456789abcdef0123456789abcdef").expect("derived");
    let only = Assertions::new(current.clone(), None, ISSUER.to_string(), 1);
    let jwks: serde_json::Value = serde_json::from_slice(&only.jwks()).expect("json");
    assert_eq!(jwks, serde_json::json!({"keys": [current.public_jwk()]}));
    let both = Assertions::new(
        current.clone(),
        Some(previous.clone()),
        ISSUER.to_string(),
        1,
    );
    let jwks: serde_json::Value = serde_json::from_slice(&both.jwks()).expect("json");
    assert_eq!(
        jwks,
        serde_json::json!({"keys": [current.public_jwk(), previous.public_jwk()]})
    );
    // Assertions are signed by the current key only.
    let groups = [];
    let token = both.header("s", APP, &subject(&groups), 5).expect("signed");
    let token = token.to_str().expect("ascii");
    assert_eq!(
        decode_header(token).expect("header").kid.as_deref(),
        Some(current.kid())
    );
    verify(&current, token, APP);
}
