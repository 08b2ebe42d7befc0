//! A real sign-in on each portcullis (the tests' scripted browser, against the tests' IdP), and
//! what the session it made costs in Redis.

use anyhow::anyhow;
use portcullis_testkit::browser::describe;
use portcullis_testkit::env::COOKIE_NAME;
use portcullis_testkit::idp::PASSWORD;
use portcullis_testkit::Browser;

use crate::caught::caught;
use crate::redis_admin::memory_usage;

use super::setup::Servers;
use super::Context;

/// The account every scenario signs in as.
pub const USER: &str = "alice";

pub struct Logins {
    /// alice's session cookie on portcullis-redis and on portcullis-memory.
    pub cookie_redis: String,
    pub cookie_memory: String,
    /// The Redis key of alice's session (floor B reads it).
    pub session_key: String,
    pub facts: LoginFacts,
}

/// What a login stores in Redis, in bytes.
pub struct LoginFacts {
    /// STRLEN of the session value.
    pub session_len: u64,
    pub session_bytes: u64,
    /// Sealed tokens are stored only when a later request needs them (IdP logout): maybe none.
    pub tokens_bytes: Option<u64>,
    pub sealed_len: u64,
    pub user_index_bytes: u64,
}

pub fn run(
    cx: &Context,
    servers: &Servers,
    admin: &mut redis::Connection,
) -> anyhow::Result<Logins> {
    let sign_in_at = |port: u16| {
        let base = format!("http://127.0.0.1:{port}");
        sign_in(cx, &base, &format!("/oauth2/start?rd={base}/"), COOKIE_NAME)
    };
    let cookie_redis = sign_in_at(servers.pc_redis_port)?;
    let cookie_memory = sign_in_at(servers.pc_memory_port)?;
    let alice_id = cx
        .keys
        .verify(&cookie_redis)
        .map_err(|e| anyhow!("the login's cookie does not verify with COOKIE_SECRET: {e}"))?
        .to_string();
    println!("signed in as {USER} on both instances");
    let session_key = format!("portcullis:session:{{{alice_id}}}");
    let tokens_key = format!("portcullis:tokens:{{{alice_id}}}");
    let session_bytes = memory_usage(admin, &session_key)?;
    let tokens_bytes = memory_usage(admin, &tokens_key).ok();
    let session_len: u64 = redis::cmd("STRLEN").arg(&session_key).query(admin)?;
    let sealed_len: u64 = redis::cmd("STRLEN").arg(&tokens_key).query(admin)?;
    let user_index_bytes = memory_usage(admin, &format!("portcullis:user:{USER}"))?;
    Ok(Logins {
        cookie_redis,
        cookie_memory,
        session_key,
        facts: LoginFacts {
            session_len,
            session_bytes,
            tokens_bytes,
            sealed_len,
            user_index_bytes,
        },
    })
}

/// Signs alice in at `base` (portcullis, or the peer): GET `path` -> IdP -> login form -> back
/// through the relying party's callback; returns the cookie `cookie_name` that it set.
pub fn sign_in(cx: &Context, base: &str, path: &str, cookie_name: &str) -> anyhow::Result<String> {
    let (cookie, hops) = caught(&format!("signing in as {USER} through {base}"), || {
        cx.rt.block_on(async {
            let browser = Browser::new();
            let hops = browser.sign_in_trace(base, path, USER, PASSWORD).await;
            (browser.cookie(base, cookie_name), hops)
        })
    })?;
    cookie.ok_or_else(|| {
        anyhow!(
            "signing in as {USER} through {base} did not end with a {cookie_name} cookie:\n{}",
            describe(&hops)
        )
    })
}
