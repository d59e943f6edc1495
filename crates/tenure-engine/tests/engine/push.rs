//! Pushes: records are upserts of the identities they name, checked like rows, guarded over
//! the window, and joined to a held batch while one waits.

use crate::{Setup, World};
use tenure_core::ImportOutcome;
use tenure_core::record::{self, Record, Value};
use tenure_engine::import::ImportReport;
use tenure_engine::ingest::{PushOptions, push};
use tenure_sample::starter::Guard;

/// Records of `hr`, each written `column=value,column=value` (`deleted` alone marks a deletion).
fn records(w: &World, specs: &[&str]) -> Vec<Record> {
    let src = w.app.config().source("hr").unwrap();
    specs
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let fields = spec.split(',').map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k, Value::Str(v)),
                None => (kv, Value::Bool(true)),
            });
            record::from_columns(src, i, fields).unwrap()
        })
        .collect()
}

fn push_lines(w: &World, specs: &[&str]) -> (ImportReport, Vec<String>) {
    let recs = records(w, specs);
    let opts = PushOptions { actor: "source:hr".into(), label: "webhook test".into(), ..PushOptions::default() };
    let (report, ops) = w.changes(|| push(&w.app, "hr", &recs, &opts).unwrap());
    let mut lines = vec![match &report.held_reason {
        Some(why) => format!("{}: {why}", report.outcome),
        None => report.outcome.to_string(),
    }];
    for r in &report.rejected {
        lines.push(format!("rejected record {} field {}: {}", r.line, r.field.as_deref().unwrap_or("-"), r.reason));
    }
    lines.extend(report.events.iter().map(|e| format!("{} {}", e.kind, e.identity)));
    lines.extend(ops.into_iter().filter(|l| !l.starts_with("plan") || l.contains(" E")));
    (report, lines)
}

const ADA: &str = "employee_id=E1,login=ada,work_email=ada@example.com,dept=Engineering,title=Engineer,employment_status=active,kind=employee";

#[test]
fn a_record_is_an_upsert_and_nobody_else_is_a_leaver_for_being_absent() {
    let w = World::new();
    let (report, lines) = push_lines(&w, &[ADA]);
    assert_eq!(report.outcome, ImportOutcome::Applied);
    assert_eq!(lines[1], "joiner E1");
    assert!(lines.iter().any(|l| l.starts_with("plan E1 directory create_account")), "{lines:#?}");
    assert_eq!(report.events.len(), 1, "the crowd is not in the push and is left alone: {lines:#?}");
    w.settle();
    // Only the status: the rest of ada's row stays, and she leaves with every grant revoked.
    let (_, lines) = push_lines(&w, &["employee_id=E1,employment_status=terminated"]);
    assert_eq!(lines[..2], ["applied".to_string(), "leaver E1".to_string()], "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("plan E1 directory disable")), "{lines:#?}");
    assert_eq!(
        w.app
            .store()
            .identity(&w.app.config().schema, "E1")
            .unwrap()
            .unwrap()
            .attr(&w.app.config().schema, "department"),
        Some("Engineering")
    );
    // A repeat changes nothing.
    let (report, _) = push_lines(&w, &["employee_id=E1,employment_status=terminated"]);
    assert_eq!(report.outcome, ImportOutcome::Unchanged);
}

#[test]
fn a_deletion_makes_a_leaver_and_an_unknown_one_changes_nothing() {
    let w = World::new();
    let (_, lines) = push_lines(&w, &["employee_id=C05,deleted", "employee_id=NOBODY,deleted"]);
    assert_eq!(lines[..2], ["applied".to_string(), "leaver C05".to_string()], "{lines:#?}");
    assert_eq!(w.status("C05"), tenure_core::Status::Terminated);
}

#[test]
fn a_refused_record_names_its_index_field_and_reason_and_the_others_apply() {
    let w = World::new();
    let (_, lines) = push_lines(
        &w,
        &[
            ADA,
            "employee_id=E2,login=c07,work_email=bo@example.com,dept=Sales,employment_status=active",
            "employee_id=E3,login=cy,work_email=cy@example.com,end=2026-02-30,employment_status=active",
            "employee_id=E4,login=ada,work_email=dee@example.com,dept=Sales,employment_status=active",
        ],
    );
    assert_eq!(
        lines[..4],
        [
            "applied".to_string(),
            "rejected record 1 field login: username `c07` belongs to identity `C07`".to_string(),
            "rejected record 2 field end: bad date `2026-02-30`: no such calendar date".to_string(),
            "rejected record 3 field login: username `ada` belongs to identity `E1`".to_string(),
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[4], "joiner E1");
    assert!(w.app.store().identity(&w.app.config().schema, "E2").unwrap().is_none(), "a refused record adds nobody");
    assert_eq!(w.audit("import.row_rejected").len(), 3);
}

#[test]
fn another_sources_identity_is_never_pushed_over() {
    let w = World::with(Setup { second_source: true, ..Setup::default() });
    let recs = records(&w, &["employee_id=C01,dept=Finance"]);
    let opts = PushOptions { actor: "source:contractors".into(), label: "webhook x".into(), ..PushOptions::default() };
    let before = w.identities();
    let report = push(&w.app, "contractors", &recs, &opts).unwrap();
    assert_eq!(report.outcome, ImportOutcome::Unchanged);
    assert_eq!(report.rejected[0].reason, "key `C01` belongs to source `hr`; `contractors` cannot change it");
    assert_eq!(w.identities(), before);
}

#[test]
fn single_leavers_pushed_one_by_one_are_held_once_the_window_adds_up_and_later_pushes_join() {
    let guard = Guard {
        max_leavers: 2,
        max_leaver_fraction: 1.0,
        max_access_losses: Some(100),
        max_access_loss_fraction: Some(1.0),
    };
    let w = World::with(Setup { guard, ..Setup::default() });
    for id in ["C01", "C02"] {
        let (report, _) = push_lines(&w, &[&format!("employee_id={id},employment_status=terminated")]);
        assert_eq!(report.outcome, ImportOutcome::Applied, "{id}");
    }
    let before = w.identities();
    let (report, lines) = push_lines(&w, &["employee_id=C03,employment_status=terminated"]);
    assert_eq!(lines[0], "held: 3 leavers exceed max_leavers = 2, counting the pushes of the last 1h", "{lines:#?}");
    assert_eq!(report.counts.operations, 0);
    // A later push, even a harmless one, joins the held batch; so does a newer record of an
    // identity already in it (the newer one wins).
    let (_, lines) = push_lines(&w, &["employee_id=C04,title=Lead", "employee_id=C03,title=Manager"]);
    assert!(lines[0].starts_with("held: an earlier push of `hr` is held for approval"), "{lines:#?}");
    assert_eq!(w.identities(), before, "nothing held is applied");
    let approval = w.pending_approval();
    let held = w.store().held_events(&w.app.config().schema, w.store().approval(approval).unwrap().subject).unwrap();
    let mut who: Vec<String> = held.iter().map(|h| format!("{} {}", h.record.kind, h.record.identity)).collect();
    who.sort();
    assert_eq!(who, ["leaver C03", "mover C04"]);
    let c03 = held.iter().find(|h| h.record.identity == "C03").unwrap();
    assert_eq!(c03.identity.attr(&w.app.config().schema, "title"), Some("Manager"));
    assert_eq!(c03.identity.status, tenure_core::Status::Terminated, "the newer record applied over the held one");
    tenure_engine::import::approve(&w.app.engine().unwrap(), approval, "alice").unwrap();
    assert_eq!(w.status("C03"), tenure_core::Status::Terminated);
    // An hour later the window is empty again.
    w.clock.advance(chrono::Duration::seconds(3601));
    let (report, _) = push_lines(&w, &["employee_id=C05,employment_status=terminated"]);
    assert_eq!(report.outcome, ImportOutcome::Applied);
}

#[test]
fn journaled_pushes_are_ingested_once_in_order_and_a_bad_body_is_refused_whole() {
    use tenure_engine::ingest::{drain_journal, records_from_json};
    use tenure_store::{JournalIn, JournalState};
    let w = World::new();
    let cfg = w.app.config();
    let src = cfg.source("hr").unwrap();
    let body = serde_json::json!({ "records": [
        { "employee_id": "E1", "login": "ada", "work_email": "ada@example.com", "dept": "Engineering", "employment_status": "active" },
        { "employee_id": 42, "login": "bo", "work_email": "bo@example.com", "dept": "Sales", "employment_status": "active" },
    ]});
    assert_eq!(records_from_json(src, &cfg.schema, &body).unwrap().len(), 2, "numbers are taken as written");
    for (bad, why) in [
        (serde_json::json!([1]), "record 0: the body must be a record (a JSON object) or {\"records\": [...]}"),
        (
            serde_json::json!({ "records": [{ "employee_id": "E1" }, { "dept": "x" }] }),
            "record 1 field `employee_id`: missing key",
        ),
        (
            serde_json::json!({ "employee_id": "E1", "start": "yesterday" }),
            "record 0 field `start`: bad date `yesterday`: expected YYYY-MM-DD",
        ),
        (
            serde_json::json!({ "employee_id": "E1", "dept": ["a"] }),
            "record 0 field `dept`: must be a string, a number or null",
        ),
    ] {
        let got = records_from_json(src, &cfg.schema, &bad).map(|_| ()).unwrap_err().to_string();
        assert!(got.starts_with(why), "{bad}: {got}");
    }
    let entry = |id: &str, body: serde_json::Value| JournalIn {
        source: "hr".into(),
        delivery: id.into(),
        actor: "source:hr".into(),
        records: body,
        response: serde_json::json!({}),
    };
    let store = w.app.store();
    store.journal_append(&[entry("msg_1", body.clone())]).unwrap();
    store
        .journal_append(&[
            entry("msg_2", serde_json::json!({ "employee_id": "E1", "employment_status": "terminated" })),
            entry("msg_1", serde_json::json!({ "employee_id": "E9" })),
        ])
        .unwrap();
    let drained = drain_journal(&w.app, 100).unwrap();
    assert_eq!((drained.entries, drained.records, drained.reports.len()), (2, 3, 1), "the repeat was never journaled");
    let report = &drained.reports[0];
    let mut events: Vec<String> = report.events.iter().map(|e| format!("{} {}", e.kind, e.identity)).collect();
    events.sort();
    // E1 joined and left inside one batch: recorded as a terminated identity, nothing to grant.
    assert_eq!(events, ["joiner 42", "update E1"], "{report:?}");
    assert_eq!(w.status("E1"), tenure_core::Status::Terminated);
    assert!(store.journal_pending(10).unwrap().is_empty());
    let e = store.journal_entry(1).unwrap().unwrap();
    assert_eq!((e.state, e.import_id), (JournalState::Ingested, report.import_id));
    assert_eq!(drain_journal(&w.app, 100).unwrap().entries, 0, "nothing is ingested twice");
}
