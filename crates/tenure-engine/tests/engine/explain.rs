//! `explain` (issue 9, point 6): for one identity, the roles that match with the attribute
//! values that made them match, the roles that do not with the condition that failed, SoD, and
//! what applying would change per target, computed from the store without changing it.

use super::*;
use tenure_core::OpKind;
use tenure_engine::explain::explain;
use tenure_proto::{Explanation, Fact, RoleTrace};

fn explained(app: &App, id: &str, target: Option<&str>) -> Explanation {
    explain(&app.engine().unwrap(), id, target).unwrap().expect("the identity exists")
}

fn role<'a>(list: &'a [RoleTrace], id: &str) -> &'a RoleTrace {
    list.iter().find(|r| r.role == id).unwrap_or_else(|| panic!("no role `{id}` in {list:?}"))
}

/// A fact as a line: `department eq Sales = Sales (held, was Engineering)`.
fn line(f: &Fact) -> String {
    format!(
        "{}{} {} {} = {} ({}{})",
        if f.negated { "not " } else { "" },
        f.attribute,
        f.test,
        f.expected.join("|"),
        f.actual.as_deref().unwrap_or("-"),
        if f.held { "held" } else { "failed" },
        if f.changed { format!(", was {}", f.previous.as_deref().unwrap_or("-")) } else { String::new() }
    )
}

fn lines(r: &RoleTrace) -> Vec<String> {
    r.facts.iter().map(line).collect()
}

#[test]
fn issue9_explain_a_mover_names_the_role_that_now_matches_and_the_condition_that_stopped_matching() {
    let w = World::new();
    w.import(&snapshot(&["P1 pat Engineering Engineer active"], &[]));
    w.settle();
    w.import(&snapshot(&["P1 pat Sales Engineer active"], &[]));
    let ops_before = format!("{:?}", w.ops());
    let x = explained(&w.app, "P1", None);
    assert_eq!(
        lines(role(&x.matched, "sales")),
        [
            "department eq Sales = Sales (held, was Engineering)",
            "kind in employee|contractor = employee (held)",
            "status eq active = active (held)",
        ]
    );
    // The first failing condition of each role that does not match, with the actual value.
    assert_eq!(
        lines(role(&x.unmatched, "engineering")),
        ["department eq Engineering = Sales (failed, was Engineering)"]
    );
    assert_eq!(lines(role(&x.unmatched, "service-accounts")), ["kind eq service = employee (failed)"]);
    // A `not` that holds is reported as the negated test that failed.
    assert_eq!(lines(role(&x.unmatched, "finance")), ["department eq Finance = Sales (failed, was Engineering)"]);
    let event = x.last_event.as_ref().unwrap();
    assert_eq!(event.kind.as_str(), "mover");
    assert_eq!(x.desired["directory"]["sales"], ["sales"]);
    assert_eq!(x.desired["directory"]["staff"], ["staff"]);
    assert!(!x.desired["directory"].contains_key("engineers"), "{:?}", x.desired);
    assert!(!x.targets_read);
    // The mover's import already planned the change, so applying the policy again adds nothing.
    let d = &x.targets["directory"];
    assert!(d.held.grants.contains(&"sales".to_string()) && !d.held.grants.contains(&"engineers".to_string()));
    assert!(d.open_operations > 0, "{d:?}");
    assert!(x.targets.values().all(|t| t.changes.is_empty()), "{:?}", x.targets);
    assert_eq!(format!("{:?}", w.ops()), ops_before, "explain changes nothing");
}

#[test]
fn issue9_explain_reports_sod_and_negated_conditions() {
    let w = World::new();
    w.import(&snapshot(&["F1 fay Finance Lead active", "F2 fin Finance Intern active"], &[]));
    let x = explained(&w.app, "F1", None);
    assert_eq!(role(&x.matched, "finance-leads").grants, ["payroll:approve-payment"]);
    assert!(lines(role(&x.matched, "finance")).contains(&"not title eq Intern = Lead (failed)".to_string()));
    assert_eq!(x.sod.len(), 1, "{:?}", x.sod);
    assert_eq!((x.sod[0].rule.as_str(), x.sod[0].action.as_str()), ("payments", "block"));
    assert_eq!(x.sod[0].refused, ["payroll:approve-payment"]);
    assert!(!x.desired["payroll"].contains_key("approve-payment"));
    // The intern fails the role because the negated test holds.
    let y = explained(&w.app, "F2", None);
    assert_eq!(lines(role(&y.unmatched, "finance")), ["not title eq Intern = Intern (held)"]);
}

#[test]
fn issue9_explain_plans_against_what_the_store_holds_under_another_policy() {
    let w = World::new();
    w.import(&snapshot(&["S1 sam Sales Rep active"], &[]));
    w.settle();
    // The same store under the alternative policy, in which Sales also gets the warehouse.
    let config = w.app.config().clone();
    let policy = tenure_policy::parse("other.toml", &starter::other_policy(), &config, w.clock.today()).unwrap();
    let loaded = Loaded { config, config_path: PathBuf::from("tenure.toml"), config_dir: PathBuf::from(".") };
    let other = App::from_parts(loaded, policy, w.store().clone(), w.clock.clone());
    let x = explained(&other, "S1", None);
    let wh = &x.targets["warehouse"];
    assert!(!wh.held.exists);
    let changes: Vec<(OpKind, Option<&str>, Vec<String>)> =
        wh.changes.iter().map(|c| (c.kind, c.entitlement.as_deref(), c.rules.clone())).collect();
    assert_eq!(
        changes,
        [(OpKind::CreateAccount, None, vec![]), (OpKind::Grant, Some("analyst"), vec!["sales".to_string()])]
    );
    assert_eq!(wh.account.as_deref(), Some("sam"));
    assert!(x.targets["directory"].changes.is_empty());
    // `--target` narrows the explanation to one target's roles and changes.
    let only = explained(&other, "S1", Some("warehouse"));
    assert_eq!(only.targets.keys().collect::<Vec<_>>(), ["warehouse"]);
    assert!(only.matched.iter().chain(&only.unmatched).all(|r| r.grants.iter().all(|g| g.starts_with("warehouse:"))));
    assert_eq!(w.ops().values().filter(|o| o.identity == "S1" && o.target == "warehouse").count(), 0);
}

#[test]
fn issue9_explain_refuses_an_unknown_target_and_says_so_for_an_unknown_identity() {
    let w = World::new();
    let e = explain(&w.app.engine().unwrap(), "C01", Some("nope")).unwrap_err();
    assert!(e.to_string().contains("unknown target `nope`"), "{e}");
    assert!(explain(&w.app.engine().unwrap(), "ZZ", None).unwrap().is_none());
}

#[test]
fn issue9_explain_live_says_why_a_manual_target_was_not_read() {
    let w = World::new();
    let engine = w.app.engine().unwrap();
    let mut x = explain(&engine, "C01", Some("payroll")).unwrap().unwrap();
    assert!(!x.targets_read);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(tenure_engine::explain::read_targets(&engine, &mut x, std::time::Duration::from_secs(5))).unwrap();
    assert!(x.targets_read);
    let live = x.targets["payroll"].live.as_ref().unwrap();
    assert_eq!(live.error.as_deref(), Some("a manual target: there is nothing to read"));
}
