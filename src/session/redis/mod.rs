//! Redis store: sessions shared by replicas, kept across restarts, revocable at once; one
//! server, Sentinel or Cluster (see `connect`).
//!
//! Built for Cluster: no command or transaction touches keys of two slots. A session's own
//! keys share its id as hash tag (see [`Space::key`]), so reading a session with its
//! last-seen mark is one `MGET` and writing it with its tokens one `MULTI`; on a Cluster the
//! indexes (one set per user, IdP subject and IdP session) are written each on its own, on one
//! server in the same transaction. Commands for many sessions go out concurrently on the
//! multiplexed connection, which pipelines them without crossing slots.

mod connect;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};

use connect::{is_lost_connection, Conn, Connector};
pub use connect::{ListenAt, SharedConnector};

use super::error::StoreError;
use super::keys::Space;
use crate::config::RedisSettings;

#[derive(Clone)]
pub struct RedisStore {
    connector: SharedConnector,
    /// No request waits longer than this for Redis, reconnects included (`REDIS_TIMEOUT`).
    timeout: Duration,
}

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// The three index names of a session: its user, IdP subject and IdP session (if any).
pub type IndexNames<'a> = (&'a str, &'a str, Option<&'a str>);

/// Adds `id` to the index set `space:name`, which lives as long as its longest-lived member.
fn index_add(pipe: &mut redis::Pipeline, space: Space, name: &str, id: &str, seconds: u64) {
    let index = space.key(name);
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

/// The index writes of a session, one transaction per index key.
fn index_writes(names: IndexNames<'_>, id: &str, seconds: u64) -> Vec<redis::Pipeline> {
    let (user, subject, idp_session) = names;
    let mut indexes = vec![(Space::User, user), (Space::Subject, subject)];
    if let Some(idp_session) = idp_session {
        indexes.push((Space::IdpSession, idp_session));
    }
    indexes
        .into_iter()
        .map(|(space, name)| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            index_add(&mut pipe, space, name, id, seconds);
            pipe
        })
        .collect()
}

/// One slot served by each primary in a `CLUSTER NODES` answer (the first of its ranges),
/// skipping failed nodes and primaries without slots. Routing by slot, rather than by address,
/// lets the cluster client resolve the node from its own slot map.
pub fn primary_slots(nodes: &str) -> Vec<u16> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags: Vec<&str> = fields.get(2)?.split(',').collect();
            if !flags.contains(&"master") || flags.iter().any(|f| f.starts_with("fail")) {
                return None;
            }
            // Slots follow the 8 fixed fields: `0-5460`, `5461`, or `[...]` for migrations.
            fields.iter().skip(8).find_map(|range| {
                let first = range.split('-').next()?;
                first.parse::<u16>().ok()
            })
        })
        .collect()
}

impl RedisStore {
    /// One server at `url`, for tools and tests (the benchmark fills Redis with a million
    /// sessions through it): a timeout of 2 s, since nobody waits behind them.
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        Self::from_settings(&RedisSettings {
            topology: crate::config::RedisTopology::Standalone(crate::secret::Secret::new(url)),
            username: None,
            password: None,
            timeout: Duration::from_secs(2),
            tls: Default::default(),
        })
    }

    pub fn from_settings(settings: &RedisSettings) -> Result<RedisStore, StoreError> {
        Ok(RedisStore {
            connector: Arc::new(Connector::new(settings)?),
            timeout: settings.timeout,
        })
    }

    pub fn connector(&self) -> SharedConnector {
        self.connector.clone()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn topology(&self) -> &'static str {
        match &*self.connector {
            Connector::Single { .. } => "redis",
            Connector::Sentinel { .. } => "redis-sentinel",
            Connector::Cluster { .. } => "redis-cluster",
        }
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.bounded(operation, |mut conn| async move {
            cmd.query_async(&mut conn).await
        })
        .await
    }

    async fn run_pipeline<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T, StoreError> {
        self.bounded(operation, |mut conn| async move {
            pipe.query_async(&mut conn).await
        })
        .await
    }

    /// Sends once, and once more on a fresh connection when the first connection turned out
    /// lost (Redis restarted, a failover): the answer is then about the data, not a leftover
    /// 503. All of it within [`RedisStore::timeout`].
    async fn bounded<T, F, Fut>(&self, operation: &'static str, send: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let started = Instant::now();
        let attempt = async {
            let conn = self.connector.connection(self.timeout).await?;
            match send(conn).await {
                Err(err) if is_lost_connection(&err) => {
                    self.connector.forget().await;
                    let conn = self.connector.connection(self.timeout).await?;
                    send(conn).await.map_err(unavailable)
                }
                other => other.map_err(unavailable),
            }
        };
        let result = tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(unavailable("Redis did not answer in time")));
        metrics::counter!("portcullis_store_operations_total", "operation" => operation)
            .increment(1);
        metrics::histogram!("portcullis_store_duration_seconds", "operation" => operation)
            .record(started.elapsed().as_secs_f64());
        if result.is_err() {
            metrics::counter!("portcullis_store_errors_total", "operation" => operation)
                .increment(1);
        }
        result
    }

    pub async fn get(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("get", redis::cmd("GET").arg(space.key(id))).await
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
            "set",
            redis::cmd("SET")
                .arg(space.key(id))
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
                "set",
                redis::cmd("SET")
                    .arg(space.key(id))
                    .arg(value)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis),
            )
            .await?;
        Ok(answer.is_some())
    }

    pub async fn take(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run("take", redis::cmd("GETDEL").arg(space.key(id)))
            .await
    }

    /// Deletes one entry; true when it existed.
    pub async fn delete(&self, space: Space, id: &str) -> Result<bool, StoreError> {
        let deleted: usize = self
            .run("delete", redis::cmd("DEL").arg(space.key(id)))
            .await?;
        Ok(deleted > 0)
    }

    /// Writes a session (`write`, a transaction on its slot) with its place in its indexes.
    /// On one server, all of it is one transaction, one round trip. On a Cluster the indexes
    /// are other slots: each is written on its own, first, since an index entry without a
    /// session is skipped by every reader, while a session missing from an index would
    /// escape revocation by it. Returns the transaction's answer.
    async fn write_indexed<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        mut write: redis::Pipeline,
        names: IndexNames<'_>,
        id: &str,
        seconds: u64,
    ) -> Result<T, StoreError> {
        if self.connector.is_cluster() {
            let indexes = index_writes(names, id, seconds);
            try_join_all(
                indexes
                    .iter()
                    .map(|pipe| self.run_pipeline::<()>("index", pipe)),
            )
            .await?;
        } else {
            let (user, subject, idp_session) = names;
            index_add(&mut write, Space::User, user, id, seconds);
            index_add(&mut write, Space::Subject, subject, id, seconds);
            if let Some(idp_session) = idp_session {
                index_add(&mut write, Space::IdpSession, idp_session, id, seconds);
            }
        }
        self.run_pipeline(operation, &write).await
    }

    /// A session and its sealed tokens, in one transaction on the session's slot, with its
    /// place in the indexes (see [`RedisStore::write_indexed`]).
    pub async fn put_session(
        &self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        names: IndexNames<'_>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(Space::Session.key(id))
            .arg(session)
            .arg("PX")
            .arg(millis)
            .ignore();
        if let Some(tokens) = tokens {
            pipe.cmd("SET")
                .arg(Space::Tokens.key(id))
                .arg(tokens)
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        self.write_indexed::<()>("put_session", pipe, names, id, ttl.as_secs().max(1))
            .await
    }

    /// Replaces a session and its sealed tokens only while the session exists (`SET XX`), in
    /// one transaction: a revalidation never brings back a session ended meanwhile. True when
    /// it was replaced. The claims may name the user anew (a username claim that changed), so
    /// the indexes are written too: revocation by the new name must find the session.
    pub async fn replace_session(
        &self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        names: IndexNames<'_>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let millis = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(Space::Session.key(id))
            .arg(session)
            .arg("XX")
            .arg("PX")
            .arg(millis);
        if let Some(tokens) = tokens {
            pipe.cmd("SET")
                .arg(Space::Tokens.key(id))
                .arg(tokens)
                .arg("XX")
                .arg("PX")
                .arg(millis)
                .ignore();
        }
        let (replaced,): (Option<String>,) = self
            .write_indexed("replace_session", pipe, names, id, ttl.as_secs().max(1))
            .await?;
        Ok(replaced.is_some())
    }

    /// The session and its last-seen mark, in one `MGET` (one slot: the same hash tag).
    pub async fn get_session_seen(
        &self,
        id: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), StoreError> {
        let (session, seen) = self
            .run(
                "get_session",
                redis::cmd("MGET")
                    .arg(Space::Session.key(id))
                    .arg(Space::Seen.key(id)),
            )
            .await?;
        Ok((session, seen))
    }

    /// Ends sessions: each with its tokens, last-seen mark and refresh lock, in one
    /// transaction on its slot. Returns how many sessions existed.
    pub async fn end_sessions(&self, ids: &[String]) -> Result<usize, StoreError> {
        let ends: Vec<redis::Pipeline> = ids
            .iter()
            .map(|id| {
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("DEL")
                    .arg(Space::Session.key(id))
                    .cmd("DEL")
                    .arg(Space::Tokens.key(id))
                    .arg(Space::Seen.key(id))
                    .arg(Space::RefreshLock.key(id))
                    .ignore();
                pipe
            })
            .collect();
        let ended: Vec<(usize,)> = try_join_all(
            ends.iter()
                .map(|pipe| self.run_pipeline("end_session", pipe)),
        )
        .await?;
        Ok(ended.iter().filter(|(n,)| *n > 0).count())
    }

    /// Announces on `channel` that these sessions ended or changed.
    pub async fn publish(&self, channel: &str, message: String) -> Result<(), StoreError> {
        self.run::<i64>("publish", redis::cmd("PUBLISH").arg(channel).arg(message))
            .await
            .map(|_| ())
    }

    /// The members of one index set (some may have ended since).
    pub async fn index_members(&self, space: Space, name: &str) -> Result<Vec<String>, StoreError> {
        self.run("index_members", redis::cmd("SMEMBERS").arg(space.key(name)))
            .await
    }

    /// Every session id, by SCAN on every primary (an operator's command, never on the
    /// request path; each SCAN round is bounded by the timeout on its own).
    pub async fn all_session_ids(&self) -> Result<Vec<String>, StoreError> {
        let pattern = format!("{}*", Space::Session.prefix());
        let mut ids = Vec::new();
        let slots: Vec<Option<u16>> = if self.connector.is_cluster() {
            let nodes: String = self
                .bounded("scan", |conn| async move {
                    let Conn::Cluster(mut conn) = conn else {
                        return Err(redis::RedisError::from((
                            redis::ErrorKind::Client,
                            "not a cluster",
                        )));
                    };
                    let answer = conn
                        .route_command(
                            redis::cmd("CLUSTER").arg("NODES").to_owned(),
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
                        )
                        .await?;
                    Ok(redis::from_redis_value(answer)?)
                })
                .await?;
            primary_slots(&nodes).into_iter().map(Some).collect()
        } else {
            vec![None]
        };
        for slot in slots {
            let mut cursor: u64 = 0;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let (next, keys): (u64, Vec<String>) = match slot {
                    None => self.run("scan", &scan).await?,
                    Some(slot) => {
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
                            Route::new(slot, SlotAddr::Master),
                        ));
                        self.bounded("scan", |conn| {
                            let (scan, route) = (scan.clone(), route.clone());
                            async move {
                                let Conn::Cluster(mut conn) = conn else {
                                    return Err(redis::RedisError::from((
                                        redis::ErrorKind::Client,
                                        "not a cluster",
                                    )));
                                };
                                let answer = conn.route_command(scan, route).await?;
                                Ok(redis::from_redis_value(answer)?)
                            }
                        })
                        .await?
                    }
                };
                ids.extend(
                    keys.iter()
                        .filter_map(|k| Space::Session.id_of(k))
                        .map(str::to_owned),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::primary_slots;

    #[test]
    fn primaries_from_cluster_nodes() {
        let nodes = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-a slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master,fail - 0 1426238318243 3 connected 10923-16383
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] 0-5460
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 [::1]:30006@31006 master - 0 1426238316232 6 connected
6ec23923021cf3ffec47632106199cb7f496ce01 :0@0 master,noaddr - 0 0 0 connected";
        assert_eq!(primary_slots(nodes), [5461, 0]);
    }
}
