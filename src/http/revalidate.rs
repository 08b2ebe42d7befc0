//! Revalidation at the IdP, in the background of an auth check: one refresh per session at a
//! time across replicas (a short lock in the store), then the outcome applied as
//! `lifecycle::apply_refresh` decides: the session updated in place, ended, or kept with the
//! lock held for the retry pause. Nothing here is awaited by a request.

use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest};

use super::{unix_now, AppState};
use crate::lifecycle::{self, RefreshAction, RefreshDue, RefreshOutcome, Tokens};
use crate::metrics::{self, EndedBy, RefreshOutcome as Counted};

/// How long a refresh may hold its session's lock: longer than the refresh itself may take
/// ([`REFRESH_TIMEOUT`]), short enough that a replica that died mid-refresh delays the next
/// one little.
const LOCK_TTL: Duration = Duration::from_secs(30);
/// The token request and userinfo each time out after 10 s; the whole refresh is bounded too.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(25);
/// This replica asks the store's lock for one session at most this often, so that a busy
/// session's checks while its refresh runs (or pauses after a failure) cost no store write each.
const TRY_INTERVAL: Duration = Duration::from_secs(1);
/// Past this many sessions tried, the ones tried longer ago than [`TRY_INTERVAL`] are dropped.
const TRIED_PRUNE_AT: usize = 4096;
/// A session past its grace is logged at most this often.
const PAST_GRACE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Starts a refresh of session `id` in the background, unless one is running (here or on
/// another replica) or pausing after a failure.
pub fn start(req: &HttpRequest, id: &str) {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        tracing::debug!("no application state to revalidate a session with");
        return;
    };
    if !first_try_in_a_while(&state, id, Instant::now()) {
        return;
    }
    let id = id.to_owned();
    // As the request that started it: its lines carry that request's id.
    let request_id = crate::telemetry::current_request_id();
    let refresh = async move {
        match state.store.claim_refresh(&id, LOCK_TTL).await {
            Ok(true) => run(&state, &id).await,
            Ok(false) => {}
            Err(err) => tracing::debug!(error = %err, "could not take a revalidation lock"),
        }
    };
    match request_id {
        Some(id) => actix_web::rt::spawn(crate::telemetry::with_request_id(id, refresh)),
        None => actix_web::rt::spawn(refresh),
    };
}

/// Whether this replica has not tried `id` within [`TRY_INTERVAL`]; records the try.
pub(super) fn first_try_in_a_while(state: &AppState, id: &str, now: Instant) -> bool {
    let mut tried = state
        .refresh_tried
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if tried
        .get(id)
        .is_some_and(|at| now.duration_since(*at) < TRY_INTERVAL)
    {
        return false;
    }
    if tried.len() >= TRIED_PRUNE_AT {
        tried.retain(|_, at| now.duration_since(*at) < TRY_INTERVAL);
    }
    tried.insert(id.to_owned(), now);
    true
}

/// With the lock held: read the session and its tokens again, ask the IdP, apply the outcome.
async fn run(state: &AppState, id: &str) {
    let store = &state.store;
    let now = unix_now();
    let stored = match store.get_session(id).await {
        Ok(Some(stored)) => stored,
        // Ended meanwhile: nothing to revalidate.
        Ok(None) => return release(state, id).await,
        Err(err) => {
            tracing::debug!(error = %err, "could not read a session to revalidate");
            return release(state, id).await;
        }
    };
    let Ok(old) = stored.live_view(now) else {
        return release(state, id).await;
    };
    // Another check (here or on another replica) may have refreshed it since this one read
    // it, and released the lock: then it is fresh, and the IdP is not asked twice.
    let timing = state.config.session_refresh;
    let can_refresh = old.refreshable_until > now;
    if lifecycle::refresh_due(old.claims_read_at, now, timing, can_refresh) == RefreshDue::NotDue {
        return release(state, id).await;
    }
    let Some(tokens) = read_tokens(state, id).await else {
        state.metrics.refresh(Counted::NoTokens);
        tracing::info!(
            user = old.user,
            outcome = Counted::NoTokens.as_str(),
            "could not revalidate a session: its tokens cannot be read; tried again after a pause"
        );
        return hold(state, id, old.claims_read_at, now).await;
    };
    // The provider the user signed in with; one no longer configured vouches for nobody.
    let refreshed = match state.providers.get(old.provider) {
        None => crate::oidc::Refreshed {
            outcome: RefreshOutcome::Refused(
                "the session's provider is no longer configured".to_string(),
            ),
            tokens: tokens.clone(),
        },
        Some(oidc) => {
            match tokio::time::timeout(REFRESH_TIMEOUT, oidc.refresh(&tokens, old.subject, now))
                .await
            {
                Ok(refreshed) => refreshed,
                Err(_) => crate::oidc::Refreshed {
                    outcome: RefreshOutcome::Unreachable("the refresh timed out".to_string()),
                    tokens: tokens.clone(),
                },
            }
        }
    };
    let now = unix_now();
    if let RefreshOutcome::Unreachable(why) = &refreshed.outcome {
        state.metrics.refresh(Counted::Unreachable);
        tracing::warn!(
            user = old.user,
            outcome = Counted::Unreachable.as_str(),
            reason = why.as_str(),
            "could not revalidate a session at the IdP; its claims are kept, and it is tried \
             again after a pause"
        );
    }
    match lifecycle::apply_refresh(&old, refreshed.outcome, &state.config, now) {
        RefreshAction::Update(mut session) => {
            session.refreshable_until = refreshed.tokens.refreshable_until();
            let sealed = match seal(state, &refreshed.tokens) {
                Some(sealed) => sealed,
                None => {
                    state.metrics.refresh(Counted::Internal);
                    tracing::warn!(
                        user = old.user,
                        outcome = Counted::Internal.as_str(),
                        "could not seal a revalidated session's tokens; tried again after a pause"
                    );
                    return hold(state, id, old.claims_read_at, now).await;
                }
            };
            let ttl = Duration::from_secs(session.expires_at.saturating_sub(now).max(1));
            match store.replace_session(id, &session, Some(sealed), ttl).await {
                Ok(true) => {
                    state.metrics.refresh(Counted::Success);
                    tracing::debug!(
                        user = %session.user,
                        groups = session.groups.len(),
                        "session revalidated at the IdP"
                    )
                }
                // Ended meanwhile: it stays ended, and nothing was revalidated.
                Ok(false) => {}
                Err(err) => {
                    state.metrics.refresh(Counted::Store);
                    tracing::warn!(
                        user = %session.user,
                        outcome = Counted::Store.as_str(),
                        error = %err,
                        "could not store a revalidated session"
                    )
                }
            }
            release(state, id).await;
        }
        RefreshAction::End(reason) => {
            let outcome = metrics::refresh_ended(&reason);
            match store.end_session(id).await {
                Ok(ended) => {
                    state.metrics.refresh(outcome);
                    state
                        .metrics
                        .sessions_ended(EndedBy::Refresh, usize::from(ended));
                    tracing::info!(
                        user = old.user,
                        outcome = outcome.as_str(),
                        reason = ?reason,
                        "session ended: the IdP no longer vouches for it"
                    )
                }
                Err(err) => {
                    state.metrics.refresh(Counted::Store);
                    tracing::warn!(
                        user = old.user,
                        outcome = Counted::Store.as_str(),
                        error = %err,
                        "could not end a refused session"
                    )
                }
            }
            release(state, id).await;
        }
        RefreshAction::Retry => hold(state, id, old.claims_read_at, now).await,
    }
}

async fn read_tokens(state: &AppState, id: &str) -> Option<Tokens> {
    let sealed = state.store.get_sealed_tokens(id).await.ok()??;
    let plain = state.keys.decrypt(&sealed).ok()?;
    serde_json::from_slice(&plain).ok()
}

fn seal(state: &AppState, tokens: &Tokens) -> Option<String> {
    let json = serde_json::to_vec(tokens).ok()?;
    state.keys.encrypt(&json).ok()
}

async fn release(state: &AppState, id: &str) {
    if let Err(err) = state.store.release_refresh(id).await {
        // The lock expires by itself; the next refresh only waits for it.
        tracing::debug!(error = %err, "could not release a revalidation lock");
    }
}

/// Keeps the lock for the pause before the next try, which grows with how long the session has
/// been overdue (see `lifecycle::retry_attempt`).
async fn hold(state: &AppState, id: &str, claims_read_at: u64, now: u64) {
    let overdue = now
        .saturating_sub(claims_read_at)
        .saturating_sub(state.config.session_refresh.interval);
    let pause = lifecycle::retry_pause(lifecycle::retry_attempt(overdue));
    if let Err(err) = state.store.hold_refresh(id, pause).await {
        tracing::debug!(error = %err, "could not hold a revalidation lock");
    }
}

/// A session denied because the IdP has not revalidated it in time: said at warn, at most once
/// a minute per session.
pub fn log_past_grace(state: &AppState, id: &str, user: &str) {
    let now = Instant::now();
    let mut logged = state
        .past_grace_logged
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if logged
        .get(id)
        .is_some_and(|at| now.duration_since(*at) < PAST_GRACE_LOG_INTERVAL)
    {
        return;
    }
    logged.retain(|_, at| now.duration_since(*at) < PAST_GRACE_LOG_INTERVAL);
    logged.insert(id.to_owned(), now);
    drop(logged);
    tracing::warn!(
        user,
        "session denied: not revalidated at the IdP within SESSION_REFRESH_INTERVAL plus \
         SESSION_REFRESH_GRACE (the IdP does not answer); it passes again once a refresh succeeds"
    );
}
