//! Sessions: what a signed-in browser maps to, and where it is kept. Layered from the leaves
//! up: key spaces and errors, the codec, the two backends (each owning its user index), and
//! the store the handlers use.

mod cache;
mod codec;
mod error;
mod invalidation;
mod keys;
mod memory;
mod redis;
mod store;

pub use cache::Cached;
#[cfg(test)]
pub(crate) use codec::encode;
pub use codec::{Session, SessionView, StoredSession, Unusable};
pub use error::StoreError;
pub use keys::Space;
pub use redis::primary_slots;
pub use store::{Found, RedisSessions, Selection, SessionEntry, Store};
