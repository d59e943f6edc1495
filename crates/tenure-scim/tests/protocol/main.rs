//! The protocol layer's integration tests: one binary, modules by purpose.
//!
//! - `http`: the router in-process (`oneshot`), one behaviour per test.
//! - `scim2_tester`: the independent compliance suite (PyPI `scim2-cli`) against the router
//!   served on a loopback port.
//!
//! Both run the router over [`reference_backend::ReferenceBackendForProtocolTests`], the
//! protocol test harness; the server repeats the scim2-tester run against Tenure's store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

mod http;
mod reference_backend;
mod scim2_tester;
