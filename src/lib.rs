//! portcullis: OpenID Connect single sign-on for the forward-auth sub-requests of Traefik,
//! nginx and Caddy.
// The lints (no unwrap, expect or panic outside tests, ...) are the workspace's: Cargo.toml.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod claims;
pub mod config;
pub mod crypto;
pub mod forwarded;
pub mod http;
pub mod lifecycle;
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
    /// The admin API's port when `ADMIN_ADDR` is set. That server is already running; it
    /// stops when `server` does.
    pub admin_port: Option<u16>,
    pub server: actix_web::dev::Server,
    pub state: web::Data<AppState>,
}

/// Stops the admin server when the last copy is dropped. The main server's app factory holds
/// one, so the admin listener closes when the main server has stopped and released it,
/// however it was stopped (a signal, or a handle as in the tests).
struct StopsAdmin(actix_web::dev::ServerHandle);

impl Drop for StopsAdmin {
    fn drop(&mut self) {
        // The stop command is sent when `stop` is called; nobody awaits its completion.
        drop(self.0.stop(true));
    }
}

/// Builds the application state: keys, store, provider (discovery is tried once here; if the
/// provider is unreachable it is retried in the background and `/readyz` says so).
pub async fn build_state(config: Config) -> Result<web::Data<AppState>, StartError> {
    let keys = Keys::derive(config.cookie_secret.expose().as_bytes())?;
    let store = Store::from_config(&config)?;
    store.listen();
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
        past_grace_logged: Mutex::new(std::collections::HashMap::new()),
        refresh_tried: Mutex::new(std::collections::HashMap::new()),
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

/// Binds `addr` (port 0 picks a free port); the listener and its port.
fn bind(addr: std::net::SocketAddr) -> Result<(TcpListener, u16), StartError> {
    let failed = |source| StartError::Listen {
        addr: addr.to_string(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    Ok((listener, port))
}

/// Binds `LISTEN_ADDR` (port 0 picks a free port) and prepares the server; with `ADMIN_ADDR`
/// also binds and starts the admin API's server (see [`admin::api`]).
pub async fn build(config: Config) -> Result<Running, StartError> {
    let addr = config.listen_addr;
    let (listener, port) = bind(addr)?;
    // Both addresses are bound before anything else starts, so a taken port fails at once.
    let admin = match config.admin.clone() {
        Some(admin) => Some((bind(admin.addr)?, admin)),
        None => None,
    };
    let state = build_state(config).await?;
    spawn_discovery_retry(state.clone());
    let (admin_port, stops_admin) = match admin {
        Some(((admin_listener, admin_port), admin)) => {
            let handle = admin::api::start(state.clone(), admin_listener, &admin.token).map_err(
                |source| StartError::Listen {
                    addr: admin.addr.to_string(),
                    source,
                },
            )?;
            tracing::info!(addr = %admin.addr, port = admin_port, "admin API listening");
            (Some(admin_port), Some(Arc::new(StopsAdmin(handle))))
        }
        None => (None, None),
    };
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        // Held by the factory, so dropped only with the main server (see StopsAdmin).
        let _stops_admin = &stops_admin;
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
        admin_port,
        server,
        state,
    })
}
