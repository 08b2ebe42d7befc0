//! A real browser: Debian's Chromium, driven by tests/browser/login.mjs (playwright-core),
//! signs in through Traefik and the test IdP's form, meets the 403 page, signs out with its
//! button, and is asked to sign in again. Screenshots go to target/test-artifacts/browser/.
//! With two providers (tests/browser/providers.mjs), it lands on the sign-in page, chooses one
//! and signs in there; screenshots in target/test-artifacts/browser-providers/.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::providers::{
    ProviderOptions, ProviderStack, CORP_DISPLAY, PARTNER, PARTNER_DISPLAY, SIGN_IN_TITLE,
};
use crate::stack::{Options, Stack};
use crate::support::idp::PASSWORD;
use crate::support::paths::{find_program, repo_root};
use crate::support::process::run_with_timeout;

/// Global rules as in rules.rs; examples/traefik/dynamic.yml narrows /ops/ to the group "ops".
const RULES: &[(&str, &str)] = &[
    ("REQUIRE_GROUP", "ops,dev,^RT_"),
    ("ALLOWED_EMAIL_DOMAINS", "example.com,example.org"),
    ("ADMINS", "carol"),
    ("GROUP_MAP", r#"{"ACME, Inc": "acme"}"#),
];

const CHROMIUM: &str = "/usr/bin/chromium";
/// The script bounds itself at 120 s; this is the backstop.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// `<target>/test-artifacts/<name>`: one folder per test, which each empties first.
fn artifact_dir(name: &str) -> PathBuf {
    // CARGO_TARGET_DIR may move target/; the test binary lives in <target>/<profile>/deps/.
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("test-artifacts").join(name)
}

/// An empty `artifact_dir(name)`: stale screenshots of an earlier run must not pass for this
/// one's.
fn fresh_artifact_dir(name: &str) -> PathBuf {
    let artifacts = artifact_dir(name);
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts)
        .unwrap_or_else(|e| panic!("create {}: {e}", artifacts.display()));
    artifacts
}

/// A screenshot the script must have left, and not an empty one.
fn assert_screenshot(artifacts: &std::path::Path, shot: &str) {
    let path = artifacts.join(shot);
    let size = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()))
        .len();
    assert!(size > 1000, "{} is only {size} bytes", path.display());
}

/// Fails (never skips) with the install command when something is missing.
fn require_browser_setup() -> PathBuf {
    let mut missing = Vec::new();
    let node = find_program("node");
    if node.is_none() {
        missing.push("node is not installed: apt-get install -y nodejs npm".to_string());
    }
    if !PathBuf::from(CHROMIUM).is_file() {
        missing.push(format!(
            "{CHROMIUM} is not installed: apt-get install -y chromium"
        ));
    }
    if !repo_root()
        .join("tests/browser/node_modules/playwright-core/package.json")
        .is_file()
    {
        missing.push(format!(
            "the browser test's npm packages are not installed: npm ci --prefix tests/browser   (in {})",
            repo_root().display()
        ));
    }
    assert!(
        missing.is_empty(),
        "the real-browser test cannot run (scripts/install-test-deps.sh installs all of this):\n  {}",
        missing.join("\n  ")
    );
    node.expect("node")
}

#[test]
fn chromium_signs_in_meets_the_403_page_and_signs_out() {
    let node = require_browser_setup();
    let artifacts = fresh_artifact_dir("browser");

    let stack = Stack::start(Options {
        env: RULES,
        idp_logout: true,
        ..Options::default()
    });

    let mut command = Command::new(node);
    command
        .arg(repo_root().join("tests/browser/login.mjs"))
        .arg(stack.base())
        .arg(&artifacts)
        .current_dir(repo_root());
    let output = run_with_timeout(command, SCRIPT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed ({}); artifacts in {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n\
         --- IdP log ---\n{}\n--- Traefik log ---\n{}",
        output.status,
        artifacts.display(),
        stack.idp.log_tail(30),
        stack.proxy.log_tail(30),
    );
    assert!(stdout.contains("browser test: PASSED"), "{stdout}");
    for shot in ["forbidden.png", "signed-out.png"] {
        assert_screenshot(&artifacts, shot);
    }
}

#[tokio::test]
async fn chromium_chooses_a_provider_on_the_sign_in_page_and_signs_in_there() {
    let node = require_browser_setup();
    let artifacts = fresh_artifact_dir("browser-providers");
    let stack = ProviderStack::start(ProviderOptions::default());
    // partner's alice is not corp's: the app must get partner's email.
    stack
        .partner
        .set_claims(
            "alice",
            serde_json::json!({"email": "alice@partner.example"}),
        )
        .await;
    let expectations = serde_json::json!({
        "title": SIGN_IN_TITLE,
        "buttons": [
            format!("Sign in with {CORP_DISPLAY}"),
            format!("Sign in with {PARTNER_DISPLAY}"),
        ],
        "choose": format!("Sign in with {PARTNER_DISPLAY}"),
        "idp_origin": stack.partner.issuer(),
        "provider": PARTNER,
        "user": "alice",
        "password": PASSWORD,
        "email": "alice@partner.example",
    });

    let mut command = Command::new(node);
    command
        .arg(repo_root().join("tests/browser/providers.mjs"))
        .arg(stack.base())
        .arg(&artifacts)
        .arg(expectations.to_string())
        .current_dir(repo_root());
    // Blocks this test's runtime, which nothing needs meanwhile: portcullis and the app run on
    // threads of their own, the IdPs and the proxy are processes.
    let output = run_with_timeout(command, SCRIPT_TIMEOUT);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser script failed ({}); artifacts in {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\n\
         --- partner IdP log ---\n{}\n--- Traefik log ---\n{}",
        output.status,
        artifacts.display(),
        stack.partner.log_tail(30),
        stack.proxy.log_tail(30),
    );
    assert!(stdout.contains("browser test: PASSED"), "{stdout}");
    for shot in ["sign-in.png", "landed.png"] {
        assert_screenshot(&artifacts, shot);
    }
}
