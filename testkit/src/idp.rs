//! The test OpenID Provider (tests/idp/idp.mjs, npm oidc-provider) as a
//! real Node process on loopback. Accounts: see tests/idp/README.md.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;

use crate::paths::{repo_root, require_program};
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::wait::STARTUP_TIMEOUT;
use crate::workdir::Workdir;

/// Password of every test account.
pub const PASSWORD: &str = "password";

const CLIENT_ID: &str = "portcullis-test";

/// What the OP has served since it started (or since [`Idp::reset_counters`]), counted by the OP
/// itself once it answered, errors included (tests/idp/README.md, `GET /test/counters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Token requests with `grant_type=refresh_token`, successful or not.
    pub refresh: u64,
    /// Userinfo requests (`/me`), successful or not.
    pub userinfo: u64,
    /// Token requests with `grant_type=authorization_code`, successful or not.
    pub authorization_code: u64,
}

/// A third client of the OP, for a relying party other than portcullis (tests/idp/README.md,
/// `EXTRA_CLIENT_*`): the bench's Apache mod_auth_openidc. `client_secret_basic`.
#[derive(Debug, Clone)]
pub struct ExtraClient {
    pub id: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
}

/// A client of the OP that authenticates with `private_key_jwt` and has no secret
/// (tests/idp/README.md, `PRIVATE_KEY_JWT_CLIENTS`), with the OP's redirect URIs.
#[derive(Debug, Clone)]
pub struct JwtClient {
    pub id: String,
    /// The public keys it may sign its client assertions with: `{"keys": [<JWK>, ...]}`.
    pub jwks: serde_json::Value,
    /// `token_endpoint_auth_signing_alg`: `RS256`, `ES256`...
    pub alg: String,
}

/// What an OP has beyond the tests' usual one: the bench's third client and session lifetime,
/// clients that authenticate with `private_key_jwt` (tests/idp/README.md).
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// A third client, for another relying party (`EXTRA_CLIENT_*`).
    pub client: Option<ExtraClient>,
    /// Clients without a secret that sign a client assertion (`PRIVATE_KEY_JWT_CLIENTS`).
    pub private_key_jwt_clients: Vec<JwtClient>,
    /// How long sessions, grants and refresh tokens last, in seconds (`SESSION_LIFETIME`; the
    /// OP's default of 600 is shorter than a bench run, and a refresh grant with an expired
    /// refresh token ends portcullis' session).
    pub session_lifetime_s: Option<u64>,
}

/// An API the OP issues JWT access tokens for (tests/idp/README.md, `RESOURCE_SERVER` and
/// `MACHINE_CLIENT_*`): a user's through the code flow with `resource=`, and a machine client's
/// through `client_credentials`.
#[derive(Debug, Clone)]
pub struct ResourceServer {
    /// The resource indicator, e.g. `https://api.test/`.
    pub indicator: String,
    /// The tokens' `aud` (`None`: the indicator).
    pub audience: Option<String>,
    /// The machine client (`client_secret_basic`, grant `client_credentials` only).
    pub machine_client_id: String,
    pub machine_client_secret: String,
    /// The `groups` of its tokens.
    pub machine_groups: Vec<String>,
}

pub struct Idp {
    port: u16,
    client_secret: String,
    redirect_uris: Vec<String>,
    post_logout_redirect_uris: Vec<String>,
    /// The clients' `backchannel_logout_uri`, if any.
    backchannel_logout_uri: Option<String>,
    extras: Extras,
    resource_server: Option<ResourceServer>,
    // Declared before `dir` so the OP stops before its folder goes away.
    child: Option<ChildGuard>,
    dir: Workdir,
}

impl Idp {
    /// Starts the OP with one confidential client allowed to use
    /// `redirect_uris` (and `post_logout` for RP-initiated logout).
    pub fn start(redirect_uris: &[String], post_logout: &[String]) -> Idp {
        Self::start_with(
            Workdir::temp("idp"),
            redirect_uris,
            post_logout,
            None,
            Extras::default(),
        )
    }

    /// The same, and the client registers `backchannel_logout_uri` with "session required":
    /// its ID tokens carry `sid`, and when a user's session at the OP ends (its
    /// `/session/end`), the OP POSTs a logout token there before it answers the browser.
    pub fn start_with_backchannel_logout(
        redirect_uris: &[String],
        post_logout: &[String],
        backchannel_logout_uri: &str,
    ) -> Idp {
        Self::start_with(
            Workdir::temp("idp"),
            redirect_uris,
            post_logout,
            Some(backchannel_logout_uri.to_string()),
            Extras::default(),
        )
    }

    /// The same, issuing JWT access tokens for `resource` (tests/idp/README.md).
    pub fn start_with_resource(
        redirect_uris: &[String],
        post_logout: &[String],
        resource: ResourceServer,
    ) -> Idp {
        let mut idp = Self::prepare(
            Workdir::temp("idp"),
            redirect_uris,
            post_logout,
            None,
            Extras::default(),
        );
        idp.resource_server = Some(resource);
        idp.launch();
        idp
    }

    /// The same, with its log (`idp.log`) in `dir`, which is kept.
    pub fn start_in(dir: &Path, redirect_uris: &[String], post_logout: &[String]) -> Idp {
        Self::start_with(
            Workdir::kept(dir),
            redirect_uris,
            post_logout,
            None,
            Extras::default(),
        )
    }

    /// [`Idp::start`] with [`Extras`] (e.g. `private_key_jwt` clients).
    pub fn start_with_extras(
        redirect_uris: &[String],
        post_logout: &[String],
        extras: Extras,
    ) -> Idp {
        Self::start_with(
            Workdir::temp("idp"),
            redirect_uris,
            post_logout,
            None,
            extras,
        )
    }

    /// [`Idp::start_in`] (no post-logout URIs), with the bench's [`Extras`].
    pub fn start_in_with(dir: &Path, redirect_uris: &[String], extras: Extras) -> Idp {
        Self::start_with(Workdir::kept(dir), redirect_uris, &[], None, extras)
    }

    fn start_with(
        dir: Workdir,
        redirect_uris: &[String],
        post_logout: &[String],
        backchannel_logout_uri: Option<String>,
        extras: Extras,
    ) -> Idp {
        let mut idp = Self::prepare(
            dir,
            redirect_uris,
            post_logout,
            backchannel_logout_uri,
            extras,
        );
        idp.launch();
        idp
    }

    fn prepare(
        dir: Workdir,
        redirect_uris: &[String],
        post_logout: &[String],
        backchannel_logout_uri: Option<String>,
        extras: Extras,
    ) -> Idp {
        assert!(
            !redirect_uris.is_empty(),
            "the IdP client needs at least one redirect URI"
        );
        let port = free_port();
        Idp {
            port,
            client_secret: format!("test-secret-{port}"),
            redirect_uris: redirect_uris.to_vec(),
            post_logout_redirect_uris: post_logout.to_vec(),
            backchannel_logout_uri,
            extras,
            resource_server: None,
            child: None,
            dir,
        }
    }

    /// The API this OP issues JWT access tokens for, if it was started with one.
    pub fn resource_server(&self) -> Option<&ResourceServer> {
        self.resource_server.as_ref()
    }

    /// The token endpoint (oidc-provider's `/token`).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.issuer())
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

    /// The userinfo endpoint (oidc-provider's `/me`), which the Graph stand-in asks.
    pub fn userinfo_url(&self) -> String {
        format!("{}/me", self.issuer())
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

    /// Where a browser ends its session at the OP (RP-initiated logout; without parameters the
    /// OP asks for confirmation, and the confirmation form signs out of every client).
    pub fn end_session_url(&self) -> String {
        format!("{}/session/end", self.issuer())
    }

    /// TEST ONLY: `claims` signed by the OP's current key (the one its JWKS serves, RS256, its
    /// kid), with `header` merged over `{alg, typ: "logout+jwt", kid}` (a null member removes
    /// one). Through the OP's test-only `POST /test/sign` (tests/idp/README.md).
    pub async fn sign(&self, claims: &serde_json::Value, header: &serde_json::Value) -> String {
        let body = serde_json::json!({ "claims": claims, "header": header });
        let answer = self
            .test_request(Method::POST, "/test/sign", Some(&body))
            .await;
        answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token from /test/sign: {answer}"))
            .to_string()
    }

    /// TEST ONLY: merges `claims` (a JSON object; a `null` member deletes that claim) into
    /// `account`'s claims at the OP: its next ID tokens (sign-in or refresh) and userinfo answers
    /// carry them. Only claims some scope releases are accepted (`sub` never); the change lasts
    /// until the OP stops ([`Idp::restart`] starts from the accounts of tests/idp/README.md).
    pub async fn set_claims(&self, account: &str, claims: serde_json::Value) {
        self.test_request(
            Method::POST,
            &format!("/test/accounts/{account}"),
            Some(&claims),
        )
        .await;
    }

    /// TEST ONLY: the OP no longer finds `account`: its refresh (and code) grants fail with
    /// `invalid_grant`, its userinfo requests with 401 `invalid_token`, and it cannot sign in
    /// ("Account disabled" on the login form). Until [`Idp::enable`] or a restart.
    pub async fn disable(&self, account: &str) {
        self.test_request(
            Method::POST,
            &format!("/test/accounts/{account}/disable"),
            None,
        )
        .await;
    }

    /// TEST ONLY: undoes [`Idp::disable`].
    pub async fn enable(&self, account: &str) {
        self.test_request(
            Method::POST,
            &format!("/test/accounts/{account}/enable"),
            None,
        )
        .await;
    }

    /// TEST ONLY: refresh grants, userinfo requests and code grants the OP has answered.
    pub async fn counters(&self) -> Counters {
        let answer = self.test_request(Method::GET, "/test/counters", None).await;
        let count = |name: &str| {
            answer[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no {name} in /test/counters: {answer}"))
        };
        Counters {
            refresh: count("refresh"),
            userinfo: count("userinfo"),
            authorization_code: count("authorization_code"),
        }
    }

    /// TEST ONLY: the OP's record of its last token requests, oldest first
    /// (tests/idp/README.md, `GET /test/token-requests`): per request `grant_type`, `client_id`,
    /// whether an `Authorization` header or a `client_secret` came, the `client_assertion_type`,
    /// the `client_assertion` decoded (`{"header", "claims"}`), and the answer's `status` and
    /// `error`. Emptied by [`Idp::reset_counters`].
    pub async fn token_requests(&self) -> Vec<serde_json::Value> {
        let answer = self
            .test_request(Method::GET, "/test/token-requests", None)
            .await;
        answer
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("/test/token-requests is not a list: {answer}"))
    }

    /// TEST ONLY: sets every [`Counters`] member back to 0 (and forgets the token requests).
    pub async fn reset_counters(&self) {
        self.test_request(Method::POST, "/test/counters/reset", None)
            .await;
    }

    /// TEST ONLY: for the next `ms` milliseconds the OP holds its answers from the token
    /// endpoint and userinfo (it handles and counts each request at once, then answers when the
    /// pause ends); `pause(0)` ends a pause at once, answering what it held. Other endpoints
    /// (discovery, JWKS, sign-in) answer as usual.
    pub async fn pause(&self, ms: u64) {
        self.test_request(
            Method::POST,
            "/test/pause",
            Some(&serde_json::json!({ "ms": ms })),
        )
        .await;
    }

    /// A test-only endpoint of the OP (tests/idp/README.md), with a JSON body if any; panics
    /// unless it answers 2xx with JSON, which it returns.
    async fn test_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        crate::control::request("the IdP", &self.issuer(), method, path, body).await
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
    /// key (kid) and no sessions, as after a redeploy with key rotation. All it kept in memory
    /// is gone: refresh and access tokens it issued (a refresh grant then fails with
    /// `invalid_grant`, userinfo with 401), [`Idp::set_claims`] changes, [`Idp::disable`]d
    /// accounts, [`Counters`], a [`Idp::pause`].
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
            // Tests forge tokens the OP's JWKS vouches for with it (never set outside tests).
            .env("TEST_SIGN_ENDPOINT", "1")
            // And change accounts, count and pause the OP's answers (set_claims, counters...).
            .env("TEST_CONTROL_ENDPOINTS", "1")
            // oidc-provider logs through `debug`; keep it quiet unless asked.
            .env_remove("DEBUG")
            .env("NODE_ENV", "test");
        if let Some(uri) = &self.backchannel_logout_uri {
            command.env("BACKCHANNEL_LOGOUT_URI", uri);
        }
        if let Some(extra) = &self.extras.client {
            command
                .env("EXTRA_CLIENT_ID", &extra.id)
                .env("EXTRA_CLIENT_SECRET", &extra.secret)
                .env("EXTRA_REDIRECT_URIS", extra.redirect_uris.join(","));
        }
        if !self.extras.private_key_jwt_clients.is_empty() {
            let clients: Vec<serde_json::Value> = self
                .extras
                .private_key_jwt_clients
                .iter()
                .map(|client| {
                    serde_json::json!({
                        "client_id": client.id,
                        "jwks": client.jwks,
                        "token_endpoint_auth_signing_alg": client.alg,
                    })
                })
                .collect();
            command.env(
                "PRIVATE_KEY_JWT_CLIENTS",
                serde_json::Value::Array(clients).to_string(),
            );
        }
        if let Some(resource) = &self.resource_server {
            command
                .env("RESOURCE_SERVER", &resource.indicator)
                .env("MACHINE_CLIENT_ID", &resource.machine_client_id)
                .env("MACHINE_CLIENT_SECRET", &resource.machine_client_secret)
                .env("MACHINE_CLIENT_GROUPS", resource.machine_groups.join(","));
            if let Some(audience) = &resource.audience {
                command.env("RESOURCE_AUDIENCE", audience);
            }
        }
        if let Some(seconds) = self.extras.session_lifetime_s {
            command.env("SESSION_LIFETIME", seconds.to_string());
        }
        let mut child = ChildGuard::spawn("idp (node oidc-provider)", command, &self.log_path());
        child.wait_for_http(&self.discovery_url(), STARTUP_TIMEOUT, |status| {
            status == 200
        });
        self.child = Some(child);
    }
}
