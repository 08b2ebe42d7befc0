//! The kinds of entries kept, each in its own key space.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// session id -> encoded session (see `codec`)
    Session,
    /// session id -> sealed tokens
    Tokens,
    /// `state` -> a marker that the login was completed (see `Store::claim_login`)
    Login,
    /// username -> set of that user's session ids (Redis only; the memory store scans)
    User,
    /// probes written by `Store::ping`
    Ping,
    /// session id -> when an auth check last used it (unix seconds, 8 bytes little-endian)
    Seen,
    /// IdP `sub` -> set of that subject's session ids (Redis only)
    Subject,
    /// IdP session id (`sid`) -> set of the session ids it signed in (Redis only)
    IdpSession,
    /// a back-channel logout token's `jti` -> a marker that it was used
    LogoutToken,
    /// session id -> a marker that a revalidation at the IdP is running (or was just tried and
    /// failed: its TTL is then the pause before the next try), for every replica
    RefreshLock,
}

impl Space {
    pub const ALL: [Space; 10] = [
        Space::Session,
        Space::Tokens,
        Space::Login,
        Space::User,
        Space::Ping,
        Space::Seen,
        Space::Subject,
        Space::IdpSession,
        Space::LogoutToken,
        Space::RefreshLock,
    ];

    /// The Redis key prefix (documented in the README for revocation by hand).
    pub fn prefix(self) -> &'static str {
        match self {
            Space::Session => "portcullis:session:",
            Space::Tokens => "portcullis:tokens:",
            Space::Login => "portcullis:login:",
            Space::User => "portcullis:user:",
            Space::Ping => "portcullis:ping:",
            Space::Seen => "portcullis:seen:",
            Space::Subject => "portcullis:subject:",
            Space::IdpSession => "portcullis:sid:",
            Space::LogoutToken => "portcullis:logout-jti:",
            Space::RefreshLock => "portcullis:refresh-lock:",
        }
    }

    /// The full Redis key of `id` in this space.
    pub fn key(self, id: &str) -> String {
        [self.prefix(), id].concat()
    }
}
