use serde_json::json;

use super::*;
use crate::config;

const NOW: u64 = 1_700_000_000;

#[test]
fn the_bearer_token_is_read_from_one_authorization_header() {
    let cases: &[(&[&str], Credential<'_>)] = &[
        (&[], Credential::None),
        (&["Basic YWxpY2U6cGFzcw=="], Credential::None),
        (&["Digest username=\"a\""], Credential::None),
        (&["Bearerish abc"], Credential::None),
        (&["Bearer abc.def.ghi"], Credential::Token("abc.def.ghi")),
        (&["bearer abc"], Credential::Token("abc")),
        (&["BEARER abc"], Credential::Token("abc")),
        (&["Bearer   abc  "], Credential::Token("abc")),
        (&["Bearer\tabc"], Credential::Token("abc")),
        (&["Bearer"], Credential::Malformed),
        (&["Bearer "], Credential::Malformed),
        (&["Bearer a b"], Credential::Malformed),
        (&["Bearer a", "Bearer b"], Credential::Malformed),
        (&["Basic x", "Bearer b"], Credential::Malformed),
        (&["Bearer a", "Basic x"], Credential::Malformed),
        (&["Basic x", "Basic y"], Credential::None),
    ];
    for (headers, expected) in cases {
        let got = credential(headers.iter().map(|h| h.as_bytes()));
        assert_eq!(got, *expected, "{headers:?}");
    }
    // Not UTF-8 after the scheme.
    assert_eq!(
        credential([b"Bearer \xff\xfe".as_slice()]),
        Credential::Malformed
    );
}

#[test]
fn a_token_names_its_user_as_a_login_would() {
    let claims = json!({
        "sub": "alice",
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "Alice",
        "realm_access": {"roles": ["app-admin"]},
        "groups": ["admins", "ops"],
        "exp": NOW + 300,
    });
    type Expected<'a> = Result<(&'a str, &'a [&'a str]), TokenRefusal>;
    let cases: &[(&[(&str, &str)], Expected<'_>)] = &[
        (&[], Ok(("alice", &["admins", "ops"]))),
        (
            &[("OIDC_GROUPS_CLAIM", "realm_access.roles")],
            Ok(("alice", &["app-admin"])),
        ),
        (
            &[("OIDC_USERNAME_CLAIM", "email")],
            Ok(("alice@example.com", &["admins", "ops"])),
        ),
        (&[("OIDC_USERNAME_CLAIM", "upn")], Err(TokenRefusal::NoUser)),
    ];
    for (env, expected) in cases {
        let config = config::for_tests(env);
        let got = identity_from_claims(&claims, config.first_provider(), false);
        match (got, expected) {
            (Ok(identity), Ok((user, groups))) => {
                assert_eq!(identity.person.user, *user, "{env:?}");
                assert_eq!(identity.person.groups, *groups, "{env:?}");
                assert_eq!(identity.person.email.as_deref(), Some("alice@example.com"));
                assert!(identity.person.email_verified);
                assert_eq!(identity.expires_at, NOW + 300);
                assert_eq!(identity.provider, None);
            }
            (Err(refused), Err(kind)) => assert_eq!(refused.kind, *kind, "{env:?}"),
            (got, expected) => panic!("{env:?}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn an_unverified_email_is_no_username_and_is_kept_unverified() {
    let claims = json!({"sub": "m2m", "email": "x@example.com", "exp": NOW});
    let config = config::for_tests(&[("OIDC_USERNAME_CLAIM", "email")]);
    let refused = identity_from_claims(&claims, config.first_provider(), false).unwrap_err();
    assert_eq!(refused.kind, TokenRefusal::NoUser);
    let config = config::for_tests(&[]);
    let identity = identity_from_claims(&claims, config.first_provider(), false).unwrap();
    assert_eq!(identity.person.user, "m2m");
    assert!(!identity.person.email_verified);
    assert!(identity.person.groups.is_empty());
}

#[test]
fn a_named_provider_is_recorded() {
    let config = config::for_tests(&[
        ("OIDC_ISSUER_URL", ""),
        ("OIDC_CLIENT_ID", ""),
        ("OIDC_CLIENT_SECRET", ""),
        ("OIDC_PROVIDERS", "corp"),
        ("OIDC_CORP_ISSUER_URL", "https://idp.example.com"),
        ("OIDC_CORP_CLIENT_ID", "portcullis"),
        ("OIDC_CORP_CLIENT_SECRET", "secret"),
    ]);
    let identity =
        identity_from_claims(&json!({"sub": "a"}), config.first_provider(), false).unwrap();
    assert_eq!(identity.provider.as_deref(), Some("corp"));
}

#[test]
fn verified_tokens_are_kept_until_their_exp_and_at_most_a_minute() {
    let cases = [
        // (exp, until)
        (NOW + 300, NOW + 60),
        (NOW + 60, NOW + 60),
        (NOW + 10, NOW + 10),
        // Accepted within the clock skew: not kept at all.
        (NOW - 5, NOW - 5),
    ];
    for (exp, until) in cases {
        assert_eq!(cached_until(exp, NOW), until, "exp {exp}");
    }
}

#[test]
fn the_cache_answers_a_verified_token_only_while_it_may() {
    let cache = TokenCache::new();
    let identity = |exp| BearerIdentity {
        provider: None,
        person: Person {
            user: "alice".into(),
            email: None,
            email_verified: false,
            preferred_username: None,
            groups: vec!["ops".into()],
        },
        expires_at: exp,
    };
    assert!(cache.get("token-a", NOW).is_none());
    cache.insert("token-a", identity(NOW + 30), NOW);
    cache.insert("token-expired", identity(NOW - 1), NOW);
    let hit = cache.get("token-a", NOW + 29).unwrap();
    assert_eq!(hit.identity.person.user, "alice");
    assert!(cache.get("token-a", NOW + 30).is_none(), "past its exp");
    assert!(cache.get("token-a ", NOW).is_none(), "another token");
    assert!(cache.get("token-expired", NOW).is_none());
    // Past the minute even with a later exp.
    cache.insert("token-b", identity(NOW + 3600), NOW);
    assert!(cache.get("token-b", NOW + 59).is_some());
    assert!(cache.get("token-b", NOW + 60).is_none());
}
