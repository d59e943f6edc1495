//! The exceptions register: control debt, recorded where it happens and closed by a
//! person with a reason. The [`Exceptions`] trait is what the engine, the CLI and the server use
//! beyond the listing in [`Queue`](crate::Queue).
//!
//! The executor, the overdue job, a declined fix and a case closing with access left behind
//! record their exceptions inside the store's own transactions (`failed_operation`,
//! `failed_revocation`, `overdue_ticket`, `declined_fix`, `partial_removal`); other parts of the
//! engine (an accepted SoD risk, a review's revocation that overrides policy) record theirs
//! through [`Exceptions::open_exception`]. Resolving and accepting are audited in the same
//! transaction as the change, with who and why.

use crate::Result;
use crate::records::ExceptionRecord;
use tenure_core::{ExceptionKind, ExceptionState};

/// An exception to record.
#[derive(Debug, Clone)]
pub struct NewException<'a> {
    pub kind: ExceptionKind,
    /// What it is about, unique per kind: `operation:ID`, `request:ID`, `review:ID`, ...
    pub subject: &'a str,
    pub case_id: Option<i64>,
    pub identity: Option<&'a str>,
    pub target: Option<&'a str>,
    /// Who answers for it: a person's id or username, a team, a target's owner.
    pub owner: &'a str,
    pub reason: &'a str,
    /// By when it should be dealt with (an accepted risk's expiry), a stored timestamp.
    pub due_at: Option<&'a str>,
}

/// How a person closes an open exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The deviation is gone.
    Resolve,
    /// The deviation stays, knowingly; a failed operation it is about becomes `excepted`, so its
    /// case can close.
    Accept,
}

impl Closing {
    pub fn state(self) -> ExceptionState {
        match self {
            Closing::Resolve => ExceptionState::Resolved,
            Closing::Accept => ExceptionState::Accepted,
        }
    }
}

/// A person's decision on an exception.
#[derive(Debug, Clone)]
pub struct CloseException<'a> {
    pub id: i64,
    pub closing: Closing,
    /// Who decided, as the audit trail names them (`user:alice`, `token:ops`).
    pub actor: &'a str,
    /// Their name alone, recorded on the exception.
    pub by: &'a str,
    pub reason: &'a str,
    /// A new due date (accepting: when to look at the risk again); `None` keeps the one it has.
    pub due_at: Option<&'a str>,
}

/// Open exceptions of one kind, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenByKind {
    pub kind: ExceptionKind,
    pub state: ExceptionState,
    pub count: i64,
    /// When the oldest of them was opened.
    pub oldest: String,
}

/// The register's writes. Implementations are safe to share between threads.
pub trait Exceptions: Send + Sync {
    /// Records an exception, audited as `exception.opened` with `actor`. Once per kind and
    /// subject: a second call changes nothing and returns the first.
    fn open_exception(&self, x: &NewException<'_>, actor: &str) -> Result<ExceptionRecord>;
    /// One exception by id.
    fn exception(&self, id: i64) -> Result<Option<ExceptionRecord>>;
    /// Resolves or accepts an open exception, audited as `exception.resolved` or
    /// `exception.accepted` with who and why; its case's state is recomputed. Fails with
    /// `NotFound` for an unknown id and `Conflict` for one that is no longer open, changing
    /// nothing.
    fn close_exception(&self, c: &CloseException<'_>) -> Result<ExceptionRecord>;
    /// Exceptions still counting as debt (open or accepted), by kind and state, with the oldest
    /// one's opening time.
    fn exception_counts(&self) -> Result<Vec<OpenByKind>>;
}
