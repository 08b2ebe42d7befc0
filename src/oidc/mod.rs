//! The relying party: discovery, the authorization request, the code exchange and complete
//! validation of what comes back. Discovery, the authorization URL, the code exchange and
//! end-session are the `openidconnect` crate's; the ID token (`id_token`, with `jsonwebtoken`)
//! and userinfo (`userinfo`) are read here as plain JSON, because `openidconnect`'s typed claims
//! fail a whole login over one claim of an unexpected type (Cognito's `"email_verified": "true"`).
//! This module also adds the JWKS refresh on an unknown `kid` and merging userinfo.

mod access_token;
mod client_auth;
mod entra;
mod graph;
mod id_token;
mod logout_token;
mod refresh;
mod registry;
#[cfg(test)]
mod test_tokens;
mod types;
mod userinfo;

pub use client_auth::{CertificateError, ClientKey, ClientKeyError, Thumbprints, KEY_HOWTO};
pub use registry::Providers;

pub use access_token::{RefusedToken, TokenRefusal};
pub use logout_token::{BackchannelSupport, LogoutToken, LogoutTokenError, MAX_TOKEN_BYTES};
pub use refresh::Refreshed;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, JsonWebKeySet,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout as ProviderMetadata, RedirectUrl, Scope,
};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{ClientAuth, EntraGraph, ProviderSettings};
use id_token::{SigningKeys, VerifyFailure};
use types::OidcClient;

/// How long the OIDC HTTP client waits for the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// An unknown `kid` triggers at most one JWKS refetch per this interval, so a flood of forged
/// tokens cannot turn portcullis into a load generator against the IdP.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("the provider's discovery document is not loaded yet")]
    NotReady,
    #[error("discovery failed: {0}")]
    Discovery(String),
    #[error("the provider names itself {found:?}, but OIDC_ISSUER_URL is {expected:?}")]
    IssuerMismatch { expected: String, found: String },
    #[error("code exchange failed: {0}")]
    Exchange(String),
    /// The token endpoint could not be reached (down, refusing, timing out): the IdP's
    /// trouble, not the user's, so worth a retry.
    #[error("the token endpoint could not be reached: {0}")]
    Unreachable(String),
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("ID token rejected: {0}")]
    IdToken(String),
    #[error("userinfo rejected: {0}")]
    UserInfo(String),
    /// An Entra ID user's groups (the overage marker) could not be read from Microsoft Graph.
    #[error("the groups could not be read: {0}")]
    Groups(String),
}

/// Why an access token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessTokenError {
    /// The provider's discovery document (and so its keys) is not loaded: not the token's fault.
    NotReady,
    Refused(RefusedToken),
}

/// A started login: where to send the browser, and what to remember until the callback.
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A completed and fully validated login.
pub struct VerifiedLogin {
    /// ID token claims merged with userinfo claims.
    pub claims: Value,
    pub id_token: String,
    /// What revalidation may use later: the refresh token if the provider gave one, the access
    /// token and when it expires (`expires_in` from the token response, if it said).
    pub refresh_token: Option<String>,
    pub access_token: String,
    pub access_token_expires_in: Option<Duration>,
}

struct LoadedProvider {
    metadata: ProviderMetadata,
    client: OidcClient,
    /// `metadata`'s JWKS, read once for `id_token::verify`.
    keys: SigningKeys,
}

/// The provider as portcullis knows it; discovery may load after startup.
pub struct Oidc {
    /// `None`: the one provider of the unprefixed `OIDC_*` variables.
    name: Option<String>,
    issuer: String,
    client_id: String,
    /// `None` with `private_key_jwt`, whose token requests carry a signed assertion instead.
    client_secret: Option<String>,
    /// The key each token request's client assertion is signed with (`private_key_jwt`).
    assertion_key: Option<ClientKey>,
    redirect_url: String,
    scopes: Vec<String>,
    auth_type: AuthType,
    /// Where the claim `OIDC_GROUPS_CLAIM` names is read and, for an Entra provider, written
    /// with the groups from Graph.
    groups_claim: String,
    /// An Entra provider's Graph (`None`: another kind, the overage marker is not followed).
    entra: Option<EntraGraph>,
    http: openidconnect::reqwest::Client,
    loaded: RwLock<Option<Arc<LoadedProvider>>>,
    last_jwks_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Oidc {
    /// The client for `provider`, whose callback is under `redirect_url` (`OIDC_REDIRECT_URL`).
    pub fn new(provider: &ProviderSettings, redirect_url: &Url) -> Result<Oidc, OidcError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider (or whoever spoofs it) point us anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        Ok(Oidc {
            name: provider.name.clone(),
            issuer: provider.issuer_url.clone(),
            client_id: provider.client_id.clone(),
            client_secret: provider
                .client_auth
                .secret()
                .map(|secret| secret.expose().to_string()),
            assertion_key: provider.client_auth.key().cloned(),
            redirect_url: provider.callback_url(redirect_url).to_string(),
            scopes: provider.scopes.clone(),
            // With private_key_jwt the client id must be in the body (RFC 7523 allows it, and
            // without a secret there is nothing to put in an Authorization header).
            auth_type: match provider.client_auth {
                ClientAuth::ClientSecretBasic(_) => AuthType::BasicAuth,
                ClientAuth::ClientSecretPost(_) | ClientAuth::PrivateKeyJwt(_) => {
                    AuthType::RequestBody
                }
            },
            groups_claim: provider.groups_claim.clone(),
            entra: provider.entra.clone(),
            http,
            loaded: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's name (`OIDC_PROVIDERS`); `None` for the one unnamed provider.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn is_ready(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<Arc<LoadedProvider>> {
        self.loaded.read().map(|g| g.clone()).unwrap_or(None)
    }

    fn install(&self, metadata: ProviderMetadata) -> Result<(), OidcError> {
        let redirect = RedirectUrl::new(self.redirect_url.clone())
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        let client = OidcClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.client_id.clone()),
            self.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(self.auth_type.clone());
        // Through JSON: openidconnect's keys are what discovery (and a refetch) parsed, and
        // jsonwebtoken reads the same JWK format.
        let jwks = serde_json::to_value(metadata.jwks())
            .map_err(|e| OidcError::Discovery(format!("the JWKS could not be read: {e}")))?;
        let keys = SigningKeys::from_jwks(&jwks);
        if keys.len() == 0 {
            tracing::warn!("the provider's JWKS has no key portcullis can verify signatures with");
        }
        let provider = Arc::new(LoadedProvider {
            metadata,
            client,
            keys,
        });
        if let Ok(mut slot) = self.loaded.write() {
            *slot = Some(provider);
        }
        Ok(())
    }

    /// Fetches discovery and the JWKS. The provider must name itself exactly `OIDC_ISSUER_URL`.
    pub async fn discover(&self) -> Result<(), OidcError> {
        let issuer =
            IssuerUrl::new(self.issuer.clone()).map_err(|e| OidcError::Discovery(e.to_string()))?;
        let metadata = ProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|err| discovery_error(&self.issuer, err))?;
        self.install(metadata)
    }

    /// Summary of the loaded provider, for `portcullis check` and logs.
    pub fn describe(&self) -> Option<ProviderSummary> {
        let provider = self.current()?;
        Some(ProviderSummary {
            authorization_endpoint: provider.metadata.authorization_endpoint().to_string(),
            token_endpoint: provider
                .metadata
                .token_endpoint()
                .map(|u| u.to_string())
                .unwrap_or_default(),
            userinfo_endpoint: provider.metadata.userinfo_endpoint().map(|u| u.to_string()),
            end_session_endpoint: provider
                .metadata
                .additional_metadata()
                .end_session_endpoint
                .as_ref()
                .map(|u| u.to_string()),
            signing_keys: provider.metadata.jwks().keys().len(),
            token_auth_methods: provider
                .metadata
                .token_endpoint_auth_methods_supported()
                .map(|methods| {
                    methods
                        .iter()
                        .filter_map(|m| serde_json::to_value(m).ok())
                        .filter_map(|m| m.as_str().map(str::to_string))
                        .collect()
                }),
        })
    }

    /// Where to send the browser to end its session at the provider (RP-initiated logout), or
    /// None when the provider has no end-session endpoint. `state` comes back to
    /// `post_logout_redirect` unchanged.
    pub fn end_session_url(
        &self,
        id_token_hint: Option<&str>,
        post_logout_redirect: &Url,
        state: &str,
    ) -> Option<Url> {
        let provider = self.current()?;
        let endpoint = provider
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        let mut url = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(
                post_logout_redirect.clone(),
            ))
            .set_state(CsrfToken::new(state.to_string()))
            .http_get_url();
        // The hint is the ID token verified at login, passed as is: `set_id_token_hint` would
        // parse its claims again with openidconnect's types, which fail on Cognito's.
        if let Some(hint) = id_token_hint {
            url.query_pairs_mut().append_pair("id_token_hint", hint);
        }
        Some(url)
    }

    pub fn authorization_request(&self) -> Result<AuthorizationRequest, OidcError> {
        let provider = self.current().ok_or(OidcError::NotReady)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = provider.client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(AuthorizationRequest {
            url,
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges the code and validates everything that comes back.
    pub async fn complete_login(
        &self,
        code: String,
        pkce_verifier: String,
        nonce: String,
    ) -> Result<VerifiedLogin, OidcError> {
        let provider = self.current().ok_or(OidcError::NotReady)?;
        let mut request = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier));
        for (name, value) in self
            .client_assertion(&provider, crate::http::unix_now())
            .map_err(OidcError::Exchange)?
        {
            request = request.add_extra_param(name, value);
        }
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(_) => {
                    OidcError::Unreachable(error_chain(&e))
                }
                other => OidcError::Exchange(describe_token_error(&other)),
            })?;
        let id_token = response
            .extra_fields()
            .id_token
            .as_deref()
            .ok_or(OidcError::NoIdToken)?;
        let expected = id_token::Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce: id_token::NonceRule::Equal(&nonce),
            now: crate::http::unix_now(),
        };

        let verified = match id_token::verify(id_token, &provider.keys, &expected) {
            Err(VerifyFailure::UnknownKey) => {
                // The provider may have rotated its keys since discovery.
                let provider = self.refetch_jwks(&provider).await?;
                id_token::verify(id_token, &provider.keys, &expected)
            }
            other => other,
        };
        let mut claims = verified.map_err(|f| OidcError::IdToken(f.to_string()))?;

        if let Some(endpoint) = provider.metadata.userinfo_endpoint() {
            // check_claims made sure there is one: userinfo is bound to the user through it.
            let subject = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let userinfo = userinfo::fetch(
                &self.http,
                endpoint.url(),
                response.access_token().secret(),
                subject,
            )
            .await
            .map_err(|err| OidcError::UserInfo(err.to_string()))?;
            crate::claims::merge_userinfo(&mut claims, &userinfo);
        }
        // Without its groups the login cannot be judged: no session, the error page.
        self.entra_groups(&mut claims, response.access_token().secret())
            .await
            .map_err(|err| OidcError::Groups(err.to_string()))?;
        Ok(VerifiedLogin {
            claims: Value::Object(claims),
            id_token: id_token.to_string(),
            refresh_token: response.refresh_token().map(|t| t.secret().clone()),
            access_token: response.access_token().secret().clone(),
            access_token_expires_in: response.expires_in(),
        })
    }

    /// For an Entra provider whose claims carry the groups overage marker, the groups claim
    /// replaced by the user's groups from Microsoft Graph, read with `access_token`; otherwise
    /// the claims as they are.
    async fn entra_groups(
        &self,
        claims: &mut serde_json::Map<String, Value>,
        access_token: &str,
    ) -> Result<(), entra::GraphError> {
        let Some(graph) = &self.entra else {
            return Ok(());
        };
        if !entra::has_groups_overage(claims) {
            return Ok(());
        }
        if access_token.is_empty() {
            return Err(entra::GraphError::Invalid(
                "there is no access token to ask Graph with".to_string(),
            ));
        }
        let (groups, pages) =
            graph::fetch_groups(&self.http, &graph.graph_url, access_token).await?;
        let (values, unnamed) = entra::group_values(&groups, graph.group_names);
        if !unnamed.is_empty() {
            tracing::warn!(
                groups = unnamed.join(","),
                "groups without a displayName in Microsoft Graph are sent by their object id"
            );
        }
        tracing::debug!(
            groups = values.len(),
            pages,
            "groups overage: the groups were read from Microsoft Graph"
        );
        entra::replace_groups(claims, &self.groups_claim, values);
        Ok(())
    }

    /// Verifies a back-channel logout token (OpenID Connect Back-Channel Logout 1.0) with the
    /// provider's keys, refetching its JWKS once on an unknown `kid` as for ID tokens. `now` is
    /// unix seconds. The replay check (`jti`) is the caller's, in the shared store.
    pub async fn verify_logout_token(
        &self,
        token: &str,
        now: u64,
    ) -> Result<LogoutToken, LogoutTokenError> {
        let provider = self.current().ok_or(LogoutTokenError::NotReady)?;
        let expected = logout_token::Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            now,
        };
        let verified = match logout_token::verify(token, &provider.keys, &expected) {
            Err(VerifyFailure::UnknownKey) => {
                let provider = self
                    .refetch_jwks(&provider)
                    .await
                    .map_err(|err| match err {
                        OidcError::NotReady => LogoutTokenError::NotReady,
                        OidcError::IdToken(reason) => LogoutTokenError::Invalid(reason),
                        other => LogoutTokenError::Invalid(other.to_string()),
                    })?;
                logout_token::verify(token, &provider.keys, &expected)
            }
            other => other,
        };
        verified.map_err(|failure| LogoutTokenError::Invalid(failure.to_string()))
    }

    /// Verifies an API client's access token (`BEARER_TOKENS`) with the provider's keys,
    /// refetching its JWKS once on an unknown `kid` (rate-limited, as for ID tokens), and returns
    /// its claims. `now` is unix seconds.
    pub async fn verify_access_token(
        &self,
        token: &str,
        audiences: &[String],
        now: u64,
    ) -> Result<Map<String, Value>, AccessTokenError> {
        let provider = self.current().ok_or(AccessTokenError::NotReady)?;
        let expected = access_token::Expected {
            issuer: &self.issuer,
            audiences,
            now,
        };
        let verified = match access_token::verify(token, &provider.keys, &expected) {
            Err(access_token::Failure::UnknownKey) => match self.refetch_jwks(&provider).await {
                Ok(provider) => access_token::verify(token, &provider.keys, &expected),
                Err(OidcError::NotReady) => return Err(AccessTokenError::NotReady),
                Err(err) => {
                    return Err(AccessTokenError::Refused(RefusedToken::new(
                        TokenRefusal::Signature,
                        format!("signed with an unknown key: {err}"),
                    )))
                }
            },
            other => other,
        };
        verified.map_err(|failure| match failure {
            access_token::Failure::UnknownKey => AccessTokenError::Refused(RefusedToken::new(
                TokenRefusal::Signature,
                "signed with a key the provider does not list",
            )),
            access_token::Failure::Refused(refused) => AccessTokenError::Refused(refused),
        })
    }

    /// What the provider's discovery document says about back-channel logout, for
    /// `portcullis check`. Read from the document itself, fetched again: the `openidconnect`
    /// metadata type keeps only the members it knows, and these are not among them.
    pub async fn backchannel_support(&self) -> Result<BackchannelSupport, OidcError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        );
        let response = self
            .http
            .get(&url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Discovery(format!("request failed: {}", error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            return Err(OidcError::Discovery(format!("HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| OidcError::Discovery(format!("reading failed: {}", error_chain(&e))))?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|e| OidcError::Discovery(format!("not JSON: {e}")))?;
        Ok(BackchannelSupport::from_discovery(&document))
    }

    /// The two body parameters of `private_key_jwt` for one token request at `now`, with a
    /// fresh `jti` (256 random bits); none for the secret methods.
    fn client_assertion(
        &self,
        provider: &LoadedProvider,
        now: u64,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let Some(key) = &self.assertion_key else {
            return Ok(Vec::new());
        };
        let token_endpoint = provider
            .metadata
            .token_endpoint()
            .ok_or("the provider's discovery document has no token_endpoint")?;
        let assertion = client_auth::client_assertion(
            key,
            &self.client_id,
            token_endpoint.as_str(),
            now,
            &crate::crypto::random_id(),
        )
        .map_err(|err| err.to_string())?;
        Ok(vec![
            (
                "client_assertion_type",
                client_auth::ASSERTION_TYPE.to_string(),
            ),
            ("client_assertion", assertion),
        ])
    }

    /// The public JWK to register at the provider, with `private_key_jwt`.
    pub fn client_public_jwk(&self) -> Option<String> {
        self.assertion_key.as_ref().map(ClientKey::public_jwk)
    }

    async fn refetch_jwks(
        &self,
        provider: &LoadedProvider,
    ) -> Result<Arc<LoadedProvider>, OidcError> {
        let due = {
            let mut last = self
                .last_jwks_fetch
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let due = last.is_none_or(|t| t.elapsed() >= JWKS_REFETCH_INTERVAL);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if !due {
            return Err(OidcError::IdToken(
                "signed with an unknown key (JWKS was refetched recently)".to_string(),
            ));
        }
        let jwks = JsonWebKeySet::fetch_async(provider.metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| OidcError::IdToken(format!("JWKS refetch failed: {e}")))?;
        tracing::info!(keys = jwks.keys().len(), "refetched the provider's JWKS");
        self.install(provider.metadata.clone().set_jwks(jwks))?;
        self.current().ok_or(OidcError::NotReady)
    }
}

/// What `portcullis check` prints about the provider.
#[derive(Debug, Clone)]
pub struct ProviderSummary {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub signing_keys: usize,
    /// `token_endpoint_auth_methods_supported` as discovery lists it (`None`: not listed, which
    /// means `client_secret_basic` only).
    pub token_auth_methods: Option<Vec<String>>,
}

fn discovery_error<E: std::error::Error>(
    issuer: &str,
    err: openidconnect::DiscoveryError<E>,
) -> OidcError {
    match err {
        openidconnect::DiscoveryError::Validation(message) if message.contains("issuer") => {
            let found = message
                .split('`')
                .nth(1)
                .map(str::to_string)
                .unwrap_or(message.clone());
            OidcError::IssuerMismatch {
                expected: issuer.to_string(),
                found,
            }
        }
        openidconnect::DiscoveryError::Request(inner) => {
            OidcError::Discovery(format!("request failed: {}", error_chain(&inner)))
        }
        openidconnect::DiscoveryError::Response(status, _, message) => {
            OidcError::Discovery(format!("HTTP {status}: {message}"))
        }
        other => OidcError::Discovery(error_chain(&other)),
    }
}

fn describe_token_error<E: std::error::Error>(
    err: &openidconnect::RequestTokenError<
        E,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match err {
        // The provider's own error code (invalid_grant, invalid_client...) is what operators need.
        openidconnect::RequestTokenError::ServerResponse(response) => {
            describe_error_response(response)
        }
        other => error_chain(other),
    }
}

/// A token endpoint's error answer: its code, and its description if any.
fn describe_error_response(
    response: &openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
) -> String {
    let mut text = response.error().to_string();
    if let Some(description) = response.error_description() {
        text.push_str(": ");
        text.push_str(description);
    }
    text
}

/// An error and its sources on one line (library errors keep the useful part in `source`).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}
