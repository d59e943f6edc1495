//! Tenure's durable state: identities, the event journal, cases, the operation queue, approvals
//! and the hash-chained audit trail with its signed checkpoints.
//!
//! Callers use the [`Store`] and [`Queue`] traits ([`Backend`] is both). They are shaped around
//! *batches*: the engine computes an import's events, operations and holdings in memory and
//! hands them over as one [`Batch`], which the store writes in a single transaction together
//! with the audit records describing it. Either everything in a batch is durable or nothing is,
//! so a crash or a bad row never leaves half-applied state, and the audit chain always describes
//! exactly what was committed.
//!
//! The store writes decisions made above it; it does not make them. A case's state comes from
//! `tenure_core::rules::case_state`, the accounts a retention sweep deletes from
//! `tenure_core::rules::retention_due`, and the held batches a snapshot supersedes arrive in
//! the [`Batch`]. What the store does own is consistency: every write checks the precondition it
//! was computed under (the source's last import, an operation still queued, a claim still held)
//! and fails with [`StoreError::Conflict`] when it no longer holds.
//!
//! Time comes from an injected [`Clock`](tenure_core::clock::Clock): every timestamp the store
//! writes or compares with (audit `at`, created, updated, verified and closed times, lease
//! expiry, ticket due times) is read from it, so tests step time with a `FakeClock`.
//!
//! [`sqlite::SqliteStore`] is the embedded implementation (WAL mode, embedded numbered
//! migrations). Nothing in this crate's public API names SQLite outside [`sqlite`], and
//! [`conformance`] is the suite any implementation must pass, so a PostgreSQL store can follow
//! without changing callers.

mod browse;
pub mod campaigns;
pub mod conformance;
mod correlation;
mod credentials;
mod error;
mod exceptions;
mod push;
mod records;
pub mod requests;
mod schedule;
pub mod scim;
pub mod sqlite;
mod tokens;
mod traits;

pub use browse::{Browse, IdentityQuery, TargetCount, schema_version};
pub use campaigns::Campaigns;
pub use correlation::{
    Baseline, Candidate, CaseIn, CorrelationCase, CorrelationIn, Correlations, Decision, LateMatches, LinkIn,
    LinkRecord, RefusedAdoption, Unmatched, Verdict,
};
pub use credentials::{Credentials, Planned, RotationIn, Rotations};
pub use error::{BackendError, Result, StoreError};
pub use exceptions::{CloseException, Closing, Exceptions, NewException, OpenByKind};
pub use push::*;
pub use records::*;
pub use requests::{
    AcceptedRisk, EndRequest, NewRequest, NewStage, RequestChanges, RequestEnd, RequestGrant, RequestRecord, Requests,
    StageApproval, StageRecord,
};
pub use schedule::{JobDone, JobOutcome, JobRun, Lead, Recheck, RecheckCandidate, RecheckIds, Schedules};
pub use scim::ScimStore;
pub use sqlite::{SqliteStore, StoreOptions};
pub use tokens::{NewToken, TokenRecord, Tokens};
pub use traits::{Backend, Queue, Store};

/// The wall clock, for a store outside tests. `tenure-core` never reads the clock itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl tenure_core::clock::Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
