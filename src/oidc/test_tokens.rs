//! What the token verification tests (ID, logout and access tokens) share: a provider's keys,
//! test-only ones in testdata/ (made with `openssl genpkey`; they sign nothing but tests), and
//! tokens signed or shaped with them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::id_token::SigningKeys;

/// The tests' clock.
pub const NOW: u64 = 1_700_000_000;
pub const ISSUER: &str = "https://idp.example.com/realms/demo";

pub fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(include_bytes!("testdata/rsa-test-key.pem")).unwrap()
}

pub fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(include_bytes!("testdata/ec-p256-test-key.pem")).unwrap()
}

/// The public JWK of `key`, as a provider would publish it.
pub fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(key, alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    jwk
}

/// The provider's JWKS: one RSA key (`rsa-1`, alg RS256) and one P-256 key (`ec-1`).
pub fn jwks() -> Value {
    json!({"keys": [
        jwk(&rsa_key(), Algorithm::RS256, "rsa-1"),
        jwk(&ec_key(), Algorithm::ES256, "ec-1"),
    ]})
}

pub fn keys() -> SigningKeys {
    SigningKeys::from_jwks(&jwks())
}

pub fn header(alg: Algorithm, kid: Option<&str>, typ: Option<&str>) -> Header {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    header.typ = typ.map(str::to_owned);
    header
}

pub fn sign_with(header: Header, claims: &Value, key: &EncodingKey) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A token with any header and no valid signature (jsonwebtoken will not make `alg: none`).
pub fn unsigned(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

pub fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().unwrap().remove(name);
}
