//! The session store's section: which Redis topology (or none: the in-memory store), how to
//! authenticate to it, how long a request may wait for it, and the local session cache.

use std::time::Duration;

use url::Url;

use super::redis_tls::RedisTls;
use super::variables::{
    DEFAULT_REDIS_TIMEOUT, DEFAULT_SESSION_CACHE_SIZE, DEFAULT_SESSION_CACHE_TTL,
};
use super::Findings;
use crate::secret::Secret;

/// Where sessions live.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `None`: the in-memory store (one instance, lost on restart).
    pub redis: Option<RedisSettings>,
    /// The local cache in front of Redis (unused by the memory store).
    pub cache: CacheSettings,
}

impl StoreSettings {
    /// `REDIS_TIMEOUT` as it applies (its default without Redis).
    pub fn redis_timeout(&self) -> Duration {
        self.redis
            .as_ref()
            .map_or(DEFAULT_REDIS_TIMEOUT, |redis| redis.timeout)
    }
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub topology: RedisTopology,
    /// For the data nodes (`REDIS_USERNAME`); a `REDIS_URL` may carry its own instead.
    pub username: Option<String>,
    /// For the data nodes (`REDIS_PASSWORD`); a `REDIS_URL` may carry its own instead.
    pub password: Option<Secret>,
    /// The longest any request waits for the store (`REDIS_TIMEOUT`).
    pub timeout: Duration,
    /// `REDIS_CA_FILE` and the client certificate, for `rediss://` addresses.
    pub tls: RedisTls,
}

#[derive(Debug, Clone)]
pub enum RedisTopology {
    /// `REDIS_URL`: kept secret, it may hold a password.
    Standalone(Secret),
    /// `REDIS_SENTINEL_URLS` and `REDIS_SENTINEL_MASTER`.
    Sentinel {
        sentinels: Vec<NodeAddress>,
        master: String,
        /// `REDIS_SENTINEL_PASSWORD`, for the sentinels themselves.
        password: Option<Secret>,
    },
    /// `REDIS_CLUSTER_URLS`: seed nodes; the client learns the rest.
    Cluster { seeds: Vec<NodeAddress> },
}

/// One `redis://host:port` (or `rediss://`, TLS) of a sentinel or cluster list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeAddress {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl NodeAddress {
    /// The URL again, without credentials (there are none: they are refused).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}:{}", self.host, self.port)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// How long a checked session may be answered from memory (`Duration::ZERO`: off).
    pub ttl: Duration,
    /// At most this many sessions are kept.
    pub size: u64,
}

impl CacheSettings {
    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero() && self.size > 0
    }
}

/// The longest `REDIS_TIMEOUT`: a proxy waiting longer than this for an answer has given up.
const MAX_REDIS_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `SESSION_CACHE_TTL`: it is also how long a lost invalidation can keep an ended
/// session alive on one replica, so it stays short.
const MAX_SESSION_CACHE_TTL: Duration = Duration::from_secs(300);

/// One entry of a `REDIS_SENTINEL_URLS` or `REDIS_CLUSTER_URLS` list.
pub(super) fn parse_node_address(value: &str) -> Result<NodeAddress, String> {
    let url = Url::parse(value.trim()).map_err(|_| format!("{value:?} is not a URL"))?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        _ => {
            return Err(format!(
                "{value:?}: expected redis://host:port or rediss://host:port"
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{:?} must not carry credentials: use REDIS_USERNAME, REDIS_PASSWORD (and \
             REDIS_SENTINEL_PASSWORD for sentinels)",
            url.host_str().unwrap_or("the URL")
        ));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{value:?} must be only redis://host:port"));
    }
    let host = url
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or_else(|| format!("{value:?} has no host"))?;
    // IPv6 hosts come back bracketed; the client wants them bare.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port().unwrap_or(if tls { 6380 } else { 6379 });
    Ok(NodeAddress { host, port, tls })
}

/// A comma list of node addresses, all with the same scheme, at least one.
pub(super) fn parse_node_list(value: &str) -> Result<Vec<NodeAddress>, String> {
    let mut nodes = Vec::new();
    let mut problems = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match parse_node_address(entry) {
            Ok(node) => nodes.push(node),
            Err(problem) => problems.push(problem),
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if nodes.is_empty() {
        return Err("the list is empty".to_string());
    }
    if nodes.iter().any(|n| n.tls) && nodes.iter().any(|n| !n.tls) {
        return Err("mixes redis:// and rediss://: TLS is all or nothing".to_string());
    }
    Ok(nodes)
}

/// `REDIS_TIMEOUT`: milliseconds count (`500ms`); not zero, not longer than 30 s.
pub(super) fn parse_redis_timeout(value: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(value.trim())
        .map_err(|_| format!("{value:?} is not a duration like 500ms or 2s"))?;
    if timeout < Duration::from_millis(10) {
        return Err(format!("{value:?} is shorter than 10ms"));
    }
    if timeout > MAX_REDIS_TIMEOUT {
        return Err(format!("{value:?} is longer than 30s"));
    }
    Ok(timeout)
}

/// `SESSION_CACHE_TTL`: `0` is off; at most five minutes.
pub(super) fn parse_cache_ttl(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    let ttl = humantime::parse_duration(value)
        .map_err(|_| format!("{value:?} is not a duration like 10s (or 0 for off)"))?;
    if ttl > MAX_SESSION_CACHE_TTL {
        return Err(format!(
            "{value:?} is longer than 5m (a lost invalidation could keep an ended session \
             alive that long)"
        ));
    }
    Ok(ttl)
}

pub(super) fn parse_cache_size(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(size) if size >= 1 => Ok(size),
        _ => Err(format!(
            "{value:?} is not a number of sessions (at least 1)"
        )),
    }
}

fn is_redis_url(url: &str) -> bool {
    let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    scheme_ok && Url::parse(url).is_ok()
}

/// Whether a `REDIS_URL` names a password of its own (`redis://:pw@host`).
fn url_has_password(url: &str) -> bool {
    Url::parse(url).is_ok_and(|url| url.password().is_some())
}

impl Findings {
    /// The store section: at most one topology, its credentials, its timeout and the cache.
    pub(super) fn store(&mut self) -> StoreSettings {
        let url = self.secret("REDIS_URL", false);
        let sentinel_urls = self.take("REDIS_SENTINEL_URLS");
        let sentinel_urls_set = sentinel_urls.is_some();
        let sentinels = self.parse_value("REDIS_SENTINEL_URLS", sentinel_urls, parse_node_list);
        let master = self
            .take("REDIS_SENTINEL_MASTER")
            .filter(|m| !m.trim().is_empty());
        let sentinel_password = self.secret("REDIS_SENTINEL_PASSWORD", false);
        let cluster_urls = self.take("REDIS_CLUSTER_URLS");
        let cluster_set = cluster_urls.is_some();
        let seeds = self.parse_value("REDIS_CLUSTER_URLS", cluster_urls, parse_node_list);
        let username = self.take("REDIS_USERNAME").filter(|u| !u.is_empty());
        let password = self.secret("REDIS_PASSWORD", false);
        let timeout = self
            .parsed("REDIS_TIMEOUT", parse_redis_timeout)
            .unwrap_or(DEFAULT_REDIS_TIMEOUT);
        // A list that did not parse is a problem already; its TLS files are not one more.
        let unparsed =
            (sentinel_urls_set && sentinels.is_none()) || (cluster_set && seeds.is_none());
        let tls_in_use = unparsed
            || url.as_ref().is_some_and(|url| {
                url.expose()
                    .trim()
                    .get(..9)
                    .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
            })
            || [&sentinels, &seeds]
                .iter()
                .any(|nodes| nodes.iter().flatten().any(|node| node.tls));
        let tls = self.redis_tls(tls_in_use);
        let cache_ttl = self.parsed("SESSION_CACHE_TTL", parse_cache_ttl);
        let cache_size = self.parsed("SESSION_CACHE_SIZE", parse_cache_size);
        let cache = CacheSettings {
            ttl: cache_ttl.unwrap_or(DEFAULT_SESSION_CACHE_TTL),
            size: cache_size.unwrap_or(DEFAULT_SESSION_CACHE_SIZE),
        };

        let chosen: Vec<&str> = [
            (url.is_some(), "REDIS_URL"),
            (sentinel_urls_set, "REDIS_SENTINEL_URLS"),
            (cluster_set, "REDIS_CLUSTER_URLS"),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| *name)
        .collect();
        if chosen.len() > 1 {
            self.problem(format!(
                "{} are set: REDIS_URL (one server), REDIS_SENTINEL_URLS (Sentinel) and \
                 REDIS_CLUSTER_URLS (Cluster) exclude each other; set one",
                chosen.join(" and ")
            ));
        }
        if sentinel_urls_set && master.is_none() {
            self.problem(
                "REDIS_SENTINEL_URLS needs REDIS_SENTINEL_MASTER (the name the sentinels \
                 monitor, as in their `sentinel monitor <name> ...` line)"
                    .to_string(),
            );
        }
        if !sentinel_urls_set && master.is_some() {
            self.problem("REDIS_SENTINEL_MASTER is set without REDIS_SENTINEL_URLS".to_string());
        }
        if !sentinel_urls_set && sentinel_password.is_some() {
            self.problem("REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINEL_URLS".to_string());
        }
        if chosen.is_empty() && (username.is_some() || password.is_some()) {
            self.problem(
                "REDIS_USERNAME or REDIS_PASSWORD is set, but no Redis is (REDIS_URL, \
                 REDIS_SENTINEL_URLS or REDIS_CLUSTER_URLS)"
                    .to_string(),
            );
        }
        if let Some(url) = &url {
            // The URL may hold a password: describe it, do not print it.
            if !is_redis_url(url.expose()) {
                self.problem(
                    "REDIS_URL: expected a redis://, rediss:// or unix:// URL".to_string(),
                );
            } else if password.is_some() && url_has_password(url.expose()) {
                self.problem(
                    "REDIS_URL carries a password and REDIS_PASSWORD is set too: set it once"
                        .to_string(),
                );
            }
        }
        if chosen.is_empty() {
            self.warn(
                "REDIS_URL is not set: sessions are kept in memory, lost on restart and not \
                 shared between replicas"
                    .to_string(),
            );
            if cache_ttl.is_some() || cache_size.is_some() {
                self.warn(
                    "SESSION_CACHE_TTL and SESSION_CACHE_SIZE have no effect with the in-memory \
                     store (its sessions are already in memory)"
                        .to_string(),
                );
            }
        }
        if chosen.len() != 1 {
            return StoreSettings { redis: None, cache };
        }
        let topology = match (url, sentinels, master, seeds) {
            (Some(url), None, None, None) => RedisTopology::Standalone(url),
            (None, Some(sentinels), Some(master), None) => RedisTopology::Sentinel {
                sentinels,
                master: master.trim().to_string(),
                password: sentinel_password,
            },
            (None, None, None, Some(seeds)) => RedisTopology::Cluster { seeds },
            // Each of these is already a problem above.
            _ => return StoreSettings { redis: None, cache },
        };
        StoreSettings {
            redis: Some(RedisSettings {
                topology,
                username,
                password,
                timeout,
                tls,
            }),
            cache,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Host, port and TLS, or a part of the problem.
    type Expected = Result<(&'static str, u16, bool), &'static str>;

    #[test]
    fn node_addresses() {
        let cases: &[(&str, Expected)] = &[
            ("redis://10.0.0.1:26379", Ok(("10.0.0.1", 26379, false))),
            (
                "rediss://redis.example:7000",
                Ok(("redis.example", 7000, true)),
            ),
            ("redis://sentinel-a", Ok(("sentinel-a", 6379, false))),
            ("redis://[::1]:7001", Ok(("::1", 7001, false))),
            ("redis://:secret@host:1", Err("must not carry credentials")),
            ("redis://user@host:1", Err("must not carry credentials")),
            ("http://host:1", Err("expected redis://")),
            ("redis://host:1/2", Err("must be only")),
            ("host:1", Err("expected redis://")),
        ];
        for (input, expected) in cases {
            match (parse_node_address(input), expected) {
                (Ok(node), Ok((host, port, tls))) => {
                    assert_eq!(
                        (node.host.as_str(), node.port, node.tls),
                        (*host, *port, *tls)
                    )
                }
                (Err(err), Err(part)) => assert!(err.contains(part), "{input}: {err}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_password_in_a_node_url_is_not_echoed() {
        let err = parse_node_address("redis://:hunter2@host:1").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn node_lists() {
        assert_eq!(
            parse_node_list("redis://a:1, redis://b:2").unwrap().len(),
            2
        );
        assert!(parse_node_list(" , ").unwrap_err().contains("empty"));
        assert!(parse_node_list("redis://a:1,rediss://b:2")
            .unwrap_err()
            .contains("all or nothing"));
        let both = parse_node_list("ftp://a:1,redis://:pw@b:2").unwrap_err();
        assert!(
            both.contains("expected redis://") && both.contains("credentials"),
            "{both}"
        );
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_redis_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_redis_timeout("5ms").is_err());
        assert!(parse_redis_timeout("1m").is_err());
        assert!(parse_redis_timeout("soon").is_err());
        assert_eq!(parse_cache_ttl("0"), Ok(Duration::ZERO));
        assert_eq!(parse_cache_ttl("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_cache_ttl("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_cache_ttl("1h").is_err());
        assert_eq!(parse_cache_size("100000"), Ok(100_000));
        assert!(parse_cache_size("0").is_err());
        assert!(parse_cache_size("-1").is_err());
        assert!(parse_cache_size("lots").is_err());
    }

    #[test]
    fn cache_on_and_off() {
        let on = CacheSettings {
            ttl: Duration::from_secs(10),
            size: 10,
        };
        assert!(on.enabled());
        assert!(!CacheSettings {
            ttl: Duration::ZERO,
            ..on
        }
        .enabled());
    }
}
