//! The memory phase: portcullis' own server with the in-memory store holding many sessions
//! (`bench-runner memory-server`), measured next to floor A and the unfilled memory instance.

use std::time::Duration;

use anyhow::Context as _;
use portcullis_testkit::free_port;

use crate::bench::Bench;
use crate::facts::MemoryReport;
use crate::memory_server::Ready;
use crate::processes::{clean_command, Processes};
use crate::procs;
use crate::scenario::{forward_auth_headers, forward_auth_url, preflight, Scenario};

use super::logins::{Logins, USER};
use super::setup::portcullis_env;
use super::Context;

pub struct Memory {
    pub reports: Vec<MemoryReport>,
    /// Peak RSS (kB) of portcullis-memory after the phase.
    pub hwm_portcullis_memory_final: u64,
}

/// One filled server per variant, one at a time; rounds only for the login-like one. Nothing
/// with --only (a profiling run measures the main phase only).
pub fn run(
    cx: &Context,
    bench: &mut Bench,
    live: &mut Processes,
    logins: &Logins,
    scenarios: &[Scenario],
) -> anyhow::Result<Memory> {
    let options = cx.options;
    let sealed_len = logins.facts.sealed_len;
    let variants = if !options.only.is_empty() {
        vec![]
    } else {
        // As the login stored it; and without tokens too, if the login stored any.
        let mut variants = vec![("as-login", sealed_len)];
        if sealed_len > 0 {
            variants.push(("without-tokens", 0));
        }
        variants
    };
    let mut reports = Vec::new();
    for (variant, sealed_len_now) in variants {
        let name = format!("memory-server-{variant}");
        let port = free_port();
        let ready_file = cx.dir.join(format!("{name}.json"));
        let cookie_id = portcullis::crypto::random_id();
        let env = portcullis_env(&live.idp, port, None);
        let mut command = clean_command(&cx.bins.runner, &env);
        command.args([
            "memory-server",
            "--sessions",
            &options.memory_sessions.to_string(),
            "--sealed-len",
            &sealed_len_now.to_string(),
            "--cookie-id",
            &cookie_id,
            "--ready",
            &ready_file.display().to_string(),
        ]);
        let text = live.spawn(&name, command, cx.dir)?.wait_until(
            &format!("{}", ready_file.display()),
            Duration::from_secs(60 + options.memory_sessions / 1_000),
            || std::fs::read_to_string(&ready_file).map_err(|e| e.to_string()),
        )?;
        let ready: Ready = serde_json::from_str(&text)?;
        let memory_pid = live.pid(&name);
        let host = format!("127.0.0.1:{port}");
        let filled = Scenario::new(
            &format!("memory-{}/forward-auth", options.memory_sessions),
            forward_auth_url(port),
            forward_auth_headers(&host, Some(&cx.keys.sign(&cookie_id))),
            200,
            vec![(name.clone(), memory_pid)],
            Some(USER),
        );
        cx.rt.block_on(preflight(&cx.client, &filled))?;
        if variant == "as-login" {
            println!(
                "memory phase: portcullis (library, memory store) holding {} sessions",
                options.memory_sessions
            );
            let find = |wanted: &str| {
                scenarios
                    .iter()
                    .find(|s| s.name == wanted)
                    .with_context(|| format!("no {wanted} scenario"))
            };
            let (floor_a, one) = (find("floor-a")?, find("memory/forward-auth")?);
            bench.interleaved(
                &format!("memory-{}", options.memory_sessions),
                &[floor_a, one, &filled],
                live,
            )?;
        }
        reports.push(MemoryReport {
            ready,
            hwm_kb_after_load: procs::status_kb(memory_pid, "VmHWM")?,
            variant: variant.to_string(),
        });
        // Stop it now: two filled servers need not share the machine.
        live.stop(&name);
    }
    Ok(Memory {
        reports,
        hwm_portcullis_memory_final: procs::status_kb(live.pid("portcullis-memory"), "VmHWM")?,
    })
}
