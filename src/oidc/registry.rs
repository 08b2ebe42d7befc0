//! Every configured provider's client, found by name (a session, a callback path, a route rule)
//! or by issuer (a back-channel logout token).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use super::{Oidc, OidcError};
use crate::config::Config;

/// The providers in `OIDC_PROVIDERS` order (one, unnamed, without it). Never empty.
#[derive(Debug)]
pub struct Providers(Vec<Oidc>);

impl Providers {
    pub fn new(config: &Config) -> Result<Providers, OidcError> {
        config
            .providers
            .iter()
            .map(|provider| Oidc::new(provider, &config.redirect_url))
            .collect::<Result<Vec<_>, _>>()
            .map(Providers)
    }

    /// The provider of this name (`None`: the one unnamed provider).
    pub fn get(&self, name: Option<&str>) -> Option<&Oidc> {
        self.0.iter().find(|oidc| oidc.name() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Oidc> {
        self.0.iter()
    }

    /// Whether every provider's discovery has loaded.
    pub fn all_ready(&self) -> bool {
        self.0.iter().all(Oidc::is_ready)
    }

    /// The provider to verify `token` (a compact JWT) with: the only one, or the one whose
    /// issuer is the token's (not yet verified) `iss`. Only a guide to whose keys to use: the
    /// verification checks `iss` again, and with one provider explains what is wrong.
    pub fn for_token(&self, token: &str) -> Option<&Oidc> {
        if let [only] = self.0.as_slice() {
            return Some(only);
        }
        self.by_token_issuer(token)
    }

    fn by_token_issuer(&self, token: &str) -> Option<&Oidc> {
        let issuer = unverified_issuer(token)?;
        self.0.iter().find(|oidc| oidc.issuer() == issuer)
    }
}

/// The `iss` claim of a compact JWT, read without checking anything.
fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_of_a_token_is_read_without_trusting_it() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp.example.com","sub":"a"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://idp.example.com")
        );
        for bad in ["", "one-part", "e30.!!!.x", "e30.e30.x", "e30.WzFd.x"] {
            assert_eq!(unverified_issuer(bad), None, "{bad:?}");
        }
    }
}
