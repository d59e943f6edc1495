//! Access requests in-process on a fake clock: a request is approved by the resolved manager,
//! planned as a grant with the request id as its rule, kept by later imports, ended at its
//! expiry by the `grant_expiry` job; refusals change nothing; SoD block, flag and record; a
//! leaver's requests end with them.

use super::*;
use tenure_core::error::{Code, HasCode};
use tenure_core::{ExceptionKind, RequestState};
use tenure_engine::decisions::{self, Approved, Decider, Via};
use tenure_engine::executor::Connectors;
use tenure_engine::requests::{self, Ask};
use tenure_engine::schedule::{self, Job, PassOptions};

const EXTRA: &str = r#"
[[role]]
id = "payment-approver"
approval = "manager"
grant = ["payroll:approve-payment"]

[[role]]
id = "warehouse-finance"
requestable = true
approval = ["manager", "owner:boss"]
max_duration = "1h"
grant = ["warehouse:finance"]

[[sod]]
id = "admin-and-finance"
conflict = ["warehouse:admin", "warehouse:finance"]
action = "flag"
owner = "M0"

[[sod]]
id = "admin-and-analyst"
conflict = ["warehouse:admin", "warehouse:analyst"]
action = "block"
mode = "record"
"#;

/// `id login dept title manager status`, as a snapshot row.
fn person(spec: &str) -> String {
    let w: Vec<&str> = spec.split(' ').collect();
    let [id, login, dept, title, manager, status] = &w[..] else { panic!("person `{spec}`") };
    let manager = if *manager == "-" { "" } else { manager };
    format!(
        "{id},N,L,{login}@example.com,{login},{dept},{title},Berlin,CC1,{manager},employee,employee,,2020-01-01,,{status}"
    )
}

const PEOPLE: &[&str] = &[
    "M0 boss Support Director - active",
    "M1 mgr Support Lead M0 active",
    "E1 eve Support Associate M1 active",
    "F1 fin Finance Analyst M1 active",
    "X1 away Support Lead M0 leave",
    "E2 ed Support Associate X1 active",
    "D1 dev Engineering Engineer M1 active",
];

fn people(changes: &[(&str, &str)]) -> String {
    let mut rows: Vec<String> = PEOPLE
        .iter()
        .map(|p| changes.iter().find(|(id, _)| p.starts_with(&format!("{id} "))).map_or(*p, |(_, to)| *to))
        .map(person)
        .collect();
    rows.extend(crowd());
    csv(&rows)
}

fn world() -> World {
    let w = World::with(Setup { policy: format!("{}{EXTRA}", starter::POLICY), ..Setup::default() });
    w.import(&people(&[]));
    w.settle();
    w
}

fn cli(name: &str) -> Decider {
    Decider::new(name, Via::CliAs)
}

fn ask<'a>(role: &'a str, identity: &'a str, duration: Option<&'a str>) -> Ask<'a> {
    Ask { role, identity, reason: "quarter close", duration }
}

fn request(
    w: &World,
    role: &str,
    identity: &str,
    duration: Option<&str>,
    by: &str,
) -> tenure_engine::Result<tenure_proto::Request> {
    requests::create(&w.app.engine().unwrap(), &ask(role, identity, duration), &cli(by))
}

fn approve(w: &World, approval: i64, by: &Decider) -> tenure_engine::Result<Approved> {
    decisions::approve(&w.app.engine().unwrap(), w.store().as_ref(), approval, by)
}

/// What a refusal must leave alone: the audit chain's length, the approvals, the requests, the
/// operations, the exceptions.
fn state(w: &World) -> (u64, usize, Vec<String>, usize, usize) {
    let s = w.store();
    let reqs = requests::list(&w.app.engine().unwrap(), false)
        .unwrap()
        .iter()
        .map(|r| {
            format!("{} {} {} {:?}", r.id, r.state, r.identity, r.stages.iter().map(|s| s.state).collect::<Vec<_>>())
        })
        .collect();
    (
        s.verify_audit().unwrap().records,
        s.approvals(false).unwrap().len(),
        reqs,
        w.ops().len(),
        s.exceptions(false).unwrap().len(),
    )
}

/// `step` fails with `code`, its message contains `says`, and nothing changed.
fn refused<T: std::fmt::Debug>(w: &World, code: Code, says: &str, step: impl FnOnce() -> tenure_engine::Result<T>) {
    let before = state(w);
    let err = step().expect_err("refused");
    assert_eq!(err.code(), code, "{err}");
    assert!(err.to_string().contains(says), "`{err}` should say `{says}`");
    assert_eq!(state(w), before, "a refusal changes nothing");
}

fn stage_approval(r: &tenure_proto::Request) -> i64 {
    r.stages.iter().find(|s| s.state == tenure_core::StageState::Pending).and_then(|s| s.approval_id).unwrap()
}

fn pass(w: &World, job: Job) -> String {
    let opts = PassOptions { only: Some(job), jobs: Job::ALL, owner: "S".into(), lease: Duration::from_secs(60) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let run = rt.block_on(schedule::run_pass(&w.app, &Arc::new(Connectors::default()), &opts)).unwrap();
    run.jobs.iter().map(|j| format!("{} {}: {}", j.job, j.acted, j.detail)).collect::<Vec<_>>().join("; ")
}

#[test]
fn a_request_approved_by_the_manager_is_granted_kept_and_revoked_at_its_expiry() {
    let w = world();
    let r = request(&w, "warehouse-admin", "E1", Some("2s"), "E1").unwrap();
    assert_eq!((r.state, r.duration_secs), (RequestState::Pending, Some(2)));
    let stages: Vec<(&str, &str)> = r.stages.iter().map(|s| (s.rule.as_str(), s.approver.as_str())).collect();
    assert_eq!(stages, [("manager", "M1")]);
    let id = stage_approval(&r);
    assert_eq!(w.store().approval(id).unwrap().kind, tenure_core::ApprovalKind::Request, "in the approvals list");

    refused(&w, Code::SelfApproval, "cannot approve a request for themselves", || approve(&w, id, &cli("E1")));
    refused(&w, Code::SelfApproval, "cannot approve a request for themselves", || approve(&w, id, &cli("eve")));
    refused(&w, Code::NotApprover, "waits for `M1`", || approve(&w, id, &cli("M0")));
    refused(&w, Code::NotApprover, "waits for `M1`", || approve(&w, id, &Decider::new("boss", Via::Token)));

    // The manager approves under their username, through a token: the grant is planned with the
    // request as its rule.
    let (approved, ops) = w.changes(|| approve(&w, id, &Decider::new("mgr", Via::Token)).unwrap());
    let Approved::Request(granted) = approved else { panic!("{approved:?}") };
    assert_eq!(granted.state, RequestState::Granted);
    assert_eq!(granted.stages[0].via.as_deref(), Some("token:mgr"));
    // Support staff have no warehouse account yet: it is created for the grant.
    assert_eq!(
        ops,
        ["plan E1 warehouse create_account".to_string(), format!("plan E1 warehouse grant admin [request:{}]", r.id)]
    );
    let approved_by = w.audit("approval.approved");
    let last = approved_by.last().unwrap();
    assert_eq!((last.entry.actor.as_str(), last.entry.approver.as_deref()), ("token:mgr", Some("mgr")));
    assert!(last.entry.reason.as_deref().unwrap().contains("via token:mgr"), "{:?}", last.entry.reason);
    w.settle();

    // Later imports keep it: the same snapshot, and a mover whose plan is made again.
    assert_eq!(w.import_lines(&people(&[])), ["unchanged"]);
    let moved = w.import_lines(&people(&[("E1", "E1 eve Support Specialist M1 active")]));
    // (The new title is pushed to the chat app, which maps `title`; nothing is revoked.)
    assert_eq!(moved, ["applied", "mover E1", "plan E1 chat update_attributes"], "a mover keeps the requested grant");
    assert_eq!(pass(&w, Job::GrantExpiry), "grant_expiry 0: no time-bound grant has expired");

    // Past the expiry the job ends it and plans the revocation, with the request as its reason.
    w.clock.advance(chrono::Duration::seconds(2));
    let (job, ops) = w.changes(|| pass(&w, Job::GrantExpiry));
    assert_eq!(job, "grant_expiry 1: 1 access request(s) expired; their revocation is planned");
    // Nothing else is desired in the warehouse: the account is disabled too.
    let want = [
        "plan E1 warehouse disable".to_string(),
        format!("plan E1 warehouse revoke admin [request:{}]", r.id),
        "plan E1 warehouse revoke_sessions".to_string(),
    ];
    assert_eq!(ops, want);
    let ended = w.store().request(r.id).unwrap();
    assert_eq!((ended.state, ended.ended_by.as_deref()), (RequestState::Expired, Some("schedule:grant_expiry")));
    w.settle();
    assert_eq!(pass(&w, Job::GrantExpiry), "grant_expiry 0: no time-bound grant has expired", "once");
    assert_eq!(w.import_lines(&people(&[("E1", "E1 eve Support Specialist M1 active")])), ["unchanged"]);

    // The audit trail tells it in order, each with the request id.
    let mut story = Vec::new();
    w.store()
        .scan_audit(&AuditFilter { identity: Some("E1".into()), since: None }, &mut |rec| {
            let a = rec.entry.action.as_str();
            if a.starts_with("request.") || a == "approval.approved" || a == "apply.grant" || a == "apply.revoke" {
                story.push(a.to_string());
            }
            true
        })
        .unwrap();
    let want = [
        "apply.grant", // the birthright, settled before the request
        "request.created",
        "request.stage_opened",
        "approval.approved",
        "request.granted",
        "apply.grant",
        "request.expired",
        "apply.revoke",
    ];
    let from = story.iter().position(|a| a == "request.created").unwrap();
    assert_eq!(story[from..], want[1..], "{story:?}");
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let w = world();
    refused(&w, Code::RequestRefused, "longer than role `warehouse-admin` allows", || {
        request(&w, "warehouse-admin", "E1", Some("9h"), "E1")
    });
    refused(&w, Code::RequestRefused, "`staff` is not requestable", || request(&w, "staff", "E1", None, "E1"));
    refused(&w, Code::NotFound, "unknown role `nope`", || request(&w, "nope", "E1", None, "E1"));
    refused(&w, Code::NotFound, "unknown identity `Z9`", || request(&w, "warehouse-admin", "Z9", None, "E1"));
    refused(&w, Code::InvalidInput, "not a duration", || request(&w, "warehouse-admin", "E1", Some("soon"), "E1"));
    // F1 (Finance) holds `payroll:create-payment`; `payments` blocks the approving side.
    refused(&w, Code::SodConflict, "sod rule `payments` blocks", || request(&w, "payment-approver", "F1", None, "F1"));
    // The manager may not ask and approve: the chain goes up past them.
    let r = request(&w, "warehouse-admin", "E1", None, "M1").unwrap();
    assert_eq!(r.stages[0].approver, "M0", "the requester is never their own approver");
    assert_eq!(r.duration_secs, Some(8 * 3600), "max_duration is the default");
    refused(&w, Code::Conflict, "already pending", || request(&w, "warehouse-admin", "E1", None, "E1"));
    refused(&w, Code::SelfApproval, "asked for this request", || approve(&w, stage_approval(&r), &cli("mgr")));
    // A terminated identity gets nothing.
    w.import(&people(&[("D1", "D1 dev Engineering Engineer M1 terminated")]));
    refused(&w, Code::RequestRefused, "is terminated", || request(&w, "warehouse-admin", "D1", None, "M1"));
}

#[test]
fn an_inactive_manager_is_passed_over_and_stages_run_in_order() {
    let w = world();
    // E2's manager is on leave: their manager approves.
    let r = request(&w, "warehouse-finance", "E2", None, "E2").unwrap();
    let stages: Vec<(&str, &str)> = r.stages.iter().map(|s| (s.rule.as_str(), s.approver.as_str())).collect();
    assert_eq!(stages, [("manager", "M0"), ("owner:boss", "M0")]);
    assert_eq!(r.duration_secs, Some(3600));
    let Approved::Request(after_first) = approve(&w, stage_approval(&r), &cli("M0")).unwrap() else { panic!() };
    assert_eq!(after_first.state, RequestState::Pending, "the second stage waits");
    assert!(w.ops().values().all(|o| o.identity != "E2" || o.entitlement.as_deref() != Some("finance")));
    let (_, ops) = w.changes(|| approve(&w, stage_approval(&after_first), &cli("boss")).unwrap());
    assert_eq!(
        ops,
        ["plan E2 warehouse create_account".to_string(), format!("plan E2 warehouse grant finance [request:{}]", r.id)]
    );
}

#[test]
fn sod_flag_needs_an_extra_stage_and_records_an_accepted_risk_record_only_records() {
    let w = world();
    // F1 holds `warehouse:finance` by birthright: `admin-and-finance` flags the admin role.
    let r = request(&w, "warehouse-admin", "F1", Some("2s"), "F1").unwrap();
    let stages: Vec<(&str, &str)> = r.stages.iter().map(|s| (s.rule.as_str(), s.approver.as_str())).collect();
    assert_eq!(stages, [("manager", "M1"), ("sod:admin-and-finance", "M0")]);
    assert_eq!(w.audit("sod.flagged").len(), 1);
    let Approved::Request(next) = approve(&w, stage_approval(&r), &cli("M1")).unwrap() else { panic!() };
    assert!(w.store().exceptions(true).unwrap().is_empty(), "no risk accepted before the last stage");
    approve(&w, stage_approval(&next), &cli("M0")).unwrap();
    let risks: Vec<_> =
        w.store().exceptions(true).unwrap().into_iter().filter(|x| x.kind == ExceptionKind::AcceptedSod).collect();
    assert_eq!(risks.len(), 1, "{risks:?}");
    let expires = w.store().request(r.id).unwrap().expires_at.unwrap();
    assert_eq!((risks[0].owner.as_str(), risks[0].identity.as_deref()), ("M0", Some("F1")));
    assert!(risks[0].reason.contains(&format!("accepted until {expires}")), "{}", risks[0].reason);
    assert_eq!(risks[0].due_at.as_deref(), Some(expires.as_str()), "due at the request's expiry");
    // It ends with the request.
    w.settle();
    w.clock.advance(chrono::Duration::seconds(2));
    pass(&w, Job::GrantExpiry);
    assert!(w.store().exceptions(true).unwrap().iter().all(|x| x.kind != ExceptionKind::AcceptedSod));

    // D1 (Engineering) holds `warehouse:analyst`: `admin-and-analyst` blocks, but only records.
    let r = request(&w, "warehouse-admin", "D1", None, "D1").unwrap();
    assert_eq!(r.stages.len(), 1, "a recorded rule adds no stage");
    let recorded = w.audit("sod.recorded");
    assert_eq!(recorded.len(), 1);
    assert!(recorded[0].entry.reason.as_deref().unwrap().contains("mode = record"));
    let (_, ops) = w.changes(|| approve(&w, stage_approval(&r), &cli("M1")).unwrap());
    assert_eq!(ops, [format!("plan D1 warehouse grant admin [request:{}]", r.id)], "nothing refused");
    // Recorded again at approval, and by the grant's plan (once per conflicting entitlement),
    // as every later plan of D1 will while the rule only records.
    assert_eq!(w.audit("sod.recorded").len(), 4, "recorded again at approval and in the plan");
}

#[test]
fn a_leavers_requests_end_with_them_and_early_revocation_plans_the_revoke() {
    let w = world();
    let granted = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    approve(&w, stage_approval(&granted), &cli("M1")).unwrap();
    w.settle();
    let pending = request(&w, "warehouse-finance", "E1", None, "E1").unwrap();
    let lines = w.import_lines(&people(&[("E1", "E1 eve Support Associate M1 terminated")]));
    assert!(lines.contains(&format!("plan E1 warehouse revoke admin [request:{}]", granted.id)), "{lines:?}");
    for id in [granted.id, pending.id] {
        assert_eq!(w.store().request(id).unwrap().state, RequestState::Cancelled, "request {id}");
    }
    assert!(w.store().approvals(true).unwrap().is_empty(), "its open stage is withdrawn");

    let r = request(&w, "warehouse-admin", "F1", None, "F1").unwrap();
    let Approved::Request(next) = approve(&w, stage_approval(&r), &cli("M1")).unwrap() else { panic!() };
    approve(&w, stage_approval(&next), &cli("M0")).unwrap();
    w.settle();
    let engine = w.app.engine().unwrap();
    let (ended, ops) = w.changes(|| requests::revoke(&engine, r.id, &cli("M1"), "no longer needed").unwrap());
    assert_eq!(ended.state, RequestState::Revoked);
    assert_eq!(ops, [format!("plan F1 warehouse revoke admin [request:{}]", r.id)]);
    let gone = w.audit("request.revoked");
    assert!(gone[0].entry.reason.as_deref().unwrap().contains("no longer needed"));
}

#[test]
fn a_stage_is_rejected_by_its_approver_or_withdrawn_by_the_requester() {
    let w = world();
    let reject =
        |approval: i64, by: &str| decisions::reject(&w.app.engine().unwrap(), approval, &cli(by), "not this quarter");
    let r = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    let id = stage_approval(&r);
    refused(&w, Code::NotApprover, "waits for `M1`", || reject(id, "M0"));
    reject(id, "mgr").unwrap();
    let done = w.store().request(r.id).unwrap();
    assert_eq!((done.state, done.end_reason.as_deref()), (RequestState::Rejected, Some("not this quarter")));
    assert_eq!(w.audit("request.rejected").len(), 1);
    // Asked again, and withdrawn by whoever asked.
    let again = request(&w, "warehouse-admin", "E1", None, "helpdesk").unwrap();
    reject(stage_approval(&again), "helpdesk").unwrap();
    assert_eq!(w.store().request(again.id).unwrap().state, RequestState::Rejected);
    assert!(w.ops().values().all(|o| o.entitlement.as_deref() != Some("admin")), "nothing planned");
}

/// The policy `docs/requests.md` shows loads as written against the starter's targets, and means
/// what the page says.
#[test]
fn the_documented_policy_loads_and_means_what_the_page_says() {
    let doc = include_str!("../../../../docs/requests.md");
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let block = &doc[start..start + doc[start..].find("```").unwrap()];
    let w = World::empty(&Setup::default());
    let p = tenure_policy::parse("docs/requests.md", block, w.app.config(), w.clock.today()).unwrap();
    let admin = p.role("warehouse-admin").unwrap();
    assert!(admin.requestable && admin.approval.len() == 2 && admin.max_duration == Some(8 * 3600));
    assert!(p.role("payment-approver").unwrap().requestable);
    assert_eq!((p.sod[0].mode, p.sod[0].owner.as_deref()), (tenure_policy::SodMode::Record, Some("E1000")));
}

#[test]
fn a_conflict_that_arises_after_the_request_is_refused_at_approval() {
    let w = world();
    let r = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    let flag = request(&w, "warehouse-admin", "M1", None, "M1").unwrap();
    // E1 moves to Finance (`payments` would not matter; `admin-and-finance` flags) and M1 to
    // Engineering (`admin-and-analyst` only records).
    w.import(&people(&[("E1", "E1 eve Finance Analyst M1 active"), ("M1", "M1 mgr Engineering Lead M0 active")]));
    w.settle();
    refused(&w, Code::SodConflict, "sod rule `admin-and-finance` flags", || {
        approve(&w, stage_approval(&r), &cli("M1"))
    });
    // A record-mode rule never refuses, then or later.
    let Approved::Request(granted) = approve(&w, stage_approval(&flag), &cli("M0")).unwrap() else { panic!() };
    assert_eq!(granted.state, RequestState::Granted);
}

/// A certification campaign's items say a requested grant is held because of its request.
#[test]
fn a_campaign_item_names_the_request_a_grant_is_held_for() {
    let w = world();
    let r = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    approve(&w, stage_approval(&r), &cli("M1")).unwrap();
    w.settle();
    let items = privileged_campaign(&w);
    let item = items.iter().find(|i| i.identity == "E1" && i.entitlement.ends_with("admin")).unwrap();
    assert_eq!(item.why, [format!("request:{}", r.id)]);
}

/// A review revocation the guard holds keeps its grant in the holdings until approved: the
/// approval takes it out and plans the revoke; declining the approval keeps the access, resolves
/// the review's `manual_override` exception, and leaves nothing for planning to revoke again.
#[test]
fn a_held_review_revocation_changes_the_holdings_only_when_approved() {
    let holds_admin = |w: &World| w.store().holdings("E1").unwrap().get("warehouse").unwrap().grants.contains("admin");
    let overridden = |w: &World| {
        let o = tenure_engine::desired::overrides(&w.app.engine().unwrap(), Some(&["E1"])).unwrap();
        o.get("E1").is_some_and(|o| !o.revoked.is_empty())
    };

    let (w, item, approval) = held_review_world();
    assert!(holds_admin(&w), "held: still in the holdings");
    assert!(!overridden(&w), "held: not excluded from the desired state yet");
    decisions::reject(&w.app.engine().unwrap(), approval, &cli("ciso"), "keep it for now").unwrap();
    assert!(holds_admin(&w), "rejected: the access stays");
    assert!(!overridden(&w), "rejected: no override left to drift from");
    let x = w.store().exceptions(false).unwrap();
    let review = x.iter().find(|x| x.subject == format!("review:{item}")).unwrap();
    assert_eq!(review.state, tenure_core::ExceptionState::Resolved, "{review:?}");

    let (w, _, approval) = held_review_world();
    approve(&w, approval, &cli("ciso")).unwrap();
    assert!(!holds_admin(&w), "approved: the grant leaves the holdings");
    assert!(overridden(&w), "approved: the override is in force");
}

/// Access a certification review revoked stays revoked while the review's exception is open:
/// asking for it again, or approving the last stage of a request asked before the review, is
/// refused with the exception to resolve, and nothing changes; once it is resolved, asking works.
#[test]
fn a_request_for_access_a_review_revoked_is_refused_until_its_exception_is_resolved() {
    let again =
        "\n[[role]]\nid = \"admin-again\"\nrequestable = true\napproval = \"manager\"\ngrant = [\"warehouse:admin\"]\n";
    let w = World::with(Setup { policy: format!("{}{EXTRA}{again}", starter::POLICY), ..Setup::default() });
    w.import(&people(&[]));
    w.settle();
    let r = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    approve(&w, stage_approval(&r), &cli("M1")).unwrap();
    w.settle();
    let waiting = request(&w, "admin-again", "E1", None, "E1").unwrap();
    let items = privileged_campaign(&w);
    let item = items.iter().find(|i| i.identity == "E1" && i.entitlement == "warehouse:admin").unwrap().id;
    let (_, applied) =
        tenure_engine::campaigns::decide(&w.app, item, tenure_core::ReviewDecision::Revoke, "no", "M1", "user:M1")
            .unwrap();
    assert_eq!(applied.unwrap().held, None);
    w.settle();
    requests::revoke(&w.app.engine().unwrap(), r.id, &cli("M1"), "reviewed").unwrap();
    w.settle();

    let subject = format!("review:{item}");
    refused(&w, Code::RequestRefused, &subject, || approve(&w, stage_approval(&waiting), &cli("M1")));
    refused(&w, Code::RequestRefused, &subject, || request(&w, "warehouse-admin", "E1", None, "E1"));

    let x = w.store().exceptions(true).unwrap().into_iter().find(|x| x.subject == subject).unwrap();
    let close = tenure_store::CloseException {
        id: x.id,
        by: "ciso",
        actor: "user:ciso",
        reason: "needed after all",
        closing: tenure_store::Closing::Resolve,
        due_at: None,
    };
    w.store().close_exception(&close).unwrap();
    let Approved::Request(granted) = approve(&w, stage_approval(&waiting), &cli("M1")).unwrap() else { panic!() };
    assert_eq!(granted.state, RequestState::Granted);
}

/// A world whose guard holds every review revocation, after E1's manager `M1` decided to revoke
/// E1's requested `warehouse:admin`: the review item and the remediation approval holding it.
fn held_review_world() -> (World, i64, i64) {
    let guard = Guard { max_access_losses: Some(0), ..Guard::STARTER };
    let w = World::with(Setup { guard, policy: format!("{}{EXTRA}", starter::POLICY), ..Setup::default() });
    w.import(&people(&[]));
    w.settle();
    let r = request(&w, "warehouse-admin", "E1", None, "E1").unwrap();
    approve(&w, stage_approval(&r), &cli("M1")).unwrap();
    w.settle();
    let items = privileged_campaign(&w);
    let item = items.iter().find(|i| i.identity == "E1" && i.entitlement == "warehouse:admin").unwrap().id;
    let (_, applied) = tenure_engine::campaigns::decide(
        &w.app,
        item,
        tenure_core::ReviewDecision::Revoke,
        "not needed",
        "M1",
        "user:M1",
    )
    .unwrap();
    let applied = applied.unwrap();
    assert!(applied.held.is_some(), "{applied:?}");
    (w, item, applied.approval_id.unwrap())
}

/// The reviewer who decided a revocation the guard held may not release it themselves, by
/// identity id or by username; someone else may. The refusal changes nothing.
#[test]
fn a_reviewer_may_not_release_their_own_held_revocation() {
    let (w, item, approval) = held_review_world();
    for name in ["M1", "mgr"] {
        refused(&w, Code::SelfApproval, &format!("decided review item(s) {item}"), || {
            approve(&w, approval, &cli(name))
        });
    }
    let via_token = Decider::new("mgr", Via::Token);
    refused(&w, Code::SelfApproval, "self-approval is refused", || approve(&w, approval, &via_token));
    let Approved::Remediation(n) = approve(&w, approval, &cli("M0")).unwrap() else { panic!() };
    assert_eq!(n, 1);
}

/// A name differing only in case is the same reviewer: `MGR` and `m1` may not release what
/// `mgr` (`M1`) decided, as requests already treat them; nor may `E1`, whose access it revokes.
#[test]
fn issue15_a_reviewer_differing_only_in_case_may_not_release_their_held_revocation() {
    let (w, item, approval) = held_review_world();
    for name in ["MGR", "m1", "Mgr"] {
        refused(&w, Code::SelfApproval, &format!("decided review item(s) {item}"), || {
            approve(&w, approval, &cli(name))
        });
    }
    refused(&w, Code::SelfApproval, "identity `E1`", || approve(&w, approval, &cli("EVE")));
    let Approved::Remediation(n) = approve(&w, approval, &cli("M0")).unwrap() else { panic!() };
    assert_eq!(n, 1);
}

/// An item that names its own identity as reviewer (as a campaign made before that was refused
/// could) cannot be decided by that identity, only handed on; the new reviewer decides it.
#[test]
fn an_item_reviewed_by_its_own_identity_is_refused_and_can_be_handed_on() {
    let w = world();
    let item = |identity: &str, reviewer: &str| tenure_store::campaigns::NewItem {
        identity: identity.into(),
        target: "directory".into(),
        entitlement: "staff".into(),
        why: vec!["staff".into()],
        reviewer: reviewer.into(),
        note: None,
    };
    let c = w
        .store()
        .create_campaign(&tenure_store::campaigns::NewCampaign {
            name: "old".into(),
            scope: "entitlement:directory:staff".into(),
            reviewer: "manager".into(),
            due_at: "2026-12-31T00:00:00Z".into(),
            escalate_after_secs: None,
            on_timeout: tenure_core::OnTimeout::Keep,
            created_by: "M0".into(),
            actor: "user:M0".into(),
            items: vec![item("M0", "M0")],
            mover_event: None,
        })
        .unwrap();
    let (_, items) = tenure_engine::campaigns::show(&w.app, c.id).unwrap();
    let id = items[0].id;
    let keep = tenure_core::ReviewDecision::Keep;
    let own = tenure_engine::campaigns::decide(&w.app, id, keep, "mine", "boss", "user:boss").unwrap_err();
    assert_eq!(own.code(), Code::Forbidden, "{own}");
    assert!(own.to_string().contains("nobody reviews their own access"), "{own}");
    assert_eq!(tenure_engine::campaigns::show(&w.app, c.id).unwrap().1[0].decision, None);
    tenure_engine::campaigns::reassign(&w.app, id, "M1", "not mine to judge", "M0", "user:M0").unwrap();
    tenure_engine::campaigns::decide(&w.app, id, keep, "runs support", "M1", "user:M1").unwrap();
}

/// The items of a new campaign over all privileged access, reviewed by managers, created by
/// `ciso`.
fn privileged_campaign(w: &World) -> Vec<tenure_proto::ReviewItem> {
    let o = tenure_engine::campaigns::CreateOptions {
        name: "privileged q4".into(),
        scope: "privileged".into(),
        reviewer: "manager".into(),
        due: "2026-12-31".into(),
        escalate_after: None,
        on_timeout: tenure_core::OnTimeout::Keep,
        by: "ciso".into(),
        actor: "user:ciso".into(),
    };
    let c = tenure_engine::campaigns::create(&w.app, &o).unwrap();
    tenure_engine::campaigns::show(&w.app, c.id).unwrap().1
}
