//! `[nhi]` in `tenure.toml`: where rotated credentials go and how old a
//! non-human identity's credential may get. The policy's `[nhi]` (what happens when an owner
//! leaves) is the policy's; this section is about secrets, which never belong in a policy.
//!
//! | key | default | what |
//! | --- | --- | --- |
//! | `secret_sink` | none | a directory (relative to the config file) that receives each rotated secret, one file per target and account (`DIR/TARGET/ACCOUNT`, 0600, in directories made 0700); without it, `rotate_credential` is refused |
//! | `credential_max_age` | none | the default age (`90d`, `12h`, ...) past which an NHI's credential is stale, for identities without their own `credential_max_age` attribute |
//!
//! A `[[target]]` may name its own `secret_sink`, which wins over this one for that target.

use super::Reader;
use crate::diag::Problems;
use crate::doc::{Node, Table};

/// `[nhi]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NhiConfig {
    /// The sink directory, as written (relative to the config file).
    pub secret_sink: Option<String>,
    /// The default `credential_max_age`, in seconds.
    pub credential_max_age_secs: Option<u64>,
}

/// The keys of `[nhi]`.
pub const NHI_KEYS: &[&str] = &["secret_sink", "credential_max_age"];

pub(super) fn parse(t: &Table, p: &mut Problems<'_>) -> NhiConfig {
    let mut r = Reader::new(t, "[nhi]", p, NHI_KEYS);
    let mut out = NhiConfig::default();
    if let Some(dir) = r.string("secret_sink") {
        match sink_problem(&dir) {
            Some(why) => {
                let at = t.get("secret_sink").map_or(0, Node::start);
                r.p.at(at, format!("`secret_sink` in [nhi] {why}"));
            }
            None => out.secret_sink = Some(dir),
        }
    }
    if let Some(age) = r.string("credential_max_age") {
        match crate::date::parse_duration(&age) {
            Some(secs) => out.credential_max_age_secs = Some(secs),
            None => {
                let at = t.get("credential_max_age").map_or(0, Node::start);
                r.p.at(
                    at,
                    format!("`credential_max_age` in [nhi] `{age}` is not a duration like `90d`, `12h` or `30m`"),
                );
            }
        }
    }
    out
}

/// Why a sink directory is refused: empty, or with characters no path should have.
pub(super) fn sink_problem(dir: &str) -> Option<&'static str> {
    if dir.trim().is_empty() {
        Some("must not be empty")
    } else if crate::text::has_hidden(dir, false) {
        Some("holds control or invisible characters")
    } else {
        None
    }
}

/// The age in seconds a `credential_max_age` value (`90d`, `12h`) stands for.
pub fn max_age_secs(value: &str) -> Option<u64> {
    crate::date::parse_duration(value)
}
