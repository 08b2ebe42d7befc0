use serde_json::json;

use super::*;
use crate::claims::UsernameError;
use crate::policy::DenyReason;

const TIMING: RefreshTiming = RefreshTiming {
    interval: 300,
    grace: 900,
};

#[test]
fn refresh_due_table() {
    let read_at = 1_000;
    let cases = [
        // (now, timing, can refresh, expected)
        (1_000, TIMING, true, RefreshDue::NotDue),
        (1_299, TIMING, true, RefreshDue::NotDue),
        (1_300, TIMING, true, RefreshDue::Due),
        (2_199, TIMING, true, RefreshDue::Due),
        (2_200, TIMING, true, RefreshDue::PastGrace),
        (9_999, TIMING, true, RefreshDue::PastGrace),
        // A clock that went back is not a reason to deny.
        (10, TIMING, true, RefreshDue::NotDue),
        // Off, or nothing to revalidate with: today's behaviour.
        (
            9_999,
            RefreshTiming {
                interval: 0,
                grace: 900,
            },
            true,
            RefreshDue::NotDue,
        ),
        (9_999, TIMING, false, RefreshDue::NotDue),
        // No grace: due and past grace at once.
        (
            1_300,
            RefreshTiming {
                interval: 300,
                grace: 0,
            },
            true,
            RefreshDue::PastGrace,
        ),
        (
            u64::MAX,
            RefreshTiming {
                interval: u64::MAX,
                grace: u64::MAX,
            },
            true,
            RefreshDue::NotDue,
        ),
    ];
    for (now, timing, can_refresh, expected) in cases {
        assert_eq!(
            refresh_due(read_at, now, timing, can_refresh),
            expected,
            "now {now}, {timing:?}, can refresh {can_refresh}"
        );
    }
}

/// Two providers: the sessions here signed in with `keycloak`.
fn config(extra: &[(&str, &str)]) -> Config {
    let mut env = vec![("REQUIRE_GROUP", "ops")];
    env.extend_from_slice(extra);
    crate::config::for_tests_with_providers(&["keycloak", "google"], &env)
}

fn old_session() -> Session {
    Session {
        user: "alice-sub".into(),
        email: Some("old@example.com".into()),
        email_verified: true,
        preferred_username: Some("alice".into()),
        groups: vec!["ops".into(), "dev".into()],
        created_at: 1_000,
        expires_at: 44_200,
        subject: "alice-sub".into(),
        idp_session: Some("idp-1".into()),
        claims_read_at: 1_000,
        user_agent: Some("Firefox".into()),
        address: Some("192.0.2.1".into()),
        refreshable_until: u64::MAX,
        provider: Some("keycloak".into()),
    }
}

#[test]
fn apply_refresh_table() {
    let old = old_session();
    let old_view = SessionView {
        user: &old.user,
        email: old.email.as_deref(),
        email_verified: old.email_verified,
        preferred_username: old.preferred_username.as_deref(),
        groups: old.groups.iter().map(String::as_str).collect(),
        created_at: old.created_at,
        expires_at: old.expires_at,
        subject: &old.subject,
        idp_session: old.idp_session.as_deref(),
        claims_read_at: old.claims_read_at,
        user_agent: old.user_agent.as_deref(),
        address: old.address.as_deref(),
        refreshable_until: old.refreshable_until,
        provider: old.provider.as_deref(),
    };
    let now = 2_000;
    let updated = Session {
        email: Some("new@example.com".into()),
        groups: vec!["ops".into(), "admins".into()],
        claims_read_at: now,
        ..old.clone()
    };
    let cases: Vec<(&str, RefreshOutcome, RefreshAction)> = vec![
        (
            "new claims replace the old; the session's own facts stay",
            RefreshOutcome::Claims(json!({
                "sub": "alice-sub", "email": "new@example.com", "email_verified": true,
                "preferred_username": "alice", "groups": ["ops", "admins"],
            })),
            RefreshAction::Update(Box::new(updated)),
        ),
        (
            "a required group removed at the IdP ends the session",
            RefreshOutcome::Claims(json!({"sub": "alice-sub", "groups": ["dev"]})),
            RefreshAction::End(EndReason::RulesRefuse(SessionRefusal::Rule {
                user: "alice-sub".into(),
                rule: DenyReason::NotInRequiredGroup,
            })),
        ),
        (
            "another subject ends the session",
            RefreshOutcome::Claims(json!({"sub": "mallory", "groups": ["ops"]})),
            RefreshAction::End(EndReason::SubjectChanged),
        ),
        (
            "claims without the username end the session",
            RefreshOutcome::Claims(json!({"groups": ["ops"]})),
            RefreshAction::End(EndReason::SubjectChanged),
        ),
        (
            "invalid_grant ends the session",
            RefreshOutcome::Refused("invalid_grant".into()),
            RefreshAction::End(EndReason::Refused("invalid_grant".into())),
        ),
        (
            "an unreachable IdP keeps the claims",
            RefreshOutcome::Unreachable("connection refused".into()),
            RefreshAction::Retry,
        ),
    ];
    for (what, outcome, expected) in cases {
        assert_eq!(
            apply_refresh(&old_view, outcome, &config(&[]), now),
            expected,
            "{what}"
        );
    }
    // A provider taken out of the configuration vouches for nobody any more.
    let orphan = SessionView {
        provider: Some("gone"),
        ..old_view.clone()
    };
    assert_eq!(
        apply_refresh(
            &orphan,
            RefreshOutcome::Claims(json!({"sub": "alice-sub", "groups": ["ops"]})),
            &config(&[]),
            now
        ),
        RefreshAction::End(EndReason::ProviderGone)
    );
    // A first-format session (no subject) takes the subject the IdP names.
    let v1_view = SessionView {
        subject: "",
        ..old_view.clone()
    };
    let action = apply_refresh(
        &v1_view,
        RefreshOutcome::Claims(json!({"sub": "alice-sub", "groups": ["ops"]})),
        &config(&[]),
        now,
    );
    assert!(
        matches!(&action, RefreshAction::Update(s) if s.subject == "alice-sub"),
        "{action:?}"
    );
    // The username rules of a login apply again.
    let action = apply_refresh(
        &old_view,
        RefreshOutcome::Claims(json!({
            "sub": "alice-sub", "email": "a@example.com", "email_verified": "no", "groups": ["ops"],
        })),
        &config(&[("OIDC_KEYCLOAK_USERNAME_CLAIM", "email")]),
        now,
    );
    assert_eq!(
        action,
        RefreshAction::End(EndReason::RulesRefuse(SessionRefusal::Username(
            UsernameError::EmailNotVerified
        )))
    );
}

#[test]
fn retries_back_off_to_five_minutes() {
    let pauses: Vec<u64> = (1..=8).map(|n| retry_pause(n).as_secs()).collect();
    assert_eq!(pauses, [10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(retry_pause(0).as_secs(), 10);
    assert_eq!(retry_pause(u32::MAX).as_secs(), 300);
}

#[test]
fn the_retry_follows_from_how_long_the_session_is_overdue() {
    // Pauses 10, 20, 40, 80, 160, 300...: cumulative 10, 30, 70, 150, 310, 610.
    let cases = [
        (0, 1),
        (9, 1),
        (10, 2),
        (29, 2),
        (30, 3),
        (70, 4),
        (150, 5),
        (309, 5),
        (310, 6),
        (610, 7),
        (u64::MAX, 64),
    ];
    for (overdue, attempt) in cases {
        assert_eq!(retry_attempt(overdue), attempt, "overdue {overdue}");
    }
    assert_eq!(retry_pause(retry_attempt(u64::MAX)).as_secs(), 300);
}

#[test]
fn tokens_say_until_when_they_can_revalidate() {
    let some = |s: &str| Some(s.to_string());
    let cases = [
        (Tokens::default(), 0, true),
        (
            Tokens {
                id_token: some("id"),
                ..Tokens::default()
            },
            0,
            false,
        ),
        (
            Tokens {
                refresh_token: some("rt"),
                access_token: some("at"),
                access_token_expires_at: Some(5_000),
                ..Tokens::default()
            },
            u64::MAX,
            false,
        ),
        (
            Tokens {
                access_token: some("at"),
                access_token_expires_at: Some(5_000),
                ..Tokens::default()
            },
            5_000,
            false,
        ),
        // No `expires_in`: not known to be valid, so never used.
        (
            Tokens {
                access_token: some("at"),
                ..Tokens::default()
            },
            0,
            false,
        ),
    ];
    for (tokens, until, empty) in cases {
        assert_eq!(tokens.refreshable_until(), until, "{tokens:?}");
        assert_eq!(tokens.is_empty(), empty, "{tokens:?}");
    }
    // Never a token in a log line; the JSON keeps the logout's `id_token` member.
    let tokens = Tokens {
        id_token: some("ID-SECRET"),
        refresh_token: some("RT-SECRET"),
        access_token: some("AT-SECRET"),
        access_token_expires_at: Some(1),
        nonce: some("N-SECRET"),
    };
    assert!(!format!("{tokens:?}").contains("SECRET"));
    let json: Value = serde_json::to_value(&tokens).unwrap();
    assert_eq!(json["id_token"], "ID-SECRET");
    let back: Tokens = serde_json::from_value(json!({"id_token": "x"})).unwrap();
    assert_eq!(back.id_token.as_deref(), Some("x"));
}
