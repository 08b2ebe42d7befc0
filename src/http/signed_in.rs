//! Who is signed in: the session cookie (sent exactly once), its signature, the store, and the
//! live view of the session, and its activity (last seen, idle timeout), as one typed outcome.
//! The auth check, userinfo and the pages all ask here, so each of them counts as a use.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::header::HeaderValue;
use actix_web::HttpRequest;

use super::identity_headers::Rendered;
use super::session_cookie::{cookie_value, CookieValue};
use super::{revalidate, AppState};
use crate::assertion;
use crate::config::Config;
use crate::crypto::{self, Keys};
use crate::lifecycle::{self, RefreshDue};
use crate::session::{Found, Session, SessionView, Store, StoreError, StoredSession, Unusable};

/// Why a request is not signed in; logged at debug level, answered 401 (or a sign-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSignedIn {
    NoCookie,
    /// Sent more than once: a sibling subdomain may have planted one (cookie tossing), and
    /// which of them the browser sent first is not ours to guess.
    CookieRepeated,
    /// Not signed by this instance's secret (forged, truncated, or from another secret).
    CookieNotValid,
    /// Signed, but the store does not know it: signed out, revoked, or lost with the store.
    UnknownSession,
    Expired,
    /// The stored bytes do not decode: never guessed at.
    Unreadable,
    /// Unused for longer than `SESSION_IDLE_TIMEOUT`: ended.
    Idle,
    /// Not revalidated at the IdP for longer than `SESSION_REFRESH_INTERVAL` plus
    /// `SESSION_REFRESH_GRACE` (the IdP did not answer): denied until a refresh succeeds.
    PastGrace,
}

impl NotSignedIn {
    pub fn as_str(self) -> &'static str {
        match self {
            NotSignedIn::NoCookie => "no session cookie",
            NotSignedIn::CookieRepeated => "session cookie sent more than once",
            NotSignedIn::CookieNotValid => "session cookie not valid",
            NotSignedIn::UnknownSession => "session unknown or revoked",
            NotSignedIn::Expired => "session expired",
            NotSignedIn::Unreadable => "session unreadable",
            NotSignedIn::Idle => "session idle for longer than SESSION_IDLE_TIMEOUT",
            NotSignedIn::PastGrace => {
                "session not revalidated at the IdP within SESSION_REFRESH_INTERVAL plus \
                 SESSION_REFRESH_GRACE"
            }
        }
    }
}

impl std::fmt::Display for NotSignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The session id in the request's session cookie, if the cookie is present once and its
/// signature holds.
pub fn session_id<'r>(
    req: &'r HttpRequest,
    config: &Config,
    keys: &Keys,
) -> Result<&'r str, NotSignedIn> {
    let value = match cookie_value(req, &config.cookie_name) {
        CookieValue::Missing => return Err(NotSignedIn::NoCookie),
        CookieValue::Repeated => return Err(NotSignedIn::CookieRepeated),
        CookieValue::Once(value) => value,
    };
    keys.verify(value).map_err(|_| NotSignedIn::CookieNotValid)
}

/// Last seen is written at most this often per session: a mark younger than this is left
/// alone, so most checks read and never write.
pub const TOUCH_INTERVAL_SECS: u64 = 60;

/// What a check does about a live session's activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// Marked less than [`TOUCH_INTERVAL_SECS`] ago: nothing to write.
    Recent,
    /// No mark yet, or an old one: record `now` as last seen.
    Touch,
    /// Unused for longer than the idle timeout: not signed in, and the session is ended.
    Idle,
}

/// Decides from the last-seen mark read with the session (or its `created_at` while it has
/// none), so every replica decides alike without a map of its own.
///
/// A mark is not rewritten for a minute, so it stands for up to a minute of use after it:
/// idleness is counted from the end of that minute. A session is thus never ended before it
/// has really been unused for `idle_timeout`, and at most a minute after. A mark from the
/// future (another replica's clock running ahead) counts as just now.
pub fn activity(
    now: u64,
    created_at: u64,
    last_seen: Option<u64>,
    idle_timeout: Option<Duration>,
) -> Activity {
    let since = now.saturating_sub(last_seen.unwrap_or(created_at));
    if let Some(timeout) = idle_timeout {
        if since >= timeout.as_secs().saturating_add(TOUCH_INTERVAL_SECS) {
            return Activity::Idle;
        }
    }
    if last_seen.is_none() || since >= TOUCH_INTERVAL_SECS {
        Activity::Touch
    } else {
        Activity::Recent
    }
}

/// A signed-in request: the session's id (from the cookie) and its live view.
#[derive(Debug)]
pub struct SignedIn<'a> {
    pub id: &'a str,
    pub session: SessionView<'a>,
    /// With the session cache: what checks of this session work out once, kept in its entry.
    pub memo: Option<&'a Memo>,
}

/// Looks up who is signed in at `now` and hands the answer to `answer`: the live session, read
/// in place from the stored bytes (so it cannot outlive this call), or why there is none. A
/// store that fails is an error (the handlers answer 503), never "not signed in".
pub async fn with_session<T>(
    req: &HttpRequest,
    state: &AppState,
    now: u64,
    answer: impl FnOnce(Result<SessionView<'_>, NotSignedIn>) -> T,
) -> Result<T, StoreError> {
    with_signed_in(req, state, now, |signed_in| {
        answer(signed_in.map(|signed_in| signed_in.session))
    })
    .await
}

/// [`with_session`], with the session's id too (for pages that act on the user's sessions).
///
/// The session and its last-seen mark come in one round trip. Writing a new mark, or ending
/// an idle session, is spawned rather than awaited: the answer never waits for it, and a
/// failed mark costs only precision (logged at debug), never the check.
pub async fn with_signed_in<T>(
    req: &HttpRequest,
    state: &AppState,
    now: u64,
    answer: impl FnOnce(Result<SignedIn<'_>, NotSignedIn>) -> T,
) -> Result<T, StoreError> {
    let cookie = match cookie_value(req, &state.config.cookie_name) {
        CookieValue::Missing => return Ok(answer(Err(NotSignedIn::NoCookie))),
        CookieValue::Repeated => return Ok(answer(Err(NotSignedIn::CookieRepeated))),
        CookieValue::Once(value) => value,
    };
    let (id, found) = match verified_from_cache(&state.store, cookie) {
        Some(hit) => hit,
        None => {
            let Ok(id) = state.keys.verify(cookie) else {
                return Ok(answer(Err(NotSignedIn::CookieNotValid)));
            };
            // Boxed, here and for `still_idle`: the store's futures are kilobytes, and in line
            // they would make every check's future that large, a cache hit's too.
            (
                id,
                Box::pin(state.store.find_session(id, Some(cookie))).await?,
            )
        }
    };
    let Found {
        session: stored,
        seen: last_seen,
        cached,
    } = found;
    let Some(stored) = stored else {
        return Ok(answer(Err(NotSignedIn::UnknownSession)));
    };
    // A cached session is decoded once, by the first check that reads it from its entry.
    let memo = cached
        .as_ref()
        .and_then(|cached| cached.derived(|| Memo::decode(&stored)));
    let live = match memo {
        Some(memo) => memo.live_view(now),
        None => stored.live_view(now),
    };
    let session = match live {
        Ok(session) => session,
        Err(Unusable::Expired) => return Ok(answer(Err(NotSignedIn::Expired))),
        Err(Unusable::Unreadable) => return Ok(answer(Err(NotSignedIn::Unreadable))),
    };
    let idle_timeout = state.config.session_idle_timeout;
    match activity(now, session.created_at, last_seen, idle_timeout) {
        Activity::Recent => {}
        Activity::Touch => touch_later(&state.store, id, now, session.expires_at),
        Activity::Idle => {
            // A cached copy may hold an old mark: another replica may have used the session
            // since. Only the store's own mark ends a session.
            if Box::pin(still_idle(&state.store, id, now, idle_timeout)).await? {
                end_later(&state.store, id, session.user);
                return Ok(answer(Err(NotSignedIn::Idle)));
            }
        }
    }
    // Revalidation never makes the answer wait: a due session is answered on its claims and
    // refreshed in the background; one past its grace is denied, and still refreshed, so that
    // an IdP that is back lets it in again.
    let can_refresh = session.refreshable_until > now;
    let timing = state.config.session_refresh;
    match lifecycle::refresh_due(session.claims_read_at, now, timing, can_refresh) {
        RefreshDue::NotDue => {}
        RefreshDue::Due => revalidate::start(req, id),
        RefreshDue::PastGrace => {
            revalidate::start(req, id);
            revalidate::log_past_grace(state, id, session.user);
            return Ok(answer(Err(NotSignedIn::PastGrace)));
        }
    }
    Ok(answer(Ok(SignedIn { id, session, memo })))
}

/// What the checks of one cached session work out once, kept in its cache entry (see
/// `session::Cached::derived`): they depend on the stored bytes and the configuration only,
/// and go with the entry, so every ending or change of the session (which evicts the entry)
/// forgets them.
#[derive(Debug)]
pub struct Memo {
    /// The session decoded; `None`: unreadable, as every check of these bytes would find.
    session: Option<Session>,
    /// The identity headers of an allowed answer, rendered by the first allowed check.
    pub rendered: OnceLock<Rendered>,
    /// `UPSTREAM_JWT`: the last assertion answered for this session and the origin it names.
    /// Its claims are those of this very session, so only its age and origin decide whether it
    /// is sent again (`assertion::reusable`).
    assertion: Mutex<Option<KeptAssertion>>,
}

#[derive(Debug)]
struct KeptAssertion {
    audience: String,
    issued_at: u64,
    header: HeaderValue,
}

impl Memo {
    fn decode(stored: &StoredSession) -> Memo {
        Memo {
            session: stored.view().ok().map(|view| view.to_session()),
            rendered: OnceLock::new(),
            assertion: Mutex::new(None),
        }
    }

    /// The assertion kept for `audience`, while it may be sent again at `now`.
    pub fn assertion(&self, audience: &str, now: u64) -> Option<HeaderValue> {
        let kept = self.assertion.lock().unwrap_or_else(|e| e.into_inner());
        kept.as_ref()
            .filter(|kept| kept.audience == audience)
            .filter(|kept| assertion::reusable(kept.issued_at, true, now))
            .map(|kept| kept.header.clone())
    }

    /// Keeps the assertion just answered for `audience` (issued at `issued_at`).
    pub fn keep_assertion(&self, audience: String, issued_at: u64, header: HeaderValue) {
        *self.assertion.lock().unwrap_or_else(|e| e.into_inner()) = Some(KeptAssertion {
            audience,
            issued_at,
            header,
        });
    }

    /// [`StoredSession::live_view`] of the decoded copy: liveness is still judged at `now`.
    fn live_view(&self, now: u64) -> Result<SessionView<'_>, Unusable> {
        match &self.session {
            Some(session) if now < session.expires_at => Ok(session.as_view()),
            Some(_) => Err(Unusable::Expired),
            None => {
                tracing::warn!("a stored session is unreadable; treated as signed out");
                Err(Unusable::Unreadable)
            }
        }
    }
}

/// The id and the cached session of a cookie this replica verified before, byte for byte: the
/// HMAC was its only cost. Anything else (no entry, another value) is verified as usual.
fn verified_from_cache<'c>(store: &Store, cookie: &'c str) -> Option<(&'c str, Found)> {
    let id = crypto::unverified_id(cookie)?;
    Some((id, store.cached_for_cookie(id, cookie)?))
}

/// Whether the store's own last-seen mark (past any cache) says the session is idle.
async fn still_idle(
    store: &Store,
    id: &str,
    now: u64,
    idle_timeout: Option<Duration>,
) -> Result<bool, StoreError> {
    let (stored, last_seen) = store.get_session_seen_fresh(id).await?;
    let Some(Ok(session)) = stored.as_ref().map(|stored| stored.live_view(now)) else {
        // Ended or expired meanwhile: nothing left to end, and not signed in either way.
        return Ok(true);
    };
    Ok(activity(now, session.created_at, last_seen, idle_timeout) == Activity::Idle)
}

/// Records `now` as the session's last seen, kept as long as the session: at most once a
/// minute per session, so the copies made here stay off the common path.
fn touch_later(store: &Store, id: &str, now: u64, expires_at: u64) {
    let store = store.clone();
    let id = id.to_owned();
    // Live, so `expires_at > now`; `max(1)` only keeps a zero TTL out of the store's way.
    let ttl = Duration::from_secs(expires_at.saturating_sub(now).max(1));
    actix_web::rt::spawn(async move {
        if let Err(err) = store.touch(&id, now, ttl).await {
            tracing::debug!(error = %err, "could not record when a session was last seen");
        }
    });
}

/// Ends an idle session. Until it is gone every check finds it idle again, so a failure only
/// delays the deletion (the next check tries again).
fn end_later(store: &Store, id: &str, user: &str) {
    let store = store.clone();
    let id = id.to_owned();
    let user = user.to_owned();
    actix_web::rt::spawn(async move {
        match store.end_session(&id).await {
            Ok(true) => tracing::info!(
                user,
                "session ended: idle for longer than SESSION_IDLE_TIMEOUT"
            ),
            Ok(false) => {}
            Err(err) => tracing::debug!(error = %err, "could not end an idle session"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000;
    const MIN: u64 = 60;

    #[test]
    fn last_seen_is_written_at_most_once_a_minute_and_idle_sessions_end() {
        let thirty = Some(Duration::from_secs(30 * MIN));
        let created = NOW - 8 * 3600;
        let cases = [
            // (last seen, idle timeout, activity)
            (None, None, Activity::Touch),
            (Some(NOW), None, Activity::Recent),
            (Some(NOW - 1), None, Activity::Recent),
            (Some(NOW - 59), None, Activity::Recent),
            (Some(NOW - 60), None, Activity::Touch),
            (Some(NOW - 7 * 3600), None, Activity::Touch),
            // Another replica's clock ahead of ours: just now, nothing to write.
            (Some(NOW + 30), None, Activity::Recent),
            (Some(NOW + 30), thirty, Activity::Recent),
            (Some(NOW - 59), thirty, Activity::Recent),
            (Some(NOW - 60), thirty, Activity::Touch),
            (Some(NOW - 30 * MIN), thirty, Activity::Touch),
            // The mark covers the minute after it: ended one minute past the timeout.
            (Some(NOW - 31 * MIN + 1), thirty, Activity::Touch),
            (Some(NOW - 31 * MIN), thirty, Activity::Idle),
            (Some(NOW - 3 * 3600), thirty, Activity::Idle),
            // Without a mark, from sign-in: eight hours ago.
            (None, thirty, Activity::Idle),
            (None, Some(Duration::from_secs(9 * 3600)), Activity::Touch),
            (Some(0), thirty, Activity::Idle),
            (
                Some(NOW - MIN),
                Some(Duration::from_secs(u64::MAX)),
                Activity::Touch,
            ),
        ];
        for (last_seen, idle, expected) in cases {
            assert_eq!(
                activity(NOW, created, last_seen, idle),
                expected,
                "last seen {last_seen:?}, idle timeout {idle:?}"
            );
        }
    }

    #[test]
    fn a_decoded_copy_is_live_expired_or_unreadable_as_its_bytes_are() {
        let session = Session {
            user: "alice".into(),
            groups: vec!["ops".into(), "ACME, Inc".into()],
            created_at: NOW - 3600,
            expires_at: NOW + 3600,
            ..Session::default()
        };
        let bytes = crate::session::encode(&session).unwrap();
        let readable = StoredSession::new(bytes);
        let unreadable = StoredSession::new(vec![0xff, 1, 2]);
        for now in [NOW - 3600, NOW, NOW + 3599, NOW + 3600, NOW + 7200] {
            let memo = Memo::decode(&readable);
            assert_eq!(memo.live_view(now), readable.live_view(now), "at {now}");
            let memo = Memo::decode(&unreadable);
            assert_eq!(memo.live_view(now), Err(Unusable::Unreadable), "at {now}");
        }
        assert_eq!(
            Memo::decode(&readable).live_view(NOW).unwrap().groups,
            ["ops", "ACME, Inc"]
        );
    }

    #[test]
    fn a_kept_assertion_is_sent_again_only_to_its_origin_and_while_young() {
        let stored = StoredSession::new(crate::session::encode(&Session::default()).unwrap());
        let memo = Memo::decode(&stored);
        let origin = "https://app.example.com";
        assert_eq!(memo.assertion(origin, NOW), None, "nothing kept yet");
        memo.keep_assertion(origin.into(), NOW, HeaderValue::from_static("jwt"));
        let reuse = assertion::REUSE_SECS;
        let cases = [
            // (origin, now, sent again)
            (origin, NOW, true),
            (origin, NOW + reuse - 1, true),
            (origin, NOW + reuse, false),
            // Issued "later" than now (the clock stepped back): its iat would be wrong.
            (origin, NOW - 1, false),
            ("https://other.example.com", NOW, false),
            ("https://app.example.com:8443", NOW, false),
            ("http://app.example.com", NOW, false),
        ];
        for (audience, now, sent) in cases {
            assert_eq!(
                memo.assertion(audience, now).is_some(),
                sent,
                "{audience} at {now}"
            );
        }
        // The last one answered is the one kept.
        memo.keep_assertion(
            "https://other.example.com".into(),
            NOW,
            HeaderValue::from_static("b"),
        );
        assert_eq!(memo.assertion(origin, NOW), None);
        assert_eq!(
            memo.assertion("https://other.example.com", NOW),
            Some(HeaderValue::from_static("b"))
        );
    }

    #[test]
    fn a_session_without_a_mark_counts_from_its_sign_in() {
        let ten = Some(Duration::from_secs(10 * MIN));
        assert_eq!(activity(NOW, NOW, None, ten), Activity::Touch);
        assert_eq!(
            activity(NOW, NOW - 11 * MIN + 1, None, ten),
            Activity::Touch
        );
        assert_eq!(activity(NOW, NOW - 11 * MIN, None, ten), Activity::Idle);
        // A mark, however recent its session, is what counts once there is one.
        assert_eq!(
            activity(NOW, NOW - 3600, Some(NOW - 5), ten),
            Activity::Recent
        );
    }
}
