//! The test kit reports a failure by panicking, which is what a test wants. The runner wants an
//! error instead, so that it stops what it started, says where the logs are and exits with 2.

use std::panic::{catch_unwind, AssertUnwindSafe};

use anyhow::anyhow;

/// Runs `f`, turning a panic into an error about `what` (the panic message was printed already).
pub fn caught<T>(what: &str, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        anyhow!("{what} failed: {message}")
    })
}
