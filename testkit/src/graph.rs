//! The Microsoft Graph stand-in (tests/idp/graph.mjs) as a real Node process on loopback: the
//! one stand-in the tests use, since Graph itself cannot run here. It answers a user's groups
//! in Graph's shapes, page by page, to access tokens the real test IdP honours (it asks the
//! IdP's userinfo with each). See tests/idp/README.md.

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;

use crate::idp::Idp;
use crate::paths::{repo_root, require_program};
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::wait::STARTUP_TIMEOUT;
use crate::workdir::Workdir;

/// Groups per page unless a test says otherwise: small, so that a few groups take several.
pub const DEFAULT_PAGE_SIZE: usize = 2;

/// What the stand-in has answered since it started (or since [`Graph::reset_counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GraphCounters {
    /// Pages of groups answered (200).
    pub pages: u64,
    /// Requests refused with 401 (no token, or one the IdP does not honour).
    pub refused: u64,
}

pub struct Graph {
    port: u16,
    userinfo_url: String,
    groups: serde_json::Value,
    page_size: usize,
    // Before `dir`, so that the process stops before its folder goes away.
    child: Option<ChildGuard>,
    dir: Workdir,
}

impl Graph {
    /// A port for the stand-in, so that portcullis can be told `ENTRA_GRAPH_URL` before the
    /// IdP the stand-in asks is known; [`Graph::start`] starts it there.
    pub fn reserve() -> Graph {
        Graph {
            port: free_port(),
            userinfo_url: String::new(),
            groups: serde_json::json!({}),
            page_size: DEFAULT_PAGE_SIZE,
            child: None,
            dir: Workdir::temp("graph"),
        }
    }

    /// Starts it, checking bearer tokens at `idp`'s userinfo, with `groups`
    /// (`{"<sub>": [{"id": ..., "displayName": ...}]}`), `page_size` groups per page.
    pub fn start(&mut self, idp: &Idp, groups: serde_json::Value, page_size: usize) {
        self.userinfo_url = idp.userinfo_url();
        self.groups = groups;
        self.page_size = page_size;
        self.launch();
    }

    /// `http://127.0.0.1:PORT`, what `ENTRA_GRAPH_URL` is set to.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// TEST ONLY: `user`'s groups from now on (a JSON list of `{"id", "displayName"}`).
    pub async fn set_groups(&self, user: &str, groups: serde_json::Value) {
        self.test_request(Method::PUT, &format!("/test/groups/{user}"), Some(&groups))
            .await;
    }

    pub async fn counters(&self) -> GraphCounters {
        let answer = self.test_request(Method::GET, "/test/counters", None).await;
        let count = |name: &str| {
            answer[name]
                .as_u64()
                .unwrap_or_else(|| panic!("no {name} in /test/counters: {answer}"))
        };
        GraphCounters {
            pages: count("pages"),
            refused: count("refused"),
        }
    }

    pub async fn reset_counters(&self) {
        self.test_request(Method::POST, "/test/counters/reset", None)
            .await;
    }

    /// Stops it (connection refused from then on); [`Graph::restart`] brings it back, with the
    /// groups it started with.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.stop();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        crate::process::log_tail(&self.log_path(), lines)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("graph.log")
    }

    async fn test_request(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> serde_json::Value {
        crate::control::request("the Graph stand-in", &self.url(), method, path, body).await
    }

    fn launch(&mut self) {
        let idp_dir = repo_root().join("tests/idp");
        let node = require_program("node", "apt-get install nodejs npm (Node.js 18 or newer)");
        let mut command = Command::new(node);
        command
            .arg(idp_dir.join("graph.mjs"))
            .current_dir(&idp_dir)
            .env("PORT", self.port.to_string())
            .env("USERINFO_URL", &self.userinfo_url)
            .env("GRAPH_GROUPS", self.groups.to_string())
            .env("PAGE_SIZE", self.page_size.to_string())
            .env("TEST_CONTROL_ENDPOINTS", "1");
        let mut child = ChildGuard::spawn("graph stand-in (node)", command, &self.log_path());
        // The control endpoint answers 200 once it listens (the groups path wants a token).
        child.wait_for_http(
            &format!("{}/test/counters", self.url()),
            STARTUP_TIMEOUT,
            |status| status == 200,
        );
        self.child = Some(child);
    }
}
