//! Integration tests: one binary (every file in tests/ would link its own), with real
//! redis-server, the real test IdP (oidc-provider), real Traefik, nginx and Caddy, and
//! portcullis itself, all on loopback.

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

mod browser;
mod cli;
mod examples;
