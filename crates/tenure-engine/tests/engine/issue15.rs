//! Issue 15 in-process: a role with `approval` whose condition matches is asked for, never
//! granted by the match (imports and pushes alike, one request per identity and role, ended when
//! the condition stops matching); nobody releases a held batch that changes their own access or
//! that they submitted, whatever the case of their name; every refusal changes nothing.

use super::*;
use tenure_core::error::{Code, HasCode};
use tenure_core::{ImportOutcome, RequestState};
use tenure_engine::decisions::{self, Approved, Decider, Via};
use tenure_engine::ingest::{self, PushOptions};

/// The issue's privileged role: granted by a condition, approved by the manager.
const DBA: &str = r#"
[[role]]
id = "dba"
privileged = true
when = { title = "DBA" }
approval = "manager"
max_duration = "8h"
grant = ["warehouse:admin"]
"#;

/// `id login title manager`, an active Support employee.
fn person(spec: &str) -> String {
    let w: Vec<&str> = spec.split(' ').collect();
    let [id, login, title, manager] = &w[..] else { panic!("person `{spec}`") };
    let manager = if *manager == "-" { "" } else { manager };
    format!(
        "{id},N,L,{login}@example.com,{login},Support,{title},Berlin,CC1,{manager},employee,employee,,2020-01-01,,active"
    )
}

fn file(people: &[&str]) -> String {
    let mut rows: Vec<String> = std::iter::once("M1 boss Lead -").chain(people.iter().copied()).map(person).collect();
    rows.extend(crowd());
    csv(&rows)
}

/// `D1`..`Dn`, DBAs managed by `M1`, with logins `dba1`..`dban`.
fn dbas(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("D{i} dba{i} DBA M1")).collect()
}

fn world() -> World {
    let w = World::with(Setup { policy: format!("{}{DBA}", starter::POLICY), ..Setup::default() });
    w.import(&file(&[]));
    w.settle();
    w
}

fn requests_of(w: &World, identity: &str) -> Vec<tenure_store::RequestRecord> {
    w.store().requests(false).unwrap().into_iter().filter(|r| r.identity == identity).collect()
}

fn approve(w: &World, id: i64, by: &Decider) -> tenure_engine::Result<Approved> {
    decisions::approve(&w.app.engine().unwrap(), w.store().as_ref(), id, by)
}

fn reject(w: &World, id: i64, by: &Decider) -> tenure_engine::Result<()> {
    decisions::reject(&w.app.engine().unwrap(), id, by, "not now")
}

/// The audit chain's length, the approvals with their states, the requests, the operations and
/// the identities: what a refusal must leave alone.
fn state(w: &World) -> (u64, Vec<String>, usize, usize, BTreeMap<String, String>) {
    let s = w.store();
    let approvals = s.approvals(false).unwrap().iter().map(|a| format!("{} {}", a.id, a.state)).collect();
    (s.verify_audit().unwrap().records, approvals, s.requests(false).unwrap().len(), w.ops().len(), w.identities())
}

fn refused<T: std::fmt::Debug>(w: &World, says: &str, step: impl FnOnce() -> tenure_engine::Result<T>) {
    let before = state(w);
    let err = step().expect_err("refused");
    assert_eq!(err.code(), Code::SelfApproval, "{err}");
    assert!(err.to_string().contains(says), "`{err}` should say `{says}`");
    assert_eq!(state(w), before, "a refusal changes nothing");
}

fn grants_admin(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains("warehouse grant admin"))
}

#[test]
fn issue15_a_dba_joiner_is_asked_for_warehouse_admin_never_granted_it_by_the_match() {
    let w = world();
    let one = dbas(1);
    let (report, lines) = w.changes(|| w.import(&file(&[one[0].as_str()])));
    assert_eq!(report.outcome, ImportOutcome::Applied);
    assert!(!grants_admin(&lines), "the match grants nothing: {lines:#?}");
    let asked = requests_of(&w, "D1");
    assert_eq!(asked.len(), 1, "{asked:#?}");
    let r = &asked[0];
    assert_eq!((r.role.as_str(), r.state, r.duration_secs), ("dba", RequestState::Pending, Some(8 * 3600)));
    assert_eq!((r.requester.as_str(), r.via.as_str()), ("policy", "birthright"));
    assert_eq!(r.entitlements, ["warehouse:admin"]);
    assert_eq!(
        r.stages.iter().map(|s| format!("{} {}", s.rule, s.approver)).collect::<Vec<_>>(),
        ["manager M1"],
        "the role's stages"
    );
    let created = w.audit("request.created");
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].entry.actor, "source:hr", "opened by the import that matched");

    // The same file again, and a change that keeps the match, open no second request.
    assert_eq!(w.import(&file(&[one[0].as_str()])).outcome, ImportOutcome::Unchanged);
    let (report, lines) = w.changes(|| w.import(&file(&[one[0].as_str()]).replace("D1,N,L,", "D1,Nia,L,")));
    assert_eq!(report.events.len(), 1, "{report:?}");
    assert!(!grants_admin(&lines));
    assert_eq!(requests_of(&w, "D1").len(), 1, "one request per identity and role");

    // D1 cannot approve their own; the manager does, and only then is it granted.
    let approval = r.stages[0].approval_id.unwrap();
    let err = approve(&w, approval, &Decider::new("D1", Via::Token)).unwrap_err();
    assert_eq!(err.code(), Code::SelfApproval, "{err}");
    let (_, lines) = w.changes(|| approve(&w, approval, &Decider::new("M1", Via::Token)).unwrap());
    assert_eq!(
        lines,
        ["plan D1 warehouse create_account".to_string(), format!("plan D1 warehouse grant admin [request:{}]", r.id)]
    );
    w.settle();

    // Once the condition stops matching, the grant is revoked and the request ends.
    let (_, lines) = w.changes(|| w.import(&file(&["D1 dba1 Associate M1"])));
    assert!(lines.contains(&format!("plan D1 warehouse revoke admin [request:{}]", r.id)), "{lines:#?}");
    assert_eq!(requests_of(&w, "D1")[0].state, RequestState::Revoked);
    // Matching again asks again.
    w.import(&file(&[one[0].as_str()]));
    let again = requests_of(&w, "D1");
    assert_eq!(again.iter().filter(|r| r.state == RequestState::Pending).count(), 1, "{again:#?}");
}

#[test]
fn issue15_a_pending_birthright_request_is_cancelled_when_the_condition_stops_matching() {
    let w = world();
    w.import(&file(&["D2 dba2 DBA M1"]));
    let r = requests_of(&w, "D2").remove(0);
    let approval = r.stages[0].approval_id.unwrap();
    let (_, lines) = w.changes(|| w.import(&file(&["D2 dba2 Associate M1"])));
    assert!(!lines.iter().any(|l| l.contains("warehouse")), "{lines:#?}");
    assert_eq!(requests_of(&w, "D2")[0].state, RequestState::Cancelled);
    assert_eq!(w.store().approval(approval).unwrap().state, tenure_core::ApprovalState::Superseded);
    let err = approve(&w, approval, &Decider::new("M1", Via::Token)).unwrap_err();
    assert_ne!(err.code(), Code::SelfApproval, "{err}");
    assert!(w.ops().values().all(|o| o.entitlement.as_deref() != Some("admin")));
}

fn dba_record(w: &World, i: usize, id: &str, login: &str, title: &str) -> tenure_core::record::Record {
    use tenure_core::record::{self, Value};
    let email = format!("{login}@example.com");
    let fields = [
        ("employee_id", id),
        ("first_name", "N"),
        ("last_name", "L"),
        ("work_email", email.as_str()),
        ("login", login),
        ("dept", "Support"),
        ("title", title),
        ("manager", "M1"),
        ("employment_type", "employee"),
        ("kind", "employee"),
        ("start", "2020-01-01"),
        ("employment_status", "active"),
    ];
    record::from_columns(w.app.config().source("hr").unwrap(), i, fields.iter().map(|(k, v)| (*k, Value::Str(v))))
        .unwrap()
}

#[test]
fn issue15_a_pushed_dba_is_asked_for_not_granted() {
    let w = world();
    let opts = PushOptions { actor: "source:hr".into(), label: "webhook 1".into(), ..PushOptions::default() };
    let (report, lines) =
        w.changes(|| ingest::push(&w.app, "hr", &[dba_record(&w, 0, "P1", "pdba", "DBA")], &opts).unwrap());
    assert_eq!(report.outcome, ImportOutcome::Applied, "{report:?}");
    assert!(!grants_admin(&lines), "{lines:#?}");
    let asked = requests_of(&w, "P1");
    assert_eq!(asked.len(), 1);
    assert_eq!((asked[0].via.as_str(), asked[0].stages[0].approver.as_str()), ("birthright", "M1"));
    ingest::push(&w.app, "hr", &[dba_record(&w, 0, "P1", "pdba", "DBA")], &opts).unwrap();
    assert_eq!(requests_of(&w, "P1").len(), 1, "pushed again: still one");
}

/// Seven DBAs imported by `token:ops` are held (seven privileged requests past five); none of
/// them, under any case of their id or username, and not `ops`, may release the batch; the
/// leavers of a held batch may not discard it either. Someone else approves.
#[test]
fn issue15_nobody_releases_a_held_batch_that_benefits_them_or_that_they_submitted() {
    let w = world();
    let seven = dbas(7);
    let seven: Vec<&str> = seven.iter().map(String::as_str).collect();
    let opts = ImportOptions { actor: Some("token:ops".into()), ..ImportOptions::default() };
    let report = w.import_with("hr", &file(&seven), &opts).unwrap();
    assert_eq!(report.outcome, ImportOutcome::Held, "{report:?}");
    assert!(report.held_reason.as_deref().unwrap().contains("7 identities gaining privileged access"));
    let id = w.pending_approval();
    for (by, says) in [
        (Decider::new("D5", Via::Token), "identity `D5`"),
        (Decider::new("d5", Via::CliAs), "identity `D5`"),
        (Decider::new("dba5", Via::Token), "identity `D5`"),
        (Decider::new("DBA5", Via::CliAs), "identity `D5`"),
        (Decider::new("Ｄ５", Via::CliAs), "identity `D5`"),
        (Decider::new("ｄｂａ５", Via::Token), "identity `D5`"),
        (Decider::new("ｏｐｓ", Via::CliAs), "submitted what approval"),
        (Decider::new("ops", Via::Token), "submitted what approval"),
        (Decider::new("OPS", Via::CliAs), "submitted what approval"),
    ] {
        refused(&w, says, || approve(&w, id, &by));
    }
    refused(&w, "identity `D2`", || reject(&w, id, &Decider::new("dba2", Via::Token)));
    assert_eq!(w.store().approval(id).unwrap().summary["submitted_by"], serde_json::json!(["token:ops"]));

    let Approved::Batch(ids) = approve(&w, id, &Decider::new("M1", Via::Token)).unwrap() else { panic!() };
    assert_eq!(ids.events, 7);
    assert!(w.ops().values().all(|o| o.entitlement.as_deref() != Some("admin")), "asked, not granted");
    assert_eq!(w.store().requests(true).unwrap().len(), 7);
}

/// The submitter may withdraw what they sent; a held remediation of someone's own access is not
/// theirs to release either (checked in `requests`'s held review world); pushes carry their
/// pushers into the batch they join.
#[test]
fn issue15_pushes_joining_a_held_batch_carry_their_pushers() {
    let w = world();
    let push = |actor: &str, recs: Vec<tenure_core::record::Record>| {
        let opts = PushOptions { actor: actor.into(), label: format!("push by {actor}"), ..PushOptions::default() };
        ingest::push(&w.app, "hr", &recs, &opts).unwrap()
    };
    let first: Vec<_> = (1..=6).map(|i| dba_record(&w, i - 1, &format!("P{i}"), &format!("p{i}"), "DBA")).collect();
    assert_eq!(push("token:feed-a", first).outcome, ImportOutcome::Held);
    let second = push("token:feed-b", vec![dba_record(&w, 0, "Q1", "q1", "Associate")]);
    assert_eq!(second.outcome, ImportOutcome::Held);
    let id = w.pending_approval();
    assert_eq!(
        w.store().approval(id).unwrap().summary["submitted_by"],
        serde_json::json!(["token:feed-b", "token:feed-a"])
    );
    for name in ["feed-a", "feed-b", "FEED-A"] {
        refused(&w, "submitted what approval", || approve(&w, id, &Decider::new(name, Via::Token)));
    }
    // A submitter may withdraw it.
    reject(&w, id, &Decider::new("feed-a", Via::Token)).unwrap();
    assert!(w.store().approvals(true).unwrap().is_empty());
}

fn close_exception(w: &World, id: i64, by: &str, closing: tenure_store::Closing) -> tenure_engine::Result<()> {
    let actor = format!("user:{by}");
    let d = decisions::ExceptionDecision { id, closing, by, actor: &actor, reason: "looked at it", due: None };
    decisions::close_exception(w.store().as_ref(), &w.app.config().schema, &d).map(|_| ())
}

/// An exception about someone's access is not theirs to close: resolving their review's
/// `manual_override` would grant the revoked access back, accepting their `failed_revocation`
/// would close their leaver case with the access kept. Refused under any case of their id or
/// username; someone else closes it.
#[test]
fn issue15_nobody_closes_an_exception_about_their_own_access() {
    use tenure_core::ExceptionKind;
    use tenure_store::{Closing, NewException};
    let w = world();
    w.import(&file(&["D1 dba1 Associate M1"]));
    w.settle();
    let open = |kind, subject: &str| {
        let new = NewException {
            kind,
            subject,
            case_id: None,
            identity: Some("D1"),
            target: Some("warehouse"),
            owner: "M1",
            reason: "a deviation",
            due_at: None,
        };
        w.store().open_exception(&new, "user:M1").unwrap().id
    };
    let review = open(ExceptionKind::ManualOverride, "review:1");
    let failed = open(ExceptionKind::FailedRevocation, "operation:1");
    for by in ["D1", "d1", "dba1", "DBA1", "ｄｂａ１", "Ｄ１"] {
        refused(&w, "identity `D1`", || close_exception(&w, review, by, Closing::Resolve));
        refused(&w, "identity `D1`", || close_exception(&w, failed, by, Closing::Accept));
    }
    close_exception(&w, review, "M1", Closing::Resolve).unwrap();
    close_exception(&w, failed, "boss", Closing::Accept).unwrap();
}

/// A correlation case is not decided by a person it is about: nobody links an account to
/// themselves (`carol`, `C1` or `CAROL`), and no candidate calls the account an orphan, which
/// refuses their own claim. Someone else decides it.
#[test]
fn issue15_nobody_decides_a_correlation_case_about_themselves() {
    use super::correlation::{ACCOUNTS, directory, first_import};
    use tenure_engine::correlation::{self, Choice};
    let w = World::empty(&Setup::default());
    first_import(&w, &directory(ACCOUNTS));
    let open = correlation::cases(w.store().as_ref(), true).unwrap();
    let case = open.iter().find(|c| c.account == "x2").unwrap().id;
    assert!(open.iter().find(|c| c.id == case).unwrap().candidates.iter().any(|c| c.identity == "C1"));
    let engine = w.app.engine().unwrap();
    let decide = |choice: Choice, by: &str| {
        correlation::decide(&engine, case, &choice, Some("mine"), &Decider::new(by, Via::CliAs)).map(|_| ())
    };
    for by in ["C1", "c1", "carol", "CAROL", "ｃａｒｏｌ"] {
        refused(&w, "identity `C1`", || decide(Choice::To("C1".into()), by));
        refused(&w, "identity `C1`", || decide(Choice::Orphan, by));
    }
    assert_eq!(correlation::cases(w.store().as_ref(), true).unwrap(), open, "refusals change nothing");
    decide(Choice::To("C1".into()), "alice").unwrap();
}

/// A campaign's named reviewer is found as every other name is: `owner:ＢＯＳＳ` (fullwidth,
/// another case) is `M1`, whose username is `boss`; and `M1` reviews nobody's access but
/// others', whatever the case of the name.
#[test]
fn issue15_a_campaign_owner_is_named_as_any_other_name() {
    let w = world();
    let o = tenure_engine::campaigns::CreateOptions {
        name: "directory q4".into(),
        scope: "target:directory".into(),
        reviewer: "owner:ＢＯＳＳ".into(),
        due: "2099-12-31".into(),
        escalate_after: None,
        on_timeout: tenure_core::OnTimeout::Keep,
        by: "ciso".into(),
        actor: "user:ciso".into(),
    };
    let c = tenure_engine::campaigns::create(&w.app, &o).unwrap();
    let items = tenure_engine::campaigns::show(&w.app, c.id).unwrap().1;
    assert!(!items.is_empty());
    for i in &items {
        let want = if i.identity == "M1" { "ciso" } else { "M1" };
        assert_eq!(i.reviewer, want, "{i:?}");
    }
}
