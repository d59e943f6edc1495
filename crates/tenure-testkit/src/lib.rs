//! Test support: real peers started on free loopback ports in temp dirs, and synthetic
//! companies for tests, benchmarks and the demo.
//!
//! Peers are real programs (OpenLDAP `slapd`, the PyPI `scim2-server`, PostgreSQL), installed on
//! first use when missing. A peer that cannot be started is an error, never a silent skip: a
//! real-peer test must fail when its peer is absent.

/// Synthetic companies live in `tenure-sample` (the production binary needs them without the
/// installers); re-exported here for the tests and benchmarks.
pub use tenure_sample::company;
pub mod peers;
pub mod server;
pub mod stack;
