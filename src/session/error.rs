//! The one error of the session store.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("stored value is unreadable: {0}")]
    Corrupt(String),
}
