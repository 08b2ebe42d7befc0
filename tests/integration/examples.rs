//! The docker-compose examples stay in step with the code and with what the proxy tests run:
//! they parse, portcullis gets only variables it reads (and every one it requires), and each
//! proxy mounts the very configuration file the integration tests start it with, with every
//! placeholder of that file given a value.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::support::paths::repo_root;

/// Per example folder: the proxy configuration the integration tests use (tests/support/proxies).
const PROXY_CONFIGS: &[(&str, &str)] = &[
    ("traefik", "examples/traefik/dynamic.yml"),
    ("nginx", "examples/nginx/portcullis.conf.template"),
    ("caddy", "examples/caddy/Caddyfile"),
];

use crate::support::portcullis::REQUIRED;

fn compose_files() -> Vec<PathBuf> {
    let examples = repo_root().join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("read {}: {e}", examples.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("docker-compose.yml"))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
}

fn example_name(compose: &Path) -> String {
    compose
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn services<'a>(compose: &'a Value, path: &Path) -> &'a Mapping {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{}: no `services` mapping", path.display()))
}

/// A compose `environment` given as a mapping (the form the examples use), as name -> value.
fn environment(service: &Value, what: &str) -> Vec<(String, String)> {
    let Some(environment) = service.get("environment") else {
        return Vec::new();
    };
    let mapping = environment
        .as_mapping()
        .unwrap_or_else(|| panic!("{what}: `environment` should be a mapping (NAME: value)"));
    mapping
        .iter()
        .map(|(name, value)| {
            let name = name
                .as_str()
                .unwrap_or_else(|| panic!("{what}: environment key {name:?} is not a string"))
                .to_string();
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                other => panic!("{what}: {name} has a value compose cannot pass: {other:?}"),
            };
            (name, value)
        })
        .collect()
}

/// `(source, target)` of each bind mount, short (`./a:/b:ro`) or long syntax.
fn bind_mounts(service: &Value, what: &str) -> Vec<(String, String)> {
    let Some(volumes) = service.get("volumes") else {
        return Vec::new();
    };
    let list = volumes
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: `volumes` should be a list"));
    list.iter()
        .filter_map(|volume| match volume {
            Value::String(short) => {
                let mut parts = short.splitn(3, ':');
                let source = parts.next()?.to_string();
                let target = parts.next()?.to_string();
                Some((source, target))
            }
            Value::Mapping(_) => {
                let source = volume.get("source")?.as_str()?.to_string();
                let target = volume.get("target")?.as_str()?.to_string();
                Some((source, target))
            }
            _ => None,
        })
        .filter(|(source, _)| source.starts_with('.') || source.starts_with('/'))
        .collect()
}

/// `a/./b/../c` -> `a/c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The variables a proxy configuration reads from the environment, and which of them have no
/// default in the file itself.
fn placeholders(kind: &str, text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let (open, close) = match kind {
        "traefik" => ("{{ env \"", "\""),
        "nginx" => ("${", "}"),
        "caddy" => ("{$", "}"),
        other => panic!("unknown proxy {other}"),
    };
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(close) else { break };
        let inner = &rest[..end];
        // Caddy's `{$NAME:default}` works without NAME.
        if !(kind == "caddy" && inner.contains(':')) {
            names.insert(inner.to_string());
        }
        rest = &rest[end..];
    }
    names
}

#[test]
fn every_example_compose_file_parses() {
    let files = compose_files();
    let names: BTreeSet<String> = files.iter().map(|f| example_name(f)).collect();
    for (example, _) in PROXY_CONFIGS {
        assert!(
            names.contains(*example),
            "examples/{example}/docker-compose.yml is missing (found: {names:?})"
        );
    }
    for file in &files {
        let compose = load(file);
        let services = services(&compose, file);
        assert!(
            services.contains_key("portcullis"),
            "{}: no `portcullis` service",
            file.display()
        );
    }
}

#[test]
fn portcullis_gets_only_variables_it_reads_and_every_required_one() {
    let known = portcullis::config::ENV_VARIABLES;
    for file in compose_files() {
        let compose = load(&file);
        let service = &services(&compose, &file)["portcullis"];
        let what = format!("{} service portcullis", file.display());
        let env = environment(service, &what);
        assert!(!env.is_empty(), "{what}: no environment");
        let unknown: Vec<&str> = env
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| !known.contains(name))
            .collect();
        assert!(
            unknown.is_empty(),
            "{what}: sets variables portcullis does not read: {unknown:?}"
        );
        for required in REQUIRED {
            let file_variant = format!("{required}_FILE");
            assert!(
                env.iter()
                    .any(|(name, value)| (name == required || name == &file_variant)
                        && !value.trim().is_empty()),
                "{what}: {required} (or {file_variant}) is not set"
            );
        }
        // The whole environment must be a configuration portcullis accepts.
        let map = env.into_iter().collect();
        if let Err(err) = portcullis::config::Config::from_env_map(map) {
            panic!("{what}: portcullis would refuse this environment: {err}");
        }
    }
}

#[test]
fn each_proxy_mounts_the_configuration_the_tests_run_and_gets_its_variables() {
    let root = repo_root();
    for (example, config) in PROXY_CONFIGS {
        let file = root
            .join("examples")
            .join(example)
            .join("docker-compose.yml");
        assert!(file.is_file(), "{} is missing", file.display());
        let compose = load(&file);
        let dir = file.parent().expect("compose folder");
        let config_path = root.join(config);
        let config_text = std::fs::read_to_string(&config_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", config_path.display()));

        // The service that mounts the tested file is the proxy.
        let mut found = None;
        for (name, service) in services(&compose, &file) {
            let what = format!("{} service {name:?}", file.display());
            for (source, target) in bind_mounts(service, &what) {
                if normalize(&dir.join(&source)) == normalize(&config_path) {
                    found = Some((name.as_str().unwrap_or("?").to_string(), service, target));
                }
            }
        }
        let Some((name, service, target)) = found else {
            panic!(
                "{}: no service mounts {config} (the file the integration tests run)",
                file.display()
            );
        };
        let what = format!("{} service {name}", file.display());

        // Where the image reads it.
        match *example {
            "nginx" => assert!(
                target.starts_with("/etc/nginx/templates/") && target.ends_with(".template"),
                "{what}: the official image renders only /etc/nginx/templates/*.template, not {target}"
            ),
            "caddy" => assert_eq!(target, "/etc/caddy/Caddyfile", "{what}"),
            "traefik" => {
                // The static configuration mounted next to it must point the file provider here.
                let static_mount = bind_mounts(service, &what)
                    .into_iter()
                    .find(|(_, t)| t == "/etc/traefik/traefik.yml")
                    .unwrap_or_else(|| panic!("{what}: no /etc/traefik/traefik.yml mount"));
                let static_config = load(&normalize(&dir.join(&static_mount.0)));
                let provider = static_config["providers"]["file"]["filename"]
                    .as_str()
                    .unwrap_or_default();
                assert_eq!(
                    provider, target,
                    "{what}: traefik.yml's file provider reads {provider:?} but dynamic.yml is mounted at {target:?}"
                );
            }
            _ => unreachable!(),
        }

        let env: BTreeSet<String> = environment(service, &what)
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, _)| name)
            .collect();
        let needed = placeholders(example, &config_text);
        assert!(!needed.is_empty(), "{config}: found no placeholders");
        let missing: Vec<&String> = needed.difference(&env).collect();
        assert!(
            missing.is_empty(),
            "{what}: {config} reads {missing:?} but the service does not set them"
        );
    }
}

#[test]
fn placeholder_scanner_sees_each_syntax() {
    assert_eq!(
        placeholders(
            "traefik",
            r#"a: '{{ env "PORTCULLIS_URL" }}/x' b: '{{ env "APP_URL" }}'"#
        ),
        BTreeSet::from(["APP_URL".to_string(), "PORTCULLIS_URL".to_string()])
    );
    assert_eq!(
        placeholders("nginx", "listen ${NGINX_LISTEN}; proxy_pass http://$host;"),
        BTreeSet::from(["NGINX_LISTEN".to_string()])
    );
    assert_eq!(
        placeholders(
            "caddy",
            "admin {$CADDY_ADMIN:localhost:2019}\n{$SITE_ADDRESS} {"
        ),
        BTreeSet::from(["SITE_ADDRESS".to_string()])
    );
}
