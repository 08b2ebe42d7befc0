//! Redis store: sessions shared by replicas, kept across restarts, revocable at once.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::error::StoreError;
use super::keys::Space;

/// Bounds every Redis round trip, so that an unreachable Redis turns into a denial within
/// seconds instead of a hanging proxy.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    // Connected on first use, so portcullis starts (and reports not-ready) while Redis is still
    // coming up; the manager reconnects by itself afterwards.
    manager: Arc<OnceCell<ConnectionManager>>,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// Adds `id` to the index set `space:name`, which lives as long as its longest-lived member.
fn add_to_index(pipe: &mut redis::Pipeline, space: Space, name: &str, id: &str, seconds: u64) {
    let index = key(space, name);
    pipe.cmd("SADD")
        .arg(&index)
        .arg(id)
        .ignore()
        .cmd("EXPIRE")
        .arg(&index)
        .arg(seconds)
        .arg("GT")
        .ignore()
        .cmd("EXPIRE")
        .arg(&index)
        .arg(seconds)
        .arg("NX")
        .ignore();
}

/// Adds `id` to the indexes of its user, IdP subject and IdP session (when it has one).
fn add_to_indexes(
    pipe: &mut redis::Pipeline,
    (user, subject, idp_session): (&str, &str, Option<&str>),
    id: &str,
    seconds: u64,
) {
    add_to_index(pipe, Space::User, user, id, seconds);
    add_to_index(pipe, Space::Subject, subject, id, seconds);
    if let Some(idp_session) = idp_session {
        add_to_index(pipe, Space::IdpSession, idp_session, id, seconds);
    }
}

/// The connection broke (Redis restarted, a network blip): worth one more try on a new one.
fn is_lost_connection(err: &redis::RedisError) -> bool {
    err.is_connection_dropped() || err.is_io_error() || err.is_connection_refusal()
}

fn key(space: Space, id: &str) -> String {
    space.key(id)
}

impl RedisStore {
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        // The URL may hold a password: never include it or the parser's echo of it.
        let client = redis::Client::open(url)
            .map_err(|_| StoreError::Unavailable("REDIS_URL could not be parsed".to_string()))?;
        Ok(RedisStore {
            client,
            manager: Arc::new(OnceCell::new()),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let manager = self
            .manager
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                tokio::time::timeout(
                    CONNECT_TIMEOUT * 2,
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .map_err(|_| unavailable("timed out connecting to Redis"))?
                .map_err(unavailable)
            })
            .await?;
        Ok(manager.clone())
    }

    /// One command, bounded by [`RESPONSE_TIMEOUT`] in all. After Redis restarts, the first
    /// command meets the old, dead connection: the manager reconnects, and the command is sent
    /// once more on the new connection, so the answer is about the data, not a leftover 503.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    async fn run_pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.bounded(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    async fn bounded<T, F, Fut>(&self, send: F) -> Result<T, StoreError>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let attempt = async {
            let conn = self.connection().await?;
            match send(conn.clone()).await {
                Err(err) if is_lost_connection(&err) => send(conn).await.map_err(unavailable),
                other => other.map_err(unavailable),
            }
        };
        tokio::time::timeout(RESPONSE_TIMEOUT, attempt)
            .await
            .map_err(|_| unavailable("Redis did not answer in time"))?
    }

    pub async fn get(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(redis::cmd("GET").arg(key(space, id))).await
    }

    pub async fn set(
        &self,
        space: Space,
        id: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        self.run(
            redis::cmd("SET")
                .arg(key(space, id))
                .arg(value)
                .arg("PX")
                .arg(millis),
        )
        .await
    }

    /// `SET key value NX PX ttl`: true when the key was set, false when it already existed.
    pub async fn set_if_absent(
        &self,
        space: Space,
        id: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        let answer: Option<String> = self
            .run(
                redis::cmd("SET")
                    .arg(key(space, id))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis),
            )
            .await?;
        Ok(answer.is_some())
    }

    pub async fn take(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(redis::cmd("GETDEL").arg(key(space, id))).await
    }

    pub async fn delete(&self, keys: &[(Space, &str)]) -> Result<usize, StoreError> {
        if keys.is_empty() {
            return Ok(0);
        }
        let keys: Vec<String> = keys.iter().map(|(space, id)| key(*space, id)).collect();
        self.run(redis::cmd("DEL").arg(keys)).await
    }

    /// A session, its sealed tokens and its place in the indexes of its user, IdP subject and
    /// IdP session, in one round trip.
    pub async fn put_session(
        &self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        (user, subject, idp_session): (&str, &str, Option<&str>),
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        let seconds = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(key(Space::Session, id))
            .arg(session)
            .arg("PX")
            .arg(millis)
            .ignore();
        if let Some(tokens) = tokens {
            pipe.cmd("SET")
                .arg(key(Space::Tokens, id))
                .arg(tokens)
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        add_to_indexes(&mut pipe, (user, subject, idp_session), id, seconds);
        self.run_pipeline::<()>(&pipe).await
    }

    /// Replaces a session and its sealed tokens only while the session exists (`SET XX`), in
    /// one transaction: a revalidation never brings back a session ended meanwhile. True when
    /// it was replaced.
    pub async fn replace_session(
        &self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        (user, subject, idp_session): (&str, &str, Option<&str>),
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        let seconds = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(key(Space::Session, id))
            .arg(session)
            .arg("XX")
            .arg("PX")
            .arg(millis);
        if let Some(tokens) = tokens {
            pipe.cmd("SET")
                .arg(key(Space::Tokens, id))
                .arg(tokens)
                .arg("XX")
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        // The claims may name the user anew (a username claim that changed): revocation by
        // the new name must find the session. An index entry of a session ended meanwhile is
        // harmless: every reader skips ids without a session.
        add_to_indexes(&mut pipe, (user, subject, idp_session), id, seconds);
        let (replaced,): (Option<String>,) = self.run_pipeline(&pipe).await?;
        Ok(replaced.is_some())
    }

    /// The members of one index set (some may have ended since).
    pub async fn index_members(&self, space: Space, name: &str) -> Result<Vec<String>, StoreError> {
        self.run(redis::cmd("SMEMBERS").arg(key(space, name))).await
    }

    /// Every session id, by SCAN (an operator's command, never on the request path).
    pub async fn all_session_ids(&self) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", Space::Session.prefix());
        let mut ids = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = self
                .run(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000),
                )
                .await?;
            ids.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(Space::Session.prefix()))
                    .map(str::to_owned),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Several values in one round trip (`MGET`).
    pub async fn get_many(
        &self,
        keys: &[(Space, &str)],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let keys: Vec<String> = keys.iter().map(|(space, id)| key(*space, id)).collect();
        self.run(redis::cmd("MGET").arg(keys)).await
    }
}
