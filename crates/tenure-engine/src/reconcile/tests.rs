//! The correlation of one target's accounts, driven with data: the accounts as a connector
//! would read them, the holdings Tenure committed to, and the links, findings and fixes that
//! follow. The identities are a fixed roster, so each case says only what differs.
//!
//! The real-peer tests (`crates/tenure/tests/it/peers.rs`) pin the same behaviour end to end.

use super::correlate::{self, Known, shown_id};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tenure_connect::AccountState;
use tenure_core::config::Config;
use tenure_core::plan::{AccountView, Holdings};
use tenure_core::{Attrs, Entitlement, Identity, Kind, OpKind, Status};
use tenure_store::RemediationOp;

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
"#;

/// The identities every case starts from: `id username status`. E4 and E5 share a username.
const ROSTER: &[&str] =
    &["E1 ada active", "E2 bob active", "E3 cy terminated", "E4 sam active", "E5 sam active", "E6 dee suspended"];

/// The entitlements that exist in the target; anything else a holding names does not.
const EXISTING: &[&str] = &["staff", "eng", "admin", "book-club"];

/// The entitlements Tenure manages in the target (as if some role granted them); `book-club`
/// exists but is someone else's.
const MANAGED: &[&str] = &["staff", "eng", "admin"];

fn config() -> Config {
    tenure_core::config::parse("tenure.toml", CONFIG).unwrap()
}

fn roster(config: &Config) -> HashMap<String, Identity> {
    let username = config.schema.slot_of("username");
    ROSTER
        .iter()
        .map(|line| {
            let [id, name, status] = line.split(' ').collect::<Vec<_>>()[..] else { panic!("roster line `{line}`") };
            let status = match status {
                "active" => Status::Active,
                "suspended" => Status::Suspended,
                "terminated" => Status::Terminated,
                _ => panic!("status `{status}`"),
            };
            let mut attrs = Attrs::new(&config.schema);
            attrs.set(username, Some(name));
            (id.to_string(), Identity::new(id, Kind::Employee, status, attrs))
        })
        .collect()
}

/// `account correlation-id|- enabled|disabled grant...`
fn account(line: &str) -> AccountState {
    let mut words = line.split(' ');
    let account = words.next().unwrap().to_string();
    let external_id = words.next().filter(|x| *x != "-").map(str::to_string);
    let enabled = state(words.next().unwrap()).1;
    AccountState {
        account,
        external_id,
        email: None,
        enabled,
        grants: words.map(str::to_string).collect(),
        sessions: None,
    }
}

/// `identity name|- enabled|disabled|deleted grant...`: the identity's holdings in `chat`, under
/// the name Tenure created the account with (`-`: a record from before names were kept).
fn holding(line: &str) -> (String, Holdings) {
    let mut words = line.split(' ');
    let id = words.next().unwrap().to_string();
    let name = words.next().filter(|n| *n != "-").map(str::to_string);
    let (exists, enabled) = state(words.next().unwrap());
    let view = AccountView { exists, enabled, grants: words.map(str::to_string).collect(), name };
    (id, Holdings::from([("chat".to_string(), view)]))
}

fn state(word: &str) -> (bool, bool) {
    match word {
        "enabled" => (true, true),
        "disabled" => (true, false),
        "deleted" => (false, false),
        _ => panic!("account state `{word}`"),
    }
}

fn render_fix(f: &RemediationOp) -> String {
    format!(
        "fix {} {} {}{}",
        f.kind,
        f.account.as_deref().unwrap_or("-"),
        f.identity,
        f.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
    )
}

/// Correlates `accounts` against the roster with `holdings`, the identities in `busy` having
/// unfinished work in the target, and compares the links, findings and fixes with `expect`.
fn check_busy(busy: &[&str], accounts: &[&str], holdings: &[&str], expect: &[&str]) {
    check_in(&config(), busy, accounts, holdings, expect);
}

/// [`check_busy`] with `chat` configured as `config` says.
fn check_in(config: &Config, busy: &[&str], accounts: &[&str], holdings: &[&str], expect: &[&str]) {
    let target = config.target("chat").unwrap();
    let identities = roster(config);
    let holdings: HashMap<String, Holdings> = holdings.iter().map(|h| holding(h)).collect();
    let busy: HashSet<(String, String)> = busy.iter().map(|id| (id.to_string(), "chat".to_string())).collect();
    let read: Vec<AccountState> = accounts.iter().map(|a| account(a)).collect();
    let existing: HashSet<String> = EXISTING.iter().map(|e| e.to_string()).collect();
    let managed = HashMap::from([("chat".to_string(), MANAGED.iter().map(|e| e.to_string()).collect())]);
    let cases = HashMap::new();
    let known = Known { identities: &identities, holdings: &holdings, busy: &busy, managed: &managed, cases: &cases };
    let c = correlate::correlate(target, &read, &existing, known);

    let mut got: Vec<String> = c.linked.iter().map(|(account, id)| format!("linked {account} {id}")).collect();
    for f in &c.findings {
        assert_eq!(f.target, "chat");
        got.push(format!(
            "{} {} {}{}: {}",
            f.kind,
            f.account.as_deref().unwrap_or("-"),
            f.identity.as_deref().unwrap_or("-"),
            f.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default(),
            f.detail
        ));
    }
    for fix in &c.fixes {
        // A fix is always for a finding about that account, and only for a managed account.
        assert!(c.findings.iter().any(|f| f.detail == fix.detail && f.account == fix.account), "{fix:?}");
        assert!(c.linked.iter().any(|(a, id)| Some(a) == fix.account.as_ref() && *id == fix.identity), "{fix:?}");
        assert_eq!(fix.target, "chat");
        got.push(render_fix(fix));
    }
    got.extend(c.unmanaged.iter().map(|(e, n)| format!("unmanaged {e} {n}")));
    assert_eq!(got, expect, "accounts {accounts:?}\nholdings {holdings:?}");

    // What the linked accounts hold is what they were read with.
    let mut held: BTreeMap<String, BTreeSet<Entitlement>> = BTreeMap::new();
    for (name, id) in &c.linked {
        let acc = read.iter().find(|a| a.account == *name).unwrap();
        held.entry(id.clone())
            .or_default()
            .extend(acc.grants.iter().map(|g| Entitlement { target: "chat".into(), name: g.clone() }));
    }
    assert_eq!(c.held, held);
}

fn check(accounts: &[&str], holdings: &[&str], expect: &[&str]) {
    check_busy(&[], accounts, holdings, expect);
}

#[test]
fn an_account_as_tenure_left_it_has_no_finding() {
    check(&["ada E1 enabled staff eng"], &["E1 ada enabled staff eng"], &["linked ada E1"]);
    // Linked by name when the target stores no correlation id.
    check(&["ada - enabled staff"], &["E1 ada enabled staff"], &["linked ada E1"]);
    // A leaver's account, disabled and empty, as the plan left it.
    check(&["cy E3 disabled"], &["E3 cy disabled"], &["linked cy E3"]);
    // Nothing read and nothing expected.
    check(&[], &[], &[]);
}

#[test]
fn a_grant_no_rule_gives_is_drift_and_revoked() {
    check(
        &["ada E1 enabled staff admin"],
        &["E1 ada enabled staff"],
        &["linked ada E1", "drift ada E1 admin: `ada` holds `admin`, which no rule grants", "fix revoke ada E1 admin"],
    );
}

#[test]
fn issue9_a_membership_in_an_entitlement_tenure_does_not_manage_is_counted_and_left_alone() {
    check(
        &["ada E1 enabled staff book-club admin", "bob E2 enabled book-club"],
        &["E1 ada enabled staff", "E2 bob enabled"],
        &[
            "linked ada E1",
            "linked bob E2",
            "drift ada E1 admin: `ada` holds `admin`, which no rule grants",
            "fix revoke ada E1 admin",
            "unmanaged book-club 2",
        ],
    );
    // Not even a leaver's disabled account is stripped of it: the group is someone else's.
    check(&["cy E3 disabled book-club"], &["E3 cy disabled"], &["linked cy E3", "unmanaged book-club 1"]);
    // Counted for an identity with work in flight too, which is otherwise not judged.
    check_busy(
        &["E1"],
        &["ada E1 enabled book-club"],
        &["E1 ada enabled"],
        &["linked ada E1", "unmanaged book-club 1"],
    );
    // An orphan's memberships are in its finding, not counted: Tenure manages no part of it.
    check(
        &["ghost - enabled book-club"],
        &[],
        &[
            "orphan ghost -: account `ghost` (enabled, holds `book-club`) belongs to no known identity; left for a person",
        ],
    );
    // A grant Tenure recorded is its own, whatever the policy says now: not counted.
    check(&["ada E1 enabled staff old"], &["E1 ada enabled staff old"], &["linked ada E1"]);
}

#[test]
fn issue9_tenure_manages_what_a_target_declares_and_what_some_role_grants() {
    let text = format!(
        "{CONFIG}\n[[target]]\nname = \"payroll\"\nkind = \"manual\"\nowner = \"p\"\nentitlements = [\"approve\", \"view\"]\n"
    );
    let config = tenure_core::config::parse("tenure.toml", &text).unwrap();
    let policy = tenure_policy::parse(
        "policy.toml",
        "[[role]]\nid = \"r\"\nwhen = { status = \"active\" }\ngrant = [\"chat:staff\", \"payroll:view\"]\n",
        &config,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    )
    .unwrap();
    let managed = correlate::managed(&config, &policy);
    let sorted = |t: &str| -> Vec<&str> {
        let mut v: Vec<&str> = managed[t].iter().map(String::as_str).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(sorted("chat"), ["staff"]);
    assert_eq!(sorted("payroll"), ["approve", "view"]);
}

#[test]
fn a_grant_tenure_committed_to_and_the_target_lacks_is_missing_and_granted() {
    check(
        &["ada E1 enabled staff"],
        &["E1 ada enabled staff eng"],
        &["linked ada E1", "missing ada E1 eng: `ada` lacks `eng`", "fix grant ada E1 eng"],
    );
    // A group deleted by hand: SCIM (and LDAP with `create_groups`) creates it on a grant, so
    // the grant is planned again.
    check(
        &["ada E1 enabled staff"],
        &["E1 ada enabled staff ghost-group"],
        &[
            "linked ada E1",
            "missing ada E1 ghost-group: `ada` lacks `ghost-group`, which does not exist in `chat` (deleted?); \
             granting it creates it again",
            "fix grant ada E1 ghost-group",
        ],
    );
}

#[test]
fn issue15_a_deleted_entitlement_tenure_does_not_create_is_reported_as_not_in_place_without_a_fix() {
    let pg = CONFIG.replace(
        "kind = \"scim\"\nurl = \"http://127.0.0.1:9/scim/v2\"\ntoken_env = \"CHAT_SCIM_TOKEN\"",
        "kind = \"postgres\"\nurl_env = \"CHAT_URL\"",
    );
    let config = tenure_core::config::parse("tenure.toml", &pg).unwrap();
    check_in(
        &config,
        &[],
        &["ada E1 enabled staff"],
        &["E1 ada enabled staff ghost-group"],
        &[
            "linked ada E1",
            "missing ada E1 ghost-group: `ada` lacks `ghost-group`: entitlement `ghost-group` does not exist in \
             `chat` and Tenure does not create it there; the grant is not in place until a person creates it (then \
             `tenure reconcile --remediate`)",
        ],
    );
}

#[test]
fn issue15_a_scim_group_deleted_by_hand_comes_back_only_where_create_groups_allows() {
    // `create_groups = false`: a group deleted on purpose (during an incident) is not re-created
    // by `--remediate`; the finding says what a person must do.
    let off =
        CONFIG.replace("token_env = \"CHAT_SCIM_TOKEN\"", "token_env = \"CHAT_SCIM_TOKEN\"\ncreate_groups = false");
    assert_ne!(off, CONFIG);
    let config = tenure_core::config::parse("tenure.toml", &off).unwrap();
    check_in(
        &config,
        &[],
        &["ada E1 enabled staff"],
        &["E1 ada enabled staff ghost-group"],
        &[
            "linked ada E1",
            "missing ada E1 ghost-group: `ada` lacks `ghost-group`: entitlement `ghost-group` does not exist in \
             `chat` and Tenure does not create it there; the grant is not in place until a person creates it (then \
             `tenure reconcile --remediate`)",
        ],
    );
}

#[test]
fn an_account_in_the_wrong_state_is_put_back() {
    check(
        &["ada E1 enabled"],
        &["E1 ada disabled"],
        &["linked ada E1", "drift ada E1: account `ada` is enabled but should be disabled", "fix disable ada E1"],
    );
    check(
        &["ada E1 disabled staff"],
        &["E1 ada enabled staff"],
        &["linked ada E1", "missing ada E1: account `ada` is disabled but should be enabled", "fix enable ada E1"],
    );
    // A suspended identity's account re-enabled by hand is disabled again like anyone's.
    check(
        &["dee E6 enabled"],
        &["E6 dee disabled"],
        &["linked dee E6", "drift dee E6: account `dee` is enabled but should be disabled", "fix disable dee E6"],
    );
}

#[test]
fn a_terminated_identitys_enabled_account_is_an_orphan_and_disabled() {
    check(
        &["cy E3 enabled staff"],
        &["E3 cy disabled"],
        &[
            "linked cy E3",
            "orphan cy E3: account `cy` of terminated identity `E3` is enabled",
            "drift cy E3 staff: `cy` holds `staff`, which no rule grants",
            "fix disable cy E3",
            "fix revoke cy E3 staff",
        ],
    );
    // Found the same way by name.
    check(
        &["cy - enabled"],
        &["E3 cy disabled"],
        &["linked cy E3", "orphan cy E3: account `cy` of terminated identity `E3` is enabled", "fix disable cy E3"],
    );
}

#[test]
fn an_account_of_nobody_is_an_orphan_left_for_a_person() {
    check(
        &["ghost - enabled admin staff"],
        &[],
        &[
            "orphan ghost -: account `ghost` (enabled, holds `admin`, `staff`) belongs to no known identity; left for a person",
        ],
    );
    check(
        &["ghost - disabled"],
        &[],
        &["orphan ghost -: account `ghost` (disabled) belongs to no known identity; left for a person"],
    );
}

#[test]
fn a_correlation_id_naming_nobody_is_never_linked_by_name() {
    // The account has E1's name but says it belongs to someone Tenure does not know: it is not
    // E1's, so E1's own account is missing.
    check(
        &["ada E-UNKNOWN enabled admin"],
        &["E1 ada enabled staff"],
        &[
            "orphan ada -: account `ada` (enabled, holds `admin`) names identity `E-UNKNOWN`, which Tenure does not know; left for a person",
            "missing ada E1: account `ada` of `E1` is not in `chat`",
        ],
    );
}

#[test]
fn a_name_shared_by_two_identities_is_ambiguous_and_never_linked() {
    check(
        &["sam - enabled staff"],
        &[],
        &["ambiguous sam -: account `sam` matches 2 identities by name (E4, E5); not linked"],
    );
    // A recorded name breaks the tie: E4's account is `sam-4`, so `sam` can only be E5's, and
    // E5 has none. (The missing account is named by E4's current username, not the recorded
    // one: that is how `reconcile` has always reported it.)
    check(
        &["sam - enabled staff"],
        &["E4 sam-4 enabled staff"],
        &[
            "orphan sam E5: account `sam` matches identity `E5`, but Tenure has no account for it in `chat`; not linked, left for a person",
            "missing sam E4: account `sam` of `E4` is not in `chat`",
        ],
    );
    // A correlation id settles it.
    check(&["sam E5 enabled staff"], &["E5 sam enabled staff"], &["linked sam E5"]);
}

#[test]
fn an_account_that_only_claims_an_identity_is_an_orphan_naming_it() {
    // By correlation id, while Tenure manages another account for the identity.
    check(
        &["mallory E2 enabled admin", "bob E2 enabled staff"],
        &["E2 bob enabled staff"],
        &[
            "linked bob E2",
            "orphan mallory E2: account `mallory` claims identity `E2`, but Tenure manages `bob` for it in `chat`; not linked, left for a person",
        ],
    );
    // By correlation id or by name, for an identity Tenure made no account for.
    let none = "account `bob` matches identity `E2`, but Tenure has no account for it in `chat`; not linked, left for a person";
    check(&["bob E2 enabled admin"], &[], &[&format!("orphan bob E2: {none}")]);
    check(&["bob - enabled admin"], &[], &[&format!("orphan bob E2: {none}")]);
    // An account deleted by a retention sweep is no account: one of that name now is not Tenure's.
    check(&["bob - enabled"], &["E2 bob deleted"], &[&format!("orphan bob E2: {none}")]);
    // A leaver's forgotten login is reported as the leaver's, and not disabled: Tenure did not
    // create it.
    check(
        &["cy - enabled"],
        &[],
        &[
            "orphan cy E3: account `cy` of terminated identity `E3` is enabled; Tenure did not create it, so a person decides",
        ],
    );
    check(
        &["cy - disabled"],
        &[],
        &[
            "orphan cy E3: account `cy` matches identity `E3`, but Tenure has no account for it in `chat`; not linked, left for a person",
        ],
    );
}

#[test]
fn the_name_tenure_created_an_account_under_is_the_one_it_manages() {
    // E1's username is `ada` now; Tenure created `ada-old`, which stays E1's.
    check(&["ada-old - enabled staff"], &["E1 ada-old enabled staff"], &["linked ada-old E1"]);
    // And an account under the current username is then not Tenure's.
    check(
        &["ada E1 enabled staff", "ada-old E1 enabled staff"],
        &["E1 ada-old enabled staff"],
        &[
            "linked ada-old E1",
            "orphan ada E1: account `ada` claims identity `E1`, but Tenure manages `ada-old` for it in `chat`; not linked, left for a person",
        ],
    );
    // A record from before names were kept: the identity's current username is the account.
    check(&["ada E1 enabled staff"], &["E1 - enabled staff"], &["linked ada E1"]);
    check(
        &["ada2 E1 enabled"],
        &["E1 - enabled staff"],
        &[
            "orphan ada2 E1: account `ada2` matches identity `E1`, but Tenure has no account for it in `chat`; not linked, left for a person",
            "missing ada E1: account `ada` of `E1` is not in `chat`",
        ],
    );
}

#[test]
fn an_account_tenure_expects_and_the_target_lacks_is_missing() {
    check(
        &[],
        &["E2 bob enabled", "E1 ada disabled staff", "E6 dee disabled", "E3 cy deleted"],
        &[
            "missing ada E1: account `ada` of `E1` is not in `chat`",
            "missing bob E2: account `bob` of `E2` is not in `chat`",
        ],
    );
}

#[test]
fn identities_with_work_in_flight_are_linked_but_not_judged() {
    check_busy(&["E1"], &["ada E1 disabled admin"], &["E1 ada enabled staff"], &["linked ada E1"]);
    check_busy(&["E2"], &[], &["E2 bob enabled"], &[]);
    // Claims are still claims.
    check_busy(
        &["E2"],
        &["bob - enabled"],
        &[],
        &[
            "orphan bob E2: account `bob` matches identity `E2`, but Tenure has no account for it in `chat`; not linked, left for a person",
        ],
    );
}

#[test]
fn correlation_ids_from_a_target_are_shown_escaped_and_capped() {
    assert_eq!(shown_id("E-UNKNOWN"), "E-UNKNOWN");
    assert_eq!(shown_id("E1\n\u{1b}[31m"), "E1\\n\\u{1b}[31m");
    assert_eq!(shown_id(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
    check(
        &["ghost E1\u{1b}[31m enabled"],
        &[],
        &[
            "orphan ghost -: account `ghost` (enabled) names identity `E1\\u{1b}[31m`, which Tenure does not know; left for a person",
        ],
    );
}

#[test]
fn sod_findings_name_each_identity_holding_a_conflict() {
    let config = config();
    let policy = tenure_policy::parse(
        "policy.toml",
        "[[sod]]\nid = \"payments\"\nconflict = [\"chat:create\", \"chat:approve\"]\naction = \"flag\"\n",
        &config,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 21).unwrap(),
    )
    .unwrap();
    let check = |held: &[(&str, &[&str])], expect: &[&str]| {
        let held: BTreeMap<String, BTreeSet<Entitlement>> = held
            .iter()
            .map(|(id, es)| (id.to_string(), es.iter().map(|e| Entitlement::parse(e).unwrap()).collect()))
            .collect();
        let got: Vec<String> = correlate::sod(&policy, &held)
            .iter()
            .map(|f| format!("{} {} {}: {}", f.kind, f.target, f.identity.as_deref().unwrap_or("-"), f.detail))
            .collect();
        assert_eq!(got, expect, "{held:?}");
    };
    check(&[], &[]);
    check(&[("E1", &["chat:create"])], &[]);
    check(
        &[("E2", &["chat:approve", "chat:create", "chat:staff"]), ("E1", &["chat:create"])],
        &["sod chat E2: `E2` holds conflicting chat:create and chat:approve (sod rule `payments`)"],
    );
}

#[test]
fn the_guard_counts_disables_as_leavers_and_privileged_grants() {
    let fix = |identity: &str, kind: OpKind, entitlement: Option<&str>| RemediationOp {
        identity: identity.into(),
        target: "chat".into(),
        kind,
        entitlement: entitlement.map(Into::into),
        account: Some(identity.to_lowercase()),
        detail: String::new(),
    };
    let privileged: HashSet<(&str, &str)> = HashSet::from([("chat", "admin")]);
    let check = |fixes: &[RemediationOp], expect: (usize, usize, usize)| {
        let c = correlate::guard_counts(fixes, &privileged, 40);
        assert_eq!((c.leavers, c.losses, c.privileged, c.population), (expect.0, expect.1, expect.2, 40), "{fixes:?}");
    };
    check(&[], (0, 0, 0));
    check(&[fix("E1", OpKind::Disable, None), fix("E1", OpKind::Revoke, Some("staff"))], (1, 1, 0));
    check(&[fix("E1", OpKind::Revoke, Some("staff")), fix("E2", OpKind::Revoke, Some("eng"))], (0, 2, 0));
    check(&[fix("E1", OpKind::Grant, Some("admin")), fix("E2", OpKind::Grant, Some("staff"))], (0, 0, 1));
    check(&[fix("E1", OpKind::Enable, None)], (0, 0, 0));
}
