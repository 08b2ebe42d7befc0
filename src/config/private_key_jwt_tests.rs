//! `OIDC_TOKEN_AUTH_METHOD=private_key_jwt` with `OIDC_PRIVATE_KEY_FILE` and
//! `OIDC_PRIVATE_KEY_ID`, unprefixed and per provider: what is accepted, and each problem.

use std::collections::HashMap;

use super::*;

fn testdata(file: &str) -> String {
    format!("{}/src/oidc/testdata/{file}", env!("CARGO_MANIFEST_DIR"))
}

const RSA: &str = "rsa-test-key.pem";
const EC: &str = "ec-p256-test-key.pem";

/// The four required variables but the secret, then `pairs`.
fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = [
        ("OIDC_ISSUER_URL", "https://idp.example.com/realms/acme"),
        ("OIDC_CLIENT_ID", "portcullis"),
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in pairs {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

fn problems(env: HashMap<String, String>) -> Vec<String> {
    match Config::from_env_map(env) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems,
    }
}

#[test]
fn a_pkcs8_rsa_or_p256_key_file_replaces_the_secret() {
    for (file, alg) in [(RSA, "RS256"), (EC, "ES256")] {
        let path = testdata(file);
        let config = Config::from_env_map(env(&[
            ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
            ("OIDC_PRIVATE_KEY_FILE", &path),
            ("OIDC_PRIVATE_KEY_ID", " portcullis-1 "),
        ]))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        let auth = &config.first_provider().client_auth;
        assert_eq!(auth.method(), TokenAuthMethod::PrivateKeyJwt);
        assert!(auth.secret().is_none());
        let key = auth.key().unwrap();
        assert_eq!(key.algorithm_name(), alg);
        assert_eq!(key.kid(), Some("portcullis-1"));
        // Debug output of the whole configuration never shows the key.
        let key_text = std::fs::read_to_string(&path).unwrap();
        let debug = format!("{config:?}");
        for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!debug.contains(line), "{file}: key material in {debug}");
        }
    }
    // Without a kid: none.
    let config = Config::from_env_map(env(&[
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_PRIVATE_KEY_FILE", &testdata(EC)),
    ]))
    .unwrap();
    assert_eq!(
        config.first_provider().client_auth.key().unwrap().kid(),
        None
    );
}

#[test]
fn private_key_jwt_without_a_key_file_is_one_problem_naming_it() {
    let problems = problems(env(&[("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt")]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(
            "OIDC_PRIVATE_KEY_FILE is required with OIDC_TOKEN_AUTH_METHOD=private_key_jwt"
        ),
        "{problems:?}"
    );
    assert!(problems[0].contains("openssl genpkey"), "{problems:?}");
}

#[test]
fn a_secret_set_with_private_key_jwt_is_a_problem() {
    for secret in ["OIDC_CLIENT_SECRET", "OIDC_CLIENT_SECRET_FILE"] {
        let problems = problems(env(&[
            ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
            ("OIDC_PRIVATE_KEY_FILE", &testdata(RSA)),
            (secret, &testdata(RSA)),
        ]));
        assert_eq!(problems.len(), 1, "{secret}: {problems:?}");
        assert!(
            problems[0].starts_with(
                "OIDC_CLIENT_SECRET is set, but OIDC_TOKEN_AUTH_METHOD=private_key_jwt"
            ),
            "{secret}: {problems:?}"
        );
    }
}

#[test]
fn a_key_file_or_key_id_with_a_secret_method_is_a_problem() {
    for method in [
        None,
        Some("client_secret_basic"),
        Some("client_secret_post"),
    ] {
        for (var, value) in [
            ("OIDC_PRIVATE_KEY_FILE", testdata(RSA)),
            ("OIDC_PRIVATE_KEY_ID", "k1".to_string()),
        ] {
            let mut pairs = vec![("OIDC_CLIENT_SECRET", "s"), (var, value.as_str())];
            if let Some(method) = method {
                pairs.push(("OIDC_TOKEN_AUTH_METHOD", method));
            }
            let problems = problems(env(&pairs));
            assert_eq!(problems.len(), 1, "{method:?} {var}: {problems:?}");
            let expected = format!(
                "{var} is set, but OIDC_TOKEN_AUTH_METHOD is {}",
                method.unwrap_or("client_secret_basic")
            );
            assert!(problems[0].starts_with(&expected), "{problems:?}");
            assert!(problems[0].contains("private_key_jwt"), "{problems:?}");
        }
    }
}

#[test]
fn an_unknown_method_is_one_problem_listing_the_three() {
    let problems = problems(env(&[("OIDC_TOKEN_AUTH_METHOD", "private_key_jtw")]));
    assert_eq!(
        problems.len(),
        1,
        "no 'secret required' beside it: {problems:?}"
    );
    assert!(
        problems[0].starts_with(
            "OIDC_TOKEN_AUTH_METHOD: expected client_secret_basic, client_secret_post or private_key_jwt"
        ),
        "{problems:?}"
    );
}

#[test]
fn key_files_that_cannot_be_used_are_problems_naming_the_variable_and_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key at all\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let cases: Vec<(String, &str)> = vec![
        (missing.display().to_string(), "cannot read"),
        (dir.path().display().to_string(), "cannot read"),
        (garbage.display().to_string(), "is not a PEM file"),
        (
            testdata("ec-p384-test-key.pem"),
            "an EC key on P-384; only P-256",
        ),
        (testdata("ed25519-test-key.pem"), "an Ed25519 key; only RSA"),
        (testdata("rsa-1024-test-key.pem"), "a 1024-bit RSA key"),
        (
            testdata("ec-p256-sec1-test-key.pem"),
            "a SEC1 EC key, not PKCS#8",
        ),
        (
            testdata("rsa-pkcs1-test-key.pem"),
            "a PKCS#1 RSA key, not PKCS#8",
        ),
        (
            testdata("ec-p256-encrypted-test-key.pem"),
            "an encrypted key",
        ),
    ];
    for (path, says) in cases {
        let problems = problems(env(&[
            ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
            ("OIDC_PRIVATE_KEY_FILE", &path),
        ]));
        assert_eq!(problems.len(), 1, "{path}: {problems:?}");
        assert!(
            problems[0].starts_with("OIDC_PRIVATE_KEY_FILE: "),
            "{path}: {problems:?}"
        );
        assert!(problems[0].contains(&path), "{path}: {problems:?}");
        assert!(
            problems[0].contains(says),
            "{path}: {says:?} in {problems:?}"
        );
        if let Ok(text) = std::fs::read_to_string(&path) {
            for line in text.lines().filter(|l| !l.starts_with("-----")) {
                assert!(!problems[0].contains(line), "key material in {problems:?}");
            }
        }
    }
}

/// Two providers, `corp` with private_key_jwt and `partner` with a secret, then `extra`.
fn two_providers(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let ec = testdata(EC);
    let mut env = env(&[
        ("OIDC_PROVIDERS", "corp,partner"),
        ("OIDC_CORP_ISSUER_URL", "https://corp.example.com"),
        ("OIDC_CORP_CLIENT_ID", "portcullis-corp"),
        ("OIDC_CORP_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_CORP_PRIVATE_KEY_FILE", &ec),
        ("OIDC_CORP_PRIVATE_KEY_ID", "corp-1"),
        ("OIDC_PARTNER_ISSUER_URL", "https://partner.example.com"),
        ("OIDC_PARTNER_CLIENT_ID", "portcullis-partner"),
        ("OIDC_PARTNER_CLIENT_SECRET", "partner-secret"),
    ]);
    for key in ["OIDC_ISSUER_URL", "OIDC_CLIENT_ID"] {
        env.remove(key);
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[test]
fn each_provider_has_its_own_method_key_and_kid() {
    let config = Config::from_env_map(two_providers(&[])).unwrap();
    let [corp, partner] = config.providers.as_slice() else {
        panic!("{:?}", config.providers);
    };
    let key = corp.client_auth.key().unwrap();
    assert_eq!(key.algorithm_name(), "ES256");
    assert_eq!(key.kid(), Some("corp-1"));
    assert!(corp.client_auth.secret().is_none());
    assert_eq!(
        partner.client_auth.method(),
        TokenAuthMethod::ClientSecretBasic
    );
    assert!(partner.client_auth.key().is_none());
    assert!(
        !config.warnings.iter().any(|w| w.contains("PRIVATE_KEY")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn per_provider_key_problems_name_the_prefixed_variables() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("OIDC_CORP_PRIVATE_KEY_FILE", "")],
            "OIDC_CORP_PRIVATE_KEY_FILE is required with OIDC_CORP_TOKEN_AUTH_METHOD=private_key_jwt",
        ),
        (
            &[("OIDC_PARTNER_PRIVATE_KEY_ID", "p-1")],
            "OIDC_PARTNER_PRIVATE_KEY_ID is set, but OIDC_PARTNER_TOKEN_AUTH_METHOD is client_secret_basic",
        ),
        (
            &[("OIDC_CORP_CLIENT_SECRET", "s")],
            "OIDC_CORP_CLIENT_SECRET is set, but OIDC_CORP_TOKEN_AUTH_METHOD=private_key_jwt",
        ),
        (
            &[("OIDC_CORP_PRIVATE_KEY_FILE", "/nonexistent/corp.pem")],
            "OIDC_CORP_PRIVATE_KEY_FILE: cannot read /nonexistent/corp.pem",
        ),
        // The unprefixed variables mean nothing next to OIDC_PROVIDERS.
        (
            &[("OIDC_PRIVATE_KEY_FILE", "/run/secrets/key.pem")],
            "OIDC_PRIVATE_KEY_FILE is set together with OIDC_PROVIDERS",
        ),
        (
            &[("OIDC_PRIVATE_KEY_ID", "k")],
            "OIDC_PRIVATE_KEY_ID is set together with OIDC_PROVIDERS",
        ),
        // A provider OIDC_PROVIDERS does not list, by a slip of the fingers.
        (
            &[("OIDC_CROP_PRIVATE_KEY_FILE", "/run/secrets/key.pem")],
            "OIDC_CROP_PRIVATE_KEY_FILE is set for a provider named \"crop\", which OIDC_PROVIDERS \
             does not list: did you mean \"corp\" (OIDC_CORP_PRIVATE_KEY_FILE)?",
        ),
        (
            &[("OIDC_CROP_PRIVATE_KEY_ID", "k")],
            "OIDC_CROP_PRIVATE_KEY_ID is set for a provider named \"crop\"",
        ),
    ];
    for (extra, expected) in cases {
        let problems = problems(two_providers(extra));
        assert_eq!(problems.len(), 1, "{extra:?}: {problems:?}");
        assert!(
            problems[0].starts_with(expected),
            "{extra:?}: expected {expected:?}, got {problems:?}"
        );
    }
}

#[test]
fn a_misspelt_key_variable_is_named_beside_the_missing_one() {
    let err = Config::from_env_map(env(&[
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_PRIVATE_KEY_FIEL", &testdata(EC)),
    ]))
    .unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(
        err.problems[0].starts_with("OIDC_PRIVATE_KEY_FILE is required"),
        "{err}"
    );
    assert!(
        err.misspelt
            .iter()
            .any(|w| w.contains("did you mean OIDC_PRIVATE_KEY_FILE?")),
        "{err}"
    );
}

#[test]
fn a_certificate_file_of_the_key_gives_its_thumbprints_and_others_are_problems() {
    let config = Config::from_env_map(env(&[
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("OIDC_PRIVATE_KEY_FILE", &testdata(RSA)),
        ("OIDC_PRIVATE_KEY_CERT_FILE", &testdata("rsa-test-cert.pem")),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let key = config.first_provider().client_auth.key().unwrap();
    assert!(key.certificate().is_some());

    let other = testdata("other-key-test-cert.pem");
    let missing = testdata("no-such-cert.pem");
    let cases: [(&[(&str, &str)], String); 3] = [
        (
            &[
                ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
                ("OIDC_PRIVATE_KEY_FILE", &testdata(RSA)),
                ("OIDC_PRIVATE_KEY_CERT_FILE", &other),
            ],
            format!("OIDC_PRIVATE_KEY_CERT_FILE: {other} is the certificate of another key"),
        ),
        (
            &[
                ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
                ("OIDC_PRIVATE_KEY_FILE", &testdata(EC)),
                ("OIDC_PRIVATE_KEY_CERT_FILE", &missing),
            ],
            format!("OIDC_PRIVATE_KEY_CERT_FILE: cannot read {missing}"),
        ),
        (
            &[
                ("OIDC_CLIENT_SECRET", "s3cret"),
                ("OIDC_PRIVATE_KEY_CERT_FILE", &other),
            ],
            "OIDC_PRIVATE_KEY_CERT_FILE is set, but OIDC_TOKEN_AUTH_METHOD is \
             client_secret_basic"
                .to_string(),
        ),
    ];
    for (pairs, expected) in cases {
        let found = problems(env(pairs));
        assert_eq!(found.len(), 1, "{pairs:?}: {found:?}");
        assert!(found[0].starts_with(&expected), "{pairs:?}: {found:?}");
    }
}
