//! portcullis itself, started in-process (the library's `build`) on its own thread and actix
//! System, on a chosen loopback port so that it can be stopped and started again there.

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use portcullis_testkit::{free_port, wait};

// The environment lives in the kit (the bench starts the binary with it too); named here as
// well, where the tests have always found it.
pub use portcullis_testkit::env::{test_env, COOKIE_NAME, COOKIE_SECRET, REQUIRED};

pub struct Portcullis {
    port: u16,
    env: HashMap<String, String>,
    running: Option<(ServerHandle, JoinHandle<()>)>,
    /// The running instance's store (a handle to the same connections and cache).
    store: Option<portcullis::session::Store>,
}

impl Portcullis {
    /// Reserves a port without starting (proxies need the address before portcullis can start,
    /// because the IdP needs the proxy's callback address first).
    pub fn reserve() -> Portcullis {
        Portcullis {
            port: free_port(),
            env: HashMap::new(),
            running: None,
            store: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn hostport(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self, mut env: HashMap<String, String>) {
        env.insert("LISTEN_ADDR".into(), self.hostport());
        self.env = env;
        self.launch();
    }

    fn launch(&mut self) {
        // A restart binds the same port again, which an outgoing connection of any program on
        // this machine may hold as its source port for a moment: try again, for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.try_launch() {
                Ok(()) => return,
                Err(err)
                    if err.contains("Address already in use")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => panic!("portcullis failed to start: {err}"),
            }
        }
    }

    fn try_launch(&mut self) -> Result<(), String> {
        assert!(self.running.is_none(), "portcullis already running");
        let env = self.env.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("portcullis-{}", self.port))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let config = match portcullis::config::Config::from_env_map(env) {
                        Ok(config) => config,
                        Err(err) => {
                            let _ = tx.send(Err(err.to_string()));
                            return;
                        }
                    };
                    match portcullis::build(config).await {
                        Ok(running) => {
                            let store = running.state.store.clone();
                            let _ = tx.send(Ok((running.server.handle(), store)));
                            let _ = running.server.await;
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err.to_string()));
                        }
                    }
                })
            })
            .expect("spawn portcullis thread");
        let started = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("portcullis did not report its start");
        let (handle, store) = match started {
            Ok(started) => started,
            Err(err) => {
                let _ = thread.join();
                return Err(err);
            }
        };
        self.running = Some((handle, thread));
        self.store = Some(store);
        wait::wait_for_http(
            &format!("{}/healthz", self.base_url()),
            wait::STARTUP_TIMEOUT,
            |s| s == 200,
        )
        .expect("portcullis /healthz");
        self.wait_for_discovery();
        Ok(())
    }

    /// Discovery loads in the background (retried with backoff); a test that signs in at once
    /// would meet "identity provider not reachable yet" while the IdP is still warming up.
    /// Waits (bounded) until `/readyz` no longer names discovery; a test that keeps the IdP
    /// away on purpose just goes on after the wait, and the store's own state does not count.
    fn wait_for_discovery(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            match portcullis_testkit::raw_http::get(self.port, "/readyz", &[]) {
                Ok(answer)
                    if !answer
                        .body
                        .contains("identity provider discovery not loaded") =>
                {
                    return;
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn stop(&mut self) {
        if let Some((handle, thread)) = self.running.take() {
            // Stopping needs an executor; the test's may be busy, so use a small one of our own.
            let _ = std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(handle.stop(false));
            })
            .join();
            let _ = thread.join();
        }
    }

    /// Waits (bounded) until this instance hears session invalidations, so that its cache is
    /// in use: before that, every check reads the store.
    pub fn wait_until_cache_listens(&self) {
        let store = self.store.as_ref().expect("portcullis running");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !store.cache_listening() {
            assert!(
                std::time::Instant::now() < deadline,
                "portcullis on port {} never subscribed to session invalidations",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether this instance answers from its cache right now.
    pub fn cache_listening(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.cache_listening())
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Restarts with `set` added to (or replacing in) its environment, then `unset` removed.
    pub fn restart_with(&mut self, set: &[(&str, &str)], unset: &[&str]) {
        self.stop();
        for (name, value) in set {
            self.env.insert(name.to_string(), value.to_string());
        }
        for name in unset {
            self.env.remove(*name);
        }
        self.launch();
    }
}

impl Drop for Portcullis {
    fn drop(&mut self) {
        self.stop();
    }
}
