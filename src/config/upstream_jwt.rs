//! `UPSTREAM_JWT` and its key files: the signed identity assertion's signing key (from a PEM
//! file, or derived from `COOKIE_SECRET`) and the previous key published during a rotation.

use super::Findings;
use crate::assertion::SigningKey;
use crate::secret::Secret;

/// The assertion's keys, resolved: only present when `UPSTREAM_JWT=true`.
#[derive(Debug, Clone)]
pub struct UpstreamJwt {
    /// Signs every assertion.
    pub key: SigningKey,
    /// From `UPSTREAM_JWT_KEY_FILE` (otherwise derived from `COOKIE_SECRET`).
    pub key_from_file: bool,
    /// Listed in the JWKS beside `key` during a rotation; never signs.
    pub previous_key: Option<SigningKey>,
}

impl Findings {
    /// Key files set with `UPSTREAM_JWT` off are a problem rather than a warning: whoever set
    /// them expects the app to get assertions, and it would not.
    pub(super) fn upstream_jwt(&mut self, cookie_secret: Option<&Secret>) -> Option<UpstreamJwt> {
        let enabled = self.boolean("UPSTREAM_JWT", false);
        let key_file = self.take("UPSTREAM_JWT_KEY_FILE");
        let previous_file = self.take("UPSTREAM_JWT_PREVIOUS_KEY_FILE");
        if !enabled {
            for (name, set) in [
                ("UPSTREAM_JWT_KEY_FILE", &key_file),
                ("UPSTREAM_JWT_PREVIOUS_KEY_FILE", &previous_file),
            ] {
                if set.is_some() {
                    self.problem(format!(
                        "{name} is set but UPSTREAM_JWT is not true: set UPSTREAM_JWT=true to \
                         sign assertions, or unset {name}"
                    ));
                }
            }
            return None;
        }
        let key = match &key_file {
            Some(path) => self.key_file("UPSTREAM_JWT_KEY_FILE", path),
            // A missing COOKIE_SECRET is already a problem of its own.
            None => cookie_secret.and_then(|secret| {
                SigningKey::derive(secret.expose().as_bytes())
                    .map_err(|err| self.problem(format!("UPSTREAM_JWT: {err}")))
                    .ok()
            }),
        };
        let previous_key = previous_file
            .as_deref()
            .and_then(|path| self.key_file("UPSTREAM_JWT_PREVIOUS_KEY_FILE", path));
        if let (Some(key), Some(previous)) = (&key, &previous_key) {
            if key == previous {
                self.problem(format!(
                    "UPSTREAM_JWT_PREVIOUS_KEY_FILE holds the current signing key (kid {}): \
                     during a rotation it names the key signed with before",
                    key.kid()
                ));
            }
        }
        Some(UpstreamJwt {
            key: key?,
            key_from_file: key_file.is_some(),
            previous_key,
        })
    }

    /// A PEM P-256 key; every failure names the variable and the file, never its content.
    fn key_file(&mut self, name: &str, path: &str) -> Option<SigningKey> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                self.problem(format!("{name}: cannot read {path}: {err}"));
                return None;
            }
        };
        SigningKey::from_pem(&text)
            .map_err(|err| self.problem(format!("{name}: the file {path} {err}")))
            .ok()
    }
}
