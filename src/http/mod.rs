//! Thin actix handlers: extract, call the pure modules, answer.

pub mod ahead_of_router;
pub mod auth;
pub mod backchannel;
pub mod bearer;
pub mod error;
pub mod health;
pub mod identity_headers;
pub mod jwks;
pub mod login;
pub mod logout;
pub mod own_sessions;
pub mod pages;
pub mod request_id;
pub mod revalidate;
pub mod session_cookie;
pub mod signed_in;
pub mod userinfo;

#[cfg(test)]
mod handler_tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};

use crate::config::Config;
use crate::crypto::Keys;
use crate::metrics::Metrics;
use crate::oidc::Providers;
use crate::session::Store;

/// Everything a request may need, built once at startup and shared read-only.
pub struct AppState {
    pub config: Config,
    pub keys: Keys,
    pub store: Store,
    pub providers: Providers,
    /// When the "proxy copies the page's query" hint was last logged (at most once a minute).
    pub query_hint_logged: Mutex<Option<Instant>>,
    /// When each session was last logged as past its revalidation grace (at most once a
    /// minute per session; entries older than that are dropped as others are added).
    pub past_grace_logged: Mutex<HashMap<String, Instant>>,
    /// When this replica last tried to start each due session's refresh: while a refresh runs
    /// or pauses, the checks of that session ask the store's lock at most once a second.
    pub refresh_tried: Mutex<HashMap<String, Instant>>,
    /// `UPSTREAM_JWT=true`: the signer of `X-Auth-Request-Jwt` and its JWKS; `None`: off.
    pub assertions: Option<crate::assertion::Assertions>,
    /// Counters and histograms, rendered at the admin listener's `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Bearer tokens verified in the last minute (`BEARER_TOKENS`), by their hash.
    pub bearer_tokens: crate::bearer::TokenCache,
    /// Set at SIGTERM or SIGINT: `/readyz` answers 503 from then on, and every answer closes
    /// its connection, so that proxies move to the other replicas before the listeners close.
    pub shutting_down: AtomicBool,
}

impl AppState {
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }
}

/// The main listener's application: the routes behind the request id middleware, the auth
/// checks ahead of the router.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .wrap_fn(ahead_of_router::middleware)
        .wrap_fn(request_id::middleware)
        .configure(routes)
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // The two auth checks first, one resource each: every request walks this list in order.
    // (`app` answers their GET and HEAD ahead of the router; these routes answer the rest.)
    cfg.service(
        web::resource(ahead_of_router::AUTH_PATH)
            .route(web::get().to(auth::status_mode))
            .route(web::head().to(auth::status_mode)),
    )
    .service(
        web::resource(ahead_of_router::FORWARD_AUTH_PATH)
            .route(web::get().to(auth::redirect_mode))
            .route(web::head().to(auth::redirect_mode)),
    )
    .route("/oauth2/start", web::get().to(login::start))
    .route("/oauth2/callback", web::get().to(login::callback))
    .route(
        "/oauth2/callback/{provider}",
        web::get().to(login::callback),
    )
    .route("/oauth2/sign_out", web::get().to(logout::sign_out))
    .route("/oauth2/sign_out", web::post().to(logout::sign_out))
    .route("/oauth2/signed_out", web::get().to(logout::signed_out))
    .route(
        "/oauth2/backchannel-logout",
        web::post().to(backchannel::logout),
    )
    .route("/oauth2/userinfo", web::get().to(userinfo::userinfo))
    .route("/oauth2/jwks", web::get().to(jwks::jwks))
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
