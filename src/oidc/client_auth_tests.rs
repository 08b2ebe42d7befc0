//! The client's key and its assertions, with the test-only keys in testdata/ (README there).
//! Signatures are checked with jsonwebtoken's verifier against the public JWK we print, so a
//! JWK that does not match the signing key fails here.

use super::*;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{json, Value};

const RSA: &[u8] = include_bytes!("testdata/rsa-test-key.pem");
const EC: &[u8] = include_bytes!("testdata/ec-p256-test-key.pem");
const NOW: u64 = 1_700_000_000;
const CLIENT: &str = "portcullis";
const TOKEN_ENDPOINT: &str = "https://idp.example.com/realms/demo/protocol/openid-connect/token";

fn jwk(key: &ClientKey) -> Value {
    serde_json::from_str(&key.public_jwk()).unwrap()
}

fn decoding_key(key: &ClientKey) -> DecodingKey {
    let jwk: Jwk = serde_json::from_str(&key.public_jwk()).unwrap();
    DecodingKey::from_jwk(&jwk).unwrap()
}

fn parts(token: &str) -> (Value, Value) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let mut it = token.split('.');
    let mut next = || -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
    };
    (next(), next())
}

/// Verified as the IdP would: signature with the registered public key, `aud`, `iss`, `sub`,
/// `exp` (against the clock of `at`, no leeway).
fn verify(token: &str, key: &ClientKey, at: u64) -> Result<Value, jsonwebtoken::errors::Error> {
    let mut validation = Validation::new(key.algorithm());
    validation.set_audience(&[TOKEN_ENDPOINT]);
    validation.set_issuer(&[CLIENT]);
    validation.sub = Some(CLIENT.to_string());
    validation.leeway = 0;
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &decoding_key(key), &validation)?;
    let exp = data.claims["exp"].as_u64().unwrap();
    if at >= exp {
        return Err(jsonwebtoken::errors::ErrorKind::ExpiredSignature.into());
    }
    Ok(data.claims)
}

#[test]
fn an_rsa_key_signs_rs256_and_an_ec_p256_key_es256() {
    let cases = [
        (RSA, Algorithm::RS256, "RS256", "RSA"),
        (EC, Algorithm::ES256, "ES256", "EC"),
    ];
    for (pem, algorithm, alg, kty) in cases {
        let key = ClientKey::from_pem(pem, None).unwrap();
        assert_eq!(key.algorithm(), algorithm);
        let jwk = jwk(&key);
        assert_eq!(jwk["kty"], kty, "{jwk}");
        assert_eq!(jwk["alg"], alg, "{jwk}");
        assert_eq!(jwk["use"], "sig", "{jwk}");
        assert!(jwk.get("kid").is_none(), "no kid unless given: {jwk}");
        // Only public members: nothing of the private key reaches the JWK.
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(jwk.get(private).is_none(), "{private} in {jwk}");
        }
        match kty {
            "RSA" => {
                assert_eq!(jwk["e"], "AQAB");
                assert!(jwk["n"].as_str().unwrap().len() >= 342, "2048 bits: {jwk}");
            }
            _ => {
                assert_eq!(jwk["crv"], "P-256");
                assert_eq!(jwk["x"].as_str().unwrap().len(), 43, "{jwk}");
                assert_eq!(jwk["y"].as_str().unwrap().len(), 43, "{jwk}");
            }
        }
    }
}

#[test]
fn the_assertion_has_the_claims_of_openid_connect_core_section_9() {
    for pem in [RSA, EC] {
        let key = ClientKey::from_pem(pem, None).unwrap();
        let token = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW, "jti-1").unwrap();
        let (header, claims) = parts(&token);
        assert_eq!(
            header,
            json!({"alg": jwk(&key)["alg"], "typ": "JWT"}),
            "no kid when none is configured"
        );
        assert_eq!(
            claims,
            json!({
                "iss": CLIENT,
                "sub": CLIENT,
                "aud": TOKEN_ENDPOINT,
                "jti": "jti-1",
                "iat": NOW,
                "exp": NOW + 60,
            })
        );
        assert_eq!(verify(&token, &key, NOW).unwrap(), claims);
    }
}

#[test]
fn the_kid_is_in_the_header_and_the_jwk() {
    for pem in [RSA, EC] {
        let key = ClientKey::from_pem(pem, Some("portcullis-2026".to_string())).unwrap();
        assert_eq!(key.kid(), Some("portcullis-2026"));
        assert_eq!(jwk(&key)["kid"], "portcullis-2026");
        let token = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW, "j").unwrap();
        assert_eq!(parts(&token).0["kid"], "portcullis-2026");
        assert_eq!(parts(&token).0["typ"], "JWT");
    }
}

#[test]
fn an_assertion_is_valid_for_sixty_seconds_from_now() {
    let key = ClientKey::from_pem(EC, None).unwrap();
    let token = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW, "j").unwrap();
    for (at, valid) in [
        (NOW, true),
        (NOW + 59, true),
        (NOW + 60, false),
        (NOW + 3600, false),
    ] {
        assert_eq!(
            verify(&token, &key, at).is_ok(),
            valid,
            "at now + {}",
            at - NOW
        );
    }
}

#[test]
fn each_assertion_carries_its_own_jti_and_time() {
    let key = ClientKey::from_pem(RSA, None).unwrap();
    let a = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW, "first").unwrap();
    let b = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW + 5, "second").unwrap();
    assert_ne!(a, b);
    assert_eq!(parts(&a).1["jti"], "first");
    assert_eq!(parts(&b).1["jti"], "second");
    assert_eq!(parts(&b).1["iat"], NOW + 5);
    assert_eq!(parts(&b).1["exp"], NOW + 65);
}

#[test]
fn an_assertion_does_not_verify_with_another_key_or_for_another_audience() {
    let rsa = ClientKey::from_pem(RSA, None).unwrap();
    let ec = ClientKey::from_pem(EC, None).unwrap();
    let token = client_assertion(&ec, CLIENT, TOKEN_ENDPOINT, NOW, "j").unwrap();
    // The RSA key's JWK cannot verify an ES256 assertion, whatever the header says.
    assert!(verify(&token, &rsa, NOW).is_err());
    let elsewhere = client_assertion(&ec, CLIENT, "https://other.example/token", NOW, "j").unwrap();
    assert!(verify(&elsewhere, &ec, NOW).is_err());
    // A signature altered by one character fails.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(verify(&forged, &ec, NOW).is_err());
}

#[test]
fn keys_that_are_not_pkcs8_rsa_or_p256_are_refused_with_a_reason() {
    let cases: &[(&[u8], ClientKeyError)] = &[
        (
            include_bytes!("testdata/ec-p384-test-key.pem"),
            ClientKeyError::UnsupportedCurve("P-384".into()),
        ),
        (
            include_bytes!("testdata/ed25519-test-key.pem"),
            ClientKeyError::UnsupportedAlgorithm("Ed25519".into()),
        ),
        (
            include_bytes!("testdata/rsa-1024-test-key.pem"),
            ClientKeyError::RsaTooShort(1024),
        ),
        (
            include_bytes!("testdata/ec-p256-sec1-test-key.pem"),
            ClientKeyError::NotPkcs8("SEC1 EC"),
        ),
        (
            include_bytes!("testdata/rsa-pkcs1-test-key.pem"),
            ClientKeyError::NotPkcs8("PKCS#1 RSA"),
        ),
        (
            include_bytes!("testdata/ec-p256-encrypted-test-key.pem"),
            ClientKeyError::Encrypted,
        ),
        (b"", ClientKeyError::NotPem),
        (b"garbage, not a key\n", ClientKeyError::NotPem),
        (&[0xff, 0xfe, 0x00, 0x01], ClientKeyError::NotPem),
        (
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ClientKeyError::Malformed,
        ),
        (
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            ClientKeyError::NotAPrivateKey("CERTIFICATE".into()),
        ),
    ];
    for (pem, expected) in cases {
        let got = ClientKey::from_pem(pem, None).map(|_| ());
        assert_eq!(
            got.as_ref(),
            Err(expected),
            "{:?}",
            String::from_utf8_lossy(pem)
        );
    }
}

#[test]
fn a_pkcs8_key_whose_inside_is_broken_is_refused() {
    // A valid PKCS#8 wrapper (rsaEncryption) around bytes that are no RSA key.
    let doc = pkcs8::der::SecretDocument::from_pem(std::str::from_utf8(RSA).unwrap())
        .unwrap()
        .1;
    let mut der = doc.as_bytes().to_vec();
    let len = der.len();
    for byte in &mut der[len - 200..len - 100] {
        *byte = 0;
    }
    let pem = pkcs8::der::pem::encode_string("PRIVATE KEY", Default::default(), &der).unwrap();
    let got = ClientKey::from_pem(pem.as_bytes(), None);
    assert!(
        matches!(got, Err(ClientKeyError::Invalid("RSA"))),
        "{:?}",
        got.map(|_| ())
    );
}

#[test]
fn refusals_and_debug_never_show_key_material() {
    let text = std::str::from_utf8(EC).unwrap();
    let body_line = text.lines().nth(1).unwrap();
    let key = ClientKey::from_pem(EC, Some("k".into())).unwrap();
    let debug = format!("{key:?}");
    assert!(!debug.contains(body_line), "{debug}");
    assert!(debug.contains("ES256"), "{debug}");
    let sec1 = include_bytes!("testdata/ec-p256-sec1-test-key.pem");
    let sec1_line = std::str::from_utf8(sec1).unwrap().lines().nth(1).unwrap();
    let refusal = ClientKey::from_pem(sec1, None).unwrap_err().to_string();
    assert!(!refusal.contains(sec1_line), "{refusal}");
}

#[test]
fn modulus_bits_count_from_the_first_set_bit() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    for (bytes, bits) in [
        (vec![0x80, 0, 0], 24),
        (vec![0x01, 0xff], 9),
        (vec![0, 0x7f], 7),
        (vec![0], 0),
        (vec![], 0),
    ] {
        assert_eq!(
            modulus_bits(&URL_SAFE_NO_PAD.encode(&bytes)),
            bits,
            "{bytes:?}"
        );
    }
}

/// `openssl x509 -noout -fingerprint -sha1` / `-sha256` of the test certificates, base64url.
const CERTIFICATES: [(&[u8], &[u8], &str, &str); 2] = [
    (
        EC,
        include_bytes!("testdata/ec-p256-test-cert.pem"),
        "nop6Sh0ouDcE_mnhFeD8O2aoUVk",
        "jSS5nH18DvIBxNl0JsVhQBhuuuh-af6X_twuOB2uzIs",
    ),
    (
        RSA,
        include_bytes!("testdata/rsa-test-cert.pem"),
        "RlAzROfxFUMc4qb6T0tSQVCj_3M",
        "BWMc9Zgb2P2_J_1glXDgUbsclcnVQQNNJyrcz1e3jLo",
    ),
];

#[test]
fn a_certificate_of_the_key_puts_its_thumbprints_in_every_assertion_header() {
    for (key_pem, cert_pem, sha1, sha256) in CERTIFICATES {
        let key = ClientKey::from_pem(key_pem, Some("k1".to_string()))
            .unwrap()
            .with_certificate(cert_pem)
            .unwrap();
        assert_eq!(
            key.certificate(),
            Some(&Thumbprints {
                sha1: sha1.to_string(),
                sha256: sha256.to_string(),
            })
        );
        let token = client_assertion(&key, CLIENT, TOKEN_ENDPOINT, NOW, "jti-1").unwrap();
        let (header, _) = parts(&token);
        assert_eq!(header["x5t"], sha1);
        assert_eq!(header["x5t#S256"], sha256);
        assert_eq!(header["kid"], "k1");
        verify(&token, &key, NOW).unwrap();
        // A chain (leaf first) is taken too: the leaf is the key's.
        let mut chain = cert_pem.to_vec();
        chain.extend_from_slice(include_bytes!("testdata/other-key-test-cert.pem"));
        let chained = ClientKey::from_pem(key_pem, None)
            .unwrap()
            .with_certificate(&chain)
            .unwrap();
        assert_eq!(
            chained.certificate().map(|c| c.sha256.as_str()),
            Some(sha256)
        );
    }
    // Without a certificate, no thumbprint.
    let plain = ClientKey::from_pem(EC, None).unwrap();
    let (header, _) = parts(&client_assertion(&plain, CLIENT, TOKEN_ENDPOINT, NOW, "j").unwrap());
    assert!(
        header.get("x5t").is_none() && header.get("x5t#S256").is_none(),
        "{header}"
    );
}

#[test]
fn a_certificate_of_another_key_or_no_certificate_is_refused() {
    let other = include_bytes!("testdata/other-key-test-cert.pem");
    let rsa_cert = include_bytes!("testdata/rsa-test-cert.pem");
    let cases: [(&[u8], &[u8], CertificateError); 5] = [
        (EC, other, CertificateError::NotThisKey),
        (EC, rsa_cert, CertificateError::NotThisKey),
        (
            RSA,
            include_bytes!("testdata/ec-p256-test-cert.pem"),
            CertificateError::NotThisKey,
        ),
        (EC, EC, CertificateError::NotPem),
        (
            EC,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            CertificateError::Malformed,
        ),
    ];
    for (key_pem, cert_pem, expected) in cases {
        let key = ClientKey::from_pem(key_pem, None).unwrap();
        assert_eq!(key.with_certificate(cert_pem).err(), Some(expected));
    }
}
