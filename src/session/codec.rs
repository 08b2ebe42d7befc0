//! A session and its one stored encoding (versioned, read in place).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// What the auth check needs about a signed-in user, as the login builds it. Kept small: it
/// is read on every request. Tokens are stored apart from it, encrypted (see
/// [`Store::put_session`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Value of `OIDC_USERNAME_CLAIM`.
    pub user: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    /// Groups as the IdP sent them; mapping is applied per request, so configuration changes
    /// take effect without a new login.
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; the session is void from then on, whatever the store still holds.
    pub expires_at: u64,
}

/// A stored session read in place: every string borrows from the stored bytes, so the auth
/// check decodes a session without copying it. Same fields, same order as [`Session`]: both
/// have one encoding (see [`encode`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SessionView<'a> {
    pub user: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub preferred_username: Option<&'a str>,
    pub groups: Vec<&'a str>,
    pub created_at: u64,
    pub expires_at: u64,
}

impl SessionView<'_> {
    pub fn is_live(&self, now: u64) -> bool {
        now < self.expires_at
    }

    pub fn to_session(&self) -> Session {
        Session {
            user: self.user.to_owned(),
            email: self.email.map(str::to_owned),
            email_verified: self.email_verified,
            preferred_username: self.preferred_username.map(str::to_owned),
            groups: self.groups.iter().map(|g| (*g).to_owned()).collect(),
            created_at: self.created_at,
            expires_at: self.expires_at,
        }
    }
}

/// The first byte of every stored session. postcard is compact (a session is about 80 bytes)
/// and decodes borrowed strings, unlike JSON with its escapes. Bytes that start otherwise
/// (an older format, a hand-written key) are refused as unreadable, never guessed at.
const FORMAT_V1: u8 = 1;

pub(crate) fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(session, vec![FORMAT_V1]).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Why a stored session does not sign anyone in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    Expired,
    Unreadable,
}

/// A session as the store returned it, not yet decoded.
#[derive(Debug, Clone)]
pub struct StoredSession(Arc<[u8]>);

impl StoredSession {
    pub(crate) fn new(bytes: impl Into<Arc<[u8]>>) -> StoredSession {
        StoredSession(bytes.into())
    }

    pub fn view(&self) -> Result<SessionView<'_>, StoreError> {
        match self.0.split_first() {
            Some((&FORMAT_V1, rest)) => match postcard::take_from_bytes(rest) {
                Ok((view, [])) => Ok(view),
                Ok(_) => Err(StoreError::Corrupt(
                    "trailing bytes after a session".to_string(),
                )),
                Err(e) => Err(StoreError::Corrupt(e.to_string())),
            },
            _ => Err(StoreError::Corrupt(
                "not a session in a known format".to_string(),
            )),
        }
    }

    /// The session if it decodes and has not expired; otherwise why not.
    pub fn live_view(&self, now: u64) -> Result<SessionView<'_>, Unusable> {
        match self.view() {
            Ok(view) if view.is_live(now) => Ok(view),
            Ok(_) => Err(Unusable::Expired),
            Err(err) => {
                tracing::warn!(error = %err, "a stored session is unreadable; treated as signed out");
                Err(Unusable::Unreadable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(groups: &[&str]) -> Session {
        Session {
            user: "alice".into(),
            email: Some("alice@example.com".into()),
            email_verified: true,
            preferred_username: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            created_at: 1_700_000_000,
            expires_at: 1_700_043_200,
        }
    }

    #[test]
    fn a_session_reads_back_as_the_same_view() {
        for groups in [&[][..], &["ops", "ACME, Inc", "ü/ß", ""][..]] {
            let original = session(groups);
            let stored = StoredSession::new(encode(&original).unwrap());
            assert_eq!(stored.view().unwrap().to_session(), original);
        }
    }

    #[test]
    fn unknown_or_damaged_bytes_are_unreadable_not_a_session() {
        let good = encode(&session(&["ops"])).unwrap();
        let json = serde_json::to_vec(&session(&["ops"])).unwrap();
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            json,
            vec![2],
            good[..good.len() - 1].to_vec(),
            vec![FORMAT_V1, 200, 200, 200],
            [good.as_slice(), &[0]].concat(),
        ];
        for bytes in cases {
            let stored = StoredSession::new(bytes.clone());
            assert!(stored.view().is_err(), "{bytes:?}");
            assert_eq!(stored.live_view(0).unwrap_err(), Unusable::Unreadable);
        }
    }

    #[test]
    fn live_view_refuses_an_expired_session() {
        let stored = StoredSession::new(encode(&session(&[])).unwrap());
        assert!(stored.live_view(1_700_043_199).is_ok());
        assert_eq!(
            stored.live_view(1_700_043_200).unwrap_err(),
            Unusable::Expired
        );
    }
}
