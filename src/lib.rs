//! portcullis: OpenID Connect single sign-on for the forward-auth sub-requests of Traefik,
//! nginx and Caddy.
// The lints (no unwrap, expect or panic outside tests, ...) are the workspace's: Cargo.toml.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod assertion;
pub mod bearer;
pub mod claims;
pub mod config;
pub mod crypto;
pub mod forwarded;
pub mod http;
pub mod lifecycle;
pub mod login;
pub mod metrics;
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

use actix_web::{web, HttpServer};

use crate::config::Config;
use crate::crypto::Keys;
use crate::http::AppState;
use crate::metrics::Metrics;
use crate::oidc::{OidcError, Providers};
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
/// provider is unreachable it is retried in the background and `/readyz` says so), and the
/// process's metrics.
pub async fn build_state(config: Config) -> Result<web::Data<AppState>, StartError> {
    build_state_with(config, Metrics::global()).await
}

/// [`build_state`] with metrics of the caller's choosing (tests count in their own).
pub async fn build_state_with(
    config: Config,
    metrics: Arc<Metrics>,
) -> Result<web::Data<AppState>, StartError> {
    let keys = Keys::derive(config.cookie_secret.expose().as_bytes())?;
    let store = Store::from_config(&config)?;
    store.listen();
    let providers = Providers::new(&config)?;
    for oidc in providers.iter() {
        let provider = oidc.name().unwrap_or("");
        match oidc.discover().await {
            Ok(()) => {
                tracing::info!(provider, issuer = %oidc.issuer(), "provider discovery loaded")
            }
            Err(err @ OidcError::IssuerMismatch { .. }) => return Err(err.into()),
            Err(err) => tracing::warn!(
                provider,
                error = %err,
                "provider discovery failed; retrying in the background"
            ),
        }
    }
    let assertions = config.upstream_jwt.as_ref().map(|jwt| {
        assertion::Assertions::new(
            jwt.key.clone(),
            jwt.previous_key.clone(),
            assertion::origin_of(&config.redirect_url),
            config.store.cache.size,
        )
    });
    Ok(web::Data::new(AppState {
        assertions,
        config,
        keys,
        store,
        providers,
        query_hint_logged: Mutex::new(None),
        past_grace_logged: Mutex::new(std::collections::HashMap::new()),
        refresh_tried: Mutex::new(std::collections::HashMap::new()),
        metrics,
        bearer_tokens: bearer::TokenCache::new(),
        shutting_down: std::sync::atomic::AtomicBool::new(false),
    }))
}

/// Retries each provider's discovery until it succeeds, with a growing pause (1 s to 30 s).
fn spawn_discovery_retry(state: web::Data<AppState>) {
    let state: Arc<AppState> = state.into_inner();
    let pending: Vec<usize> = state
        .providers
        .iter()
        .enumerate()
        .filter(|(_, oidc)| !oidc.is_ready())
        .map(|(index, _)| index)
        .collect();
    for index in pending {
        let state = Arc::clone(&state);
        actix_web::rt::spawn(async move {
            let Some(oidc) = state.providers.iter().nth(index) else {
                return;
            };
            let provider = oidc.name().unwrap_or("");
            let mut pause = Duration::from_secs(1);
            while !oidc.is_ready() {
                actix_web::rt::time::sleep(pause).await;
                match oidc.discover().await {
                    Ok(()) => tracing::info!(provider, "provider discovery loaded"),
                    Err(err) => {
                        tracing::warn!(provider, error = %err, "provider discovery failed; will retry")
                    }
                }
                pause = (pause * 2).min(Duration::from_secs(30));
            }
        });
    }
}

/// How long requests in flight have to finish once the listeners have closed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

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
        http::app(app_state.clone())
    })
    // Signals are the caller's ([`serve_until_signal`]): a stop first waits SHUTDOWN_DELAY.
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartError::Listen {
        addr: addr.to_string(),
        source,
    })?
    .shutdown_timeout(SHUTDOWN_TIMEOUT.as_secs())
    .run();
    Ok(Running {
        port,
        admin_port,
        server,
        state,
    })
}

/// Runs `running` until SIGTERM or SIGINT, then shuts down in order: `/readyz` answers 503 at
/// once (load balancers and Kubernetes stop sending requests), after `SHUTDOWN_DELAY` the
/// listeners close, and requests in flight get [`SHUTDOWN_TIMEOUT`] to finish. A second signal
/// ends the delay early. Returns when the server has stopped.
pub async fn serve_until_signal(running: Running) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let handle = running.server.handle();
    let state = running.state.clone();
    actix_web::rt::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        state.begin_shutdown();
        let delay = state.config.shutdown_delay;
        tracing::info!(
            signal = name,
            delay = %humantime::format_duration(delay),
            "shutting down: /readyz answers 503; the listeners close after SHUTDOWN_DELAY"
        );
        tokio::select! {
            _ = actix_web::rt::time::sleep(delay) => {}
            _ = terminate.recv() => tracing::info!("a second signal: closing the listeners now"),
            _ = interrupt.recv() => tracing::info!("a second signal: closing the listeners now"),
        }
        tracing::info!(
            timeout = %humantime::format_duration(SHUTDOWN_TIMEOUT),
            "listeners closed; waiting for the requests in flight"
        );
        handle.stop(true).await;
    });
    running.server.await?;
    tracing::info!("stopped");
    Ok(())
}
