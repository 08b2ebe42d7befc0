//! Telling every replica that sessions ended or changed: a Redis pub/sub channel carries their
//! ids, and each replica's listener evicts them from its cache.
//!
//! The listener holds its own connection and pings it every second; when the connection
//! drops or stops answering, the cache is emptied and bypassed until the listener has
//! subscribed again. A lost connection therefore costs cache hits, never correctness.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use super::cache::SessionCache;
use super::redis::{ListenAt, SharedConnector};

/// At most this many ids per message (a sign-out of everyone sends many).
const IDS_PER_MESSAGE: usize = 500;
/// How often the listener checks that its connection still answers.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// The pause between attempts to subscribe grows to this.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The channel, named after the cookie: deployments that share one Redis under different
/// cookie names do not evict each other's entries.
pub fn channel(cookie_name: &str) -> String {
    format!("portcullis:invalidate:{cookie_name}")
}

/// The messages that announce `ids`: space-separated, in bounded batches.
pub fn messages<S: AsRef<str>>(ids: &[S]) -> Vec<String> {
    ids.chunks(IDS_PER_MESSAGE)
        .map(|chunk| {
            chunk
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The session ids in a message; anything that is not an id is ignored (the channel is not
/// authenticated beyond Redis itself, and a stray word evicts nothing real anyway).
pub fn ids_in(message: &str) -> impl Iterator<Item = &str> {
    message.split(' ').filter(|id| {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// Runs for the life of the process: subscribe, evict what is announced, and on any trouble
/// stop answering from the cache until subscribed again.
pub async fn listen(
    connector: SharedConnector,
    cache: Arc<SessionCache>,
    channel: String,
    timeout: Duration,
) {
    let mut pause = Duration::from_millis(100);
    let mut failures: u32 = 0;
    let mut next_seed = 0usize;
    loop {
        match subscribe(&connector, &channel, timeout, &mut next_seed).await {
            Ok(pubsub) => {
                let cleared = cache.start_listening();
                record_listening(true, cleared);
                if failures > 0 {
                    tracing::info!("session cache: invalidations heard again; cache in use");
                }
                failures = 0;
                pause = Duration::from_millis(100);
                let why = follow(pubsub, &cache, timeout).await;
                let cleared = cache.stop_listening();
                record_listening(false, cleared);
                tracing::warn!(
                    reason = %why,
                    "session cache: invalidation channel lost; cache emptied and bypassed until \
                     it is back"
                );
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                // The first failure is worth a warning; a Redis that stays away is already
                // reported by every request that needs it.
                if failures == 1 {
                    tracing::warn!(error = %err, "session cache: cannot subscribe; cache bypassed");
                } else {
                    tracing::debug!(error = %err, "session cache: cannot subscribe yet");
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
}

fn record_listening(listening: bool, cleared: u64) {
    metrics::gauge!("portcullis_session_cache_subscribed").set(if listening { 1.0 } else { 0.0 });
    if cleared > 0 {
        metrics::counter!("portcullis_session_cache_evictions_total", "reason" => "cleared")
            .increment(cleared);
    }
}

/// A subscribed connection, from wherever the topology can be heard.
async fn subscribe(
    connector: &SharedConnector,
    channel: &str,
    timeout: Duration,
    next_seed: &mut usize,
) -> Result<redis::aio::PubSub, String> {
    let client = match connector.listen_at() {
        ListenAt::Client(client) => *client,
        ListenAt::Master => tokio::time::timeout(timeout * 4, connector.master_client())
            .await
            .map_err(|_| "the sentinels did not answer in time".to_string())?
            .map_err(|err| err.to_string())?,
        ListenAt::AnyOf(seeds) => {
            let Some(client) = seeds.get(*next_seed % seeds.len().max(1)).cloned() else {
                return Err("no seed node to listen at".to_string());
            };
            // The next attempt tries the next seed: this one may be the node that failed.
            *next_seed = next_seed.wrapping_add(1);
            client
        }
    };
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    tokio::time::timeout(timeout * 4, attempt)
        .await
        .map_err(|_| "subscribing timed out".to_string())?
        .map_err(|err| err.to_string())
}

/// Evicts what the channel announces until the connection ends or stops answering pings;
/// returns why it stopped.
async fn follow(pubsub: redis::aio::PubSub, cache: &SessionCache, timeout: Duration) -> String {
    let (mut sink, mut stream) = pubsub.split();
    let mut ticks = tokio::time::interval(PING_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else {
                    return "connection closed".to_string();
                };
                let Ok(text) = std::str::from_utf8(message.get_payload_bytes()) else {
                    continue;
                };
                let evicted = cache.evict(ids_in(text));
                if evicted > 0 {
                    metrics::counter!(
                        "portcullis_session_cache_evictions_total",
                        "reason" => "invalidated"
                    )
                    .increment(evicted);
                }
            }
            _ = ticks.tick() => {
                metrics::gauge!("portcullis_session_cache_entries").set(cache.entry_count() as f64);
                let ping = tokio::time::timeout(timeout.max(Duration::from_millis(500)), sink.ping::<redis::Value>());
                match ping.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => return format!("ping failed: {err}"),
                    Err(_) => return "ping not answered in time".to_string(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_in_bounded_batches() {
        let ids: Vec<String> = (0..1_201).map(|i| format!("id{i}")).collect();
        let sent = messages(&ids);
        assert_eq!(sent.len(), 3);
        let back: Vec<&str> = sent.iter().flat_map(|m| ids_in(m)).collect();
        assert_eq!(back, ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(messages::<&str>(&[]).is_empty());
    }

    #[test]
    fn only_ids_are_read_from_a_message() {
        let got: Vec<&str> = ids_in("abc_-9  x*y {z} ok").collect();
        assert_eq!(got, ["abc_-9", "ok"]);
        let long = "a".repeat(129);
        assert_eq!(ids_in(&long).count(), 0);
    }

    #[test]
    fn the_channel_is_named_after_the_cookie() {
        assert_eq!(channel("_portcullis"), "portcullis:invalidate:_portcullis");
    }
}
