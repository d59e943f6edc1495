//! Tests of the ldap connector against a real peer.
//!
//! Every test starts its own `slapd` (a failure to start fails the test) and checks the
//! connector's answers against the directory itself, read with a plain `ldap3` client.

use ldap3::{Ldap as Raw, LdapConnAsync, Scope, SearchEntry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tenure_connect::ldap::LdapConnector;
use tenure_connect::{AccountSpec, AccountState, Applied, Capability, Connector, ErrorKind, Request};
use tenure_core::config::{LdapSettings, SecretRef};
use tenure_core::{OpKind, TargetKind};
use tenure_testkit::peers::{Ldap, free_port};

fn peer() -> Ldap {
    Ldap::start().expect("slapd must start for the LDAP connector tests")
}

fn connector(peer: &Ldap) -> LdapConnector {
    LdapConnector::new("directory", &peer.settings(), 8).unwrap()
}

fn spec(account: &str) -> AccountSpec {
    AccountSpec {
        identity_id: format!("id-{account}"),
        account: account.to_string(),
        given_name: Some(format!("Given {account}")),
        family_name: Some(format!("Family {account}")),
        email: Some(format!("{}@example.com", account.len())),
        ..AccountSpec::default()
    }
}

fn req(kind: OpKind, account: &AccountSpec, entitlement: Option<&str>) -> Request {
    Request {
        kind,
        entitlement: entitlement.map(str::to_string),
        account: account.clone(),
        new_owner: None,
        secret: None,
    }
}

async fn apply(c: &LdapConnector, kind: OpKind, account: &AccountSpec, ent: Option<&str>) -> Applied {
    c.apply(&req(kind, account, ent)).await.unwrap_or_else(|e| panic!("{kind} {:?} {ent:?}: {e}", account.account))
}

fn grants(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A plain client bound as the peer's root DN, for checking what the connector wrote.
async fn raw(peer: &Ldap) -> Raw {
    let (conn, mut ldap) = LdapConnAsync::new(&peer.url).await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(&peer.bind_dn, &peer.password).await.unwrap().success().unwrap();
    ldap
}

async fn search(ldap: &mut Raw, base: &str, scope: Scope, filter: &str) -> Vec<SearchEntry> {
    let (entries, res) = ldap.search(base, scope, filter, vec!["*"]).await.unwrap().non_error().unwrap();
    assert_eq!(res.rc, 0);
    entries.into_iter().map(SearchEntry::construct).collect()
}

/// Every entry anywhere in the directory whose `uid` equals `account` exactly.
async fn entries_named(ldap: &mut Raw, peer: &Ldap, account: &str) -> Vec<SearchEntry> {
    search(ldap, &peer.base_dn, Scope::Subtree, "(uid=*)")
        .await
        .into_iter()
        .filter(|e| e.attrs.get("uid").is_some_and(|v| v.iter().any(|u| u == account)))
        .collect()
}

/// The raw `member` values of group `cn`, or `None` when the group does not exist.
async fn members(ldap: &mut Raw, peer: &Ldap, cn: &str) -> Option<Vec<String>> {
    let groups = search(ldap, &peer.groups_dn, Scope::OneLevel, "(objectClass=groupOfNames)").await;
    groups
        .into_iter()
        .find(|g| g.attrs.get("cn").is_some_and(|v| v.iter().any(|c| c == cn)))
        .map(|g| g.attrs.get("member").cloned().unwrap_or_default())
}

fn attr<'e>(e: &'e SearchEntry, name: &str) -> Vec<&'e str> {
    e.attrs.get(name).map(|v| v.iter().map(String::as_str).collect()).unwrap_or_default()
}

#[tokio::test]
async fn lifecycle_create_grant_disable_enable_delete_reads_back() {
    let peer = peer();
    let c = connector(&peer);
    let mut ldap = raw(&peer).await;
    let alice = spec("alice");

    assert_eq!(c.read_account(&alice).await.unwrap(), None);
    assert_eq!(apply(&c, OpKind::CreateAccount, &alice, None).await, Applied::Changed);
    let state = c.read_account(&alice).await.unwrap().unwrap();
    assert_eq!(
        state,
        AccountState {
            account: "alice".into(),
            external_id: Some("id-alice".into()),
            email: Some("5@example.com".into()),
            enabled: true,
            grants: BTreeSet::new(),
            sessions: None
        }
    );
    let e = &entries_named(&mut ldap, &peer, "alice").await[0];
    assert_eq!(e.dn, format!("uid=alice,{}", peer.users_dn));
    assert_eq!(attr(e, "cn"), ["Given alice Family alice"]);
    assert_eq!(attr(e, "displayName"), ["Given alice Family alice"]);
    assert_eq!(attr(e, "sn"), ["Family alice"]);
    assert_eq!(attr(e, "givenName"), ["Given alice"]);
    assert_eq!(attr(e, "mail"), ["5@example.com"]);
    assert_eq!(attr(e, "employeeNumber"), ["id-alice"]);

    // sn is required: without a family name it falls back to the account name.
    let bare = AccountSpec { identity_id: "id-bare".into(), account: "bare".into(), ..Default::default() };
    assert_eq!(apply(&c, OpKind::CreateAccount, &bare, None).await, Applied::Changed);
    let e = &entries_named(&mut ldap, &peer, "bare").await[0];
    assert_eq!((attr(e, "sn"), attr(e, "cn"), attr(e, "mail")), (vec!["bare"], vec!["bare"], vec![]));

    for g in ["staff", "engineers"] {
        assert_eq!(apply(&c, OpKind::Grant, &alice, Some(g)).await, Applied::Changed);
    }
    assert_eq!(c.read_account(&alice).await.unwrap().unwrap().grants, grants(&["engineers", "staff"]));
    assert_eq!(c.list_entitlements().await.unwrap(), ["engineers", "staff"]);
    assert_eq!(apply(&c, OpKind::Revoke, &alice, Some("engineers")).await, Applied::Changed);
    assert_eq!(c.read_account(&alice).await.unwrap().unwrap().grants, grants(&["staff"]));

    assert_eq!(apply(&c, OpKind::Disable, &alice, None).await, Applied::Changed);
    let state = c.read_account(&alice).await.unwrap().unwrap();
    assert!(!state.enabled);
    assert_eq!(state.grants, BTreeSet::new(), "disable strips every membership");
    assert_eq!(state.external_id.as_deref(), Some("id-alice"));
    let found = entries_named(&mut ldap, &peer, "alice").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].dn, format!("uid=alice,{}", peer.disabled_dn));
    assert!(!members(&mut ldap, &peer, "staff").await.unwrap().iter().any(|m| m.contains("alice")));

    assert_eq!(apply(&c, OpKind::Enable, &alice, None).await, Applied::Changed);
    let state = c.read_account(&alice).await.unwrap().unwrap();
    assert!(state.enabled);
    assert_eq!(state.grants, BTreeSet::new());
    assert_eq!(entries_named(&mut ldap, &peer, "alice").await[0].dn, format!("uid=alice,{}", peer.users_dn));

    assert_eq!(apply(&c, OpKind::Grant, &alice, Some("staff")).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::DeleteAccount, &alice, None).await, Applied::Changed);
    assert_eq!(c.read_account(&alice).await.unwrap(), None);
    assert!(entries_named(&mut ldap, &peer, "alice").await.is_empty());
    assert!(!members(&mut ldap, &peer, "staff").await.unwrap().iter().any(|m| m.contains("alice")));
}

#[tokio::test]
async fn every_operation_applied_twice_is_already_done_without_duplicates() {
    let peer = peer();
    let c = connector(&peer);
    let mut ldap = raw(&peer).await;
    let bob = spec("bob");
    let other = spec("carol");
    apply(&c, OpKind::CreateAccount, &other, None).await;
    apply(&c, OpKind::Grant, &other, Some("staff")).await;

    let steps: &[(OpKind, Option<&str>)] = &[
        (OpKind::CreateAccount, None),
        (OpKind::Grant, Some("staff")),
        (OpKind::Grant, Some("new-group")),
        (OpKind::Revoke, Some("staff")),
        (OpKind::Disable, None),
        (OpKind::Enable, None),
        (OpKind::Disable, None),
        // Creating an account that exists disabled must not make a second entry.
        (OpKind::CreateAccount, None),
        (OpKind::Enable, None),
        (OpKind::DeleteAccount, None),
    ];
    for &(kind, ent) in steps {
        let first = apply(&c, kind, &bob, ent).await;
        let second = apply(&c, kind, &bob, ent).await;
        let expect_first = if kind == OpKind::CreateAccount && !c.read_account(&bob).await.unwrap().unwrap().enabled {
            Applied::AlreadyDone
        } else {
            Applied::Changed
        };
        assert_eq!((first, second), (expect_first, Applied::AlreadyDone), "{kind} {ent:?}");
        let entries = entries_named(&mut ldap, &peer, "bob").await;
        assert!(entries.len() <= 1, "{kind} {ent:?} left {} entries for bob", entries.len());
        for g in ["staff", "new-group"] {
            let ms = members(&mut ldap, &peer, g).await.unwrap_or_default();
            let bobs = ms.iter().filter(|m| m.to_lowercase().starts_with("uid=bob,")).count();
            assert!(bobs <= 1, "{kind} {ent:?}: bob is in `{g}` {bobs} times");
        }
    }
    let ms = members(&mut ldap, &peer, "staff").await.unwrap();
    assert_eq!(ms, [format!("uid=carol,{}", peer.users_dn)], "carol is untouched");

    // Operations on an account that never existed.
    let ghost = spec("ghost");
    for (kind, ent) in [
        (OpKind::Revoke, Some("staff")),
        (OpKind::Revoke, Some("no-such-group")),
        (OpKind::Disable, None),
        (OpKind::DeleteAccount, None),
    ] {
        assert_eq!(apply(&c, kind, &ghost, ent).await, Applied::AlreadyDone, "{kind} {ent:?}");
    }
    let e = c.apply(&req(OpKind::Enable, &ghost, None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
}

#[tokio::test]
async fn revoking_the_last_member_keeps_the_group_with_a_placeholder_never_reported() {
    let peer = peer();
    let c = connector(&peer);
    let mut ldap = raw(&peer).await;
    let dave = spec("dave");
    apply(&c, OpKind::CreateAccount, &dave, None).await;
    apply(&c, OpKind::Grant, &dave, Some("solo")).await;
    assert_eq!(apply(&c, OpKind::Revoke, &dave, Some("solo")).await, Applied::Changed);
    assert_eq!(members(&mut ldap, &peer, "solo").await.unwrap(), [c.placeholder().to_string()]);
    assert_eq!(c.list_entitlements().await.unwrap(), ["solo"]);
    assert_eq!(c.read_account(&dave).await.unwrap().unwrap().grants, BTreeSet::new());
    let all = c.list_accounts().await.unwrap();
    assert_eq!(all.iter().map(|a| a.account.as_str()).collect::<Vec<_>>(), ["dave"]);
    assert!(all[0].grants.is_empty());

    // The group works as before: grant, revoke again, and disable with the group as last member.
    assert_eq!(apply(&c, OpKind::Grant, &dave, Some("solo")).await, Applied::Changed);
    assert_eq!(c.read_account(&dave).await.unwrap().unwrap().grants, grants(&["solo"]));
    assert_eq!(apply(&c, OpKind::Revoke, &dave, Some("solo")).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::Revoke, &dave, Some("solo")).await, Applied::AlreadyDone);
    apply(&c, OpKind::Grant, &dave, Some("other")).await;
    assert_eq!(apply(&c, OpKind::Disable, &dave, None).await, Applied::Changed);
    assert_eq!(members(&mut ldap, &peer, "other").await.unwrap(), [c.placeholder().to_string()]);
}

/// Names that break naive DN and filter building. They are chosen not to collide under the
/// directory's own matching (case-insensitive, insignificant spaces): " lead" and "lead" are one
/// `uid` to OpenLDAP.
const HOSTILE: &[&str] = &[
    "O'Brien, Seán",
    "Zoë+Ünal",
    "#hash",
    " lead",
    "trail ",
    "李小龍",
    "a=b;c<d>e\\f\"g",
    "x)(uid=*",
    "star*",
    "uid=evil,ou=people,dc=example,dc=com",
    "\\2C",
];

#[tokio::test]
async fn hostile_names_survive_the_whole_lifecycle() {
    let peer = peer();
    let c = connector(&peer);
    let mut ldap = raw(&peer).await;
    let group = |n: &str| format!("g {n}");
    let specs: Vec<AccountSpec> = HOSTILE
        .iter()
        .map(|n| AccountSpec {
            identity_id: format!("id {n}"),
            account: n.to_string(),
            given_name: Some(format!("{n} given")),
            family_name: Some(n.to_string()),
            email: None,
            ..AccountSpec::default()
        })
        .collect();

    for s in &specs {
        assert_eq!(apply(&c, OpKind::CreateAccount, s, None).await, Applied::Changed, "{:?}", s.account);
        assert_eq!(apply(&c, OpKind::CreateAccount, s, None).await, Applied::AlreadyDone, "{:?}", s.account);
        for g in [group(&s.account), "shared, +team".to_string()] {
            assert_eq!(apply(&c, OpKind::Grant, s, Some(&g)).await, Applied::Changed, "{:?} {g:?}", s.account);
            assert_eq!(apply(&c, OpKind::Grant, s, Some(&g)).await, Applied::AlreadyDone, "{:?} {g:?}", s.account);
        }
    }
    // Exactly one entry per name, holding exactly the given values.
    let mut expected = BTreeMap::new();
    for s in &specs {
        let found = entries_named(&mut ldap, &peer, &s.account).await;
        assert_eq!(found.len(), 1, "{:?}", s.account);
        assert_eq!(attr(&found[0], "sn"), [s.account.as_str()]);
        assert_eq!(attr(&found[0], "employeeNumber"), [s.identity_id.as_str()]);
        let state = c.read_account(s).await.unwrap().unwrap_or_else(|| panic!("{:?} not read back", s.account));
        let want = AccountState {
            account: s.account.clone(),
            external_id: Some(s.identity_id.clone()),
            email: None,
            enabled: true,
            grants: [group(&s.account), "shared, +team".to_string()].into(),
            sessions: None,
        };
        assert_eq!(state, want);
        expected.insert(s.account.clone(), want);
    }
    let listed: BTreeMap<String, AccountState> =
        c.list_accounts().await.unwrap().into_iter().map(|a| (a.account.clone(), a)).collect();
    assert_eq!(listed, expected);
    let mut groups: Vec<String> = specs.iter().map(|s| group(&s.account)).collect();
    groups.push("shared, +team".into());
    groups.sort();
    assert_eq!(c.list_entitlements().await.unwrap(), groups);
    assert_eq!(members(&mut ldap, &peer, "shared, +team").await.unwrap().len(), HOSTILE.len());

    for s in &specs {
        assert_eq!(apply(&c, OpKind::Disable, s, None).await, Applied::Changed, "{:?}", s.account);
        let state = c.read_account(s).await.unwrap().unwrap();
        assert!(!state.enabled && state.grants.is_empty(), "{:?}: {state:?}", s.account);
        assert_eq!(state.account, s.account);
    }
    assert_eq!(members(&mut ldap, &peer, "shared, +team").await.unwrap(), [c.placeholder().to_string()]);
    assert!(c.list_accounts().await.unwrap().iter().all(|a| !a.enabled && a.grants.is_empty()));

    for s in &specs {
        assert_eq!(apply(&c, OpKind::Enable, s, None).await, Applied::Changed, "{:?}", s.account);
        assert!(c.read_account(s).await.unwrap().unwrap().enabled, "{:?}", s.account);
        assert_eq!(apply(&c, OpKind::Revoke, s, Some(&group(&s.account))).await, Applied::AlreadyDone);
    }
    for s in &specs {
        assert_eq!(apply(&c, OpKind::DeleteAccount, s, None).await, Applied::Changed, "{:?}", s.account);
        assert_eq!(c.read_account(s).await.unwrap(), None, "{:?}", s.account);
        assert!(entries_named(&mut ldap, &peer, &s.account).await.is_empty());
    }
    assert!(c.list_accounts().await.unwrap().is_empty());
}

#[tokio::test]
async fn list_accounts_pages_and_maps_every_membership() {
    let peer = peer();
    let mut settings = peer.settings();
    settings.page_size = 7;
    let c = LdapConnector::new("directory", &settings, 4).unwrap();
    let mut expected: BTreeMap<String, AccountState> = BTreeMap::new();
    for i in 0..60 {
        let s = spec(&format!("user{i:03}"));
        apply(&c, OpKind::CreateAccount, &s, None).await;
        let mut held = BTreeSet::new();
        for g in 0..6 {
            if i % (g + 2) == 0 {
                let name = format!("group{g}");
                apply(&c, OpKind::Grant, &s, Some(&name)).await;
                held.insert(name);
            }
        }
        let enabled = i % 5 != 0;
        if !enabled {
            apply(&c, OpKind::Disable, &s, None).await;
            held.clear();
        }
        let state = AccountState {
            account: s.account.clone(),
            external_id: Some(s.identity_id.clone()),
            email: Some("7@example.com".into()),
            enabled,
            grants: held,
            sessions: None,
        };
        assert_eq!(c.read_account(&s).await.unwrap().as_ref(), Some(&state));
        expected.insert(s.account.clone(), state);
    }
    // Things the connector must not report: an entry not named by uid, a member DN outside the
    // account containers, and a member DN written in another case and spacing (which is the
    // same account to the directory, and must count).
    let mut ldap = raw(&peer).await;
    let legacy = format!("cn=legacy,{}", peer.users_dn);
    let attrs = vec![("objectClass", ["inetOrgPerson"].into()), ("cn", ["legacy"].into()), ("sn", ["legacy"].into())];
    ldap.add(&legacy, attrs).await.unwrap().success().unwrap();
    let outsider = format!("uid=user001,{}", peer.base_dn);
    let respelled = format!("UID=User001 , {}", peer.users_dn.to_uppercase());
    let group = format!("cn=extra,{}", peer.groups_dn);
    let attrs = vec![
        ("objectClass", ["groupOfNames"].into()),
        ("cn", ["extra"].into()),
        ("member", [outsider.as_str(), respelled.as_str(), legacy.as_str()].into()),
    ];
    ldap.add(&group, attrs).await.unwrap().success().unwrap();
    expected.get_mut("user001").unwrap().grants.insert("extra".into());

    let listed: BTreeMap<String, AccountState> =
        c.list_accounts().await.unwrap().into_iter().map(|a| (a.account.clone(), a)).collect();
    assert_eq!(listed, expected);
    let mut groups: Vec<String> = (0..6).map(|g| format!("group{g}")).collect();
    groups.push("extra".into());
    groups.sort();
    assert_eq!(c.list_entitlements().await.unwrap(), groups);
}

/// The reconciliation target (P6) at full size: 100,000 accounts and 200,000 memberships, every
/// one listed with its grants (paging and group assembly are complete). How long it takes is a
/// benchmark's business (BENCHMARKS.md), never a test's.
#[tokio::test]
async fn list_accounts_of_100k_accounts_and_200k_memberships_is_complete() {
    const ACCOUNTS: usize = 100_000;
    const GROUPS: usize = 200;
    let mut ldif = String::with_capacity(ACCOUNTS * 260);
    let people = "ou=people,dc=example,dc=com";
    for i in 0..ACCOUNTS {
        ldif.push_str(&format!(
            "dn: uid=u{i},{people}\nobjectClass: inetOrgPerson\nuid: u{i}\ncn: User {i}\nsn: {i}\nemployeeNumber: e{i}\n\n"
        ));
    }
    // Every account is in two groups: 200,000 member values.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); GROUPS];
    for i in 0..ACCOUNTS {
        members[i % GROUPS].push(i);
        members[(i / GROUPS + i) % GROUPS].push(i);
    }
    for (g, ms) in members.iter().enumerate() {
        ldif.push_str(&format!("dn: cn=g{g},ou=groups,dc=example,dc=com\nobjectClass: groupOfNames\ncn: g{g}\n"));
        let mut seen = BTreeSet::new();
        for m in ms {
            if seen.insert(*m) {
                ldif.push_str(&format!("member: uid=u{m},{people}\n"));
            }
        }
        ldif.push('\n');
    }
    let expected_memberships: usize = members.iter().map(|ms| ms.iter().collect::<BTreeSet<_>>().len()).sum();
    let peer = Ldap::start_seeded(&ldif).expect("slapd must start with the seed");
    let c = connector(&peer);

    let accounts = c.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), ACCOUNTS);
    assert_eq!(accounts.iter().map(|a| a.grants.len()).sum::<usize>(), expected_memberships);
    assert!(expected_memberships >= 199_000, "{expected_memberships}");
    let u7 = accounts.iter().find(|a| a.account == "u7").unwrap();
    assert_eq!(u7.external_id.as_deref(), Some("e7"));
    assert_eq!(u7.grants, grants(&["g7"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_grants_to_a_new_group_all_land_once() {
    let peer = peer();
    let c = Arc::new(connector(&peer));
    let specs: Vec<AccountSpec> = (0..40).map(|i| spec(&format!("p{i}"))).collect();
    for kind in [OpKind::CreateAccount, OpKind::Grant] {
        let mut tasks = tokio::task::JoinSet::new();
        for s in &specs {
            let (c, r) = (c.clone(), req(kind, s, Some("crowd")));
            tasks.spawn(async move { c.apply(&r).await });
        }
        while let Some(done) = tasks.join_next().await {
            assert_eq!(done.unwrap().unwrap(), Applied::Changed, "{kind}");
        }
    }
    let mut ldap = raw(&peer).await;
    let ms = members(&mut ldap, &peer, "crowd").await.unwrap();
    assert_eq!(ms.len(), specs.len());
    assert_eq!(ms.iter().collect::<BTreeSet<_>>().len(), specs.len());
}

#[tokio::test]
async fn errors_are_classified_and_never_show_the_password() {
    let s = spec("erin");
    // Nothing listens: transient, for every kind of call.
    let port = free_port().unwrap();
    let nowhere = LdapSettings {
        url: format!("ldap://127.0.0.1:{port}/"),
        bind_dn: "cn=admin,dc=example,dc=com".into(),
        password: SecretRef::None,
        users_dn: "ou=people,dc=example,dc=com".into(),
        groups_dn: "ou=groups,dc=example,dc=com".into(),
        disabled_dn: Some("ou=disabled,dc=example,dc=com".into()),
        page_size: 100,
        ..LdapSettings::default()
    };
    let c = LdapConnector::new("directory", &nowhere, 2).unwrap();
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &s, None)).await.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(c.read_account(&s).await.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(c.list_accounts().await.unwrap_err().kind, ErrorKind::Transient);
    assert_eq!(c.list_entitlements().await.unwrap_err().kind, ErrorKind::Transient);

    let peer = peer();
    // A wrong password: permanent, and neither password appears in the message.
    let wrong = peer.password_file.with_file_name("wrong-pw");
    std::fs::write(&wrong, "not-the-password-42\n").unwrap();
    let mut bad = peer.settings();
    bad.password = SecretRef::File(wrong.to_string_lossy().into_owned());
    let e = LdapConnector::new("directory", &bad, 2).unwrap().read_account(&s).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("invalidCredentials"), "{e}");
    assert!(!e.message.contains("not-the-password-42") && !e.message.contains(&peer.password), "{e}");

    // A missing secret is reported when the connector is built.
    let mut unset = peer.settings();
    unset.password = SecretRef::Env("TENURE_TEST_SURELY_UNSET_LDAP_PW".into());
    let Err(e) = LdapConnector::new("directory", &unset, 2) else { panic!("missing secret accepted") };
    assert_eq!(e.kind, ErrorKind::Permanent);

    // Schema and naming problems are permanent.
    let c = connector(&peer);
    let mut bad_mail = spec("frank");
    bad_mail.email = Some("fränk@exämple.com".into()); // mail is IA5String: ASCII only
    let e = c.apply(&req(OpKind::CreateAccount, &bad_mail, None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    let mut elsewhere = peer.settings();
    elsewhere.users_dn = "ou=nowhere,dc=example,dc=com".into();
    let e = LdapConnector::new("directory", &elsewhere, 2).unwrap().list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    let e = c.apply(&req(OpKind::RevokeSessions, &s, None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    let e = c.apply(&req(OpKind::CreateAccount, &spec(" "), None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    let mut bad_dn = peer.settings();
    bad_dn.users_dn = "not a dn".into();
    assert!(LdapConnector::new("directory", &bad_dn, 2).is_err());

    // The server goes away under a connector that was working: transient.
    assert_eq!(apply(&c, OpKind::CreateAccount, &s, None).await, Applied::Changed);
    let (pid, dir) = (peer.pid(), peer.password_file.parent().unwrap().to_path_buf());
    drop(peer);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "slapd outlived its peer");
    assert!(!dir.exists(), "the peer's temp dir outlived it");
    let e = c.read_account(&s).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    let e = c.apply(&req(OpKind::Grant, &s, Some("staff"))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
}

#[test]
fn capabilities_match_the_target_kind() {
    let settings = LdapSettings {
        url: "ldap://127.0.0.1:1/".into(),
        bind_dn: "cn=admin,dc=example,dc=com".into(),
        password: SecretRef::None,
        users_dn: "ou=people,dc=example,dc=com".into(),
        groups_dn: "ou=groups,dc=example,dc=com".into(),
        disabled_dn: Some("ou=disabled,dc=example,dc=com".into()),
        page_size: 500,
        ..LdapSettings::default()
    };
    let c = LdapConnector::new("directory", &settings, 1).unwrap();
    let caps = c.capabilities();
    for &op in OpKind::ALL {
        if let Some(cap) = Capability::for_op(op) {
            assert_eq!(caps.contains(&cap), TargetKind::Ldap.supports(op), "{op}");
        }
    }
    for cap in [Capability::ListAccounts, Capability::ListGrants, Capability::ReadBack] {
        assert!(caps.contains(&cap), "{cap:?}");
    }
}

#[tokio::test]
async fn issue6_a_url_with_credentials_never_reaches_an_error() {
    let port = free_port().unwrap();
    let settings = |url: String| LdapSettings {
        url,
        bind_dn: "cn=admin,dc=example,dc=com".into(),
        password: SecretRef::None,
        users_dn: "ou=people,dc=example,dc=com".into(),
        groups_dn: "ou=groups,dc=example,dc=com".into(),
        disabled_dn: Some("ou=disabled,dc=example,dc=com".into()),
        page_size: 100,
        ..LdapSettings::default()
    };
    // Unencoded, a `/` in the password makes the text no URL: refused when the connector is built.
    let Err(e) = LdapConnector::new("directory", &settings(format!("ldap://admin:pa/ss@127.0.0.1:{port}")), 1) else {
        panic!("an unparseable url was accepted")
    };
    assert_eq!(e.kind, ErrorKind::Permanent);
    assert!(e.message.contains("not a valid URL") && !e.message.contains("pa/ss"), "{e}");
    // Encoded, it parses (the config loader refuses it; a connector built directly must not
    // repeat it): errors show the URL without its userinfo.
    let c = LdapConnector::new("directory", &settings(format!("ldap://admin:pa%2Fss@127.0.0.1:{port}/")), 1).unwrap();
    let e = c.read_account(&spec("erin")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.message.contains(&format!("connecting to `ldap://127.0.0.1:{port}/`")), "{e}");
    assert!(!e.message.contains("pa%2Fss") && !e.message.contains("admin:"), "{e}");
    assert!(!format!("{c:?}").contains("pa%2Fss"), "{c:?}");
}

/// `update_attributes` against slapd: only the mapped attributes that differ are replaced (on a
/// disabled entry too, where it lives under `disabled_dn`), an attribute that should be absent
/// goes, the naming attribute and the correlation id stay, again is already done, and a missing
/// account is transient.
#[tokio::test]
async fn update_attributes_replaces_what_differs_in_place_and_never_renames() {
    let peer = peer();
    let mut settings = peer.settings();
    settings.attributes = vec![("title".into(), tenure_core::template::Template::parse("{title}").unwrap())];
    let c = LdapConnector::new("directory", &settings, 4).unwrap();
    let ann = AccountSpec { attributes: [("title".to_string(), "Engineer".to_string())].into(), ..spec("ann") };
    apply(&c, OpKind::CreateAccount, &ann, None).await;
    assert_eq!(apply(&c, OpKind::UpdateAttributes, &ann, None).await, Applied::AlreadyDone);
    apply(&c, OpKind::Disable, &ann, None).await;
    let moved = AccountSpec {
        family_name: Some("Grey".into()),
        email: None,
        attributes: [("title".to_string(), "Lead".to_string())].into(),
        ..ann.clone()
    };
    assert_eq!(apply(&c, OpKind::UpdateAttributes, &moved, None).await, Applied::Changed);
    let mut ldap = raw(&peer).await;
    let entries = entries_named(&mut ldap, &peer, "ann").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert!(e.dn.starts_with("uid=ann,ou=disabled,"), "{}", e.dn);
    let one = |a: &str| e.attrs.get(a).cloned().unwrap_or_default();
    assert_eq!(one("title"), ["Lead"]);
    assert_eq!(one("sn"), ["Grey"]);
    assert_eq!(one("cn"), ["Given ann Grey"]);
    assert_eq!(one("displayName"), ["Given ann Grey"]);
    assert_eq!(one("mail"), Vec::<String>::new(), "an email the identity no longer has is removed");
    assert_eq!(one("employeeNumber"), ["id-ann"]);
    assert_eq!(one("uid"), ["ann"]);
    let live = c.read_attributes(&moved).await.unwrap().unwrap();
    let desired =
        tenure_core::attributes::desired(&tenure_core::config::TargetSettings::Ldap(settings), |n| moved.lookup(n));
    assert_eq!(tenure_core::attributes::changes(&desired, &live), vec![]);
    assert_eq!(apply(&c, OpKind::UpdateAttributes, &moved, None).await, Applied::AlreadyDone);
    let err = c.apply(&req(OpKind::UpdateAttributes, &spec("nobody"), None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
}

#[tokio::test]
async fn issue15_a_listing_past_max_listing_items_or_bytes_fails_and_the_connector_still_works() {
    let peer = peer();
    let c = connector(&peer);
    for i in 0..60 {
        apply(&c, OpKind::CreateAccount, &spec(&format!("cap{i:02}")), None).await;
    }
    let capped = |items: usize, bytes: usize| {
        let mut settings = peer.settings();
        settings.page_size = 7;
        settings.listing =
            tenure_core::config::ListingLimits { max_items: items, max_bytes: bytes, ..Default::default() };
        LdapConnector::new("directory", &settings, 1).unwrap()
    };
    // Sixty accounts are more than 20 entries, and more than 4 KiB.
    let small = capped(20, 1 << 30);
    let e = small.list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("directory"), "the target is named: {e}");
    assert!(e.message.contains("more than 20 entries (`max_listing_items` = 20); raise `max_listing_items`"), "{e}");
    // The connection given up on midway was retired, not reused with its search unfinished: the
    // next request opens a new one, and works.
    assert_eq!(small.connections_opened(), 1);
    assert!(small.read_account(&spec("cap00")).await.unwrap().is_some());
    assert_eq!(small.connections_opened(), 2, "the abandoned connection was replaced");
    assert!(small.read_account(&spec("cap01")).await.unwrap().is_some());
    assert_eq!(small.connections_opened(), 2, "a healthy connection is kept");
    let e = capped(1_000_000, 4096).list_accounts().await.unwrap_err();
    assert!(e.message.contains("raise `max_listing_bytes`"), "{e}");
    assert_eq!(capped(1_000_000, 1 << 30).list_accounts().await.unwrap().len(), 60);
}
