//! The store's integration tests: the conformance suite against SQLite. One test binary for the
//! crate; modules by purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

mod conformance;
