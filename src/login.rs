//! The login's decisions, free of I/O: what a login in progress remembers and how it travels in
//! the browser's sealed login cookie, and whether a callback may complete it.
//!
//! A login in progress lives in the browser, not in the store: `/oauth2/start` seals the PKCE
//! verifier, the nonce and the return address into a cookie named after the `state`, so that an
//! anonymous flood of starts costs the store nothing. The store only learns of a login when its
//! callback arrives with a genuine cookie, and then keeps a marker that the `state` was used.
//! The cookie is bound to the browser (only it holds it), one per login (two tabs sign in at
//! once), and it expires with the login.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::claims::{self, UsernameError};
use crate::config::{Config, ProviderSettings};
use crate::crypto::Keys;
use crate::lifecycle::Tokens;
use crate::policy::{self, Decision, DenyReason, Identity, RouteRules};
use crate::session::Session;

/// How long a started login may take before its `state` expires (seconds).
pub const LOGIN_TTL_SECS: u64 = 600;

/// Browsers keep cookies of up to 4096 bytes of name and value; a chunk stays well below.
pub const COOKIE_CHUNK_LEN: usize = 3800;
/// A 4 KB return address sealed takes two chunks; three leave room and still bound the header.
pub const MAX_COOKIE_CHUNKS: usize = 3;

/// The first byte of every sealed login: bytes in another format are refused, never guessed at.
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;

/// A login between `/oauth2/start` and `/oauth2/callback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The `state` sent to the IdP: the callback must bring back this one.
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Where the browser goes after login (already checked against the allow-list).
    pub return_to: String,
    /// Unix seconds; the login is void from then on.
    pub expires_at: u64,
    /// The provider the login was sent to (`None`: the one unnamed provider): its callback,
    /// and only its, may complete it.
    pub provider: Option<String>,
}

/// A login started before logins knew their provider: the one unnamed provider's.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct LoginStateV1 {
    state: String,
    pkce_verifier: String,
    nonce: String,
    return_to: String,
    expires_at: u64,
}

impl LoginState {
    /// The sealed cookie value, split into chunks that each fit a cookie.
    pub fn seal(&self, keys: &Keys) -> Option<Vec<String>> {
        let bytes = postcard::to_extend(self, vec![FORMAT_V2]).ok()?;
        let sealed = keys.seal_login(&bytes).ok()?;
        let chunks: Vec<String> = sealed
            .as_bytes()
            .chunks(COOKIE_CHUNK_LEN)
            .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
            .collect();
        (chunks.len() <= MAX_COOKIE_CHUNKS).then_some(chunks)
    }

    /// The login sealed in `chunks` (in order), if they are ours and untouched.
    pub fn open(chunks: &[&str], keys: &Keys) -> Option<LoginState> {
        if chunks.is_empty() || chunks.len() > MAX_COOKIE_CHUNKS {
            return None;
        }
        let bytes = keys.open_login(&chunks.concat()).ok()?;
        match bytes.split_first() {
            Some((&FORMAT_V2, rest)) => match postcard::take_from_bytes(rest) {
                Ok((login, [])) => Some(login),
                _ => None,
            },
            Some((&FORMAT_V1, rest)) => match postcard::take_from_bytes::<LoginStateV1>(rest) {
                Ok((v1, [])) => Some(LoginState {
                    state: v1.state,
                    pkce_verifier: v1.pkce_verifier,
                    nonce: v1.nonce,
                    return_to: v1.return_to,
                    expires_at: v1.expires_at,
                    provider: None,
                }),
                _ => None,
            },
            _ => None,
        }
    }
}

/// The callback's query parameters; a repeated parameter keeps its first value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub iss: Option<String>,
}

impl CallbackParams {
    pub fn parse(query: &str) -> CallbackParams {
        let mut params = CallbackParams::default();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match key.as_ref() {
                "state" => &mut params.state,
                "code" => &mut params.code,
                "error" => &mut params.error,
                "error_description" => &mut params.error_description,
                "iss" => &mut params.iss,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        params.state = params.state.filter(|s| !s.is_empty());
        params
    }
}

/// Why a callback cannot complete its login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackFailure {
    /// The IdP answered with an error instead of a code.
    IdpError {
        error: String,
        description: String,
    },
    MissingState,
    /// No login cookie for this `state`: another browser, a lost cookie, or (when the store
    /// says the state was used) a replay.
    NoLoginCookie,
    /// A login cookie whose sealed state is not this callback's.
    StateMismatch,
    Expired,
    /// RFC 9207: the IdP named another issuer in the response (a mix-up attack).
    IssuerMismatch {
        found: String,
    },
    /// The login was sent to another provider than the one whose callback this is (a code or
    /// state of one provider presented at another's callback).
    ProviderMismatch {
        started: Option<String>,
        callback: Option<String>,
    },
    MissingCode,
    /// The store already had this `state` as used.
    AlreadyUsed,
}

impl CallbackFailure {
    /// What the user reads on the error page.
    pub fn message(&self) -> &'static str {
        match self {
            CallbackFailure::IdpError { error, .. } if error == "access_denied" => {
                "The identity provider did not allow this sign-in."
            }
            CallbackFailure::IdpError { .. } => "The identity provider reported an error.",
            CallbackFailure::MissingState | CallbackFailure::MissingCode => {
                "This sign-in link is incomplete."
            }
            CallbackFailure::NoLoginCookie | CallbackFailure::StateMismatch => {
                "This sign-in was started in another browser or its cookie was lost."
            }
            CallbackFailure::Expired | CallbackFailure::AlreadyUsed => {
                "This sign-in has expired or was already used."
            }
            CallbackFailure::IssuerMismatch { .. } | CallbackFailure::ProviderMismatch { .. } => {
                "The sign-in response came from an unexpected identity provider."
            }
        }
    }

    /// What the log says.
    pub fn detail(&self) -> String {
        match self {
            CallbackFailure::IdpError { error, description } => {
                format!("the identity provider answered {error:?}: {description:?}")
            }
            CallbackFailure::MissingState => "callback without state".to_string(),
            CallbackFailure::NoLoginCookie => "no login cookie for this state".to_string(),
            CallbackFailure::StateMismatch => {
                "the login cookie was sealed for another state".to_string()
            }
            CallbackFailure::Expired => "the login expired".to_string(),
            CallbackFailure::IssuerMismatch { found } => {
                format!("authorization response iss {found:?} is not the configured issuer")
            }
            CallbackFailure::ProviderMismatch { started, callback } => format!(
                "the login was started at provider {:?} but came back to the callback of {:?}",
                started.as_deref().unwrap_or(""),
                callback.as_deref().unwrap_or("")
            ),
            CallbackFailure::MissingCode => "callback without code".to_string(),
            CallbackFailure::AlreadyUsed => "the state was already used (a replay)".to_string(),
        }
    }

    /// 403 when the IdP refused the user, 400 for everything else (a broken or crafted request).
    pub fn is_refusal(&self) -> bool {
        matches!(self, CallbackFailure::IdpError { error, .. } if error == "access_denied")
    }
}

/// Decides whether a callback may go on to the code exchange, and with which code. `login` is
/// the login sealed in the cookie named after the callback's `state`, if there was one.
/// `callback_provider` is the provider whose callback path this is, `issuer` its issuer.
pub fn verify_callback<'p>(
    params: &'p CallbackParams,
    login: Option<&LoginState>,
    callback_provider: Option<&str>,
    issuer: &str,
    now: u64,
) -> Result<&'p str, CallbackFailure> {
    if let Some(error) = &params.error {
        return Err(CallbackFailure::IdpError {
            error: error.clone(),
            description: params.error_description.clone().unwrap_or_default(),
        });
    }
    let state = params
        .state
        .as_deref()
        .ok_or(CallbackFailure::MissingState)?;
    let login = login.ok_or(CallbackFailure::NoLoginCookie)?;
    if !constant_time_eq(login.state.as_bytes(), state.as_bytes()) {
        return Err(CallbackFailure::StateMismatch);
    }
    if now >= login.expires_at {
        return Err(CallbackFailure::Expired);
    }
    if login.provider.as_deref() != callback_provider {
        return Err(CallbackFailure::ProviderMismatch {
            started: login.provider.clone(),
            callback: callback_provider.map(str::to_string),
        });
    }
    if let Some(iss) = &params.iss {
        if iss != issuer {
            return Err(CallbackFailure::IssuerMismatch { found: iss.clone() });
        }
    }
    params
        .code
        .as_deref()
        .filter(|code| !code.is_empty())
        .ok_or(CallbackFailure::MissingCode)
}

/// Why validated claims do not become a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRefusal {
    /// The claims do not say who the user is (or say it with an unverified email).
    Username(UsernameError),
    /// The global rules refuse this user: no session is created.
    Rule { user: String, rule: DenyReason },
}

/// What the sessions lists show of the browser that signed in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

/// Longest `User-Agent` kept: enough to tell browsers apart, bounded for the store.
const MAX_USER_AGENT_CHARS: usize = 200;

impl Client {
    /// From the callback's `User-Agent` and client address (as the trusted proxy reported it).
    pub fn new(user_agent: Option<&str>, address: Option<String>) -> Client {
        Client {
            user_agent: user_agent
                .map(|ua| ua.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
                .filter(|ua| !ua.is_empty()),
            address,
        }
    }
}

/// The session a login's validated claims give, at `now`, if the global rules let the user in.
pub fn session_from_claims(
    claims: &Value,
    config: &Config,
    provider: &ProviderSettings,
    now: u64,
    client: Client,
) -> Result<Session, SessionRefusal> {
    let person = claims::person(
        claims,
        &provider.username_claim,
        &provider.groups_claim,
        config.allow_unverified_email,
    )
    .map_err(SessionRefusal::Username)?;
    let session = Session {
        email: person.email,
        email_verified: person.email_verified,
        preferred_username: person.preferred_username,
        groups: person.groups,
        created_at: now,
        expires_at: now.saturating_add(config.session_lifetime.as_secs()),
        user: person.user,
        // The ID token was verified to have a `sub`; `sid` is optional (OIDC Core, Front- and
        // Back-Channel Logout).
        subject: claims::string_claim(claims, "sub").unwrap_or_default(),
        idp_session: claims::string_claim(claims, "sid"),
        claims_read_at: now,
        user_agent: client.user_agent,
        address: client.address,
        // What the tokens allow is the caller's to say: the claims do not know.
        refreshable_until: 0,
        provider: provider.name.clone(),
    };
    let idp_groups: Vec<&str> = session.groups.iter().map(String::as_str).collect();
    let identity = Identity {
        provider: session.provider.as_deref(),
        username: &session.user,
        email: session.email.as_deref(),
        email_verified: session.email_verified,
        idp_groups: &idp_groups,
    };
    match policy::decide(&provider.rules, &RouteRules::default(), &identity) {
        Decision::Allow { .. } => Ok(session),
        Decision::Deny(rule) => Err(SessionRefusal::Rule {
            user: session.user,
            rule,
        }),
    }
}

/// What a session keeps of its login's tokens. The ID token: as the `id_token_hint` of an IdP
/// logout (with `OIDC_POST_LOGOUT_REDIRECT_URL`), and with revalidation as the claims userinfo
/// is merged over. With revalidation (`SESSION_REFRESH_INTERVAL` not 0), the refresh token if
/// the provider gave one, else the access token while it is valid, and the login's nonce (a
/// refreshed ID token may repeat it). Without revalidation no refresh or access token is kept:
/// nothing would use it, and there is less to leak.
pub fn kept_tokens(
    config: &Config,
    verified: &crate::oidc::VerifiedLogin,
    nonce: &str,
    now: u64,
) -> Tokens {
    let revalidate = config.session_refresh.interval > 0;
    let logout = config.post_logout_redirect_url.is_some();
    let mut tokens = Tokens {
        id_token: (logout || revalidate).then(|| verified.id_token.clone()),
        ..Tokens::default()
    };
    if revalidate {
        tokens.refresh_token = verified.refresh_token.clone();
        tokens.nonce = Some(nonce.to_string());
        // Only useful without a refresh token, and only while it is valid.
        if tokens.refresh_token.is_none() {
            if let Some(lifetime) = verified.access_token_expires_in {
                tokens.access_token = Some(verified.access_token.clone());
                tokens.access_token_expires_at = Some(now.saturating_add(lifetime.as_secs()));
            }
        }
    }
    tokens
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
#[path = "login_tests.rs"]
mod tests;
