//! Integration-test harness: starts REAL programs (Redis, a Node OpenID
//! Provider, Traefik, nginx, Caddy, an echo upstream) on loopback, on free
//! ports, and stops them when their guard is dropped.
//!
//! Include from an integration test file with `mod support;`.
//! Every test binary compiles all of it but uses only part: hence the allowances.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod html;
pub mod idp;
pub mod paths;
pub mod portcullis;
pub mod ports;
pub mod process;
pub mod proxies;
pub mod raw_http;
pub mod redis;
pub mod upstream;
pub mod wait;

pub use browser::{Browser, Hop};
pub use idp::Idp;
pub use ports::free_port;
pub use process::ChildGuard;
pub use proxies::{Caddy, Nginx, Proxy, ProxyKind, Traefik};
pub use redis::RedisServer;
pub use upstream::Upstream;
pub use wait::{wait_for_http, wait_for_tcp};
