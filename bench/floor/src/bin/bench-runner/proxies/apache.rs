//! The peer: Apache httpd with mod_auth_openidc (bench/proxies/apache.conf.template), a reverse
//! proxy to the same echo app, signed in at the same test IdP with a client of its own.

use std::path::Path;
use std::process::Command;

use portcullis_testkit::idp::ExtraClient;

use crate::processes::Processes;

use super::{render, wait_ready};

/// The IdP client of every Apache instance (registered by the runner when it starts the IdP).
pub const CLIENT_ID: &str = "portcullis-bench-apache";
/// mod_auth_openidc's cookie holding its session id.
pub const SESSION_COOKIE: &str = "mod_auth_openidc_session";
/// The path mod_auth_openidc protects (and under which its redirect URI is).
pub const PROTECTED: &str = "/protected/";
pub const OPEN: &str = "/open/";

/// Where mod_auth_openidc keeps its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `OIDCCacheType redis` on the bench's Redis.
    Redis,
    /// Its default: `OIDCCacheType shm`, shared memory of the Apache processes.
    Shm,
}

impl Store {
    /// The instance's program name.
    pub fn name(self) -> &'static str {
        match self {
            Store::Redis => "apache-redis",
            Store::Shm => "apache-shm",
        }
    }
}

/// The redirect URI of the instance on `port`.
pub fn redirect_uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}{PROTECTED}redirect_uri")
}

/// The IdP client for instances on `ports`.
pub fn client(ports: &[u16]) -> ExtraClient {
    ExtraClient {
        id: CLIENT_ID.to_string(),
        secret: client_secret(),
        redirect_uris: ports.iter().map(|p| redirect_uri(*p)).collect(),
    }
}

fn client_secret() -> String {
    format!("{CLIENT_ID}-secret")
}

/// What an instance needs to know.
pub struct Settings<'a> {
    pub store: Store,
    pub port: u16,
    /// The IdP's issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: &'a str,
    /// host:port of the echo app and of Redis.
    pub app: &'a str,
    pub redis: &'a str,
}

/// Starts one Apache (`apache2 -f CONF -DFOREGROUND`: the process stays in the foreground,
/// its workers are its children) and waits until its open route answers.
pub fn start(
    live: &mut Processes,
    repo: &Path,
    dir: &Path,
    settings: &Settings,
) -> anyhow::Result<()> {
    let name = settings.store.name();
    let run_dir = dir.join(format!("{name}-run"));
    std::fs::create_dir_all(&run_dir)?;
    let (cache, note) = match settings.store {
        Store::Redis => (
            format!(
                "OIDCCacheType redis\nOIDCRedisCacheServer {}",
                settings.redis
            ),
            "Redis (OIDCCacheType redis, the bench's Redis)",
        ),
        Store::Shm => (
            "OIDCCacheType shm".to_string(),
            "shared memory (OIDCCacheType shm, the default)",
        ),
    };
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let user = if root {
        "User nobody\nGroup nogroup"
    } else {
        ""
    };
    let conf = render(
        repo,
        "apache.conf.template",
        &[
            ("USER", user.to_string()),
            ("DIR", dir.display().to_string()),
            ("INSTANCE", name.to_string()),
            ("LISTEN", format!("127.0.0.1:{}", settings.port)),
            ("APP", settings.app.to_string()),
            ("IDP", settings.issuer.to_string()),
            ("CLIENT_ID", CLIENT_ID.to_string()),
            ("CLIENT_SECRET", client_secret()),
            // Encrypts its state cookies and cached sessions; a bench-only value.
            ("PASSPHRASE", format!("{name}-bench-passphrase-0123456789")),
            ("CACHE", cache),
            ("CACHE_NOTE", note.to_string()),
        ],
        dir,
        &format!("{name}.conf"),
    )?;
    let mut command = Command::new("apache2");
    command
        .arg("-f")
        .arg(&conf)
        .arg("-DFOREGROUND")
        .current_dir(dir)
        // Nothing from /etc/apache2/envvars: the configuration names every path itself.
        .env_remove("APACHE_CONFDIR");
    let child = live.spawn(name, command, dir)?;
    wait_ready(child, settings.port, OPEN)
}
