//! Brownfield correlation in the import and in a person's decision (issue 9, point 5): the
//! first import against a target with accounts links what the rules can, records the rest as
//! cases, plans nothing for undecided accounts and their candidates there, and deciding a case
//! plans the linked identity on the account it was found under.

use super::{Setup, World, csv, row};
use std::collections::BTreeSet;
use tenure_connect::AccountState;
use tenure_core::error::{Code, HasCode};
use tenure_engine::correlation::{self, Choice, Inventory};
use tenure_engine::decisions::{Decider, Via};
use tenure_engine::import::{Correlate, ImportOptions, ImportReport};

fn acc(spec: &str) -> AccountState {
    let mut words = spec.split_whitespace();
    let account = words.next().unwrap().to_string();
    let (mut external_id, mut email, mut grants) = (None, None, BTreeSet::new());
    for w in words {
        if let Some(x) = w.strip_prefix("id=") {
            external_id = Some(x.to_string());
        } else if let Some(x) = w.strip_prefix("mail=") {
            email = Some(x.to_string());
        } else {
            grants.insert(w.to_string());
        }
    }
    AccountState { account, external_id, email, enabled: true, grants, sessions: None }
}

pub(super) fn directory(accounts: &[&str]) -> ImportOptions {
    let mut inventory = Inventory::new();
    inventory.insert("directory".into(), accounts.iter().map(|a| acc(a)).collect());
    ImportOptions { correlation: Some(Correlate { inventory, unread: Vec::new() }), ..ImportOptions::default() }
}

/// `identity`'s operations on `target`, as `kind [entitlement] @account`.
fn ops(w: &World, identity: &str, target: &str) -> Vec<String> {
    w.ops()
        .values()
        .filter(|o| o.identity == identity && o.target == target)
        .map(|o| {
            let ent = o.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default();
            format!("{}{ent} @{}", o.kind, o.account.as_deref().unwrap_or("?"))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn people() -> String {
    csv(&[
        row("A1 ada Engineering Engineer active"),
        row("B1 bob Support Associate active"),
        row("C1 carol Support Associate active"),
        row("D1 dave Support Associate active"),
    ])
}

pub(super) const ACCOUNTS: &[&str] = &[
    "legacy-ada id=A1 book-club",
    "BOB staff",
    "x1 mail=carol@example.com",
    "x2 mail=carol@example.com",
    "dave id=X9",
    "printer",
];

pub(super) fn first_import(w: &World, opts: &ImportOptions) -> ImportReport {
    let r = w.import_with("hr", &people(), opts).unwrap();
    assert_eq!(r.counts.joiners, 4, "{r:?}");
    r
}

#[test]
fn the_first_import_links_what_it_can_and_plans_nothing_for_the_undecided() {
    let w = World::empty(&Setup::default());
    let r = first_import(&w, &directory(ACCOUNTS));
    let c = &r.correlation[0];
    assert_eq!((c.target.as_str(), c.accounts, c.linked, c.cases, c.unmatched), ("directory", 6, 2, 3, 1), "{c:?}");
    // Linked by employee number under another name, and by username in other case: taken over,
    // never created again; the unmanaged book club is not Tenure's to revoke.
    assert_eq!(ops(&w, "A1", "directory"), ["grant engineers @legacy-ada", "grant staff @legacy-ada"]);
    assert_eq!(ops(&w, "B1", "directory"), Vec::<String>::new(), "BOB already holds staff, all it needs");
    // Undecided: Carol's two candidate accounts and the account under Dave's name that says it is
    // someone else's. Nothing is planned for them in the directory; elsewhere they are provisioned.
    assert_eq!(ops(&w, "C1", "directory"), Vec::<String>::new());
    assert_eq!(ops(&w, "D1", "directory"), Vec::<String>::new());
    assert!(!ops(&w, "C1", "chat").is_empty(), "other targets are not held back");
    let held: Vec<(String, String)> = r.held_back.iter().map(|h| (h.identity.clone(), h.target.clone())).collect();
    assert_eq!(held, [("C1".to_string(), "directory".to_string()), ("D1".into(), "directory".into())]);
    let store = w.store().as_ref();
    let open = correlation::cases(store, true).unwrap();
    let accounts: Vec<&str> = open.iter().map(|c| c.account.as_str()).collect();
    assert_eq!(accounts, ["x1", "x2", "dave"]);
    // Correlated once: the next import does not read the directory again.
    let pending = correlation::pending_targets(w.app.config(), store).unwrap();
    assert!(!pending.contains(&"directory".to_string()) && pending.contains(&"chat".to_string()), "{pending:?}");
    let audit: Vec<String> = w.audit("correlation.").iter().map(|a| a.entry.action.clone()).collect();
    assert_eq!(audit.iter().filter(|a| *a == "correlation.linked").count(), 2);
    assert_eq!(audit.iter().filter(|a| *a == "correlation.case_opened").count(), 3);
}

#[test]
fn a_dry_run_plans_as_if_correlated_and_records_nothing() {
    let w = World::empty(&Setup::default());
    let opts = ImportOptions { dry_run: true, ..directory(ACCOUNTS) };
    let r = first_import(&w, &opts);
    assert_eq!(r.correlation[0].linked, 2);
    assert!(r.correlation[0].case_ids.is_empty(), "no case recorded");
    assert_eq!(r.held_back.len(), 2, "{r:?}");
    let created = r.events.iter().find(|e| e.identity == "C1").unwrap().operations;
    assert!(created > 0, "C1 still gets chat and warehouse");
    // The same operations as the real import plans (BOB holds staff: nothing for the directory).
    assert!(correlation::cases(w.store().as_ref(), false).unwrap().is_empty());
    assert!(w.ops().is_empty(), "a dry run changes nothing");
    let dry: Vec<(String, usize)> = r.events.iter().map(|e| (e.identity.clone(), e.operations)).collect();
    let real = first_import(&w, &directory(ACCOUNTS));
    let applied: Vec<(String, usize)> = real.events.iter().map(|e| (e.identity.clone(), e.operations)).collect();
    assert_eq!(dry, applied, "a dry run plans what the import then does");
}

/// A person deciding from the CLI with `--as NAME`.
fn cli(name: &str) -> Decider {
    Decider::new(name, Via::CliAs)
}

#[test]
fn deciding_a_case_links_and_plans_and_bad_decisions_change_nothing() {
    let w = World::empty(&Setup::default());
    first_import(&w, &directory(ACCOUNTS));
    let store = w.store().as_ref();
    let open = correlation::cases(store, true).unwrap();
    let id = |account: &str| open.iter().find(|c| c.account == account).unwrap().id;
    let engine = w.app.engine().unwrap();
    let refuse = |case: i64, choice: Choice, reason: Option<&str>| {
        correlation::decide(&engine, case, &choice, reason, &cli("alice")).unwrap_err()
    };
    assert_eq!(refuse(999, Choice::To("C1".into()), None).code(), Code::NotFound);
    assert_eq!(refuse(id("x2"), Choice::To("NOBODY".into()), None).code(), Code::NotFound);
    let e = refuse(id("x2"), Choice::To("A1".into()), None);
    assert_eq!(e.code(), Code::InvalidInput, "{e}");
    assert!(e.to_string().contains("already has account `legacy-ada`"), "{e}");
    let e = refuse(id("x1"), Choice::Orphan, Some("  "));
    assert!(e.to_string().contains("`--orphan` needs `--reason`"), "{e}");
    assert_eq!(correlation::cases(store, true).unwrap(), open, "refusals change nothing");

    let d =
        correlation::decide(&engine, id("x2"), &Choice::To("C1".into()), Some("Carol said so"), &cli("alice")).unwrap();
    assert_eq!(d.case.identity.as_deref(), Some("C1"));
    assert_eq!(d.operations, 1);
    assert_eq!(ops(&w, "C1", "directory"), ["grant staff @x2"]);
    correlation::decide(&engine, id("x1"), &Choice::Orphan, Some("an old test login"), &cli("alice")).unwrap();
    let e = refuse(id("x1"), Choice::To("C1".into()), None);
    assert!(e.to_string().contains("was decided already (orphaned by alice"), "{e}");

    // Dave's name is held by an account that is someone else's: he is not given an account under
    // it, not even once his case is decided as an orphan and he moves.
    correlation::decide(&engine, id("dave"), &Choice::Orphan, Some("belongs to contractor X9"), &cli("bob")).unwrap();
    let r = w
        .import_with(
            "hr",
            &people()
                .replace("D1,N,L,dave@example.com,dave,Support,Associate", "D1,N,L,dave@example.com,dave,Support,Lead"),
            &ImportOptions::default(),
        )
        .unwrap();
    assert_eq!(r.events.len(), 1, "{r:?}");
    assert_eq!(ops(&w, "D1", "directory"), Vec::<String>::new());
    let held = r.held_back.iter().find(|h| h.identity == "D1").unwrap();
    assert!(held.why.contains("is in correlation case") && held.why.contains("(orphaned)"), "{held:?}");

    let decided: Vec<String> = w
        .audit("correlation.decided")
        .iter()
        .filter(|a| a.entry.action == "correlation.decided")
        .map(|a| format!("{} {}", a.entry.actor, a.entry.outcome))
        .collect();
    assert_eq!(decided, ["user:alice linked", "user:alice orphaned", "user:bob orphaned"]);
}

/// The first push against a target with accounts (a webhook-only HR feed) correlates it as the
/// first import does; a second push with the same inventory does not correlate it again.
#[test]
fn the_first_push_correlates_too() {
    use tenure_core::record::{self, Value};
    let w = World::empty(&Setup::default());
    let src = w.app.config().source("hr").unwrap();
    let rec = |i: usize, id: &str, login: &str| {
        let email = format!("{login}@example.com");
        let fields = [
            ("employee_id", id),
            ("first_name", "N"),
            ("last_name", "L"),
            ("work_email", email.as_str()),
            ("login", login),
            ("dept", "Support"),
            ("title", "Associate"),
            ("employment_type", "employee"),
            ("kind", "employee"),
            ("start", "2020-01-01"),
            ("employment_status", "active"),
        ];
        record::from_columns(src, i, fields.iter().map(|(k, v)| (*k, Value::Str(v)))).unwrap()
    };
    let corr = directory(ACCOUNTS).correlation;
    let opts = tenure_engine::ingest::PushOptions {
        actor: "source:hr".into(),
        label: "webhook 1".into(),
        correlation: corr.clone(),
        ..Default::default()
    };
    let r = tenure_engine::ingest::push(&w.app, "hr", &[rec(0, "B1", "bob"), rec(1, "C1", "carol")], &opts).unwrap();
    assert_eq!((r.correlation[0].linked, r.correlation[0].cases), (1, 2), "{r:?}");
    assert_eq!(ops(&w, "B1", "directory"), Vec::<String>::new(), "BOB holds staff already");
    assert_eq!(ops(&w, "C1", "directory"), Vec::<String>::new(), "held back");
    // Ada and Dave join after the baseline: the accounts it matched to nobody are checked
    // against them. Ada's hand-made login names her by employee number and is linked, never
    // duplicated; the one under Dave's name says it is someone else's, so it is a case.
    let opts = tenure_engine::ingest::PushOptions { label: "webhook 2".into(), ..opts };
    let r = tenure_engine::ingest::push(&w.app, "hr", &[rec(0, "A1", "ada"), rec(1, "D1", "dave")], &opts).unwrap();
    let c = &r.correlation[0];
    assert_eq!((c.late, c.accounts, c.linked, c.cases), (true, 3, 1, 1), "{r:?}");
    assert_eq!(ops(&w, "A1", "directory"), ["grant staff @legacy-ada"]);
    assert_eq!(ops(&w, "D1", "directory"), Vec::<String>::new());
    assert!(r.held_back.iter().any(|h| h.identity == "D1"), "{r:?}");
    // The printer still matches nobody, and is checked again when someone else joins.
    let left: Vec<String> = w.store().unmatched_accounts().unwrap().into_iter().map(|(_, u)| u.account).collect();
    assert_eq!(left, ["printer"]);
}

/// A target correlated after go-live (it could not be read before): an identity whose account
/// it links is planned in that import although nothing about it changed — here the policy
/// grants Support nothing in the directory, so the plan disables the linked login (accounts
/// follow entitlements; the guard counts it).
#[test]
fn an_identity_linked_later_is_planned_in_that_import_without_a_change() {
    let policy = tenure_sample::starter::POLICY.replacen(
        r#"grant = ["directory:staff", "chat:everyone"]"#,
        r#"grant = ["chat:everyone"]"#,
        1,
    );
    assert_ne!(policy, tenure_sample::starter::POLICY, "the starter grants staff to everyone");
    let w = World::with(Setup { policy, ..Setup::default() });
    assert!(ops(&w, "C05", "directory").is_empty(), "Support has nothing in the directory");
    let r = w.import_with("hr", &csv(&super::crowd()), &directory(&["c05-legacy id=C05 staff"])).unwrap();
    assert_eq!(r.correlation[0].linked, 1, "{r:?}");
    assert_eq!(r.counts.updates, 1, "{r:?}");
    let e = r.events.iter().find(|e| e.identity == "C05").unwrap();
    assert_eq!(e.operations, 1);
    assert_eq!(ops(&w, "C05", "directory"), ["disable @c05-legacy"]);
}

/// Review finding 8: `simulate` plans as every other path does, through the correlation overlay:
/// nothing on a target where an open case holds the identity back, and a linked account is taken
/// over, never created again.
#[test]
fn simulate_applies_the_correlation_overlay() {
    let w = World::empty(&Setup::default());
    first_import(&w, &directory(ACCOUNTS));
    let before = format!("{:?}", w.ops());
    let sim = tenure_engine::import::simulate(&w.app.engine().unwrap()).unwrap();
    let on_directory = |id: &str| -> Vec<String> {
        sim.changes
            .iter()
            .filter(|c| c.identity == id && c.target == "directory")
            .map(|c| format!("{}{}", c.kind, c.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default()))
            .collect()
    };
    assert_eq!(on_directory("C1"), Vec::<String>::new(), "Carol is a candidate of open cases there: {sim:?}");
    assert_eq!(on_directory("D1"), Vec::<String>::new(), "Dave's name is held by someone else's account: {sim:?}");
    for id in ["A1", "B1"] {
        assert!(!on_directory(id).iter().any(|c| c.starts_with("create_account")), "{id} is linked: {sim:?}");
    }
    assert_eq!(format!("{:?}", w.ops()), before, "simulate changes nothing");
}

/// A commit that fails as a stale batch does, after the batch was prepared and planned.
struct Stale;

impl tenure_engine::import::Commit for Stale {
    fn commit(
        &self,
        _: &tenure_core::Schema,
        _: &tenure_store::Batch,
        _: Option<&mut dyn Iterator<Item = tenure_store::EventIn>>,
    ) -> tenure_store::Result<tenure_store::BatchIds> {
        Err(tenure_store::StoreError::Conflict("another import of `hr` was applied meanwhile".into()))
    }
}

#[test]
fn issue15_a_batch_that_fails_after_correlation_leaves_no_link_or_baseline() {
    use tenure_core::record::{self, Value};
    use tenure_engine::ingest::{PushOptions, push, push_with};
    let w = World::empty(&Setup::default());
    let src = w.app.config().source("hr").unwrap();
    let person = |i: usize, key: &'static str, login: &'static str| {
        let fields = [
            ("employee_id", Value::Str(key)),
            ("login", Value::Str(login)),
            ("dept", Value::Str("Engineering")),
            ("title", Value::Str("Engineer")),
            ("employment_status", Value::Str("active")),
        ];
        record::from_columns(src, i, fields).unwrap()
    };
    // Ada's account is linked by her employee number; the one under Dave's name says it is
    // someone else's: a case.
    let records = vec![person(0, "A1", "ada"), person(1, "D1", "dave")];
    let opts = PushOptions {
        actor: "source:hr".into(),
        label: "webhook test".into(),
        correlation: directory(ACCOUNTS).correlation,
        ..PushOptions::default()
    };
    let err = push_with(&w.app, "hr", &records, &opts, &Stale).unwrap_err();
    assert_eq!(err.code(), Code::Conflict, "{err}");
    let store = w.store().as_ref();
    assert!(store.baselines().unwrap().is_empty(), "the directory is not marked correlated");
    assert!(store.correlation_links(None).unwrap().is_empty(), "no account is linked");
    assert!(correlation::cases(store, false).unwrap().is_empty(), "no case is opened");
    assert!(w.audit("correlation.").is_empty(), "nothing audited that did not happen");
    assert!(correlation::pending_targets(w.app.config(), store).unwrap().contains(&"directory".to_string()));
    // The same push committed: the baseline, its link and its cases land with the batch, and the
    // report names the cases by the ids they were given.
    let r = push(&w.app, "hr", &records, &opts).unwrap();
    assert_eq!(store.baselines().unwrap().len(), 1);
    let links: Vec<(String, String)> =
        store.correlation_links(None).unwrap().into_iter().map(|l| (l.account, l.identity)).collect();
    assert_eq!(links, [("legacy-ada".to_string(), "A1".to_string())]);
    let ids: Vec<i64> = correlation::cases(store, false).unwrap().iter().map(|c| c.id).collect();
    assert_eq!(r.correlation[0].case_ids, ids);
    assert!(!ids.is_empty());
}
