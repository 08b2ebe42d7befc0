//! `/oauth2/sign_out` and `/oauth2/signed_out`: the session is deleted from the store, not only
//! forgotten by the browser; with `OIDC_POST_LOGOUT_REDIRECT_URL` the IdP session ends too.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use url::Url;

use super::{pages, session_cookie, AppState};
use crate::error::AppError;

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// The tokens stored with a session, to name the user to the IdP at logout.
async fn id_token_of(state: &AppState, id: &str) -> Option<String> {
    let sealed = state.store.get_sealed_tokens(id).await.ok()??;
    let plain = state.keys.decrypt(&sealed).ok()?;
    let tokens: serde_json::Value = serde_json::from_slice(&plain).ok()?;
    tokens["id_token"].as_str().map(str::to_string)
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let config = &state.config;
    let mut id_token = None;
    if let Ok(id) = session_cookie::session_id(&req, config, &state.keys) {
        id_token = id_token_of(&state, id).await;
        state.store.delete_session(id).await?;
    }
    let params = query(&req);
    let rd = params
        .get("rd")
        .and_then(|rd| config.allowed_redirects.check(rd, &config.redirect_url));
    let at_idp = config.post_logout_redirect_url.as_ref().and_then(|back| {
        let carried = rd.as_ref().map(Url::as_str).unwrap_or("");
        state
            .oidc
            .end_session_url(id_token.as_deref(), back, carried)
    });
    Ok(leave(&state, at_idp.or(rd)))
}

/// Where the IdP sends the browser after its own logout; `state` carries the `rd` of the
/// sign-out, checked again because it made a round trip through the browser.
pub async fn signed_out(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let config = &state.config;
    let rd = query(&req)
        .get("state")
        .and_then(|rd| config.allowed_redirects.check(rd, &config.redirect_url));
    leave(&state, rd)
}

fn leave(state: &AppState, next: Option<Url>) -> HttpResponse {
    let clear = session_cookie::clear_session_cookie(&state.config);
    match next {
        Some(url) => HttpResponse::Found()
            .insert_header((header::LOCATION, url.to_string()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(clear)
            .finish(),
        None => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .cookie(clear)
            .body(pages::signed_out()),
    }
}
