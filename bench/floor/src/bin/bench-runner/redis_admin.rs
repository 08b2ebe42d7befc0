//! The runner's own Redis connection: what the sessions cost, as Redis counts it.

use std::time::Duration;

use anyhow::anyhow;

/// A blocking connection with generous timeouts (INFO and DBSIZE on a big Redis take a while).
pub fn connect(url: &str) -> anyhow::Result<redis::Connection> {
    let client = redis::Client::open(url)?;
    let conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    conn.set_write_timeout(Some(Duration::from_secs(30)))?;
    Ok(conn)
}

/// INFO memory's `used_memory`, in bytes.
pub fn used_memory(conn: &mut redis::Connection) -> anyhow::Result<u64> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow!("no used_memory in INFO"))
}

/// MEMORY USAGE of one key (all of it sampled), in bytes.
pub fn memory_usage(conn: &mut redis::Connection, key: &str) -> anyhow::Result<u64> {
    let bytes: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query(conn)?;
    bytes.ok_or_else(|| anyhow!("no key {key} in Redis"))
}
