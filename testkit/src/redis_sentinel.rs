//! A real Redis primary and replica watched by three Sentinels on loopback, so that tests can
//! crash the primary and watch the Sentinels promote the replica (to check how portcullis
//! behaves through a failover), and bring the crashed node back on the same port.
//!
//! The Sentinels are `redis-server <conf> --sentinel`: Debian's redis-sentinel package may not
//! be installed, and the redis-server binary alone is a Sentinel when asked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::paths::require_program;
use crate::ports::free_port;
use crate::process::ChildGuard;
use crate::redis_cli::{info_field, try_cli, wait_for_pong};
use crate::tls::TestPki;
use crate::wait::{poll_until, STARTUP_TIMEOUT};
use crate::workdir::Workdir;

const INSTALL_HINT: &str = "apt-get install redis-server";
/// The name the Sentinels monitor the primary under (what a client asks them for).
pub const MASTER_NAME: &str = "portcullis";
/// Three, with a quorum of two: one Sentinel alone can neither declare the primary down nor
/// authorize a failover.
const SENTINELS: usize = 3;
const QUORUM: &str = "2";
/// How long the primary may be silent before a Sentinel calls it down. Short, so that a
/// failover takes a few seconds.
const DOWN_AFTER_MS: &str = "1000";
/// After a failed attempt a Sentinel waits twice this before trying again.
const FAILOVER_TIMEOUT_MS: &str = "5000";
/// Lines of a log shown when something does not happen.
const TAIL_LINES: usize = 40;

/// One program: a data node or a Sentinel, with its folder, config file and log.
struct Node {
    port: u16,
    /// With TLS: the port that speaks it (the plain `port` stays, for the kit's redis-cli).
    tls_port: Option<u16>,
    dir: PathBuf,
    /// None while crashed.
    child: Option<ChildGuard>,
}

impl Node {
    fn new(parent: &Path, kind: &str, port: u16, tls: bool) -> Node {
        let dir = parent.join(format!("{kind}-{port}"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Node {
            port,
            tls_port: tls.then(free_port),
            dir,
            child: None,
        }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("redis.conf")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// Writes the config file (the program rewrites it: Sentinels record what they learn, a
    /// promoted replica forgets its `replicaof`).
    fn write_config(&self, lines: &[String]) {
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(self.config_path(), text)
            .unwrap_or_else(|e| panic!("write {}: {e}", self.config_path().display()));
    }

    /// Starts `redis-server redis.conf [extra]` and waits until it answers PING.
    fn launch(&mut self, name: &str, extra: &[&str]) {
        let mut command = Command::new(require_program("redis-server", INSTALL_HINT));
        command.arg(self.config_path()).args(extra);
        let mut child = ChildGuard::spawn(
            &format!("{name} on {}", self.port),
            command,
            &self.log_path(),
        );
        wait_for_pong(&mut child, self.port);
        self.child = Some(child);
    }
}

pub struct RedisSentinels {
    // Sentinels first, so they stop before the data nodes and do not fail over meanwhile;
    // all before `dir`, so programs stop before their folders go away.
    sentinels: Vec<Node>,
    /// The first primary, then its replica; the roles change with failovers.
    data: Vec<Node>,
    /// With TLS (replication, Sentinels to data nodes, clients), the certificates' lines.
    tls: Option<Vec<String>>,
    dir: Workdir,
}

impl RedisSentinels {
    /// Starts a primary and a replica (no persistence), waits until the replica is in sync,
    /// then three Sentinels, and waits until each knows the primary, the replica and the two
    /// other Sentinels (before that, a failover cannot happen).
    pub fn start() -> RedisSentinels {
        Self::start_with(Workdir::temp("redis-sentinel"), None)
    }

    /// The same set speaking TLS too, with `pki`'s server certificate and requiring a client
    /// certificate of its CA: replication and the Sentinels' links to the data nodes use TLS,
    /// the Sentinels name the primary by its TLS port, and [`RedisSentinels::sentinel_urls`]
    /// are `rediss://`. Each program keeps a plain port for the kit's own redis-cli; the
    /// failover helpers, which take and compare plain ports, are not for this set.
    pub fn start_tls(pki: &TestPki) -> RedisSentinels {
        let lines = vec![
            format!("tls-cert-file \"{}\"", pki.server_cert().display()),
            format!("tls-key-file \"{}\"", pki.server_key().display()),
            format!("tls-ca-cert-file \"{}\"", pki.ca().display()),
            "tls-auth-clients yes".to_string(),
            "tls-replication yes".to_string(),
            // The client certificate the data nodes ask a replica or a Sentinel for.
            format!("tls-client-cert-file \"{}\"", pki.client_cert().display()),
            format!("tls-client-key-file \"{}\"", pki.client_key().display()),
        ];
        Self::start_with(Workdir::temp("redis-sentinel-tls"), Some(lines))
    }

    /// The same, with each program's folder (its `redis.conf` and `redis.log`) under `dir`,
    /// kept.
    pub fn start_in(dir: &Path) -> RedisSentinels {
        Self::start_with(Workdir::kept(dir), None)
    }

    fn start_with(dir: Workdir, tls: Option<Vec<String>>) -> RedisSentinels {
        let with_tls = tls.is_some();
        let primary_port = free_port();
        let replica_port = free_port();
        let mut data = vec![
            Node::new(dir.path(), "data", primary_port, with_tls),
            Node::new(dir.path(), "data", replica_port, with_tls),
        ];
        // What replicas and Sentinels connect to: the TLS port when there is one.
        let primary_address = data[0].tls_port.unwrap_or(primary_port);
        for (node, replica_of) in data.iter_mut().zip([None, Some(primary_address)]) {
            node.write_config(&data_config(node, replica_of, tls.as_deref()));
            node.launch("redis-server", &[]);
        }
        let mut sentinels: Vec<Node> = (0..SENTINELS)
            .map(|_| Node::new(dir.path(), "sentinel", free_port(), with_tls))
            .collect();
        let mut set = RedisSentinels {
            sentinels: Vec::new(),
            data,
            tls,
            dir,
        };
        set.wait_for_replica(replica_port, primary_address, STARTUP_TIMEOUT);
        for sentinel in &mut sentinels {
            sentinel.write_config(&sentinel_config(
                sentinel,
                primary_address,
                set.tls.as_deref(),
            ));
            sentinel.launch("redis-sentinel", &["--sentinel"]);
        }
        set.sentinels = sentinels;
        set.wait_until_sentinels_ready(primary_address, STARTUP_TIMEOUT);
        set
    }

    /// The name the Sentinels know the primary by.
    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    /// `redis://127.0.0.1:PORT` of the three Sentinels (`rediss://` and their TLS ports with
    /// TLS).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|sentinel| match sentinel.tls_port {
                Some(port) => format!("rediss://127.0.0.1:{port}"),
                None => format!("redis://127.0.0.1:{}", sentinel.port),
            })
            .collect()
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels
            .iter()
            .map(|sentinel| sentinel.port)
            .collect()
    }

    /// The ports of the two data nodes (running or not), the first primary first.
    pub fn data_ports(&self) -> Vec<u16> {
        self.data.iter().map(|node| node.port).collect()
    }

    /// Where the programs' folders are (`data-PORT/`, `sentinel-PORT/`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The primary's port, as the first Sentinel that answers says
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`).
    pub fn primary_port(&self) -> u16 {
        let mut errors = Vec::new();
        for sentinel in &self.sentinels {
            match master_addr(sentinel.port) {
                Ok(port) => return port,
                Err(error) => errors.push(error),
            }
        }
        panic!("no Sentinel says where the primary is: {errors:#?}")
    }

    /// SIGKILLs (a crash, not a shutdown) the current primary; returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port();
        self.kill(port);
        port
    }

    /// SIGKILLs the data node on `port`.
    pub fn kill(&mut self, port: u16) {
        let mut child = self
            .data_node_mut(port)
            .child
            .take()
            .unwrap_or_else(|| panic!("redis data node {port} is not running"));
        child.kill();
    }

    /// Waits until every Sentinel names a primary other than `old_port`, the same one, and that
    /// node answers `ROLE` as a primary; returns its port. Panics after `timeout` with what the
    /// Sentinels said last.
    pub fn wait_for_failover(&self, old_port: u16, timeout: Duration) -> u16 {
        let result = poll_until(
            &format!("the Sentinels to replace primary {old_port}"),
            timeout,
            || {
                let mut ports = Vec::new();
                for sentinel in &self.sentinels {
                    ports.push(master_addr(sentinel.port)?);
                }
                let new = ports[0];
                if new == old_port || ports.iter().any(|&port| port != new) {
                    return Err(format!("Sentinels name primaries {ports:?}"));
                }
                let role = try_cli(new, &["ROLE"])?;
                if role.lines().next().map(str::trim) != Some("master") {
                    return Err(format!("new primary {new} answers ROLE:\n{role}"));
                }
                Ok(new)
            },
        );
        result.unwrap_or_else(|e| panic!("{e}{}", self.sentinel_diagnosis()))
    }

    /// Starts a killed data node again on the same port, without data, as a replica of the
    /// current primary (`--replicaof`), the way a node without persistence has to come back:
    /// started as a primary, an empty node is a candidate the Sentinels may promote if they
    /// call the real primary down meanwhile (a loaded CI machine did that once, 1.2 s after
    /// the restart), and the data set is gone. Returns once it answers PING.
    pub fn restart(&mut self, port: u16) {
        let primary = self.primary_port().to_string();
        let node = self.data_node_mut(port);
        assert!(
            node.child.is_none(),
            "redis data node {port} is running; kill it first"
        );
        node.launch("redis-server", &["--replicaof", "127.0.0.1", &primary]);
    }

    /// Waits until the data node on `port` is a replica of the current primary, in sync
    /// (`INFO replication`: `master_link_status:up`).
    pub fn wait_until_replica(&mut self, port: u16, timeout: Duration) {
        let primary = self.primary_port();
        self.wait_for_replica(port, primary, timeout);
    }

    /// FLUSHALL on the current primary (its replica follows).
    pub fn flush_all(&self) {
        self.cli(self.primary_port(), &["FLUSHALL"]);
    }

    /// Runs `redis-cli -p PORT args...` (a data node or a Sentinel) with a timeout; returns its
    /// stdout, trimmed. Panics if it fails, an error reply included.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        try_cli(port, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The last lines of the log of the data node or Sentinel on `port`.
    pub fn log_tail(&self, port: u16, lines: usize) -> String {
        let node = self
            .sentinels
            .iter()
            .chain(&self.data)
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no redis data node or Sentinel on port {port}"));
        crate::process::log_tail(&node.log_path(), lines)
    }

    fn data_node_mut(&mut self, port: u16) -> &mut Node {
        self.data
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no redis data node on port {port}"))
    }

    fn wait_for_replica(&mut self, port: u16, primary: u16, timeout: Duration) {
        let node = self.data_node_mut(port);
        let Some(child) = node.child.as_mut() else {
            panic!("redis data node {port} is not running");
        };
        let result = child.try_wait_until(
            &format!("redis {port} to be a replica of {primary} in sync"),
            timeout,
            || {
                let info = try_cli(port, &["INFO", "replication"])?;
                let in_sync = info_field(&info, "role") == Some("slave")
                    && info_field(&info, "master_port") == Some(&primary.to_string())
                    && info_field(&info, "master_link_status") == Some("up");
                if in_sync {
                    Ok(())
                } else {
                    Err(format!("INFO replication:\n{info}"))
                }
            },
        );
        result.unwrap_or_else(|e| panic!("{e}{}", self.sentinel_diagnosis()));
    }

    /// Every Sentinel knows the primary on `primary` as up, one replica and the two other
    /// Sentinels, and says a failover could be authorized (`SENTINEL CKQUORUM`).
    fn wait_until_sentinels_ready(&mut self, primary: u16, timeout: Duration) {
        let others = (SENTINELS - 1).to_string();
        let result = poll_until("every Sentinel to know the whole set", timeout, || {
            if let Some(exited) = self.exited() {
                return Ok(Err(exited));
            }
            for sentinel in &self.sentinels {
                let port = sentinel.port;
                let text = try_cli(port, &["SENTINEL", "MASTER", MASTER_NAME])?;
                let master = pairs(&text);
                let field = |name: &str| master.get(name).map(String::as_str);
                let ready = field("port") == Some(&primary.to_string())
                    && field("flags") == Some("master")
                    && field("num-slaves") == Some("1")
                    && field("num-other-sentinels") == Some(&others);
                if !ready {
                    return Err(format!("Sentinel {port} SENTINEL MASTER:\n{text}"));
                }
                try_cli(port, &["SENTINEL", "CKQUORUM", MASTER_NAME])?;
            }
            Ok(Ok(()))
        });
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(exited)) => exited,
            Err(timed_out) => timed_out,
        };
        panic!("{error}{}", self.sentinel_diagnosis());
    }

    /// A program that was not killed on purpose but has exited, with its log tail.
    fn exited(&mut self) -> Option<String> {
        self.sentinels
            .iter_mut()
            .chain(&mut self.data)
            .find_map(|node| node.child.as_mut()?.ensure_running().err())
    }

    /// Where the logs are, and the end of each Sentinel's (they log every step of a failover).
    fn sentinel_diagnosis(&self) -> String {
        let mut text = format!("\n(logs in {})", self.dir().display());
        for sentinel in &self.sentinels {
            text.push_str(&format!(
                "\n--- Sentinel {} log tail ---\n{}",
                sentinel.port,
                crate::process::log_tail(&sentinel.log_path(), TAIL_LINES)
            ));
        }
        text
    }
}

/// A node's TLS port and certificates, when it has them.
fn tls_config(node: &Node, tls: Option<&[String]>) -> Vec<String> {
    match (node.tls_port, tls) {
        (Some(port), Some(lines)) => std::iter::once(format!("tls-port {port}"))
            .chain(lines.iter().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A data node without persistence, logging to stdout (the harness log file).
fn data_config(node: &Node, replica_of: Option<u16>, tls: Option<&[String]>) -> Vec<String> {
    let mut lines = vec![
        format!("port {}", node.port),
        "bind 127.0.0.1".to_string(),
        "save \"\"".to_string(),
        "appendonly no".to_string(),
        // A primary otherwise waits 5 s for more replicas before it sends one its data.
        "repl-diskless-sync-delay 0".to_string(),
        format!("dir \"{}\"", node.dir.display()),
        "logfile \"\"".to_string(),
    ];
    if let Some(primary) = replica_of {
        lines.push(format!("replicaof 127.0.0.1 {primary}"));
    }
    lines.extend(tls_config(node, tls));
    lines
}

fn sentinel_config(node: &Node, primary: u16, tls: Option<&[String]>) -> Vec<String> {
    let mut lines = vec![
        format!("port {}", node.port),
        "bind 127.0.0.1".to_string(),
        format!("dir \"{}\"", node.dir.display()),
        "logfile \"\"".to_string(),
        "sentinel resolve-hostnames no".to_string(),
        format!("sentinel monitor {MASTER_NAME} 127.0.0.1 {primary} {QUORUM}"),
        format!("sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}"),
        format!("sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}"),
        format!("sentinel parallel-syncs {MASTER_NAME} 1"),
    ];
    lines.extend(tls_config(node, tls));
    lines
}

/// The primary's port a Sentinel gives (`SENTINEL GET-MASTER-ADDR-BY-NAME`: host, then port).
fn master_addr(sentinel: u16) -> Result<u16, String> {
    let text = try_cli(
        sentinel,
        &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
    )?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    match lines.as_slice() {
        [_host, port] => port
            .parse()
            .map_err(|e| format!("Sentinel {sentinel}: port {port:?}: {e}")),
        _ => Err(format!(
            "Sentinel {sentinel} GET-MASTER-ADDR-BY-NAME answered {text:?}"
        )),
    }
}

/// A flat `name\nvalue\n...` answer (redis-cli's rendering of `SENTINEL MASTER`) as a map.
fn pairs(text: &str) -> HashMap<String, String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines
        .chunks(2)
        .filter_map(|pair| match pair {
            [name, value] => Some((name.to_string(), value.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn reads_sentinel_answers() {
        let master = pairs("name\nportcullis\nport\n7000\nflags\nmaster\nnum-slaves\n1\n");
        assert_eq!(master.get("port").map(String::as_str), Some("7000"));
        assert_eq!(master.get("num-slaves").map(String::as_str), Some("1"));
        assert_eq!(master.len(), 4);
    }

    /// A real failover: the primary crashes, the Sentinels promote the replica (which has the
    /// key), and the crashed node comes back, empty, as its replica and gets the data.
    #[test]
    fn sentinels_promote_the_replica_of_a_crashed_primary() {
        let started = Instant::now();
        let mut set = RedisSentinels::start();
        eprintln!("redis sentinel: started in {:?}", started.elapsed());
        assert_eq!(set.sentinel_urls().len(), 3);
        assert_eq!(set.master_name(), "portcullis");
        let primary = set.primary_port();
        assert_eq!(primary, set.data_ports()[0]);

        assert_eq!(set.cli(primary, &["SET", "session:1", "alice"]), "OK");
        // Replication is asynchronous: make sure the replica has the key before the crash.
        assert_eq!(set.cli(primary, &["WAIT", "1", "5000"]), "1");

        let crashed_at = Instant::now();
        assert_eq!(set.kill_primary(), primary);
        let new = set.wait_for_failover(primary, Duration::from_secs(60));
        eprintln!(
            "redis sentinel: failover {primary} -> {new} in {:?}",
            crashed_at.elapsed()
        );
        assert_eq!(new, set.data_ports()[1]);
        assert_eq!(set.primary_port(), new);
        assert_eq!(set.cli(new, &["GET", "session:1"]), "alice");
        assert_eq!(set.cli(new, &["SET", "session:2", "bob"]), "OK");

        let restarted_at = Instant::now();
        set.restart(primary);
        set.wait_until_replica(primary, Duration::from_secs(60));
        eprintln!(
            "redis sentinel: {primary} back as a replica in {:?}",
            restarted_at.elapsed()
        );
        assert_eq!(set.cli(primary, &["GET", "session:2"]), "bob");

        set.flush_all();
        assert_eq!(set.cli(new, &["GET", "session:2"]), "");
    }
}
