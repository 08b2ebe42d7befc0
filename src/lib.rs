//! portcullis: OpenID Connect single sign-on for the forward-auth sub-requests of Traefik,
//! nginx and Caddy.
// The lints (no unwrap, expect or panic outside tests, ...) are the workspace's: Cargo.toml.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod claims;
pub mod config;
pub mod crypto;
pub mod forwarded;
pub mod http;
pub mod login;
pub mod negotiation;
pub mod oidc;
pub mod policy;
pub mod preflight;
pub mod redirect;
pub mod secret;
pub mod session;
pub mod telemetry;
pub mod url_text;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::config::Config;
use crate::crypto::Keys;
use crate::http::AppState;
use crate::oidc::{Oidc, OidcError};
use crate::session::Store;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Provider(#[from] OidcError),
    #[error(transparent)]
    Store(#[from] session::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Keys(#[from] crypto::CryptoError),
}

/// A started portcullis: its address and its server future (run or spawn it).
pub struct Running {
    pub port: u16,
    pub server: actix_web::dev::Server,
    pub state: web::Data<AppState>,
}

/// Builds the application state: keys, store, provider (discovery is tried once here; if the
/// provider is unreachable it is retried in the background and `/readyz` says so).
pub async fn build_state(config: Config) -> Result<web::Data<AppState>, StartError> {
    let keys = Keys::derive(config.cookie_secret.expose().as_bytes())?;
    let store = Store::from_config(&config)?;
    let oidc = Oidc::new(&config)?;
    match oidc.discover().await {
        Ok(()) => tracing::info!(issuer = %config.issuer_url, "provider discovery loaded"),
        Err(err @ OidcError::IssuerMismatch { .. }) => return Err(err.into()),
        Err(err) => {
            tracing::warn!(error = %err, "provider discovery failed; retrying in the background")
        }
    }
    Ok(web::Data::new(AppState {
        config,
        keys,
        store,
        oidc,
        query_hint_logged: Mutex::new(None),
    }))
}

/// Retries discovery until it succeeds, with a growing pause (1 s to 30 s).
fn spawn_discovery_retry(state: web::Data<AppState>) {
    if state.oidc.is_ready() {
        return;
    }
    let state: Arc<AppState> = state.into_inner();
    actix_web::rt::spawn(async move {
        let mut pause = Duration::from_secs(1);
        while !state.oidc.is_ready() {
            actix_web::rt::time::sleep(pause).await;
            match state.oidc.discover().await {
                Ok(()) => tracing::info!("provider discovery loaded"),
                Err(err) => tracing::warn!(error = %err, "provider discovery failed; will retry"),
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    });
}

/// Binds `LISTEN_ADDR` (port 0 picks a free port) and prepares the server.
pub async fn build(config: Config) -> Result<Running, StartError> {
    let addr = config.listen_addr;
    let listener = TcpListener::bind(addr).map_err(|source| StartError::Listen {
        addr: addr.to_string(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })?
        .port();
    let state = build_state(config).await?;
    spawn_discovery_retry(state.clone());
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .configure(http::routes)
    })
    .listen(listener)
    .map_err(|source| StartError::Listen {
        addr: addr.to_string(),
        source,
    })?
    .shutdown_timeout(5)
    .run();
    Ok(Running {
        port,
        server,
        state,
    })
}
