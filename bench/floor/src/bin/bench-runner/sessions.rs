//! Sessions made through portcullis' own store code (`Store::put_session`), never by hand.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use portcullis::session::{Session, Store};

/// Session lifetime used for every session the bench makes (portcullis' default).
pub const TTL: Duration = Duration::from_secs(12 * 3600);

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `n` group names of a realistic length ("group-07-engineering").
pub fn groups(n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("group-{i:02}-engineering"))
        .collect()
}

/// A session like the ones a login makes: user, email, preferred username, groups, the IdP's
/// subject and session id, and the browser that signed in.
pub fn session(user: &str, groups: Vec<String>) -> Session {
    let now = unix_now();
    Session {
        user: user.to_string(),
        email: Some(format!("{user}@example.com")),
        email_verified: true,
        preferred_username: Some(user.to_string()),
        groups,
        created_at: now,
        expires_at: now + TTL.as_secs(),
        subject: format!("{user}-0123456789abcdef"),
        idp_session: Some(format!("{user}-idp-session-0123456789")),
        claims_read_at: now,
        user_agent: Some(
            "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0".to_string(),
        ),
        address: Some("192.0.2.10".to_string()),
        refreshable_until: u64::MAX,
        provider: None,
    }
}

/// Sealed tokens of the same length as a real login's, encrypted with portcullis' own code.
pub fn sealed_tokens(keys: &portcullis::crypto::Keys, sealed_len: usize) -> anyhow::Result<String> {
    if sealed_len == 0 {
        return Ok(String::new());
    }
    // base64url(24-byte nonce + plaintext + 16-byte tag) has sealed_len characters.
    let plaintext_len = (sealed_len * 3 / 4).saturating_sub(40);
    let plaintext = "t".repeat(plaintext_len);
    keys.encrypt(plaintext.as_bytes())
        .map_err(|e| anyhow!("encrypting filler tokens: {e}"))
}

/// Puts `count` filler sessions (numbered from `first`) with `concurrency` concurrent
/// `put_session` calls in flight, each with its own fresh random id and a copy of `sealed`
/// (none when empty). Four sessions per user, so the per-user index sets stay realistic.
pub async fn fill(
    store: &Store,
    first: u64,
    count: u64,
    sealed: &str,
    concurrency: u64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..concurrency.min(count.max(1)) {
        let store = store.clone();
        let sealed = (!sealed.is_empty()).then(|| sealed.to_string());
        tasks.spawn(async move {
            let mut i = first + lane;
            while i < first + count {
                let user = format!("user{:07}", i / 4);
                let id = portcullis::crypto::random_id();
                store
                    .put_session(&id, &session(&user, groups(2)), sealed.clone(), TTL)
                    .await
                    .map_err(|e| anyhow!("put_session #{i}: {e}"))?;
                i += concurrency;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.context("filler task panicked")??;
        }
        Ok::<(), anyhow::Error>(())
    };
    tokio::time::timeout(timeout, all)
        .await
        .map_err(|_| anyhow!("filling {count} sessions took longer than {timeout:?}"))??;
    Ok(started.elapsed())
}
