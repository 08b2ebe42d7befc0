//! The protected app: an echo server that shows what the proxy passed on.
//!
//! Every request gets 200 with JSON
//! `{"method", "path", "query", "headers": {lowercased name: value}, "header_list": [[name, value], ...]}`.
//! `headers` joins repeated headers with ", "; `header_list` keeps each one,
//! so tests can see a smuggled duplicate identity header.

use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Map, Value};

pub struct Upstream {
    port: u16,
    handle: ServerHandle,
    thread: Option<JoinHandle<()>>,
    finished: mpsc::Receiver<()>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Upstream {
    /// Starts the echo app on its own thread and actix System (so it keeps
    /// serving while a test blocks or runs its own runtime).
    pub fn start() -> Upstream {
        // Bind here so the port is ours before the thread starts.
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind echo upstream");
        let port = listener.local_addr().expect("echo upstream address").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (handle_tx, handle_rx) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel();
        let seen_for_server = Arc::clone(&seen);
        let thread = std::thread::Builder::new()
            .name(format!("echo-upstream-{port}"))
            .spawn(move || {
                let system = actix_web::rt::System::new();
                system.block_on(async move {
                    let seen = web::Data::new(seen_for_server);
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(seen.clone())
                            .default_service(web::to(echo))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(1)
                    .listen(listener)
                    .expect("echo upstream listens")
                    .run();
                    let _ = handle_tx.send(server.handle());
                    let _ = server.await;
                });
                let _ = finished_tx.send(());
            })
            .expect("spawn echo upstream thread");
        let handle = handle_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("echo upstream started");
        Upstream {
            port,
            handle,
            thread: Some(thread),
            finished,
            seen,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT` (for nginx/Caddy upstream settings).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` (for Traefik service URLs).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Every request the app received so far (the same JSON it answered).
    pub fn requests(&self) -> Vec<Value> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many requests reached the app: 0 proves the auth check stopped one.
    pub fn request_count(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn clear_requests(&self) {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // stop() sends the command eagerly; the returned future only reports completion.
        drop(self.handle.stop(false));
        // Bounded wait: never hang a test's teardown on the server thread.
        if self.finished.recv_timeout(Duration::from_secs(5)).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

async fn echo(req: HttpRequest, seen: web::Data<Arc<Mutex<Vec<Value>>>>) -> HttpResponse {
    let mut headers = Map::new();
    let mut header_list = Vec::new();
    for (name, value) in req.headers() {
        let name = name.as_str().to_ascii_lowercase();
        let value = String::from_utf8_lossy(value.as_bytes()).to_string();
        header_list.push(json!([name, value]));
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name, Value::String(value));
            }
        }
    }
    let body = json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "headers": headers,
        "header_list": header_list,
    });
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(body.clone());
    HttpResponse::Ok().json(body)
}
