//! Starting the servers: Redis, the IdP and both portcullis binaries first; the floors, the
//! echo app and nginx once alice's session exists (floor B reads its key).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use anyhow::bail;
use portcullis_testkit::proxies::nginx::compiled_temp_path_modules;
use portcullis_testkit::{env, free_port, Idp, RedisServer};

use crate::caught::caught;
use crate::processes::{http_status, launcher, Processes, STARTUP};

use super::Context;

/// Where the servers of the first step listen.
pub struct Servers {
    pub redis_url: String,
    pub pc_redis_port: u16,
    pub pc_memory_port: u16,
}

impl Servers {
    pub fn pc_redis_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_redis_port)
    }

    pub fn pc_memory_host(&self) -> String {
        format!("127.0.0.1:{}", self.pc_memory_port)
    }
}

/// Where the servers of the second step listen.
pub struct Floors {
    pub floor_a_port: u16,
    pub floor_b_port: u16,
    pub nginx_port: u16,
}

/// The tests' environment for an instance on `port` (its own callback), as a release binary
/// is configured in production: by environment only, logging at `warn`.
pub fn portcullis_env(idp: &Idp, port: u16, redis: Option<&str>) -> HashMap<String, String> {
    let mut env = env::test_env(idp, &format!("http://127.0.0.1:{port}"), redis);
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    env.insert("RUST_LOG".into(), "warn".into());
    env
}

/// redis-server, the test IdP, then portcullis with the Redis store and with the memory store.
pub fn start_servers(cx: &Context) -> anyhow::Result<(Processes, Servers)> {
    let redis = caught("starting redis-server", || RedisServer::start_in(cx.dir))?;
    let redis_url = redis.url();
    let pc_redis_port = free_port();
    let pc_memory_port = free_port();
    let redirect_uris: Vec<String> = [pc_redis_port, pc_memory_port]
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/oauth2/callback"))
        .collect();
    let idp = caught("starting the test IdP", || {
        Idp::start_in(cx.dir, &redirect_uris, &[])
    })?;
    let mut live = Processes::new(redis, idp);
    for (name, port, redis) in [
        ("portcullis-redis", pc_redis_port, Some(redis_url.as_str())),
        ("portcullis-memory", pc_memory_port, None),
    ] {
        let env = portcullis_env(&live.idp, port, redis);
        let command = launcher(cx.options, name, &cx.bins.portcullis, Some(&env));
        live.spawn_until_ok(name, command, cx.dir, port, "/readyz")?
            .measure_wrapped(cx.options)?;
    }
    let servers = Servers {
        redis_url,
        pc_redis_port,
        pc_memory_port,
    };
    Ok((live, servers))
}

/// Floor A, floor B (one Redis GET of `session_key`), the echo app, and nginx in front of the
/// echo app with portcullis-redis as its auth_request.
pub fn start_floors(
    cx: &Context,
    live: &mut Processes,
    servers: &Servers,
    session_key: &str,
) -> anyhow::Result<Floors> {
    let floor_a_port = free_port();
    let floor_b_port = free_port();
    let echo_port = free_port();
    let nginx_port = free_port();
    for (name, mode, port) in [
        ("floor-a", "plain", floor_a_port),
        ("floor-b", "redis", floor_b_port),
        ("echo", "echo", echo_port),
    ] {
        // The echo app is never measured on its own: it is not profiled either.
        let wrapped = name != "echo";
        let mut command = if wrapped {
            launcher(cx.options, name, &cx.bins.floor, None)
        } else {
            Command::new(&cx.bins.floor)
        };
        command.args([mode, "--listen", &format!("127.0.0.1:{port}")]);
        if mode == "redis" {
            command.args(["--redis", &servers.redis_url, "--key", session_key]);
        }
        let child = live.spawn_until_ok(name, command, cx.dir, port, "/")?;
        if wrapped {
            child.measure_wrapped(cx.options)?;
        }
    }
    let conf_path = write_nginx_conf(cx, servers.pc_redis_port, echo_port, nginx_port)?;
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(format!("{}/", cx.dir.display()))
        .arg("-c")
        .arg(&conf_path)
        .args(["-e", "stderr"]);
    live.spawn("nginx", command, cx.dir)?.wait_until(
        "nginx /open/",
        STARTUP,
        || match http_status(nginx_port, "/open/")? {
            200 => Ok(()),
            other => Err(format!("status {other}")),
        },
    )?;
    Ok(Floors {
        floor_a_port,
        floor_b_port,
        nginx_port,
    })
}

/// bench/nginx.conf.template, rendered into the run's folder.
fn write_nginx_conf(
    cx: &Context,
    portcullis_port: u16,
    echo_port: u16,
    nginx_port: u16,
) -> anyhow::Result<std::path::PathBuf> {
    let template = std::fs::read_to_string(cx.options.repo.join("bench/nginx.conf.template"))?;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let nginx_conf = template
        .replace("@USER@", if root { "user root;" } else { "" })
        .replace("@DIR@", &cx.dir.display().to_string())
        .replace("@TEMP_PATHS@", &nginx_temp_paths(cx.dir)?)
        .replace("@PORTCULLIS@", &format!("127.0.0.1:{portcullis_port}"))
        .replace("@APP@", &format!("127.0.0.1:{echo_port}"))
        .replace("@LISTEN@", &format!("127.0.0.1:{nginx_port}"));
    let leftover = nginx_conf.lines().any(|line| {
        let code = line.split('#').next().unwrap_or_default();
        code.contains('@')
    });
    if leftover {
        bail!("bench/nginx.conf.template has a placeholder the runner does not know");
    }
    let conf_path = cx.dir.join("nginx.conf");
    std::fs::write(&conf_path, nginx_conf)?;
    Ok(conf_path)
}

/// The temp paths of the modules this nginx has, in the run's folder (as the tests' nginx).
fn nginx_temp_paths(dir: &Path) -> anyhow::Result<String> {
    let modules = caught("nginx -V", || {
        compiled_temp_path_modules(Path::new("nginx"))
    })?;
    Ok(modules
        .into_iter()
        .map(|m| format!("    {m}_temp_path {}/{m};\n", dir.display()))
        .collect())
}
