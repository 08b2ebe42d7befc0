//! `REDIS_CA_FILE`, `REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE`: the certificates of a
//! Redis reached over TLS (`rediss://`) with a private CA, and the client certificate of
//! Redis' `tls-auth-clients` (mutual TLS). Read once at startup; the contents are PEM and are
//! only checked for the block they must hold, the TLS library parses them.

use super::Findings;
use crate::secret::Secret;

/// What a TLS connection to the store presents and trusts beyond the defaults.
#[derive(Debug, Clone, Default)]
pub struct RedisTls {
    /// PEM CA certificates trusted instead of the public web roots; `None`: those roots.
    pub ca: Option<String>,
    /// PEM client certificate and its private key, both or neither.
    pub client: Option<ClientCertificate>,
}

#[derive(Debug, Clone)]
pub struct ClientCertificate {
    pub certificate: String,
    pub key: Secret,
}

impl RedisTls {
    pub fn is_set(&self) -> bool {
        self.ca.is_some() || self.client.is_some()
    }
}

/// Whether `text` holds at least one PEM block of one of `labels` (`BEGIN <label>`).
pub(super) fn has_pem_block(text: &str, labels: &[&str]) -> bool {
    text.lines().any(|line| {
        let line = line.trim();
        labels
            .iter()
            .any(|label| line == format!("-----BEGIN {label}-----"))
    })
}

const CERTIFICATE: &[&str] = &["CERTIFICATE"];
const PRIVATE_KEY: &[&str] = &["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"];

impl Findings {
    /// The three files; `tls_in_use`: whether any configured Redis address is `rediss://`,
    /// without which they would never be used (a problem: whoever set them expects TLS).
    pub(super) fn redis_tls(&mut self, tls_in_use: bool) -> RedisTls {
        let ca_path = self.take("REDIS_CA_FILE");
        let cert_path = self.take("REDIS_CLIENT_CERT_FILE");
        let key_path = self.take("REDIS_CLIENT_KEY_FILE");
        let set: Vec<&str> = [
            (&ca_path, "REDIS_CA_FILE"),
            (&cert_path, "REDIS_CLIENT_CERT_FILE"),
            (&key_path, "REDIS_CLIENT_KEY_FILE"),
        ]
        .iter()
        .filter(|(path, _)| path.is_some())
        .map(|(_, name)| *name)
        .collect();
        if set.is_empty() {
            return RedisTls::default();
        }
        if !tls_in_use {
            self.problem(format!(
                "{} set, but no Redis address is rediss:// (TLS): they would never be used",
                set.join(" and ")
            ));
            return RedisTls::default();
        }
        let ca = ca_path.and_then(|path| self.pem_file("REDIS_CA_FILE", &path, CERTIFICATE));
        let client = match (cert_path, key_path) {
            (Some(cert), Some(key)) => {
                let certificate = self.pem_file("REDIS_CLIENT_CERT_FILE", &cert, CERTIFICATE);
                let key = self.pem_file("REDIS_CLIENT_KEY_FILE", &key, PRIVATE_KEY);
                certificate
                    .zip(key)
                    .map(|(certificate, key)| ClientCertificate {
                        certificate,
                        key: Secret::new(key),
                    })
            }
            (None, None) => None,
            (cert, _) => {
                let (given, missing) = if cert.is_some() {
                    ("REDIS_CLIENT_CERT_FILE", "REDIS_CLIENT_KEY_FILE")
                } else {
                    ("REDIS_CLIENT_KEY_FILE", "REDIS_CLIENT_CERT_FILE")
                };
                self.problem(format!(
                    "{given} is set without {missing}: a client certificate needs its key"
                ));
                None
            }
        };
        RedisTls { ca, client }
    }

    /// The file at `path`, which must hold a PEM block of one of `labels`. Its content is
    /// never in a message (a key file is a secret).
    fn pem_file(&mut self, name: &str, path: &str, labels: &[&str]) -> Option<String> {
        match std::fs::read_to_string(path) {
            Ok(text) if has_pem_block(&text, labels) => Some(text),
            Ok(_) => {
                self.problem(format!(
                    "{name}: {path} holds no PEM block \"BEGIN {}\"",
                    labels.join("\" or \"BEGIN ")
                ));
                None
            }
            Err(err) => {
                self.problem(format!("{name}: cannot read {path}: {err}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_blocks_are_found_by_their_label_only() {
        let cases: &[(&str, &[&str], bool)] = &[
            (
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
                CERTIFICATE,
                true,
            ),
            ("junk\n  -----BEGIN CERTIFICATE-----  \n", CERTIFICATE, true),
            ("-----BEGIN PRIVATE KEY-----\n", CERTIFICATE, false),
            ("-----BEGIN EC PRIVATE KEY-----\n", PRIVATE_KEY, true),
            ("-----BEGIN RSA PRIVATE KEY-----\n", PRIVATE_KEY, true),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
                PRIVATE_KEY,
                false,
            ),
            ("-----BEGIN CERTIFICATE REQUEST-----\n", CERTIFICATE, false),
            ("", CERTIFICATE, false),
        ];
        for (text, labels, expected) in cases {
            assert_eq!(
                has_pem_block(text, labels),
                *expected,
                "{text:?} {labels:?}"
            );
        }
    }
}
