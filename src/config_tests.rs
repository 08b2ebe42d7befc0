use std::collections::HashMap;

use super::*;

fn minimal() -> HashMap<String, String> {
    [
        ("OIDC_ISSUER_URL", "https://idp.example.com/realms/acme"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "client-secret-value"),
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn with(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = minimal();
    for (k, v) in pairs {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

fn problems(env: HashMap<String, String>) -> Vec<String> {
    match Config::from_env_map(env) {
        Ok(_) => Vec::new(),
        Err(err) => err.problems,
    }
}

#[test]
fn minimal_environment_gives_documented_defaults() {
    let config = Config::from_env_map(minimal()).expect("valid");
    assert_eq!(config.scopes, ["openid", "profile", "email"]);
    assert_eq!(config.username_claim, "sub");
    assert_eq!(config.groups_claim, "groups");
    assert_eq!(config.token_auth_method, TokenAuthMethod::ClientSecretBasic);
    assert_eq!(config.cookie_name, "_portcullis");
    assert!(config.cookie_secure);
    assert_eq!(config.session_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(config.listen_addr.to_string(), "0.0.0.0:4180");
    assert_eq!(config.log_format, LogFormat::Text);
    assert!(config.redis_url.is_none());
    assert!(config.warnings.iter().any(|w| w.contains("REDIS_URL")));
    let base = Url::parse("https://auth.example.com/").expect("url");
    assert!(config
        .allowed_redirects
        .check("https://auth.example.com/app", &base)
        .is_some());
    assert!(config
        .allowed_redirects
        .check("https://evil.example.net/", &base)
        .is_none());
}

#[test]
fn empty_environment_lists_every_required_variable_at_once() {
    let problems = problems(HashMap::new());
    for name in [
        "OIDC_ISSUER_URL",
        "OIDC_CLIENT_ID",
        "OIDC_CLIENT_SECRET",
        "OIDC_REDIRECT_URL",
        "COOKIE_SECRET",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(name)),
            "{name} missing from {problems:?}"
        );
    }
}

#[test]
fn several_bad_values_are_all_reported() {
    let problems = problems(with(&[
        ("COOKIE_SECURE", "maybe"),
        ("SESSION_LIFETIME", "forever"),
        ("LISTEN_ADDR", "here"),
        ("LOG_FORMAT", "xml"),
        ("OIDC_TOKEN_AUTH_METHOD", "private_key_jwt"),
        ("REQUIRE_GROUP", "^"),
        ("GROUP_MAP", "{not json"),
        ("TRUSTED_PROXIES", "10.0.0.0/33"),
        ("ALLOWED_REDIRECT_DOMAINS", "https://x.example.com/path"),
    ]));
    for name in [
        "COOKIE_SECURE",
        "SESSION_LIFETIME",
        "LISTEN_ADDR",
        "LOG_FORMAT",
        "OIDC_TOKEN_AUTH_METHOD",
        "REQUIRE_GROUP",
        "GROUP_MAP",
        "TRUSTED_PROXIES",
        "ALLOWED_REDIRECT_DOMAINS",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(name)),
            "{name} missing from {problems:?}"
        );
    }
}

#[test]
fn short_cookie_secret_is_refused_with_a_way_to_make_one() {
    let problems = problems(with(&[("COOKIE_SECRET", "short")]));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("openssl rand"));
    assert!(
        !problems[0].contains("short\""),
        "the secret itself must not be echoed"
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let config = Config::from_env_map(with(&[(
        "REDIS_URL",
        "redis://:topsecretpw@127.0.0.1:6379",
    )]))
    .expect("valid");
    let debug = format!("{config:?}");
    for secret in [
        "client-secret-value",
        "0123456789abcdef0123456789abcdef",
        "topsecretpw",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
    }
    let problems = problems(with(&[("REDIS_URL", "http://:topsecretpw@host")]));
    assert!(problems.iter().all(|p| !p.contains("topsecretpw")));
}

#[test]
fn secrets_can_come_from_files_but_not_both_ways() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("secret");
    std::fs::write(&path, "file-secret-file-secret-file-secret\n").expect("write");
    let mut env = minimal();
    env.remove("COOKIE_SECRET");
    env.insert(
        "COOKIE_SECRET_FILE".into(),
        path.to_string_lossy().into_owned(),
    );
    let config = Config::from_env_map(env.clone()).expect("valid");
    assert_eq!(
        config.cookie_secret.expose(),
        "file-secret-file-secret-file-secret"
    );

    env.insert("COOKIE_SECRET".into(), "x".repeat(40));
    assert!(problems(env.clone()).iter().any(|p| p.contains("not both")));

    env.remove("COOKIE_SECRET");
    env.insert("COOKIE_SECRET_FILE".into(), "/nonexistent/secret".into());
    assert!(problems(env)
        .iter()
        .any(|p| p.starts_with("COOKIE_SECRET_FILE")));
}

#[test]
fn issuer_accepts_the_full_discovery_url() {
    let config = Config::from_env_map(with(&[(
        "OIDC_ISSUER_URL",
        "https://idp.example.com/realms/acme/.well-known/openid-configuration",
    )]))
    .expect("valid");
    assert_eq!(config.issuer_url, "https://idp.example.com/realms/acme");
    assert_eq!(
        config.discovery_url(),
        "https://idp.example.com/realms/acme/.well-known/openid-configuration"
    );
}

#[test]
fn redirect_url_must_be_our_callback_path() {
    let problems = problems(with(&[(
        "OIDC_REDIRECT_URL",
        "https://auth.example.com/callback",
    )]));
    assert!(problems[0].starts_with("OIDC_REDIRECT_URL"));
}

#[test]
fn mutable_username_claims_warn() {
    let config = Config::from_env_map(with(&[("OIDC_USERNAME_CLAIM", "email")])).expect("valid");
    assert!(config
        .warnings
        .iter()
        .any(|w| w.contains("OIDC_USERNAME_CLAIM")));
}

#[test]
fn unknown_variables_with_our_prefixes_warn() {
    let config = Config::from_env_map(with(&[("OIDC_CLIENTID", "x")])).expect("valid");
    assert!(config.warnings.iter().any(|w| w.contains("OIDC_CLIENTID")));
}

#[test]
fn openid_scope_is_always_requested() {
    let config = Config::from_env_map(with(&[("OIDC_SCOPES", "profile groups")])).expect("valid");
    assert_eq!(config.scopes, ["openid", "profile", "groups"]);
}

#[test]
fn empty_values_count_as_unset() {
    let config =
        Config::from_env_map(with(&[("REDIS_URL", ""), ("COOKIE_SECURE", " ")])).expect("valid");
    assert!(config.redis_url.is_none());
    assert!(config.cookie_secure);
}

#[test]
fn readme_configuration_table_lists_exactly_the_variables_read() {
    let readme = include_str!("../README.md");
    let mut documented: Vec<&str> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .filter(|name| {
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
        })
        .collect();
    documented.sort_unstable();
    documented.dedup();
    let mut read: Vec<&str> = ENV_VARIABLES.to_vec();
    read.sort_unstable();
    assert_eq!(
        documented, read,
        "README configuration table vs ENV_VARIABLES"
    );
}

#[test]
fn host_prefixed_cookie_names_refuse_a_domain_or_plain_http() {
    assert!(problems(with(&[("COOKIE_NAME", "__Host-portcullis")])).is_empty());
    let both = problems(with(&[
        ("COOKIE_NAME", "__Host-portcullis"),
        ("COOKIE_DOMAIN", ".example.com"),
        ("COOKIE_SECURE", "false"),
    ]));
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both
        .iter()
        .all(|p| p.starts_with("COOKIE_NAME=__Host-portcullis")));
    assert!(both.iter().any(|p| p.contains("COOKIE_DOMAIN")));
    assert!(both.iter().any(|p| p.contains("COOKIE_SECURE=true")));
    let secure_prefix = problems(with(&[
        ("COOKIE_NAME", "__Secure-portcullis"),
        ("COOKIE_SECURE", "false"),
    ]));
    assert_eq!(secure_prefix.len(), 1, "{secure_prefix:?}");
    assert!(problems(with(&[
        ("COOKIE_NAME", "__Secure-portcullis"),
        ("COOKIE_DOMAIN", ".example.com"),
    ]))
    .is_empty());
}

#[test]
fn session_lifetime_is_bounded_by_what_browsers_keep() {
    for ok in ["1m", "12h", "400d"] {
        assert!(
            problems(with(&[("SESSION_LIFETIME", ok)])).is_empty(),
            "{ok}"
        );
    }
    for bad in [
        "401d",
        "2y",
        "99999999999999999999y",
        "18446744073709551615s",
    ] {
        let found = problems(with(&[("SESSION_LIFETIME", bad)]));
        assert_eq!(found.len(), 1, "{bad}: {found:?}");
        assert!(found[0].starts_with("SESSION_LIFETIME"), "{bad}: {found:?}");
    }
}

#[test]
fn a_plain_http_issuer_off_this_machine_is_warned_about() {
    let warned = |issuer: &str| {
        Config::from_env_map(with(&[("OIDC_ISSUER_URL", issuer)]))
            .expect("valid")
            .warnings
            .iter()
            .any(|w| w.starts_with("OIDC_ISSUER_URL") && w.contains("plain http"))
    };
    assert!(warned("http://idp.example.com/realms/acme"));
    assert!(warned("http://10.0.0.5:8080"));
    assert!(!warned("https://idp.example.com"));
    assert!(!warned("http://127.0.0.1:8080"));
    assert!(!warned("http://[::1]:8080"));
    assert!(!warned("http://localhost:8080"));
}
