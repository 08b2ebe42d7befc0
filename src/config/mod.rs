//! Configuration from environment variables only.
//!
//! The variables are one table ([`VARIABLES`]); the environment is read into a lookup by its
//! names, then each section of the table has a validator that turns its variables into typed
//! values. They note every problem instead of stopping at the first, so an operator fixes a
//! broken deployment in one round.

mod entra;
mod providers;
mod redis_tls;
mod sections;
mod store;
mod suggest;
mod upstream_jwt;
mod values;
mod variables;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use crate::forwarded::TrustedProxies;
use crate::policy::GlobalRules;
use crate::redirect::AllowedRedirects;
use crate::secret::Secret;

pub use entra::{EntraGraph, ProviderKind};
pub use providers::{prefix as provider_prefix, ClientAuth, ProviderSettings, PROVIDER_SUFFIXES};
pub use redis_tls::{ClientCertificate, RedisTls};
pub use store::{CacheSettings, NodeAddress, RedisSettings, RedisTopology, StoreSettings};
pub use upstream_jwt::UpstreamJwt;

pub use variables::{
    help as variables_help, Section, Unset, Variable, DEFAULT_COOKIE_NAME, DEFAULT_COOKIE_SECURE,
    DEFAULT_GROUPS_CLAIM, DEFAULT_LISTEN_ADDR, DEFAULT_LOG_FORMAT, DEFAULT_REDIS_TIMEOUT,
    DEFAULT_SCOPES, DEFAULT_SESSION_LIFETIME, DEFAULT_SESSION_REFRESH_GRACE,
    DEFAULT_SESSION_REFRESH_INTERVAL, DEFAULT_SHUTDOWN_DELAY, DEFAULT_TOKEN_AUTH_METHOD,
    DEFAULT_USERNAME_CLAIM, ENV_VARIABLES, SECTIONS, VARIABLES,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// A JWT signed with the client's own key (OpenID Connect Core section 9), no secret.
    PrivateKeyJwt,
}

impl TokenAuthMethod {
    /// As `OIDC_TOKEN_AUTH_METHOD` and the IdP's `token_endpoint_auth_method` write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Validated configuration, shared read-only by every request.
#[derive(Debug, Clone)]
pub struct Config {
    /// The identity providers: one unnamed (the unprefixed `OIDC_*` variables), or the several
    /// `OIDC_PROVIDERS` names, in its order. Never empty.
    pub providers: Vec<ProviderSettings>,
    /// The callback base: a named provider's callback is `<redirect_url>/<name>`.
    pub redirect_url: Url,
    /// When set, sign-out also ends the session at the IdP (RP-initiated logout), which sends
    /// the browser back here.
    pub post_logout_redirect_url: Option<Url>,
    /// The sign-in page's title and logo (`SIGN_IN_TITLE`, `SIGN_IN_LOGO_URL`).
    pub sign_in: SignInPage,
    /// Forward emails the IdP does not say are verified (off: only `email_verified: true`
    /// emails reach the app).
    pub allow_unverified_email: bool,
    /// Where sessions live: Redis (one of three topologies) or memory, and the local cache.
    pub store: StoreSettings,
    pub cookie_secret: Secret,
    pub cookie_name: String,
    pub cookie_domain: Option<String>,
    pub cookie_secure: bool,
    pub session_lifetime: Duration,
    /// End sessions no auth check has used for this long (`None`: no idle timeout).
    pub session_idle_timeout: Option<Duration>,
    /// Revalidation at the IdP: how often, and how long an unreachable IdP is tolerated
    /// (`interval` 0: off).
    pub session_refresh: crate::lifecycle::RefreshTiming,
    pub allowed_redirects: AllowedRedirects,
    pub trusted_proxies: TrustedProxies,
    /// Let `%2F`/`%5C` through in the original request's path (dot segments never pass).
    pub allow_encoded_slashes: bool,
    pub listen_addr: SocketAddr,
    /// After SIGTERM or SIGINT, how long `/readyz` says "shutting down" before the listeners
    /// close.
    pub shutdown_delay: Duration,
    /// The admin API's listener (`ADMIN_ADDR` with its `ADMIN_TOKEN`); `None`: no listener.
    pub admin: Option<AdminListener>,
    pub log_format: LogFormat,
    /// Log the full merged claims at debug level (off by default: claims are personal data).
    pub log_claims: bool,
    /// One info line per auth check.
    pub access_log: bool,
    pub rules: GlobalRules,
    /// `BEARER_TOKENS`: API clients' access tokens are accepted too (`None`: off, and an
    /// `Authorization` header changes nothing).
    pub bearer: Option<BearerSettings>,
    /// `UPSTREAM_JWT=true`: the keys of the signed identity assertion; `None`: off.
    pub upstream_jwt: Option<UpstreamJwt>,
    /// Things that work but deserve the operator's attention, logged once at startup.
    pub warnings: Vec<String>,
}

/// How the sign-in page (several providers) is titled and branded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInPage {
    pub title: String,
    pub logo_url: Option<Url>,
}

/// Bearer tokens for API clients (`BEARER_TOKENS=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerSettings {
    /// `BEARER_AUDIENCES`: a token's `aud` must contain one of these. Never empty.
    pub audiences: Vec<String>,
}

/// Where the admin API listens and the bearer token it requires (always both).
#[derive(Debug, Clone)]
pub struct AdminListener {
    pub addr: SocketAddr,
    pub token: Secret,
}

/// Every problem found in the environment, each naming its variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub problems: Vec<String>,
    /// The warnings about set variables portcullis does not read: a misspelt name is the
    /// likely cause of a "required" problem, so they are shown with the problems.
    pub misspelt: Vec<String>,
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
        if !self.misspelt.is_empty() {
            writeln!(f, "possibly related:")?;
        }
        for warning in &self.misspelt {
            writeln!(f, "  - {warning}")?;
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
        let names = env
            .get("OIDC_PROVIDERS")
            .filter(|v| !v.trim().is_empty())
            .map(|v| providers::parse_provider_names(v));
        let listed: Vec<String> = match &names {
            Some(Ok(names)) => names.clone(),
            _ => Vec::new(),
        };
        let prefixed = providers::lookup(&env, &listed);
        // An OIDC_PROVIDERS that does not parse is its own problem: which variables it meant
        // cannot be told.
        let unlisted = match &names {
            Some(Err(_)) => Vec::new(),
            _ => providers::unlisted(&env, &listed),
        };
        let misspelt: Vec<String> = suggest::unread_variables(&env, |name| {
            prefixed.contains_key(name) || unlisted.iter().any(|p| p.starts_with(name))
        });
        let mut untaken = variables::lookup(&env);
        untaken.extend(prefixed);
        let mut found = Findings {
            untaken,
            problems: unlisted,
            warnings: misspelt.clone(),
        };
        match found.config(names) {
            Some(config) if found.problems.is_empty() => Ok(Config {
                warnings: found.warnings,
                ..config
            }),
            _ => Err(ConfigError {
                problems: found.problems,
                misspelt,
            }),
        }
    }

    /// Whether `OIDC_PROVIDERS` names several providers: users are then `provider:user` in
    /// `ADMINS` and `allowed_users`, and browsers choose on the sign-in page.
    pub fn several_providers(&self) -> bool {
        self.providers.len() > 1
    }

    /// The provider of this name (`None`: the one unnamed provider).
    pub fn provider(&self, name: Option<&str>) -> Option<&ProviderSettings> {
        self.providers.iter().find(|p| p.name.as_deref() == name)
    }

    /// The first provider: the only one, unless `OIDC_PROVIDERS` names several.
    pub fn first_provider(&self) -> &ProviderSettings {
        &self.providers[0]
    }
}

/// What the section validators found: the problems that stop startup and the warnings that
/// do not, plus the variables no validator has taken yet.
struct Findings {
    untaken: HashMap<String, Option<String>>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

impl Findings {
    /// Runs every section's validator, so that all problems are found in one go; a config
    /// only when nothing required is missing.
    fn config(&mut self, names: Option<Result<Vec<String>, String>>) -> Option<Config> {
        // Taken here: its value was read (and checked) before the lookup was built.
        let _ = self.take("OIDC_PROVIDERS");
        let providers = self.providers(names);
        let provider = self.provider();
        let (entra_graph, entra_set) = self.entra_graph();
        let store = self.store();
        let cookie = self.cookie();
        let network = self.network(provider.redirect_url.as_ref(), cookie.domain.as_deref());
        let admin = self.admin(network.listen_addr);
        let logging = self.logging();
        let rules = self.rules();
        let bearer = self.bearer();
        let upstream_jwt = self.upstream_jwt(cookie.secret.as_ref());
        let several = providers.len() > 1;
        let provider_names: Vec<&str> = providers
            .iter()
            .flatten()
            .filter_map(|p| p.name.as_deref())
            .collect();
        self.admins_name_their_provider(&rules, several, &provider_names);
        let mut rules = rules;
        rules.qualified_users = several;
        let providers: Option<Vec<ProviderSettings>> = providers
            .into_iter()
            .map(|provider| {
                provider.map(|mut provider| {
                    if provider.kind == ProviderKind::Entra {
                        provider.entra = entra_graph.clone();
                    }
                    provider.rules = GlobalRules {
                        group_map: provider
                            .group_map
                            .clone()
                            .unwrap_or_else(|| rules.group_map.clone()),
                        ..rules.clone()
                    };
                    provider
                })
            })
            .collect();
        let any_entra = providers
            .iter()
            .flatten()
            .any(|p| p.kind == ProviderKind::Entra);
        if entra_set && !any_entra {
            self.warn(
                "ENTRA_GRAPH_URL or ENTRA_GROUP_NAMES is set, but no provider is of kind entra \
                 (OIDC_PROVIDER_KIND): nothing reads groups from Graph"
                    .to_string(),
            );
        }
        self.cookie_against_redirect(provider.redirect_url.as_ref(), cookie.secure);
        self.all_taken();
        Some(Config {
            providers: providers?,
            redirect_url: provider.redirect_url?,
            post_logout_redirect_url: provider.post_logout_redirect_url,
            sign_in: provider.sign_in,
            allow_unverified_email: provider.allow_unverified_email,
            store,
            cookie_secret: cookie.secret?,
            cookie_name: cookie.name,
            cookie_domain: cookie.domain,
            cookie_secure: cookie.secure,
            session_lifetime: cookie.session_lifetime,
            session_idle_timeout: cookie.session_idle_timeout,
            session_refresh: cookie.session_refresh,
            allowed_redirects: network.allowed_redirects,
            trusted_proxies: network.trusted_proxies,
            allow_encoded_slashes: network.allow_encoded_slashes,
            listen_addr: network.listen_addr,
            shutdown_delay: network.shutdown_delay,
            admin,
            log_format: logging.format,
            log_claims: logging.claims,
            access_log: logging.access,
            rules,
            bearer,
            upstream_jwt,
            warnings: Vec::new(),
        })
    }

    fn problem(&mut self, text: String) {
        self.problems.push(text);
    }

    fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }

    /// A variable's value, taken out so that each is read by exactly one validator. A name
    /// not in the table (or read twice) is a bug in portcullis, reported like any problem so
    /// that every test notices.
    fn take(&mut self, name: &str) -> Option<String> {
        match self.untaken.remove(name) {
            Some(value) => value,
            None => {
                self.problem(format!(
                    "internal error: {name} is read twice or missing from the variable table"
                ));
                None
            }
        }
    }

    /// The other half of [`Findings::take`]: a variable in the table that no validator reads.
    fn all_taken(&mut self) {
        let mut untaken: Vec<String> = self.untaken.keys().cloned().collect();
        untaken.sort_unstable();
        for name in untaken {
            self.problem(format!(
                "internal error: {name} is in the variable table but nothing reads it"
            ));
        }
    }

    fn required(&mut self, name: &str) -> Option<String> {
        let value = self.take(name);
        if value.is_none() {
            self.problem(format!("{name} is required"));
        }
        value
    }

    /// A secret given directly or as a file path (`NAME_FILE`), but not both.
    fn secret(&mut self, name: &str, required: bool) -> Option<Secret> {
        let direct = self.take(name);
        let file = self.take(&format!("{name}_FILE"));
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(format!("set either {name} or {name}_FILE, not both"));
                None
            }
            (Some(value), None) => Some(Secret::new(value)),
            (None, Some(path)) => self.secret_file(name, &path),
            (None, None) => {
                if required {
                    self.problem(format!("{name} (or {name}_FILE) is required"));
                }
                None
            }
        }
    }

    fn secret_file(&mut self, name: &str, path: &str) -> Option<Secret> {
        match std::fs::read_to_string(path) {
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
        }
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let value = self.take(name);
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

    /// The variable parsed, if set; a value that does not parse is a problem.
    fn parsed<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.take(name);
        self.parse_value(name, value, parse)
    }

    fn parse_value<T>(
        &mut self,
        name: &str,
        value: Option<String>,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        match parse(&value?) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.problem(format!("{name}: {err}"));
                None
            }
        }
    }
}

/// A valid configuration for unit tests elsewhere in the crate: the five required variables of
/// an IdP and a site that need not exist, then `extra` on top.
#[cfg(test)]
pub(crate) fn for_tests(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("OIDC_ISSUER_URL", "https://idp.example.com"),
        ("OIDC_CLIENT_ID", "portcullis"),
        ("OIDC_CLIENT_SECRET", "secret"),
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_env_map(env).expect("a valid test configuration")
}

/// [`for_tests`] with several providers (`OIDC_PROVIDERS`): each `name` at
/// `https://<name>.example.com`, client `portcullis-<name>`.
#[cfg(test)]
pub(crate) fn for_tests_with_providers(names: &[&str], extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        (
            "OIDC_REDIRECT_URL",
            "https://auth.example.com/oauth2/callback",
        ),
        ("COOKIE_SECRET", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.insert("OIDC_PROVIDERS".to_string(), names.join(","));
    for name in names {
        let prefix = provider_prefix(Some(name));
        env.insert(
            format!("{prefix}ISSUER_URL"),
            format!("https://{name}.example.com"),
        );
        env.insert(format!("{prefix}CLIENT_ID"), format!("portcullis-{name}"));
        env.insert(format!("{prefix}CLIENT_SECRET"), "secret".to_string());
    }
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    Config::from_env_map(env).expect("a valid test configuration")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod private_key_jwt_tests;
