//! The checks behind the cargo-fuzz targets in `fuzz/`, one `pub fn NAME(data: &[u8])` per
//! target.
//!
//! cargo-fuzz needs a nightly toolchain, so `fuzz/` is its own workspace outside the stable
//! build; each `fuzz/fuzz_targets/NAME.rs` only calls [`NAME`](TARGETS) here. Keeping the checks
//! in this workspace crate means the stable test suite runs the same code: `tests/replay.rs`
//! feeds every checked-in input under `fuzz/corpus/NAME/` through the same entry point, so a
//! crash the fuzzer once found stays fixed and a target that stops compiling fails CI.
//!
//! Each target turns arbitrary bytes into input for one parser (or one pair of functions that
//! must agree) and panics only on a real bug: a panic inside the code under test, or a broken
//! property — the compiled policy evaluator disagreeing with the reference one, an escaped value
//! that does not parse back to itself, a verifier accepting what it must refuse. Refusing the
//! input with an error is always fine.

#![expect(clippy::panic, reason = "a fuzz check reports a bug by panicking; that is its whole job")]

mod audit;
mod config;
mod fixtures;
mod ldap;
mod policy;
mod scim;
mod snapshot;
mod webhook;

pub use audit::{audit_bundle, audit_export};
pub use config::config_toml;
pub use ldap::ldap_dn;
pub use policy::{policy_eval, policy_toml};
pub use scim::{scim_filter, scim_patch};
pub use snapshot::snapshot_csv;
pub use webhook::{webhook_records, webhook_signature};

/// A target's check: runs one input, panics on a bug.
pub type Check = fn(&[u8]);

/// Every target by name: the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("snapshot_csv", snapshot_csv),
    ("config_toml", config_toml),
    ("policy_toml", policy_toml),
    ("policy_eval", policy_eval),
    ("scim_filter", scim_filter),
    ("scim_patch", scim_patch),
    ("webhook_records", webhook_records),
    ("webhook_signature", webhook_signature),
    ("ldap_dn", ldap_dn),
    ("audit_export", audit_export),
    ("audit_bundle", audit_bundle),
];
