//! Free loopback ports for the programs a test starts.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Mutex, OnceLock};

/// Ports already handed out in this test process. The kernel may offer a
/// port again once our probe socket is closed, and tests run in parallel
/// threads: without this set two servers could be told to use the same port.
fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process
/// has not handed out before.
pub fn free_port() -> u16 {
    let mut seen = handed_out()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for _ in 0..200 {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("local_addr of probe socket")
            .port();
        drop(listener);
        if seen.insert(port) {
            return port;
        }
    }
    panic!("free_port: no new free port after 200 attempts");
}
