//! `private_key_jwt` client authentication (OpenID Connect Core 1.0 section 9): the client's own
//! key, read from a PKCS#8 PEM file (RSA signs RS256, EC P-256 signs ES256), the public JWK an
//! operator registers at the IdP, and the signed client assertion each token request carries.
//! The assertion is a pure function of the key, the client, the token endpoint, `now` and a
//! `jti`; the caller makes a fresh one per request.

use std::fmt;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pkcs8::der::SecretDocument;
use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
use serde::Serialize;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 section 2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: one token request needs seconds, and a short life bounds
/// what a captured assertion is worth (the IdP also refuses a `jti` it has seen).
pub const ASSERTION_LIFETIME_SECS: u64 = 60;

/// Shorter RSA keys are refused: NIST and every IdP that takes RS256 keys ask for 2048 bits.
pub const MIN_RSA_BITS: usize = 2048;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Curves and key algorithms an operator may well have made a key with, named in the refusal.
const KNOWN_OIDS: &[(&str, &str)] = &[
    ("1.3.132.0.34", "P-384"),
    ("1.3.132.0.35", "P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.2.840.10040.4.1", "DSA"),
];

/// How to make a key portcullis takes, for the refusals.
pub const KEY_HOWTO: &str = "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
                             -out key.pem (or -algorithm RSA -pkeyopt rsa_keygen_bits:2048)";

/// Why a private key file was refused. The texts name what the file is, never what it holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientKeyError {
    #[error("not a PEM file (expected -----BEGIN PRIVATE KEY-----); make a key with: {KEY_HOWTO}")]
    NotPem,
    #[error(
        "an encrypted key (BEGIN ENCRYPTED PRIVATE KEY); portcullis needs it unencrypted: \
         openssl pkey -in encrypted.pem -out key.pem"
    )]
    Encrypted,
    #[error(
        "a {0} key, not PKCS#8 (BEGIN PRIVATE KEY); convert it with: \
         openssl pkcs8 -topk8 -nocrypt -in old.pem -out key.pem"
    )]
    NotPkcs8(&'static str),
    #[error("a PEM {0:?} block, not a private key (-----BEGIN PRIVATE KEY-----)")]
    NotAPrivateKey(String),
    #[error("not a valid PKCS#8 private key")]
    Malformed,
    #[error("an {0} key; only RSA (RS256) and EC P-256 (ES256) keys are supported")]
    UnsupportedAlgorithm(String),
    #[error("an EC key on {0}; only P-256 (ES256) is supported: {KEY_HOWTO}")]
    UnsupportedCurve(String),
    #[error("a {0}-bit RSA key; at least {MIN_RSA_BITS} bits are needed")]
    RsaTooShort(usize),
    #[error("not a valid {0} private key")]
    Invalid(&'static str),
}

/// Why a certificate file for the key was refused (`OIDC_PRIVATE_KEY_CERT_FILE`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("not a PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    NotPem,
    #[error("not a valid X.509 certificate")]
    Malformed,
    #[error(
        "the certificate of another key: it does not hold the public key of the private key \
         file"
    )]
    NotThisKey,
}

/// The SHA-1 and SHA-256 thumbprints of the key's X.509 certificate (its DER), base64url:
/// `x5t` and `x5t#S256` (RFC 7515 sections 4.1.7 and 4.1.8), by which Entra ID, ADFS and
/// others find a client's key when it was registered as a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbprints {
    pub sha1: String,
    pub sha256: String,
}

/// A client's signing key for `private_key_jwt`. Never prints the key.
#[derive(Clone)]
pub struct ClientKey {
    algorithm: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    public: PublicJwk,
    certificate: Option<Thumbprints>,
}

impl fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

/// The public half as a JWK (RFC 7517), members in the order people read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct PublicJwk {
    kty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    crv: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    y: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    alg: &'static str,
    #[serde(rename = "use")]
    use_: &'static str,
}

impl ClientKey {
    /// Reads a PKCS#8 PEM private key: RSA (2048 bits or more) signs RS256, EC P-256 signs
    /// ES256. `kid` is put in every assertion's header and in the JWK.
    pub fn from_pem(pem: &[u8], kid: Option<String>) -> Result<ClientKey, ClientKeyError> {
        let text = std::str::from_utf8(pem).map_err(|_| ClientKeyError::NotPem)?;
        let text = text.trim();
        let label =
            pkcs8::der::pem::decode_label(text.as_bytes()).map_err(|_| ClientKeyError::NotPem)?;
        match label {
            "PRIVATE KEY" => {}
            "ENCRYPTED PRIVATE KEY" => return Err(ClientKeyError::Encrypted),
            "RSA PRIVATE KEY" => return Err(ClientKeyError::NotPkcs8("PKCS#1 RSA")),
            "EC PRIVATE KEY" => return Err(ClientKeyError::NotPkcs8("SEC1 EC")),
            other => return Err(ClientKeyError::NotAPrivateKey(other.to_string())),
        }
        let (_, document) =
            SecretDocument::from_pem(text).map_err(|_| ClientKeyError::Malformed)?;
        let info = PrivateKeyInfoRef::try_from(document.as_bytes())
            .map_err(|_| ClientKeyError::Malformed)?;
        let (algorithm_oid, parameters) = info
            .algorithm
            .oids()
            .map_err(|_| ClientKeyError::Malformed)?;
        let (algorithm, key) = if algorithm_oid == RSA_ENCRYPTION {
            // jsonwebtoken signs RSA with the PKCS#1 key that PKCS#8 wraps.
            (
                Algorithm::RS256,
                EncodingKey::from_rsa_der(info.private_key.as_bytes()),
            )
        } else if algorithm_oid == EC_PUBLIC_KEY {
            match parameters {
                Some(curve) if curve == P256 => {}
                Some(curve) => return Err(ClientKeyError::UnsupportedCurve(oid_name(curve))),
                None => return Err(ClientKeyError::Malformed),
            }
            // ...and EC with the whole PKCS#8 document.
            (
                Algorithm::ES256,
                EncodingKey::from_ec_der(document.as_bytes()),
            )
        } else {
            return Err(ClientKeyError::UnsupportedAlgorithm(oid_name(
                algorithm_oid,
            )));
        };
        let public = public_jwk(&key, algorithm, kid.clone())?;
        Ok(ClientKey {
            algorithm,
            key,
            kid,
            public,
            certificate: None,
        })
    }

    /// The key with its X.509 certificate (PEM; the first certificate of a chain), whose
    /// thumbprints every assertion's header then carries. The certificate must hold this key's
    /// public key.
    pub fn with_certificate(self, pem: &[u8]) -> Result<ClientKey, CertificateError> {
        let der = first_certificate(pem)?;
        if !holds_public_key(&der, &self.public) {
            return Err(CertificateError::NotThisKey);
        }
        Ok(ClientKey {
            certificate: Some(thumbprints(&der)),
            ..self
        })
    }

    /// The certificate's thumbprints, when one was given.
    pub fn certificate(&self) -> Option<&Thumbprints> {
        self.certificate.as_ref()
    }

    /// RS256 or ES256.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// `RS256` or `ES256`, as JOSE writes it.
    pub fn algorithm_name(&self) -> &'static str {
        self.public.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The public key to register at the IdP, as one JWK (`kty`, `n`/`e` or `crv`/`x`/`y`,
    /// `kid` when set, `alg`, `use: sig`) on one line.
    pub fn public_jwk(&self) -> String {
        serde_json::to_string(&self.public).unwrap_or_default()
    }
}

fn oid_name(oid: ObjectIdentifier) -> String {
    let dotted = oid.to_string();
    KNOWN_OIDS
        .iter()
        .find(|(known, _)| *known == dotted)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| format!("unknown (OID {dotted})"))
}

/// The public half, computed by jsonwebtoken from the private key, which also proves that the
/// key parses as what its algorithm identifier says.
fn public_jwk(
    key: &EncodingKey,
    algorithm: Algorithm,
    kid: Option<String>,
) -> Result<PublicJwk, ClientKeyError> {
    let (kind, alg) = match algorithm {
        Algorithm::ES256 => ("EC P-256", "ES256"),
        _ => ("RSA", "RS256"),
    };
    let jwk = Jwk::from_encoding_key(key, algorithm).map_err(|_| ClientKeyError::Invalid(kind))?;
    let base = PublicJwk {
        kty: "",
        crv: None,
        n: None,
        e: None,
        x: None,
        y: None,
        kid,
        alg,
        use_: "sig",
    };
    match jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let bits = modulus_bits(&rsa.n);
            if bits < MIN_RSA_BITS {
                return Err(ClientKeyError::RsaTooShort(bits));
            }
            Ok(PublicJwk {
                kty: "RSA",
                n: Some(rsa.n),
                e: Some(rsa.e),
                ..base
            })
        }
        AlgorithmParameters::EllipticCurve(ec) => Ok(PublicJwk {
            kty: "EC",
            crv: Some("P-256"),
            x: Some(ec.x),
            y: Some(ec.y),
            ..base
        }),
        _ => Err(ClientKeyError::Invalid(kind)),
    }
}

/// The DER of the first `CERTIFICATE` block of `pem`.
fn first_certificate(pem: &[u8]) -> Result<Vec<u8>, CertificateError> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem).map_err(|_| CertificateError::NotPem)?;
    let start = text.find(BEGIN).ok_or(CertificateError::NotPem)?;
    let end = text[start..].find(END).ok_or(CertificateError::NotPem)? + start + END.len();
    let (label, der) = pkcs8::der::pem::decode_vec(&text.as_bytes()[start..end])
        .map_err(|_| CertificateError::Malformed)?;
    // A certificate is a DER SEQUENCE: anything else in the block is not one.
    if label != "CERTIFICATE" || der.first() != Some(&0x30) {
        return Err(CertificateError::Malformed);
    }
    Ok(der)
}

/// Whether the certificate `der` carries `public`: the EC point (`04 || x || y`) or the RSA
/// modulus, byte for byte, inside its SubjectPublicKeyInfo. A certificate of another key holds
/// neither.
fn holds_public_key(der: &[u8], public: &PublicJwk) -> bool {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let decode = |b64: &Option<String>| {
        b64.as_deref()
            .and_then(|value| URL_SAFE_NO_PAD.decode(value).ok())
            .unwrap_or_default()
    };
    let needle = match public.kty {
        "EC" => {
            let mut point = vec![0x04];
            point.extend(decode(&public.x));
            point.extend(decode(&public.y));
            point
        }
        _ => decode(&public.n),
    };
    needle.len() > 32 && der.windows(needle.len()).any(|window| window == needle)
}

fn thumbprints(der: &[u8]) -> Thumbprints {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use sha1::Digest as _;
    Thumbprints {
        sha1: URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der)),
        sha256: URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(der)),
    }
}

/// The size of an RSA modulus given as base64url (big-endian, as in a JWK).
fn modulus_bits(n: &str) -> usize {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let bytes = URL_SAFE_NO_PAD.decode(n).unwrap_or_default();
    let Some(first) = bytes.iter().position(|b| *b != 0) else {
        return 0;
    };
    (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize
}

/// The claims of a client assertion (OpenID Connect Core 1.0 section 9, RFC 7523 section 3).
#[derive(Debug, Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: u64,
    exp: u64,
}

/// Why no assertion could be signed (the key was checked when it was read, so this is a bug
/// or a broken key file read at startup; never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the client assertion could not be signed: {0}")]
pub struct AssertionError(String);

/// The client assertion for one token request: header `{alg, typ: "JWT", kid?, x5t?,
/// x5t#S256?}`, claims `iss` =
/// `sub` = `client_id`, `aud` = the token endpoint, `jti`, `iat` = `now`, `exp` = `now` + 60 s.
/// `jti` must be unique (128 random bits or more): the IdP refuses one it has seen.
pub fn client_assertion(
    key: &ClientKey,
    client_id: &str,
    token_endpoint: &str,
    now: u64,
    jti: &str,
) -> Result<String, AssertionError> {
    let mut header = Header::new(key.algorithm);
    header.typ = Some("JWT".to_string());
    header.kid = key.kid.clone();
    if let Some(certificate) = &key.certificate {
        header.x5t = Some(certificate.sha1.clone());
        header.x5t_s256 = Some(certificate.sha256.clone());
    }
    let claims = AssertionClaims {
        iss: client_id,
        sub: client_id,
        aud: token_endpoint,
        jti,
        iat: now,
        exp: now.saturating_add(ASSERTION_LIFETIME_SECS),
    };
    jsonwebtoken::encode(&header, &claims, &key.key).map_err(|e| AssertionError(e.to_string()))
}

#[cfg(test)]
#[path = "client_auth_tests.rs"]
mod tests;
