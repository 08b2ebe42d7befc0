//! The `openidconnect` client, specialised so that it never parses claims: it does discovery,
//! the authorization URL, the code exchange and end-session, while the ID token stays a raw
//! string for `id_token::verify` and userinfo is fetched as plain JSON (see `super::userinfo`).
//! Its typed standard claims would fail a whole login over one claim of an unexpected type.

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreRevocableToken,
    CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, Client, EndpointMaybeSet, EndpointNotSet, EndpointSet, ExtraTokenFields,
    StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};

/// The client's additional-claims type parameter. Nothing is ever parsed with it (claims are
/// read by `id_token::verify`); it is a type of this crate so that [`TokenResponse`] may
/// implement `openidconnect::TokenResponse`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnparsedClaims {}

impl AdditionalClaims for UnparsedClaims {}

/// The token response's fields beyond OAuth 2.0's: the ID token as the compact JWS the provider
/// sent, unparsed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawIdTokenFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for RawIdTokenFields {}

pub type TokenResponse = StandardTokenResponse<RawIdTokenFields, CoreTokenType>;

type ParsedIdToken = openidconnect::IdToken<
    UnparsedClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

impl
    openidconnect::TokenResponse<
        UnparsedClaims,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    > for TokenResponse
{
    /// Always None: the ID token is read from [`RawIdTokenFields`] instead, so that the code
    /// exchange never parses claims.
    fn id_token(&self) -> Option<&ParsedIdToken> {
        None
    }
}

pub type OidcClient = Client<
    UnparsedClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;
