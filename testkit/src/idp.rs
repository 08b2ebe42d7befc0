//! The test OpenID Provider (tests/idp/idp.mjs, npm oidc-provider) as a
//! real Node process on loopback. Accounts: see tests/idp/README.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::paths::{repo_root, require_program};
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::wait::STARTUP_TIMEOUT;
use crate::workdir::Workdir;

/// Password of every test account.
pub const PASSWORD: &str = "password";

const CLIENT_ID: &str = "portcullis-test";

pub struct Idp {
    port: u16,
    client_secret: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    // Declared before `dir` so the OP stops before its folder goes away.
    child: Option<ChildGuard>,
    dir: Workdir,
}

impl Idp {
    /// Starts the OP with one confidential client allowed to use
    /// `redirect_uris` (and `post_logout` for RP-initiated logout).
    pub fn start(redirect_uris: &[String], post_logout: &[String]) -> Idp {
        Self::start_with(Workdir::temp("idp"), redirect_uris, post_logout)
    }

    /// The same, with its log (`idp.log`) in `dir`, which is kept.
    pub fn start_in(dir: &Path, redirect_uris: &[String], post_logout: &[String]) -> Idp {
        Self::start_with(Workdir::kept(dir), redirect_uris, post_logout)
    }

    fn start_with(dir: Workdir, redirect_uris: &[String], post_logout: &[String]) -> Idp {
        assert!(
            !redirect_uris.is_empty(),
            "the IdP client needs at least one redirect URI"
        );
        let port = free_port();
        let mut idp = Idp {
            port,
            client_secret: format!("test-secret-{port}"),
            redirect_uris: redirect_uris.to_vec(),
            post_logout_redirect_uris: post_logout.to_vec(),
            child: None,
            dir,
        };
        idp.launch();
        idp
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (no trailing slash), as in the discovery document.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer())
    }

    /// The client using `client_secret_basic`.
    pub fn client_id(&self) -> String {
        CLIENT_ID.to_string()
    }

    /// The same client registered with `client_secret_post` instead.
    pub fn client_id_post(&self) -> String {
        format!("{CLIENT_ID}-post")
    }

    pub fn client_secret(&self) -> String {
        self.client_secret.clone()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log_path(), lines)
    }

    /// The OP's pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(ChildGuard::pid)
    }

    /// An error with the log tail if the OP has exited (Ok while stopped on purpose).
    pub fn ensure_running(&mut self) -> Result<(), String> {
        self.child
            .as_mut()
            .map_or(Ok(()), ChildGuard::ensure_running)
    }

    /// Stops the OP (SIGTERM); `restart` brings it back on the same port.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
    }

    /// A fresh OP on the same port: same issuer and client, but a NEW signing
    /// key (kid) and no sessions, as after a redeploy with key rotation.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("idp.log")
    }

    fn launch(&mut self) {
        let idp_dir = repo_root().join("tests/idp");
        assert!(
            idp_dir.join("node_modules/oidc-provider").is_dir(),
            "the test IdP's npm packages are not installed; run: npm ci --prefix tests/idp   (in {})",
            repo_root().display()
        );
        let node = require_program("node", "apt-get install nodejs npm (Node.js 18 or newer)");
        let mut command = Command::new(node);
        command
            .arg(idp_dir.join("idp.mjs"))
            .current_dir(&idp_dir)
            .env("PORT", self.port.to_string())
            .env("ISSUER", self.issuer())
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", &self.client_secret)
            .env("REDIRECT_URIS", self.redirect_uris.join(","))
            .env(
                "POST_LOGOUT_REDIRECT_URIS",
                self.post_logout_redirect_uris.join(","),
            )
            // oidc-provider logs through `debug`; keep it quiet unless asked.
            .env_remove("DEBUG")
            .env("NODE_ENV", "test");
        let mut child = ChildGuard::spawn("idp (node oidc-provider)", command, &self.log_path());
        child.wait_for_http(&self.discovery_url(), STARTUP_TIMEOUT, |status| {
            status == 200
        });
        self.child = Some(child);
    }
}
