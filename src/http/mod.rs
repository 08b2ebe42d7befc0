//! Thin actix handlers: extract, call the pure modules, answer.

pub mod auth;
pub mod backchannel;
pub mod error;
pub mod health;
pub mod identity_headers;
pub mod login;
pub mod logout;
pub mod own_sessions;
pub mod pages;
pub mod revalidate;
pub mod session_cookie;
pub mod signed_in;
pub mod userinfo;

#[cfg(test)]
mod handler_tests;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::web;

use crate::config::Config;
use crate::crypto::Keys;
use crate::oidc::Oidc;
use crate::session::Store;

/// Everything a request may need, built once at startup and shared read-only.
pub struct AppState {
    pub config: Config,
    pub keys: Keys,
    pub store: Store,
    pub oidc: Oidc,
    /// When the "proxy copies the page's query" hint was last logged (at most once a minute).
    pub query_hint_logged: Mutex<Option<Instant>>,
    /// When each session was last logged as past its revalidation grace (at most once a
    /// minute per session; entries older than that are dropped as others are added).
    pub past_grace_logged: Mutex<HashMap<String, Instant>>,
    /// When this replica last tried to start each due session's refresh: while a refresh runs
    /// or pauses, the checks of that session ask the store's lock at most once a second.
    pub refresh_tried: Mutex<HashMap<String, Instant>>,
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The two auth checks first, one resource each: every request walks this list in order.
    cfg.service(
        web::resource("/oauth2/auth")
            .route(web::get().to(auth::status_mode))
            .route(web::head().to(auth::status_mode)),
    )
    .service(
        web::resource("/oauth2/forward-auth")
            .route(web::get().to(auth::redirect_mode))
            .route(web::head().to(auth::redirect_mode)),
    )
    .route("/oauth2/start", web::get().to(login::start))
    .route("/oauth2/callback", web::get().to(login::callback))
    .route("/oauth2/sign_out", web::get().to(logout::sign_out))
    .route("/oauth2/sign_out", web::post().to(logout::sign_out))
    .route("/oauth2/signed_out", web::get().to(logout::signed_out))
    .route(
        "/oauth2/backchannel-logout",
        web::post().to(backchannel::logout),
    )
    .route("/oauth2/userinfo", web::get().to(userinfo::userinfo))
    .route("/oauth2/sessions", web::get().to(own_sessions::page))
    .route(
        "/oauth2/sessions/sign-out",
        web::post().to(own_sessions::sign_out),
    )
    .route("/healthz", web::get().to(health::healthz))
    .route("/readyz", web::get().to(health::readyz));
}

/// The first value of a query parameter: a repeated parameter cannot override an earlier one.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// Unix seconds now; handlers read the clock once and pass it to the pure decisions.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
