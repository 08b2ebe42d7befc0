//! Configuration from environment variables only.
//!
//! The environment is read once into a flat [`RawEnv`] (every field a string, so that envy never
//! stops at the first bad value), then converted into a typed [`Config`]. The conversion collects
//! every problem, so an operator fixes a broken deployment in one round.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::forwarded::TrustedProxies;
use crate::policy::{self, GlobalRules};
use crate::redirect::AllowedRedirects;
use crate::secret::Secret;

/// Every variable portcullis reads. The README's configuration table is checked against this list.
pub const ENV_VARIABLES: &[&str] = &[
    "OIDC_ISSUER_URL",
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_CLIENT_SECRET_FILE",
    "OIDC_REDIRECT_URL",
    "OIDC_POST_LOGOUT_REDIRECT_URL",
    "OIDC_SCOPES",
    "OIDC_USERNAME_CLAIM",
    "OIDC_GROUPS_CLAIM",
    "OIDC_TOKEN_AUTH_METHOD",
    "OIDC_ALLOW_UNVERIFIED_EMAIL",
    "REDIS_URL",
    "REDIS_URL_FILE",
    "COOKIE_SECRET",
    "COOKIE_SECRET_FILE",
    "COOKIE_NAME",
    "COOKIE_DOMAIN",
    "COOKIE_SECURE",
    "SESSION_LIFETIME",
    "ALLOWED_REDIRECT_DOMAINS",
    "TRUSTED_PROXIES",
    "ALLOW_ENCODED_SLASHES",
    "LISTEN_ADDR",
    "LOG_FORMAT",
    "LOG_CLAIMS",
    "REQUIRE_GROUP",
    "ALLOW_LOGIN_WITHOUT_GROUPS",
    "ADMINS",
    "GROUP_MAP",
    "GROUP_MAP_STRICT",
    "DEFAULT_GROUPS",
    "ALLOWED_EMAIL_DOMAINS",
];

/// Prefixes of our variables: a variable with one of them that we do not read is probably a typo.
const OWN_PREFIXES: &[&str] = &["OIDC_", "COOKIE_", "SESSION_", "PORTCULLIS_"];

const MIN_COOKIE_SECRET_BYTES: usize = 32;

/// The environment as read, before validation.
#[derive(Debug, Default, Deserialize)]
struct RawEnv {
    oidc_issuer_url: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
    oidc_client_secret_file: Option<String>,
    oidc_redirect_url: Option<String>,
    oidc_post_logout_redirect_url: Option<String>,
    oidc_scopes: Option<String>,
    oidc_username_claim: Option<String>,
    oidc_groups_claim: Option<String>,
    oidc_token_auth_method: Option<String>,
    oidc_allow_unverified_email: Option<String>,
    redis_url: Option<String>,
    redis_url_file: Option<String>,
    cookie_secret: Option<String>,
    cookie_secret_file: Option<String>,
    cookie_name: Option<String>,
    cookie_domain: Option<String>,
    cookie_secure: Option<String>,
    session_lifetime: Option<String>,
    allowed_redirect_domains: Option<String>,
    trusted_proxies: Option<String>,
    allow_encoded_slashes: Option<String>,
    listen_addr: Option<String>,
    log_format: Option<String>,
    log_claims: Option<String>,
    require_group: Option<String>,
    allow_login_without_groups: Option<String>,
    admins: Option<String>,
    group_map: Option<String>,
    group_map_strict: Option<String>,
    default_groups: Option<String>,
    allowed_email_domains: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration, shared read-only by every request.
#[derive(Debug, Clone)]
pub struct Config {
    /// The issuer exactly as the provider must name itself (discovery suffix removed).
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_url: Url,
    /// When set, sign-out also ends the session at the IdP (RP-initiated logout), which sends
    /// the browser back here.
    pub post_logout_redirect_url: Option<Url>,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    pub token_auth_method: TokenAuthMethod,
    /// Forward emails the IdP does not say are verified (off: only `email_verified: true`
    /// emails reach the app).
    pub allow_unverified_email: bool,
    pub redis_url: Option<Secret>,
    pub cookie_secret: Secret,
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    pub cookie_secure: bool,
    pub session_lifetime: Duration,
    pub allowed_redirects: AllowedRedirects,
    pub trusted_proxies: TrustedProxies,
    /// Let `%2F`/`%5C` through in the original request's path (dot segments never pass).
    pub allow_encoded_slashes: bool,
    pub listen_addr: SocketAddr,
    pub log_format: LogFormat,
    /// Log the full merged claims at debug level (off by default: claims are personal data).
    pub log_claims: bool,
    pub rules: GlobalRules,
    /// Things that work but deserve the operator's attention, logged once at startup.
    pub warnings: Vec<String>,
}

/// Every problem found in the environment, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem{}):",
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for problem in &self.problems {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_process_env() -> Result<Config, ConfigError> {
        Self::from_env_map(std::env::vars().collect())
    }

    /// Reads configuration from a map of variables (tests pass their own instead of mutating
    /// the process environment, which races in multi-threaded tests).
    pub fn from_env_map(env: HashMap<String, String>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        for name in env.keys() {
            let ours = OWN_PREFIXES.iter().any(|p| name.starts_with(p));
            if ours && !ENV_VARIABLES.contains(&name.as_str()) {
                warnings.push(format!(
                    "{name} is set but portcullis does not read it (a typo?)"
                ));
            }
        }
        // Empty values count as unset: compose files often carry `FOO=` lines.
        let relevant = env
            .into_iter()
            .filter(|(k, v)| ENV_VARIABLES.contains(&k.as_str()) && !v.trim().is_empty());
        let raw: RawEnv = match envy::from_iter(relevant) {
            Ok(raw) => raw,
            Err(err) => {
                problems.push(format!("environment could not be read: {err}"));
                RawEnv::default()
            }
        };
        let mut check = Checker { problems, warnings };
        let config = check.build(raw);
        match config {
            Some(config) if check.problems.is_empty() => Ok(Config {
                warnings: check.warnings,
                ..config
            }),
            _ => Err(ConfigError {
                problems: check.problems,
            }),
        }
    }

    /// The issuer's discovery document address.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer_url.trim_end_matches('/')
        )
    }
}

struct Checker {
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Checker {
    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn required(&mut self, name: &str, value: Option<String>) -> Option<String> {
        if value.is_none() {
            self.problem(format!("{name} is required"));
        }
        value
    }

    /// A secret given directly or as a file path (`NAME_FILE`), but not both.
    fn secret(
        &mut self,
        name: &str,
        direct: Option<String>,
        file: Option<String>,
        required: bool,
    ) -> Option<Secret> {
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(format!("set either {name} or {name}_FILE, not both"));
                None
            }
            (Some(value), None) => Some(Secret::new(value)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                // Files written by editors and `echo` end with a newline that is not part of it.
                Ok(text) if !text.trim_end_matches(['\n', '\r']).is_empty() => {
                    Some(Secret::new(text.trim_end_matches(['\n', '\r'])))
                }
                Ok(_) => {
                    self.problem(format!("{name}_FILE: the file {path} is empty"));
                    None
                }
                Err(err) => {
                    self.problem(format!("{name}_FILE: cannot read {path}: {err}"));
                    None
                }
            },
            (None, None) => {
                if required {
                    self.problem(format!("{name} (or {name}_FILE) is required"));
                }
                None
            }
        }
    }

    fn boolean(&mut self, name: &str, value: Option<String>, default: bool) -> bool {
        match value.as_deref().map(|v| v.trim().to_ascii_lowercase()) {
            None => default,
            Some(v) if ["true", "1", "yes", "on"].contains(&v.as_str()) => true,
            Some(v) if ["false", "0", "no", "off"].contains(&v.as_str()) => false,
            Some(v) => {
                self.problem(format!("{name}: expected true or false, got {v:?}"));
                default
            }
        }
    }

    fn parsed<T>(
        &mut self,
        name: &str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = value?;
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.problem(format!("{name}: {err}"));
                None
            }
        }
    }

    fn build(&mut self, raw: RawEnv) -> Option<Config> {
        let issuer_url = self.required("OIDC_ISSUER_URL", raw.oidc_issuer_url);
        let issuer_url = self.parsed("OIDC_ISSUER_URL", issuer_url, parse_issuer);
        if let Some(url) = issuer_url.as_deref().and_then(|i| Url::parse(i).ok()) {
            if url.scheme() == "http" && !is_loopback_host(&url) {
                self.warnings.push(format!(
                    "OIDC_ISSUER_URL {} is plain http: signing keys and tokens travel \
                     unprotected; use https",
                    url.as_str().trim_end_matches('/')
                ));
            }
        }
        let client_id = self.required("OIDC_CLIENT_ID", raw.oidc_client_id);
        let client_secret = self.secret(
            "OIDC_CLIENT_SECRET",
            raw.oidc_client_secret,
            raw.oidc_client_secret_file,
            true,
        );
        let redirect_url = self.required("OIDC_REDIRECT_URL", raw.oidc_redirect_url);
        let redirect_url = self.parsed("OIDC_REDIRECT_URL", redirect_url, |v| {
            parse_own_url(v, "/oauth2/callback")
        });
        let post_logout_redirect_url = self.parsed(
            "OIDC_POST_LOGOUT_REDIRECT_URL",
            raw.oidc_post_logout_redirect_url,
            |v| parse_own_url(v, "/oauth2/signed_out"),
        );
        let scopes = parse_scopes(raw.oidc_scopes.as_deref());
        let username_claim = raw.oidc_username_claim.unwrap_or_else(|| "sub".to_string());
        if ["email", "preferred_username", "name", "upn"].contains(&username_claim.as_str()) {
            self.warnings.push(format!(
                "OIDC_USERNAME_CLAIM={username_claim}: users may be able to change this claim at \
                 the IdP and so become someone else in your apps; `sub` is stable"
            ));
        }
        let groups_claim = raw
            .oidc_groups_claim
            .unwrap_or_else(|| "groups".to_string());
        let token_auth_method = match raw.oidc_token_auth_method.as_deref() {
            None | Some("client_secret_basic") => TokenAuthMethod::ClientSecretBasic,
            Some("client_secret_post") => TokenAuthMethod::ClientSecretPost,
            Some(other) => {
                self.problem(format!(
                    "OIDC_TOKEN_AUTH_METHOD: expected client_secret_basic or client_secret_post, \
                     got {other:?}"
                ));
                TokenAuthMethod::ClientSecretBasic
            }
        };
        let allow_unverified_email = self.boolean(
            "OIDC_ALLOW_UNVERIFIED_EMAIL",
            raw.oidc_allow_unverified_email,
            false,
        );
        if allow_unverified_email {
            self.warnings.push(
                "OIDC_ALLOW_UNVERIFIED_EMAIL=true: emails the IdP does not say are verified are \
                 sent to the app; anyone who can set an unverified address at the IdP can claim it"
                    .to_string(),
            );
        }
        let redis_url = self.secret("REDIS_URL", raw.redis_url, raw.redis_url_file, false);
        if let Some(url) = &redis_url {
            let scheme_ok = url.expose().starts_with("redis://")
                || url.expose().starts_with("rediss://")
                || url.expose().starts_with("redis+unix://")
                || url.expose().starts_with("unix://");
            if !scheme_ok || Url::parse(url.expose()).is_err() {
                // The URL may hold a password: describe it, do not print it.
                self.problem(
                    "REDIS_URL: expected a redis://, rediss:// or unix:// URL".to_string(),
                );
            }
        } else {
            self.warnings.push(
                "REDIS_URL is not set: sessions are kept in memory, lost on restart and not \
                 shared between replicas"
                    .to_string(),
            );
        }
        let cookie_secret = self.secret(
            "COOKIE_SECRET",
            raw.cookie_secret,
            raw.cookie_secret_file,
            false,
        );
        let cookie_secret = match cookie_secret {
            Some(secret) if secret.expose().len() >= MIN_COOKIE_SECRET_BYTES => Some(secret),
            Some(secret) => {
                self.problem(format!(
                    "COOKIE_SECRET must be at least {MIN_COOKIE_SECRET_BYTES} bytes (it has {}); \
                     generate one with: {}",
                    secret.expose().len(),
                    SECRET_HOWTO
                ));
                None
            }
            None => {
                let already = self.problems.iter().any(|p| p.starts_with("COOKIE_SECRET"));
                if !already {
                    self.problem(format!(
                        "COOKIE_SECRET (or COOKIE_SECRET_FILE) is required; generate one with: \
                         {SECRET_HOWTO}"
                    ));
                }
                None
            }
        };
        let cookie_name = raw.cookie_name.unwrap_or_else(|| "_portcullis".to_string());
        if !is_cookie_name(&cookie_name) {
            self.problem(format!(
                "COOKIE_NAME: {cookie_name:?} is not a valid cookie name (letters, digits, - and _)"
            ));
        }
        let cookie_domain = raw.cookie_domain.map(|d| d.trim().to_ascii_lowercase());
        if let Some(domain) = &cookie_domain {
            let bare = domain.trim_start_matches('.');
            if bare.is_empty() || url::Host::parse(bare).is_err() || bare.contains(':') {
                self.problem(format!("COOKIE_DOMAIN: {domain:?} is not a host name"));
            }
        }
        let cookie_secure = self.boolean("COOKIE_SECURE", raw.cookie_secure, true);
        // Browsers drop `__Host-` cookies unless Secure, Path=/ and without Domain, and
        // `__Secure-` cookies unless Secure: a setting that contradicts that would fail silently.
        if cookie_name.starts_with("__Host-") {
            if cookie_domain.is_some() {
                self.problem(format!(
                    "COOKIE_NAME={cookie_name} (a __Host- name) cannot be combined with \
                     COOKIE_DOMAIN: browsers keep __Host- cookies only without a Domain"
                ));
            }
            if !cookie_secure {
                self.problem(format!(
                    "COOKIE_NAME={cookie_name} (a __Host- name) needs COOKIE_SECURE=true: \
                     browsers keep __Host- cookies only when Secure"
                ));
            }
        } else if cookie_name.starts_with("__Secure-") && !cookie_secure {
            self.problem(format!(
                "COOKIE_NAME={cookie_name} (a __Secure- name) needs COOKIE_SECURE=true: \
                 browsers keep __Secure- cookies only when Secure"
            ));
        }
        let session_lifetime = self
            .parsed("SESSION_LIFETIME", raw.session_lifetime, parse_lifetime)
            .unwrap_or(Duration::from_secs(12 * 3600));
        let mut allowed_redirects = self
            .parsed(
                "ALLOWED_REDIRECT_DOMAINS",
                raw.allowed_redirect_domains.clone(),
                AllowedRedirects::parse,
            )
            .unwrap_or_else(|| AllowedRedirects::parse("").unwrap_or_default());
        if raw.allowed_redirect_domains.is_none() {
            if let Some(url) = &redirect_url {
                if let Some(host) = url.host_str() {
                    allowed_redirects.add_host(host, url.port());
                }
            }
            if let Some(domain) = &cookie_domain {
                allowed_redirects.add_host(&format!(".{}", domain.trim_start_matches('.')), None);
            }
        }
        let trusted_proxies = match raw.trusted_proxies {
            None => TrustedProxies::default_private(),
            Some(list) => self
                .parsed("TRUSTED_PROXIES", Some(list), TrustedProxies::parse)
                .unwrap_or_else(TrustedProxies::default_private),
        };
        let allow_encoded_slashes =
            self.boolean("ALLOW_ENCODED_SLASHES", raw.allow_encoded_slashes, false);
        let listen_addr = self
            .parsed("LISTEN_ADDR", raw.listen_addr, |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("{s:?} is not an address like 0.0.0.0:4180"))
            })
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 4180)));
        let log_format = match raw.log_format.as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.problem(format!("LOG_FORMAT: expected text or json, got {other:?}"));
                LogFormat::Text
            }
        };
        let log_claims = self.boolean("LOG_CLAIMS", raw.log_claims, false);
        let rules = self.rules(
            raw.require_group,
            raw.allow_login_without_groups,
            raw.admins,
            raw.group_map,
            raw.group_map_strict,
            raw.default_groups,
            raw.allowed_email_domains,
        );
        if let (Some(url), false) = (&redirect_url, cookie_secure) {
            if url.scheme() == "https" {
                self.warnings.push(
                    "COOKIE_SECURE=false while OIDC_REDIRECT_URL is https: cookies could travel \
                     over plain http"
                        .to_string(),
                );
            }
        }
        if let (Some(url), true) = (&redirect_url, cookie_secure) {
            if url.scheme() == "http" {
                self.warnings.push(
                    "OIDC_REDIRECT_URL is plain http but COOKIE_SECURE=true: browsers will not \
                     send the session cookie over http (set COOKIE_SECURE=false for local setups)"
                        .to_string(),
                );
            }
        }
        Some(Config {
            issuer_url: issuer_url?,
            client_id: client_id?,
            client_secret: client_secret?,
            redirect_url: redirect_url?,
            post_logout_redirect_url,
            scopes,
            username_claim,
            groups_claim,
            token_auth_method,
            allow_unverified_email,
            redis_url,
            cookie_secret: cookie_secret?,
            cookie_name,
            cookie_domain,
            cookie_secure,
            session_lifetime,
            allowed_redirects,
            trusted_proxies,
            allow_encoded_slashes,
            listen_addr,
            log_format,
            log_claims,
            rules,
            warnings: Vec::new(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn rules(
        &mut self,
        require_group: Option<String>,
        allow_login_without_groups: Option<String>,
        admins: Option<String>,
        group_map: Option<String>,
        group_map_strict: Option<String>,
        default_groups: Option<String>,
        allowed_email_domains: Option<String>,
    ) -> GlobalRules {
        GlobalRules {
            require_group: self.parsed("REQUIRE_GROUP", require_group, policy::parse_group_terms),
            allow_login_without_groups: self.boolean(
                "ALLOW_LOGIN_WITHOUT_GROUPS",
                allow_login_without_groups,
                false,
            ),
            admins: comma_list(admins.as_deref()),
            group_map: self
                .parsed("GROUP_MAP", group_map, policy::parse_group_map)
                .unwrap_or_default(),
            group_map_strict: self.boolean("GROUP_MAP_STRICT", group_map_strict, false),
            default_groups: comma_list(default_groups.as_deref()),
            allowed_email_domains: self.parsed(
                "ALLOWED_EMAIL_DOMAINS",
                allowed_email_domains,
                policy::parse_email_domains,
            ),
        }
    }
}

const SECRET_HOWTO: &str = "openssl rand -base64 32 | tr -d '\\n'";

fn comma_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_scopes(value: Option<&str>) -> Vec<String> {
    let mut scopes: Vec<String> = value
        .unwrap_or("openid profile email")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    // Without `openid` the provider would run plain OAuth 2.0 and send no ID token.
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_string());
    }
    scopes
}

/// Accepts the issuer or its full discovery URL; returns the issuer as the provider must name it.
fn parse_issuer(value: &str) -> Result<String, String> {
    let issuer = value
        .trim()
        .strip_suffix("/.well-known/openid-configuration")
        .unwrap_or(value.trim());
    let url = Url::parse(issuer).map_err(|e| format!("{issuer:?} is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{issuer:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must not have a query or fragment"));
    }
    Ok(issuer.to_string())
}

/// One of portcullis' own addresses as registered at the IdP: exact path, nothing else.
fn parse_own_url(value: &str, path: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("{value:?} is not a URL ({e})"))?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("{value:?} must be an http(s) URL"));
    }
    if url.path() != path {
        return Err(format!(
            "{value:?} must end in the path {path} (the address portcullis answers)"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!(
            "{value:?} must not have a query, fragment or user name"
        ));
    }
    Ok(url)
}

/// Browsers cap a cookie's lifetime at 400 days (RFC 6265bis); a longer session would
/// outlive its cookie, and every duration below this bound is far from overflowing.
const MAX_SESSION_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

fn parse_lifetime(value: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(value.trim())
        .map_err(|_| format!("{value:?} is not a duration like 30m or 12h"))?;
    if lifetime < Duration::from_secs(60) {
        return Err(format!("{value:?} is shorter than one minute"));
    }
    if lifetime > MAX_SESSION_LIFETIME {
        return Err(format!(
            "{value:?} is longer than 400 days, the longest cookie lifetime browsers keep"
        ));
    }
    Ok(lifetime)
}

/// Plain http to an IdP is only private on this machine.
fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
