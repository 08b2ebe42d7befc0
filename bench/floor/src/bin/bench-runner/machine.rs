//! Facts about the run that go into the results: the machine, the revision, the time.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

/// The machine the figures come from (a full run's file is committed with it).
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_total = meminfo.lines().next().unwrap_or_default().to_string();
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": cpu_model,
        "memory": mem_total,
        "kernel": command_output("uname", &["-sr"]),
        "rustc": command_output("rustc", &["--version"]),
        "wrk": command_output("wrk", &["--version"]).lines().next().unwrap_or_default(),
        "redis_server": command_output("redis-server", &["--version"]),
        "nginx": command_output("nginx", &["-v"]),
        "node": command_output("node", &["--version"]),
        "traefik": command_output("traefik", &["version"]).lines().next().unwrap_or_default(),
        "caddy": command_output("caddy", &["version"]),
        "apache2": command_output("apache2", &["-v"]).lines().next().unwrap_or_default(),
        "mod_auth_openidc": command_output(
            "dpkg-query",
            &["-W", "-f=${Version}", "libapache2-mod-auth-openidc"]
        ),
    })
}

/// The revision measured, marked when src/ or the Cargo files differ from it.
pub fn git_revision(repo: &Path) -> String {
    let dir = repo.display().to_string();
    let rev = command_output("git", &["-C", &dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !command_output(
        "git",
        &[
            "-C",
            &dir,
            "status",
            "--porcelain",
            "--",
            "src",
            "Cargo.toml",
            "Cargo.lock",
        ],
    )
    .is_empty();
    if dirty {
        format!("{rev} (with uncommitted changes to src/ or Cargo files)")
    } else {
        rev
    }
}

/// UTC date and time from the Unix clock (no date crate needed).
pub fn utc_now() -> (String, String) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let date = format!("{y:04}-{m:02}-{d:02}");
    let time = format!(
        "{date}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    );
    (date, time)
}

/// A short command's trimmed stdout (its stderr if stdout is empty, as for `nginx -v`), or ""
/// if it cannot run: a missing tool leaves a blank in the facts rather than failing the run.
fn command_output(program: &str, args: &[&str]) -> String {
    let mut command = Command::new(program);
    command.args(args);
    let Ok(output) =
        portcullis_testkit::process::try_run_with_timeout(command, Duration::from_secs(10))
    else {
        return String::new();
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.trim().is_empty() {
        String::from_utf8_lossy(&output.stderr).trim().to_string()
    } else {
        stdout.trim().to_string()
    }
}
