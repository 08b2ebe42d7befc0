//! nginx with examples/nginx/portcullis.conf.template, rendered the way the
//! official image's envsubst step would, inside a minimal main config.

use std::fs;
use std::process::Command;
use std::time::Duration;

use crate::paths::{repo_file, require_program};
use crate::ports::free_port;
use crate::process::{run_with_timeout, ChildGuard};
use crate::workdir::Workdir;

use super::{replace_once, Proxy, ProxyKind, EXAMPLE_OPS_RULE, PROXY_STARTUP_TIMEOUT};

const INSTALL_HINT: &str = "apt-get install nginx-light";

pub struct Nginx;

impl Nginx {
    /// `portcullis_hostport` and `app_hostport` like `127.0.0.1:4180`.
    pub fn start(portcullis_hostport: &str, app_hostport: &str) -> Proxy {
        Self::start_derived(portcullis_hostport, app_hostport, None)
    }

    /// The same, but the `/ops/` location's auth subrequest carries `ops_rule` (e.g.
    /// `provider=corp`) instead of the example's [`EXAMPLE_OPS_RULE`]: derived from the
    /// template at run time, that one rule changed.
    pub fn start_with_ops_rule(
        portcullis_hostport: &str,
        app_hostport: &str,
        ops_rule: &str,
    ) -> Proxy {
        Self::start_derived(portcullis_hostport, app_hostport, Some(ops_rule))
    }

    fn start_derived(
        portcullis_hostport: &str,
        app_hostport: &str,
        ops_rule: Option<&str>,
    ) -> Proxy {
        let binary = require_program("nginx", INSTALL_HINT);
        let dir = Workdir::temp("nginx");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");

        let template = fs::read_to_string(repo_file("examples/nginx/portcullis.conf.template"))
            .expect("read examples/nginx/portcullis.conf.template");
        let template = match ops_rule {
            None => template,
            Some(rule) => replace_once(
                &template,
                "examples/nginx/portcullis.conf.template",
                &format!("/oauth2/auth?{EXAMPLE_OPS_RULE};"),
                &format!("/oauth2/auth?{rule};"),
            ),
        };
        let server_block = render(
            &template,
            &[
                ("NGINX_LISTEN", &listen),
                ("PORTCULLIS_UPSTREAM", portcullis_hostport),
                ("APP_UPSTREAM", app_hostport),
            ],
        );
        let server_path = dir.path().join("portcullis.conf");
        fs::write(&server_path, server_block).expect("write rendered nginx server block");

        let d = dir.path().display();
        // Every path nginx would write is in the temp dir, so it runs as any
        // user. master_process off: one process, so stopping it leaves no
        // orphaned worker holding the port.
        let mut temp_paths =
            format!("client_body_temp_path {d}/client_body;\n    proxy_temp_path {d}/proxy;\n");
        for module in compiled_temp_path_modules(&binary) {
            temp_paths.push_str(&format!("    {module}_temp_path {d}/{module};\n"));
        }
        let main_config = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr notice;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n    access_log /dev/stdout;\n    {temp_paths}    include {server};\n}}\n",
            server = server_path.display()
        );
        let main_path = dir.path().join("nginx.conf");
        fs::write(&main_path, main_config).expect("write nginx main config");

        let mut command = Command::new(binary);
        command
            .arg("-p")
            .arg(format!("{d}/"))
            .arg("-c")
            .arg(&main_path)
            // Startup errors to stderr (our log), not /var/log/nginx.
            .args(["-e", "stderr"])
            .current_dir(dir.path());
        let mut child = ChildGuard::spawn("nginx", command, &dir.path().join("nginx.log"));
        // nginx reads its whole configuration before listening.
        child.wait_for_tcp(port, PROXY_STARTUP_TIMEOUT);
        Proxy {
            child,
            kind: ProxyKind::Nginx,
            port,
            dir,
        }
    }
}

/// envsubst for the given variables only (as the official image does with
/// its defined variables); any other `${...}` left over is a template bug.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    assert!(
        !out.contains("${"),
        "nginx template has a placeholder the harness does not know:\n{out}"
    );
    out
}

/// fastcgi/uwsgi/scgi each have a temp path only if compiled in; naming one
/// that is not is a configuration error, leaving one out makes nginx try
/// its default under /var/lib/nginx (not writable for non-root). The bench's
/// own nginx configuration needs the same list.
pub fn compiled_temp_path_modules(binary: &std::path::Path) -> Vec<&'static str> {
    let mut command = Command::new(binary);
    command.arg("-V");
    let output = run_with_timeout(command, Duration::from_secs(10));
    let build = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    ["fastcgi", "uwsgi", "scgi"]
        .into_iter()
        .filter(|module| !build.contains(&format!("--without-http_{module}_module")))
        .collect()
}
