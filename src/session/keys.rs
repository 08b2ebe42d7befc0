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

    /// Whether the entries of this space belong to one session (keyed by its id).
    pub fn is_per_session(self) -> bool {
        matches!(
            self,
            Space::Session | Space::Tokens | Space::Seen | Space::RefreshLock
        )
    }

    /// The full Redis key of `id` in this space. A session's own entries carry its id as a
    /// hash tag (`portcullis:session:{ID}`), so that in a Redis Cluster they share one slot and
    /// one command or transaction can read or write them together.
    pub fn key(self, id: &str) -> String {
        if self.is_per_session() {
            [self.prefix(), "{", id, "}"].concat()
        } else {
            [self.prefix(), id].concat()
        }
    }

    /// The id in a key of this space (the inverse of [`Space::key`]).
    pub fn id_of(self, key: &str) -> Option<&str> {
        let rest = key.strip_prefix(self.prefix())?;
        if self.is_per_session() {
            rest.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Space;

    #[test]
    fn a_sessions_own_keys_share_its_hash_tag() {
        assert_eq!(Space::Session.key("abc"), "portcullis:session:{abc}");
        assert_eq!(Space::Tokens.key("abc"), "portcullis:tokens:{abc}");
        assert_eq!(Space::Seen.key("abc"), "portcullis:seen:{abc}");
        assert_eq!(
            Space::RefreshLock.key("abc"),
            "portcullis:refresh-lock:{abc}"
        );
        assert_eq!(Space::User.key("alice"), "portcullis:user:alice");
        assert_eq!(Space::Login.key("st"), "portcullis:login:st");
    }

    #[test]
    fn ids_come_back_from_keys() {
        for space in Space::ALL {
            assert_eq!(space.id_of(&space.key("x-1_y")), Some("x-1_y"), "{space:?}");
        }
        assert_eq!(Space::Session.id_of("portcullis:session:abc"), None);
        assert_eq!(Space::Session.id_of("portcullis:tokens:{abc}"), None);
    }
}
