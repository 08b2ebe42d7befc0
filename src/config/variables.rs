//! The one table of environment variables. Parsing reads the environment by these names,
//! `portcullis --help` lists them with their defaults, and a test holds the README's
//! configuration table to exactly these rows, so a variable is written down once.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::{LogFormat, TokenAuthMethod};

/// Which part of portcullis a variable configures; each has its own validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Provider,
    Redis,
    Cookie,
    Network,
    Admin,
    Logging,
    Rules,
    Assertion,
}

/// In the README's order, which `--help` follows.
pub const SECTIONS: &[Section] = &[
    Section::Provider,
    Section::Redis,
    Section::Cookie,
    Section::Network,
    Section::Admin,
    Section::Logging,
    Section::Rules,
    Section::Assertion,
];

impl Section {
    pub const fn title(self) -> &'static str {
        match self {
            Section::Provider => "Identity provider",
            Section::Redis => "Session store",
            Section::Cookie => "Cookie and session",
            Section::Network => "Network and redirects",
            Section::Admin => "Admin API",
            Section::Logging => "Logging",
            Section::Rules => "Who gets in",
            Section::Assertion => "Signed identity assertion",
        }
    }
}

/// What an unset variable means, as users are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unset {
    /// The value the variable takes, written as code: `0.0.0.0:4180`.
    Value(&'static str),
    /// Words (markdown) for what happens instead: `required`, `unset: no restriction`.
    Words(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variable {
    pub name: &'static str,
    pub section: Section,
    pub default: Unset,
    /// Markdown, exactly as in the README's table.
    pub meaning: &'static str,
}

pub const DEFAULT_LISTEN_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 4180);
pub const DEFAULT_SCOPES: &str = "openid profile email";
pub const DEFAULT_USERNAME_CLAIM: &str = "sub";
pub const DEFAULT_GROUPS_CLAIM: &str = "groups";
pub const DEFAULT_TOKEN_AUTH_METHOD: TokenAuthMethod = TokenAuthMethod::ClientSecretBasic;
pub const DEFAULT_COOKIE_NAME: &str = "_portcullis";
pub const DEFAULT_COOKIE_SECURE: bool = true;
pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
pub const DEFAULT_LOG_FORMAT: LogFormat = LogFormat::Text;
pub const DEFAULT_SESSION_REFRESH_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_SESSION_REFRESH_GRACE: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_REDIS_TIMEOUT: Duration = Duration::from_millis(500);
pub const DEFAULT_SESSION_CACHE_TTL: Duration = Duration::from_secs(10);
pub const DEFAULT_SESSION_CACHE_SIZE: u64 = 100_000;
pub const DEFAULT_SHUTDOWN_DELAY: Duration = Duration::from_secs(2);
pub const DEFAULT_ENTRA_GRAPH_URL: &str = "https://graph.microsoft.com";

use Section::{Admin, Assertion, Cookie, Logging, Network, Provider, Redis, Rules};
use Unset::{Value, Words};

const fn var(
    section: Section,
    name: &'static str,
    default: Unset,
    meaning: &'static str,
) -> Variable {
    Variable {
        name,
        section,
        default,
        meaning,
    }
}

/// Every variable portcullis reads, in the README's order. Defaults that are not string
/// constants (`4180`, `12h`, `true`) are held to the code by a test.
pub const VARIABLES: &[Variable] = &[
    var(
        Provider,
        "OIDC_PROVIDERS",
        Words("unset: one provider"),
        "several identity providers at once: comma list of names (`[a-z0-9-]`, at most 32 \
         characters), e.g. `keycloak,google`. Each is then configured by the provider \
         variables below with its upper-cased name after `OIDC_` (hyphens as underscores): \
         `OIDC_KEYCLOAK_ISSUER_URL`, `_CLIENT_ID`, `_CLIENT_SECRET(_FILE)`, `_SCOPES`, \
         `_USERNAME_CLAIM`, `_GROUPS_CLAIM`, `_TOKEN_AUTH_METHOD`, `_PRIVATE_KEY_FILE`, \
         `_PRIVATE_KEY_ID`, `_PRIVATE_KEY_CERT_FILE`, `_PROVIDER_KIND`, plus \
         `OIDC_KEYCLOAK_DISPLAY_NAME` (sign-in page; default the name) and \
         `OIDC_KEYCLOAK_GROUP_MAP` (replaces `GROUP_MAP` for that provider); its callback is \
         `<OIDC_REDIRECT_URL>/keycloak`. Excludes the unprefixed provider variables.",
    ),
    var(
        Provider,
        "OIDC_ISSUER_URL",
        Words("required"),
        "issuer; discovery at `<issuer>/.well-known/openid-configuration` (the full discovery \
         URL is accepted too). The document's `issuer` must equal it exactly, trailing slash \
         included. A plain `http://` issuer other than loopback logs a warning at startup: keys \
         and tokens would travel unprotected.",
    ),
    var(
        Provider,
        "OIDC_CLIENT_ID",
        Words("required"),
        "client id registered at the IdP",
    ),
    var(
        Provider,
        "OIDC_CLIENT_SECRET",
        Words("required (or `_FILE`), unless `private_key_jwt`"),
        "client secret; not set with `OIDC_TOKEN_AUTH_METHOD=private_key_jwt`, which sends none",
    ),
    var(
        Provider,
        "OIDC_CLIENT_SECRET_FILE",
        Words("unset"),
        "path of a file holding the client secret",
    ),
    var(
        Provider,
        "OIDC_REDIRECT_URL",
        Words("required"),
        "the exact callback URL registered at the IdP, path `/oauth2/callback`",
    ),
    var(
        Provider,
        "OIDC_POST_LOGOUT_REDIRECT_URL",
        Words("unset"),
        "when set (path `/oauth2/signed_out`, registered at the IdP as a post-logout redirect \
         URI), sign-out also ends the session at the IdP (RP-initiated logout) if its discovery \
         lists an `end_session_endpoint`; unset: sign-out ends only the portcullis session",
    ),
    var(
        Provider,
        "OIDC_SCOPES",
        Value(DEFAULT_SCOPES),
        "space or comma separated; `openid` is always added",
    ),
    var(
        Provider,
        "OIDC_USERNAME_CLAIM",
        Value(DEFAULT_USERNAME_CLAIM),
        "claim that names the user (`X-Auth-Request-User`, `ADMINS`, `allowed_users`); a \
         warning is logged for claims users may be able to change (`email`, \
         `preferred_username`, `name`, `upn`)",
    ),
    var(
        Provider,
        "OIDC_GROUPS_CLAIM",
        Value(DEFAULT_GROUPS_CLAIM),
        "dot path into ID token and userinfo claims, e.g. `realm_access.roles`",
    ),
    var(
        Provider,
        "OIDC_TOKEN_AUTH_METHOD",
        Value("client_secret_basic"),
        "or `client_secret_post`, or `private_key_jwt`: a JWT signed with `OIDC_PRIVATE_KEY_FILE` \
         instead of a secret (see [private_key_jwt](#private_key_jwt))",
    ),
    var(
        Provider,
        "OIDC_PRIVATE_KEY_FILE",
        Words("required with `private_key_jwt`"),
        "path of the client's private key, PEM PKCS#8 (`BEGIN PRIVATE KEY`): RSA of 2048 bits \
         or more signs RS256, EC P-256 signs ES256; its public key, which `portcullis check` \
         prints as a JWK, is registered at the IdP",
    ),
    var(
        Provider,
        "OIDC_PRIVATE_KEY_ID",
        Words("unset: no `kid`"),
        "the `kid` put in each client assertion's header and in the printed JWK, for IdPs that \
         pick the client's key by it",
    ),
    var(
        Provider,
        "OIDC_PRIVATE_KEY_CERT_FILE",
        Words("unset: no `x5t`"),
        "the X.509 certificate (PEM) of `OIDC_PRIVATE_KEY_FILE`'s key, for IdPs where the key \
         is registered as a certificate (Entra ID, ADFS): each client assertion's header then \
         carries its thumbprints `x5t` (SHA-1) and `x5t#S256`. It must hold that key",
    ),
    var(
        Provider,
        "OIDC_ALLOW_UNVERIFIED_EMAIL",
        Value("false"),
        "send the app emails the IdP does not mark `email_verified: true` (Entra ID sends no \
         `email_verified`); a startup warning says anyone who can set an unverified address at \
         the IdP can then claim it",
    ),
    var(
        Provider,
        "OIDC_PROVIDER_KIND",
        Words("detected: `entra` for an issuer under `https://login.microsoftonline.com/`, else `generic`"),
        "`generic` or `entra` (Microsoft Entra ID): with `entra`, an ID token that carries the \
         groups overage marker (`_claim_names.groups` instead of `groups`, for users in more \
         groups than a token holds) has its groups read from Microsoft Graph with the login's \
         access token, at login and at each revalidation (see \
         [docs/providers/entra-id.md](docs/providers/entra-id.md))",
    ),
    var(
        Provider,
        "ENTRA_GRAPH_URL",
        Value(DEFAULT_ENTRA_GRAPH_URL),
        "the Microsoft Graph base URL an `entra` provider reads groups from (`http(s)`, no \
         query; e.g. `https://graph.microsoft.us` for US Government); the access token is sent \
         to this origin only",
    ),
    var(
        Provider,
        "ENTRA_GROUP_NAMES",
        Value("false"),
        "groups read from Graph are the groups' object ids; `true`: their `displayName` instead \
         (a group without one keeps its id). `GROUP_MAP` maps whichever is sent",
    ),
    var(
        Provider,
        "SIGN_IN_TITLE",
        Value("Sign in"),
        "the title of the sign-in page that lists several providers",
    ),
    var(
        Provider,
        "SIGN_IN_LOGO_URL",
        Words("unset: no logo"),
        "an `https://` address of an image shown on the sign-in page",
    ),
    var(
        Redis,
        "REDIS_URL",
        Words("unset"),
        "`redis://`, `rediss://` (TLS) or `unix://`; unset means the in-memory store (one \
         instance, lost on restart)",
    ),
    var(
        Redis,
        "REDIS_URL_FILE",
        Words("unset"),
        "path of a file holding `REDIS_URL` (it may contain a password)",
    ),
    var(
        Redis,
        "REDIS_SENTINEL_URLS",
        Words("unset"),
        "Redis Sentinel instead: comma list of sentinels, `redis://host:port` (`rediss://` for \
         TLS to sentinels and data nodes); excludes `REDIS_URL` and `REDIS_CLUSTER_URLS`",
    ),
    var(
        Redis,
        "REDIS_SENTINEL_MASTER",
        Words("required with sentinels"),
        "the name the sentinels monitor (`sentinel monitor <name> ...`)",
    ),
    var(
        Redis,
        "REDIS_SENTINEL_PASSWORD",
        Words("unset"),
        "password of the sentinels themselves (the data nodes take `REDIS_PASSWORD`)",
    ),
    var(
        Redis,
        "REDIS_SENTINEL_PASSWORD_FILE",
        Words("unset"),
        "path of a file holding `REDIS_SENTINEL_PASSWORD`",
    ),
    var(
        Redis,
        "REDIS_CLUSTER_URLS",
        Words("unset"),
        "Redis Cluster instead: comma list of seed nodes, `redis://host:port` or \
         `rediss://host:port`; excludes `REDIS_URL` and `REDIS_SENTINEL_URLS`",
    ),
    var(
        Redis,
        "REDIS_USERNAME",
        Words("unset"),
        "ACL user on the data nodes (all three topologies)",
    ),
    var(
        Redis,
        "REDIS_PASSWORD",
        Words("unset"),
        "password on the data nodes (all three topologies; with `REDIS_URL`, either here or in \
         the URL)",
    ),
    var(
        Redis,
        "REDIS_PASSWORD_FILE",
        Words("unset"),
        "path of a file holding `REDIS_PASSWORD`",
    ),
    var(
        Redis,
        "REDIS_CA_FILE",
        Words("unset: the public web roots"),
        "PEM file of the CA certificate(s) that `rediss://` connections (data nodes and \
         sentinels) trust instead of the public web roots: a Redis with a certificate of a \
         private CA. Set without any `rediss://` address: a configuration error",
    ),
    var(
        Redis,
        "REDIS_CLIENT_CERT_FILE",
        Words("unset"),
        "PEM client certificate presented on `rediss://` connections, for a Redis with \
         `tls-auth-clients yes` (its default); needs `REDIS_CLIENT_KEY_FILE`",
    ),
    var(
        Redis,
        "REDIS_CLIENT_KEY_FILE",
        Words("unset"),
        "PEM private key (PKCS#8, SEC1 or PKCS#1, unencrypted) of `REDIS_CLIENT_CERT_FILE`",
    ),
    var(
        Redis,
        "REDIS_TIMEOUT",
        Value("500ms"),
        "the longest a request waits for the store, reconnects included; past it the auth \
         endpoints answer 503 (10ms to 30s)",
    ),
    var(
        Redis,
        "SESSION_CACHE_TTL",
        Value("10s"),
        "each replica answers a session it checked in the last this long from memory; every \
         ending is broadcast and evicts it at once, so this bounds only a lost broadcast (`0` \
         off; at most `5m`; Redis only, see [Running at scale](#running-at-scale))",
    ),
    var(
        Redis,
        "SESSION_CACHE_SIZE",
        Value("100000"),
        "at most this many sessions in each replica's cache (and, with `UPSTREAM_JWT=true`, at \
         most this many signed assertions kept for reuse)",
    ),
    var(
        Cookie,
        "COOKIE_SECRET",
        Words("required (or `_FILE`)"),
        "at least 32 bytes; signs cookies and encrypts tokens at rest. Make one: \
         `openssl rand -base64 32 \\| tr -d '\\n'`",
    ),
    var(
        Cookie,
        "COOKIE_SECRET_FILE",
        Words("unset"),
        "path of a file holding the cookie secret",
    ),
    var(
        Cookie,
        "COOKIE_NAME",
        Value(DEFAULT_COOKIE_NAME),
        "session cookie name (letters, digits, `-`, `_`). For a single host, \
         `__Host-portcullis` is recommended: browsers then keep the cookie only Secure, \
         `Path=/` and without `Domain`, so a sibling subdomain cannot plant or overwrite it; \
         every cookie portcullis sets (sign-in cookies too) then has those attributes, and \
         `COOKIE_DOMAIN` or `COOKIE_SECURE=false` with it is a configuration error. A request \
         that carries the session cookie more than once (cookie tossing) is treated as not \
         signed in.",
    ),
    var(
        Cookie,
        "COOKIE_DOMAIN",
        Words("unset (host-only)"),
        "e.g. `.example.com` to share the session between subdomains",
    ),
    var(
        Cookie,
        "COOKIE_SECURE",
        Value("true"),
        "`false` only for plain-http local setups",
    ),
    var(
        Cookie,
        "SESSION_LIFETIME",
        Value("12h"),
        "absolute session lifetime (`30m`, `12h`, `7d`; at least one minute, at most `400d`, \
         the longest cookie lifetime browsers keep)",
    ),
    var(
        Cookie,
        "SESSION_IDLE_TIMEOUT",
        Words("unset: no idle timeout"),
        "end a session not used for this long by an auth check, `/oauth2/userinfo` or \
         `/oauth2/sessions` (`30m`, `2h`; at least one minute, at most `SESSION_LIFETIME`): \
         never early, at most a minute late (see [Idle timeout](#idle-timeout))",
    ),
    var(
        Cookie,
        "SESSION_REFRESH_INTERVAL",
        Value("5m"),
        "how often a session's claims are read again from the IdP (refresh token, or userinfo \
         with the access token while it is valid), in the background after an auth check: a \
         group removed or an account disabled at the IdP takes effect within about this long \
         (`30s`, `5m`; `0` turns revalidation off). Sessions with nothing to revalidate with \
         keep their login's claims (see [Revalidation](#revalidation))",
    ),
    var(
        Cookie,
        "SESSION_REFRESH_GRACE",
        Value("15m"),
        "how long beyond `SESSION_REFRESH_INTERVAL` an IdP that cannot be reached is tolerated: \
         after that without a successful refresh, the session is treated as not signed in \
         until the IdP answers or the user signs in again (`0`: no tolerance)",
    ),
    var(
        Network,
        "ALLOWED_REDIRECT_DOMAINS",
        Words("host and port of `OIDC_REDIRECT_URL`, and `COOKIE_DOMAIN` on that port"),
        "comma list of hosts and dot-suffixes (`.example.com`: the domain and its subdomains) \
         where users may be sent after login and sign-out. A bare entry (`app.example.com`) \
         allows only the scheme's default port (443 for https, 80 for http); \
         `app.example.com:8443` only that port; `app.example.com:*` or `.example.com:*` any \
         port. Setting it replaces the default. Paths on portcullis' own origin (`/x`) are \
         always allowed.",
    ),
    var(
        Network,
        "TRUSTED_PROXIES",
        Words("loopback and private ranges"),
        "comma list of CIDRs or addresses whose `X-Forwarded-*` / `X-Original-URL` headers \
         are believed; requests from other peers get 400. Default: `127.0.0.0/8, ::1, \
         10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7`",
    ),
    var(
        Network,
        "ALLOW_ENCODED_SLASHES",
        Value("false"),
        "let `%2F`/`%5C` through in the original request's path (apps such as GitLab's API \
         use them); otherwise 400. Dot segments (`/../`, `%2e%2e`) are refused whatever it says",
    ),
    var(
        Network,
        "LISTEN_ADDR",
        Value("0.0.0.0:4180"),
        "address and port to listen on",
    ),
    var(
        Network,
        "SHUTDOWN_DELAY",
        Value("2s"),
        "on SIGTERM (or SIGINT), how long `/readyz` answers 503 while the listeners keep serving, \
         so that load balancers and Kubernetes stop sending requests first; then the listeners \
         close, requests in flight finish (at most 5 seconds) and the process exits 0 (`0`: no \
         delay; at most `1h`; a second signal ends the delay; see [Stopping](#stopping))",
    ),
    var(
        Admin,
        "ADMIN_ADDR",
        Words("unset: no admin listener"),
        "address and port of the admin API (`/sessions` to list and end sessions, `/metrics` \
         for Prometheus, `/healthz`), e.g. `127.0.0.1:4181`: a listener of its own, never the \
         one the proxy routes to. It must differ from `LISTEN_ADDR` and needs `ADMIN_TOKEN`; it \
         speaks plain http, so keep it on loopback or a private network (see \
         [Revocation by an operator](#revocation-by-an-operator))",
    ),
    var(
        Admin,
        "ADMIN_TOKEN",
        Words("required with `ADMIN_ADDR` (or `_FILE`)"),
        "the admin API's bearer token: at least 32 bytes, printable ASCII without spaces. Make \
         one: `openssl rand -base64 32 \\| tr -d '\\n'`",
    ),
    var(
        Admin,
        "ADMIN_TOKEN_FILE",
        Words("unset"),
        "path of a file holding the admin token",
    ),
    var(
        Logging,
        "LOG_FORMAT",
        Value("text"),
        "or `json`; levels by `RUST_LOG` (e.g. `RUST_LOG=debug`)",
    ),
    var(
        Logging,
        "LOG_CLAIMS",
        Value("false"),
        "log every login's merged claims at debug level (personal data: for troubleshooting \
         only)",
    ),
    var(
        Logging,
        "ACCESS_LOG",
        Value("false"),
        "log one `info` line per auth check: the visited request's method, host and path (never \
         its query), the status, the outcome, the user if any and the duration (see \
         [Metrics and logs](#metrics-and-logs))",
    ),
    var(
        Rules,
        "REQUIRE_GROUP",
        Words("unset: any signed-in user"),
        "comma list: exact group, `^prefix`, or `GroupMap` (any key of `GROUP_MAP`); matched \
         against the IdP's group names",
    ),
    var(
        Rules,
        "ALLOW_LOGIN_WITHOUT_GROUPS",
        Value("false"),
        "let users with no groups at all pass `REQUIRE_GROUP`",
    ),
    var(
        Rules,
        "ADMINS",
        Words("empty"),
        "comma list of usernames (values of `OIDC_USERNAME_CLAIM`) who pass every rule; \
         with several providers written `provider:user` (`keycloak:alice`)",
    ),
    var(
        Rules,
        "GROUP_MAP",
        Words("empty"),
        "JSON object from IdP group to app group(s): \
         `{\"ACME Engineering\": [\"Support\", \"Engineering\"]}`",
    ),
    var(
        Rules,
        "GROUP_MAP_STRICT",
        Value("false"),
        "drop IdP groups that are not keys of `GROUP_MAP` from the headers",
    ),
    var(
        Rules,
        "DEFAULT_GROUPS",
        Words("empty"),
        "groups sent to the app for users without any IdP group (never satisfy \
         `REQUIRE_GROUP`)",
    ),
    var(
        Rules,
        "ALLOWED_EMAIL_DOMAINS",
        Words("unset: no restriction"),
        "comma list; `.example.com` also matches subdomains; the email must be verified",
    ),
    var(
        Rules,
        "BEARER_TOKENS",
        Value("false"),
        "also accept API clients: a request without the session cookie but with \
         `Authorization: Bearer <JWT>` is checked as an access token of the configured \
         provider(s) and, when valid, passes the same rules with the token's claims; no session \
         is created. A refused token answers 401 with `WWW-Authenticate: Bearer \
         error=\"invalid_token\"`, never a redirect (see [Bearer tokens for API \
         clients](#bearer-tokens-for-api-clients))",
    ),
    var(
        Rules,
        "BEARER_AUDIENCES",
        Words("required with `BEARER_TOKENS`"),
        "comma list: a bearer token's `aud` must contain at least one of these (the API's \
         resource indicator or audience at the IdP). Set without `BEARER_TOKENS=true`: a \
         configuration error",
    ),
    var(
        Assertion,
        "UPSTREAM_JWT",
        Value("false"),
        "every 2xx of the auth endpoints also carries `X-Auth-Request-Jwt`, an ES256 JWT of \
         the user for the app to verify against `GET /oauth2/jwks` (see [The signed identity \
         assertion](#the-signed-identity-assertion)); `false`: no such header, and \
         `/oauth2/jwks` answers 404",
    ),
    var(
        Assertion,
        "UPSTREAM_JWT_KEY_FILE",
        Words("unset: derived from `COOKIE_SECRET`"),
        "path of a PEM P-256 private key (PKCS#8 or SEC1) that signs the assertions. Make one: \
         `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out upstream-jwt.pem`. \
         Unset: a key derived from `COOKIE_SECRET`, the same on every replica (rotating the \
         secret rotates it too). Set while `UPSTREAM_JWT` is not `true`: a configuration error",
    ),
    var(
        Assertion,
        "UPSTREAM_JWT_PREVIOUS_KEY_FILE",
        Words("unset"),
        "during a key rotation, the key signed with before (same format): listed in the JWKS \
         beside the current one so that assertions it signed still verify; it never signs. \
         Needs `UPSTREAM_JWT=true`",
    ),
];

/// The names of [`VARIABLES`], for code that only needs those.
pub const ENV_VARIABLES: &[&str] = &names::<{ VARIABLES.len() }>();

const fn names<const N: usize>() -> [&'static str; N] {
    let mut names = [""; N];
    let mut i = 0;
    while i < N {
        names[i] = VARIABLES[i].name;
        i += 1;
    }
    names
}

/// Our variables as set, keyed by their name in the table. Every name is present (unset as
/// `None`) so that reading a name twice, or one missing from the table, can be noticed.
pub(super) fn lookup(env: &HashMap<String, String>) -> HashMap<String, Option<String>> {
    VARIABLES
        .iter()
        .map(|variable| {
            // Empty values count as unset: compose files often carry `FOO=` lines.
            let value = env
                .get(variable.name)
                .filter(|value| !value.trim().is_empty())
                .cloned();
            (variable.name.to_string(), value)
        })
        .collect()
}

impl Unset {
    /// As a README table cell.
    pub fn markdown(self) -> String {
        match self {
            Value(value) => format!("`{value}`"),
            Words(words) => words.to_string(),
        }
    }

    /// As plain text for a terminal: no code marks, no table escapes.
    pub fn plain(self) -> String {
        match self {
            Value(value) => value.to_string(),
            Words(words) => words.replace('`', "").replace("\\|", "|"),
        }
    }
}

impl Variable {
    /// The variable's row in the README's configuration table.
    pub fn readme_row(&self) -> String {
        format!(
            "| `{}` | {} | {} |",
            self.name,
            self.default.markdown(),
            self.meaning
        )
    }
}

/// The variables and their defaults by section, for `portcullis --help`.
pub fn help() -> String {
    let width = VARIABLES.iter().map(|v| v.name.len()).max().unwrap_or(0);
    let mut text = String::from(
        "Configuration: environment variables only, with these defaults. The README's \
         configuration\ntable explains each; portcullis check tries a configuration out.\n",
    );
    for &section in SECTIONS {
        text.push_str(&format!("\n  {}:\n", section.title()));
        for variable in VARIABLES.iter().filter(|v| v.section == section) {
            text.push_str(&format!(
                "    {:width$}  {}\n",
                variable.name,
                variable.default.plain()
            ));
        }
    }
    text
}
