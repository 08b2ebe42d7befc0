//! portcullis' test kit: starts REAL programs (Redis alone, as a cluster or behind Sentinels,
//! the Node OpenID Provider and its Microsoft Graph stand-in, Traefik, nginx, Caddy, an echo upstream) on loopback, on free ports,
//! stops them when their guard is dropped, and signs in through them with a cookie-keeping
//! scripted browser.
//!
//! One kit for three users: the integration tests (tests/support re-exports all of it), the
//! library's unit tests (a real redis-server for the store suite) and the bench runner.
//!
//! It does not depend on the portcullis crate: portcullis has this crate as a dev-dependency,
//! and a cycle would give its unit tests two copies of portcullis' types. Starting portcullis
//! in-process therefore stays in tests/support/portcullis.rs; the environment it starts with
//! is here ([`env`]), since the bench starts the binary with the same one.
//!
//! Failures panic with what was awaited and the end of the program's log, which is what a test
//! wants; the `try_` variants return the same message as an error for the bench.

// Test code: a harness that cannot go on fails loudly (see the workspace lints).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod control;
pub mod env;
pub mod graph;
pub mod html;
pub mod idp;
pub mod keys;
pub mod paths;
pub mod ports;
pub mod process;
pub mod proxies;
pub mod raw_http;
pub mod redis;
pub mod redis_cli;
pub mod redis_cluster;
pub mod redis_sentinel;
pub mod scrape;
pub mod tls;
pub mod upstream;
pub mod wait;
pub mod workdir;

pub use browser::{Browser, Hop};
pub use graph::Graph;
pub use idp::Idp;
pub use ports::free_port;
pub use process::ChildGuard;
pub use proxies::{Caddy, Nginx, Proxy, ProxyKind, Traefik};
pub use redis::RedisServer;
pub use redis_cluster::RedisCluster;
pub use redis_sentinel::RedisSentinels;
pub use upstream::Upstream;
pub use wait::{wait_for_http, wait_for_tcp};
