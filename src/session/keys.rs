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
}

impl Space {
    pub const ALL: [Space; 5] = [
        Space::Session,
        Space::Tokens,
        Space::Login,
        Space::User,
        Space::Ping,
    ];

    /// The Redis key prefix (documented in the README for revocation by hand).
    pub fn prefix(self) -> &'static str {
        match self {
            Space::Session => "portcullis:session:",
            Space::Tokens => "portcullis:tokens:",
            Space::Login => "portcullis:login:",
            Space::User => "portcullis:user:",
            Space::Ping => "portcullis:ping:",
        }
    }

    /// The full Redis key of `id` in this space.
    pub fn key(self, id: &str) -> String {
        [self.prefix(), id].concat()
    }
}
