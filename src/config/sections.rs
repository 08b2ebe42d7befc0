//! One validator per section of the variable table. Each takes its own variables from the
//! [`Findings`], notes what is wrong with them and returns what it could make of them;
//! [`Findings::config`] runs them all and assembles the [`Config`](super::Config).

use std::net::SocketAddr;
use std::time::Duration;

use url::Url;

use super::values::{
    comma_list, is_cookie_name, parse_lifetime, parse_own_url, parse_refresh_duration,
    parse_shutdown_delay, MIN_COOKIE_SECRET_BYTES, SECRET_HOWTO,
};
use super::variables::{
    DEFAULT_COOKIE_NAME, DEFAULT_COOKIE_SECURE, DEFAULT_LISTEN_ADDR, DEFAULT_LOG_FORMAT,
    DEFAULT_SESSION_LIFETIME, DEFAULT_SESSION_REFRESH_GRACE, DEFAULT_SESSION_REFRESH_INTERVAL,
    DEFAULT_SHUTDOWN_DELAY,
};
use super::{AdminListener, BearerSettings, Findings, LogFormat, SignInPage};
use crate::forwarded::TrustedProxies;
use crate::lifecycle::RefreshTiming;
use crate::policy::{self, GlobalRules};
use crate::redirect::AllowedRedirects;
use crate::secret::Secret;

/// The provider variables every provider shares. The required values are `None` when missing
/// or invalid.
pub(super) struct Provider {
    pub redirect_url: Option<Url>,
    pub post_logout_redirect_url: Option<Url>,
    pub sign_in: SignInPage,
    pub allow_unverified_email: bool,
}

/// The sign-in page's title when `SIGN_IN_TITLE` is unset.
pub const DEFAULT_SIGN_IN_TITLE: &str = "Sign in";

/// `SIGN_IN_LOGO_URL`: an absolute `https://` (or `http://`) address, shown as the page's logo.
fn parse_logo_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| format!("not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" | "http" => Ok(url),
        other => Err(format!("expected an https:// address, got a {other}: URL")),
    }
}

/// `COOKIE_*` and `SESSION_LIFETIME`.
pub(super) struct Cookie {
    pub secret: Option<Secret>,
    pub name: String,
    pub domain: Option<String>,
    pub secure: bool,
    pub session_lifetime: Duration,
    pub session_idle_timeout: Option<Duration>,
    pub session_refresh: RefreshTiming,
}

/// Where portcullis listens, whom it believes and where it sends users.
pub(super) struct Network {
    pub allowed_redirects: AllowedRedirects,
    pub trusted_proxies: TrustedProxies,
    pub allow_encoded_slashes: bool,
    pub listen_addr: SocketAddr,
    pub shutdown_delay: Duration,
}

pub(super) struct Logging {
    pub format: LogFormat,
    pub claims: bool,
    pub access: bool,
}

/// The cookie secret's minimum: too long to guess online, and the token is all that stands
/// between whoever reaches `ADMIN_ADDR` and everyone's sessions.
pub(super) const MIN_ADMIN_TOKEN_BYTES: usize = 32;

impl Findings {
    pub(super) fn provider(&mut self) -> Provider {
        let redirect_url = self.required("OIDC_REDIRECT_URL");
        let redirect_url = self.parse_value("OIDC_REDIRECT_URL", redirect_url, |v| {
            parse_own_url(v, "/oauth2/callback")
        });
        let post_logout_redirect_url = self.parsed("OIDC_POST_LOGOUT_REDIRECT_URL", |v| {
            parse_own_url(v, "/oauth2/signed_out")
        });
        let sign_in = SignInPage {
            title: self
                .take("SIGN_IN_TITLE")
                .map(|t| t.trim().to_string())
                .unwrap_or_else(|| DEFAULT_SIGN_IN_TITLE.to_string()),
            logo_url: self.parsed("SIGN_IN_LOGO_URL", parse_logo_url),
        };
        let allow_unverified_email = self.allow_unverified_email();
        Provider {
            redirect_url,
            post_logout_redirect_url,
            sign_in,
            allow_unverified_email,
        }
    }

    /// With several providers a user is only unique within one: every `ADMINS` entry must name
    /// its provider (`keycloak:alice`), or the same `sub` at another IdP would be an admin too.
    pub(super) fn admins_name_their_provider(
        &mut self,
        rules: &GlobalRules,
        several: bool,
        names: &[&str],
    ) {
        if !several {
            return;
        }
        for entry in &rules.admins {
            if policy::qualified_user(entry, names).is_none() {
                self.problem(format!(
                    "ADMINS: {entry:?} does not name its provider; with several providers write \
                     provider:user, e.g. {}:{entry}",
                    names.first().copied().unwrap_or("keycloak")
                ));
            }
        }
    }

    fn allow_unverified_email(&mut self) -> bool {
        let allow = self.boolean("OIDC_ALLOW_UNVERIFIED_EMAIL", false);
        if allow {
            self.warn(
                "OIDC_ALLOW_UNVERIFIED_EMAIL=true: emails the IdP does not say are verified are \
                 sent to the app; anyone who can set an unverified address at the IdP can claim it"
                    .to_string(),
            );
        }
        allow
    }

    pub(super) fn cookie(&mut self) -> Cookie {
        let secret = self.cookie_secret();
        let name = self
            .take("COOKIE_NAME")
            .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_string());
        if !is_cookie_name(&name) {
            self.problem(format!(
                "COOKIE_NAME: {name:?} is not a valid cookie name (letters, digits, - and _)"
            ));
        }
        let domain = self.cookie_domain();
        let secure = self.boolean("COOKIE_SECURE", DEFAULT_COOKIE_SECURE);
        self.cookie_prefix(&name, domain.is_some(), secure);
        let session_lifetime = self
            .parsed("SESSION_LIFETIME", parse_lifetime)
            .unwrap_or(DEFAULT_SESSION_LIFETIME);
        let session_idle_timeout = self.session_idle_timeout(session_lifetime);
        let session_refresh = self.session_refresh();
        Cookie {
            secret,
            name,
            domain,
            secure,
            session_lifetime,
            session_idle_timeout,
            session_refresh,
        }
    }

    /// `SESSION_REFRESH_INTERVAL` and `SESSION_REFRESH_GRACE`, in the seconds the lifecycle
    /// decisions count in.
    fn session_refresh(&mut self) -> RefreshTiming {
        let interval = self
            .parsed("SESSION_REFRESH_INTERVAL", parse_refresh_duration)
            .unwrap_or(DEFAULT_SESSION_REFRESH_INTERVAL);
        let grace = self
            .parsed("SESSION_REFRESH_GRACE", parse_refresh_duration)
            .unwrap_or(DEFAULT_SESSION_REFRESH_GRACE);
        RefreshTiming {
            interval: interval.as_secs(),
            grace: grace.as_secs(),
        }
    }

    /// Off unless set. A minute at least, like the lifetime: last seen is written at most once
    /// a minute, so a shorter timeout could not be kept. No longer than the lifetime, which
    /// ends every session anyway: a longer timeout is a mistake worth saying so.
    fn session_idle_timeout(&mut self, session_lifetime: Duration) -> Option<Duration> {
        let timeout = self.parsed("SESSION_IDLE_TIMEOUT", parse_lifetime)?;
        if timeout > session_lifetime {
            self.problem(format!(
                "SESSION_IDLE_TIMEOUT: {} is longer than SESSION_LIFETIME ({}), which ends every \
                 session first",
                humantime::format_duration(timeout),
                humantime::format_duration(session_lifetime),
            ));
            return None;
        }
        Some(timeout)
    }

    fn cookie_secret(&mut self) -> Option<Secret> {
        match self.secret("COOKIE_SECRET", false) {
            Some(secret) if secret.expose().len() >= MIN_COOKIE_SECRET_BYTES => Some(secret),
            Some(secret) => {
                self.problem(format!(
                    "COOKIE_SECRET must be at least {MIN_COOKIE_SECRET_BYTES} bytes (it has {}); \
                     generate one with: {SECRET_HOWTO}",
                    secret.expose().len(),
                ));
                None
            }
            None => {
                // A secret given both ways, or an unreadable file, is already explained.
                let already = self.problems.iter().any(|p| p.starts_with("COOKIE_SECRET"));
                if !already {
                    self.problem(format!(
                        "COOKIE_SECRET (or COOKIE_SECRET_FILE) is required; generate one with: \
                         {SECRET_HOWTO}"
                    ));
                }
                None
            }
        }
    }

    fn cookie_domain(&mut self) -> Option<String> {
        let domain = self
            .take("COOKIE_DOMAIN")
            .map(|d| d.trim().to_ascii_lowercase());
        if let Some(domain) = &domain {
            let bare = domain.trim_start_matches('.');
            if bare.is_empty() || url::Host::parse(bare).is_err() || bare.contains(':') {
                self.problem(format!("COOKIE_DOMAIN: {domain:?} is not a host name"));
            }
        }
        domain
    }

    /// Browsers drop `__Host-` cookies unless Secure, Path=/ and without Domain, and
    /// `__Secure-` cookies unless Secure: a setting that contradicts that would fail silently.
    fn cookie_prefix(&mut self, name: &str, has_domain: bool, secure: bool) {
        if name.starts_with("__Host-") {
            if has_domain {
                self.problem(format!(
                    "COOKIE_NAME={name} (a __Host- name) cannot be combined with \
                     COOKIE_DOMAIN: browsers keep __Host- cookies only without a Domain"
                ));
            }
            if !secure {
                self.problem(format!(
                    "COOKIE_NAME={name} (a __Host- name) needs COOKIE_SECURE=true: \
                     browsers keep __Host- cookies only when Secure"
                ));
            }
        } else if name.starts_with("__Secure-") && !secure {
            self.problem(format!(
                "COOKIE_NAME={name} (a __Secure- name) needs COOKIE_SECURE=true: \
                 browsers keep __Secure- cookies only when Secure"
            ));
        }
    }

    /// Needs the provider's callback and the cookie domain: together they are the default
    /// list of places users may be sent to.
    pub(super) fn network(
        &mut self,
        redirect_url: Option<&Url>,
        cookie_domain: Option<&str>,
    ) -> Network {
        let allowed_redirects = self.allowed_redirects(redirect_url, cookie_domain);
        let trusted_proxies = self
            .parsed("TRUSTED_PROXIES", TrustedProxies::parse)
            .unwrap_or_else(TrustedProxies::default_private);
        let allow_encoded_slashes = self.boolean("ALLOW_ENCODED_SLASHES", false);
        let listen_addr = self
            .parsed("LISTEN_ADDR", |s| {
                s.parse::<SocketAddr>()
                    .map_err(|_| format!("{s:?} is not an address like {DEFAULT_LISTEN_ADDR}"))
            })
            .unwrap_or(DEFAULT_LISTEN_ADDR);
        let shutdown_delay = self
            .parsed("SHUTDOWN_DELAY", parse_shutdown_delay)
            .unwrap_or(DEFAULT_SHUTDOWN_DELAY);
        Network {
            allowed_redirects,
            trusted_proxies,
            allow_encoded_slashes,
            listen_addr,
            shutdown_delay,
        }
    }

    fn allowed_redirects(
        &mut self,
        redirect_url: Option<&Url>,
        cookie_domain: Option<&str>,
    ) -> AllowedRedirects {
        let listed = self.take("ALLOWED_REDIRECT_DOMAINS");
        let set = listed.is_some();
        let mut allowed = self
            .parse_value("ALLOWED_REDIRECT_DOMAINS", listed, AllowedRedirects::parse)
            .unwrap_or_else(|| AllowedRedirects::parse("").unwrap_or_default());
        // Setting the variable replaces the default, even when its value is refused.
        if !set {
            if let Some(url) = redirect_url {
                if let Some(host) = url.host_str() {
                    allowed.add_host(host, url.port());
                }
            }
            if let Some(domain) = cookie_domain {
                allowed.add_host(&format!(".{}", domain.trim_start_matches('.')), None);
            }
        }
        allowed
    }

    /// `ADMIN_*`: the admin listener, only with both an address and a token. A token alone
    /// is harmless (the listener stays off) but probably not what was meant.
    pub(super) fn admin(&mut self, listen_addr: SocketAddr) -> Option<AdminListener> {
        let addr = self.parsed("ADMIN_ADDR", |s| {
            s.parse::<SocketAddr>()
                .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:4181"))
        });
        // Whether a token was given at all, before it is taken: a refused one is explained.
        let given = ["ADMIN_TOKEN", "ADMIN_TOKEN_FILE"]
            .iter()
            .any(|name| self.untaken.get(*name).is_some_and(Option::is_some));
        let token = self.admin_token();
        if let Some(addr) = addr {
            if listeners_overlap(addr, listen_addr) {
                self.problem(format!(
                    "ADMIN_ADDR {addr} must differ from LISTEN_ADDR {listen_addr}: the admin \
                     API is never served where the proxy sends requests"
                ));
            }
            if !addr.ip().is_loopback() {
                self.warn(format!(
                    "ADMIN_ADDR {addr} is not a loopback address: the admin API speaks plain \
                     http, so its token crosses the network unprotected; keep it on a private \
                     network"
                ));
            }
        }
        match (addr, token) {
            (Some(addr), Some(token)) => Some(AdminListener { addr, token }),
            (Some(_), None) if !given => {
                self.problem(format!(
                    "ADMIN_ADDR is set but ADMIN_TOKEN (or ADMIN_TOKEN_FILE) is not: the admin \
                     API needs a token; generate one with: {SECRET_HOWTO}"
                ));
                None
            }
            (None, Some(_)) if !self.problems.iter().any(|p| p.starts_with("ADMIN_ADDR")) => {
                self.warn(
                    "ADMIN_TOKEN is set but ADMIN_ADDR is not: there is no admin listener"
                        .to_string(),
                );
                None
            }
            // A refused address or token is already explained.
            _ => None,
        }
    }

    fn admin_token(&mut self) -> Option<Secret> {
        let token = self.secret("ADMIN_TOKEN", false)?;
        let value = token.expose();
        if value.len() < MIN_ADMIN_TOKEN_BYTES {
            self.problem(format!(
                "ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_BYTES} bytes (it has {}); \
                 generate one with: {SECRET_HOWTO}",
                value.len()
            ));
            return None;
        }
        // It travels in an `Authorization` header: anything else could not be sent as is.
        if !value.bytes().all(|b| b.is_ascii_graphic()) {
            self.problem(
                "ADMIN_TOKEN must be printable ASCII without spaces (it is sent in an \
                 Authorization header)"
                    .to_string(),
            );
            return None;
        }
        Some(token)
    }

    pub(super) fn logging(&mut self) -> Logging {
        let format = match self.take("LOG_FORMAT").as_deref() {
            None => DEFAULT_LOG_FORMAT,
            Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                self.problem(format!("LOG_FORMAT: expected text or json, got {other:?}"));
                DEFAULT_LOG_FORMAT
            }
        };
        let claims = self.boolean("LOG_CLAIMS", false);
        let access = self.boolean("ACCESS_LOG", false);
        Logging {
            format,
            claims,
            access,
        }
    }

    /// Who gets in: the global access rules.
    pub(super) fn rules(&mut self) -> GlobalRules {
        GlobalRules {
            require_group: self.parsed("REQUIRE_GROUP", policy::parse_group_terms),
            allow_login_without_groups: self.boolean("ALLOW_LOGIN_WITHOUT_GROUPS", false),
            admins: comma_list(self.take("ADMINS").as_deref()),
            group_map: self
                .parsed("GROUP_MAP", policy::parse_group_map)
                .unwrap_or_default(),
            group_map_strict: self.boolean("GROUP_MAP_STRICT", false),
            default_groups: comma_list(self.take("DEFAULT_GROUPS").as_deref()),
            allowed_email_domains: self
                .parsed("ALLOWED_EMAIL_DOMAINS", policy::parse_email_domains),
            // Set once the providers are known.
            qualified_users: false,
        }
    }

    /// Bearer tokens for API clients: off unless `BEARER_TOKENS=true`, and then only with the
    /// audiences a token must be for. Audiences without the switch are a problem rather than
    /// ignored: whoever set them meant tokens to be accepted, and should learn they are not.
    pub(super) fn bearer(&mut self) -> Option<BearerSettings> {
        let enabled = self.boolean("BEARER_TOKENS", false);
        let audiences = comma_list(self.take("BEARER_AUDIENCES").as_deref());
        match (enabled, audiences.is_empty()) {
            (true, false) => Some(BearerSettings { audiences }),
            (true, true) => {
                self.problem(
                    "BEARER_AUDIENCES is required with BEARER_TOKENS=true: the audience(s) a \
                     token must be issued for (e.g. the API's resource indicator at the IdP)"
                        .to_string(),
                );
                None
            }
            (false, false) => {
                self.problem(
                    "BEARER_AUDIENCES is set but BEARER_TOKENS is not true: bearer tokens are \
                     not accepted; set BEARER_TOKENS=true, or unset BEARER_AUDIENCES"
                        .to_string(),
                );
                None
            }
            (false, true) => None,
        }
    }

    /// Across sections: a Secure cookie and the callback's scheme should agree.
    pub(super) fn cookie_against_redirect(&mut self, redirect_url: Option<&Url>, secure: bool) {
        match redirect_url.map(Url::scheme) {
            Some("https") if !secure => self.warn(
                "COOKIE_SECURE=false while OIDC_REDIRECT_URL is https: cookies could travel \
                 over plain http"
                    .to_string(),
            ),
            Some("http") if secure => self.warn(
                "OIDC_REDIRECT_URL is plain http but COOKIE_SECURE=true: browsers will not \
                 send the session cookie over http (set COOKIE_SECURE=false for local setups)"
                    .to_string(),
            ),
            _ => {}
        }
    }
}

/// Whether two listeners would want the same socket: the same port (0 picks a free one each)
/// on the same address, or on a wildcard address, which takes the port on every address.
pub(super) fn listeners_overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}
