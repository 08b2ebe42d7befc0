//! The identity providers: the one of the unprefixed `OIDC_*` variables, or the several that
//! `OIDC_PROVIDERS` names, each with its own `OIDC_<NAME>_*` variables.

use std::collections::{BTreeSet, HashMap};

use url::Url;

use super::entra::{EntraGraph, ProviderKind};
use super::suggest::edit_distance;
use super::values::{is_loopback_host, parse_issuer, parse_scopes};
use super::variables::{
    DEFAULT_GROUPS_CLAIM, DEFAULT_SCOPES, DEFAULT_TOKEN_AUTH_METHOD, DEFAULT_USERNAME_CLAIM,
    ENV_VARIABLES,
};
use super::{Findings, TokenAuthMethod};
use crate::oidc::ClientKey;
use crate::policy::{self, GlobalRules, GroupMap};
use crate::secret::Secret;

/// What each provider is configured by, after `OIDC_` (one provider) or `OIDC_<NAME>_`. The
/// last two only exist per named provider: one provider is named by nothing and uses the
/// global `GROUP_MAP`.
pub const PROVIDER_SUFFIXES: &[&str] = &[
    "ISSUER_URL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLIENT_SECRET_FILE",
    "SCOPES",
    "USERNAME_CLAIM",
    "GROUPS_CLAIM",
    "TOKEN_AUTH_METHOD",
    "PROVIDER_KIND",
    "PRIVATE_KEY_FILE",
    "PRIVATE_KEY_ID",
    "PRIVATE_KEY_CERT_FILE",
    "DISPLAY_NAME",
    "GROUP_MAP",
];

/// The suffixes that only a named provider has.
const NAMED_ONLY: &[&str] = &["DISPLAY_NAME", "GROUP_MAP"];

pub const MAX_NAME_LEN: usize = 32;

/// Claims users may be able to change at the IdP, and so become someone else.
const MUTABLE_CLAIMS: &[&str] = &["email", "preferred_username", "name", "upn"];

/// One identity provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `None`: the one provider of the unprefixed `OIDC_*` variables.
    pub name: Option<String>,
    /// Shown on the sign-in page (`OIDC_<NAME>_DISPLAY_NAME`, default the name).
    pub display_name: String,
    /// The issuer exactly as the provider must name itself (discovery suffix removed).
    pub issuer_url: String,
    pub client_id: String,
    /// How the client proves itself at the token endpoint, with what it needs for that.
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    /// `OIDC_PROVIDER_KIND` (per provider too), or detected from the issuer.
    pub kind: ProviderKind,
    /// For an Entra provider, where its users' groups are read when the ID token has too many
    /// to hold (`ENTRA_GRAPH_URL`, `ENTRA_GROUP_NAMES`); `None` for any other kind. Filled in
    /// once those are read.
    pub entra: Option<EntraGraph>,
    /// `OIDC_<NAME>_GROUP_MAP`: replaces the global `GROUP_MAP` for this provider's users.
    pub group_map: Option<GroupMap>,
    /// The global rules as they apply to this provider's users (its group map in place of the
    /// global one).
    pub rules: GlobalRules,
}

/// The client's authentication at the token endpoint (`OIDC_TOKEN_AUTH_METHOD`): a secret, or
/// with `private_key_jwt` a key of its own and no secret.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    ClientSecretBasic(Secret),
    ClientSecretPost(Secret),
    /// Boxed: the key is large and the secret methods are the common case.
    PrivateKeyJwt(Box<ClientKey>),
}

impl ClientAuth {
    pub fn method(&self) -> TokenAuthMethod {
        match self {
            ClientAuth::ClientSecretBasic(_) => TokenAuthMethod::ClientSecretBasic,
            ClientAuth::ClientSecretPost(_) => TokenAuthMethod::ClientSecretPost,
            ClientAuth::PrivateKeyJwt(_) => TokenAuthMethod::PrivateKeyJwt,
        }
    }

    /// The client secret, unless the client authenticates with its key.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            ClientAuth::ClientSecretBasic(secret) | ClientAuth::ClientSecretPost(secret) => {
                Some(secret)
            }
            ClientAuth::PrivateKeyJwt(_) => None,
        }
    }

    /// The signing key of `private_key_jwt`.
    pub fn key(&self) -> Option<&ClientKey> {
        match self {
            ClientAuth::PrivateKeyJwt(key) => Some(key.as_ref()),
            _ => None,
        }
    }
}

impl ProviderSettings {
    /// The callback to register at this provider: `OIDC_REDIRECT_URL`, with `/<name>` after
    /// it for a named provider.
    pub fn callback_url(&self, redirect_url: &Url) -> Url {
        match &self.name {
            None => redirect_url.clone(),
            Some(name) => {
                let mut url = redirect_url.clone();
                let path = format!("{}/{name}", redirect_url.path().trim_end_matches('/'));
                url.set_path(&path);
                url
            }
        }
    }

    /// The issuer's discovery document address.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer_url.trim_end_matches('/')
        )
    }

    /// The name as the app and logs see it: empty for the one unnamed provider.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// `OIDC_` for the one provider, `OIDC_<NAME>_` (upper case, hyphens as underscores) for a
/// named one.
pub fn prefix(name: Option<&str>) -> String {
    match name {
        None => "OIDC_".to_string(),
        Some(name) => format!("OIDC_{}_", name.to_ascii_uppercase().replace('-', "_")),
    }
}

/// Reads `OIDC_PROVIDERS`: lower-case `[a-z0-9-]` names of at most 32 characters, unique.
pub fn parse_provider_names(value: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = value
        .split(',')
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err("name at least one provider".to_string());
    }
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for name in &names {
        let valid_chars = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || name.starts_with('-') || name.ends_with('-') {
            problems.push(format!(
                "{name:?} is not a provider name (lower-case letters, digits and inner hyphens)"
            ));
        } else if name.len() > MAX_NAME_LEN {
            problems.push(format!("{name:?} is longer than {MAX_NAME_LEN} characters"));
        } else if !seen.insert(name.as_str()) {
            problems.push(format!("{name:?} is named twice"));
        } else if let Some(taken) = PROVIDER_SUFFIXES
            .iter()
            .map(|suffix| format!("{}{suffix}", prefix(Some(name))))
            .find(|var| ENV_VARIABLES.contains(&var.as_str()))
        {
            problems.push(format!(
                "{name:?} would be read from {taken}, which is a variable of its own"
            ));
        }
    }
    if problems.is_empty() {
        Ok(names)
    } else {
        Err(problems.join("; "))
    }
}

/// The prefixed variables of the named providers, as set (empty values count as unset), to be
/// taken like the table's. Every name is present, so that each is read exactly once.
pub(super) fn lookup(
    env: &HashMap<String, String>,
    names: &[String],
) -> HashMap<String, Option<String>> {
    names
        .iter()
        .flat_map(|name| {
            let prefix = prefix(Some(name));
            PROVIDER_SUFFIXES.iter().map(move |suffix| {
                let var = format!("{prefix}{suffix}");
                let value = env.get(&var).filter(|v| !v.trim().is_empty()).cloned();
                (var, value)
            })
        })
        .collect()
}

/// Set variables that look like a provider's (`OIDC_<NAME>_<SUFFIX>`) for a provider that
/// `names` does not list: each is a problem, naming the closest listed provider.
pub(super) fn unlisted(env: &HashMap<String, String>, names: &[String]) -> Vec<String> {
    let listed: BTreeSet<String> = names.iter().map(|n| prefix(Some(n))).collect();
    let mut found: Vec<String> = env
        .iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .filter_map(|(var, _)| {
            if ENV_VARIABLES.contains(&var.as_str()) {
                return None;
            }
            let rest = var.strip_prefix("OIDC_")?;
            // The longest suffix first: `CLIENT_SECRET_FILE` before `CLIENT_SECRET`.
            let mut suffixes: Vec<&str> = PROVIDER_SUFFIXES.to_vec();
            suffixes.sort_by_key(|s| std::cmp::Reverse(s.len()));
            let suffix = suffixes
                .into_iter()
                .find(|s| rest.len() > s.len() + 1 && rest.ends_with(&format!("_{s}")))?;
            let upper = &rest[..rest.len() - suffix.len() - 1];
            if listed.contains(&format!("OIDC_{upper}_")) {
                return None;
            }
            let written = upper.to_ascii_lowercase().replace('_', "-");
            Some(if names.is_empty() {
                format!(
                    "{var} is set for a provider named {written:?}, but OIDC_PROVIDERS is not \
                     set (list the providers there, or use the unprefixed OIDC_{suffix})"
                )
            } else {
                match closest(&written, names) {
                    Some(near) => format!(
                        "{var} is set for a provider named {written:?}, which OIDC_PROVIDERS \
                         does not list: did you mean {near:?} ({})?",
                        format_args!("{}{suffix}", prefix(Some(near)))
                    ),
                    None => format!(
                        "{var} is set for a provider named {written:?}, which OIDC_PROVIDERS \
                         does not list ({})",
                        names.join(", ")
                    ),
                }
            })
        })
        .collect();
    found.sort();
    found
}

/// The listed name nearest to `written`, if near enough to be a slip.
fn closest<'n>(written: &str, names: &'n [String]) -> Option<&'n str> {
    names
        .iter()
        .map(|name| (edit_distance(written, name), name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).clamp(1, 3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name.as_str())
}

impl Findings {
    /// `OIDC_PROVIDERS` and every provider's variables. `None` in the list stands for a
    /// provider whose required variables are missing or invalid (already a problem).
    pub(super) fn providers(
        &mut self,
        names: Option<Result<Vec<String>, String>>,
    ) -> Vec<Option<ProviderSettings>> {
        match names {
            None => vec![self.one_provider(None)],
            Some(Err(problem)) => {
                self.problem(format!("OIDC_PROVIDERS: {problem}"));
                // Which variables were meant is unknown: read none of them as a provider.
                for suffix in PROVIDER_SUFFIXES.iter().filter(|s| !NAMED_ONLY.contains(s)) {
                    let _ = self.take(&format!("OIDC_{suffix}"));
                }
                vec![None]
            }
            Some(Ok(names)) => {
                // The unprefixed provider variables mean nothing next to OIDC_PROVIDERS.
                for suffix in PROVIDER_SUFFIXES.iter().filter(|s| !NAMED_ONLY.contains(s)) {
                    let var = format!("OIDC_{suffix}");
                    if self.take(&var).is_some() {
                        self.problem(format!(
                            "{var} is set together with OIDC_PROVIDERS: set it per provider, \
                             as OIDC_<NAME>_{suffix}"
                        ));
                    }
                }
                names
                    .iter()
                    .map(|name| self.one_provider(Some(name)))
                    .collect()
            }
        }
    }

    fn one_provider(&mut self, name: Option<&str>) -> Option<ProviderSettings> {
        let prefix = prefix(name);
        let var = |suffix: &str| format!("{prefix}{suffix}");
        let issuer_url = self.issuer_url(&var("ISSUER_URL"));
        let client_id = self.required(&var("CLIENT_ID"));
        let scopes = parse_scopes(
            self.take(&var("SCOPES"))
                .as_deref()
                .unwrap_or(DEFAULT_SCOPES),
        );
        let username_claim = self.username_claim(&var("USERNAME_CLAIM"));
        let groups_claim = self
            .take(&var("GROUPS_CLAIM"))
            .unwrap_or_else(|| DEFAULT_GROUPS_CLAIM.to_string());
        let client_auth = self.client_auth(&prefix);
        let kind = self.provider_kind(&var("PROVIDER_KIND"), issuer_url.as_deref());
        let (display_name, group_map) = match name {
            None => (String::new(), None),
            Some(name) => (
                self.take(&var("DISPLAY_NAME"))
                    .map(|d| d.trim().to_string())
                    .unwrap_or_else(|| name.to_string()),
                self.parsed(&var("GROUP_MAP"), policy::parse_group_map),
            ),
        };
        Some(ProviderSettings {
            name: name.map(str::to_string),
            display_name,
            issuer_url: issuer_url?,
            client_id: client_id?,
            client_auth: client_auth?,
            scopes,
            username_claim,
            groups_claim,
            kind,
            // Filled in once ENTRA_GRAPH_URL is read.
            entra: None,
            group_map,
            // Filled in once the rules are read.
            rules: GlobalRules::default(),
        })
    }

    fn issuer_url(&mut self, var: &str) -> Option<String> {
        let issuer_url = self.required(var);
        let issuer_url = self.parse_value(var, issuer_url, parse_issuer);
        if let Some(url) = issuer_url.as_deref().and_then(|i| Url::parse(i).ok()) {
            if url.scheme() == "http" && !is_loopback_host(&url) {
                self.warn(format!(
                    "{var} {} is plain http: signing keys and tokens travel unprotected; use \
                     https",
                    url.as_str().trim_end_matches('/')
                ));
            }
        }
        issuer_url
    }

    fn username_claim(&mut self, var: &str) -> String {
        let claim = self
            .take(var)
            .unwrap_or_else(|| DEFAULT_USERNAME_CLAIM.to_string());
        if MUTABLE_CLAIMS.contains(&claim.as_str()) {
            self.warn(format!(
                "{var}={claim}: users may be able to change this claim at the IdP and so \
                 become someone else in your apps; `sub` is stable"
            ));
        }
        claim
    }

    /// `TOKEN_AUTH_METHOD` with the secret or the key it needs: a secret for the
    /// `client_secret_*` methods, a private key file (and no secret) for `private_key_jwt`.
    /// The key and a secret are never both set, so that what authenticates is never in doubt.
    fn client_auth(&mut self, prefix: &str) -> Option<ClientAuth> {
        let var = |suffix: &str| format!("{prefix}{suffix}");
        let method_var = var("TOKEN_AUTH_METHOD");
        let method = self.token_auth_method(&method_var);
        let key_file_var = var("PRIVATE_KEY_FILE");
        let key_file = self.take(&key_file_var);
        let key_id_var = var("PRIVATE_KEY_ID");
        let key_id = self.take(&key_id_var).map(|kid| kid.trim().to_string());
        let cert_file_var = var("PRIVATE_KEY_CERT_FILE");
        let cert_file = self.take(&cert_file_var);
        let uses_key = method == Some(TokenAuthMethod::PrivateKeyJwt);
        let secret_var = var("CLIENT_SECRET");
        // Required by the secret methods only: a misspelt method is its own problem.
        let secret = self.secret(&secret_var, method.is_some() && !uses_key);
        let method = method?;
        if !uses_key {
            for (set, name) in [
                (key_file.is_some(), &key_file_var),
                (key_id.is_some(), &key_id_var),
                (cert_file.is_some(), &cert_file_var),
            ] {
                if set {
                    self.problem(format!(
                        "{name} is set, but {method_var} is {}: the key is used only with \
                         {method_var}=private_key_jwt (set that, or remove {name})",
                        method.as_str()
                    ));
                }
            }
        }
        match method {
            TokenAuthMethod::ClientSecretBasic => Some(ClientAuth::ClientSecretBasic(secret?)),
            TokenAuthMethod::ClientSecretPost => Some(ClientAuth::ClientSecretPost(secret?)),
            TokenAuthMethod::PrivateKeyJwt => {
                if secret.is_some() {
                    self.problem(format!(
                        "{secret_var} is set, but {method_var}=private_key_jwt authenticates \
                         with {key_file_var} and sends no secret: remove the secret"
                    ));
                }
                let Some(path) = key_file else {
                    self.problem(format!(
                        "{key_file_var} is required with {method_var}=private_key_jwt: the path \
                         of a PKCS#8 PEM private key; make one with: {}",
                        crate::oidc::KEY_HOWTO
                    ));
                    return None;
                };
                let key = self.client_key(&key_file_var, &path, key_id)?;
                let key = match cert_file {
                    None => key,
                    Some(cert_path) => self.client_certificate(&cert_file_var, &cert_path, key)?,
                };
                secret
                    .is_none()
                    .then(|| ClientAuth::PrivateKeyJwt(Box::new(key)))
            }
        }
    }

    /// The private key of `private_key_jwt` from its file. Problems say what the file is, never
    /// what it holds.
    fn client_key(&mut self, var: &str, path: &str, kid: Option<String>) -> Option<ClientKey> {
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(err) => {
                self.problem(format!("{var}: cannot read {path}: {err}"));
                return None;
            }
        };
        match ClientKey::from_pem(&pem, kid) {
            Ok(key) => Some(key),
            Err(err) => {
                self.problem(format!("{var}: {path} is {err}"));
                None
            }
        }
    }

    /// `key` with the certificate of `PRIVATE_KEY_CERT_FILE`, which must be of that key.
    fn client_certificate(&mut self, var: &str, path: &str, key: ClientKey) -> Option<ClientKey> {
        let pem = match std::fs::read(path) {
            Ok(pem) => pem,
            Err(err) => {
                self.problem(format!("{var}: cannot read {path}: {err}"));
                return None;
            }
        };
        match key.with_certificate(&pem) {
            Ok(key) => Some(key),
            Err(err) => {
                self.problem(format!("{var}: {path} is {err}"));
                None
            }
        }
    }

    fn token_auth_method(&mut self, var: &str) -> Option<TokenAuthMethod> {
        match self.take(var).as_deref().map(str::trim) {
            None => Some(DEFAULT_TOKEN_AUTH_METHOD),
            Some("client_secret_basic") => Some(TokenAuthMethod::ClientSecretBasic),
            Some("client_secret_post") => Some(TokenAuthMethod::ClientSecretPost),
            Some("private_key_jwt") => Some(TokenAuthMethod::PrivateKeyJwt),
            Some(other) => {
                self.problem(format!(
                    "{var}: expected client_secret_basic, client_secret_post or private_key_jwt, \
                     got {other:?}"
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_are_short_lower_case_and_unique() {
        assert_eq!(
            parse_provider_names(" keycloak, google ,my-idp2"),
            Ok(vec!["keycloak".into(), "google".into(), "my-idp2".into()])
        );
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            ",",
            "Keycloak",
            "key_cloak",
            "key cloak",
            "-idp",
            "idp-",
            "ké",
            long.as_str(),
            "google,google",
        ] {
            assert!(parse_provider_names(bad).is_err(), "{bad:?}");
        }
        assert!(parse_provider_names(&"a".repeat(MAX_NAME_LEN)).is_ok());
    }

    #[test]
    fn prefixes_and_callbacks() {
        assert_eq!(prefix(None), "OIDC_");
        assert_eq!(prefix(Some("my-idp")), "OIDC_MY_IDP_");
        let settings = |name: Option<&str>| ProviderSettings {
            name: name.map(str::to_string),
            display_name: String::new(),
            issuer_url: "https://idp.example.com".into(),
            client_id: "c".into(),
            client_auth: ClientAuth::ClientSecretBasic(Secret::new("s")),
            scopes: Vec::new(),
            username_claim: "sub".into(),
            groups_claim: "groups".into(),
            kind: ProviderKind::Generic,
            entra: None,
            group_map: None,
            rules: GlobalRules::default(),
        };
        let base = Url::parse("https://app.example.com/oauth2/callback").unwrap();
        assert_eq!(settings(None).callback_url(&base), base);
        assert_eq!(
            settings(Some("keycloak")).callback_url(&base).as_str(),
            "https://app.example.com/oauth2/callback/keycloak"
        );
    }

    #[test]
    fn variables_of_an_unlisted_provider_name_the_closest_listed_one() {
        let env: HashMap<String, String> = [
            ("OIDC_KEYCLAOK_CLIENT_ID", "x"),
            ("OIDC_KEYCLOAK_CLIENT_SECRET_FILE", "/run/secret"),
            ("OIDC_OKTA_ISSUER_URL", "https://okta"),
            ("OIDC_ISSUER_URL", "https://one"),
            ("OIDC_EMPTY_SCOPES", " "),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let names = vec!["keycloak".to_string(), "google".to_string()];
        let problems = unlisted(&env, &names);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("OIDC_KEYCLAOK_CLIENT_ID"),
            "{problems:?}"
        );
        assert!(
            problems[0].contains("did you mean \"keycloak\" (OIDC_KEYCLOAK_CLIENT_ID)"),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("OIDC_OKTA_ISSUER_URL"),
            "{problems:?}"
        );
        assert!(problems[1].contains("keycloak, google"), "{problems:?}");
        // Without OIDC_PROVIDERS a prefixed variable is just as wrong.
        let alone = unlisted(&env, &[]);
        assert!(
            alone
                .iter()
                .all(|p| p.contains("OIDC_PROVIDERS is not set")),
            "{alone:?}"
        );
        assert_eq!(alone.len(), 3, "{alone:?}");
    }
}
