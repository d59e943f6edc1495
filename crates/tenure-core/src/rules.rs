//! Lifecycle decisions that every store implementation relies on, kept out of SQL so that a
//! second store cannot get them subtly different.
//!
//! The store gathers the facts (operation counts, retention candidates, held batches), one of
//! these functions decides, and the store writes the decision. Each is a pure function of its
//! inputs, tested here with data.

use crate::{CaseState, OpState, Status};

/// What a case's state is computed from: its operations and its open exceptions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaseCounts {
    pub total: u64,
    /// Operations whose effect was read back, recorded as an exception, or no longer needed.
    pub settled: u64,
    pub failed: u64,
    /// Open exceptions of the case (an overdue ticket, a failed operation).
    pub open_exceptions: u64,
}

impl CaseCounts {
    /// Counts from `(state, how many)` pairs and the number of open exceptions.
    pub fn from_states(states: impl IntoIterator<Item = (OpState, u64)>, open_exceptions: u64) -> Self {
        let mut c = Self { open_exceptions, ..Self::default() };
        for (state, n) in states {
            c.total += n;
            if state.is_settled() {
                c.settled += n;
            }
            if state == OpState::Failed {
                c.failed += n;
            }
        }
        c
    }
}

/// A case closes when every operation is settled (a case with none closes at once); it is stuck
/// while an operation failed or an exception is open; otherwise it is open.
pub fn case_state(c: &CaseCounts) -> CaseState {
    if c.settled >= c.total {
        CaseState::Closed
    } else if c.failed > 0 || c.open_exceptions > 0 {
        CaseState::Stuck
    } else {
        CaseState::Open
    }
}

/// An account a retention sweep might delete, with the facts the decision needs. The store
/// returns a superset (accounts of terminated identities in one target); [`retention_due`]
/// decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub identity: String,
    pub status: Status,
    /// Whether Tenure's committed view of the account has it enabled.
    pub enabled: bool,
    /// When the identity's latest leaver case closed; `None` if it has none or it is still
    /// open. A stored timestamp (RFC 3339 UTC, sortable as text).
    pub leaver_closed_at: Option<String>,
    /// Operations of the identity in the target that have not finished (pending, running, held,
    /// or done and waiting for a ticket).
    pub unfinished: u64,
}

/// The candidates whose account is due for deletion: a disabled account of a terminated
/// identity whose latest leaver case closed before `cutoff`, with nothing left to do in the
/// target. The latest leaver case counts, so a rehired and departed again identity waits out the
/// whole retention period again.
pub fn retention_due<'a>(candidates: &'a [RetentionCandidate], cutoff: &str) -> Vec<&'a RetentionCandidate> {
    candidates
        .iter()
        .filter(|c| {
            c.status == Status::Terminated
                && !c.enabled
                && c.unfinished == 0
                && c.leaver_closed_at.as_deref().is_some_and(|t| t < cutoff)
        })
        .collect()
}

/// A batch held for approval, as the supersession rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBatch {
    pub approval: i64,
    pub import: i64,
    pub source: String,
}

/// Whether an event that leaves an identity in `status` ends its open access requests: a
/// leaver's pending requests are cancelled and its granted ones too (their grants are revoked
/// by the leaver's plan, with the rest). The store applies it in the event's transaction.
pub fn ends_requests(status: Status) -> bool {
    status == Status::Terminated
}

/// The held batches a new snapshot of `source` supersedes: every batch of that source still
/// held. A held diff was computed against a state the newer snapshot replaces, so approving it
/// later would replay stale changes.
pub fn superseded_by_snapshot<'a>(source: &str, held: &'a [HeldBatch]) -> Vec<&'a HeldBatch> {
    held.iter().filter(|h| h.source == source).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_state_from_counts() {
        #[track_caller]
        fn check(states: &[(OpState, u64)], open_exceptions: u64, expect: CaseState) {
            let c = CaseCounts::from_states(states.iter().copied(), open_exceptions);
            assert_eq!(case_state(&c), expect, "{states:?}, {open_exceptions} open exception(s): {c:?}");
        }
        use OpState::*;
        check(&[], 0, CaseState::Closed);
        check(&[(Verified, 3)], 0, CaseState::Closed);
        check(&[(Verified, 1), (Excepted, 1), (Cancelled, 2)], 0, CaseState::Closed);
        // Settled work closes a case even with an exception left open about it (a declined fix).
        check(&[(Excepted, 2)], 2, CaseState::Closed);
        check(&[(Verified, 1), (Pending, 1)], 0, CaseState::Open);
        check(&[(Running, 1), (Done, 1), (Held, 1)], 0, CaseState::Open);
        check(&[(Verified, 1), (Failed, 1)], 0, CaseState::Stuck);
        check(&[(Done, 1)], 1, CaseState::Stuck);
        check(&[(Pending, 1), (Failed, 2)], 1, CaseState::Stuck);
    }

    #[test]
    fn counts_sum_states() {
        let c = CaseCounts::from_states([(OpState::Verified, 2), (OpState::Failed, 1), (OpState::Cancelled, 1)], 3);
        assert_eq!(c, CaseCounts { total: 4, settled: 3, failed: 1, open_exceptions: 3 });
    }

    #[test]
    fn retention_selects_idle_disabled_accounts_of_leavers_past_the_cutoff() {
        let cutoff = "2026-11-01T00:00:00.000000Z";
        let before = Some("2026-10-31T23:59:59.999999Z".to_string());
        let after = Some("2026-11-01T00:00:00.000001Z".to_string());
        let base = RetentionCandidate {
            identity: "due".into(),
            status: Status::Terminated,
            enabled: false,
            leaver_closed_at: before.clone(),
            unfinished: 0,
        };
        let cases = [
            (base.clone(), true),
            (RetentionCandidate { identity: "recent".into(), leaver_closed_at: after, ..base.clone() }, false),
            (
                RetentionCandidate { identity: "exact".into(), leaver_closed_at: Some(cutoff.into()), ..base.clone() },
                false,
            ),
            (RetentionCandidate { identity: "open case".into(), leaver_closed_at: None, ..base.clone() }, false),
            (RetentionCandidate { identity: "enabled".into(), enabled: true, ..base.clone() }, false),
            (RetentionCandidate { identity: "busy".into(), unfinished: 1, ..base.clone() }, false),
            (RetentionCandidate { identity: "rehired".into(), status: Status::Active, ..base.clone() }, false),
            (RetentionCandidate { identity: "suspended".into(), status: Status::Suspended, ..base }, false),
        ];
        let all: Vec<RetentionCandidate> = cases.iter().map(|(c, _)| c.clone()).collect();
        let due: Vec<&str> = retention_due(&all, cutoff).iter().map(|c| c.identity.as_str()).collect();
        let expect: Vec<&str> = cases.iter().filter(|(_, d)| *d).map(|(c, _)| c.identity.as_str()).collect();
        assert_eq!(due, expect);
    }

    #[test]
    fn a_snapshot_supersedes_only_its_own_sources_held_batches() {
        let held = |approval, source: &str| HeldBatch { approval, import: approval * 10, source: source.into() };
        let all = [held(1, "hr"), held(2, "contractors"), held(3, "hr")];
        #[track_caller]
        fn check(source: &str, held: &[HeldBatch], expect: &[i64]) {
            let got: Vec<i64> = superseded_by_snapshot(source, held).iter().map(|h| h.approval).collect();
            assert_eq!(got, expect, "{source}");
        }
        check("hr", &all, &[1, 3]);
        check("contractors", &all, &[2]);
        check("webhook", &all, &[]);
        check("hr", &[], &[]);
    }
}
