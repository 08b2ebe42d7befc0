use std::collections::HashSet;
use std::time::Duration;

use portcullis_testkit::scrape;

use super::*;
use crate::login::SessionRefusal;

fn is_snake_case(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[test]
fn every_auth_outcome_has_its_own_place_and_labels() {
    let mut pairs = HashSet::new();
    for (i, outcome) in AuthOutcome::ALL.iter().enumerate() {
        assert_eq!(outcome.index(), i, "{outcome:?}");
        assert!(is_snake_case(outcome.outcome()), "{outcome:?}");
        assert!(is_snake_case(outcome.reason()), "{outcome:?}");
        assert!(
            pairs.insert((outcome.outcome(), outcome.reason())),
            "{outcome:?} shares its labels"
        );
    }
}

#[test]
fn auth_outcomes_are_labelled_as_documented() {
    let cases = [
        (AuthOutcome::Allow, "allow", "none"),
        (
            AuthOutcome::Deny(DenyReason::NotInRequiredGroup),
            "deny",
            "not_in_required_group",
        ),
        (
            AuthOutcome::Deny(DenyReason::RouteUserNotAllowed),
            "deny",
            "route_user_not_allowed",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::NoCookie),
            "not_signed_in",
            "no_cookie",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::CookieRepeated),
            "not_signed_in",
            "cookie_repeated",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::CookieNotValid),
            "not_signed_in",
            "cookie_not_valid",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::UnknownSession),
            "not_signed_in",
            "unknown_session",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::Expired),
            "not_signed_in",
            "expired",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::Unreadable),
            "not_signed_in",
            "unreadable",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::Idle),
            "not_signed_in",
            "idle",
        ),
        (
            AuthOutcome::NotSignedIn(NotSignedIn::PastGrace),
            "not_signed_in",
            "past_grace",
        ),
        (AuthOutcome::Error(CheckError::Store), "error", "store"),
        (
            AuthOutcome::Error(CheckError::BadRequest),
            "error",
            "bad_request",
        ),
        (
            AuthOutcome::Error(CheckError::Provider),
            "error",
            "provider",
        ),
        (
            AuthOutcome::InvalidToken(TokenRefusal::Audience),
            "invalid_token",
            "audience",
        ),
        (
            AuthOutcome::InvalidToken(TokenRefusal::NotAccessToken),
            "invalid_token",
            "not_access_token",
        ),
        (
            AuthOutcome::Error(CheckError::Assertion),
            "error",
            "assertion",
        ),
    ];
    for (outcome, label, reason) in cases {
        assert_eq!((outcome.outcome(), outcome.reason()), (label, reason));
    }
    assert_eq!(Endpoint::Auth.as_str(), "auth");
    assert_eq!(Endpoint::ForwardAuth.as_str(), "forward-auth");
}

#[test]
fn the_other_label_sets_are_small_unique_and_snake_case() {
    fn check<T: Copy + std::fmt::Debug>(all: &[T], label: fn(T) -> &'static str) {
        let mut seen = HashSet::new();
        for &value in all {
            assert!(is_snake_case(label(value)), "{value:?}");
            assert!(seen.insert(label(value)), "{value:?} repeats a label");
        }
    }
    check(LoginOutcome::ALL, LoginOutcome::as_str);
    check(RefreshOutcome::ALL, RefreshOutcome::as_str);
    check(BackchannelOutcome::ALL, BackchannelOutcome::as_str);
    check(EndedBy::ALL, EndedBy::as_str);
    // `as usize` is where each counter is: every list must be in declaration order.
    for (i, outcome) in LoginOutcome::ALL.iter().enumerate() {
        assert_eq!(*outcome as usize, i);
    }
    for (i, outcome) in RefreshOutcome::ALL.iter().enumerate() {
        assert_eq!(*outcome as usize, i);
    }
    for (i, outcome) in BackchannelOutcome::ALL.iter().enumerate() {
        assert_eq!(*outcome as usize, i);
    }
    for (i, by) in EndedBy::ALL.iter().enumerate() {
        assert_eq!(*by as usize, i);
    }
    let ended: Vec<&str> = EndedBy::ALL.iter().map(|by| by.as_str()).collect();
    assert_eq!(
        ended,
        [
            "sign_out",
            "idle",
            "admin",
            "backchannel",
            "own_sessions",
            "refresh"
        ]
    );
}

#[test]
fn callback_failures_are_counted_by_kind() {
    let cases = [
        (
            CallbackFailure::IdpError {
                error: "access_denied".into(),
                description: String::new(),
            },
            LoginOutcome::IdpError,
        ),
        (CallbackFailure::MissingState, LoginOutcome::State),
        (CallbackFailure::NoLoginCookie, LoginOutcome::State),
        (CallbackFailure::StateMismatch, LoginOutcome::State),
        (CallbackFailure::MissingCode, LoginOutcome::State),
        (CallbackFailure::Expired, LoginOutcome::Expired),
        (
            CallbackFailure::IssuerMismatch {
                found: "https://evil.example".into(),
            },
            LoginOutcome::Issuer,
        ),
        (CallbackFailure::AlreadyUsed, LoginOutcome::Replayed),
    ];
    for (failure, expected) in cases {
        assert_eq!(login_failure(&failure), expected, "{failure:?}");
    }
}

#[test]
fn refreshes_that_end_a_session_say_why() {
    let cases = [
        (
            EndReason::Refused("invalid_grant".into()),
            RefreshOutcome::Refused,
        ),
        (EndReason::SubjectChanged, RefreshOutcome::SubjectChanged),
        (
            EndReason::RulesRefuse(SessionRefusal::Rule {
                user: "alice".into(),
                rule: DenyReason::NotInRequiredGroup,
            }),
            RefreshOutcome::Denied,
        ),
    ];
    for (reason, expected) in cases {
        assert_eq!(refresh_ended(&reason), expected, "{reason:?}");
    }
}

#[test]
fn every_series_is_rendered_from_the_start_and_moves_with_its_labels() {
    let metrics = Metrics::isolated();
    let text = metrics.render();
    let auth = |text: &str, endpoint: &str, outcome: &str, reason: &str| {
        scrape::value(
            text,
            AUTH_DECISIONS,
            &[
                ("endpoint", endpoint),
                ("outcome", outcome),
                ("reason", reason),
            ],
        )
    };
    for endpoint in Endpoint::ALL {
        for outcome in AuthOutcome::ALL {
            assert_eq!(
                auth(
                    &text,
                    endpoint.as_str(),
                    outcome.outcome(),
                    outcome.reason()
                ),
                Some(0.0),
                "{endpoint:?} {outcome:?}:\n{text}"
            );
        }
    }
    for outcome in LoginOutcome::ALL {
        assert_eq!(
            scrape::value(&text, LOGINS, &[("outcome", outcome.as_str())]),
            Some(0.0)
        );
    }

    metrics.auth_check(
        Endpoint::ForwardAuth,
        AuthOutcome::Deny(DenyReason::NoGroups),
        Duration::from_micros(70),
    );
    metrics.auth_check(
        Endpoint::Auth,
        AuthOutcome::Allow,
        Duration::from_micros(30),
    );
    metrics.auth_check(Endpoint::Auth, AuthOutcome::Allow, Duration::from_millis(3));
    metrics.login(LoginOutcome::Replayed);
    metrics.refresh(RefreshOutcome::Unreachable);
    metrics.backchannel_logout(BackchannelOutcome::Invalid);
    metrics.sessions_ended(EndedBy::Admin, 3);
    metrics.sessions_ended(EndedBy::SignOut, 0);
    let text = metrics.render();

    assert_eq!(auth(&text, "forward-auth", "deny", "no_groups"), Some(1.0));
    assert_eq!(auth(&text, "auth", "deny", "no_groups"), Some(0.0));
    assert_eq!(auth(&text, "auth", "allow", "none"), Some(2.0));
    assert_eq!(auth(&text, "forward-auth", "allow", "none"), Some(0.0));
    let count = |endpoint| {
        scrape::value(
            &text,
            &format!("{AUTH_CHECK_DURATION}_count"),
            &[("endpoint", endpoint)],
        )
    };
    assert_eq!(count("auth"), Some(2.0), "{text}");
    assert_eq!(count("forward-auth"), Some(1.0), "{text}");
    let bucket = |le| {
        scrape::value(
            &text,
            &format!("{AUTH_CHECK_DURATION}_bucket"),
            &[("endpoint", "auth"), ("le", le)],
        )
    };
    // Explicit buckets from 50 µs: 30 µs in the first, 3 ms from the 5 ms bucket up.
    assert_eq!(bucket("0.00005"), Some(1.0), "{text}");
    assert_eq!(bucket("0.0025"), Some(1.0), "{text}");
    assert_eq!(bucket("0.005"), Some(2.0), "{text}");
    assert_eq!(bucket("+Inf"), Some(2.0), "{text}");

    assert_eq!(
        scrape::value(&text, LOGINS, &[("outcome", "replayed")]),
        Some(1.0)
    );
    assert_eq!(
        scrape::value(&text, LOGINS, &[("outcome", "success")]),
        Some(0.0)
    );
    assert_eq!(
        scrape::value(&text, REFRESHES, &[("outcome", "unreachable")]),
        Some(1.0)
    );
    assert_eq!(
        scrape::value(&text, BACKCHANNEL_LOGOUTS, &[("outcome", "invalid")]),
        Some(1.0)
    );
    assert_eq!(
        scrape::value(&text, SESSIONS_ENDED, &[("reason", "admin")]),
        Some(3.0)
    );
    assert_eq!(
        scrape::value(&text, SESSIONS_ENDED, &[("reason", "sign_out")]),
        Some(0.0)
    );
    for help in [
        format!("# HELP {AUTH_DECISIONS} "),
        format!("# TYPE {AUTH_DECISIONS} counter"),
        format!("# TYPE {AUTH_CHECK_DURATION} histogram"),
        "# TYPE process_resident_memory_bytes gauge".to_string(),
    ] {
        assert!(text.contains(&help), "no {help:?} in\n{text}");
    }
    assert!(
        scrape::value(&text, "process_resident_memory_bytes", &[]).is_some_and(|v| v > 0.0),
        "{text}"
    );
    assert!(
        scrape::value(&text, "process_open_fds", &[]).is_some_and(|v| v > 0.0),
        "{text}"
    );
}

#[test]
fn two_isolated_metrics_count_apart() {
    let (one, two) = (Metrics::isolated(), Metrics::isolated());
    one.login(LoginOutcome::Success);
    let labels = [("outcome", "success")];
    assert_eq!(scrape::value(&one.render(), LOGINS, &labels), Some(1.0));
    assert_eq!(scrape::value(&two.render(), LOGINS, &labels), Some(0.0));
}
