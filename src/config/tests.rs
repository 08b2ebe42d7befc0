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
    assert_eq!(
        config.first_provider().scopes,
        ["openid", "profile", "email"]
    );
    assert_eq!(config.first_provider().username_claim, "sub");
    assert_eq!(config.first_provider().groups_claim, "groups");
    assert_eq!(
        config.first_provider().client_auth.method(),
        TokenAuthMethod::ClientSecretBasic
    );
    assert_eq!(config.cookie_name, "_portcullis");
    assert!(config.cookie_secure);
    assert_eq!(config.session_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(config.listen_addr.to_string(), "0.0.0.0:4180");
    assert_eq!(config.log_format, LogFormat::Text);
    assert!(config.store.redis.is_none());
    assert!(config.warnings.iter().any(|w| w.contains("REDIS_URL")));
    let base = Url::parse("https://auth.example.com/").expect("url");
    assert!(config
        .allowed_redirects
        .resolve("https://auth.example.com/app", &base)
        .is_some());
    assert!(config
        .allowed_redirects
        .resolve("https://evil.example.net/", &base)
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
        ("OIDC_TOKEN_AUTH_METHOD", "client_secret_jwt"),
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
    assert_eq!(
        config.first_provider().issuer_url,
        "https://idp.example.com/realms/acme"
    );
    assert_eq!(
        config.first_provider().discovery_url(),
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
    assert_eq!(
        config.first_provider().scopes,
        ["openid", "profile", "groups"]
    );
}

#[test]
fn empty_values_count_as_unset() {
    let config =
        Config::from_env_map(with(&[("REDIS_URL", ""), ("COOKIE_SECURE", " ")])).expect("valid");
    assert!(config.store.redis.is_none());
    assert!(config.cookie_secure);
}

/// The rows of the README's configuration table, in order.
fn readme_rows(readme: &str) -> Vec<&str> {
    readme
        .lines()
        .skip_while(|line| *line != "## Configuration")
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter(|line| line.starts_with("| `"))
        .collect()
}

#[test]
fn readme_configuration_table_is_the_variable_table() {
    let documented = readme_rows(include_str!("../../README.md"));
    let expected: Vec<String> = VARIABLES.iter().map(Variable::readme_row).collect();
    let missing: Vec<&String> = expected
        .iter()
        .filter(|row| !documented.contains(&row.as_str()))
        .collect();
    let stale: Vec<&&str> = documented
        .iter()
        .filter(|row| !expected.iter().any(|e| e == *row))
        .collect();
    assert!(
        documented == expected,
        "the README's configuration table differs from VARIABLES (src/config/variables.rs).\n\
         rows to add or fix:\n{}\n\nrows to remove:\n{}\n\nthe whole table, in order:\n{}",
        missing
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        stale.iter().map(|r| **r).collect::<Vec<_>>().join("\n"),
        expected.join("\n")
    );
}

#[test]
fn env_variables_are_the_names_in_the_table() {
    let names: Vec<&str> = VARIABLES.iter().map(|v| v.name).collect();
    assert_eq!(ENV_VARIABLES, names.as_slice());
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "a variable is listed twice");
    for variable in VARIABLES {
        assert!(
            SECTIONS.contains(&variable.section),
            "{} has a section --help leaves out",
            variable.name
        );
    }
}

#[test]
fn bearer_tokens_need_their_audiences_and_audiences_need_bearer_tokens() {
    let config = Config::from_env_map(minimal()).expect("valid");
    assert_eq!(config.bearer, None);
    let config = Config::from_env_map(with(&[
        ("BEARER_TOKENS", "true"),
        ("BEARER_AUDIENCES", " https://api.example.com , billing ,"),
    ]))
    .expect("valid");
    assert_eq!(
        config.bearer.map(|b| b.audiences),
        Some(vec![
            "https://api.example.com".to_string(),
            "billing".to_string()
        ])
    );
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("BEARER_TOKENS", "true")], "BEARER_AUDIENCES is required"),
        (
            &[("BEARER_TOKENS", "true"), ("BEARER_AUDIENCES", " , ")],
            "BEARER_AUDIENCES is required",
        ),
        (
            &[("BEARER_AUDIENCES", "https://api.example.com")],
            "BEARER_TOKENS is not true",
        ),
        (
            &[
                ("BEARER_TOKENS", "false"),
                ("BEARER_AUDIENCES", "https://api.example.com"),
            ],
            "BEARER_TOKENS is not true",
        ),
        (
            &[("BEARER_TOKENS", "maybe")],
            "BEARER_TOKENS: expected true or false",
        ),
    ];
    for (env, expected) in cases {
        let found = problems(with(env));
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "{env:?}: {found:?}"
        );
    }
}

/// What an unset variable with a value default became, written as the table writes it.
fn unset_value(config: &Config, name: &str) -> String {
    let method = config.first_provider().client_auth.method().as_str();
    let format = match config.log_format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    match name {
        "OIDC_SCOPES" => config.first_provider().scopes.join(" "),
        "OIDC_USERNAME_CLAIM" => config.first_provider().username_claim.clone(),
        "OIDC_GROUPS_CLAIM" => config.first_provider().groups_claim.clone(),
        "OIDC_TOKEN_AUTH_METHOD" => method.to_string(),
        "OIDC_ALLOW_UNVERIFIED_EMAIL" => config.allow_unverified_email.to_string(),
        "COOKIE_NAME" => config.cookie_name.clone(),
        "COOKIE_SECURE" => config.cookie_secure.to_string(),
        "SESSION_LIFETIME" => humantime::format_duration(config.session_lifetime).to_string(),
        "SESSION_REFRESH_INTERVAL" => {
            humantime::format_duration(Duration::from_secs(config.session_refresh.interval))
                .to_string()
        }
        "SESSION_REFRESH_GRACE" => {
            humantime::format_duration(Duration::from_secs(config.session_refresh.grace))
                .to_string()
        }
        "ALLOW_ENCODED_SLASHES" => config.allow_encoded_slashes.to_string(),
        "REDIS_TIMEOUT" => humantime::format_duration(config.store.redis_timeout()).to_string(),
        "SESSION_CACHE_TTL" => humantime::format_duration(config.store.cache.ttl).to_string(),
        "SESSION_CACHE_SIZE" => config.store.cache.size.to_string(),
        "LISTEN_ADDR" => config.listen_addr.to_string(),
        "SHUTDOWN_DELAY" => humantime::format_duration(config.shutdown_delay).to_string(),
        "LOG_FORMAT" => format.to_string(),
        "LOG_CLAIMS" => config.log_claims.to_string(),
        "ACCESS_LOG" => config.access_log.to_string(),
        "ALLOW_LOGIN_WITHOUT_GROUPS" => config.rules.allow_login_without_groups.to_string(),
        "GROUP_MAP_STRICT" => config.rules.group_map_strict.to_string(),
        "UPSTREAM_JWT" => config.upstream_jwt.is_some().to_string(),
        "SIGN_IN_TITLE" => config.sign_in.title.clone(),
        // Read for every configuration, kept only by Entra providers.
        "ENTRA_GRAPH_URL" | "ENTRA_GROUP_NAMES" => {
            let mut env = minimal();
            env.insert("OIDC_PROVIDER_KIND".into(), "entra".into());
            let entra = Config::from_env_map(env).expect("valid");
            let graph = entra.first_provider().entra.clone().expect("entra");
            match name {
                "ENTRA_GRAPH_URL" => graph.graph_url.as_str().trim_end_matches('/').to_string(),
                _ => graph.group_names.to_string(),
            }
        }
        "BEARER_TOKENS" => config.bearer.is_some().to_string(),
        other => panic!("{other} has a value default: add it here"),
    }
}

#[test]
fn value_defaults_in_the_table_are_what_the_code_uses() {
    let config = Config::from_env_map(minimal()).expect("valid");
    for variable in VARIABLES {
        if let Unset::Value(value) = variable.default {
            assert_eq!(
                unset_value(&config, variable.name),
                value,
                "{} unset",
                variable.name
            );
        }
    }
}

#[test]
fn help_lists_every_variable_with_its_default() {
    let help = variables_help();
    for variable in VARIABLES {
        let line = help
            .lines()
            .find(|line| line.split_whitespace().next() == Some(variable.name))
            .unwrap_or_else(|| panic!("{} missing from {help}", variable.name));
        assert!(
            line.ends_with(&variable.default.plain()),
            "{line:?} lacks its default"
        );
    }
    // Names padded to the longest one, then the default.
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    assert!(help.contains(&format!("{:width$}  0.0.0.0:4180\n", "LISTEN_ADDR")));
    assert!(help.contains(&format!(
        "{:width$}  required (or _FILE), unless private_key_jwt\n",
        "OIDC_CLIENT_SECRET"
    )));
    assert!(!help.contains('`'), "markdown in {help}");
}

#[test]
fn misspelt_variables_are_told_the_closest_real_one() {
    for (set, expected) in [
        ("COKIE_SECRET", Some("did you mean COOKIE_SECRET?")),
        ("OIDC_CLIENTID", Some("did you mean OIDC_CLIENT_ID?")),
        ("OIDC_ISUER_URL", Some("did you mean OIDC_ISSUER_URL?")),
        ("ODIC_ISSUER_URL", Some("did you mean OIDC_ISSUER_URL?")),
        ("OIDC_REDIRECT_URI", Some("did you mean OIDC_REDIRECT_URL?")),
        ("SESSION_LIFETIM", Some("did you mean SESSION_LIFETIME?")),
        (
            "COOKIE_SECRE",
            Some("did you mean COOKIE_SECRET or COOKIE_SECURE?"),
        ),
        ("cookie_secret", Some("did you mean COOKIE_SECRET?")),
        ("REDIS_ULR", Some("did you mean REDIS_URL?")),
        ("REDIS_URI", Some("did you mean REDIS_URL?")),
        ("TRUSTED_PROXYS", Some("did you mean TRUSTED_PROXIES?")),
        ("TRUSTED_PROXY", Some("did you mean TRUSTED_PROXIES?")),
        ("LISTEN_ADDRESS", Some("did you mean LISTEN_ADDR?")),
        ("ADMIN", Some("did you mean ADMINS?")),
        ("DEFAULT_GROUP", Some("did you mean DEFAULT_GROUPS?")),
        (
            "ALLOWED_REDIRECT_DOMAIN",
            Some("did you mean ALLOWED_REDIRECT_DOMAINS?"),
        ),
        // Prefixed like ours but like none of ours: still a warning, without a guess.
        ("OIDC_AUDIENCE", Some("does not read it (a typo?)")),
        ("COOKIE_SAMESITE", Some("does not read it (a typo?)")),
        ("PORTCULLIS_PORT", Some("does not read it (a typo?)")),
        // Other programs' variables.
        ("PATH", None),
        ("HOME", None),
        ("HOSTNAME", None),
        ("RUST_LOG", None),
        ("LOG_LEVEL", None),
        ("REDIS_HOST", None),
        ("REDIS_PORT", None),
        ("LISTEN_PORT", None),
        ("ALLOWED_HOSTS", None),
    ] {
        let config = Config::from_env_map(with(&[(set, "x")])).expect("valid");
        let about: Vec<&String> = config
            .warnings
            .iter()
            .filter(|w| w.starts_with(&format!("{set} ")))
            .collect();
        match expected {
            Some(text) => assert!(
                about.len() == 1 && about[0].ends_with(text),
                "{set}: {about:?}"
            ),
            None => assert!(about.is_empty(), "{set}: {about:?}"),
        }
    }
}

#[test]
fn a_refused_configuration_shows_the_misspelt_name_behind_a_missing_one() {
    let mut env = with(&[("COKIE_SECRET", "0123456789abcdef0123456789abcdef")]);
    env.remove("COOKIE_SECRET");
    let err = Config::from_env_map(env).expect_err("no COOKIE_SECRET");
    assert_eq!(err.problems.len(), 1, "{err}");
    assert!(err.problems[0].starts_with("COOKIE_SECRET"), "{err}");
    let shown = err.to_string();
    assert!(
        shown.ends_with(
            "possibly related:\n  - COKIE_SECRET is set but portcullis does not read it: \
             did you mean COOKIE_SECRET?\n"
        ),
        "{shown}"
    );
    assert!(!shown.contains("0123456789abcdef"), "values are not shown");
    let quiet = Config::from_env_map(HashMap::new()).expect_err("empty");
    assert!(!quiet.to_string().contains("possibly related"), "{quiet}");
}

#[test]
fn our_own_variables_are_never_suggested_against() {
    for name in ENV_VARIABLES {
        assert_eq!(suggest::did_you_mean(name), [*name], "{name}");
    }
    let config = Config::from_env_map(with(&[("REDIS_URL_FILE", "")])).expect("valid");
    assert!(config.warnings.iter().all(|w| !w.contains("did you mean")));
}

#[test]
fn edit_distance_counts_a_swap_as_one_edit() {
    for (a, b, distance) in [
        ("", "", 0),
        ("", "abc", 3),
        ("REDIS_URL", "REDIS_URL", 0),
        ("REDIS_ULR", "REDIS_URL", 1),
        ("COKIE_SECRET", "COOKIE_SECRET", 1),
        ("TRUSTED_PROXYS", "TRUSTED_PROXIES", 2),
        ("kitten", "sitting", 3),
        ("ca", "abc", 3),
    ] {
        assert_eq!(suggest::edit_distance(a, b), distance, "{a} / {b}");
        assert_eq!(suggest::edit_distance(b, a), distance, "{b} / {a}");
    }
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

#[test]
fn idle_timeout_is_off_unless_set_and_bounded_by_the_lifetime() {
    let config = Config::from_env_map(minimal()).expect("valid");
    assert_eq!(config.session_idle_timeout, None);
    for (idle, lifetime, expected) in [
        ("1m", "12h", Duration::from_secs(60)),
        ("30m", "12h", Duration::from_secs(30 * 60)),
        ("12h", "12h", Duration::from_secs(12 * 3600)),
        ("2h", "1d", Duration::from_secs(2 * 3600)),
    ] {
        let config = Config::from_env_map(with(&[
            ("SESSION_IDLE_TIMEOUT", idle),
            ("SESSION_LIFETIME", lifetime),
        ]))
        .unwrap_or_else(|e| panic!("{idle} within {lifetime}: {e}"));
        assert_eq!(config.session_idle_timeout, Some(expected), "{idle}");
    }
    for (idle, lifetime) in [
        ("59s", "12h"),
        ("0s", "12h"),
        ("soon", "12h"),
        ("13h", "12h"),
        ("31m", "30m"),
        ("401d", "400d"),
    ] {
        let found = problems(with(&[
            ("SESSION_IDLE_TIMEOUT", idle),
            ("SESSION_LIFETIME", lifetime),
        ]));
        assert_eq!(found.len(), 1, "{idle} within {lifetime}: {found:?}");
        assert!(
            found[0].starts_with("SESSION_IDLE_TIMEOUT"),
            "{idle}: {found:?}"
        );
    }
}

const ADMIN_TOKEN: &str = "admin-token-0123456789abcdef-0123456789";

#[test]
fn the_admin_listener_is_off_unless_an_address_and_a_token_are_set() {
    let config = Config::from_env_map(minimal()).expect("valid");
    assert!(config.admin.is_none());
    let config = Config::from_env_map(with(&[
        ("ADMIN_ADDR", "127.0.0.1:4181"),
        ("ADMIN_TOKEN", ADMIN_TOKEN),
    ]))
    .expect("valid");
    let admin = config.admin.expect("admin listener");
    assert_eq!(admin.addr.to_string(), "127.0.0.1:4181");
    assert_eq!(admin.token.expose(), ADMIN_TOKEN);
    assert!(!format!("{:?}", config.warnings).contains("ADMIN"));

    // From a file too, and a token alone is only a warning.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("admin_token");
    std::fs::write(&path, format!("{ADMIN_TOKEN}\n")).expect("write");
    let file = path.to_string_lossy().into_owned();
    let config = Config::from_env_map(with(&[
        ("ADMIN_ADDR", "[::1]:4181"),
        ("ADMIN_TOKEN_FILE", &file),
    ]))
    .expect("valid");
    assert_eq!(config.admin.expect("admin").token.expose(), ADMIN_TOKEN);
    let config = Config::from_env_map(with(&[("ADMIN_TOKEN", ADMIN_TOKEN)])).expect("valid");
    assert!(config.admin.is_none());
    assert!(config
        .warnings
        .iter()
        .any(|w| w.starts_with("ADMIN_TOKEN is set but ADMIN_ADDR is not")));
}

#[test]
fn admin_settings_that_cannot_work_are_refused_one_problem_each() {
    let long = "x".repeat(32);
    for (env, starts) in [
        (
            vec![("ADMIN_ADDR", "127.0.0.1:4181")],
            "ADMIN_ADDR is set but ADMIN_TOKEN",
        ),
        (
            vec![("ADMIN_ADDR", "127.0.0.1:4181"), ("ADMIN_TOKEN", "short")],
            "ADMIN_TOKEN must be at least 32 bytes (it has 5)",
        ),
        (
            vec![
                ("ADMIN_ADDR", "127.0.0.1:4181"),
                ("ADMIN_TOKEN", "with a space but long enough to pass"),
            ],
            "ADMIN_TOKEN must be printable ASCII",
        ),
        (
            vec![
                ("ADMIN_ADDR", "127.0.0.1:4181"),
                ("ADMIN_TOKEN", ADMIN_TOKEN),
                ("ADMIN_TOKEN_FILE", "/nonexistent/admin_token"),
            ],
            "set either ADMIN_TOKEN or ADMIN_TOKEN_FILE",
        ),
        (
            vec![
                ("ADMIN_ADDR", "127.0.0.1:4181"),
                ("ADMIN_TOKEN_FILE", "/nonexistent/admin_token"),
            ],
            "ADMIN_TOKEN_FILE: cannot read",
        ),
        (
            vec![("ADMIN_ADDR", "localhost"), ("ADMIN_TOKEN", ADMIN_TOKEN)],
            "ADMIN_ADDR: \"localhost\" is not an address",
        ),
        (
            vec![
                ("ADMIN_ADDR", "127.0.0.1:4180"),
                ("LISTEN_ADDR", "127.0.0.1:4180"),
                ("ADMIN_TOKEN", ADMIN_TOKEN),
            ],
            "ADMIN_ADDR 127.0.0.1:4180 must differ from LISTEN_ADDR",
        ),
        (
            // The default LISTEN_ADDR is 0.0.0.0:4180, which takes 4180 everywhere.
            vec![("ADMIN_ADDR", "127.0.0.1:4180"), ("ADMIN_TOKEN", &long)],
            "ADMIN_ADDR 127.0.0.1:4180 must differ from LISTEN_ADDR 0.0.0.0:4180",
        ),
    ] {
        let found = problems(with(&env));
        assert_eq!(found.len(), 1, "{env:?}: {found:?}");
        assert!(found[0].starts_with(starts), "{env:?}: {found:?}");
        assert!(!found[0].contains(ADMIN_TOKEN), "the token is never shown");
    }
}

#[test]
fn an_admin_listener_off_loopback_is_warned_about() {
    let warned = |addr: &str| {
        Config::from_env_map(with(&[("ADMIN_ADDR", addr), ("ADMIN_TOKEN", ADMIN_TOKEN)]))
            .expect("valid")
            .warnings
            .iter()
            .any(|w| w.starts_with(&format!("ADMIN_ADDR {addr} is not a loopback address")))
    };
    assert!(warned("0.0.0.0:4181"));
    assert!(warned("10.0.0.5:4181"));
    assert!(!warned("127.0.0.1:4181"));
    assert!(!warned("[::1]:4181"));
}

#[test]
fn listeners_overlap_on_the_same_port_of_a_shared_address() {
    for (a, b, overlap) in [
        ("127.0.0.1:4180", "127.0.0.1:4180", true),
        ("0.0.0.0:4180", "127.0.0.1:4180", true),
        ("127.0.0.1:4180", "0.0.0.0:4180", true),
        ("[::]:4180", "127.0.0.1:4180", true),
        ("[::1]:4180", "[::1]:4180", true),
        ("127.0.0.1:4180", "127.0.0.1:4181", false),
        ("127.0.0.1:4180", "127.0.0.2:4180", false),
        ("0.0.0.0:4180", "0.0.0.0:4181", false),
        // Port 0: each listener gets a free port of its own.
        ("127.0.0.1:0", "127.0.0.1:0", false),
        ("0.0.0.0:0", "127.0.0.1:0", false),
    ] {
        let (a, b) = (a.parse().expect("addr"), b.parse().expect("addr"));
        assert_eq!(sections::listeners_overlap(a, b), overlap, "{a} / {b}");
    }
}

#[test]
fn revalidation_takes_seconds_zero_turns_it_off_and_bad_values_are_problems() {
    use crate::lifecycle::RefreshTiming;
    type Case<'a> = (&'a [(&'a str, &'a str)], Result<(u64, u64), &'a str>);
    let cases: &[Case] = &[
        (&[], Ok((300, 900))),
        (&[("SESSION_REFRESH_INTERVAL", "10s")], Ok((10, 900))),
        (&[("SESSION_REFRESH_INTERVAL", "0")], Ok((0, 900))),
        (
            &[
                ("SESSION_REFRESH_INTERVAL", "1s"),
                ("SESSION_REFRESH_GRACE", "0"),
            ],
            Ok((1, 0)),
        ),
        (&[("SESSION_REFRESH_GRACE", "1h")], Ok((300, 3600))),
        (
            &[("SESSION_REFRESH_INTERVAL", "soon")],
            Err("SESSION_REFRESH_INTERVAL: \"soon\" is not a duration"),
        ),
        (
            &[("SESSION_REFRESH_GRACE", "1500ms")],
            Err("SESSION_REFRESH_GRACE: \"1500ms\" is not a whole number of seconds"),
        ),
        (
            &[("SESSION_REFRESH_INTERVAL", "500d")],
            Err("SESSION_REFRESH_INTERVAL: \"500d\" is longer than 400 days"),
        ),
    ];
    for (pairs, expected) in cases {
        match (Config::from_env_map(with(pairs)), expected) {
            (Ok(config), Ok((interval, grace))) => assert_eq!(
                config.session_refresh,
                RefreshTiming {
                    interval: *interval,
                    grace: *grace
                },
                "{pairs:?}"
            ),
            (Err(err), Err(part)) => assert!(
                err.problems.iter().any(|p| p.starts_with(part)),
                "{pairs:?}: {err}"
            ),
            (result, expected) => panic!("{pairs:?}: expected {expected:?}, got {result:?}"),
        }
    }
}

#[test]
fn redis_topologies() {
    let config = Config::from_env_map(with(&[
        (
            "REDIS_SENTINEL_URLS",
            "redis://10.0.0.1:26379,redis://10.0.0.2:26379",
        ),
        ("REDIS_SENTINEL_MASTER", "mymaster"),
        ("REDIS_PASSWORD", "data-pw"),
        ("REDIS_SENTINEL_PASSWORD", "sentinel-pw"),
        ("REDIS_TIMEOUT", "250ms"),
    ]))
    .expect("valid");
    let redis = config.store.redis.expect("redis");
    assert_eq!(redis.timeout, Duration::from_millis(250));
    assert_eq!(
        redis.password.map(|p| p.expose().to_string()).as_deref(),
        Some("data-pw")
    );
    match redis.topology {
        RedisTopology::Sentinel {
            sentinels,
            master,
            password,
        } => {
            assert_eq!(sentinels.len(), 2);
            assert_eq!(sentinels[1].url(), "redis://10.0.0.2:26379");
            assert_eq!(master, "mymaster");
            assert!(password.is_some());
        }
        other => panic!("{other:?}"),
    }

    let config = Config::from_env_map(with(&[(
        "REDIS_CLUSTER_URLS",
        "rediss://a:7000, rediss://b:7000",
    )]))
    .expect("valid");
    let redis = config.store.redis.expect("redis");
    assert!(
        matches!(&redis.topology, RedisTopology::Cluster { seeds } if seeds.len() == 2 && seeds[0].tls)
    );
    assert_eq!(redis.timeout, Duration::from_millis(500));
    assert_eq!(config.store.cache.ttl, Duration::from_secs(10));
    assert_eq!(config.store.cache.size, 100_000);
}

/// An environment on top of the minimal one, and parts of the problems it must produce.
type ProblemCase<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn redis_configuration_problems_are_all_named() {
    let cases: &[ProblemCase] = &[
        (
            &[
                ("REDIS_URL", "redis://a"),
                ("REDIS_CLUSTER_URLS", "redis://b:1"),
            ],
            &["REDIS_URL and REDIS_CLUSTER_URLS are set"],
        ),
        (
            &[
                ("REDIS_URL", "redis://a"),
                ("REDIS_SENTINEL_URLS", "redis://b:1"),
                ("REDIS_SENTINEL_MASTER", "m"),
                ("REDIS_CLUSTER_URLS", "redis://c:1"),
            ],
            &["REDIS_URL and REDIS_SENTINEL_URLS and REDIS_CLUSTER_URLS are set"],
        ),
        (
            &[("REDIS_SENTINEL_URLS", "redis://b:1")],
            &["REDIS_SENTINEL_URLS needs REDIS_SENTINEL_MASTER"],
        ),
        (
            &[("REDIS_SENTINEL_MASTER", "m")],
            &["REDIS_SENTINEL_MASTER is set without REDIS_SENTINEL_URLS"],
        ),
        (
            &[("REDIS_URL", "redis://a"), ("REDIS_SENTINEL_PASSWORD", "x")],
            &["REDIS_SENTINEL_PASSWORD is set without REDIS_SENTINEL_URLS"],
        ),
        (&[("REDIS_PASSWORD", "x")], &["but no Redis is"]),
        (
            &[("REDIS_URL", "redis://:pw@a"), ("REDIS_PASSWORD", "x")],
            &["set it once"],
        ),
        (
            // An invalid list still counts as set: two topologies, and what is wrong.
            &[
                ("REDIS_URL", "redis://a"),
                ("REDIS_CLUSTER_URLS", "http://b:1"),
            ],
            &["REDIS_CLUSTER_URLS: ", "are set"],
        ),
        (
            &[("REDIS_CLUSTER_URLS", "redis://:pw@b:1")],
            &["must not carry credentials"],
        ),
        (
            &[("REDIS_URL", "redis://a"), ("REDIS_TIMEOUT", "0")],
            &["REDIS_TIMEOUT: "],
        ),
        (
            &[("REDIS_URL", "redis://a"), ("SESSION_CACHE_TTL", "1h")],
            &["SESSION_CACHE_TTL: "],
        ),
        (
            &[("REDIS_URL", "redis://a"), ("SESSION_CACHE_SIZE", "none")],
            &["SESSION_CACHE_SIZE: "],
        ),
    ];
    for (env, expected) in cases {
        let found = problems(with(env));
        for part in *expected {
            assert!(
                found.iter().any(|p| p.contains(part)),
                "{env:?}: wanted {part:?} in {found:?}"
            );
        }
        for problem in &found {
            assert!(!problem.contains("pw@"), "a password was echoed: {problem}");
        }
    }
}

#[test]
fn the_cache_is_off_with_zero_and_said_to_do_nothing_without_redis() {
    let config = Config::from_env_map(with(&[
        ("REDIS_URL", "redis://a"),
        ("SESSION_CACHE_TTL", "0"),
    ]))
    .expect("valid");
    assert!(!config.store.cache.enabled());
    let config = Config::from_env_map(with(&[("SESSION_CACHE_TTL", "5s")])).expect("valid");
    assert!(config
        .warnings
        .iter()
        .any(|w| w.contains("no effect with the in-memory store")));
}

#[test]
fn the_shutdown_delay_is_a_duration_zero_is_none_and_an_hour_at_most() {
    let cases: &[(&str, Result<u64, &str>)] = &[
        ("2s", Ok(2)),
        ("0", Ok(0)),
        ("30s", Ok(30)),
        ("1m", Ok(60)),
        ("1h", Ok(3600)),
        ("2h", Err("SHUTDOWN_DELAY: \"2h\" is longer than an hour")),
        ("soon", Err("SHUTDOWN_DELAY: \"soon\" is not a duration")),
        ("-1s", Err("SHUTDOWN_DELAY: \"-1s\" is not a duration")),
        (
            "500ms",
            Err("SHUTDOWN_DELAY: \"500ms\" is not a whole number of seconds"),
        ),
    ];
    for (value, expected) in cases {
        match (
            Config::from_env_map(with(&[("SHUTDOWN_DELAY", value)])),
            expected,
        ) {
            (Ok(config), Ok(secs)) => {
                assert_eq!(config.shutdown_delay, Duration::from_secs(*secs), "{value}")
            }
            (Err(err), Err(part)) => assert!(
                err.problems.iter().any(|p| p.starts_with(part)),
                "{value}: {err}"
            ),
            (result, expected) => panic!("{value}: expected {expected:?}, got {result:?}"),
        }
    }
    let config = Config::from_env_map(minimal()).expect("valid");
    assert_eq!(config.shutdown_delay, Duration::from_secs(2));
    assert!(!config.access_log);
    let config = Config::from_env_map(with(&[("ACCESS_LOG", "true")])).expect("valid");
    assert!(config.access_log);
}

/// Two named providers and nothing unprefixed.
fn two_providers(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = minimal();
    for name in ["OIDC_ISSUER_URL", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"] {
        env.remove(name);
    }
    for (k, v) in [
        ("OIDC_PROVIDERS", "keycloak, my-google"),
        (
            "OIDC_KEYCLOAK_ISSUER_URL",
            "https://kc.example.com/realms/acme",
        ),
        ("OIDC_KEYCLOAK_CLIENT_ID", "portcullis"),
        ("OIDC_KEYCLOAK_CLIENT_SECRET", "kc-secret"),
        ("OIDC_KEYCLOAK_GROUPS_CLAIM", "realm_access.roles"),
        ("OIDC_MY_GOOGLE_ISSUER_URL", "https://accounts.google.com"),
        ("OIDC_MY_GOOGLE_CLIENT_ID", "google-client"),
        ("OIDC_MY_GOOGLE_CLIENT_SECRET", "google-secret"),
        ("OIDC_MY_GOOGLE_DISPLAY_NAME", "Google Workspace"),
        ("OIDC_MY_GOOGLE_TOKEN_AUTH_METHOD", "client_secret_post"),
        ("OIDC_MY_GOOGLE_GROUP_MAP", r#"{"a@example.com": "admins"}"#),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

#[test]
fn several_providers_each_read_their_own_variables() {
    let config = Config::from_env_map(two_providers(&[])).unwrap();
    assert!(config.several_providers());
    let [keycloak, google] = config.providers.as_slice() else {
        panic!("{:?}", config.providers);
    };
    assert_eq!(keycloak.name.as_deref(), Some("keycloak"));
    assert_eq!(keycloak.display_name, "keycloak");
    assert_eq!(keycloak.issuer_url, "https://kc.example.com/realms/acme");
    assert_eq!(keycloak.groups_claim, "realm_access.roles");
    assert_eq!(keycloak.username_claim, "sub");
    assert_eq!(keycloak.scopes, ["openid", "profile", "email"]);
    assert_eq!(keycloak.group_map, None);
    assert_eq!(
        keycloak.callback_url(&config.redirect_url).as_str(),
        "https://auth.example.com/oauth2/callback/keycloak"
    );
    assert_eq!(google.name.as_deref(), Some("my-google"));
    assert_eq!(google.display_name, "Google Workspace");
    assert_eq!(
        google.client_auth.secret().map(Secret::expose),
        Some("google-secret")
    );
    assert_eq!(
        google.client_auth.method(),
        TokenAuthMethod::ClientSecretPost
    );
    assert!(google.rules.group_map.contains("a@example.com"));
    assert!(config.rules.qualified_users);
    // No warning calls the prefixed variables unread.
    assert!(
        !config.warnings.iter().any(|w| w.contains("OIDC_")),
        "{:?}",
        config.warnings
    );
}

#[test]
fn one_named_provider_takes_bare_and_qualified_users() {
    let mut env = two_providers(&[
        ("OIDC_PROVIDERS", "keycloak"),
        ("ADMINS", "alice,keycloak:bob"),
    ]);
    for suffix in [
        "ISSUER_URL",
        "CLIENT_ID",
        "CLIENT_SECRET",
        "DISPLAY_NAME",
        "TOKEN_AUTH_METHOD",
        "GROUP_MAP",
    ] {
        env.remove(&format!("OIDC_MY_GOOGLE_{suffix}"));
    }
    let config = Config::from_env_map(env).unwrap();
    assert!(!config.several_providers());
    assert!(!config.rules.qualified_users);
    assert_eq!(config.first_provider().name.as_deref(), Some("keycloak"));
}

#[test]
fn provider_configuration_problems_are_all_named() {
    let cases: Vec<(&str, HashMap<String, String>, Vec<&str>)> = vec![
        (
            "unprefixed provider variables beside OIDC_PROVIDERS",
            two_providers(&[
                ("OIDC_ISSUER_URL", "https://idp.example.com"),
                ("OIDC_CLIENT_SECRET_FILE", "/run/secret"),
            ]),
            vec![
                "OIDC_ISSUER_URL is set together with OIDC_PROVIDERS",
                "OIDC_CLIENT_SECRET_FILE is set together with OIDC_PROVIDERS",
            ],
        ),
        (
            "a typo in a provider's prefix",
            two_providers(&[("OIDC_KEYCLAOK_SCOPES", "openid groups")]),
            vec!["OIDC_KEYCLAOK_SCOPES is set for a provider named \"keyclaok\", which OIDC_PROVIDERS does not list: did you mean \"keycloak\" (OIDC_KEYCLOAK_SCOPES)?"],
        ),
        (
            "a prefixed variable without OIDC_PROVIDERS",
            with(&[("OIDC_GOOGLE_CLIENT_ID", "x")]),
            vec!["OIDC_GOOGLE_CLIENT_ID is set for a provider named \"google\", but OIDC_PROVIDERS is not set"],
        ),
        (
            "a listed provider's required variables",
            {
                let mut env = two_providers(&[]);
                env.remove("OIDC_KEYCLOAK_CLIENT_ID");
                env.remove("OIDC_MY_GOOGLE_CLIENT_SECRET");
                env
            },
            vec![
                "OIDC_KEYCLOAK_CLIENT_ID is required",
                "OIDC_MY_GOOGLE_CLIENT_SECRET (or OIDC_MY_GOOGLE_CLIENT_SECRET_FILE) is required",
            ],
        ),
        (
            "names that are not names",
            two_providers(&[("OIDC_PROVIDERS", "Keycloak,keycloak,keycloak")]),
            vec![
                "OIDC_PROVIDERS: \"Keycloak\" is not a provider name (lower-case letters, digits and inner hyphens); \"keycloak\" is named twice",
            ]),
        (
            "bare admins with several providers",
            two_providers(&[("ADMINS", "alice, keycloak:bob, okta:carol")]),
            vec![
                "ADMINS: \"alice\" does not name its provider",
                "ADMINS: \"okta:carol\" does not name its provider",
            ],
        ),
        (
            "a logo that is not a web address",
            with(&[("SIGN_IN_LOGO_URL", "javascript:alert(1)")]),
            vec!["SIGN_IN_LOGO_URL: expected an https:// address"],
        ),
    ];
    for (what, env, expected) in cases {
        let found = problems(env);
        for text in &expected {
            assert!(
                found.iter().any(|p| p.contains(text)),
                "{what}: {text:?} not in {found:#?}"
            );
        }
        assert_eq!(found.len(), expected.len(), "{what}: {found:#?}");
    }
}

#[test]
fn the_provider_kind_is_set_or_detected_from_an_entra_issuer() {
    let kind = |env: HashMap<String, String>| {
        let config = Config::from_env_map(env).expect("valid");
        let provider = config.first_provider().clone();
        (provider.kind, provider.entra.is_some())
    };
    let entra_issuer = "https://login.microsoftonline.com/0b1c5e2a-tenant/v2.0";
    type Case<'a> = (&'a [(&'a str, &'a str)], (ProviderKind, bool));
    let cases: &[Case] = &[
        (&[], (ProviderKind::Generic, false)),
        (
            &[("OIDC_ISSUER_URL", entra_issuer)],
            (ProviderKind::Entra, true),
        ),
        (
            &[
                ("OIDC_ISSUER_URL", entra_issuer),
                ("OIDC_PROVIDER_KIND", "generic"),
            ],
            (ProviderKind::Generic, false),
        ),
        (
            &[("OIDC_PROVIDER_KIND", "Entra")],
            (ProviderKind::Entra, true),
        ),
        // Only the real sign-in host, over https, is detected.
        (
            &[(
                "OIDC_ISSUER_URL",
                "https://login.microsoftonline.com.example/t/v2.0",
            )],
            (ProviderKind::Generic, false),
        ),
        (
            &[("OIDC_ISSUER_URL", "http://login.microsoftonline.com/t/v2.0")],
            (ProviderKind::Generic, false),
        ),
    ];
    for (pairs, expected) in cases {
        assert_eq!(kind(with(pairs)), *expected, "{pairs:?}");
    }
    let config = Config::from_env_map(with(&[
        ("OIDC_PROVIDER_KIND", "entra"),
        ("ENTRA_GRAPH_URL", "http://127.0.0.1:9999/"),
        ("ENTRA_GROUP_NAMES", "true"),
    ]))
    .expect("valid");
    let graph = config.first_provider().entra.clone().expect("entra");
    assert_eq!(graph.graph_url.as_str(), "http://127.0.0.1:9999/");
    assert!(graph.group_names);
    assert!(
        !config.warnings.iter().any(|w| w.contains("ENTRA")),
        "{:?}",
        config.warnings
    );

    // Per provider, and only the providers of that kind read Graph.
    let config = Config::from_env_map(two_providers(&[("OIDC_MY_GOOGLE_PROVIDER_KIND", "entra")]))
        .expect("valid");
    assert_eq!(config.providers[0].kind, ProviderKind::Generic);
    assert!(config.providers[0].entra.is_none());
    assert_eq!(config.providers[1].kind, ProviderKind::Entra);
    assert!(config.providers[1].entra.is_some());
}

#[test]
fn entra_settings_that_cannot_work_are_problems_and_unused_ones_warn() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("OIDC_PROVIDER_KIND", "azure")],
            "OIDC_PROVIDER_KIND: expected generic or entra",
        ),
        (
            &[("ENTRA_GRAPH_URL", "graph.microsoft.com")],
            "ENTRA_GRAPH_URL: \"graph.microsoft.com\" is not a URL",
        ),
        (
            &[("ENTRA_GRAPH_URL", "ftp://graph.example")],
            "must be an http(s) URL",
        ),
        (
            &[("ENTRA_GRAPH_URL", "https://graph.example/?x=1")],
            "must not have a query or fragment",
        ),
        (
            &[("ENTRA_GRAPH_URL", "https://graph.example/#f")],
            "must not have a query or fragment",
        ),
        (
            &[("ENTRA_GRAPH_URL", "https://u:p@graph.example/")],
            "must not have a user name",
        ),
        (
            &[("ENTRA_GROUP_NAMES", "maybe")],
            "ENTRA_GROUP_NAMES: expected true or false",
        ),
    ];
    for (pairs, text) in cases {
        let found = problems(with(pairs));
        assert_eq!(found.len(), 1, "{pairs:?}: {found:?}");
        assert!(found[0].contains(text), "{pairs:?}: {found:?}");
    }
    // The unprefixed kind beside OIDC_PROVIDERS, and a typo in a provider's prefix.
    let found = problems(two_providers(&[("OIDC_PROVIDER_KIND", "entra")]));
    assert!(
        found
            .iter()
            .any(|p| p.contains("OIDC_PROVIDER_KIND is set together with OIDC_PROVIDERS")),
        "{found:?}"
    );
    let found = problems(two_providers(&[("OIDC_KEYCLAOK_PROVIDER_KIND", "entra")]));
    assert!(
        found
            .iter()
            .any(|p| p.contains("did you mean \"keycloak\" (OIDC_KEYCLOAK_PROVIDER_KIND)")),
        "{found:?}"
    );
    // Graph settings without an Entra provider do nothing: said so. Plain http elsewhere: warned.
    let config = Config::from_env_map(with(&[("ENTRA_GROUP_NAMES", "true")])).expect("valid");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("no provider is of kind entra")),
        "{:?}",
        config.warnings
    );
    let config = Config::from_env_map(with(&[
        ("OIDC_PROVIDER_KIND", "entra"),
        ("ENTRA_GRAPH_URL", "http://graph.example"),
    ]))
    .expect("valid");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("ENTRA_GRAPH_URL http://graph.example is plain http")),
        "{:?}",
        config.warnings
    );
}

/// The test keys of `src/assertion_testdata/`, by file name.
fn assertion_key(name: &str) -> String {
    format!(
        "{}/src/assertion_testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn upstream_jwt_is_off_unless_set_and_derives_its_key_from_the_cookie_secret() {
    let off = Config::from_env_map(minimal()).expect("valid");
    assert!(off.upstream_jwt.is_none());
    let on = Config::from_env_map(with(&[("UPSTREAM_JWT", "true")])).expect("valid");
    let again = Config::from_env_map(with(&[("UPSTREAM_JWT", "yes")])).expect("valid");
    let other = Config::from_env_map(with(&[
        ("UPSTREAM_JWT", "true"),
        ("COOKIE_SECRET", "another secret, another secret!!"),
    ]))
    .expect("valid");
    let kid = |config: &Config| {
        let jwt = config.upstream_jwt.as_ref().expect("on");
        assert!(jwt.previous_key.is_none());
        jwt.key.kid().to_string()
    };
    assert_eq!(kid(&on), kid(&again), "every replica signs alike");
    assert_ne!(kid(&on), kid(&other));

    let from_files = Config::from_env_map(with(&[
        ("UPSTREAM_JWT", "true"),
        ("UPSTREAM_JWT_KEY_FILE", &assertion_key("p256-sec1.pem")),
        ("UPSTREAM_JWT_PREVIOUS_KEY_FILE", ""),
    ]))
    .expect("valid");
    let jwt = from_files.upstream_jwt.expect("on");
    assert_ne!(jwt.key.kid(), kid(&on));
    assert!(jwt.previous_key.is_none(), "empty means unset");
    let rotating = Config::from_env_map(with(&[
        ("UPSTREAM_JWT", "true"),
        (
            "UPSTREAM_JWT_PREVIOUS_KEY_FILE",
            &assertion_key("p256-pkcs8.pem"),
        ),
    ]))
    .expect("valid")
    .upstream_jwt
    .expect("on");
    assert_eq!(rotating.key.kid(), kid(&on));
    assert_eq!(rotating.previous_key.as_ref(), Some(&jwt.key));
}

#[test]
fn bad_upstream_jwt_key_files_are_startup_problems_naming_the_file() {
    let missing = assertion_key("no-such-key.pem");
    let p384 = assertion_key("p384-pkcs8.pem");
    let rsa = format!(
        "{}/src/oidc/testdata/rsa-test-key.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let public = assertion_key("p256-public.pem");
    let cases = [
        (&missing, "cannot read"),
        (&p384, "is not a P-256 private key"),
        (&rsa, "is not a P-256 private key"),
        (&public, "holds no PEM private key"),
    ];
    for (path, says) in cases {
        for name in ["UPSTREAM_JWT_KEY_FILE", "UPSTREAM_JWT_PREVIOUS_KEY_FILE"] {
            let found = problems(with(&[("UPSTREAM_JWT", "true"), (name, path.as_str())]));
            assert_eq!(found.len(), 1, "{found:?}");
            let problem = &found[0];
            assert!(problem.starts_with(name), "{problem}");
            assert!(problem.contains(path.as_str()), "{problem}");
            assert!(problem.contains(says), "{problem}");
            assert!(!problem.contains("MII"), "key material in {problem}");
        }
    }
    // Both at once, with every other problem.
    let found = problems(with(&[
        ("UPSTREAM_JWT", "true"),
        ("UPSTREAM_JWT_KEY_FILE", &p384),
        ("UPSTREAM_JWT_PREVIOUS_KEY_FILE", &missing),
        ("COOKIE_NAME", "bad name"),
    ]));
    assert_eq!(found.len(), 3, "{found:?}");
}

#[test]
fn upstream_jwt_key_files_need_upstream_jwt_and_two_different_keys() {
    let key = assertion_key("p256-pkcs8.pem");
    for flag in [None, Some("false")] {
        let mut env = with(&[
            ("UPSTREAM_JWT_KEY_FILE", &key),
            ("UPSTREAM_JWT_PREVIOUS_KEY_FILE", &key),
        ]);
        if let Some(flag) = flag {
            env.insert("UPSTREAM_JWT".into(), flag.into());
        }
        let found = problems(env);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found
            .iter()
            .all(|p| p.contains("is set but UPSTREAM_JWT is not true")));
    }
    let found = problems(with(&[
        ("UPSTREAM_JWT", "true"),
        ("UPSTREAM_JWT_KEY_FILE", &key),
        (
            "UPSTREAM_JWT_PREVIOUS_KEY_FILE",
            &assertion_key("p256-sec1.pem"),
        ),
    ]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("holds the current signing key"),
        "{found:?}"
    );
    assert_eq!(
        problems(with(&[("UPSTREAM_JWT", "maybe")])),
        vec!["UPSTREAM_JWT: expected true or false, got \"maybe\"".to_string()]
    );
}

#[test]
fn redis_tls_files_are_read_checked_and_need_a_rediss_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca = file(
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let key = file(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nsecret-key-bytes\n-----END PRIVATE KEY-----\n",
    );
    let missing = dir.path().join("nope.pem").to_str().unwrap().to_string();
    let tls = "rediss://127.0.0.1:6380";

    let config = Config::from_env_map(with(&[
        ("REDIS_URL", tls),
        ("REDIS_CA_FILE", &ca),
        ("REDIS_CLIENT_CERT_FILE", &ca),
        ("REDIS_CLIENT_KEY_FILE", &key),
    ]))
    .expect("valid");
    let settings = config.store.redis.expect("redis").tls;
    assert!(settings.ca.expect("ca").contains("BEGIN CERTIFICATE"));
    let client = settings.client.expect("client certificate");
    assert!(client.key.expose().contains("secret-key-bytes"));
    assert!(!format!("{client:?}").contains("secret-key-bytes"));
    // A sentinel or cluster list with a rediss:// node uses them too.
    for (name, value) in [
        (
            "REDIS_CLUSTER_URLS",
            "rediss://127.0.0.1:7000,rediss://127.0.0.1:7001",
        ),
        ("REDIS_SENTINEL_URLS", "rediss://127.0.0.1:26379"),
    ] {
        let mut env = with(&[(name, value), ("REDIS_CA_FILE", &ca)]);
        env.insert("REDIS_SENTINEL_MASTER".into(), "main".into());
        if name == "REDIS_CLUSTER_URLS" {
            env.remove("REDIS_SENTINEL_MASTER");
        }
        let config = Config::from_env_map(env).expect("valid");
        assert!(
            config.store.redis.expect("redis").tls.ca.is_some(),
            "{name}"
        );
    }

    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            &[("REDIS_URL", "redis://127.0.0.1:6379"), ("REDIS_CA_FILE", &ca)],
            "REDIS_CA_FILE set, but no Redis address is rediss:// (TLS): they would never be used",
        ),
        (
            &[("REDIS_CLIENT_CERT_FILE", &ca), ("REDIS_CLIENT_KEY_FILE", &key)],
            "REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE set, but no Redis address is rediss://",
        ),
        (
            &[("REDIS_URL", tls), ("REDIS_CA_FILE", &missing)],
            "REDIS_CA_FILE: cannot read",
        ),
        (
            &[("REDIS_URL", tls), ("REDIS_CA_FILE", &key)],
            "REDIS_CA_FILE: ",
        ),
        (
            &[("REDIS_URL", tls), ("REDIS_CLIENT_CERT_FILE", &ca)],
            "REDIS_CLIENT_CERT_FILE is set without REDIS_CLIENT_KEY_FILE",
        ),
        (
            &[("REDIS_URL", tls), ("REDIS_CLIENT_KEY_FILE", &key)],
            "REDIS_CLIENT_KEY_FILE is set without REDIS_CLIENT_CERT_FILE",
        ),
        (
            &[
                ("REDIS_URL", tls),
                ("REDIS_CLIENT_CERT_FILE", &ca),
                ("REDIS_CLIENT_KEY_FILE", &ca),
            ],
            "REDIS_CLIENT_KEY_FILE: ",
        ),
    ];
    for (env, expected) in cases {
        let found = problems(with(env));
        assert_eq!(found.len(), 1, "{env:?}: {found:?}");
        assert!(found[0].starts_with(expected), "{env:?}: {found:?}");
        assert!(!found[0].contains("secret-key-bytes"), "{found:?}");
    }
    // A file of the wrong kind is named with the block it lacks.
    let found = problems(with(&[("REDIS_URL", tls), ("REDIS_CA_FILE", &key)]));
    assert!(
        found[0].contains("holds no PEM block \"BEGIN CERTIFICATE\""),
        "{found:?}"
    );
}
