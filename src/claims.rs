//! Reading values out of ID token and userinfo claims.
//!
//! Identity providers disagree about where they put things (Keycloak nests roles under
//! `realm_access.roles`, Auth0 uses URL-shaped top-level claim names, Cognito sends
//! booleans as strings), so these helpers are deliberately forgiving about shape and
//! strict only where a wrong answer could grant access.

use serde_json::{Map, Value};

/// Claims that describe the token itself rather than the user. The ID token's values
/// were verified against the IdP's signature; userinfo is a plain JSON response, so it
/// must never replace them.
const PROTOCOL_CLAIMS: &[&str] = &[
    "iss",
    "aud",
    "azp",
    "exp",
    "iat",
    "nbf",
    "nonce",
    "auth_time",
    "at_hash",
    "c_hash",
    "sid",
    "sub",
];

/// Finds the value at a dot-separated `path` such as `realm_access.roles` or
/// `resource_access.my-client.roles`.
///
/// Claim names may themselves contain dots (Auth0 namespaces custom claims as
/// `https://example.com/groups`), so at every level the longest run of segments that is
/// a literal key wins: first the whole remaining path, then one segment fewer, and so
/// on. If a longer key exists but the rest of the path cannot be found beneath it,
/// shorter keys are tried too. A path that is empty or has an empty segment (`a..b`,
/// `.a`, `a.`) finds nothing.
pub fn lookup<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if path.split('.').any(str::is_empty) {
        return None;
    }
    lookup_longest_key_first(claims, path)
}

fn lookup_longest_key_first<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    if let Some(found) = object.get(path) {
        return Some(found);
    }
    path.rmatch_indices('.').find_map(|(dot, _)| {
        let child = object.get(&path[..dot])?;
        lookup_longest_key_first(child, &path[dot + 1..])
    })
}

/// The group names at `path`. IdPs send either a list or, when the user is in a single
/// group, a bare string; both are accepted. Non-string list entries and empty names are
/// ignored, and a missing claim means no groups.
pub fn groups(claims: &Value, path: &str) -> Vec<String> {
    match lookup(claims, path) {
        Some(Value::String(name)) if !name.is_empty() => vec![name.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

/// The claim at `path` as text. Numbers are rendered in decimal because some IdPs use
/// numeric user ids. An empty string counts as absent, since an empty username or email
/// is never meaningful and would only invite accidental matches.
pub fn string_claim(claims: &Value, path: &str) -> Option<String> {
    match lookup(claims, path)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Whether the claim at `path` is true. The string `"true"` is accepted as well because
/// AWS Cognito and some other IdPs send booleans as strings; anything else is false.
pub fn bool_claim(claims: &Value, path: &str) -> bool {
    match lookup(claims, path) {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text == "true",
        _ => false,
    }
}

/// The email to hand the app (identity headers, `/oauth2/userinfo`), if any. An address the IdP
/// does not vouch for is not an identity: at many IdPs users type their own email, so forwarding
/// it unverified would let anyone claim anyone's address in the app. Only
/// `OIDC_ALLOW_UNVERIFIED_EMAIL` (`allow_unverified`) lifts that.
pub fn forwarded_email(
    email: Option<&str>,
    verified: bool,
    allow_unverified: bool,
) -> Option<&str> {
    email.filter(|_| verified || allow_unverified)
}

/// Why no username could be taken from the claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("the claim {claim:?} is missing")]
    Missing { claim: String },
    #[error("OIDC_USERNAME_CLAIM is email, but the IdP does not say the email is verified")]
    EmailNotVerified,
}

impl UsernameError {
    /// What the sign-in error page tells the user (the `Display` text is for the log).
    pub fn page_message(&self) -> &'static str {
        match self {
            UsernameError::Missing { .. } => "The identity provider did not say who you are.",
            UsernameError::EmailNotVerified => {
                "Your email address is not verified at the identity provider, so it cannot be \
                 used to sign in here."
            }
        }
    }
}

/// The username: the claim named by `OIDC_USERNAME_CLAIM` (see [`string_claim`]). When that
/// claim is `email`, the email must also be verified (`email_verified` true, or `"true"`), unless
/// `allow_unverified_email`: otherwise whoever types someone else's address at the IdP would sign
/// in as them.
pub fn username(
    claims: &Value,
    username_claim: &str,
    allow_unverified_email: bool,
) -> Result<String, UsernameError> {
    let user = string_claim(claims, username_claim).ok_or_else(|| UsernameError::Missing {
        claim: username_claim.to_owned(),
    })?;
    if username_claim == "email" && !allow_unverified_email && !bool_claim(claims, "email_verified")
    {
        return Err(UsernameError::EmailNotVerified);
    }
    Ok(user)
}

/// Who the claims say the user is: what a session keeps and the identity headers show. A login
/// reads it from the ID token (merged with userinfo), a bearer check from the access token, with
/// the same provider settings, so the two name a user alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub groups: Vec<String>,
}

/// The [`Person`] of `claims`: the username from `username_claim` (see [`username`]) and the
/// groups from `groups_claim` (see [`groups`]).
pub fn person(
    claims: &Value,
    username_claim: &str,
    groups_claim: &str,
    allow_unverified_email: bool,
) -> Result<Person, UsernameError> {
    Ok(Person {
        user: username(claims, username_claim, allow_unverified_email)?,
        email: string_claim(claims, "email"),
        email_verified: bool_claim(claims, "email_verified"),
        preferred_username: string_claim(claims, "preferred_username"),
        groups: groups(claims, groups_claim),
    })
}

/// Adds userinfo claims to the ID token claims. Userinfo is fresher for profile data
/// (groups, email) so it wins on conflicts. Protocol claims (`iss`, `aud`, `sub`,
/// `nonce`, ...) are taken only from the signed ID token: userinfo's copies are ignored
/// even when the ID token lacks them, because a token property the IdP did not sign
/// should not appear to have been signed. The caller must already have checked that both
/// responses have the same `sub`.
pub fn merge_userinfo(id_token_claims: &mut Map<String, Value>, userinfo: &Map<String, Value>) {
    let profile_claims = userinfo
        .iter()
        .filter(|(name, _)| !PROTOCOL_CLAIMS.contains(&name.as_str()));
    for (name, value) in profile_claims {
        id_token_claims.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
#[path = "claims_tests.rs"]
mod tests;
