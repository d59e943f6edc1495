//! Orchestration: turns snapshots into planned, audited operations (`import`), releases or
//! discards held batches (`approve`), previews policy changes (`simulate`), carries operations
//! out against targets (`executor`), compares targets with what Tenure expects
//! (`reconcile`), and signs, exports and verifies the audit evidence (`evidence`). Async code
//! reaches the synchronous store only through `blocking`.
//!
//! What the CLI prints and the server serves comes from here as wire types (`tenure-proto`):
//! `views` turns store records into them, `reports` computes the reports (coverage and
//! time-to-revoke, an identity in full, the check), `decisions` and `apply` carry out what a
//! person asks for. The frontends print or serve the result and compute nothing themselves.
//!
//! [`app::App`] is the one cloneable application state (config, policy, store, clock) the CLI and
//! the server share; [`Engine`] is the short-lived view its functions borrow.
//!
//! The engine owns the order of things and the guard; the pure decisions live in
//! `tenure-core` (diff, planning) and `tenure-policy` (desired access), and the durable state in
//! `tenure-store`.

pub mod app;
pub mod apply;
pub mod blocking;
pub mod campaigns;
pub mod clock;
pub mod correlation;
pub mod decisions;
pub mod desired;
pub mod evidence;
pub mod executor;
pub mod explain;
pub mod guard;
pub mod import;
pub mod ingest;
pub mod nhi;
pub mod people;
pub mod reconcile;
pub mod reports;
pub mod requests;
pub mod schedule;
pub mod sink;
pub mod tokens;
pub mod views;

use chrono::NaiveDate;
use std::sync::Arc;
use tenure_core::clock::Clock;
use tenure_core::config::{Config, SourceConfig};
use tenure_core::error::{Code, HasCode};
use tenure_policy::{Compiled, Policy};
use tenure_store::Backend;

/// What every engine operation needs: configuration, the loaded policy and the store.
pub struct Engine<'a> {
    pub config: &'a Config,
    pub policy: &'a Policy,
    pub compiled: Compiled,
    pub store: &'a dyn Backend,
    /// Today as the clock says in UTC (or as `TENURE_TODAY` pins it): the date for what has no
    /// timezone of its own.
    pub today: NaiveDate,
    /// The clock a source's dates are read on, in the source's `timezone` ([`Engine::today_for`]);
    /// without one (an engine on a fixed date, as the benchmarks make), `today` serves every
    /// source.
    pub clock: Option<Arc<dyn Clock>>,
}

impl<'a> Engine<'a> {
    pub fn new(config: &'a Config, policy: &'a Policy, store: &'a dyn Backend, today: NaiveDate) -> Self {
        let compiled = Compiled::new(policy, config.schema.len());
        Self { config, policy, compiled, store, today, clock: None }
    }

    /// Today in `source`'s timezone: the date its start and end dates are compared with, so a
    /// last day ends at midnight where the source keeps its dates (a pinned `TENURE_TODAY` is
    /// that date everywhere).
    pub fn today_for(&self, source: &SourceConfig) -> NaiveDate {
        self.clock.as_ref().map_or(self.today, |c| c.today_in(source.timezone))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] tenure_store::StoreError),
    #[error("unknown source `{0}`; sources in the config: {1}")]
    UnknownSource(String, String),
    #[error("unknown target `{0}`; targets in the config: {1}")]
    UnknownTarget(String, String),
    #[error("source `{0}` is not a CSV source")]
    NotCsv(String),
    #[error("{file}: {error}")]
    Snapshot { file: String, error: tenure_core::snapshot::SnapshotError },
    #[error("{0}")]
    Invalid(String),
    /// A request or a decision refused by policy, with its code; nothing was changed.
    #[error("{1}")]
    Refused(Code, String),
    #[error(transparent)]
    App(#[from] Box<crate::app::AppError>),
    /// The caller may not do this (not the review item's reviewer).
    #[error("{0}")]
    Forbidden(String),
}

pub type Result<T> = std::result::Result<T, EngineError>;

impl HasCode for EngineError {
    fn code(&self) -> Code {
        match self {
            EngineError::Store(e) => store_code(e),
            EngineError::UnknownSource(..) => Code::UnknownSource,
            EngineError::UnknownTarget(..) => Code::UnknownTarget,
            EngineError::NotCsv(_) => Code::WrongSourceKind,
            EngineError::Snapshot { error, .. } => error.code(),
            EngineError::Invalid(_) => Code::InvalidInput,
            EngineError::Refused(code, _) => *code,
            EngineError::App(e) => e.code(),
            EngineError::Forbidden(_) => Code::Forbidden,
        }
    }
}

/// The code of a store error (the store says its own: `tenure_store::StoreError` is `HasCode`).
pub fn store_code(e: &tenure_store::StoreError) -> Code {
    e.code()
}
