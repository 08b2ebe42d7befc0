//! `/oauth2/sign_out`: the session is deleted from the store, not only forgotten by the browser.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{pages, session_cookie, AppState};
use crate::error::AppError;

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let config = &state.config;
    if let Ok(id) = session_cookie::session_id(&req, config, &state.keys) {
        state.store.delete_session(&id).await?;
    }
    let rd: HashMap<String, String> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    let allowed = rd
        .get("rd")
        .and_then(|rd| config.allowed_redirects.check(rd, &config.redirect_url));
    let clear = session_cookie::clear_session_cookie(config);
    Ok(match allowed {
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
    })
}
