//! `/oauth2/sessions`: the signed-in user's own sessions, and signing out the others
//! (`POST /oauth2/sessions/sign-out`).
//!
//! Session ids never reach the page: each session is named by its handle (an HMAC of its id
//! under a key of its own, see [`Keys::session_handle`]), and the POST finds the session again
//! by recomputing the handles of the user's own sessions, so a handle from anyone else's page
//! matches nothing. Every form carries a CSRF token bound to the session that was shown the
//! page ([`Keys::csrf_token`]), and the cross-site rules of sign-out apply
//! ([`logout::decide`]). The decisions are the pure [`read_form`] and [`select`].

use actix_web::http::header::{self, HeaderName};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::logout::{self, SignOutDecision};
use super::pages::{self, SessionRow, ALL_OTHER_SESSIONS};
use super::signed_in::{self, activity, Activity, NotSignedIn};
use super::{login, unix_now, AppState};
use crate::config::Config;
use crate::crypto::Keys;
use crate::metrics::EndedBy;
use crate::negotiation;
use crate::session::{Selection, SessionEntry};

/// The page, where a sign-in started from it comes back to.
pub const PATH: &str = "/oauth2/sessions";

const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");

/// What a sign-out form asks to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One other session, by its handle.
    One(String),
    /// Every session of the user but this browser's.
    AllOthers,
}

/// Why a sign-out form ends nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Sec-Fetch-Site: cross-site`, or an `Origin` that is not ours.
    CrossSite,
    MissingToken,
    /// Not the token of the session that posts: another page, another browser, forged.
    WrongToken,
    NoTarget,
    /// The handle names none of the user's other sessions: someone else's, this browser's
    /// own, made up, or a session that has ended since the page was shown.
    NotYours,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::CrossSite => "the request came from another site",
            Refusal::MissingToken => "the form's token is missing",
            Refusal::WrongToken => "the form's token is not this session's",
            Refusal::NoTarget => "the form names no session",
            Refusal::NotYours => "not one of the user's other sessions",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Refusal::NoTarget => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// What the browser is told.
    fn message(self) -> &'static str {
        match self {
            Refusal::CrossSite => "sign-out from another site refused",
            Refusal::MissingToken | Refusal::WrongToken => {
                "this form did not come from your sessions page: open /oauth2/sessions again"
            }
            Refusal::NoTarget => "the form names no session",
            Refusal::NotYours => {
                "that is not one of your other sessions (it may have ended already): open \
                 /oauth2/sessions again"
            }
        }
    }
}

/// Reads a posted sign-out form: the first `csrf` must pass `csrf_ok` (checked before
/// anything else is looked at), the first `session` is a handle or [`ALL_OTHER_SESSIONS`].
/// A repeated field cannot override an earlier one.
pub fn read_form(body: &[u8], csrf_ok: impl Fn(&str) -> bool) -> Result<Target, Refusal> {
    let field = |name: &str| {
        url::form_urlencoded::parse(body)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .filter(|value| !value.is_empty())
    };
    let token = field("csrf").ok_or(Refusal::MissingToken)?;
    if !csrf_ok(&token) {
        return Err(Refusal::WrongToken);
    }
    match field("session") {
        None => Err(Refusal::NoTarget),
        Some(value) if value == ALL_OTHER_SESSIONS => Ok(Target::AllOthers),
        Some(handle) => Ok(Target::One(handle)),
    }
}

/// The ids to end, among `own` (the user's live sessions) but never `current`, this
/// browser's: signing this browser out is `/oauth2/sign_out`'s job. `handle_of` gives a
/// session id's handle.
pub fn select<'e>(
    target: &Target,
    current: &str,
    own: &'e [SessionEntry],
    handle_of: impl Fn(&str) -> String,
) -> Result<Vec<&'e str>, Refusal> {
    let mut others = own
        .iter()
        .map(|entry| entry.id.as_str())
        .filter(|id| *id != current);
    match target {
        Target::AllOthers => Ok(others.collect()),
        Target::One(handle) => others
            .find(|id| handle_of(id) == *handle)
            .map(|id| vec![id])
            .ok_or(Refusal::NotYours),
    }
}

/// Which of the user's sessions the page lists: those an auth check would still accept
/// (idle ones are ended at their next check; until then they are not shown as live).
fn shown<'e>(entries: &'e [SessionEntry], config: &Config, now: u64) -> Vec<&'e SessionEntry> {
    entries
        .iter()
        .filter(|entry| {
            activity(
                now,
                entry.session.created_at,
                entry.last_seen,
                config.session_idle_timeout,
            ) != Activity::Idle
        })
        .collect()
}

/// The current session's id, user and provider, copied out of the stored bytes.
type Current = (String, String, Option<String>);

async fn current(
    req: &HttpRequest,
    state: &AppState,
    now: u64,
) -> Result<Result<Current, NotSignedIn>, AppError> {
    let current = signed_in::with_signed_in(req, state, now, |signed_in| {
        signed_in.map(|s| {
            (
                s.id.to_owned(),
                s.session.user.to_owned(),
                s.session.provider.map(str::to_owned),
            )
        })
    })
    .await?;
    if let Err(reason) = current {
        state.metrics.not_signed_in(reason);
    }
    Ok(current)
}

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let now = unix_now();
    let (id, user, provider) = match current(&req, &state, now).await? {
        Ok(current) => current,
        Err(reason) => return not_signed_in(&req, &state, reason),
    };
    let entries = sessions_of(&state, &user, provider.as_deref(), now).await?;
    let listed = shown(&entries, &state.config, now);
    let handles: Vec<String> = listed
        .iter()
        .map(|entry| state.keys.session_handle(&entry.id))
        .collect();
    let rows: Vec<SessionRow<'_>> = listed
        .iter()
        .zip(&handles)
        .map(|(entry, handle)| SessionRow {
            handle,
            created_at: entry.session.created_at,
            last_seen: entry.last_seen,
            user_agent: entry.session.user_agent.as_deref(),
            address: entry.session.address.as_deref(),
            this_browser: entry.id == id,
        })
        .collect();
    let csrf = state.keys.csrf_token(&id);
    Ok(pages::html(
        StatusCode::OK,
        pages::own_sessions(&user, &rows, &csrf),
    ))
}

/// The live sessions of `user` at `provider`: the store indexes sessions by username, which
/// another provider's user may share.
async fn sessions_of(
    state: &AppState,
    user: &str,
    provider: Option<&str>,
    now: u64,
) -> Result<Vec<SessionEntry>, AppError> {
    let mut entries = state
        .store
        .list_sessions(Selection::User(user), now)
        .await?;
    entries.retain(|entry| entry.session.provider.as_deref() == provider);
    Ok(entries)
}

/// Not signed in: a browser navigation signs in and comes back here, anything else is 401.
fn not_signed_in(
    req: &HttpRequest,
    state: &AppState,
    reason: NotSignedIn,
) -> Result<HttpResponse, AppError> {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if negotiation::wants_html(req.method().as_str(), accept) {
        return login::sign_in(state, PATH, None);
    }
    Err(AppError::NotSignedIn { reason })
}

pub async fn sign_out(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    if from_another_site(&req, &state.config) {
        return Ok(refused(Refusal::CrossSite, None));
    }
    let now = unix_now();
    let (id, user, provider) = current(&req, &state, now)
        .await?
        .map_err(|reason| AppError::NotSignedIn { reason })?;
    let keys: &Keys = &state.keys;
    let target = match read_form(&body, |token| keys.verify_csrf_token(&id, token)) {
        Ok(target) => target,
        Err(refusal) => return Ok(refused(refusal, Some(&user))),
    };
    let own = sessions_of(&state, &user, provider.as_deref(), now).await?;
    let ending = match select(&target, &id, &own, |id| keys.session_handle(id)) {
        Ok(ending) => ending,
        Err(refusal) => return Ok(refused(refusal, Some(&user))),
    };
    let mut ended = 0;
    for session in &ending {
        ended += usize::from(state.store.end_session(session).await?);
    }
    state.metrics.sessions_ended(EndedBy::OwnSessions, ended);
    tracing::info!(user, ended, "sessions signed out from the sessions page");
    Ok(pages::secure(
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, PATH))
            .finish(),
    ))
}

/// The sign-out rules of `/oauth2/sign_out` ([`logout::decide`]), for a POST.
fn from_another_site(req: &HttpRequest, config: &Config) -> bool {
    let header = |name: &HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let decision = logout::decide(
        true,
        header(&SEC_FETCH_SITE),
        header(&header::ORIGIN),
        |origin| logout::origin_allowed(config, origin),
    );
    decision == SignOutDecision::Refuse
}

fn refused(refusal: Refusal, user: Option<&str>) -> HttpResponse {
    tracing::info!(
        user = user.unwrap_or(""),
        reason = refusal.as_str(),
        "sign-out from the sessions page refused"
    );
    pages::plain(refusal.status(), refusal.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    fn entry(id: &str) -> SessionEntry {
        SessionEntry {
            id: id.to_string(),
            session: Session::default(),
            last_seen: None,
        }
    }

    #[test]
    fn a_form_needs_this_sessions_token_before_it_names_anything() {
        let ok = |token: &str| token == "good";
        let cases: [(&str, Result<Target, Refusal>); 10] = [
            ("csrf=good&session=h1", Ok(Target::One("h1".to_string()))),
            ("session=h1&csrf=good", Ok(Target::One("h1".to_string()))),
            ("csrf=good&session=others", Ok(Target::AllOthers)),
            // The first of a repeated field counts.
            (
                "csrf=good&session=h1&session=others",
                Ok(Target::One("h1".to_string())),
            ),
            ("csrf=bad&csrf=good&session=h1", Err(Refusal::WrongToken)),
            ("session=others", Err(Refusal::MissingToken)),
            ("csrf=&session=others", Err(Refusal::MissingToken)),
            ("csrf=bad&session=others", Err(Refusal::WrongToken)),
            ("csrf=good", Err(Refusal::NoTarget)),
            ("csrf=good&session=", Err(Refusal::NoTarget)),
        ];
        for (body, expected) in cases {
            assert_eq!(read_form(body.as_bytes(), ok), expected, "{body}");
        }
        assert_eq!(read_form(b"", ok), Err(Refusal::MissingToken));
        assert_eq!(read_form(b"\xff\xfe", ok), Err(Refusal::MissingToken));
    }

    #[test]
    fn only_the_users_other_sessions_can_be_selected() {
        let own = [entry("a"), entry("b"), entry("c")];
        let handle = |id: &str| format!("h-{id}");
        let one = |h: &str| Target::One(h.to_string());
        type Case<'a> = (Target, &'a str, Result<Vec<&'a str>, Refusal>);
        let cases: [Case<'_>; 7] = [
            (one("h-b"), "a", Ok(vec!["b"])),
            (one("h-c"), "a", Ok(vec!["c"])),
            // This browser's own session is not "another".
            (one("h-a"), "a", Err(Refusal::NotYours)),
            // A handle of a session that is not the user's (or no handle at all).
            (one("h-z"), "a", Err(Refusal::NotYours)),
            // An id is not a handle.
            (one("b"), "a", Err(Refusal::NotYours)),
            (Target::AllOthers, "b", Ok(vec!["a", "c"])),
            (Target::AllOthers, "z", Ok(vec!["a", "b", "c"])),
        ];
        for (target, current, expected) in cases {
            assert_eq!(
                select(&target, current, &own, handle),
                expected,
                "{target:?} from {current}"
            );
        }
        assert_eq!(
            select(&Target::AllOthers, "a", &own[..1], handle),
            Ok(Vec::new())
        );
    }
}
