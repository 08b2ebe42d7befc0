//! Integration tests: one binary (every file in tests/ would link its own), with real
//! redis-server, the real test IdP (oidc-provider), real Traefik, nginx and Caddy, and
//! portcullis itself, all on loopback.

// A test that cannot go on fails loudly: unwrap, expect and panic are how tests say so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

mod stack;

mod endpoints;
mod login;
mod rules;
mod sessions;

mod email;
mod hardening;
mod paths;

mod backchannel;
mod bearer;
mod entra;
mod observability;
mod own_sessions;
mod private_key_jwt;
mod providers;
mod redis_tls;
mod replicas;
mod revalidation;
mod revocation;

mod assertion;
mod browser;
mod cli;
mod examples;
