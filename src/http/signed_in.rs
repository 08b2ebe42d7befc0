//! Who is signed in: the session cookie (sent exactly once), its signature, the store, and the
//! live view of the session, as one typed outcome. The auth check, userinfo and the pages all
//! ask here.

use actix_web::HttpRequest;

use super::session_cookie::{cookie_value, CookieValue};
use super::AppState;
use crate::config::Config;
use crate::crypto::Keys;
use crate::session::{SessionView, StoreError, Unusable};

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

/// Looks up who is signed in at `now` and hands the answer to `answer`: the live session, read
/// in place from the stored bytes (so it cannot outlive this call), or why there is none. A
/// store that fails is an error (the handlers answer 503), never "not signed in".
pub async fn with_session<T>(
    req: &HttpRequest,
    state: &AppState,
    now: u64,
    answer: impl FnOnce(Result<SessionView<'_>, NotSignedIn>) -> T,
) -> Result<T, StoreError> {
    let id = match session_id(req, &state.config, &state.keys) {
        Ok(id) => id,
        Err(reason) => return Ok(answer(Err(reason))),
    };
    let Some(stored) = state.store.get_session(id).await? else {
        return Ok(answer(Err(NotSignedIn::UnknownSession)));
    };
    let session = stored.live_view(now).map_err(|unusable| match unusable {
        Unusable::Expired => NotSignedIn::Expired,
        Unusable::Unreadable => NotSignedIn::Unreadable,
    });
    Ok(answer(session))
}
