//! Non-human identities' credentials (issue 10): planning `rotate_credential` operations and
//! reading when each account's credential was last rotated and verified. The [`Credentials`]
//! trait every store implements.
//!
//! The store never sees a secret: a rotation is an operation like any other (kind, identity,
//! target, account), and the executor generates the secret when it runs it. What the store keeps
//! is when a rotation was verified, which is how old a credential is when the source does not
//! say (`credential_rotated`).

use crate::Result;
use std::collections::HashMap;

/// One account whose credential is to be rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationIn {
    pub identity: String,
    pub target: String,
    /// The account name recorded in the identity's holdings.
    pub account: Option<String>,
    /// Why: `requested by alice`, `owner changed from E1 to E2`, `credential older than 90d`.
    pub why: String,
}

/// Rotations to plan, by whom (`user:alice`, `schedule:credentials`).
#[derive(Debug, Clone)]
pub struct Rotations {
    pub actor: String,
    pub ops: Vec<RotationIn>,
}

/// What planning did with each account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// A new `rotate_credential` operation, with its case.
    Queued { operation: i64, case: i64 },
    /// One is already pending or running for that account: nothing was added.
    AlreadyQueued { operation: i64 },
}

/// The credential side of the store. Implementations are safe to share between threads.
pub trait Credentials: Send + Sync {
    /// Plans one `rotate_credential` per account, one event and case per identity, audited as
    /// `plan.rotate_credential` with the actor and why, in one transaction. An account with a
    /// rotation already pending or running gets none (`Planned::AlreadyQueued`). Answers in the
    /// order of `r.ops`.
    fn plan_rotations(&self, r: &Rotations) -> Result<Vec<Planned>>;
    /// When each account's credential was last rotated by Tenure and verified, by
    /// `(identity, target)`, for the given identities (all when `None`).
    fn last_rotations(&self, identities: Option<&[&str]>) -> Result<HashMap<(String, String), String>>;
}
