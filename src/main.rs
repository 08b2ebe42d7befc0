//! The `portcullis` binary: serve (default), `check`, `healthcheck`, `sessions`, `--help`,
//! `--version`.

use std::process::ExitCode;

use anyhow::Context;
use portcullis::admin::cli::{self as sessions_cli, SessionsCommand};
use portcullis::config::{self, Config};

// mimalloc rather than the C library's allocator: an auth check makes a few dozen small
// allocations on two or more worker threads, which musl's allocator (the static binary the
// Docker image ships) serves under one lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
portcullis: OpenID Connect single sign-on for Traefik, nginx and Caddy forward-auth

Usage:
  portcullis              serve (configuration from environment variables)
  portcullis check        validate the configuration, reach the IdP and the session store,
                          and print what to register at the IdP and proxy snippets
  portcullis healthcheck  exit 0 when the local instance answers /healthz (for containers)
  portcullis sessions list [--user NAME]
                          list live sessions (user, provider session, times, browser,
                          address); needs REDIS_URL
  portcullis sessions revoke --user NAME | --all
                          end one user's sessions, or everyone's, on every replica
  portcullis --help       this text
  portcullis --version    the version";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = args.first().map(String::as_str);
    match command {
        None | Some("serve") => run(serve),
        Some("check") => run(check),
        Some("healthcheck") => run(healthcheck),
        Some("sessions") => sessions(&args[1..]),
        Some("--help" | "-h" | "help") => {
            // The usage, then every variable with its default (the variable table).
            println!("{USAGE}\n\n{}", config::variables_help());
            ExitCode::SUCCESS
        }
        Some("--version" | "-V" | "version") => {
            println!("portcullis {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "portcullis: unknown command {other:?}\n\n{USAGE}\n\n\
                 Configuration: environment variables, listed with their defaults by --help."
            );
            ExitCode::from(2)
        }
    }
}

fn run(job: impl FnOnce() -> anyhow::Result<()>) -> ExitCode {
    match job() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("portcullis: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config() -> anyhow::Result<Config> {
    // ConfigError's Display already lists every problem; no context needed on top.
    Ok(Config::from_process_env()?)
}

fn serve() -> anyhow::Result<()> {
    let config = load_config()?;
    portcullis::telemetry::init(config.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let addr = config.listen_addr;
    actix_web::rt::System::new().block_on(async move {
        let running = portcullis::build(config)
            .await
            .context("portcullis could not start")?;
        tracing::info!(%addr, port = running.port, store = running.state.store.kind(), "listening");
        portcullis::serve_until_signal(running)
            .await
            .context("server stopped with an error")
    })
}

fn check() -> anyhow::Result<()> {
    let config = load_config()?;
    let report = actix_web::rt::System::new().block_on(portcullis::preflight::run(config));
    print!("{}", report.text);
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("check failed")
    }
}

/// `sessions list|revoke`: arguments that make no command exit 2 with the usage; a command
/// that cannot run (no Redis, a store that does not answer) exits 1.
fn sessions(args: &[String]) -> ExitCode {
    match sessions_cli::parse(args) {
        Ok(SessionsCommand::Help) => {
            println!("{}", sessions_cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(command) => run(|| run_sessions(&command)),
        Err(err) => {
            eprintln!("portcullis sessions: {err}\n\n{}", sessions_cli::USAGE);
            ExitCode::from(2)
        }
    }
}

fn run_sessions(command: &SessionsCommand) -> anyhow::Result<()> {
    let config = load_config()?;
    let store = sessions_cli::shared_store(&config)?;
    let now = portcullis::http::unix_now();
    let text = actix_web::rt::System::new().block_on(async {
        let providers = portcullis::admin::provider_names(&config);
        sessions_cli::run(command, &store, &providers, now).await
    })?;
    print!("{text}");
    Ok(())
}

fn healthcheck() -> anyhow::Result<()> {
    let listen = std::env::var("LISTEN_ADDR")
        .ok()
        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
        .unwrap_or(config::DEFAULT_LISTEN_ADDR);
    // A wildcard address is reached on loopback; a specific one only on itself.
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_string(),
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let url = format!("http://{host}:{}/healthz", listen.port());
    actix_web::rt::System::new().block_on(async move {
        let client = openidconnect::reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(3))
            .build()?;
        let status = client.get(&url).send().await?.status();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        Ok(())
    })
}
