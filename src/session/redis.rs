//! Redis store: sessions shared by replicas, kept across restarts, revocable at once.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::store::Space;
use super::StoreError;

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

fn key(space: Space, id: &str) -> String {
    [space.prefix(), id].concat()
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

    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.connection().await?;
        tokio::time::timeout(RESPONSE_TIMEOUT, cmd.query_async(&mut conn))
            .await
            .map_err(|_| unavailable("Redis did not answer in time"))?
            .map_err(unavailable)
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

    pub async fn add_to_set(
        &self,
        space: Space,
        set: &str,
        member: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = key(space, set);
        let seconds = ttl.as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SADD")
            .arg(&key)
            .arg(member)
            .ignore()
            // GT: the index lives as long as its longest-lived session.
            .cmd("EXPIRE")
            .arg(&key)
            .arg(seconds)
            .arg("GT")
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(seconds)
            .arg("NX")
            .ignore();
        let mut conn = self.connection().await?;
        tokio::time::timeout(RESPONSE_TIMEOUT, pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| unavailable("Redis did not answer in time"))?
            .map_err(unavailable)
    }

    pub async fn set_members(&self, space: Space, set: &str) -> Result<Vec<String>, StoreError> {
        self.run(redis::cmd("SMEMBERS").arg(key(space, set))).await
    }
}
