//! The benchmark floors: what any actix-web service would cost, without portcullis' own work.
//!
//! ```text
//! floor plain --listen 127.0.0.1:PORT                 floor A: 200 + the headers portcullis answers, fixed
//! floor redis --listen 127.0.0.1:PORT --redis URL --key KEY
//!                                                      floor B: the same after one Redis GET of KEY
//! floor echo  --listen 127.0.0.1:PORT                 the app behind nginx: 200 "ok"
//! ```
//!
//! Floor B answers 503 if Redis fails and 404 if KEY holds nothing, so a broken floor can never
//! pass for a fast one (the runner expects 200 from every request).

use std::sync::Arc;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::{bail, Context};
use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

const USAGE: &str = "usage: floor plain|redis|echo --listen ADDR [--redis URL --key KEY]";

/// What portcullis answers on a 2xx (src/http/identity_headers.rs and request_id.rs): every
/// identity header under both its names, the provider, the empty assertion header,
/// `Cache-Control: no-store` and a request id, with fixed values of the same length as a real
/// session's. A proxy copies and parses each of them, so the null auth server answers all of
/// them: with fewer, the comparison would measure the proxy's work on headers, not the check.
fn identity_headers() -> [(&'static str, &'static str); 12] {
    [
        ("cache-control", "no-store"),
        ("x-auth-request-user", "alice"),
        ("remote-user", "alice"),
        ("x-auth-request-email", "alice@example.com"),
        ("remote-email", "alice@example.com"),
        ("x-auth-request-preferred-username", "alice"),
        ("remote-name", "alice"),
        ("x-auth-request-groups", "admins,ops"),
        ("remote-groups", "admins,ops"),
        ("x-auth-request-provider", "default"),
        ("x-auth-request-jwt", ""),
        ("x-request-id", "AAAAAAAAAAAAAAAAAAAAAA"),
    ]
}

fn allowed() -> HttpResponse {
    let mut response = HttpResponse::Ok();
    for (name, value) in identity_headers() {
        response.insert_header((
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    response.finish()
}

async fn plain() -> HttpResponse {
    allowed()
}

async fn echo() -> HttpResponse {
    HttpResponse::Ok().body("ok")
}

/// One shared multiplexed connection, connected once on first use and cloned per request:
/// exactly how portcullis' RedisStore holds its ConnectionManager (so the connection's driver
/// task lives on an actix worker in both).
struct RedisFloor {
    client: redis::Client,
    manager: OnceCell<ConnectionManager>,
    key: String,
}

impl RedisFloor {
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        self.manager
            .get_or_try_init(|| ConnectionManager::new(self.client.clone()))
            .await
            .cloned()
    }
}

async fn with_redis(state: web::Data<Arc<RedisFloor>>) -> HttpResponse {
    let mut conn = match state.connection().await {
        Ok(conn) => conn,
        Err(_) => return HttpResponse::ServiceUnavailable().finish(),
    };
    let value: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("GET")
        .arg(&state.key)
        .query_async(&mut conn)
        .await;
    match value {
        Ok(Some(bytes)) if !bytes.is_empty() => allowed(),
        Ok(_) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::ServiceUnavailable().finish(),
    }
}

struct Args {
    mode: String,
    listen: String,
    redis: Option<String>,
    key: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().context(USAGE)?;
    let mut parsed = Args {
        mode,
        listen: String::new(),
        redis: None,
        key: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => parsed.listen = value,
            "--redis" => parsed.redis = Some(value),
            "--key" => parsed.key = Some(value),
            other => bail!("unknown flag {other}; {USAGE}"),
        }
    }
    if parsed.listen.is_empty() {
        bail!("--listen is required; {USAGE}");
    }
    Ok(parsed)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let listener = std::net::TcpListener::bind(&args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    actix_web::rt::System::new().block_on(async move {
        // Default worker count (one per core), as portcullis.
        match args.mode.as_str() {
            "plain" => {
                HttpServer::new(|| App::new().default_service(web::to(plain)))
                    .listen(listener)?
                    .shutdown_timeout(1)
                    .run()
                    .await?
            }
            "echo" => {
                HttpServer::new(|| App::new().default_service(web::to(echo)))
                    .listen(listener)?
                    .shutdown_timeout(1)
                    .run()
                    .await?
            }
            "redis" => {
                let url = args.redis.context("redis mode needs --redis URL")?;
                let key = args.key.context("redis mode needs --key KEY")?;
                let floor = Arc::new(RedisFloor {
                    client: redis::Client::open(url.as_str()).context("bad Redis URL")?,
                    manager: OnceCell::new(),
                    key,
                });
                let data = web::Data::new(floor);
                HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .default_service(web::to(with_redis))
                })
                .listen(listener)?
                .shutdown_timeout(1)
                .run()
                .await?
            }
            other => bail!("unknown mode {other}; {USAGE}"),
        }
        Ok(())
    })
}
