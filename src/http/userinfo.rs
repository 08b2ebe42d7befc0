//! `/oauth2/userinfo`: who is signed in, and until when, as JSON. Never tokens.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::signed_in::NotSignedIn;
use super::{signed_in, unix_now, AppState};
use crate::claims;
use crate::policy;

pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    signed_in::with_session(&req, &state, unix_now(), |session| {
        // As in the auth check: a session of a provider no longer configured is nobody's, and
        // each provider's users get their provider's rules (its group map).
        let session = session.and_then(|session| match state.config.provider(session.provider) {
            Some(provider) => Ok((session, provider)),
            None => Err(NotSignedIn::UnknownSession),
        });
        let (session, provider) = session.map_err(|reason| {
            state.metrics.not_signed_in(reason);
            AppError::NotSignedIn { reason }
        })?;
        let groups = policy::upstream_groups(&provider.rules, &session.groups);
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "user": session.user,
                "email": claims::forwarded_email(
                    session.email,
                    session.email_verified,
                    state.config.allow_unverified_email,
                ),
                "preferred_username": session.preferred_username,
                "groups": groups,
                // As in X-Auth-Request-Provider: empty with one unnamed provider.
                "provider": session.provider.unwrap_or(""),
                // Unix seconds: when the session ends at the latest (SESSION_LIFETIME), so
                // front-end code can ask the user to sign in again before it happens.
                "session_expires_at": session.expires_at,
            })))
    })
    .await?
}
