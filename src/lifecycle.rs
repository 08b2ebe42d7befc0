//! The decisions of a living session, free of I/O and of the clock (`now` is a parameter): is
//! it due for revalidation at the IdP, and what does a revalidation's outcome mean for it?
//!
//! The auth check never waits for the IdP: it asks [`refresh_due`], answers on the claims it has
//! (or denies once the grace is over), and leaves the refresh to the background, whose outcome
//! [`apply_refresh`] turns into keeping, updating or ending the session.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::Config;
use crate::login::{self, Client, SessionRefusal};
use crate::session::{Session, SessionView};

/// How often claims are read again, and how long a failing IdP is tolerated beyond that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshTiming {
    /// Seconds; 0 turns revalidation off.
    pub interval: u64,
    /// Seconds beyond the interval without a successful refresh before the session is denied.
    pub grace: u64,
}

/// Where a session stands against [`RefreshTiming`] at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDue {
    /// Claims are fresh enough (or revalidation is off, or there is nothing to revalidate with).
    NotDue,
    /// Pass or deny on the current claims, and start a refresh in the background.
    Due,
    /// No successful refresh for longer than the interval plus the grace: deny.
    PastGrace,
}

/// Whether a session whose claims were read at `claims_read_at` is due at `now`. `can_refresh`
/// is false when the session holds nothing to revalidate with (no refresh token, and no access
/// token that is still valid): such sessions keep today's behaviour.
pub fn refresh_due(
    claims_read_at: u64,
    now: u64,
    timing: RefreshTiming,
    can_refresh: bool,
) -> RefreshDue {
    if timing.interval == 0 || !can_refresh {
        return RefreshDue::NotDue;
    }
    let age = now.saturating_sub(claims_read_at);
    if age >= timing.interval.saturating_add(timing.grace) {
        RefreshDue::PastGrace
    } else if age >= timing.interval {
        RefreshDue::Due
    } else {
        RefreshDue::NotDue
    }
}

/// What the IdP said when asked again.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// Fresh, validated claims (a refreshed ID token's, merged with userinfo, or userinfo's).
    Claims(Value),
    /// The IdP refused: `invalid_grant` for the refresh token, or 401 from userinfo. The user
    /// is signed out (disabled, logged out, or the grant revoked).
    Refused(String),
    /// The IdP could not be asked (network, 5xx, timeout): keep the claims and retry later.
    Unreachable(String),
}

/// What to do with the session after a refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshAction {
    /// Store this session (same id, same absolute expiry) in place of the old one.
    Update(Box<Session>),
    /// End the session: the next check treats the browser as signed out.
    End(EndReason),
    /// Keep the current claims; try again after a pause.
    Retry,
}

/// Why a refresh ends a session, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    Refused(String),
    /// OpenID Connect Core 12.2: a refreshed ID token must keep `sub`.
    SubjectChanged,
    /// The global rules no longer let the user in (e.g. a required group was removed).
    RulesRefuse(SessionRefusal),
    /// The session's provider is no longer configured.
    ProviderGone,
}

/// The session a refresh outcome leaves, at `now`. New claims replace the old ones (groups,
/// email, email_verified, names) and the global rules are applied again; what belongs to the
/// session rather than to the claims (creation, absolute expiry, the IdP session, the browser)
/// is kept.
pub fn apply_refresh(
    old: &SessionView<'_>,
    outcome: RefreshOutcome,
    config: &Config,
    now: u64,
) -> RefreshAction {
    let claims = match outcome {
        RefreshOutcome::Claims(claims) => claims,
        RefreshOutcome::Refused(why) => return RefreshAction::End(EndReason::Refused(why)),
        RefreshOutcome::Unreachable(_) => return RefreshAction::Retry,
    };
    let subject = crate::claims::string_claim(&claims, "sub").unwrap_or_default();
    // A v1 session does not know its subject: any subject the IdP names is then taken.
    if !old.subject.is_empty() && subject != old.subject {
        return RefreshAction::End(EndReason::SubjectChanged);
    }
    let client = Client {
        user_agent: old.user_agent.map(str::to_owned),
        address: old.address.map(str::to_owned),
    };
    // The provider was looked up before it was asked; gone since, it vouches for nobody.
    let Some(provider) = config.provider(old.provider) else {
        return RefreshAction::End(EndReason::ProviderGone);
    };
    match login::session_from_claims(&claims, config, provider, now, client) {
        Ok(fresh) => RefreshAction::Update(Box::new(Session {
            created_at: old.created_at,
            expires_at: old.expires_at,
            idp_session: fresh.idp_session.or(old.idp_session.map(str::to_owned)),
            // What the tokens allow is the refresh's to say (see `Tokens::refreshable_until`).
            refreshable_until: old.refreshable_until,
            // A refresh asks the provider the user signed in with: it stays theirs.
            provider: old.provider.map(str::to_owned),
            ..fresh
        })),
        Err(refusal) => RefreshAction::End(EndReason::RulesRefuse(refusal)),
    }
}

/// The pause before the `attempt`-th retry (1-based) of a failed refresh: 10 s doubling, at most
/// 5 minutes, so an IdP that is down is not hammered and one that is back is noticed soon.
pub fn retry_pause(attempt: u32) -> Duration {
    let seconds = 10u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(16));
    Duration::from_secs(seconds.min(300))
}

/// Which retry a failed refresh is, from how long the session has been overdue (`now` minus
/// the last read minus the interval): the number of pauses of [`retry_pause`] that fit in that
/// time, plus one. Derived rather than counted, so that nothing is stored per failure and every
/// replica agrees.
pub fn retry_attempt(overdue: u64) -> u32 {
    let mut attempt = 1;
    let mut elapsed = 0u64;
    while attempt < 64 {
        elapsed = elapsed.saturating_add(retry_pause(attempt).as_secs());
        if elapsed > overdue {
            break;
        }
        attempt += 1;
    }
    attempt
}

/// What a session keeps of its login to revalidate it (and to end it at the IdP), sealed with
/// the token key in the store's Tokens space, as JSON. Its `Debug` never shows a token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The `id_token_hint` of an IdP logout (only with `OIDC_POST_LOGOUT_REDIRECT_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// Unix seconds; unknown (no `expires_in`) counts as already expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token_expires_at: Option<u64>,
    /// The login's nonce: a refreshed ID token may carry it, and then it must be this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("id_token", &self.id_token.is_some())
            .field("refresh_token", &self.refresh_token.is_some())
            .field("access_token", &self.access_token.is_some())
            .field("access_token_expires_at", &self.access_token_expires_at)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Until when these tokens can revalidate claims: forever with a refresh token (the IdP
    /// says when it no longer honours it), until the access token expires without one, never
    /// with neither. Stored in the session as `refreshable_until`.
    pub fn refreshable_until(&self) -> u64 {
        match (&self.refresh_token, &self.access_token) {
            (Some(_), _) => u64::MAX,
            (None, Some(_)) => self.access_token_expires_at.unwrap_or(0),
            (None, None) => 0,
        }
    }

    /// Nothing worth storing.
    pub fn is_empty(&self) -> bool {
        self.id_token.is_none() && self.refresh_token.is_none() && self.access_token.is_none()
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
