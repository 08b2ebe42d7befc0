//! A session and its one stored encoding (versioned, read in place).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// What the auth check needs about a signed-in user, as the login builds it. Kept small: it
/// is read on every request. Tokens are stored apart from it, encrypted, and when it was last
/// used apart too (see `Store::touch`), so that neither rewrites it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// The IdP's `sub`: back-channel logout by subject, and the subject a refresh must keep.
    pub subject: String,
    /// The IdP's session id (the ID token's `sid`), for back-channel logout by session.
    pub idp_session: Option<String>,
    /// Unix seconds: when the claims were last read from the IdP.
    pub claims_read_at: u64,
    /// The browser's `User-Agent` at sign-in (shortened), for the sessions lists.
    pub user_agent: Option<String>,
    /// The client address at sign-in as the proxy reported it, for the sessions lists.
    pub address: Option<String>,
    /// Unix seconds until which the sealed tokens can revalidate the claims: `u64::MAX` with a
    /// refresh token, the access token's expiry without one, 0 with nothing. The auth check
    /// decides from it without opening the tokens.
    pub refreshable_until: u64,
    /// The name of the provider the user signed in with (`OIDC_PROVIDERS`); `None` with the one
    /// provider of the unprefixed `OIDC_*` variables.
    pub provider: Option<String>,
}

/// A stored session read in place: every string borrows from the stored bytes, so the auth
/// check decodes a session without copying it. Same fields, same order as [`Session`]: both
/// have one encoding (see [`encode`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SessionView<'a> {
    pub user: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub preferred_username: Option<&'a str>,
    pub groups: Vec<&'a str>,
    pub created_at: u64,
    pub expires_at: u64,
    pub subject: &'a str,
    pub idp_session: Option<&'a str>,
    pub claims_read_at: u64,
    pub user_agent: Option<&'a str>,
    pub address: Option<&'a str>,
    pub refreshable_until: u64,
    pub provider: Option<&'a str>,
}

/// The second format, before the session knew its provider: the one unnamed provider's.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SessionViewV2<'a> {
    user: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    preferred_username: Option<&'a str>,
    groups: Vec<&'a str>,
    created_at: u64,
    expires_at: u64,
    subject: &'a str,
    idp_session: Option<&'a str>,
    claims_read_at: u64,
    user_agent: Option<&'a str>,
    address: Option<&'a str>,
    refreshable_until: u64,
}

impl<'a> From<SessionViewV2<'a>> for SessionView<'a> {
    fn from(v2: SessionViewV2<'a>) -> SessionView<'a> {
        SessionView {
            user: v2.user,
            email: v2.email,
            email_verified: v2.email_verified,
            preferred_username: v2.preferred_username,
            groups: v2.groups,
            created_at: v2.created_at,
            expires_at: v2.expires_at,
            subject: v2.subject,
            idp_session: v2.idp_session,
            claims_read_at: v2.claims_read_at,
            user_agent: v2.user_agent,
            address: v2.address,
            refreshable_until: v2.refreshable_until,
            provider: None,
        }
    }
}

/// The first format, before the session knew its IdP subject and session: still read, so that
/// an upgrade signs nobody out.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SessionViewV1<'a> {
    user: &'a str,
    email: Option<&'a str>,
    email_verified: bool,
    preferred_username: Option<&'a str>,
    groups: Vec<&'a str>,
    created_at: u64,
    expires_at: u64,
}

impl<'a> From<SessionViewV1<'a>> for SessionView<'a> {
    fn from(v1: SessionViewV1<'a>) -> SessionView<'a> {
        SessionView {
            user: v1.user,
            email: v1.email,
            email_verified: v1.email_verified,
            preferred_username: v1.preferred_username,
            groups: v1.groups,
            created_at: v1.created_at,
            expires_at: v1.expires_at,
            // A v1 login's claims were read when it was made.
            claims_read_at: v1.created_at,
            ..SessionView::default()
        }
    }
}

impl Session {
    /// The view a decoded copy gives: what [`StoredSession::view`] gives of its encoding.
    pub fn as_view(&self) -> SessionView<'_> {
        SessionView {
            user: &self.user,
            email: self.email.as_deref(),
            email_verified: self.email_verified,
            preferred_username: self.preferred_username.as_deref(),
            groups: self.groups.iter().map(String::as_str).collect(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            subject: &self.subject,
            idp_session: self.idp_session.as_deref(),
            claims_read_at: self.claims_read_at,
            user_agent: self.user_agent.as_deref(),
            address: self.address.as_deref(),
            refreshable_until: self.refreshable_until,
            provider: self.provider.as_deref(),
        }
    }
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
            subject: self.subject.to_owned(),
            idp_session: self.idp_session.map(str::to_owned),
            claims_read_at: self.claims_read_at,
            user_agent: self.user_agent.map(str::to_owned),
            address: self.address.map(str::to_owned),
            refreshable_until: self.refreshable_until,
            provider: self.provider.map(str::to_owned),
        }
    }
}

/// The first byte of every stored session. postcard is compact (a session is about 100 bytes)
/// and decodes borrowed strings, unlike JSON with its escapes. Bytes that start otherwise
/// (a hand-written key, a format from the future) are refused as unreadable, never guessed at.
const FORMAT_V1: u8 = 1;
const FORMAT_V2: u8 = 2;
const FORMAT_V3: u8 = 3;

pub(crate) fn encode(session: &Session) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(session, vec![FORMAT_V3]).map_err(|e| StoreError::Corrupt(e.to_string()))
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
        fn whole<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, StoreError> {
            match postcard::take_from_bytes(bytes) {
                Ok((value, [])) => Ok(value),
                Ok(_) => Err(StoreError::Corrupt(
                    "trailing bytes after a session".to_string(),
                )),
                Err(e) => Err(StoreError::Corrupt(e.to_string())),
            }
        }
        match self.0.split_first() {
            Some((&FORMAT_V3, rest)) => whole(rest),
            Some((&FORMAT_V2, rest)) => whole::<SessionViewV2>(rest).map(SessionView::from),
            Some((&FORMAT_V1, rest)) => whole::<SessionViewV1>(rest).map(SessionView::from),
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
            subject: "alice-sub".into(),
            idp_session: Some("idp-sid".into()),
            claims_read_at: 1_700_000_300,
            user_agent: Some("Firefox".into()),
            address: Some("192.0.2.1".into()),
            refreshable_until: u64::MAX,
            provider: Some("keycloak".into()),
        }
    }

    #[test]
    fn a_session_reads_back_as_the_same_view() {
        for groups in [&[][..], &["ops", "ACME, Inc", "ü/ß", ""][..]] {
            let original = session(groups);
            let stored = StoredSession::new(encode(&original).unwrap());
            assert_eq!(stored.view().unwrap().to_session(), original);
            // A decoded copy views alike.
            assert_eq!(original.as_view(), stored.view().unwrap());
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
            vec![3],
            vec![4],
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
    fn a_first_format_session_still_reads() {
        let v1 = SessionViewV1 {
            user: "alice",
            email: Some("alice@example.com"),
            email_verified: true,
            preferred_username: None,
            groups: vec!["ops"],
            created_at: 10,
            expires_at: 20,
        };
        let stored = StoredSession::new(postcard::to_extend(&v1, vec![FORMAT_V1]).unwrap());
        let view = stored.view().unwrap();
        assert_eq!(view.user, "alice");
        assert_eq!(view.groups, ["ops"]);
        assert_eq!(
            (view.created_at, view.expires_at, view.claims_read_at),
            (10, 20, 10)
        );
        assert_eq!((view.subject, view.idp_session), ("", None));
        // Nothing to revalidate with: a v1 login stored no refresh or access token.
        assert_eq!(view.refreshable_until, 0);
    }

    #[test]
    fn a_second_format_session_reads_as_the_unnamed_providers() {
        let v2 = SessionViewV2 {
            user: "alice",
            email: None,
            email_verified: false,
            preferred_username: None,
            groups: vec!["ops"],
            created_at: 10,
            expires_at: 20,
            subject: "alice-sub",
            idp_session: Some("sid"),
            claims_read_at: 15,
            user_agent: None,
            address: None,
            refreshable_until: 30,
        };
        let stored = StoredSession::new(postcard::to_extend(&v2, vec![FORMAT_V2]).unwrap());
        let view = stored.view().unwrap();
        assert_eq!((view.user, view.subject), ("alice", "alice-sub"));
        assert_eq!((view.claims_read_at, view.refreshable_until), (15, 30));
        assert_eq!(view.provider, None);
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
