//! Keys derived from `COOKIE_SECRET`, signed session ids, and encryption of tokens at rest.
//!
//! Only well-known primitives from RustCrypto crates: HKDF-SHA256 to derive independent keys,
//! HMAC-SHA256 to sign ids, XChaCha20-Poly1305 to encrypt tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of a random id (256 bits).
pub const ID_BYTES: usize = 32;

/// The keys portcullis derives from its one configured secret.
#[derive(Clone)]
pub struct Keys {
    signing: HmacSha256,
    encryption: XChaCha20Poly1305,
    /// Seals the login cookie; its own key, so a sealed token can never pass for a login.
    login: XChaCha20Poly1305,
    /// Names a session on the sessions page without giving its id away.
    handle: HmacSha256,
    /// Binds the sessions page's forms to the session that was shown them (CSRF).
    csrf: HmacSha256,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the value is not signed by this instance's secret")]
    BadSignature,
    #[error("the value is malformed")]
    Malformed,
    #[error("the encrypted value could not be decrypted")]
    Undecryptable,
    #[error("keys could not be derived from the secret")]
    KeyDerivation,
}

impl Keys {
    pub fn derive(secret: &[u8]) -> Result<Keys, CryptoError> {
        let hkdf = Hkdf::<Sha256>::new(Some(b"portcullis v1"), secret);
        // HMAC-SHA256 takes its key as one 64-byte block.
        let mut signing_key = [0u8; 64];
        let mut encryption_key = [0u8; 32];
        let mut login_key = [0u8; 32];
        hkdf.expand(b"cookie signing", &mut signing_key)
            .map_err(|_| CryptoError::KeyDerivation)?;
        hkdf.expand(b"token encryption", &mut encryption_key)
            .map_err(|_| CryptoError::KeyDerivation)?;
        hkdf.expand(b"login cookie encryption", &mut login_key)
            .map_err(|_| CryptoError::KeyDerivation)?;
        let mut handle_key = [0u8; 64];
        let mut csrf_key = [0u8; 64];
        hkdf.expand(b"session handles", &mut handle_key)
            .map_err(|_| CryptoError::KeyDerivation)?;
        hkdf.expand(b"sessions page csrf", &mut csrf_key)
            .map_err(|_| CryptoError::KeyDerivation)?;
        Ok(Keys {
            signing: <HmacSha256 as KeyInit>::new(&signing_key.into()),
            encryption: XChaCha20Poly1305::new(&encryption_key.into()),
            login: XChaCha20Poly1305::new(&login_key.into()),
            handle: <HmacSha256 as KeyInit>::new(&handle_key.into()),
            csrf: <HmacSha256 as KeyInit>::new(&csrf_key.into()),
        })
    }

    /// What the sessions page calls a session: HMAC-SHA256 of its id under a key of its own,
    /// base64url. Without the key it cannot be turned back into the id, nor made from one;
    /// the page's forms name sessions by it, and the handler finds the session again by
    /// recomputing the handles of the user's own sessions.
    pub fn session_handle(&self, id: &str) -> String {
        mac_base64(&self.handle, id)
    }

    /// The sessions page's form token for the session `session_id` (the browser's own): a
    /// form posted with another session's cookie, or by a page that never saw ours, fails.
    pub fn csrf_token(&self, session_id: &str) -> String {
        mac_base64(&self.csrf, session_id)
    }

    /// Whether `token` is [`Keys::csrf_token`] of `session_id`, compared in constant time.
    pub fn verify_csrf_token(&self, session_id: &str, token: &str) -> bool {
        let mut decoded = [0u8; 48];
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(token, &mut decoded) else {
            return false;
        };
        let mut mac = self.csrf.clone();
        mac.update(session_id.as_bytes());
        mac.verify_slice(&decoded[..len]).is_ok()
    }

    /// `id` followed by a dot and its HMAC, both base64url: what the cookie carries.
    pub fn sign(&self, id: &str) -> String {
        let mut mac = self.signing.clone();
        mac.update(id.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("{id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The id inside a signed value, after a constant-time check of its signature.
    pub fn verify<'a>(&self, signed: &'a str) -> Result<&'a str, CryptoError> {
        let (id, tag) = split_signed(signed).ok_or(CryptoError::Malformed)?;
        // Decoded on the stack: this runs on every auth check.
        let mut decoded = [0u8; 48];
        let len = URL_SAFE_NO_PAD
            .decode_slice(tag, &mut decoded)
            .map_err(|_| CryptoError::Malformed)?;
        let mut mac = self.signing.clone();
        mac.update(id.as_bytes());
        mac.verify_slice(&decoded[..len])
            .map_err(|_| CryptoError::BadSignature)?;
        Ok(id)
    }

    /// Encrypts tokens kept at rest in the store.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        seal(&self.encryption, plaintext)
    }

    pub fn decrypt(&self, encoded: &str) -> Result<Vec<u8>, CryptoError> {
        open(&self.encryption, encoded)
    }

    /// Encrypts a login in progress for the browser's login cookie.
    pub fn seal_login(&self, plaintext: &[u8]) -> Result<String, CryptoError> {
        seal(&self.login, plaintext)
    }

    pub fn open_login(&self, encoded: &str) -> Result<Vec<u8>, CryptoError> {
        open(&self.login, encoded)
    }
}

/// The id and the tag of a value shaped like [`Keys::sign`]'s, unchecked: base64url of 32
/// bytes is 43 characters each, anything else is refused before decoding.
fn split_signed(signed: &str) -> Option<(&str, &str)> {
    // What `rsplit_once('.')` into two 43-character halves would give, without the search
    // from the end (this runs on every auth check).
    if signed.len() != 87 {
        return None;
    }
    let (id, tag) = signed.split_at_checked(43)?;
    let tag = tag.strip_prefix('.')?;
    (!tag.contains('.')).then_some((id, tag))
}

/// The id a signed value names, without checking its signature: only to look up what an
/// earlier check of the very same value found (the value is then compared in full).
pub fn unverified_id(signed: &str) -> Option<&str> {
    split_signed(signed).map(|(id, _)| id)
}

fn mac_base64(key: &HmacSha256, value: &str) -> String {
    let mut mac = key.clone();
    mac.update(value.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Nonce followed by ciphertext and tag, base64url.
fn seal(cipher: &XChaCha20Poly1305, plaintext: &[u8]) -> Result<String, CryptoError> {
    // A random 192-bit nonce per message: XChaCha's nonce is large enough for that.
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = cipher
        .encrypt(&nonce, plaintext)
        .map_err(|_| CryptoError::Undecryptable)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    Ok(URL_SAFE_NO_PAD.encode(out))
}

fn open(cipher: &XChaCha20Poly1305, encoded: &str) -> Result<Vec<u8>, CryptoError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| CryptoError::Malformed)?;
    if bytes.len() < 24 {
        return Err(CryptoError::Malformed);
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    cipher
        .decrypt(XNonce::from_slice(nonce), ciphertext)
        .map_err(|_| CryptoError::Undecryptable)
}

/// A fresh 256-bit random value from the OS CSPRNG, base64url encoded (43 characters).
pub fn random_id() -> String {
    let mut bytes = [0u8; ID_BYTES];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of a value, base64url: for binding values we keep server-side without keeping them.
pub fn digest(value: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(b"0123456789abcdef0123456789abcdef").expect("keys")
    }

    #[test]
    fn signed_ids_verify_and_forgeries_do_not() {
        let keys = keys();
        let id = random_id();
        let signed = keys.sign(&id);
        assert_eq!(keys.verify(&signed), Ok(id.as_str()));

        let other = Keys::derive(b"another secret, another secret!!").expect("keys");
        assert_eq!(other.verify(&signed), Err(CryptoError::BadSignature));
        let mut tampered = signed.clone();
        tampered.replace_range(0..1, if signed.starts_with('A') { "B" } else { "A" });
        assert_eq!(keys.verify(&tampered), Err(CryptoError::BadSignature));
        assert_eq!(
            keys.verify(&signed[..signed.len() - 1]),
            Err(CryptoError::Malformed)
        );
        assert_eq!(keys.verify(""), Err(CryptoError::Malformed));
        assert_eq!(keys.verify(&id), Err(CryptoError::Malformed));
    }

    #[test]
    fn the_unverified_id_is_the_id_verify_would_check() {
        let keys = keys();
        let id = random_id();
        let signed = keys.sign(&id);
        let forged = format!("{id}.{}", "A".repeat(43));
        let cases: Vec<(&str, Option<&str>)> = vec![
            (&signed, Some(&id)),
            // Shaped right, signed wrong: the id it names, for a lookup compared in full.
            (&forged, Some(&id)),
            (&signed[..signed.len() - 1], None),
            (&id, None),
            ("", None),
            (".", None),
        ];
        for (value, expected) in cases {
            assert_eq!(unverified_id(value), expected, "{value:?}");
            if keys.verify(value).is_ok() {
                assert_eq!(keys.verify(value).ok(), expected);
            }
        }
    }

    #[test]
    fn a_signed_value_splits_as_at_its_last_dot_into_two_43_character_halves() {
        fn reference(signed: &str) -> Option<(&str, &str)> {
            let (id, tag) = signed.rsplit_once('.')?;
            (id.len() == 43 && tag.len() == 43).then_some((id, tag))
        }
        let half = "A".repeat(43);
        let dotted = format!("{}.{}", &half[..42], "B");
        let cases = [
            format!("{half}.{half}"),
            // A dot inside the id half: still split at the last one.
            format!("{dotted}.{half}"),
            // A dot inside the tag half: the last dot is there, so the halves are uneven.
            format!("{half}.{dotted}"),
            format!("{half}{half}."),
            format!(".{half}{half}"),
            format!("{half}.{half}A"),
            format!("{half}.{}", &half[..42]),
            format!("{}é.{half}", &half[..41]),
            format!("{half}.{}é", &half[..41]),
            "é".repeat(43) + ".",
            String::new(),
            ".".to_string(),
        ];
        for signed in &cases {
            assert_eq!(split_signed(signed), reference(signed), "{signed:?}");
        }
    }

    #[test]
    fn random_ids_are_256_bits_and_differ() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn encryption_round_trips_and_detects_tampering() {
        let keys = keys();
        let sealed = keys.encrypt(b"refresh-token").expect("sealed");
        assert_eq!(keys.decrypt(&sealed).as_deref(), Ok(&b"refresh-token"[..]));
        assert!(!sealed.contains("refresh"));
        let other = Keys::derive(b"another secret, another secret!!").expect("keys");
        assert_eq!(other.decrypt(&sealed), Err(CryptoError::Undecryptable));
        assert_eq!(keys.decrypt("short"), Err(CryptoError::Malformed));
    }

    #[test]
    fn handles_and_csrf_tokens_are_keyed_and_differ_from_ids_and_each_other() {
        let keys = keys();
        let other = Keys::derive(b"another secret, another secret!!").expect("keys");
        let id = random_id();
        let handle = keys.session_handle(&id);
        assert_eq!(handle, keys.session_handle(&id), "stable");
        assert_eq!(handle.len(), 43);
        assert_ne!(handle, id);
        assert_ne!(handle, other.session_handle(&id));
        assert_ne!(handle, keys.session_handle(&random_id()));
        // Neither is the cookie's signature, nor the other one: each has its own key.
        let token = keys.csrf_token(&id);
        assert!(!keys.sign(&id).contains(&handle) && !keys.sign(&id).contains(&token));
        assert_ne!(token, handle);

        assert!(keys.verify_csrf_token(&id, &token));
        assert!(!keys.verify_csrf_token(&random_id(), &token));
        assert!(!other.verify_csrf_token(&id, &token));
        assert!(!keys.verify_csrf_token(&id, &handle));
        for bad in ["", "x", &token[..42], &format!("{token}A"), "!!!!"] {
            assert!(!keys.verify_csrf_token(&id, bad), "{bad:?}");
        }
    }

    #[test]
    fn login_cookies_and_tokens_use_separate_keys() {
        let keys = keys();
        let login = keys.seal_login(b"login").expect("sealed");
        assert_eq!(keys.open_login(&login).as_deref(), Ok(&b"login"[..]));
        assert_eq!(keys.decrypt(&login), Err(CryptoError::Undecryptable));
        let tokens = keys.encrypt(b"tokens").expect("sealed");
        assert_eq!(keys.open_login(&tokens), Err(CryptoError::Undecryptable));
    }
}
