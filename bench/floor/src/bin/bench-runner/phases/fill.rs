//! Sessions made through portcullis' own store code: one with 1 group, one with 50, and filler
//! sessions up to each level of sessions in Redis; and the cookies that deny.

use std::time::Duration;

use anyhow::anyhow;
use portcullis::session::Store;
use serde::Serialize;

use crate::redis_admin::{memory_usage, used_memory};
use crate::sessions;

use super::logins::Logins;
use super::setup::Servers;
use super::Context;

/// Cookies beyond alice's, for the scenarios, and what the group sessions cost in Redis.
pub struct ExtraSessions {
    pub cookie_1: String,
    pub cookie_50: String,
    /// Signed with the right key, but no such session: the deny path that reads the store.
    pub cookie_unknown: String,
    /// alice's cookie with one character of its signature changed: same length, bad signature.
    pub cookie_forged: String,
    pub session_1_bytes: u64,
    pub session_50_bytes: u64,
}

/// One filling of Redis, as reported.
#[derive(Debug, Serialize)]
pub struct FillRecord {
    pub sessions: u64,
    pub seconds: f64,
    pub keys: u64,
    pub used_memory_bytes: u64,
    pub used_memory_per_session_bytes: f64,
}

/// Fills Redis up to a number of sessions, through `Store::put_session`.
pub struct Filler {
    store: Store,
    /// Sealed tokens of a login's length ("" when the login stored none).
    sealed: String,
    pub sessions_in_redis: u64,
    used_before_fill: u64,
    pub records: Vec<FillRecord>,
}

/// The group sessions and the deny cookies, then filler up to the first level.
pub fn run(
    cx: &Context,
    servers: &Servers,
    logins: &Logins,
    admin: &mut redis::Connection,
) -> anyhow::Result<(ExtraSessions, Filler)> {
    let store = Store::redis(&servers.redis_url).map_err(|e| anyhow!("{e}"))?;
    let sealed = sessions::sealed_tokens(&cx.keys, logins.facts.sealed_len as usize)?;
    let id_1 = portcullis::crypto::random_id();
    let id_50 = portcullis::crypto::random_id();
    cx.rt.block_on(async {
        store
            .put_session(
                &id_1,
                &sessions::session("grp01", sessions::groups(1)),
                (!sealed.is_empty()).then(|| sealed.clone()),
                sessions::TTL,
            )
            .await?;
        store
            .put_session(
                &id_50,
                &sessions::session("grp50", sessions::groups(50)),
                (!sealed.is_empty()).then(|| sealed.clone()),
                sessions::TTL,
            )
            .await
    })?;
    let cookie_1 = cx.keys.sign(&id_1);
    let cookie_50 = cx.keys.sign(&id_50);
    let session_1_bytes = memory_usage(admin, &format!("portcullis:session:{{{id_1}}}"))?;
    let session_50_bytes = memory_usage(admin, &format!("portcullis:session:{{{id_50}}}"))?;
    let cookie_unknown = cx.keys.sign(&portcullis::crypto::random_id());
    let cookie_forged = {
        let mut chars: Vec<char> = logins.cookie_redis.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let extra = ExtraSessions {
        cookie_1,
        cookie_50,
        cookie_unknown,
        cookie_forged,
        session_1_bytes,
        session_50_bytes,
    };
    // alice's, grp01's and grp50's.
    let sessions_in_redis = 3;
    let used_before_fill = used_memory(admin)?;
    let mut filler = Filler {
        store,
        sealed,
        sessions_in_redis,
        used_before_fill,
        records: Vec::new(),
    };
    filler.fill_to(cx, cx.options.levels[0], admin)?;
    Ok((extra, filler))
}

impl Filler {
    /// Adds filler sessions until Redis holds `target` (nothing if it holds that many already).
    pub fn fill_to(
        &mut self,
        cx: &Context,
        target: u64,
        admin: &mut redis::Connection,
    ) -> anyhow::Result<()> {
        if target <= self.sessions_in_redis {
            return Ok(());
        }
        let count = target - self.sessions_in_redis;
        let timeout = Duration::from_secs(60 + count / 2_000);
        print!("filling Redis to {target} sessions (put_session x {count}) ... ");
        let took = cx.rt.block_on(sessions::fill(
            &self.store,
            self.sessions_in_redis,
            count,
            &self.sealed,
            512,
            timeout,
        ))?;
        self.sessions_in_redis = target;
        let keys_in_db: u64 = redis::cmd("DBSIZE").query(admin)?;
        let used = used_memory(admin)?;
        println!(
            "{:.1} s, {keys_in_db} keys, Redis used_memory {:.0} MB",
            took.as_secs_f64(),
            used as f64 / 1e6
        );
        self.records.push(FillRecord {
            sessions: target,
            seconds: took.as_secs_f64(),
            keys: keys_in_db,
            used_memory_bytes: used,
            used_memory_per_session_bytes: (used.saturating_sub(self.used_before_fill)) as f64
                / (target - 3) as f64,
        });
        Ok(())
    }
}
