//! `import::import_csv`: what a snapshot plans, from the state the one before it left.

use crate::{Setup, World, csv, row, snapshot};
use tenure_core::error::{Code, HasCode};
use tenure_core::{OpState, Status};

/// Imports the crowd with `before` and settles it, then imports the crowd with `after` and
/// compares what that import did with `expect`.
fn check(before: &[&str], after: &[&str], expect: &[&str]) {
    let w = World::new();
    if !before.is_empty() {
        w.import(&snapshot(before, &[]));
        w.settle();
    }
    assert_eq!(w.import_lines(&snapshot(after, &[])), expect, "before {before:?}\nafter {after:?}");
}

/// Like [`check`], with the work `before` planned still queued when `after` is imported.
fn check_queued(before: &[&str], after: &[&str], expect: &[&str]) {
    let w = World::new();
    w.import(&snapshot(before, &[]));
    assert_eq!(w.import_lines(&snapshot(after, &[])), expect, "before {before:?}\nafter {after:?}");
}

const ADA: &str = "E1 ada Engineering Lead active";

#[test]
fn a_joiner_gets_accounts_and_the_grants_of_their_roles() {
    check(
        &[],
        &[ADA],
        &[
            "applied",
            "joiner E1",
            "plan E1 chat create_account",
            "plan E1 chat grant engineering [engineering]",
            "plan E1 chat grant everyone [staff]",
            "plan E1 directory create_account",
            "plan E1 directory grant engineers [engineering]",
            "plan E1 directory grant staff [staff]",
            "plan E1 payroll create_account",
            "plan E1 payroll grant employee-record [payroll-record]",
            "plan E1 warehouse create_account",
            "plan E1 warehouse grant analyst [engineering]",
        ],
    );
    // A Finance lead would get both payment entitlements; separation of duties (`block`)
    // refuses approving what they can create.
    check(
        &[],
        &["E2 bo Finance Lead active"],
        &[
            "applied",
            "joiner E2",
            "plan E2 chat create_account",
            "plan E2 chat grant everyone [staff]",
            "plan E2 directory create_account",
            "plan E2 directory grant finance [finance]",
            "plan E2 directory grant staff [staff]",
            "plan E2 payroll create_account",
            "plan E2 payroll grant create-payment [finance]",
            "plan E2 payroll grant employee-record [payroll-record]",
            "plan E2 warehouse create_account",
            "plan E2 warehouse grant finance [finance]",
        ],
    );
}

#[test]
fn a_mover_gains_the_new_roles_and_loses_the_old_with_the_rules_that_granted_them() {
    check(
        &[ADA],
        &["E1 ada Sales Lead active"],
        &[
            "applied",
            "mover E1 significant",
            "plan E1 chat grant sales [sales]",
            "plan E1 chat revoke engineering [engineering]",
            "plan E1 directory grant sales [sales]",
            "plan E1 directory revoke engineers [engineering]",
            "plan E1 warehouse disable",
            "plan E1 warehouse revoke analyst [engineering]",
            "plan E1 warehouse revoke_sessions",
        ],
    );
    // A title is not significant; in Finance it still decides a role (interns have none). The
    // chat app maps `title`, so the new one is pushed there (the directory does not map it).
    check(
        &["E2 bo Finance Intern active"],
        &["E2 bo Finance Associate active"],
        &[
            "applied",
            "mover E2",
            "plan E2 chat update_attributes",
            "plan E2 directory grant finance [finance]",
            "plan E2 payroll grant create-payment [finance]",
            "plan E2 warehouse create_account",
            "plan E2 warehouse grant finance [finance]",
        ],
    );
    check(&[ADA], &["E1 ada Engineering Director active"], &["applied", "mover E1", "plan E1 chat update_attributes"]);
}

#[test]
fn a_leaver_is_disabled_everywhere_and_loses_every_grant() {
    let leaver = [
        "plan E1 chat disable",
        "plan E1 chat revoke engineering [engineering]",
        "plan E1 chat revoke everyone [staff]",
        "plan E1 directory disable",
        "plan E1 directory revoke engineers [engineering]",
        "plan E1 directory revoke staff [staff]",
        "plan E1 payroll disable",
        "plan E1 payroll revoke employee-record [payroll-record]",
        "plan E1 payroll revoke_sessions",
        "plan E1 warehouse disable",
        "plan E1 warehouse revoke analyst [engineering]",
        "plan E1 warehouse revoke_sessions",
    ];
    // Removed from the file, or terminated in it, or past the end date: the same leaver.
    let expect = [&["applied", "leaver E1"][..], &leaver[..]].concat();
    check(&[ADA], &[], &expect);
    check(&[ADA], &["E1 ada Engineering Lead terminated"], &expect);
    check(&[ADA], &["E1 ada Engineering Lead active 2026-11-20"], &expect);
    // An end date that has not passed is only a mover's change.
    check(&[ADA], &["E1 ada Engineering Lead active 2026-11-21"], &["applied", "mover E1"]);
}

#[test]
fn separation_of_duties_refuses_the_second_payment_entitlement() {
    let w = World::new();
    w.import(&snapshot(&["E2 bo Finance Associate active"], &[]));
    w.settle();
    // A promotion to manager would add approving payments to creating them.
    assert_eq!(
        w.import_lines(&snapshot(&["E2 bo Finance Manager active"], &[])),
        ["applied", "mover E2", "plan E2 chat update_attributes"]
    );
    let refused: Vec<String> = w
        .audit("sod.")
        .into_iter()
        .map(|r| {
            format!(
                "{} {} {}: {}",
                r.entry.action,
                r.entry.identity.unwrap(),
                r.entry.entitlement.unwrap(),
                r.entry.reason.unwrap()
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            "sod.refused E2 payroll:approve-payment: event 42; sod rule `payments` (Block); conflicting: payroll:create-payment, payroll:approve-payment"
        ]
    );
}

#[test]
fn leave_suspends_and_return_resumes() {
    let leave = "E1 ada Engineering Lead leave";
    check(
        &[ADA],
        &[leave],
        &[
            "applied",
            "suspend E1",
            "plan E1 chat disable",
            "plan E1 chat revoke engineering [engineering]",
            "plan E1 chat revoke everyone [staff]",
            "plan E1 directory disable",
            "plan E1 directory revoke engineers [engineering]",
            "plan E1 directory revoke staff [staff]",
            "plan E1 payroll disable",
            "plan E1 payroll revoke employee-record [payroll-record]",
            "plan E1 payroll revoke_sessions",
            "plan E1 warehouse disable",
            "plan E1 warehouse revoke analyst [engineering]",
            "plan E1 warehouse revoke_sessions",
        ],
    );
    let w = World::new();
    w.import(&snapshot(&[ADA], &[]));
    w.settle();
    w.import(&snapshot(&[leave], &[]));
    w.settle();
    assert_eq!(w.status("E1"), Status::Suspended);
    assert_eq!(
        w.import_lines(&snapshot(&[ADA], &[])),
        [
            "applied",
            "resume E1",
            "plan E1 chat enable",
            "plan E1 chat grant engineering [engineering]",
            "plan E1 chat grant everyone [staff]",
            "plan E1 directory enable",
            "plan E1 directory grant engineers [engineering]",
            "plan E1 directory grant staff [staff]",
            "plan E1 payroll enable",
            "plan E1 payroll grant employee-record [payroll-record]",
            "plan E1 warehouse enable",
            "plan E1 warehouse grant analyst [engineering]",
        ]
    );
}

#[test]
fn the_same_snapshot_again_changes_nothing() {
    check(&[ADA], &[ADA], &["unchanged"]);
    // Nor does it before the first one's work is done: the queued work is still wanted.
    check_queued(&[ADA], &[ADA], &["unchanged"]);
    // Row order and quoting are not changes.
    let w = World::new();
    let mut rows = crate::crowd();
    rows.reverse();
    rows[0] = rows[0].replacen(",Support,", ",\"Support\",", 1);
    assert_eq!(w.import_lines(&csv(&rows)), ["unchanged"]);
}

#[test]
fn a_rejected_row_never_makes_a_leaver() {
    // A bad date, an unknown status, a row cut short: each row is rejected, and its identity
    // keeps its state, its access and its queued work.
    check(
        &[ADA],
        &["E1 ada Engineering Lead active 2026-02-30"],
        &["unchanged", "rejected line 2 E1 field `end_date`: bad date `2026-02-30`: no such calendar date"],
    );
    check(
        &[ADA],
        &["E1 ada Engineering Lead retired"],
        &[
            "unchanged",
            "rejected line 2 E1 field `employment_status`: unknown status `retired`; expected active, leave or terminated",
        ],
    );
    let w = World::new();
    w.import(&snapshot(&[ADA], &[]));
    let short = snapshot(&[], &[]).replacen('\n', "\nE1,N,L,ada@example.com\n", 1);
    assert_eq!(w.import_lines(&short), ["unchanged", "rejected line 2 E1: has 4 fields; the header has 16"]);
    assert_eq!(w.status("E1"), Status::Active);
    assert!(w.ops().values().filter(|o| o.identity == "E1").all(|o| o.state == OpState::Pending));
}

#[test]
fn a_second_sources_rows_for_anothers_identity_are_rejected() {
    let w = World::with(Setup { second_source: true, ..Setup::default() });
    let before = w.identities();
    let report = w.import_from("contractors", &csv(&[row("C07 c07 Finance Director active")])).unwrap();
    assert_eq!(report.counts.rejected, 1);
    let r = &report.rejected[0];
    assert_eq!((r.line, r.key.as_deref(), r.field.as_deref()), (2, Some("C07"), Some("employee_id")));
    assert_eq!(r.reason, "key `C07` belongs to source `hr`; `contractors` cannot change it");
    assert_eq!(report.counts.operations, 0);
    assert_eq!(w.identities(), before, "someone else's identity is never changed");
    // Its own, empty, snapshot makes nobody of `hr` a leaver.
    assert_eq!(w.import_lines_from("contractors", &csv(&[])), ["unchanged"]);
    // Nor can it take an `hr` person's username under a key of its own.
    let report = w.import_from("contractors", &csv(&[row("K1 c07 Sales Lead active")])).unwrap();
    assert_eq!(report.rejected[0].reason, "username `c07` belongs to identity `C07`");
    assert_eq!(report.counts.joiners, 0);
}

#[test]
fn queued_work_the_new_snapshot_no_longer_needs_is_cancelled() {
    // A joiner who leaves before anything was applied: nothing to disable, the joiner work is
    // cancelled.
    check_queued(
        &[ADA],
        &[],
        &[
            "applied",
            "leaver E1",
            "cancel E1 chat create_account",
            "cancel E1 chat grant engineering",
            "cancel E1 chat grant everyone",
            "cancel E1 directory create_account",
            "cancel E1 directory grant engineers",
            "cancel E1 directory grant staff",
            "cancel E1 payroll create_account",
            "cancel E1 payroll grant employee-record",
            "cancel E1 warehouse create_account",
            "cancel E1 warehouse grant analyst",
        ],
    );
    // A joiner who moves before anything was applied: the accounts and the birthright grants
    // stay queued, the old department's grants are cancelled, the new one's planned.
    check_queued(
        &[ADA],
        &["E1 ada Sales Lead active"],
        &[
            "applied",
            "mover E1 significant",
            "plan E1 chat grant sales [sales]",
            "plan E1 directory grant sales [sales]",
            "cancel E1 chat grant engineering",
            "cancel E1 directory grant engineers",
            "cancel E1 warehouse create_account",
            "cancel E1 warehouse grant analyst",
        ],
    );
}

#[test]
fn attempted_work_is_taken_as_done_undone_and_cancelled() {
    // The joiner's work failed after its retries: it may have landed. The person leaves: what
    // it may have done is undone, and the failed operations are cancelled so no retry brings
    // them back.
    let w = World::new();
    w.import(&snapshot(&[ADA], &[]));
    w.finish_all(OpState::Failed);
    assert_eq!(
        w.import_lines(&snapshot(&[], &[])),
        [
            "applied",
            "leaver E1",
            "plan E1 chat disable",
            "plan E1 chat revoke engineering [engineering]",
            "plan E1 chat revoke everyone [staff]",
            "plan E1 directory disable",
            "plan E1 directory revoke engineers [engineering]",
            "plan E1 directory revoke staff [staff]",
            "plan E1 payroll disable",
            "plan E1 payroll revoke employee-record [payroll-record]",
            "plan E1 payroll revoke_sessions",
            "plan E1 warehouse disable",
            "plan E1 warehouse revoke analyst [engineering]",
            "plan E1 warehouse revoke_sessions",
            "cancel E1 chat create_account",
            "cancel E1 chat grant engineering",
            "cancel E1 chat grant everyone",
            "cancel E1 directory create_account",
            "cancel E1 directory grant engineers",
            "cancel E1 directory grant staff",
            "cancel E1 payroll create_account",
            "cancel E1 payroll grant employee-record",
            "cancel E1 warehouse create_account",
            "cancel E1 warehouse grant analyst",
        ]
    );
    assert!(w.ops().values().all(|o| o.state != OpState::Failed), "nothing left to retry");
    let why: Vec<String> = w
        .audit("plan.")
        .into_iter()
        .filter(|r| r.entry.outcome == "cancelled")
        .map(|r| r.entry.reason.unwrap_or_default())
        .collect();
    assert_eq!(why.len(), 10);
    assert!(
        why.iter().all(|r| r.ends_with("attempted without a verified result, so no retry may bring it back")),
        "{why:#?}"
    );
}

#[test]
fn an_unknown_or_non_csv_source_is_refused() {
    let w = World::new();
    let e = w.import_from("workday", &csv(&[])).unwrap_err();
    assert_eq!(
        (e.code(), e.to_string()),
        (Code::UnknownSource, "unknown source `workday`; sources in the config: hr".into())
    );
}

#[test]
fn a_dry_run_says_what_would_happen_and_writes_nothing() {
    let w = World::new();
    let before = (w.ops().len(), w.identities());
    let opts = tenure_engine::import::ImportOptions { dry_run: true, ..Default::default() };
    let report = w.import_with("hr", &snapshot(&[ADA], &["C01"]), &opts).unwrap();
    assert_eq!((report.counts.joiners, report.counts.leavers, report.counts.operations), (1, 1, 10 + 7));
    assert_eq!(report.import_id, None);
    assert_eq!((w.ops().len(), w.identities()), before);
}
