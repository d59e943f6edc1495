//! The reports over a real (in-memory) store on a fake clock, so verification order and
//! time-to-revoke are the test's to choose.

use super::*;
use std::sync::Arc;
use std::time::Duration;
use tenure_core::audit::AuditEntry;
use tenure_core::clock::FakeClock;
use tenure_core::plan::AccountView;
use tenure_core::{Attrs, Identity, Kind, OpKind, Status};
use tenure_store::{Backend, Batch, BatchState, EventIn, Finished, OpIn, SqliteStore};

const CONFIG: &str = r#"
[[source]]
name = "hr"
kind = "csv"
key = "employee_id"

[[target]]
name = "chat"
kind = "scim"
url = "http://127.0.0.1:9/scim/v2"
token_env = "CHAT_SCIM_TOKEN"

[[target]]
name = "payroll"
kind = "manual"
owner = "payroll-admins"
entitlements = ["record"]
"#;

struct World {
    config: Config,
    clock: Arc<FakeClock>,
    store: Arc<dyn Backend>,
}

impl World {
    fn new() -> Self {
        let config = tenure_core::config::parse("tenure.toml", CONFIG).unwrap();
        let clock = Arc::new(FakeClock::at(chrono::DateTime::UNIX_EPOCH));
        let store: Arc<dyn Backend> = Arc::new(SqliteStore::memory(clock.clone()).unwrap());
        Self { config, clock, store }
    }

    /// Commits one event of `E1` with `ops` (target, kind, entitlement) and the holdings the
    /// plan commits to.
    fn event(&self, kind: EventKind, status: Status, ops: &[(&str, OpKind, Option<&str>)], holdings: Holdings) {
        let schema = &self.config.schema;
        let identity = Identity::new("E1", Kind::Employee, status, Attrs::new(schema));
        let ops = ops
            .iter()
            .map(|(target, kind, ent)| OpIn {
                target: (*target).into(),
                kind: *kind,
                entitlement: ent.map(Into::into),
                rules: vec![],
                account: Some("ada".into()),
            })
            .collect();
        let event = EventIn {
            kind,
            identity,
            changes: vec![],
            significant: false,
            note: None,
            existing_id: None,
            ops,
            holdings: Some(holdings),
            audit: vec![],
            cancel: vec![],
            requests: Default::default(),
        };
        let base_import = self.store.last_import("hr").unwrap();
        let batch = Batch {
            actor: "source:hr".into(),
            source: "hr".into(),
            file: "hr.csv".into(),
            sha256: String::new(),
            summary: serde_json::json!({}),
            state: BatchState::Applied,
            events: vec![event],
            audit: vec![],
            base_import,
            supersede: vec![],
            ingests: Default::default(),
            correlation: Vec::new(),
        };
        self.store.commit_batch(schema, &batch).unwrap();
    }

    /// Claims every pending operation, then records `outcomes` (operation id, state) in the
    /// given order, the clock stepping `step_ms` before each.
    fn finish(&self, outcomes: &[(i64, OpState)], step_ms: i64) {
        self.store.claim("test", Duration::from_secs(60), 100).unwrap();
        for (op, state) in outcomes {
            self.clock.advance(chrono::Duration::milliseconds(step_ms));
            let f = Finished {
                op: *op,
                state: *state,
                error: None,
                next_attempt_at: None,
                note: None,
                audit: AuditEntry::new("executor", "apply", state.as_str()).identity("E1"),
            };
            assert!(self.store.finish(&f, "test").unwrap(), "op {op} recorded");
        }
    }
}

fn account(enabled: bool, grants: &[&str]) -> AccountView {
    AccountView { exists: true, enabled, grants: grants.iter().map(|g| g.to_string()).collect(), name: None }
}

#[test]
fn percentiles_are_nearest_rank() {
    let check =
        |values: &[i64], p: f64, expect: Option<i64>| assert_eq!(percentile(values, p), expect, "{values:?} p{p}");
    check(&[], 0.5, None);
    check(&[7], 0.5, Some(7));
    check(&[7], 0.99, Some(7));
    check(&[1, 2], 0.5, Some(2));
    check(&[1, 2, 3], 0.5, Some(2));
    check(&[1, 2, 3, 4], 0.5, Some(3));
    check(&(1..=100).collect::<Vec<_>>(), 0.99, Some(99));
    check(&(1..=1000).collect::<Vec<_>>(), 0.99, Some(990));
    check(&[1, 2, 3], 1.0, Some(3));
}

#[test]
fn coverage_counts_leaver_operations_per_class_and_times_closed_cases() {
    let w = World::new();
    let joined =
        Holdings::from([("chat".to_string(), account(true, &["staff"])), ("payroll".into(), account(true, &[]))]);
    w.event(
        EventKind::Joiner,
        Status::Active,
        &[
            ("chat", OpKind::CreateAccount, None),
            ("chat", OpKind::Grant, Some("staff")),
            ("payroll", OpKind::CreateAccount, None),
        ],
        joined,
    );
    w.finish(&[(1, OpState::Verified), (2, OpState::Verified), (3, OpState::Verified)], 5);
    let none = coverage(&w.config, w.store.as_ref()).unwrap();
    assert_eq!((none.leaver_cases, none.open_leaver_cases, none.classes.len()), (0, 0, 0), "joiners are not counted");
    assert_eq!(none.time_to_revoke_ms, proto::RevokeTimes { closed: 0, max: None, p50: None, p99: None });

    let left = Holdings::from([("chat".to_string(), account(false, &[])), ("payroll".into(), account(false, &[]))]);
    w.event(
        EventKind::Leaver,
        Status::Terminated,
        &[("chat", OpKind::Revoke, Some("staff")), ("chat", OpKind::Disable, None), ("payroll", OpKind::Disable, None)],
        left,
    );
    // The SCIM revocations are verified; the payroll ticket's operation failed.
    w.finish(&[(4, OpState::Verified), (5, OpState::Verified), (6, OpState::Failed)], 40);
    let open = coverage(&w.config, w.store.as_ref()).unwrap();
    assert_eq!((open.leaver_cases, open.open_leaver_cases), (1, 1));
    assert!(open.needs_action());
    let rows: Vec<(&str, i64, i64, i64, i64, f64)> = open
        .classes
        .iter()
        .map(|c| (c.class.as_str(), c.operations, c.verified, c.failed, c.open, c.coverage))
        .collect();
    assert_eq!(rows, [("manual", 1, 0, 1, 0, 0.0), ("scim", 2, 2, 0, 0, 1.0)]);
    assert_eq!(open.time_to_revoke_ms.closed, 0, "an open case has no time-to-revoke");
    let case = views::cases(w.store.as_ref(), true).unwrap().into_iter().find(|c| c.kind == EventKind::Leaver).unwrap();
    assert_eq!(automated_ms(&w.config, w.store.as_ref(), &case).unwrap(), Some(80), "the manual target is left out");
}

#[test]
fn identity_detail_folds_verified_operations_in_the_order_they_were_read_back() {
    let w = World::new();
    assert_eq!(identity_detail(&w.config, w.store.as_ref(), "E1").unwrap(), None);
    w.event(
        EventKind::Joiner,
        Status::Active,
        &[("chat", OpKind::CreateAccount, None)],
        Holdings::from([("chat".into(), account(true, &[]))]),
    );
    w.event(
        EventKind::Suspend,
        Status::Suspended,
        &[("chat", OpKind::Disable, None)],
        Holdings::from([("chat".into(), account(false, &[]))]),
    );
    w.event(
        EventKind::Resume,
        Status::Active,
        &[("chat", OpKind::Enable, None), ("payroll", OpKind::CreateAccount, None)],
        Holdings::from([("chat".into(), account(true, &[])), ("payroll".into(), account(true, &[]))]),
    );
    // Read back out of plan order: the create, then the enable, and the disable last.
    w.finish(&[(1, OpState::Verified), (3, OpState::Verified), (2, OpState::Verified)], 10);
    let d = identity_detail(&w.config, w.store.as_ref(), "E1").unwrap().unwrap();
    assert_eq!((d.id.as_str(), d.kind, d.status), ("E1", Kind::Employee, Status::Active));
    let chat = &d.accounts["chat"];
    assert_eq!(
        chat.verified,
        proto::AccountView { enabled: false, exists: true, grants: vec![] },
        "the disable was read back last"
    );
    assert_eq!(chat.planned, proto::AccountView { enabled: true, exists: true, grants: vec![] });
    assert_eq!(chat.open_operations, 0);
    let payroll = &d.accounts["payroll"];
    assert_eq!(payroll.verified, proto::AccountView::default(), "not created yet");
    assert_eq!(payroll.open_operations, 1);
    assert_eq!(d.operations.iter().map(|o| o.id).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(
        d.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Joiner, EventKind::Suspend, EventKind::Resume]
    );
    assert!(d.timeline.windows(2).all(|p| p[0].seq < p[1].seq), "the timeline is in chain order");
    assert!(d.timeline.iter().all(|r| r.identity.as_deref() == Some("E1")));
}

#[test]
fn a_closed_leaver_case_gives_its_time_to_revoke() {
    let w = World::new();
    w.event(
        EventKind::Joiner,
        Status::Active,
        &[("chat", OpKind::CreateAccount, None)],
        Holdings::from([("chat".into(), account(true, &[]))]),
    );
    w.finish(&[(1, OpState::Verified)], 5);
    w.event(
        EventKind::Leaver,
        Status::Terminated,
        &[("chat", OpKind::Disable, None)],
        Holdings::from([("chat".into(), account(false, &[]))]),
    );
    w.finish(&[(2, OpState::Verified)], 30);
    let c = coverage(&w.config, w.store.as_ref()).unwrap();
    assert_eq!((c.leaver_cases, c.open_leaver_cases), (1, 0));
    assert!(!c.needs_action());
    assert_eq!(c.time_to_revoke_ms, proto::RevokeTimes { closed: 1, max: Some(30), p50: Some(30), p99: Some(30) });
    let case =
        views::cases(w.store.as_ref(), false).unwrap().into_iter().find(|c| c.kind == EventKind::Leaver).unwrap();
    assert_eq!(case.revoke_ms, Some(30));
}
