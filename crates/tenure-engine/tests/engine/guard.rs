//! The guard: each limit holds the whole batch, and a held batch plans and changes nothing.

use crate::{Setup, World, crowd, csv, row, snapshot};
use tenure_core::{ApprovalKind, ImportOutcome};
use tenure_engine::import::ImportOptions;
use tenure_sample::starter::Guard;

/// Imports `text` into `w` and checks that the batch is held for `reason`: a dry run says so
/// too, nothing is planned or cancelled, no identity changes, and one approval waits with the
/// batch's events.
fn check_held(w: &World, text: &str, reason: &str) {
    let dry = w.import_with("hr", text, &ImportOptions { dry_run: true, ..ImportOptions::default() }).unwrap();
    assert_eq!((dry.outcome, dry.held_reason.as_deref()), (ImportOutcome::Held, Some(reason)), "dry run");
    let before = w.identities();
    let (report, ops) = w.changes(|| w.import(text));
    assert_eq!((report.outcome, report.held_reason.as_deref()), (ImportOutcome::Held, Some(reason)));
    assert_eq!(ops, Vec::<String>::new(), "a held batch plans and cancels nothing");
    assert_eq!(report.counts.operations, 0);
    assert!(report.events.iter().all(|e| e.operations == 0));
    assert_eq!(w.identities(), before, "a held batch changes no identity");
    let id = w.pending_approval();
    assert_eq!(report.approval_id, Some(id));
    let approval = w.store().approval(id).unwrap();
    assert_eq!(approval.kind, ApprovalKind::Batch);
    assert_eq!(approval.summary["reason"], reason);
    let held = w.store().held_events(&w.app.config().schema, approval.subject).unwrap();
    assert_eq!(held.len(), report.events.len(), "every event waits with the batch");
}

fn guard(max_leavers: u64, max_leaver_fraction: f64, losses: Option<u64>, loss_fraction: Option<f64>) -> Setup {
    let guard =
        Guard { max_leavers, max_leaver_fraction, max_access_losses: losses, max_access_loss_fraction: loss_fraction };
    Setup { guard, ..Setup::default() }
}

const LEAVING: &[&str] = &["C01", "C02", "C03"];

#[test]
fn too_many_leavers_hold_the_batch() {
    check_held(&World::with(guard(2, 1.0, None, None)), &snapshot(&[], LEAVING), "3 leavers exceed max_leavers = 2");
    check_held(
        &World::new(),
        &snapshot(&[], LEAVING),
        "3 leavers are 7.5% of 40 identities, over max_leaver_fraction = 0.05",
    );
    // At the limit, the batch applies; a joiner in a held batch is held with it.
    let w = World::with(guard(3, 1.0, None, None));
    assert_eq!(w.import(&snapshot(&["E1 ada Sales Lead active"], LEAVING)).outcome, ImportOutcome::Applied);
    let w = World::with(guard(2, 1.0, None, None));
    check_held(&w, &snapshot(&["E1 ada Sales Lead active"], LEAVING), "3 leavers exceed max_leavers = 2");
}

#[test]
fn too_many_losing_access_hold_the_batch() {
    // Three engineers moved to Support by a broken mapping: nobody leaves, three lose access.
    let engineers =
        ["E1 ada Engineering Lead active", "E2 bo Engineering Lead active", "E3 cy Engineering Lead active"];
    let moved = ["E1 ada Support Lead active", "E2 bo Support Lead active", "E3 cy Support Lead active"];
    let world = |setup: Setup| {
        let w = World::with(setup);
        w.import(&snapshot(&engineers, &[]));
        w.settle();
        w
    };
    check_held(
        &world(guard(25, 0.05, Some(2), None)),
        &snapshot(&moved, &[]),
        "3 identities losing access exceed max_access_losses = 2",
    );
    check_held(
        &world(guard(25, 0.05, None, Some(0.05))),
        &snapshot(&moved, &[]),
        "3 identities losing access are 7.0% of 43 identities, over max_access_loss_fraction = 0.05",
    );
    // Withdrawing queued provisioning is losing access too.
    let w = World::with(guard(25, 0.05, Some(2), None));
    w.import(&snapshot(&engineers, &[]));
    check_held(&w, &snapshot(&moved, &[]), "3 identities losing access exceed max_access_losses = 2");
}

#[test]
fn too_many_gaining_privileged_access_hold_the_batch() {
    // A privileged role's condition grants nothing by itself: each match opens a request, and
    // the guard counts those like the grants they ask for.
    let policy = tenure_sample::starter::POLICY.replace(
        "approval = \"manager\"         # requested, approved by the manager",
        "approval = \"manager\"\nwhen = { status = \"active\", department = \"Engineering\" }",
    );
    // Managed by `C01` of the crowd, who approves their requests.
    let engineers = |n: usize| -> Vec<String> {
        (1..=n).map(|i| row(&format!("E{i} e{i} Engineering Lead active")).replacen(",CC1,,", ",CC1,C01,", 1)).collect()
    };
    let with = |rows: Vec<String>| csv(&rows.into_iter().chain(crowd()).collect::<Vec<_>>());
    let w = World::with(Setup { policy: policy.clone(), ..Setup::default() });
    check_held(&w, &with(engineers(6)), "6 identities gaining privileged access exceed max_privileged_grants = 5");
    let w = World::with(Setup { policy, ..Setup::default() });
    let report = w.import(&with(engineers(5)));
    assert_eq!((report.outcome, report.counts.privileged_grants), (ImportOutcome::Applied, 5));
    let asked = w.store().requests(true).unwrap();
    assert_eq!(asked.len(), 5, "one request each, nothing granted: {asked:#?}");
}

#[test]
fn a_cut_off_file_holds_its_removals() {
    let w = World::new();
    let full = csv(&crowd());
    // The file ends inside C39's row: C39 is rejected, C40 is missing.
    let cut = &full[..full.find("C39,").unwrap() + 10];
    check_held(
        &w,
        cut,
        "the file does not end with a line break, so its last record may be cut off; 1 identity missing from it may only have been cut off",
    );
}

#[test]
fn a_row_that_cannot_be_attributed_holds_the_removals() {
    // C40's key carries a control character: the row could be anyone's, and C40 is missing.
    let mut rows = crowd();
    rows[39] = rows[39].replacen("C40", "C4\u{1b}0", 1);
    check_held(
        &World::new(),
        &csv(&rows),
        "1 rejected row(s) cannot be attributed to a key with certainty, so 1 identity missing from the file may not really have left",
    );
}

#[test]
fn a_rejected_row_that_could_be_a_removed_identity_holds_the_removals() {
    // C05's key mistyped: the row carries C05's username and email under a new key.
    let mut rows = crowd();
    rows[4] = rows[4].replacen("C05,", "C005,", 1);
    check_held(
        &World::new(),
        &csv(&rows),
        "1 identity missing from the file share a key, username or email with a rejected row (`C05` (line 6)): they may not really have left",
    );
    // C07's key typed onto C08's row: both rows are rejected as duplicates, and C08 is missing.
    let mut rows = crowd();
    rows[7] = rows[7].replacen("C08,", "C07,", 1);
    check_held(
        &World::new(),
        &csv(&rows),
        "1 identity missing from the file share a key, username or email with a rejected row (`C08` (line 9)): they may not really have left",
    );
    // Without a removal there is nothing to hold: a second row with C05's username under a
    // new key rejects both (a person sorts them out), C05 keeps its state, and nobody leaves.
    let w = World::new();
    let report = w.import(&csv(&[crowd(), vec![row("C005 c05 Support Associate active")]].concat()));
    let rejected: Vec<(u64, &str)> = report.rejected.iter().map(|r| (r.line, r.reason.as_str())).collect();
    assert_eq!(
        rejected,
        [(6, "duplicate username `c05` (also `C005`)"), (42, "duplicate username `c05` (also `C05`)")]
    );
    assert_eq!((report.outcome, report.counts.leavers), (ImportOutcome::Unchanged, 0));
    assert!(w.store().approvals(true).unwrap().is_empty());
}
