//! The real `portcullis` binary as an operator runs it: `--version`, `--help`, bad commands,
//! configuration errors, `check` against a real IdP and Redis, `serve` refusing an issuer
//! mismatch, and `healthcheck` against a running instance.

use std::collections::HashMap;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::portcullis::{test_env, Portcullis};
use crate::support::process::run_with_timeout;
use crate::support::{free_port, Idp, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
use crate::support::portcullis::REQUIRED;

/// The binary with exactly `env` as its environment (nothing inherited from the test runner).
fn portcullis(args: &[&str], env: &HashMap<String, String>) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).env_clear().envs(env);
    run_with_timeout(command, RUN_TIMEOUT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(output: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    )
}

fn assert_no_panic(output: &Output) {
    let all = text(&output.stdout) + &text(&output.stderr);
    for marker in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(
            !all.contains(marker),
            "output mentions {marker:?}: {}",
            describe(output)
        );
    }
}

/// An IdP that lists a callback nobody serves: `check` and `serve` only need its discovery.
fn idp() -> Idp {
    Idp::start(&["http://127.0.0.1:8080/oauth2/callback".to_string()], &[])
}

#[test]
fn version_prints_name_and_version() {
    let output = portcullis(&["--version"], &HashMap::new());
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(
        text(&output.stdout).trim(),
        format!("portcullis {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_exits_zero_and_lists_the_commands() {
    let output = portcullis(&["--help"], &HashMap::new());
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for word in ["Usage", "check", "healthcheck", "--version"] {
        assert!(stdout.contains(word), "--help lacks {word:?}: {stdout}");
    }
}

#[test]
fn an_unknown_command_fails_with_a_clear_message() {
    let output = portcullis(&["frobnicate"], &HashMap::new());
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("unknown command") && stderr.contains("frobnicate"),
        "{}",
        describe(&output)
    );
    assert!(stderr.contains("Usage"), "{}", describe(&output));
    assert_no_panic(&output);
}

#[test]
fn an_empty_environment_lists_every_required_variable_at_once() {
    let output = portcullis(&[], &HashMap::new());
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    for name in REQUIRED {
        assert!(
            stderr.contains(name),
            "stderr does not name {name}: {}",
            describe(&output)
        );
    }
    assert!(
        stderr.contains("invalid configuration"),
        "{}",
        describe(&output)
    );
    assert_no_panic(&output);

    // `check` validates the same way, before reaching anything.
    let output = portcullis(&["check"], &HashMap::new());
    assert!(!output.status.success(), "{}", describe(&output));
    for name in REQUIRED {
        assert!(text(&output.stderr).contains(name), "{}", describe(&output));
    }
    assert_no_panic(&output);
}

#[test]
fn check_against_a_real_idp_and_redis_passes_and_prints_what_to_register() {
    let idp = idp();
    let redis = RedisServer::start();
    let public = "http://app.example.test:8080";
    let env = test_env(&idp, public, Some(&redis.url()));
    let output = portcullis(&["check"], &env);
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    for expected in [
        "configuration: ok".to_string(),
        format!("identity provider: ok, issuer {}", idp.issuer()),
        "session store: ok (redis)".to_string(),
        format!("redirect URI:             {public}/oauth2/callback"),
        // The three proxy snippets.
        "Traefik (dynamic configuration):".to_string(),
        "forwardAuth:".to_string(),
        "nginx (inside your server block):".to_string(),
        "auth_request /_oauth2_auth".to_string(),
        "Caddy:".to_string(),
        "forward_auth portcullis:4180".to_string(),
        "check passed".to_string(),
    ] {
        assert!(
            stdout.contains(&expected),
            "`check` output lacks {expected:?}: {}",
            describe(&output)
        );
    }
    assert_no_panic(&output);
    // The secrets it was given are not printed.
    assert!(!stdout.contains(&idp.client_secret()), "{stdout}");
    assert!(
        !stdout.contains(crate::support::portcullis::COOKIE_SECRET),
        "{stdout}"
    );
}

#[test]
fn check_fails_when_the_issuer_is_unreachable() {
    // A port nothing listens on: discovery gets "connection refused" at once.
    let closed = free_port();
    let mut env = HashMap::new();
    for (k, v) in [
        ("OIDC_ISSUER_URL", format!("http://127.0.0.1:{closed}")),
        ("OIDC_CLIENT_ID", "portcullis-test".to_string()),
        ("OIDC_CLIENT_SECRET", "secret".to_string()),
        (
            "OIDC_REDIRECT_URL",
            "http://127.0.0.1:8080/oauth2/callback".to_string(),
        ),
        (
            "COOKIE_SECRET",
            crate::support::portcullis::COOKIE_SECRET.to_string(),
        ),
        ("COOKIE_SECURE", "false".to_string()),
    ] {
        env.insert(k.to_string(), v);
    }
    let output = portcullis(&["check"], &env);
    assert!(!output.status.success(), "{}", describe(&output));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("identity provider: FAILED"),
        "{}",
        describe(&output)
    );
    assert!(stdout.contains("check FAILED"), "{}", describe(&output));
    assert_no_panic(&output);
}

/// The IdP names itself `http://127.0.0.1:PORT`; with a trailing slash the issuer differs.
fn mismatched_env(idp: &Idp) -> HashMap<String, String> {
    let mut env = test_env(idp, "http://127.0.0.1:8080", None);
    env.insert("OIDC_ISSUER_URL".into(), format!("{}/", idp.issuer()));
    env
}

#[test]
fn check_names_an_issuer_mismatch() {
    let idp = idp();
    let output = portcullis(&["check"], &mismatched_env(&idp));
    assert!(!output.status.success(), "{}", describe(&output));
    let all = text(&output.stdout) + &text(&output.stderr);
    assert!(
        all.contains("OIDC_ISSUER_URL")
            && all.contains(&format!("{:?}", idp.issuer()))
            && all.contains(&format!("{:?}", format!("{}/", idp.issuer()))),
        "the output should name both issuers and OIDC_ISSUER_URL: {}",
        describe(&output)
    );
    assert_no_panic(&output);
}

#[test]
fn serve_refuses_to_start_on_an_issuer_mismatch() {
    let idp = idp();
    let mut env = mismatched_env(&idp);
    let port = free_port();
    env.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    let mut command = Command::new(BIN);
    command.env_clear().envs(&env);
    // It must exit by itself: run_with_timeout panics if it is still running after the timeout.
    let started = Instant::now();
    let output = run_with_timeout(command, Duration::from_secs(20));
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("OIDC_ISSUER_URL") && stderr.contains(&format!("{:?}", idp.issuer())),
        "serve should name the mismatch: {}",
        describe(&output)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_no_panic(&output);
    // And it does not keep the port.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn healthcheck_reports_a_running_instance_and_a_closed_port() {
    let idp = idp();
    let mut instance = Portcullis::reserve();
    instance.start(test_env(&idp, "http://127.0.0.1:8080", None));

    let mut env = HashMap::new();
    env.insert("LISTEN_ADDR".to_string(), instance.hostport());
    let output = portcullis(&["healthcheck"], &env);
    assert!(output.status.success(), "{}", describe(&output));

    // The port of a stopped instance (and 0.0.0.0 as in containers: the port is what counts).
    instance.stop();
    env.insert(
        "LISTEN_ADDR".to_string(),
        format!("0.0.0.0:{}", instance.port()),
    );
    let output = portcullis(&["healthcheck"], &env);
    assert!(!output.status.success(), "{}", describe(&output));
    assert!(
        text(&output.stderr).contains("healthz"),
        "{}",
        describe(&output)
    );
    assert_no_panic(&output);
}
