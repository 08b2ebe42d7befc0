//! A real Redis Cluster on loopback: three primaries with one replica each, so that tests can
//! crash a primary and watch its replica take over (to check how portcullis behaves through a
//! failover), and bring the crashed node back on the same port.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::paths::require_program;
use crate::ports::free_port;
use crate::process::{run_with_timeout, ChildGuard};
use crate::redis_cli::{
    info_field, speak_tls_to, tls_args, try_cli, try_cli_following_redirects, wait_for_pong, CliTls,
};
use crate::tls::TestPki;
use crate::wait::{poll_until, STARTUP_TIMEOUT};
use crate::workdir::Workdir;

const INSTALL_HINT: &str = "apt-get install redis-server";
/// Three primaries and three replicas: the smallest cluster that survives losing a primary.
const NODES: usize = 6;
const SLOTS: usize = 16384;
/// How long a node may be silent before the others call it failing. Short, so that a failover
/// takes a few seconds; long enough that a loaded machine does not fail nodes over at random.
const NODE_TIMEOUT_MS: &str = "1000";
/// Lines of a node's log shown when the cluster does not become healthy.
const TAIL_LINES: usize = 20;

struct Node {
    port: u16,
    /// The cluster bus port, chosen like the client port: the default (port + 10000) may be
    /// taken, or past 65535 for a high ephemeral port.
    bus_port: u16,
    dir: PathBuf,
    /// None while crashed.
    child: Option<ChildGuard>,
}

impl Node {
    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }
}

pub struct RedisCluster {
    // Declared before `dir` so the nodes stop before their folders go away.
    nodes: Vec<Node>,
    /// TLS only (clients, the cluster bus, replication): the nodes' `redis-server` arguments.
    tls: Option<Vec<String>>,
    dir: Workdir,
}

impl RedisCluster {
    /// Starts six cluster nodes on free ports (no persistence), creates the cluster with
    /// `redis-cli --cluster create` and waits until every node says it is healthy.
    pub fn start() -> RedisCluster {
        Self::start_with(Workdir::temp("redis-cluster"), None)
    }

    /// The same, with each node's folder (its `redis.log` and `nodes.conf`) under `dir`, kept.
    pub fn start_in(dir: &Path) -> RedisCluster {
        Self::start_with(Workdir::kept(dir), None)
    }

    /// The same cluster speaking TLS only, to clients, on its bus and for replication, with
    /// `pki`'s server certificate, requiring a client certificate of its CA; the node ports
    /// are TLS ports and [`RedisCluster::seed_urls`] `rediss://`.
    pub fn start_tls(pki: &TestPki) -> RedisCluster {
        let arguments = [
            ("--tls-cert-file", pki.server_cert()),
            ("--tls-key-file", pki.server_key()),
            ("--tls-ca-cert-file", pki.ca()),
            ("--tls-client-cert-file", pki.client_cert()),
            ("--tls-client-key-file", pki.client_key()),
        ]
        .into_iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .chain(
            [
                "--tls-auth-clients",
                "yes",
                "--tls-cluster",
                "yes",
                "--tls-replication",
                "yes",
            ]
            .map(str::to_string),
        )
        .collect();
        let cli = CliTls {
            ca: pki.ca(),
            cert: pki.client_cert(),
            key: pki.client_key(),
        };
        Self::start_with(Workdir::temp("redis-cluster-tls"), Some((arguments, cli)))
    }

    fn start_with(dir: Workdir, tls: Option<(Vec<String>, CliTls)>) -> RedisCluster {
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            let port = free_port();
            let node_dir = dir.path().join(format!("node-{port}"));
            std::fs::create_dir_all(&node_dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", node_dir.display()));
            nodes.push(Node {
                port,
                bus_port: free_port(),
                dir: node_dir,
                child: None,
            });
        }
        let (tls, cli_tls) = match tls {
            Some((arguments, cli)) => (Some(arguments), Some(cli)),
            None => (None, None),
        };
        if let Some(cli) = &cli_tls {
            for node in &nodes {
                speak_tls_to(node.port, cli.clone());
            }
        }
        let mut cluster = RedisCluster { nodes, tls, dir };
        // All six start at once, then each is awaited: quicker than one after the other.
        for node in &mut cluster.nodes {
            node.child = Some(spawn(node, cluster.tls.as_deref()));
        }
        for node in &mut cluster.nodes {
            if let Some(child) = node.child.as_mut() {
                wait_for_pong(child, node.port);
            }
        }
        cluster.create();
        cluster.wait_until_ok(STARTUP_TIMEOUT);
        cluster
    }

    /// `redis-cli --cluster create`: slots spread over three primaries, one replica each.
    fn create(&self) {
        let mut command = Command::new(require_program("redis-cli", "apt-get install redis-tools"));
        command.args(["--cluster", "create"]);
        if let Some(node) = self.nodes.first() {
            command.args(tls_args(node.port));
        }
        command.args(
            self.nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port)),
        );
        command.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let output = run_with_timeout(command, STARTUP_TIMEOUT);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let log = self.dir.path().join("cluster-create.log");
        let _ = std::fs::write(&log, format!("{stdout}\n--- stderr ---\n{stderr}"));
        assert!(
            output.status.success() && stdout.contains("All 16384 slots covered"),
            "redis-cli --cluster create failed ({}); its output (also in {}):\n{stdout}\n{stderr}",
            output.status,
            log.display()
        );
    }

    /// The client ports of all six nodes, running or not, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// `redis://127.0.0.1:PORT` of all six nodes (valid whether or not a node is running): the
    /// seed list a cluster client is given.
    pub fn seed_urls(&self) -> Vec<String> {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        self.ports()
            .into_iter()
            .map(|port| format!("{scheme}://127.0.0.1:{port}"))
            .collect()
    }

    /// Where the nodes' folders are (`node-PORT/redis.log`, `cluster-create.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn is_running(&mut self, port: u16) -> bool {
        self.node_mut(port)
            .child
            .as_mut()
            .is_some_and(ChildGuard::is_running)
    }

    /// The ports of the primaries that serve slots, sorted, as the first running node sees them
    /// in `CLUSTER NODES`. Settled only once [`RedisCluster::wait_until_ok`] has returned.
    pub fn primaries(&self) -> Vec<u16> {
        let view = self.view_from_any();
        let mut ports: Vec<u16> = view
            .iter()
            .filter(|line| line.is_serving_primary())
            .map(|line| line.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The port of the primary that serves `key`'s slot, as the first running node sees it.
    pub fn primary_of_key(&self, key: &str) -> u16 {
        let any = self.any_running_port();
        let slot: u16 = self
            .cli(any, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .unwrap_or_else(|e| panic!("CLUSTER KEYSLOT {key}: not a number: {e}"));
        let view = self.view_from_any();
        view.iter()
            .find(|line| line.is_serving_primary() && line.serves(slot))
            .map(|line| line.port)
            .unwrap_or_else(|| {
                panic!("no healthy primary serves slot {slot} (key {key:?}): {view:#?}")
            })
    }

    /// SIGKILLs (a crash, not a shutdown) the primary that serves `key`; returns its port.
    pub fn kill_primary_of_key(&mut self, key: &str) -> u16 {
        let port = self.primary_of_key(key);
        self.kill_node(port);
        port
    }

    /// SIGKILLs the node on `port`: a crash, so it neither hands over nor says goodbye. Its
    /// `nodes.conf` stays for [`RedisCluster::restart_node`].
    pub fn kill_node(&mut self, port: u16) {
        let node = self.node_mut(port);
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("redis cluster node {port} is not running"));
        child.kill();
    }

    /// Starts a killed node again on the same ports, from its `nodes.conf` (same node id) but
    /// without data: it rejoins, and if its slots were taken over meanwhile it becomes a replica
    /// of their new primary. Returns once it answers PING; [`RedisCluster::wait_until_ok`]
    /// waits until it is in sync.
    pub fn restart_node(&mut self, port: u16) {
        let tls = self.tls.clone();
        let node = self.node_mut(port);
        assert!(
            node.child.is_none(),
            "redis cluster node {port} is running; kill_node it first"
        );
        let mut child = spawn(node, tls.as_deref());
        wait_for_pong(&mut child, port);
        node.child = Some(child);
    }

    /// Waits until the cluster is healthy again, as seen from every running node: `cluster_state:ok`
    /// with all 16384 slots served, every running node known and not failing, every slot served
    /// by a running primary (so a crashed primary's replica has been promoted), all agreeing
    /// which primaries those are, and every other running node a replica in sync with one.
    /// Panics after `timeout` with the last thing found wrong, or at once if a node exits.
    pub fn wait_until_ok(&mut self, timeout: Duration) {
        let result = poll_until("the redis cluster to be healthy", timeout, || {
            if let Some(exited) = self.exited_node() {
                return Ok(Err(exited));
            }
            self.check_ok().map(Ok)
        });
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(exited)) => exited,
            Err(timed_out) => timed_out,
        };
        panic!(
            "{error}\n(node logs in {}){}",
            self.dir().display(),
            self.log_tails()
        );
    }

    /// FLUSHALL on every primary (their replicas follow).
    pub fn flush_all(&self) {
        for port in self.primaries() {
            self.cli(port, &["FLUSHALL"]);
        }
    }

    /// Runs `redis-cli -c -p PORT args...` (following MOVED, so a key command may go to any
    /// node) with a timeout; returns its stdout, trimmed. Panics if it fails, an error reply
    /// included.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        try_cli_following_redirects(port, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The last lines of the log of the node on `port`.
    pub fn log_tail(&self, port: u16, lines: usize) -> String {
        let node = self
            .nodes
            .iter()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no redis cluster node on port {port}"));
        crate::process::log_tail(&node.log_path(), lines)
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no redis cluster node on port {port}"))
    }

    fn running_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.port)
            .collect()
    }

    fn any_running_port(&self) -> u16 {
        *self
            .running_ports()
            .first()
            .unwrap_or_else(|| panic!("no redis cluster node is running"))
    }

    fn view_from_any(&self) -> Vec<NodeLine> {
        let port = self.any_running_port();
        parse_nodes(&self.cli(port, &["CLUSTER", "NODES"]))
    }

    /// A node that was not killed on purpose but has exited, with its log tail.
    fn exited_node(&mut self) -> Option<String> {
        self.nodes.iter_mut().find_map(|node| {
            let child = node.child.as_mut()?;
            child.ensure_running().err()
        })
    }

    /// Ok when healthy (see [`RedisCluster::wait_until_ok`]); otherwise what is wrong, with the
    /// answer that shows it.
    fn check_ok(&self) -> Result<(), String> {
        let running = self.running_ports();
        for &port in &running {
            let info = try_cli(port, &["CLUSTER", "INFO"])?;
            let ok = info_field(&info, "cluster_state") == Some("ok")
                && info_field(&info, "cluster_slots_ok") == Some("16384");
            if !ok {
                return Err(format!("node {port} CLUSTER INFO:\n{info}"));
            }
        }
        let mut agreed: Option<Vec<u16>> = None;
        for &port in &running {
            let text = try_cli(port, &["CLUSTER", "NODES"])?;
            let view = parse_nodes(&text);
            let wrong = |what: String| Err(format!("node {port} {what}; CLUSTER NODES:\n{text}"));
            for &other in &running {
                match view.iter().find(|line| line.port == other) {
                    None => return wrong(format!("does not know node {other}")),
                    Some(line) if !line.is_healthy() => {
                        return wrong(format!("sees node {other} as {}", line.flags))
                    }
                    Some(_) => {}
                }
            }
            let serving: Vec<&NodeLine> = view
                .iter()
                .filter(|line| line.is_serving_primary())
                .collect();
            if let Some(gone) = serving.iter().find(|line| !running.contains(&line.port)) {
                return wrong(format!("has crashed node {} serving slots", gone.port));
            }
            let slots: usize = serving.iter().map(|line| line.slot_count()).sum();
            if slots != SLOTS {
                return wrong(format!("has {slots} slots served by healthy primaries"));
            }
            let mut primaries: Vec<u16> = serving.iter().map(|line| line.port).collect();
            primaries.sort_unstable();
            match &agreed {
                Some(first) if *first != primaries => {
                    return wrong(format!(
                        "has primaries {primaries:?}, another has {first:?}"
                    ))
                }
                _ => agreed = Some(primaries.clone()),
            }
            let Some(myself) = view.iter().find(|line| line.flags.contains("myself")) else {
                return wrong("has no myself line".to_string());
            };
            if !primaries.contains(&port) {
                check_replica_in_sync(port, &primaries)?;
            } else if !myself.is_serving_primary() {
                return wrong("is a primary serving no slots".to_string());
            }
        }
        Ok(())
    }

    fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|node| {
                format!(
                    "\n--- node {} ({}) log tail ---\n{}",
                    node.port,
                    if node.child.is_some() {
                        "running"
                    } else {
                        "killed"
                    },
                    crate::process::log_tail(&node.log_path(), TAIL_LINES)
                )
            })
            .collect()
    }
}

/// Ok if the node on `port` is a replica of one of `primaries` with its link up (`ROLE`).
fn check_replica_in_sync(port: u16, primaries: &[u16]) -> Result<(), String> {
    let role = try_cli(port, &["ROLE"])?;
    let fields: Vec<&str> = role.lines().map(str::trim).collect();
    match fields.as_slice() {
        ["slave", _host, master, "connected", ..]
            if master
                .parse::<u16>()
                .is_ok_and(|master| primaries.contains(&master)) =>
        {
            Ok(())
        }
        _ => Err(format!(
            "node {port} is not a replica in sync with one of {primaries:?}; ROLE:\n{role}"
        )),
    }
}

fn spawn(node: &Node, tls: Option<&[String]>) -> ChildGuard {
    let mut command = Command::new(require_program("redis-server", INSTALL_HINT));
    match tls {
        None => command.args(["--port", &node.port.to_string()]),
        Some(arguments) => command
            .args(["--port", "0", "--tls-port", &node.port.to_string()])
            .args(arguments),
    };
    command
        .args(["--cluster-port", &node.bus_port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(["--cluster-node-timeout", NODE_TIMEOUT_MS])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        // A primary otherwise waits 5 s for more replicas before it sends one its data.
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(&node.dir)
        // Log to stdout so it lands in the harness log file.
        .args(["--logfile", ""]);
    ChildGuard::spawn(
        &format!("redis-server (cluster node {})", node.port),
        command,
        &node.log_path(),
    )
}

/// One line of `CLUSTER NODES`: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent>
/// <pong-recv> <config-epoch> <link-state> <slot>...`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    /// 0 if the address is not known yet (`:0@0` during a handshake).
    port: u16,
    flags: String,
    /// Inclusive slot ranges; slots being imported or migrated (`[...]`) are left out.
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    fn has_flag(&self, flag: &str) -> bool {
        self.flags.split(',').any(|f| f == flag)
    }

    /// Not failing nor suspected (`fail`, `fail?`), and past the handshake.
    fn is_healthy(&self) -> bool {
        !["fail", "fail?", "handshake", "noaddr"]
            .iter()
            .any(|flag| self.has_flag(flag))
    }

    fn is_serving_primary(&self) -> bool {
        self.has_flag("master") && self.is_healthy() && !self.slots.is_empty()
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(first, last)| (first..=last).contains(&slot))
    }

    fn slot_count(&self) -> usize {
        self.slots
            .iter()
            .map(|&(first, last)| usize::from(last - first) + 1)
            .sum()
    }
}

fn parse_nodes(text: &str) -> Vec<NodeLine> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let address = fields.get(1)?;
            let flags = fields.get(2)?.to_string();
            let host_port = address.split(['@', ',']).next().unwrap_or_default();
            let port = host_port
                .rsplit(':')
                .next()
                .and_then(|port| port.parse().ok())
                .unwrap_or(0);
            let slots = fields
                .iter()
                .skip(8)
                .filter_map(|slot| parse_slot_range(slot))
                .collect();
            Some(NodeLine { port, flags, slots })
        })
        .collect()
}

fn parse_slot_range(text: &str) -> Option<(u16, u16)> {
    match text.split_once('-') {
        Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
        None => {
            let slot = text.parse().ok()?;
            Some((slot, slot))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn parses_cluster_nodes() {
        let text = "\
07c3 127.0.0.1:30004@31004 slave e7d1 0 1426238317239 4 connected
e7d1 127.0.0.1:30001@31001,host.example myself,master - 0 0 1 connected 0-5460 7000 [93->-292f]
292f 127.0.0.1:30002@31002 master,fail? - 1426238316232 0 2 connected 5461-10922
9fd8 :0@0 master,noaddr - 0 0 0 disconnected";
        let nodes = parse_nodes(text);
        assert_eq!(nodes.len(), 4);
        assert_eq!(nodes[0].port, 30004);
        assert!(!nodes[0].is_serving_primary() && nodes[0].is_healthy());
        assert_eq!(nodes[1].port, 30001);
        assert_eq!(nodes[1].slots, vec![(0, 5460), (7000, 7000)]);
        assert_eq!(nodes[1].slot_count(), 5462);
        assert!(nodes[1].is_serving_primary() && nodes[1].serves(7000));
        assert!(!nodes[1].serves(5461));
        assert!(!nodes[2].is_healthy() && !nodes[2].is_serving_primary());
        assert_eq!(nodes[3].port, 0);
        assert!(!nodes[3].is_healthy());
    }

    /// A real failover: the primary of a key crashes, its replica takes over with the key, and
    /// the crashed node comes back as a replica.
    #[test]
    fn a_crashed_primary_is_replaced_by_its_replica() {
        let started = Instant::now();
        let mut cluster = RedisCluster::start();
        eprintln!("redis cluster: started in {:?}", started.elapsed());
        assert_eq!(cluster.seed_urls().len(), 6);
        assert_eq!(cluster.primaries().len(), 3);

        let any = cluster.ports()[0];
        assert_eq!(cluster.cli(any, &["SET", "session:1", "alice"]), "OK");
        let primary = cluster.primary_of_key("session:1");
        // Replication is asynchronous: make sure the replica has the key before the crash.
        assert_eq!(cluster.cli(primary, &["WAIT", "1", "5000"]), "1");

        let crashed_at = Instant::now();
        assert_eq!(cluster.kill_primary_of_key("session:1"), primary);
        cluster.wait_until_ok(Duration::from_secs(60));
        eprintln!(
            "redis cluster: failover of {primary} in {:?}",
            crashed_at.elapsed()
        );
        let primaries = cluster.primaries();
        assert_eq!(primaries.len(), 3, "{primaries:?}");
        assert!(!primaries.contains(&primary), "{primaries:?}");
        let survivor = *cluster.ports().iter().find(|&&p| p != primary).unwrap();
        assert_eq!(cluster.cli(survivor, &["GET", "session:1"]), "alice");
        assert_eq!(cluster.cli(survivor, &["SET", "session:2", "bob"]), "OK");

        let restarted_at = Instant::now();
        cluster.restart_node(primary);
        cluster.wait_until_ok(Duration::from_secs(60));
        eprintln!(
            "redis cluster: {primary} back as a replica in {:?}",
            restarted_at.elapsed()
        );
        assert!(cluster.is_running(primary));
        assert!(!cluster.primaries().contains(&primary));

        cluster.flush_all();
        assert_eq!(cluster.cli(survivor, &["GET", "session:2"]), "");
    }
}
