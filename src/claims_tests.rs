use super::*;
use serde_json::json;

fn sample_claims() -> Value {
    json!({
        "sub": "user-1",
        "preferred_username": "alice",
        "numeric_id": 1234567890123_u64,
        "negative": -5,
        "ratio": 1.5,
        "empty": "",
        "email_verified": true,
        "cognito_verified": "true",
        "cognito_unverified": "false",
        "shouty": "TRUE",
        "one": 1,
        "groups": ["admins", "", 7, null, "staff"],
        "single_group": "admins",
        "https://example.com/groups": ["auth0-group"],
        "https://example.com/profile": {"team": "red"},
        "realm_access": {"roles": ["offline_access", "uma_authorization"]},
        "resource_access": {
            "my-client": {"roles": ["client-admin"]},
            "other.client": {"roles": ["dotted-client-role"]}
        },
        "a": {"b": {"c": "deep"}},
        "a.b": {"x": "shadow"},
        "nothing": null
    })
}

#[test]
fn lookup_finds_values() {
    let claims = sample_claims();
    let cases: &[(&str, Option<Value>)] = &[
        ("preferred_username", Some(json!("alice"))),
        (
            "realm_access.roles",
            Some(json!(["offline_access", "uma_authorization"])),
        ),
        (
            "resource_access.my-client.roles",
            Some(json!(["client-admin"])),
        ),
        ("a.b.c", Some(json!("deep"))),
        // Literal dotted keys, at top level and nested.
        ("https://example.com/groups", Some(json!(["auth0-group"]))),
        ("https://example.com/profile.team", Some(json!("red"))),
        (
            "resource_access.other.client.roles",
            Some(json!(["dotted-client-role"])),
        ),
        // Longest literal key first, then shorter keys when that leads nowhere.
        ("a.b.x", Some(json!("shadow"))),
        ("nothing", Some(Value::Null)),
        // Missing, not an object, or a malformed path.
        ("missing", None),
        ("realm_access.missing", None),
        ("preferred_username.length", None),
        ("groups.0", None),
        ("", None),
        (".", None),
        ("a..b", None),
        (".preferred_username", None),
        ("realm_access.", None),
    ];
    for (path, expected) in cases {
        assert_eq!(lookup(&claims, path), expected.as_ref(), "path {path:?}");
    }
}

#[test]
fn lookup_prefers_the_whole_path_as_a_literal_key() {
    let claims = json!({"a.b": "literal", "a": {"b": "nested"}});
    assert_eq!(lookup(&claims, "a.b"), Some(&json!("literal")));
}

#[test]
fn lookup_on_a_non_object_finds_nothing() {
    assert_eq!(lookup(&json!(["a"]), "a"), None);
    assert_eq!(lookup(&json!("a"), "a"), None);
}

#[test]
fn groups_reads_lists_and_single_strings() {
    let claims = sample_claims();
    let cases: &[(&str, &[&str])] = &[
        ("groups", &["admins", "staff"]),
        ("single_group", &["admins"]),
        ("empty", &[]),
        ("missing", &[]),
        ("one", &[]),
        ("nothing", &[]),
        ("realm_access", &[]),
        (
            "realm_access.roles",
            &["offline_access", "uma_authorization"],
        ),
        ("resource_access.my-client.roles", &["client-admin"]),
        ("https://example.com/groups", &["auth0-group"]),
    ];
    for (path, expected) in cases {
        assert_eq!(groups(&claims, path), *expected, "path {path:?}");
    }
}

#[test]
fn string_claim_reads_strings_and_numbers() {
    let claims = sample_claims();
    let cases: &[(&str, Option<&str>)] = &[
        ("preferred_username", Some("alice")),
        ("numeric_id", Some("1234567890123")),
        ("negative", Some("-5")),
        ("ratio", Some("1.5")),
        ("a.b.c", Some("deep")),
        ("empty", None),
        ("email_verified", None),
        ("groups", None),
        ("realm_access", None),
        ("nothing", None),
        ("missing", None),
    ];
    for (path, expected) in cases {
        assert_eq!(
            string_claim(&claims, path).as_deref(),
            *expected,
            "path {path:?}"
        );
    }
}

#[test]
fn bool_claim_is_true_only_for_true() {
    let claims = sample_claims();
    let cases: &[(&str, bool)] = &[
        ("email_verified", true),
        ("cognito_verified", true),
        ("cognito_unverified", false),
        ("shouty", false),
        ("one", false),
        ("preferred_username", false),
        ("nothing", false),
        ("missing", false),
    ];
    for (path, expected) in cases {
        assert_eq!(bool_claim(&claims, path), *expected, "path {path:?}");
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("test fixture is not an object: {other}"),
    }
}

#[test]
fn merge_userinfo_adds_and_overrides_profile_claims() {
    let mut id_token = object(json!({
        "sub": "user-1",
        "email": "old@example.com",
        "name": "Alice"
    }));
    let userinfo = object(json!({
        "sub": "user-1",
        "email": "new@example.com",
        "groups": ["staff"]
    }));
    merge_userinfo(&mut id_token, &userinfo);
    assert_eq!(
        Value::Object(id_token),
        json!({
            "sub": "user-1",
            "email": "new@example.com",
            "name": "Alice",
            "groups": ["staff"]
        })
    );
}

#[test]
fn merge_userinfo_never_touches_protocol_claims() {
    let signed = json!({
        "iss": "https://idp.example.com",
        "aud": "portcullis",
        "azp": "portcullis",
        "exp": 2000,
        "iat": 1000,
        "nbf": 1000,
        "nonce": "n-0",
        "auth_time": 999,
        "at_hash": "hash-a",
        "c_hash": "hash-c",
        "sid": "session-1",
        "sub": "user-1"
    });
    let mut id_token = object(signed.clone());
    let userinfo = object(json!({
        "iss": "https://evil.example.com",
        "aud": "someone-else",
        "azp": "someone-else",
        "exp": 9999,
        "iat": 1,
        "nbf": 1,
        "nonce": "n-1",
        "auth_time": 1,
        "at_hash": "x",
        "c_hash": "y",
        "sid": "session-2",
        "sub": "user-2"
    }));
    merge_userinfo(&mut id_token, &userinfo);
    assert_eq!(Value::Object(id_token), signed);
}

#[test]
fn merge_userinfo_does_not_add_protocol_claims_the_id_token_lacked() {
    let mut id_token = object(json!({"sub": "user-1"}));
    let userinfo = object(json!({"sub": "user-1", "sid": "session-2", "email": "a@b.c"}));
    merge_userinfo(&mut id_token, &userinfo);
    assert_eq!(
        Value::Object(id_token),
        json!({"sub": "user-1", "email": "a@b.c"})
    );
}

#[test]
fn forwarded_email_only_when_verified_unless_allowed() {
    let cases: &[(Option<&str>, bool, bool, Option<&str>)] = &[
        (Some("a@example.com"), true, false, Some("a@example.com")),
        (Some("a@example.com"), false, false, None),
        (Some("a@example.com"), false, true, Some("a@example.com")),
        (Some("a@example.com"), true, true, Some("a@example.com")),
        (None, true, false, None),
        (None, false, true, None),
    ];
    for (email, verified, allow, expected) in cases {
        assert_eq!(
            forwarded_email(*email, *verified, *allow),
            *expected,
            "email {email:?} verified {verified} allow_unverified {allow}"
        );
    }
}

#[test]
fn username_requires_a_verified_email_when_it_is_the_email() {
    let verified = json!({"sub": "u1", "email": "a@example.com", "email_verified": true});
    let cognito = json!({"sub": "u2", "email": "c@example.com", "email_verified": "true"});
    let unverified = json!({"sub": "u3", "email": "d@example.com", "email_verified": false});
    let string_false = json!({"sub": "u4", "email": "e@example.com", "email_verified": "false"});
    let odd = json!({"sub": "u5", "email": "f@example.com", "email_verified": "yes"});
    let silent = json!({"sub": "u6", "email": "g@example.com"});
    let numeric = json!({"sub": 42, "email_verified": false});
    let no_email = json!({"sub": "u7", "email_verified": true});
    let missing = |claim: &str| {
        Err(UsernameError::Missing {
            claim: claim.to_owned(),
        })
    };
    let not_verified = Err(UsernameError::EmailNotVerified);
    let ok = |user: &str| Ok(user.to_owned());
    let cases: Vec<(&Value, &str, bool, Result<String, UsernameError>)> = vec![
        (&verified, "email", false, ok("a@example.com")),
        (&cognito, "email", false, ok("c@example.com")),
        (&unverified, "email", false, not_verified.clone()),
        (&string_false, "email", false, not_verified.clone()),
        (&odd, "email", false, not_verified.clone()),
        // Entra ID sends no email_verified at all.
        (&silent, "email", false, not_verified.clone()),
        (&unverified, "email", true, ok("d@example.com")),
        (&silent, "email", true, ok("g@example.com")),
        // A missing claim is missing, verified or not.
        (&no_email, "email", false, missing("email")),
        (&no_email, "email", true, missing("email")),
        // Other claims do not depend on email_verified.
        (&unverified, "sub", false, ok("u3")),
        (&numeric, "sub", false, ok("42")),
        (
            &unverified,
            "preferred_username",
            false,
            missing("preferred_username"),
        ),
    ];
    for (claims, claim, allow, expected) in cases {
        assert_eq!(
            username(claims, claim, allow),
            expected,
            "claim {claim:?} allow_unverified {allow} claims {claims}"
        );
    }
}

#[test]
fn username_errors_tell_the_user_and_the_log_apart() {
    let missing = UsernameError::Missing {
        claim: "email".to_owned(),
    };
    assert_eq!(missing.to_string(), "the claim \"email\" is missing");
    assert!(UsernameError::EmailNotVerified
        .page_message()
        .contains("not verified"));
    assert!(!missing.page_message().contains("not verified"));
}
