//! The LDAP schema profiles against a real slapd, checked in the directory with `ldapsearch`.
//!
//! There is no Active Directory on this machine. The `active_directory` profile is exercised
//! against slapd loaded with the test kit's AD-compatible schema (`peers::ldap::AD_SCHEMA`:
//! `user`, `group`, `computer`, `sAMAccountName`, `userPrincipalName`, `userAccountControl`,
//! `unicodePwd`, `employeeID`, `department`), over TLS as AD requires for passwords. slapd stores
//! what the profile sends without AD's semantics, so these tests check exactly what was sent and
//! read back; the exact requests per profile are unit-tested in `ldap::ops`.

use base64::Engine as _;
use ldap3::{LdapConnAsync, Mod};
use std::collections::{BTreeSet, HashSet};
use tenure_connect::ldap::LdapConnector;
use tenure_connect::{AccountSpec, Applied, Connector, ErrorKind, Request};
use tenure_core::OpKind;
use tenure_core::config::{LdapProfile, LdapSettings, TlsSettings};
use tenure_core::template::Template;
use tenure_testkit::peers::{Ldap, LdapOptions, TestCa};

fn person(account: &str, id: &str, department: &str) -> AccountSpec {
    AccountSpec {
        identity_id: id.into(),
        account: account.into(),
        given_name: Some("Ann".into()),
        family_name: Some("Lee".into()),
        email: Some(format!("{account}@example.com")),
        attributes: [("department".to_string(), department.to_string()), ("uid_number".into(), "10001".into())].into(),
    }
}

async fn apply(c: &LdapConnector, kind: OpKind, who: &AccountSpec, ent: Option<&str>) -> Applied {
    let req =
        Request { kind, entitlement: ent.map(str::to_string), account: who.clone(), new_owner: None, secret: None };
    c.apply(&req).await.unwrap_or_else(|e| panic!("{kind} {ent:?}: {e}"))
}

fn grants(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// The values of `attr` in `ldif` (one entry), as `ldapsearch -LLL` prints them.
fn ldif_values(ldif: &str, attr: &str) -> Vec<String> {
    let plain = format!("{attr}: ");
    let b64 = format!("{attr}:: ");
    ldif.lines()
        .filter_map(|l| {
            l.strip_prefix(&plain).map(str::to_string).or_else(|| {
                l.strip_prefix(&b64).map(|v| {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(v).unwrap();
                    String::from_utf8_lossy(&bytes).into_owned()
                })
            })
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn mapping(pairs: &[(&str, &str)]) -> Vec<(String, Template)> {
    pairs.iter().map(|(a, t)| ((*a).to_string(), Template::parse(t).unwrap())).collect()
}

#[tokio::test]
async fn active_directory_profile_on_slapd_with_an_ad_compatible_schema_joiner_mover_leaver() {
    let ca = TestCa::new("ad").unwrap();
    let cert = ca.server(&[]).unwrap();
    let peer = Ldap::start_with(LdapOptions { tls: Some(&cert), ad_schema: true, ..LdapOptions::default() })
        .expect("slapd must start with the AD-compatible schema and TLS");
    let settings = LdapSettings {
        url: peer.ldaps_url.clone().unwrap(),
        tls: TlsSettings { ca_file: Some(cert.ca_file.to_string_lossy().into_owned()), verify: true },
        profile: LdapProfile::ActiveDirectory,
        disabled_dn: None,
        attributes: mapping(&[("department", "{department}"), ("title", "{department} staff")]),
        ..peer.settings()
    };
    let c = LdapConnector::new("ad", &settings, 2).unwrap();
    let ann = person("ann", "E100", "Engineering");
    let search = |filter: &str| peer.ldapsearch(&peer.base_dn, filter, &[]).unwrap();

    // Joiner: one `add` with the account enabled and an initial password.
    assert_eq!(apply(&c, OpKind::CreateAccount, &ann, None).await, Applied::Changed);
    let entry = search("(sAMAccountName=ann)");
    assert!(entry.starts_with(&format!("dn: cn=ann,{}\n", peer.users_dn)), "{entry}");
    assert_eq!(sorted(ldif_values(&entry, "objectClass")), ["organizationalPerson", "person", "top", "user"]);
    assert_eq!(ldif_values(&entry, "userPrincipalName"), ["ann@example.com"]);
    assert_eq!(ldif_values(&entry, "userAccountControl"), ["512"]);
    assert_eq!(ldif_values(&entry, "employeeID"), ["E100"]);
    assert_eq!(ldif_values(&entry, "department"), ["Engineering"]);
    assert_eq!(ldif_values(&entry, "title"), ["Engineering staff"]);
    assert_eq!(ldif_values(&entry, "displayName"), ["Ann Lee"]);
    // unicodePwd: a quoted password in UTF-16LE, never the same twice.
    let raw = entry.lines().find_map(|l| l.strip_prefix("unicodePwd:: ")).expect("a unicodePwd was sent");
    let pwd = base64::engine::general_purpose::STANDARD.decode(raw).unwrap();
    assert!(pwd.len() > 4 && pwd.len() % 2 == 0 && pwd.starts_with(b"\"\0") && pwd.ends_with(b"\"\0"), "{pwd:?}");
    assert!(pwd.iter().skip(1).step_by(2).all(|b| *b == 0), "UTF-16LE of ASCII");
    assert_eq!(apply(&c, OpKind::CreateAccount, &ann, None).await, Applied::AlreadyDone);

    // Issue 10: a rotation replaces `unicodePwd` with the given secret, quoted, UTF-16LE.
    let secret = tenure_connect::NewSecret::generate();
    let rotate = Request {
        kind: OpKind::RotateCredential,
        secret: Some(secret.clone()),
        ..Request {
            kind: OpKind::CreateAccount,
            entitlement: None,
            account: ann.clone(),
            new_owner: None,
            secret: None,
        }
    };
    assert_eq!(c.apply(&rotate).await.unwrap(), Applied::Changed);
    let rotated = search("(sAMAccountName=ann)");
    let raw = rotated.lines().find_map(|l| l.strip_prefix("unicodePwd:: ")).expect("a unicodePwd is there");
    let want: Vec<u8> = format!("\"{}\"", secret.expose()).encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(raw).unwrap(), want, "replaced by the new secret");
    assert_eq!(rotated.matches("unicodePwd:: ").count(), 1, "one value: {rotated}");

    for g in ["staff", "eng"] {
        assert_eq!(apply(&c, OpKind::Grant, &ann, Some(g)).await, Applied::Changed);
    }
    let groups = peer.ldapsearch(&peer.groups_dn, "(objectClass=group)", &["cn", "sAMAccountName", "member"]).unwrap();
    assert_eq!(ldif_values(&groups, "sAMAccountName"), ["staff", "eng"], "{groups}");
    assert_eq!(
        ldif_values(&groups, "member"),
        [format!("cn=ann,{}", peer.users_dn), format!("cn=ann,{}", peer.users_dn)]
    );
    let state = c.read_account(&ann).await.unwrap().unwrap();
    assert!(state.enabled);
    assert_eq!((state.external_id.as_deref(), state.grants), (Some("E100"), grants(&["eng", "staff"])));

    // Mover: into `sales`, out of `eng` (an AD group may be empty: no placeholder).
    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("sales")).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::Revoke, &ann, Some("eng")).await, Applied::Changed);
    assert_eq!(ldif_values(&search("(&(objectClass=group)(cn=eng))"), "member"), Vec::<String>::new());
    assert_eq!(c.read_account(&ann).await.unwrap().unwrap().grants, grants(&["sales", "staff"]));

    // Leaver: memberships stripped, ACCOUNTDISABLE set, the entry stays where it is.
    assert_eq!(apply(&c, OpKind::Disable, &ann, None).await, Applied::Changed);
    let entry = search("(sAMAccountName=ann)");
    assert!(entry.starts_with(&format!("dn: cn=ann,{}\n", peer.users_dn)), "{entry}");
    assert_eq!(ldif_values(&entry, "userAccountControl"), ["514"]);
    assert_eq!(search(&format!("(member=cn=ann,{})", peer.users_dn)), "");
    let state = c.read_account(&ann).await.unwrap().unwrap();
    assert!(!state.enabled && state.grants.is_empty(), "{state:?}");
    assert_eq!(apply(&c, OpKind::Disable, &ann, None).await, Applied::AlreadyDone);

    // Someone else sets another flag (DONT_EXPIRE_PASSWORD) while the account is disabled: a
    // rehire's enable clears ACCOUNTDISABLE only.
    let (conn, mut raw) = LdapConnAsync::new(&peer.url).await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    raw.simple_bind(&peer.bind_dn, &peer.password).await.unwrap().success().unwrap();
    let dn = format!("cn=ann,{}", peer.users_dn);
    raw.modify(&dn, vec![Mod::Replace("userAccountControl", HashSet::from(["66050"]))])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(apply(&c, OpKind::Enable, &ann, None).await, Applied::Changed);
    assert_eq!(ldif_values(&search("(sAMAccountName=ann)"), "userAccountControl"), ["66048"]);
    assert!(c.read_account(&ann).await.unwrap().unwrap().enabled);
    assert_eq!(apply(&c, OpKind::Enable, &ann, None).await, Applied::AlreadyDone);

    // Computers are `user`s too in AD, and are never listed as accounts.
    let attrs = vec![
        ("objectClass", HashSet::from(["top", "person", "organizationalPerson", "user", "computer"])),
        ("cn", HashSet::from(["ws01"])),
        ("sn", HashSet::from(["ws01"])),
        ("userAccountControl", HashSet::from(["4096"])),
    ];
    raw.add(&format!("cn=ws01,{}", peer.users_dn), attrs).await.unwrap().success().unwrap();
    let listed = c.list_accounts().await.unwrap();
    assert_eq!(listed.iter().map(|a| (a.account.as_str(), a.enabled)).collect::<Vec<_>>(), [("ann", true)]);

    assert_eq!(apply(&c, OpKind::DeleteAccount, &ann, None).await, Applied::Changed);
    assert_eq!(search("(sAMAccountName=ann)"), "");
    assert!(c.read_account(&ann).await.unwrap().is_none());

    // A name AD would refuse is refused before anything is sent.
    let long = person("a-very-long-account-name", "E101", "Sales");
    let req = Request { kind: OpKind::CreateAccount, entitlement: None, account: long, new_owner: None, secret: None };
    let e = c.apply(&req).await.unwrap_err();
    assert!(e.kind == ErrorKind::Permanent && e.message.contains("20 characters"), "{e}");
}

#[tokio::test]
async fn active_directory_profile_without_tls_sends_no_password() {
    let peer = Ldap::start_with(LdapOptions { ad_schema: true, ..LdapOptions::default() }).expect("slapd must start");
    let settings = LdapSettings { profile: LdapProfile::ActiveDirectory, disabled_dn: None, ..peer.settings() };
    let c = LdapConnector::new("ad", &settings, 1).unwrap();
    let req = Request {
        kind: OpKind::CreateAccount,
        entitlement: None,
        account: person("bo", "E2", "x"),
        new_owner: None,
        secret: None,
    };
    let e = c.apply(&req).await.unwrap_err();
    assert!(e.kind == ErrorKind::Permanent && e.message.contains("only sent over TLS"), "{e}");
    assert_eq!(peer.ldapsearch(&peer.base_dn, "(sAMAccountName=bo)", &[]).unwrap(), "");
    // Issue 10: nor a rotated one.
    let rotate = Request { kind: OpKind::RotateCredential, secret: Some(tenure_connect::NewSecret::generate()), ..req };
    let e = c.apply(&rotate).await.unwrap_err();
    assert!(e.kind == ErrorKind::Permanent && e.message.contains("only over TLS"), "{e}");
}

#[tokio::test]
async fn ds389_and_posix_profiles_on_slapd() {
    // 389ds: groupOfUniqueNames with uniqueMember, the placeholder keeping an emptied group valid.
    let peer = Ldap::start().expect("slapd must start");
    let settings = LdapSettings { profile: LdapProfile::Ds389, ..peer.settings() };
    let c = LdapConnector::new("ds", &settings, 2).unwrap();
    let ann = person("ann", "E1", "Ops");
    apply(&c, OpKind::CreateAccount, &ann, None).await;
    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("ops")).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("ops")).await, Applied::AlreadyDone);
    let group = peer.ldapsearch(&peer.groups_dn, "(cn=ops)", &[]).unwrap();
    assert_eq!(sorted(ldif_values(&group, "objectClass")), ["groupOfUniqueNames", "top"]);
    assert_eq!(ldif_values(&group, "uniqueMember"), [format!("uid=ann,{}", peer.users_dn)]);
    assert_eq!(c.read_account(&ann).await.unwrap().unwrap().grants, grants(&["ops"]));
    assert_eq!(c.list_accounts().await.unwrap()[0].grants, grants(&["ops"]));
    assert_eq!(apply(&c, OpKind::Revoke, &ann, Some("ops")).await, Applied::Changed);
    let group = peer.ldapsearch(&peer.groups_dn, "(cn=ops)", &[]).unwrap();
    assert_eq!(ldif_values(&group, "uniqueMember"), std::slice::from_ref(&peer.groups_dn));
    apply(&c, OpKind::Grant, &ann, Some("ops")).await;
    assert_eq!(apply(&c, OpKind::Disable, &ann, None).await, Applied::Changed);
    let moved = peer.ldapsearch(&peer.disabled_dn, "(uid=ann)", &["uid"]).unwrap();
    assert!(moved.starts_with(&format!("dn: uid=ann,{}", peer.disabled_dn)), "{moved}");
    assert!(c.read_account(&ann).await.unwrap().is_some_and(|s| !s.enabled && s.grants.is_empty()));

    // posix: posixAccount with numbers from the mapping; posixGroup (made by an admin, with its
    // gidNumber) holding memberUid names; Tenure creates no posix groups.
    let seed = "dn: cn=wheel,ou=groups,dc=example,dc=com\nobjectClass: top\nobjectClass: posixGroup\ncn: wheel\ngidNumber: 10\n";
    let peer = Ldap::start_seeded(seed).expect("slapd must start");
    let settings = LdapSettings {
        profile: LdapProfile::Posix,
        attributes: mapping(&[("uidNumber", "{uid_number}"), ("gidNumber", "100"), ("loginShell", "/bin/bash")]),
        ..peer.settings()
    };
    let c = LdapConnector::new("unix", &settings, 2).unwrap();
    assert_eq!(apply(&c, OpKind::CreateAccount, &ann, None).await, Applied::Changed);
    let entry = peer.ldapsearch(&peer.users_dn, "(uid=ann)", &[]).unwrap();
    assert!(ldif_values(&entry, "objectClass").contains(&"posixAccount".to_string()), "{entry}");
    assert_eq!(ldif_values(&entry, "uidNumber"), ["10001"]);
    assert_eq!(ldif_values(&entry, "homeDirectory"), ["/home/ann"]);
    assert_eq!(ldif_values(&entry, "loginShell"), ["/bin/bash"]);
    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("wheel")).await, Applied::Changed);
    assert_eq!(ldif_values(&peer.ldapsearch(&peer.groups_dn, "(cn=wheel)", &[]).unwrap(), "memberUid"), ["ann"]);
    assert_eq!(c.read_account(&ann).await.unwrap().unwrap().grants, grants(&["wheel"]));
    assert_eq!(c.list_accounts().await.unwrap()[0].grants, grants(&["wheel"]));
    let req = Request {
        kind: OpKind::Grant,
        entitlement: Some("docker".into()),
        account: ann.clone(),
        new_owner: None,
        secret: None,
    };
    let e = c.apply(&req).await.unwrap_err();
    assert!(e.kind == ErrorKind::Permanent && e.message.contains("creates no groups"), "{e}");
    assert_eq!(apply(&c, OpKind::Disable, &ann, None).await, Applied::Changed);
    assert_eq!(
        ldif_values(&peer.ldapsearch(&peer.groups_dn, "(cn=wheel)", &[]).unwrap(), "memberUid"),
        Vec::<String>::new()
    );
    assert!(c.read_account(&ann).await.unwrap().is_some_and(|s| !s.enabled && s.grants.is_empty()));
}
