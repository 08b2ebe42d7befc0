//! `bench-runner memory-server`: portcullis' own server (`portcullis::build`, the same code the
//! binary serves with) using the in-memory store, which this process then fills with N
//! sessions through `Store::put_session`, as N logins would. The in-memory store lives inside
//! the portcullis process, so this is the only way to hold 100k sessions in it without 100k
//! logins and without a bench-only mode in src/.
//!
//! Configuration comes from the environment exactly as for the binary (REDIS_URL must be
//! unset). When filled, it writes a JSON report to `--ready FILE` and serves until killed.

use std::time::Instant;

use anyhow::{bail, Context};
use portcullis::crypto::Keys;
use serde::{Deserialize, Serialize};

use crate::procs;
use crate::sessions;

/// What the filled server reports in its `--ready` file (the runner reads it back).
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    pub sessions: u64,
    pub sealed_len: usize,
    pub rss_kb_at_start: u64,
    pub rss_kb_serving_empty: u64,
    pub rss_kb_filled: u64,
    pub hwm_kb_filled: u64,
    pub fill_seconds: f64,
}

pub fn main(args: &[String]) -> anyhow::Result<()> {
    let mut sessions = 0u64;
    let mut sealed_len = 0usize;
    let mut cookie_id = String::new();
    let mut ready = String::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sessions" => sessions = value.parse()?,
            "--sealed-len" => sealed_len = value.parse()?,
            "--cookie-id" => cookie_id = value.clone(),
            "--ready" => ready = value.clone(),
            other => bail!("memory-server: unknown flag {other}"),
        }
    }
    if cookie_id.is_empty() || ready.is_empty() || sessions == 0 {
        bail!("memory-server needs --sessions N --cookie-id ID --ready FILE [--sealed-len L]");
    }
    let pid = std::process::id();
    let rss_kb_at_start = procs::status_kb(pid, "VmRSS")?;
    let config = portcullis::config::Config::from_process_env()?;
    if config.store.redis.is_some() {
        bail!("memory-server must run without REDIS_URL");
    }
    let keys = Keys::derive(config.cookie_secret.expose().as_bytes())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    actix_web::rt::System::new().block_on(async move {
        let running = portcullis::build(config)
            .await
            .context("portcullis::build")?;
        let state = running.state.clone();
        let server = actix_web::rt::spawn(running.server);
        // Let the workers start before measuring the empty server.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(300)).await;
        let rss_kb_serving_empty = procs::status_kb(pid, "VmRSS")?;
        let sealed = sessions::sealed_tokens(&keys, sealed_len)?;
        let sealed = (!sealed.is_empty()).then_some(sealed);
        let started = Instant::now();
        // The session the runner's cookie names: like alice's login.
        state
            .store
            .put_session(
                &cookie_id,
                &sessions::session("alice", vec!["admins".into(), "ops".into()]),
                sealed.clone(),
                sessions::TTL,
            )
            .await?;
        for i in 1..sessions {
            let user = format!("user{:07}", i / 4);
            let id = portcullis::crypto::random_id();
            state
                .store
                .put_session(
                    &id,
                    &sessions::session(&user, sessions::groups(2)),
                    sealed.clone(),
                    sessions::TTL,
                )
                .await?;
        }
        let report = Ready {
            sessions,
            sealed_len: sealed.as_ref().map_or(0, String::len),
            rss_kb_at_start,
            rss_kb_serving_empty,
            rss_kb_filled: procs::status_kb(pid, "VmRSS")?,
            hwm_kb_filled: procs::status_kb(pid, "VmHWM")?,
            fill_seconds: started.elapsed().as_secs_f64(),
        };
        let tmp = format!("{ready}.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&report)?)?;
        std::fs::rename(&tmp, &ready)?;
        server.await??;
        Ok(())
    })
}
