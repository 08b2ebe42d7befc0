use super::*;

const ISSUER: &str = "https://idp.example.com";
const NOW: u64 = 1_700_000_000;

fn keys() -> Keys {
    Keys::derive(b"0123456789abcdef0123456789abcdef").expect("keys")
}

fn login(state: &str, return_to: &str) -> LoginState {
    LoginState {
        state: state.to_string(),
        pkce_verifier: "v".repeat(43),
        nonce: "n".repeat(43),
        return_to: return_to.to_string(),
        expires_at: NOW + LOGIN_TTL_SECS,
        provider: None,
    }
}

fn params(query: &str) -> CallbackParams {
    CallbackParams::parse(query)
}

#[test]
fn a_sealed_login_opens_only_whole_in_order_and_with_our_key() {
    let keys = keys();
    let original = login("s1", "https://app.example.com/");
    let chunks = original.seal(&keys).expect("sealed");
    assert_eq!(chunks.len(), 1);
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    assert_eq!(LoginState::open(&refs, &keys), Some(original.clone()));

    let other = Keys::derive(b"another secret, another secret!!").expect("keys");
    assert_eq!(LoginState::open(&refs, &other), None);
    let mut tampered = chunks[0].clone();
    tampered.replace_range(30..31, if &tampered[30..31] == "A" { "B" } else { "A" });
    assert_eq!(LoginState::open(&[&tampered], &keys), None);
    assert_eq!(LoginState::open(&[], &keys), None);
    assert_eq!(LoginState::open(&["", ""], &keys), None);
    // A sealed token (the store's key) is not a login.
    let token = keys.encrypt(b"\x01anything").expect("sealed");
    assert_eq!(LoginState::open(&[&token], &keys), None);
}

#[test]
fn a_four_kilobyte_return_address_travels_in_two_chunks() {
    let keys = keys();
    let long = format!("https://app.example.com/{}", "a".repeat(4000 - 24));
    let original = login("s1", &long);
    let chunks = original.seal(&keys).expect("sealed");
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|c| c.len() <= COOKIE_CHUNK_LEN));
    let refs: Vec<&str> = chunks.iter().map(String::as_str).collect();
    assert_eq!(LoginState::open(&refs, &keys), Some(original));
    // Out of order or with a chunk missing, it does not open.
    assert_eq!(LoginState::open(&[refs[1], refs[0]], &keys), None);
    assert_eq!(LoginState::open(&refs[..1], &keys), None);
}

#[test]
fn callback_parameters_keep_the_first_value() {
    let parsed = params("state=a&code=c1&state=b&code=c2&iss=x&error_description=d&foo=1");
    assert_eq!(parsed.state.as_deref(), Some("a"));
    assert_eq!(parsed.code.as_deref(), Some("c1"));
    assert_eq!(parsed.iss.as_deref(), Some("x"));
    assert_eq!(parsed.error, None);
    assert_eq!(parsed.error_description.as_deref(), Some("d"));
    assert_eq!(params("state=").state, None);
    assert_eq!(params(""), CallbackParams::default());
}

#[test]
fn verify_callback_table() {
    let good = login("s1", "/");
    let expired = LoginState {
        expires_at: NOW,
        ..login("s1", "/")
    };
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a LoginState>,
        Result<&'a str, CallbackFailure>,
    );
    let cases: Vec<Case> = vec![
        ("valid", "state=s1&code=c", Some(&good), Ok("c")),
        (
            "valid with our iss",
            "state=s1&code=c&iss=https%3A%2F%2Fidp.example.com",
            Some(&good),
            Ok("c"),
        ),
        (
            "IdP error comes first, even without a cookie",
            "state=s1&error=access_denied&error_description=no",
            None,
            Err(CallbackFailure::IdpError {
                error: "access_denied".into(),
                description: "no".into(),
            }),
        ),
        (
            "no state",
            "code=c",
            Some(&good),
            Err(CallbackFailure::MissingState),
        ),
        (
            "no cookie",
            "state=s1&code=c",
            None,
            Err(CallbackFailure::NoLoginCookie),
        ),
        (
            "cookie of another login",
            "state=s2&code=c",
            Some(&good),
            Err(CallbackFailure::StateMismatch),
        ),
        (
            "expired",
            "state=s1&code=c",
            Some(&expired),
            Err(CallbackFailure::Expired),
        ),
        (
            "another issuer",
            "state=s1&code=c&iss=https%3A%2F%2Fevil.example.com",
            Some(&good),
            Err(CallbackFailure::IssuerMismatch {
                found: "https://evil.example.com".into(),
            }),
        ),
        (
            "issuer with a trailing slash is another issuer",
            "state=s1&code=c&iss=https%3A%2F%2Fidp.example.com%2F",
            Some(&good),
            Err(CallbackFailure::IssuerMismatch {
                found: "https://idp.example.com/".into(),
            }),
        ),
        (
            "no code",
            "state=s1",
            Some(&good),
            Err(CallbackFailure::MissingCode),
        ),
        (
            "empty code",
            "state=s1&code=",
            Some(&good),
            Err(CallbackFailure::MissingCode),
        ),
    ];
    for (what, query, login, expected) in cases {
        let parsed = params(query);
        assert_eq!(
            verify_callback(&parsed, login, None, ISSUER, NOW),
            expected,
            "{what}"
        );
    }
}

#[test]
fn only_an_idp_access_denied_is_a_refusal() {
    let denied = CallbackFailure::IdpError {
        error: "access_denied".into(),
        description: String::new(),
    };
    assert!(denied.is_refusal());
    assert!(denied.message().contains("did not allow"));
    let other = CallbackFailure::IdpError {
        error: "server_error".into(),
        description: String::new(),
    };
    assert!(!other.is_refusal());
    assert!(CallbackFailure::AlreadyUsed
        .message()
        .contains("already used"));
    assert!(CallbackFailure::NoLoginCookie
        .message()
        .contains("another browser"));
}

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env = vec![("SESSION_LIFETIME", "1h")];
    env.extend_from_slice(extra);
    crate::config::for_tests(&env)
}

#[test]
fn session_from_claims_table() {
    let alice = serde_json::json!({
        "sub": "alice-id", "email": "alice@example.com", "email_verified": true,
        "preferred_username": "alice", "groups": ["ops", "dev"],
    });
    let cognito = serde_json::json!({
        "sub": "c-id", "email": "c@example.com", "email_verified": "true",
        "name": 42, "groups": "cognito-users",
    });
    let dave = serde_json::json!({
        "sub": "dave-id", "email": "dave@example.com", "email_verified": false, "groups": ["ops"],
    });
    let no_sub = serde_json::json!({ "email": "x@example.com" });
    let keycloak = serde_json::json!({"sub": "k", "realm_access": {"roles": ["r1"]}});
    type Case<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a Value,
        Result<(&'a str, &'a [&'a str], bool), SessionRefusal>,
    );
    let cases: Vec<Case> = vec![
        (
            "defaults",
            &[],
            &alice,
            Ok(("alice-id", &["ops", "dev"], true)),
        ),
        (
            "odd claim types",
            &[],
            &cognito,
            Ok(("c-id", &["cognito-users"], true)),
        ),
        (
            "username from another claim",
            &[("OIDC_USERNAME_CLAIM", "preferred_username")],
            &alice,
            Ok(("alice", &["ops", "dev"], true)),
        ),
        (
            "email as username, verified",
            &[("OIDC_USERNAME_CLAIM", "email")],
            &alice,
            Ok(("alice@example.com", &["ops", "dev"], true)),
        ),
        (
            "email as username, unverified",
            &[("OIDC_USERNAME_CLAIM", "email")],
            &dave,
            Err(SessionRefusal::Username(UsernameError::EmailNotVerified)),
        ),
        (
            "email as username, unverified but allowed",
            &[
                ("OIDC_USERNAME_CLAIM", "email"),
                ("OIDC_ALLOW_UNVERIFIED_EMAIL", "true"),
            ],
            &dave,
            Ok(("dave@example.com", &["ops"], false)),
        ),
        (
            "no username claim",
            &[],
            &no_sub,
            Err(SessionRefusal::Username(UsernameError::Missing {
                claim: "sub".into(),
            })),
        ),
        (
            "a global rule refuses",
            &[("REQUIRE_GROUP", "admins")],
            &alice,
            Err(SessionRefusal::Rule {
                user: "alice-id".into(),
                rule: DenyReason::NotInRequiredGroup,
            }),
        ),
        (
            "groups from a nested claim",
            &[("OIDC_GROUPS_CLAIM", "realm_access.roles")],
            &keycloak,
            Ok(("k", &["r1"], false)),
        ),
    ];
    for (what, env, claims, expected) in cases {
        let config = config(env);
        let got = session_from_claims(
            claims,
            &config,
            config.first_provider(),
            NOW,
            Client::default(),
        );
        match expected {
            Ok((user, groups, verified)) => {
                let session = got.unwrap_or_else(|e| panic!("{what}: {e:?}"));
                assert_eq!(session.user, user, "{what}");
                assert_eq!(session.groups, groups, "{what}");
                assert_eq!(session.email_verified, verified, "{what}");
                assert_eq!(session.created_at, NOW, "{what}");
                assert_eq!(session.expires_at, NOW + 3600, "{what}");
            }
            Err(refusal) => assert_eq!(got, Err(refusal), "{what}"),
        }
    }
}

#[test]
fn a_session_records_the_idp_subject_session_and_the_browser() {
    let claims = serde_json::json!({"sub": "s-1", "sid": "idp-7", "preferred_username": "al"});
    let client = Client::new(Some(&"x".repeat(500)), Some("192.0.2.9".into()));
    let config = config(&[("OIDC_USERNAME_CLAIM", "preferred_username")]);
    let session =
        session_from_claims(&claims, &config, config.first_provider(), NOW, client).unwrap();
    assert_eq!(session.user, "al");
    assert_eq!(session.subject, "s-1");
    assert_eq!(session.idp_session.as_deref(), Some("idp-7"));
    assert_eq!(session.claims_read_at, NOW);
    assert_eq!(session.user_agent.map(|ua| ua.len()), Some(200));
    assert_eq!(session.address.as_deref(), Some("192.0.2.9"));
    assert_eq!(Client::new(Some(""), None), Client::default());
}

#[test]
fn a_login_keeps_only_the_tokens_something_will_use() {
    use crate::oidc::VerifiedLogin;
    use std::time::Duration;
    let verified = |refresh: Option<&str>, expires_in: Option<u64>| VerifiedLogin {
        claims: serde_json::json!({}),
        id_token: "ID".to_string(),
        refresh_token: refresh.map(str::to_string),
        access_token: "AT".to_string(),
        access_token_expires_in: expires_in.map(Duration::from_secs),
    };
    let logout = (
        "OIDC_POST_LOGOUT_REDIRECT_URL",
        "https://auth.example.com/oauth2/signed_out",
    );
    let off = ("SESSION_REFRESH_INTERVAL", "0");
    let s = |v: &str| Some(v.to_string());
    // (what, environment, the login, the tokens kept, refreshable until)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, VerifiedLogin, Tokens, u64);
    let cases: Vec<Case> = vec![
        (
            "a refresh token: kept with the ID token and nonce, no access token",
            vec![],
            verified(Some("RT"), Some(300)),
            Tokens {
                id_token: s("ID"),
                refresh_token: s("RT"),
                nonce: s("N"),
                ..Tokens::default()
            },
            u64::MAX,
        ),
        (
            "no refresh token: the access token while valid",
            vec![],
            verified(None, Some(300)),
            Tokens {
                id_token: s("ID"),
                access_token: s("AT"),
                access_token_expires_at: Some(NOW + 300),
                nonce: s("N"),
                ..Tokens::default()
            },
            NOW + 300,
        ),
        (
            "no refresh token and no expiry: no access token either",
            vec![],
            verified(None, None),
            Tokens {
                id_token: s("ID"),
                nonce: s("N"),
                ..Tokens::default()
            },
            0,
        ),
        (
            "revalidation off: nothing without IdP logout",
            vec![off],
            verified(Some("RT"), Some(300)),
            Tokens::default(),
            0,
        ),
        (
            "revalidation off, IdP logout: the ID token only, as before",
            vec![off, logout],
            verified(Some("RT"), Some(300)),
            Tokens {
                id_token: s("ID"),
                ..Tokens::default()
            },
            0,
        ),
    ];
    for (what, env, verified, expected, until) in cases {
        let tokens = kept_tokens(&config(&env), &verified, "N", NOW);
        assert_eq!(tokens, expected, "{what}");
        assert_eq!(tokens.refreshable_until(), until, "{what}");
    }
}
