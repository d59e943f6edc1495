//! Whose an account is, decided before anything is written, and an account found where it is:
//! on a real slapd and scim2-server, and on `fake_scim` for a server that answers a `userName`
//! filter with someone else's user first.
//!
//! - A create never adopts an account it did not make: an entry or user of the name carrying
//!   no correlation id is handed back as `NotOwned`, unchanged (a hand-made entry keeps its
//!   attacker-chosen password and is given nothing).
//! - A leaver's account renamed (`modrdn`), moved to another OU, or whose SCIM `userName` an
//!   admin changed is found by its correlation id and disabled there: it no longer binds, or is
//!   `active = false`.
//! - A user of another identity's is never PATCHed, PUT or DELETEd.

use crate::req;
use crate::scim::fake_scim::{FakeScim, Reply};
use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashSet;
use tenure_connect::ldap::LdapConnector;
use tenure_connect::scim::ScimConnector;
use tenure_connect::{AccountSpec, Applied, Connector, ErrorKind};
use tenure_core::OpKind;
use tenure_core::config::{ScimSettings, SecretRef};
use tenure_testkit::peers::{Ldap, Scim};

const ATTACKER_PASSWORD: &str = "chosen-by-the-attacker-1";

fn spec(account: &str, identity: &str) -> AccountSpec {
    AccountSpec {
        identity_id: identity.into(),
        account: account.into(),
        given_name: Some("Joana".into()),
        family_name: Some("Silva".into()),
        email: Some(format!("{account}@example.com")),
        ..AccountSpec::default()
    }
}

// ---- LDAP ----

async fn raw(peer: &Ldap) -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::new(&peer.url).await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(&peer.bind_dn, &peer.password).await.unwrap().success().unwrap();
    ldap
}

/// Whether a simple bind as `dn` with `password` succeeds (what `ldapwhoami` checks).
async fn binds(peer: &Ldap, dn: &str, password: &str) -> bool {
    let (conn, mut ldap) = LdapConnAsync::new(&peer.url).await.unwrap();
    tokio::spawn(async move { conn.drive().await });
    ldap.simple_bind(dn, password).await.is_ok_and(|r| r.rc == 0)
}

async fn entry(ldap: &mut ldap3::Ldap, dn: &str) -> Option<SearchEntry> {
    let ldap3::SearchResult(entries, res) = ldap.search(dn, Scope::Base, "(objectClass=*)", vec!["*"]).await.unwrap();
    if res.rc == 32 {
        return None;
    }
    entries.into_iter().next().map(SearchEntry::construct)
}

async fn set_password(ldap: &mut ldap3::Ldap, dn: &str, password: &str) {
    let value = HashSet::from([password.as_bytes().to_vec()]);
    ldap.modify(dn, vec![Mod::Replace(b"userPassword".to_vec(), value)]).await.unwrap().success().unwrap();
}

async fn members(ldap: &mut ldap3::Ldap, group_dn: &str) -> Vec<String> {
    entry(ldap, group_dn).await.and_then(|e| e.attrs.get("member").cloned()).unwrap_or_default()
}

fn ldap_peer() -> Ldap {
    Ldap::start_seeded(&format!(
        "dn: uid=hmade99,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: hmade99
cn: hand made
sn: made
userPassword: {ATTACKER_PASSWORD}

dn: uid=taken,ou=disabled,dc=example,dc=com
objectClass: inetOrgPerson
uid: taken
cn: someone else
sn: else
employeeNumber: E999999

dn: ou=contractors,dc=example,dc=com
objectClass: organizationalUnit
ou: contractors
"
    ))
    .expect("slapd must start")
}

#[tokio::test]
async fn issue15_ldap_create_never_adopts_a_hand_made_entry_and_writes_nothing_to_another_identitys() {
    let peer = ldap_peer();
    let c = LdapConnector::new("directory", &peer.settings(), 4).unwrap();
    let mut ldap = raw(&peer).await;
    let hmade_dn = format!("uid=hmade99,{}", peer.users_dn);

    // A joiner whose login is the hand-made entry's: not adopted, nothing changed.
    let joiner = spec("hmade99", "E000099");
    match c.apply(&req(OpKind::CreateAccount, &joiner, None)).await.unwrap() {
        Applied::NotOwned(found) => {
            assert_eq!((found.account.as_str(), found.external_id.as_deref()), ("hmade99", None), "{found:?}");
        }
        other => panic!("a hand-made entry must not be adopted: {other:?}"),
    }
    let e = entry(&mut ldap, &hmade_dn).await.unwrap();
    assert!(!e.attrs.contains_key("employeeNumber"), "{e:?}");
    assert!(binds(&peer, &hmade_dn, ATTACKER_PASSWORD).await, "the entry is left as it was");

    // An entry of another identity's, under the same name disabled: refused, untouched.
    let e = c.apply(&req(OpKind::CreateAccount, &spec("taken", "E000100"), None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("E999999"), "{e}");
    assert!(entry(&mut ldap, &format!("uid=taken,{}", peer.users_dn)).await.is_none());

    // Enable and grant of another identity's entry are refused before anything is written.
    let enable = c.apply(&req(OpKind::Enable, &spec("taken", "E000100"), None)).await.unwrap_err();
    assert!(enable.message.contains("E999999") && enable.message.contains("nothing was changed"), "{enable}");
    assert!(entry(&mut ldap, &format!("uid=taken,{}", peer.disabled_dn)).await.is_some(), "not moved back");
    let grant = c.apply(&req(OpKind::Grant, &spec("taken", "E000100"), Some("staff"))).await.unwrap_err();
    assert!(grant.message.contains("E999999"), "{grant}");
    assert!(entry(&mut ldap, &format!("cn=staff,{}", peer.groups_dn)).await.is_none(), "no group made for it");

    // The entry Tenure made itself is its own: a second create is already done.
    let own = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &own, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &own, None)).await.unwrap(), Applied::AlreadyDone);
}

/// Creates `jsilva1` (E000001) with a password and `staff`, then lets `by_hand` rename or
/// move it; the leaver's disable must find it by `employeeNumber` and leave it unable to bind.
async fn leaver_after(by_hand: impl AsyncFnOnce(&mut ldap3::Ldap, &str) -> String) {
    let peer = ldap_peer();
    let c = LdapConnector::new("directory", &peer.settings(), 4).unwrap();
    let mut ldap = raw(&peer).await;
    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Grant, &jsilva, Some("staff"))).await.unwrap(), Applied::Changed);
    let dn = format!("uid=jsilva1,{}", peer.users_dn);
    set_password(&mut ldap, &dn, "the-users-own-pw-1").await;

    let moved = by_hand(&mut ldap, &dn).await;
    assert!(binds(&peer, &moved, "the-users-own-pw-1").await, "the moved entry binds before the leaver");
    let before = c.read_account(&jsilva).await.unwrap().expect("found by employeeNumber");
    assert!(before.enabled, "{before:?}");

    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Revoke, &jsilva, Some("staff"))).await.unwrap(), Applied::AlreadyDone);
    assert!(!binds(&peer, &moved, "the-users-own-pw-1").await, "the old place is gone");
    let after = c.read_account(&jsilva).await.unwrap().expect("still found by employeeNumber");
    assert!(!after.enabled && after.grants.is_empty(), "{after:?}");
    let leaf = moved.split(',').next().unwrap();
    let disabled = format!("{leaf},{}", peer.disabled_dn);
    let e = entry(&mut ldap, &disabled).await.expect("moved into disabled_dn under its own name");
    assert!(!e.attrs.contains_key("userPassword"), "{e:?}");
    assert!(!binds(&peer, &disabled, "the-users-own-pw-1").await);
    let staff = members(&mut ldap, &format!("cn=staff,{}", peer.groups_dn)).await;
    assert!(!staff.iter().any(|m| m.contains("jsilva")), "{staff:?}");
    // Again: already done, where it is now.
    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::AlreadyDone);
}

#[tokio::test]
async fn issue15_ldap_a_leaver_renamed_by_hand_is_found_by_employee_number_and_disabled() {
    leaver_after(async |ldap: &mut ldap3::Ldap, dn: &str| {
        ldap.modifydn(dn, "uid=jsilva1-old", true, None).await.unwrap().success().unwrap();
        "uid=jsilva1-old,ou=people,dc=example,dc=com".to_string()
    })
    .await;
}

#[tokio::test]
async fn issue15_ldap_a_leaver_moved_to_another_ou_by_hand_is_found_by_employee_number_and_disabled() {
    leaver_after(async |ldap: &mut ldap3::Ldap, dn: &str| {
        let ou = "ou=contractors,dc=example,dc=com";
        ldap.modifydn(dn, "uid=jsilva1", true, Some(ou)).await.unwrap().success().unwrap();
        format!("uid=jsilva1,{ou}")
    })
    .await;
}

// ---- SCIM, against the real scim2-server ----

async fn scim_peer() -> Scim {
    tokio::task::spawn_blocking(Scim::start).await.unwrap().expect("scim2-server must start")
}

struct RawScim {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl RawScim {
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut r = self.client.request(method, format!("{}/{path}", self.url)).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn user(&self, id: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, &format!("Users/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

#[tokio::test]
async fn issue15_scim_create_never_adopts_a_hand_made_user() {
    let peer = scim_peer().await;
    let c = ScimConnector::new("chat", &peer.settings(), 4).unwrap();
    let raw = RawScim { client: reqwest::Client::new(), url: peer.url(), token: peer.token().to_string() };
    let (status, made) = raw
        .send(
            reqwest::Method::POST,
            "Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hmade99",
                        "active": true, "password": ATTACKER_PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let id = made["id"].as_str().unwrap().to_string();

    let joiner = spec("hmade99", "E000099");
    match c.apply(&req(OpKind::CreateAccount, &joiner, None)).await.unwrap() {
        Applied::NotOwned(found) => assert_eq!(found.external_id, None, "{found:?}"),
        other => panic!("a hand-made user must not be adopted: {other:?}"),
    }
    let after = raw.user(&id).await;
    assert!(after.get("externalId").is_none_or(Value::is_null), "not taken over: {after}");
    assert_eq!(after["name"], made["name"], "nothing was written: {after}");
}

#[tokio::test]
async fn issue15_scim_a_leaver_whose_user_name_an_admin_changed_is_found_by_external_id_and_disabled() {
    let peer = scim_peer().await;
    let c = ScimConnector::new("chat", &peer.settings(), 4).unwrap();
    let raw = RawScim { client: reqwest::Client::new(), url: peer.url(), token: peer.token().to_string() };
    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Grant, &jsilva, Some("staff"))).await.unwrap(), Applied::Changed);
    let (_, list) = raw.send(reqwest::Method::GET, "Users?filter=userName%20eq%20%22jsilva1%22", None).await;
    let id = list["Resources"][0]["id"].as_str().unwrap().to_string();
    let mut user = raw.user(&id).await;
    user["userName"] = json!("joana.silva");
    let (status, body) = raw.send(reqwest::Method::PUT, &format!("Users/{id}"), Some(user)).await;
    assert!(status.is_success(), "{status}: {body}");

    // A fresh connector: nothing cached from the create.
    let c2 = ScimConnector::new("chat", &peer.settings(), 4).unwrap();
    drop(c);
    let found = c2.read_account(&jsilva).await.unwrap().expect("found by externalId");
    assert_eq!((found.account.as_str(), found.enabled), ("joana.silva", true));
    assert_eq!(c2.apply(&req(OpKind::Revoke, &jsilva, Some("staff"))).await.unwrap(), Applied::Changed);
    assert_eq!(c2.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    let after = raw.user(&id).await;
    assert_eq!((after["active"].clone(), after["userName"].clone()), (json!(false), json!("joana.silva")));
    let read = c2.read_account(&jsilva).await.unwrap().unwrap();
    assert!(!read.enabled && read.grants.is_empty(), "{read:?}");
}

// ---- SCIM, against a server that answers with someone else's user first ----

const TOKEN: &str = "fake-secret-token-15";

fn fake_connector(fake: &FakeScim) -> (ScimConnector, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, TOKEN).unwrap();
    let settings = ScimSettings {
        url: fake.url.clone(),
        token: SecretRef::File(file.to_string_lossy().into_owned()),
        ..ScimSettings::default()
    };
    (ScimConnector::new("chat", &settings, 2).unwrap(), dir)
}

fn list(users: &[Value]) -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": users.len(),
        "Resources": users,
    })
    .to_string()
}

fn user(id: &str, external_id: &str) -> Value {
    json!({"id": id, "userName": "jsilva1", "externalId": external_id, "active": true, "meta": {"version": "W/\"1\""}})
}

/// A server whose `userName` filter returns `users` (the foreign one first), whose other
/// listings are empty, and which accepts any change.
async fn misbehaving(users: Vec<Value>) -> FakeScim {
    FakeScim::start(move |req, _| match req.method.as_str() {
        "GET" if req.target.contains("userName%20eq") => Reply::new(200, list(&users)),
        "GET" if req.target.starts_with("/v2/Users/") => {
            let id = req.target.trim_start_matches("/v2/Users/");
            match users.iter().find(|u| u["id"] == json!(id)) {
                Some(u) => Reply::new(200, u.to_string()),
                None => Reply::new(404, ""),
            }
        }
        "GET" => Reply::new(200, list(&[])),
        _ => Reply::new(204, ""),
    })
    .await
}

fn writes_to(fake: &FakeScim, id: &str) -> Vec<String> {
    fake.seen()
        .into_iter()
        .filter(|s| matches!(s.method.as_str(), "PATCH" | "PUT" | "DELETE" | "POST"))
        .filter(|s| s.target.ends_with(&format!("/Users/{id}")) || s.body.contains(id))
        .map(|s| format!("{} {}", s.method, s.target))
        .collect()
}

#[tokio::test]
async fn issue15_scim_two_users_for_one_user_name_only_this_identitys_is_written_to() {
    let jsilva = spec("jsilva1", "E000001");
    for kind in [OpKind::Disable, OpKind::Revoke, OpKind::DeleteAccount, OpKind::UpdateAttributes, OpKind::Enable] {
        let fake = misbehaving(vec![user("foreign", "E999999"), user("mine", "E000001")]).await;
        let (c, _dir) = fake_connector(&fake);
        let ent = (kind == OpKind::Revoke).then_some("staff");
        let _ = c.apply(&req(kind, &jsilva, ent)).await;
        assert_eq!(writes_to(&fake, "foreign"), Vec::<String>::new(), "{kind}: the foreign user was written to");
        let state = c.read_account(&jsilva).await.unwrap().unwrap();
        assert_eq!(state.external_id.as_deref(), Some("E000001"), "{kind}: read back the identity's own user");
    }
    // The disable lands on the identity's own user.
    let fake = misbehaving(vec![user("foreign", "E999999"), user("mine", "E000001")]).await;
    let (c, _dir) = fake_connector(&fake);
    c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap();
    assert_eq!(writes_to(&fake, "mine"), ["PATCH /v2/Users/mine"]);
}

#[tokio::test]
async fn issue15_scim_only_another_identitys_user_is_refused_before_any_write() {
    let jsilva = spec("jsilva1", "E000001");
    for kind in [
        OpKind::Disable,
        OpKind::Enable,
        OpKind::Grant,
        OpKind::Revoke,
        OpKind::DeleteAccount,
        OpKind::UpdateAttributes,
    ] {
        let fake = misbehaving(vec![user("foreign", "E999999")]).await;
        let (c, _dir) = fake_connector(&fake);
        let ent = matches!(kind, OpKind::Grant | OpKind::Revoke).then_some("staff");
        let e = c.apply(&req(kind, &jsilva, ent)).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent, "{kind}: {e}");
        assert!(e.message.contains("E999999") && e.message.contains("nothing was changed"), "{kind}: {e}");
        let writes: Vec<String> = fake
            .seen()
            .into_iter()
            .filter(|s| s.method != "GET")
            .map(|s| format!("{} {}", s.method, s.target))
            .collect();
        assert_eq!(writes, Vec::<String>::new(), "{kind}: nothing may be written");
    }
}

// ---- PostgreSQL ----

#[tokio::test]
async fn issue15_postgres_a_role_renamed_by_hand_is_found_by_its_tag_and_one_of_another_identity_is_refused() {
    let pg = tenure_testkit::peers::Postgres::start().expect("a throwaway PostgreSQL cluster must start");
    let c = tenure_connect::postgres::PostgresConnector::new("warehouse", &pg.settings(), 2).await.unwrap();
    let (admin, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.batch_execute("CREATE ROLE analyst NOLOGIN").await.unwrap();
    let can_login = async |name: &str| -> Option<bool> {
        admin
            .query_opt("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .unwrap()
            .map(|r| r.get(0))
    };

    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Grant, &jsilva, Some("analyst"))).await.unwrap(), Applied::Changed);
    admin.batch_execute("ALTER ROLE jsilva1 RENAME TO joana").await.unwrap();
    let found = c.read_account(&jsilva).await.unwrap().expect("found by its tag");
    assert_eq!((found.account.as_str(), found.enabled), ("joana", true));
    assert_eq!(c.apply(&req(OpKind::Revoke, &jsilva, Some("analyst"))).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(can_login("joana").await, Some(false));
    let after = c.read_account(&jsilva).await.unwrap().unwrap();
    assert!(!after.enabled && after.grants.is_empty(), "{after:?}");

    // A role of the name tagged for another identity: nothing is written to it.
    admin.batch_execute("CREATE ROLE taken LOGIN; COMMENT ON ROLE taken IS 'tenure:E999999'").await.unwrap();
    for (kind, ent) in [(OpKind::Grant, Some("analyst")), (OpKind::Disable, None), (OpKind::DeleteAccount, None)] {
        let e = c.apply(&req(kind, &spec("taken", "E000002"), ent)).await.unwrap_err();
        assert!(e.message.contains("E999999") && e.message.contains("nothing was changed"), "{kind}: {e}");
    }
    assert_eq!(can_login("taken").await, Some(true));
    let members: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = 'taken'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(members, 0);
}

#[tokio::test]
async fn issue15_postgres_a_renamed_role_is_disabled_even_when_an_untagged_role_took_its_old_name() {
    let pg = tenure_testkit::peers::Postgres::start().expect("a throwaway PostgreSQL cluster must start");
    let c = tenure_connect::postgres::PostgresConnector::new("warehouse", &pg.settings(), 2).await.unwrap();
    let (admin, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    admin.batch_execute("CREATE ROLE analyst NOLOGIN").await.unwrap();
    let can_login = async |name: &str| -> Option<bool> {
        admin
            .query_opt("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", &[&name])
            .await
            .unwrap()
            .map(|r| r.get(0))
    };

    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Grant, &jsilva, Some("analyst"))).await.unwrap(), Applied::Changed);
    // Renamed by hand, and a decoy without a tag made under the old name.
    admin.batch_execute("ALTER ROLE jsilva1 RENAME TO joana; CREATE ROLE jsilva1 NOLOGIN").await.unwrap();
    let found = c.read_account(&jsilva).await.unwrap().expect("found by its tag");
    assert_eq!((found.account.as_str(), found.enabled), ("joana", true), "{found:?}");

    assert_eq!(c.apply(&req(OpKind::Revoke, &jsilva, Some("analyst"))).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(can_login("joana").await, Some(false), "the renamed role must no longer log in");
    let after = c.read_account(&jsilva).await.unwrap().unwrap();
    assert_eq!(after.account, "joana");
    assert!(!after.enabled && after.grants.is_empty(), "{after:?}");
    // The decoy is left as it was.
    assert_eq!(can_login("jsilva1").await, Some(false));
}

/// A leaver renamed by hand, with an unmarked entry made under the old name: the disable and
/// the delete act on the entry found by its employee number; the other entry is not deleted.
#[tokio::test]
async fn issue15_ldap_delete_of_an_account_found_by_id_leaves_an_entry_of_its_old_name_alone() {
    let peer = ldap_peer();
    let c = LdapConnector::new("directory", &peer.settings(), 4).unwrap();
    let mut ldap = raw(&peer).await;
    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Grant, &jsilva, Some("staff"))).await.unwrap(), Applied::Changed);
    let dn = format!("uid=jsilva1,{}", peer.users_dn);
    ldap.modifydn(&dn, "uid=jsilva1-old", true, None).await.unwrap().success().unwrap();
    // Someone else's login under the old name, made by hand, in `staff`.
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("uid", HashSet::from(["jsilva1"])),
        ("cn", HashSet::from(["another person"])),
        ("sn", HashSet::from(["person"])),
    ];
    ldap.add(&dn, attrs).await.unwrap().success().unwrap();

    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    let disabled = format!("uid=jsilva1-old,{}", peer.disabled_dn);
    assert!(entry(&mut ldap, &disabled).await.is_some(), "the leaver's entry is disabled where it was found");

    assert_eq!(c.apply(&req(OpKind::DeleteAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert!(entry(&mut ldap, &disabled).await.is_none(), "the leaver's entry is deleted");
    assert!(entry(&mut ldap, &dn).await.is_some(), "the other entry of the old name is not deleted");
}

/// This identity's entry is disabled (under `disabled_dn`) and another identity's has its
/// name under `users_dn`: a grant or an attribute update passes the ownership check on the
/// disabled entry, so it must not write to the other one.
#[tokio::test]
async fn issue15_ldap_a_write_lands_on_the_entry_whose_ownership_was_checked() {
    let peer = ldap_peer();
    let c = LdapConnector::new("directory", &peer.settings(), 4).unwrap();
    let mut ldap = raw(&peer).await;
    let jsilva = spec("jsilva1", "E000001");
    assert_eq!(c.apply(&req(OpKind::CreateAccount, &jsilva, None)).await.unwrap(), Applied::Changed);
    assert_eq!(c.apply(&req(OpKind::Disable, &jsilva, None)).await.unwrap(), Applied::Changed);
    let other_dn = format!("uid=jsilva1,{}", peer.users_dn);
    let attrs: Vec<(&str, HashSet<&str>)> = vec![
        ("objectClass", HashSet::from(["inetOrgPerson"])),
        ("uid", HashSet::from(["jsilva1"])),
        ("cn", HashSet::from(["another person"])),
        ("sn", HashSet::from(["person"])),
        ("employeeNumber", HashSet::from(["E999999"])),
    ];
    ldap.add(&other_dn, attrs).await.unwrap().success().unwrap();
    let before = entry(&mut ldap, &other_dn).await.unwrap();

    let grant = c.apply(&req(OpKind::Grant, &jsilva, Some("staff"))).await;
    let staff = members(&mut ldap, &format!("cn=staff,{}", peer.groups_dn)).await;
    assert!(
        !staff.iter().any(|m| m.eq_ignore_ascii_case(&other_dn)),
        "{grant:?}: the other entry got staff: {staff:?}"
    );
    let _ = c.apply(&req(OpKind::UpdateAttributes, &jsilva, None)).await;
    let after = entry(&mut ldap, &other_dn).await.unwrap();
    assert_eq!(after.attrs, before.attrs, "the other entry is untouched");
}
