//! The end-to-end table: each proxy alone, checked by the null auth server and by portcullis
//! (session cache on and off), and the peer beside them, with their ratios; and the peer
//! comparison in one line.

use std::fmt::Write as _;

use crate::report::{ms, ratio, Row};

/// What a row of the phase is, in words.
fn label(scenario: &str) -> String {
    let Some((proxy, route)) = scenario.split_once('/') else {
        return scenario.to_string();
    };
    let proxy = match proxy {
        "nginx" => "nginx",
        "traefik" => "Traefik",
        "caddy" => "Caddy",
        "apache" => "Apache",
        other => other,
    };
    let what = match route {
        "direct" => "alone",
        "null-auth" => "+ null auth server (floor A)",
        "portcullis" => "+ portcullis (Redis, session cache on)",
        "portcullis-nocache" => "+ portcullis (Redis, session cache off)",
        "openidc-redis" => "+ mod_auth_openidc (Redis)",
        "openidc-shm" => "+ mod_auth_openidc (shm)",
        other => other,
    };
    format!("{proxy} {what}")
}

/// The e2e rows as a table ("" without any).
pub fn markdown(rows: &[Row]) -> String {
    let e2e: Vec<&Row> = rows.iter().filter(|r| r.phase == "e2e").collect();
    if e2e.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| conns | path | req/s | p50 ms | p99 ms | vs proxy alone | vs null auth | CPU µs/req, whole path | statuses |"
    );
    let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---|");
    for row in &e2e {
        let cpu: f64 = row.cpu_us_per_request.values().sum();
        let verdict = if row.ok { "ok" } else { "WRONG" };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {:.1} | {verdict} |",
            row.connections,
            label(&row.scenario),
            row.rps_mean,
            ms(row.p50_us),
            ms(row.p99_us),
            ratio(row.vs_proxy_alone),
            ratio(row.vs_null_auth),
            cpu,
        );
    }
    let connections: Vec<u32> = {
        let mut all: Vec<u32> = e2e.iter().map(|r| r.connections).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    for c in connections {
        let alone = |name: &str| {
            e2e.iter()
                .find(|r| r.scenario == name && r.connections == c)
                .and_then(|r| r.vs_proxy_alone)
                .map_or("n/a".to_string(), |v| ratio(Some(v)))
        };
        let _ = writeln!(
            out,
            "\nPeer, vs the proxy alone at {c} connections: portcullis (session cache on) behind nginx {}, Traefik {}, Caddy {}; \
             (cache off) {}, {}, {}; mod_auth_openidc behind Apache, Redis {}, shm {}.",
            alone("nginx/portcullis"),
            alone("traefik/portcullis"),
            alone("caddy/portcullis"),
            alone("nginx/portcullis-nocache"),
            alone("traefik/portcullis-nocache"),
            alone("caddy/portcullis-nocache"),
            alone("apache/openidc-redis"),
            alone("apache/openidc-shm"),
        );
    }
    out
}
