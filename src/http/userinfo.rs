//! `/oauth2/userinfo`: who is signed in, and until when, as JSON. Never tokens.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::{signed_in, unix_now, AppState};
use crate::claims;
use crate::policy;

pub async fn userinfo(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    signed_in::with_session(&req, &state, unix_now(), |session| {
        let session = session.map_err(|reason| {
            state.metrics.not_signed_in(reason);
            AppError::NotSignedIn { reason }
        })?;
        let groups = policy::upstream_groups(&state.config.rules, &session.groups);
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
