//! The admin API, on `ADMIN_ADDR` only: `GET /sessions[?user=NAME]` lists sessions,
//! `DELETE /sessions?user=NAME` or `?all=true` ends them, `/healthz` answers `ok`, `/metrics`
//! the Prometheus metrics. Every `/sessions` request needs `Authorization: Bearer <ADMIN_TOKEN>`;
//! `/metrics` does not, since scrapers rarely carry a token and it holds no user's data.
//!
//! A server of its own rather than routes on the main listener: the proxy routes the public
//! side to `LISTEN_ADDR`, and a route that is not there cannot be reached through it, whatever
//! the proxy's configuration says.

use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{ended, Listed, Target};
use crate::http::{health, request_id, unix_now, AppState};
use crate::metrics::EndedBy;
use crate::secret::Secret;

/// The one error type of the admin API and its mapping to answers: short JSON, never an
/// internal error text or which part of a token was wrong.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("session store unavailable: {0}")]
    StoreUnavailable(String),
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            AdminError::Unauthorized => StatusCode::UNAUTHORIZED,
            AdminError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AdminError::StoreUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        let message = match self {
            AdminError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
                "unauthorized".to_string()
            }
            AdminError::BadRequest(message) => message.clone(),
            AdminError::StoreUnavailable(detail) => {
                tracing::error!(detail, "admin API: session store unavailable");
                "session store unavailable".to_string()
            }
        };
        response.json(serde_json::json!({ "error": message }))
    }
}

impl From<crate::session::StoreError> for AdminError {
    fn from(err: crate::session::StoreError) -> Self {
        AdminError::StoreUnavailable(err.to_string())
    }
}

/// The admin token, kept as its SHA-256: comparing digests in constant time takes the same
/// time whatever the length of the token a client sends, so not even the length leaks.
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn of(token: &Secret) -> TokenDigest {
        TokenDigest(Sha256::digest(token.expose().as_bytes()).into())
    }

    pub fn matches(&self, given: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(given).into();
        given.ct_eq(&self.0).into()
    }
}

/// The credentials of `Authorization: Bearer <token>` (the scheme in any case, RFC 9110); none
/// when the header is missing, sent twice, or of another scheme.
pub fn bearer<'a>(mut values: impl Iterator<Item = &'a [u8]>) -> Option<&'a [u8]> {
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let start = rest.iter().position(|&b| b != b' ')?;
    Some(&rest[start..])
}

fn authorize(req: &HttpRequest, token: &TokenDigest) -> Result<(), AdminError> {
    let values = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match bearer(values) {
        Some(given) if token.matches(given) => Ok(()),
        _ => {
            let peer = req.peer_addr().map(|peer| peer.to_string());
            tracing::warn!(peer, path = req.path(), "admin API: missing or wrong token");
            Err(AdminError::Unauthorized)
        }
    }
}

/// Whose sessions a request names, from its query: `user=NAME`, `all=true` or neither. Strict
/// like the route rules: an unknown, repeated or empty parameter is refused, not skipped.
pub fn requested(query: &str) -> Result<(Option<String>, bool), String> {
    let (mut user, mut all) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "user" => &mut user,
            "all" => &mut all,
            other => return Err(format!("unknown parameter {other:?} (user or all)")),
        };
        if slot.is_some() {
            return Err(format!("{name} is given twice"));
        }
        if value.is_empty() {
            return Err(format!("{name} is empty"));
        }
        *slot = Some(value.into_owned());
    }
    match all.as_deref() {
        None => Ok((user, false)),
        Some("true") => Ok((user, true)),
        Some(_) => Err("all can only be true".to_string()),
    }
}

/// `GET /sessions`: everyone's sessions, or with `?user=NAME` one user's.
pub fn list_target(query: &str) -> Result<Target, String> {
    match requested(query)? {
        (Some(_), true) => Err("give user or all, not both".to_string()),
        (Some(user), false) => Ok(Target::User(user)),
        (None, _) => Ok(Target::All),
    }
}

/// `DELETE /sessions`: ending everyone's sessions is never the default, it takes `all=true`.
pub fn revoke_target(query: &str) -> Result<Target, String> {
    match requested(query)? {
        (Some(_), true) => Err("give user or all, not both".to_string()),
        (Some(user), false) => Ok(Target::User(user)),
        (None, true) => Ok(Target::All),
        (None, false) => Err("say whose sessions to end: ?user=NAME or ?all=true".to_string()),
    }
}

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Data<TokenDigest>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &token)?;
    let target = list_target(req.query_string()).map_err(AdminError::BadRequest)?;
    let providers = super::provider_names(&state.config);
    let listed: Vec<Listed> = super::list(&state.store, &target, &providers, unix_now()).await?;
    Ok(HttpResponse::Ok().json(listed))
}

pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Data<TokenDigest>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &token)?;
    let target = revoke_target(req.query_string()).map_err(AdminError::BadRequest)?;
    let providers = super::provider_names(&state.config);
    let count = super::revoke(&state.store, &target, &providers).await?;
    state.metrics.sessions_ended(EndedBy::Admin, count);
    match &target {
        Target::User(user) => tracing::info!(user, count, "admin API: {}", ended(count)),
        Target::All => tracing::info!(count, "admin API: {} (all)", ended(count)),
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "ended": count })))
}

/// The version of the text format Prometheus asks scrapers' targets for.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// `GET /metrics`: every metric of this process, process metrics read now.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(state.metrics.render())
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sessions")
            .route(web::get().to(list))
            .route(web::delete().to(revoke)),
    )
    .route("/metrics", web::get().to(metrics))
    .route("/healthz", web::get().to(health::healthz));
}

/// The admin application: its routes, the state it shares with the main listener (the same
/// store), the token, and `Cache-Control: no-store` on every answer, errors and 404s included.
pub fn app(
    state: web::Data<AppState>,
    token: TokenDigest,
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
        .app_data(web::Data::new(token))
        .wrap(DefaultHeaders::new().add((header::CACHE_CONTROL, "no-store")))
        .wrap_fn(request_id::middleware)
        .configure(routes)
}

/// Starts the admin server on `listener`, spawned on the current actix system. It does not
/// listen for signals itself: it is stopped through the returned handle when the main server
/// stops (see `crate::build`), which owns the process's shutdown.
pub fn start(
    state: web::Data<AppState>,
    listener: TcpListener,
    token: &Secret,
) -> std::io::Result<ServerHandle> {
    let token = TokenDigest::of(token);
    let server: Server = HttpServer::new(move || app(state.clone(), token.clone()))
        // Operators' requests are few; one worker keeps the admin side out of the way.
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .shutdown_timeout(crate::SHUTDOWN_TIMEOUT.as_secs())
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(error = %err, "admin API server stopped with an error");
        }
    });
    Ok(handle)
}
