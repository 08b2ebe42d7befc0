//! Connections to the three Redis topologies, behind one type the commands are sent on.
//!
//! - One server: a `ConnectionManager` (one multiplexed connection that reconnects itself).
//! - Sentinel: the same, to the master the sentinels name; when it fails in a way a failover
//!   explains (gone, refusing, demoted to a read-only replica), it is forgotten and the next
//!   request asks the sentinels again.
//! - Cluster: the cluster client, which follows `MOVED`/`ASK` and learns the new topology
//!   after a failover by itself.
//!
//! Every connection is made on first use, so portcullis starts (and says it is not ready)
//! while Redis is still coming up.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    ClientTlsConfig, Cmd, ConnectionAddr, IntoConnectionInfo, Pipeline, RedisFuture,
    ServerErrorKind, TlsCertificates, TlsMode, Value,
};
use tokio::sync::{Mutex, OnceCell, RwLock};

use crate::config::{NodeAddress, RedisSettings, RedisTls, RedisTopology};
use crate::session::error::StoreError;

fn unavailable(err: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(err.to_string())
}

/// A connection of any topology; cheap to clone (each is a handle to a shared connection).
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(conn) => conn.req_packed_command(cmd),
            Conn::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(conn) => conn.get_db(),
            Conn::Cluster(conn) => conn.get_db(),
        }
    }
}

/// Makes (and, for Sentinel, remakes) the connection of one topology.
pub enum Connector {
    Single {
        client: redis::Client,
        manager: OnceCell<ConnectionManager>,
    },
    Sentinel {
        sentinel: Mutex<SentinelClient>,
        /// The master's connection while it is believed to be the master.
        manager: RwLock<Option<ConnectionManager>>,
    },
    Cluster {
        client: redis::cluster::ClusterClient,
        connection: OnceCell<ClusterConnection>,
        /// Plain clients of the seed nodes, for pub/sub (broadcast to every node).
        seeds: Vec<redis::Client>,
    },
}

/// Where a subscriber can listen for invalidations: classic pub/sub messages reach every
/// node of a cluster and every replica of a master, so any one of these will do.
pub enum ListenAt {
    Client(Box<redis::Client>),
    /// Ask the sentinels for the master each time.
    Master,
    /// Try the seeds in turn.
    AnyOf(Vec<redis::Client>),
}

fn node_addr(node: &NodeAddress) -> ConnectionAddr {
    if node.tls {
        ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(node.host.clone(), node.port)
    }
}

fn manager_config(timeout: Duration) -> ConnectionManagerConfig {
    // One retry at most: the request that waits has `timeout` in all, not per attempt.
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(10))
        .set_max_delay(Duration::from_millis(500))
}

/// The failures a lost connection or a failover explains: worth a fresh connection (and for
/// Sentinel, a fresh look at who the master is).
pub fn is_lost_connection(err: &redis::RedisError) -> bool {
    err.is_connection_dropped()
        || err.is_io_error()
        || err.is_connection_refusal()
        || err.is_timeout()
        || matches!(
            err.kind(),
            redis::ErrorKind::Server(ServerErrorKind::ReadOnly)
                | redis::ErrorKind::Server(ServerErrorKind::MasterDown)
                | redis::ErrorKind::Server(ServerErrorKind::TryAgain)
                | redis::ErrorKind::Server(ServerErrorKind::ClusterDown)
        )
}

impl Connector {
    /// A connector for the configured topology (no connection is made yet). Error texts never
    /// include a URL: it may carry a password.
    pub fn new(settings: &RedisSettings) -> Result<Connector, StoreError> {
        let username = settings.username.as_deref();
        let password = settings.password.as_ref().map(|p| p.expose());
        match &settings.topology {
            RedisTopology::Standalone(url) => {
                let info = url.expose().into_connection_info().map_err(|_| {
                    StoreError::Unavailable("REDIS_URL could not be parsed".to_string())
                })?;
                let mut redis_settings = info.redis_settings().clone();
                if let Some(username) = username {
                    redis_settings = redis_settings.set_username(username);
                }
                if let Some(password) = password {
                    redis_settings = redis_settings.set_password(password);
                }
                let info = info.set_redis_settings(redis_settings);
                let client = match certificates(&settings.tls) {
                    Some(certs) => redis::Client::build_with_tls(info, certs),
                    None => redis::Client::open(info),
                }
                .map_err(|_| StoreError::Unavailable("REDIS_URL could not be used".to_string()))?;
                Ok(Connector::Single {
                    client,
                    manager: OnceCell::new(),
                })
            }
            RedisTopology::Sentinel {
                sentinels,
                master,
                password: sentinel_password,
            } => {
                let tls = sentinels.iter().any(|n| n.tls);
                let mut builder = SentinelClientBuilder::new(
                    sentinels.iter().map(node_addr),
                    master,
                    SentinelServerType::Master,
                )
                .map_err(unavailable)?;
                if tls {
                    builder = builder
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure)
                        .set_client_to_redis_tls_mode(TlsMode::Secure);
                    if let Some(certs) = certificates(&settings.tls) {
                        builder = builder
                            .set_client_to_sentinel_certificates(certs.clone())
                            .set_client_to_redis_certificates(certs);
                    }
                }
                if let Some(username) = username {
                    builder = builder.set_client_to_redis_username(username);
                }
                if let Some(password) = password {
                    builder = builder.set_client_to_redis_password(password);
                }
                if let Some(password) = sentinel_password {
                    builder = builder.set_client_to_sentinel_password(password.expose());
                }
                let sentinel = builder.build().map_err(|_| {
                    StoreError::Unavailable("REDIS_SENTINEL_URLS could not be used".to_string())
                })?;
                Ok(Connector::Sentinel {
                    sentinel: Mutex::new(sentinel),
                    manager: RwLock::new(None),
                })
            }
            RedisTopology::Cluster { seeds } => {
                let tls = seeds.iter().any(|n| n.tls);
                let mut builder = ClusterClientBuilder::new(seeds.iter().map(node_addr))
                    .connection_timeout(settings.timeout)
                    .response_timeout(settings.timeout)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(200);
                if tls {
                    builder = builder.tls(TlsMode::Secure);
                    if let Some(certs) = certificates(&settings.tls) {
                        builder = builder.certs(certs);
                    }
                }
                if let Some(username) = username {
                    builder = builder.username(username);
                }
                if let Some(password) = password {
                    builder = builder.password(password);
                }
                let client = builder.build().map_err(|_| {
                    StoreError::Unavailable("REDIS_CLUSTER_URLS could not be used".to_string())
                })?;
                let seeds = seeds
                    .iter()
                    .filter_map(|node| plain_client(node, username, password, &settings.tls))
                    .collect();
                Ok(Connector::Cluster {
                    client,
                    connection: OnceCell::new(),
                    seeds,
                })
            }
        }
    }

    pub fn is_cluster(&self) -> bool {
        matches!(self, Connector::Cluster { .. })
    }

    /// The connection to send on, made if there is none yet.
    pub async fn connection(&self, timeout: Duration) -> Result<Conn, StoreError> {
        match self {
            Connector::Single { client, manager } => {
                let manager = manager
                    .get_or_try_init(|| async {
                        ConnectionManager::new_with_config(client.clone(), manager_config(timeout))
                            .await
                            .map_err(unavailable)
                    })
                    .await?;
                Ok(Conn::Single(manager.clone()))
            }
            Connector::Sentinel { sentinel, manager } => {
                if let Some(manager) = manager.read().await.as_ref() {
                    return Ok(Conn::Single(manager.clone()));
                }
                let mut slot = manager.write().await;
                // Another request may have connected while this one waited.
                if let Some(manager) = slot.as_ref() {
                    return Ok(Conn::Single(manager.clone()));
                }
                let client = sentinel
                    .lock()
                    .await
                    .async_get_client()
                    .await
                    .map_err(|err| unavailable(format!("no master from the sentinels: {err}")))?;
                let connected = ConnectionManager::new_with_config(client, manager_config(timeout))
                    .await
                    .map_err(unavailable)?;
                *slot = Some(connected.clone());
                Ok(Conn::Single(connected))
            }
            Connector::Cluster {
                client, connection, ..
            } => {
                let connection = connection
                    .get_or_try_init(|| async {
                        client.get_async_connection().await.map_err(unavailable)
                    })
                    .await?;
                Ok(Conn::Cluster(connection.clone()))
            }
        }
    }

    /// After a failure a failover explains: with Sentinel, ask the sentinels again next time.
    /// (One server's manager and the cluster client reconnect by themselves.)
    pub async fn forget(&self) {
        if let Connector::Sentinel { manager, .. } = self {
            *manager.write().await = None;
        }
    }

    /// Where invalidations can be heard.
    pub fn listen_at(&self) -> ListenAt {
        match self {
            Connector::Single { client, .. } => ListenAt::Client(Box::new(client.clone())),
            Connector::Sentinel { .. } => ListenAt::Master,
            Connector::Cluster { seeds, .. } => ListenAt::AnyOf(seeds.clone()),
        }
    }

    /// A client for the current master (Sentinel only).
    pub async fn master_client(&self) -> Result<redis::Client, StoreError> {
        match self {
            Connector::Sentinel { sentinel, .. } => sentinel
                .lock()
                .await
                .async_get_client()
                .await
                .map_err(|err| unavailable(format!("no master from the sentinels: {err}"))),
            Connector::Single { client, .. } => Ok(client.clone()),
            Connector::Cluster { .. } => Err(unavailable("a cluster has no one master")),
        }
    }
}

/// The certificates of `REDIS_CA_FILE` and the client certificate, when any is set.
fn certificates(tls: &RedisTls) -> Option<TlsCertificates> {
    tls.is_set().then(|| TlsCertificates {
        client_tls: tls.client.as_ref().map(|client| ClientTlsConfig {
            client_cert: client.certificate.as_bytes().to_vec(),
            client_key: client.key.expose().as_bytes().to_vec(),
        }),
        root_cert: tls.ca.as_ref().map(|ca| ca.as_bytes().to_vec()),
    })
}

/// A client of one node with the data nodes' credentials (and certificates, over TLS).
fn plain_client(
    node: &NodeAddress,
    username: Option<&str>,
    password: Option<&str>,
    tls: &RedisTls,
) -> Option<redis::Client> {
    let info = node_addr(node).into_connection_info().ok()?;
    let mut settings = info.redis_settings().clone();
    if let Some(username) = username {
        settings = settings.set_username(username);
    }
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    let info = info.set_redis_settings(settings);
    match certificates(tls).filter(|_| node.tls) {
        Some(certs) => redis::Client::build_with_tls(info, certs).ok(),
        None => redis::Client::open(info).ok(),
    }
}

/// Shared by the store's clones.
pub type SharedConnector = Arc<Connector>;
