//! The test OpenID Provider (tests/idp/idp.mjs, npm oidc-provider) as a
//! real Node process on loopback. Accounts: see tests/idp/README.md.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use super::paths::{repo_root, require_program};
use super::ports::free_port;
use super::process::ChildGuard;
use super::wait::STARTUP_TIMEOUT;

/// Password of every test account.
pub const PASSWORD: &str = "password";

const CLIENT_ID: &str = "portcullis-test";

pub struct Idp {
    port: u16,
    client_secret: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    dir: TempDir,
    child: Option<ChildGuard>,
}

impl Idp {
    /// Starts the OP with one confidential client allowed to use
    /// `redirect_uris` (and `post_logout` for RP-initiated logout).
    pub fn start(redirect_uris: &[String], post_logout: &[String]) -> Idp {
        assert!(
            !redirect_uris.is_empty(),
            "the IdP client needs at least one redirect URI"
        );
        let port = free_port();
        let dir = tempfile::Builder::new()
            .prefix("portcullis-idp-")
            .tempdir()
            .expect("temp dir for the IdP");
        let mut idp = Idp {
            port,
            client_secret: format!("test-secret-{port}"),
            redirect_uris: redirect_uris.to_vec(),
            post_logout_redirect_uris: post_logout.to_vec(),
            dir,
            child: None,
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
        super::process::log_tail(&self.log_path(), lines)
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
