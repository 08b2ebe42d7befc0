//! Integration-test harness: the workspace's test kit (testkit/, re-exported whole so that
//! `crate::support::...` paths name its modules), plus the one part that cannot live there:
//! portcullis started in-process, which needs the portcullis crate (see testkit/src/lib.rs).
//!
//! Include from an integration test file with `mod support;`.

pub use portcullis_testkit::*;

pub mod portcullis;
