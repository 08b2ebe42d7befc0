//! The relying party: discovery, the authorization request, the code exchange and complete
//! validation of what comes back. All protocol work is the `openidconnect` crate's; this module
//! wires it to our configuration and adds what it leaves to the caller (JWKS refresh on an
//! unknown `kid`, the RFC 9207 `iss` check, merging userinfo).

mod types;

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
use openidconnect::{
    AccessToken, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    JsonWebKeySet, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout as ProviderMetadata, RedirectUrl, Scope,
    TokenResponse,
};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{Config, TokenAuthMethod};
use types::OidcClient;

pub use types::ExtraClaims;

/// How long the OIDC HTTP client waits for the provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// An unknown `kid` triggers at most one JWKS refetch per this interval, so a flood of forged
/// tokens cannot turn portcullis into a load generator against the IdP.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Asymmetric algorithms only: symmetric ones would make the client secret a signing key.
const ALLOWED_ALGS: &[CoreJwsSigningAlgorithm] = &[
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];
/// `iat` further in the future than this is refused.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(120);

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
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("ID token rejected: {0}")]
    IdToken(String),
    #[error("userinfo rejected: {0}")]
    UserInfo(String),
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
}

struct LoadedProvider {
    metadata: ProviderMetadata,
    client: OidcClient,
}

/// The provider as portcullis knows it; discovery may load after startup.
pub struct Oidc {
    issuer: String,
    client_id: String,
    client_secret: String,
    redirect_url: String,
    scopes: Vec<String>,
    auth_type: AuthType,
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
    pub fn new(config: &Config) -> Result<Oidc, OidcError> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // Following redirects would let a provider (or whoever spoofs it) point us anywhere.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| OidcError::Discovery(e.to_string()))?;
        Ok(Oidc {
            issuer: config.issuer_url.clone(),
            client_id: config.client_id.clone(),
            client_secret: config.client_secret.expose().to_string(),
            redirect_url: config.redirect_url.to_string(),
            scopes: config.scopes.clone(),
            auth_type: match config.token_auth_method {
                TokenAuthMethod::ClientSecretBasic => AuthType::BasicAuth,
                TokenAuthMethod::ClientSecretPost => AuthType::RequestBody,
            },
            http,
            loaded: RwLock::new(None),
            last_jwks_fetch: Mutex::new(None),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
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
            Some(ClientSecret::new(self.client_secret.clone())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(self.auth_type.clone());
        let provider = Arc::new(LoadedProvider { metadata, client });
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
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.client_id.clone()))
            .set_post_logout_redirect_uri(PostLogoutRedirectUrl::from_url(
                post_logout_redirect.clone(),
            ))
            .set_state(CsrfToken::new(state.to_string()));
        // The hint is our own stored token; one that no longer parses is simply left out.
        if let Some(hint) = id_token_hint.and_then(|t| t.parse::<types::IdToken>().ok()) {
            request = request.set_id_token_hint(&hint);
        }
        Some(request.http_get_url())
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
        let response = provider
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| OidcError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::Exchange(describe_token_error(&e)))?;
        let id_token = response.id_token().ok_or(OidcError::NoIdToken)?;
        let nonce = Nonce::new(nonce);

        let verified = match self.verify_id_token(&provider, id_token, &nonce) {
            Err(VerifyFailure::UnknownKey) => {
                // The provider may have rotated its keys since discovery.
                let provider = self.refetch_jwks(&provider).await?;
                self.verify_id_token(&provider, id_token, &nonce)
            }
            other => other,
        };
        let mut claims = verified.map_err(|f| OidcError::IdToken(f.to_string()))?;

        if provider.metadata.userinfo_endpoint().is_some() {
            let subject = claims
                .get("sub")
                .and_then(Value::as_str)
                .map(|s| openidconnect::SubjectIdentifier::new(s.to_string()));
            let userinfo = self
                .userinfo(&provider, response.access_token().clone(), subject)
                .await?;
            crate::claims::merge_userinfo(&mut claims, &userinfo);
        }
        Ok(VerifiedLogin {
            claims: Value::Object(claims),
            id_token: id_token.to_string(),
        })
    }

    fn verify_id_token(
        &self,
        provider: &LoadedProvider,
        id_token: &types::IdToken,
        nonce: &Nonce,
    ) -> Result<Map<String, Value>, VerifyFailure> {
        let verifier = provider
            .client
            .id_token_verifier()
            .set_allowed_algs(ALLOWED_ALGS.iter().cloned())
            .set_issue_time_verifier_fn(|iat| {
                let limit = chrono_now() + MAX_CLOCK_SKEW;
                if iat.timestamp() as u64 > limit.as_secs() {
                    Err("issued in the future".to_string())
                } else {
                    Ok(())
                }
            });
        let claims = id_token.claims(&verifier, nonce).map_err(|err| match err {
            openidconnect::ClaimsVerificationError::SignatureVerification(
                openidconnect::SignatureVerificationError::NoMatchingKey,
            ) => VerifyFailure::UnknownKey,
            other => VerifyFailure::Invalid(other.to_string()),
        })?;
        match serde_json::to_value(claims) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(VerifyFailure::Invalid(
                "claims could not be read".to_string(),
            )),
        }
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

    async fn userinfo(
        &self,
        provider: &LoadedProvider,
        access_token: AccessToken,
        subject: Option<openidconnect::SubjectIdentifier>,
    ) -> Result<Map<String, Value>, OidcError> {
        // Without the ID token's sub we cannot bind userinfo to the user; refuse instead.
        let subject =
            subject.ok_or_else(|| OidcError::UserInfo("ID token has no sub".to_string()))?;
        let claims: openidconnect::UserInfoClaims<
            ExtraClaims,
            openidconnect::core::CoreGenderClaim,
        > = provider
            .client
            .user_info(access_token, Some(subject))
            .map_err(|e| OidcError::UserInfo(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(|e| OidcError::UserInfo(describe_userinfo_error(&e)))?;
        match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(OidcError::UserInfo("claims could not be read".to_string())),
        }
    }
}

enum VerifyFailure {
    UnknownKey,
    Invalid(String),
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyFailure::UnknownKey => {
                f.write_str("signed with a key the provider does not list")
            }
            VerifyFailure::Invalid(reason) => f.write_str(reason),
        }
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
}

fn chrono_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
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
            let mut text = response.error().to_string();
            if let Some(description) = response.error_description() {
                text.push_str(": ");
                text.push_str(description);
            }
            text
        }
        other => error_chain(other),
    }
}

fn describe_userinfo_error<E: std::error::Error + 'static>(
    err: &openidconnect::UserInfoError<E>,
) -> String {
    error_chain(err)
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
