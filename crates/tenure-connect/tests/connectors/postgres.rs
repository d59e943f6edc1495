//! Tests of the postgres connector against a real peer.
//!
//! Each test starts its own throwaway cluster (`tenure_testkit::peers::Postgres`) and checks
//! every change through a separate, plain tokio-postgres client, never through the connector
//! under test. A cluster that cannot start fails the test.

use std::collections::BTreeSet;
use std::sync::Arc;
use tenure_connect::postgres::PostgresConnector;
use tenure_connect::{AccountSpec, AccountState, Applied, Connector, ConnectorError, NewSecret, Request, SecretRef};
use tenure_core::OpKind;
use tenure_core::config::PostgresSettings;
use tenure_testkit::peers::{Postgres, free_port};
use tokio_postgres::{Client, NoTls};

struct Fixture {
    connector: PostgresConnector,
    admin: Client,
    pg: Postgres,
}

async fn fixture() -> Fixture {
    let pg = Postgres::start().expect("a throwaway PostgreSQL cluster must start");
    let connector = PostgresConnector::new("warehouse", &pg.settings(), 4).await.unwrap();
    let admin = connect(&pg.url()).await;
    Fixture { connector, admin, pg }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// Quotes an identifier for the test's own DDL (the connector has its own quoting).
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn spec(account: &str, identity: &str) -> AccountSpec {
    AccountSpec { identity_id: identity.to_string(), account: account.to_string(), ..AccountSpec::default() }
}

fn req(kind: OpKind, account: &str) -> Request {
    Request { kind, entitlement: None, account: spec(account, ""), new_owner: None, secret: None }
}

fn create(account: &str, identity: &str) -> Request {
    Request {
        kind: OpKind::CreateAccount,
        entitlement: None,
        account: spec(account, identity),
        new_owner: None,
        secret: None,
    }
}

/// A rotation to a fresh secret.
fn rotation(account: &str) -> (Request, NewSecret) {
    let secret = NewSecret::generate();
    (Request { secret: Some(secret.clone()), ..req(OpKind::RotateCredential, account) }, secret)
}

fn with_entitlement(kind: OpKind, account: &str, entitlement: &str) -> Request {
    Request { entitlement: Some(entitlement.to_string()), ..req(kind, account) }
}

fn with_owner(kind: OpKind, account: &str, owner: &str) -> Request {
    Request { new_owner: Some(owner.to_string()), ..req(kind, account) }
}

/// `(can log in, comment)` of a role, read with a plain client.
async fn role(admin: &Client, name: &str) -> Option<(bool, Option<String>)> {
    admin
        .query_opt("SELECT rolcanlogin, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1", &[&name])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

/// The roles `name` is a direct member of, one entry per pg_auth_members row.
async fn memberships(admin: &Client, name: &str) -> Vec<String> {
    admin
        .query(
            "SELECT g.rolname::text FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
             JOIN pg_roles a ON a.oid = m.member WHERE a.rolname = $1 ORDER BY 1",
            &[&name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn table_owner(admin: &Client, table: &str) -> String {
    admin.query_one("SELECT tableowner::text FROM pg_tables WHERE tablename = $1", &[&table]).await.unwrap().get(0)
}

async fn password_verifier(admin: &Client, name: &str) -> Option<String> {
    admin.query_one("SELECT rolpassword FROM pg_authid WHERE rolname = $1", &[&name]).await.unwrap().get(0)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn assert_permanent(r: Result<Applied, ConnectorError>, mentions: &str) {
    let e = r.expect_err("expected a permanent error");
    assert!(!e.is_transient(), "expected permanent, got {e:?}");
    assert!(e.message.contains(mentions), "`{}` should mention `{mentions}`", e.message);
}

fn assert_transient_without<T: std::fmt::Debug>(r: Result<T, ConnectorError>, secret: &str) {
    let e = r.expect_err("expected a transient error");
    assert!(e.is_transient(), "expected transient, got {e:?}");
    assert!(!e.message.contains(secret), "the error leaks the secret: {}", e.message);
}

#[tokio::test]
async fn lifecycle_changes_are_read_back_by_a_plain_client() {
    let Fixture { connector: c, admin, pg: _pg } = fixture().await;
    admin
        .batch_execute(r#"CREATE ROLE analyst NOLOGIN; CREATE ROLE "data admins" NOLOGIN; CREATE ROLE keeper NOLOGIN"#)
        .await
        .unwrap();

    assert_eq!(c.apply(&create("alice", "E100")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "alice").await, Some((true, Some("tenure:E100".into()))));
    assert_eq!(
        c.read_account(&spec("alice", "E100")).await.unwrap(),
        Some(AccountState {
            account: "alice".into(),
            external_id: Some("E100".into()),
            enabled: true,
            grants: BTreeSet::new(),
            sessions: Some(0),
            email: None,
        })
    );

    assert_eq!(c.apply(&with_entitlement(OpKind::Grant, "alice", "analyst")).await.unwrap(), Applied::Changed);
    assert_eq!(memberships(&admin, "alice").await, ["analyst"]);
    assert_eq!(c.apply(&with_entitlement(OpKind::Grant, "alice", "data admins")).await.unwrap(), Applied::Changed);
    assert_eq!(memberships(&admin, "alice").await, ["analyst", "data admins"]);
    let read = c.read_account(&spec("alice", "E100")).await.unwrap().unwrap();
    assert_eq!(read.grants, set(&["analyst", "data admins"]));

    assert_eq!(c.apply(&with_entitlement(OpKind::Revoke, "alice", "analyst")).await.unwrap(), Applied::Changed);
    assert_eq!(memberships(&admin, "alice").await, ["data admins"]);

    assert_eq!(c.apply(&req(OpKind::Disable, "alice")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "alice").await, Some((false, Some("tenure:E100".into()))));
    // A disabled account is still an account (its tag says so), not an entitlement.
    let accounts = c.list_accounts().await.unwrap();
    assert_eq!(
        accounts,
        [AccountState {
            account: "alice".into(),
            external_id: Some("E100".into()),
            enabled: false,
            grants: set(&["data admins"]),
            sessions: Some(0),
            email: None,
        }]
    );
    assert_eq!(c.list_entitlements().await.unwrap(), ["analyst", "data admins", "keeper"]);

    assert_eq!(c.apply(&req(OpKind::Enable, "alice")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "alice").await, Some((true, Some("tenure:E100".into()))));

    assert_eq!(password_verifier(&admin, "alice").await, None);
    assert_eq!(c.apply(&rotation("alice").0).await.unwrap(), Applied::Changed);
    let first = password_verifier(&admin, "alice").await.unwrap();
    assert!(first.starts_with("SCRAM-SHA-256$"), "{first}");
    assert_eq!(c.apply(&rotation("alice").0).await.unwrap(), Applied::Changed);
    assert_ne!(password_verifier(&admin, "alice").await.unwrap(), first);
    assert_permanent(c.apply(&req(OpKind::RotateCredential, "alice")).await, "needs the new secret");

    admin.batch_execute("CREATE TABLE ledger (id int); ALTER TABLE ledger OWNER TO alice").await.unwrap();
    assert_eq!(c.apply(&with_owner(OpKind::TransferOwnership, "alice", "keeper")).await.unwrap(), Applied::Changed);
    assert_eq!(table_owner(&admin, "ledger").await, "keeper");

    assert_eq!(c.apply(&req(OpKind::DeleteAccount, "alice")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "alice").await, None);
    assert_eq!(c.read_account(&spec("alice", "E100")).await.unwrap(), None);
    assert_eq!(c.list_accounts().await.unwrap(), []);
}

#[tokio::test]
async fn every_operation_repeated_is_already_done_without_a_second_effect() {
    let Fixture { connector: c, admin, pg: _pg } = fixture().await;
    admin.batch_execute("CREATE ROLE analyst NOLOGIN; CREATE ROLE keeper NOLOGIN").await.unwrap();

    let twice = |r: Request| {
        let c = &c;
        async move { (c.apply(&r).await.unwrap(), c.apply(&r).await.unwrap()) }
    };
    let done = (Applied::Changed, Applied::AlreadyDone);

    assert_eq!(twice(create("bob", "E200")).await, done);
    assert_eq!(role(&admin, "bob").await, Some((true, Some("tenure:E200".into()))));
    assert_eq!(twice(with_entitlement(OpKind::Grant, "bob", "analyst")).await, done);
    assert_eq!(memberships(&admin, "bob").await, ["analyst"]);
    assert_eq!(twice(with_entitlement(OpKind::Revoke, "bob", "analyst")).await, done);
    assert_eq!(memberships(&admin, "bob").await, Vec::<String>::new());
    assert_eq!(twice(req(OpKind::Disable, "bob")).await, done);
    assert_eq!(twice(req(OpKind::Enable, "bob")).await, done);
    assert_eq!(c.apply(&req(OpKind::RevokeSessions, "bob")).await.unwrap(), Applied::AlreadyDone);

    assert_eq!(
        c.apply(&with_owner(OpKind::TransferOwnership, "bob", "keeper")).await.unwrap(),
        Applied::AlreadyDone,
        "bob owns nothing yet"
    );
    admin.batch_execute("CREATE TABLE bob_notes (id int); ALTER TABLE bob_notes OWNER TO bob").await.unwrap();
    assert_eq!(twice(with_owner(OpKind::TransferOwnership, "bob", "keeper")).await, done);
    assert_eq!(table_owner(&admin, "bob_notes").await, "keeper");

    assert_eq!(twice(req(OpKind::DeleteAccount, "bob")).await, done);
    assert_eq!(role(&admin, "bob").await, None);

    // With the account gone, everything that removes access is already done...
    for kind in [OpKind::Disable, OpKind::RevokeSessions, OpKind::DeleteAccount] {
        assert_eq!(c.apply(&req(kind, "bob")).await.unwrap(), Applied::AlreadyDone, "{kind}");
    }
    // A rotation of an account that is gone changed nothing, so it is not "done": the executor
    // would verify it by logging in.
    assert_permanent(c.apply(&rotation("bob").0).await, "does not exist");
    assert_eq!(c.apply(&with_entitlement(OpKind::Revoke, "bob", "analyst")).await.unwrap(), Applied::AlreadyDone);
    assert_eq!(c.apply(&with_owner(OpKind::TransferOwnership, "bob", "keeper")).await.unwrap(), Applied::AlreadyDone);
    // ...and everything that adds access fails, rather than pretending.
    assert_permanent(c.apply(&req(OpKind::Enable, "bob")).await, "`bob`");
    assert_permanent(c.apply(&with_entitlement(OpKind::Grant, "bob", "analyst")).await, "`bob`");
}

#[tokio::test]
async fn revoke_sessions_ends_a_live_session_of_the_role() {
    let Fixture { connector: c, admin, pg } = fixture().await;
    let name = r#"O'Brien "ops""#;
    assert_eq!(c.apply(&create(name, "E300")).await.unwrap(), Applied::Changed);
    admin.batch_execute(&format!("ALTER ROLE {} PASSWORD 'session-test-pw'", ident(name))).await.unwrap();

    let (session, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port())
        .user(name)
        .password("session-test-pw")
        .dbname("postgres")
        .connect(NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    session.simple_query("SELECT 1").await.unwrap();
    let read = c.read_account(&spec(name, "E300")).await.unwrap().unwrap();
    assert_eq!(read.sessions, Some(1));

    assert_eq!(c.apply(&req(OpKind::RevokeSessions, name)).await.unwrap(), Applied::Changed);
    let live: i64 =
        admin.query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", &[&name]).await.unwrap().get(0);
    assert_eq!(live, 0);
    assert_eq!(c.read_account(&spec(name, "E300")).await.unwrap().unwrap().sessions, Some(0));
    assert!(session.simple_query("SELECT 1").await.is_err(), "the session must be gone");
    let ended = driver.await.unwrap();
    assert!(ended.is_err(), "the server must have ended the connection");

    assert_eq!(c.apply(&req(OpKind::RevokeSessions, name)).await.unwrap(), Applied::AlreadyDone);
    // Tenure's own role is never a target: ending its sessions would cut the pool's connections.
    assert_permanent(c.apply(&req(OpKind::RevokeSessions, "postgres")).await, "connects as");
}

#[tokio::test]
async fn delete_reassigns_what_the_role_owns() {
    let Fixture { connector: c, admin, pg } = fixture().await;
    admin
        .batch_execute("CREATE ROLE archive NOLOGIN; CREATE ROLE keeper NOLOGIN; CREATE TABLE shared (id int)")
        .await
        .unwrap();
    for (name, id) in [("dave", "E401"), ("erin", "E402"), ("frank", "E403"), ("gina", "E404")] {
        assert_eq!(c.apply(&create(name, id)).await.unwrap(), Applied::Changed);
        admin
            .batch_execute(&format!(
                "CREATE TABLE t_{name} (id int); ALTER TABLE t_{name} OWNER TO {name}; GRANT SELECT ON shared TO {name}"
            ))
            .await
            .unwrap();
    }

    // Default: the connecting role receives the objects; DROP OWNED removes the privileges.
    assert_eq!(c.apply(&req(OpKind::DeleteAccount, "erin")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "erin").await, None);
    assert_eq!(table_owner(&admin, "t_erin").await, "postgres");

    // The target's `reassign_to`.
    let settings = PostgresSettings { reassign_to: Some("archive".into()), ..pg.settings() };
    let archiving = PostgresConnector::new("warehouse", &settings, 1).await.unwrap();
    assert_eq!(archiving.apply(&req(OpKind::DeleteAccount, "dave")).await.unwrap(), Applied::Changed);
    assert_eq!(role(&admin, "dave").await, None);
    assert_eq!(table_owner(&admin, "t_dave").await, "archive");

    // The request's `new_owner` wins over `reassign_to`.
    assert_eq!(archiving.apply(&with_owner(OpKind::DeleteAccount, "frank", "keeper")).await.unwrap(), Applied::Changed);
    assert_eq!(table_owner(&admin, "t_frank").await, "keeper");
    let grantees: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.role_table_grants WHERE table_name = 'shared' AND grantee <> 'postgres'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(grantees, 1, "only gina's privilege is left");

    // An object in another database is out of reach: the error says so and nothing is dropped.
    admin.batch_execute("CREATE DATABASE other").await.unwrap();
    let other = connect(&format!("{}other", pg.url().strip_suffix("postgres").unwrap())).await;
    other.batch_execute("CREATE TABLE elsewhere (id int); ALTER TABLE elsewhere OWNER TO gina").await.unwrap();
    assert_permanent(c.apply(&req(OpKind::DeleteAccount, "gina")).await, "other databases");
    assert_eq!(role(&admin, "gina").await, Some((true, Some("tenure:E404".into()))));
    assert_eq!(table_owner(&admin, "t_gina").await, "gina", "the failed delete was rolled back");
}

#[tokio::test]
async fn hostile_names_and_identity_ids_are_quoted_not_executed() {
    let Fixture { connector: c, admin, pg: _pg } = fixture().await;
    let entitlement = r#"ops "team"; 'x'"#;
    admin.batch_execute(&format!("CREATE ROLE {} NOLOGIN", ident(entitlement))).await.unwrap();
    let cases = [
        (r#"a"b"#, r"O'Brien\'; DROP ROLE postgres; --"),
        ("O'Brien", r#"a\b'c"d"#),
        ("x; DROP ROLE postgres; --", "Ñandú 名前"),
        ("Zoë 李", "line\nbreak"),
        (r"back\slash", "$$ dollar $$ E'x'"),
        (r#"""#, r"\\"),
        ("Robert'); DROP TABLE students;--", "' || pg_sleep(5) || '"),
    ];
    for (name, id) in cases {
        assert_eq!(c.apply(&create(name, id)).await.unwrap(), Applied::Changed, "{name}");
        assert_eq!(role(&admin, name).await, Some((true, Some(format!("tenure:{id}")))), "{name}");
        assert_eq!(c.apply(&create(name, id)).await.unwrap(), Applied::AlreadyDone, "{name}");
        assert_eq!(c.apply(&with_entitlement(OpKind::Grant, name, entitlement)).await.unwrap(), Applied::Changed);
        assert_eq!(memberships(&admin, name).await, [entitlement]);
        let read = c.read_account(&spec(name, id)).await.unwrap().unwrap();
        assert_eq!((read.account.as_str(), read.external_id.as_deref()), (name, Some(id)));
    }
    let superuser: bool =
        admin.query_one("SELECT rolsuper FROM pg_roles WHERE rolname = 'postgres'", &[]).await.unwrap().get(0);
    assert!(superuser, "postgres must survive");
    let listed: BTreeSet<String> = c.list_accounts().await.unwrap().into_iter().map(|a| a.account).collect();
    assert_eq!(listed, cases.iter().map(|(n, _)| n.to_string()).collect());
    assert_eq!(c.list_entitlements().await.unwrap(), [entitlement]);

    for (name, _) in cases {
        assert_eq!(c.apply(&req(OpKind::Disable, name)).await.unwrap(), Applied::Changed, "{name}");
        assert_eq!(c.apply(&rotation(name).0).await.unwrap(), Applied::Changed, "{name}");
        assert_eq!(c.apply(&with_entitlement(OpKind::Revoke, name, entitlement)).await.unwrap(), Applied::Changed);
        assert_eq!(c.apply(&req(OpKind::DeleteAccount, name)).await.unwrap(), Applied::Changed, "{name}");
        assert_eq!(role(&admin, name).await, None, "{name}");
    }

    // Names the server would reject or silently truncate are refused before anything is sent.
    let long = "x".repeat(64);
    for name in ["", "nul\0byte", long.as_str()] {
        let e = c.apply(&create(name, "E500")).await.unwrap_err();
        assert!(!e.is_transient(), "{name:?}: {e:?}");
    }
    assert_permanent(c.apply(&create("fine", "nul\0id")).await, "NUL");
    let roles: i64 =
        admin.query_one("SELECT count(*) FROM pg_roles WHERE rolname !~ '^pg_'", &[]).await.unwrap().get(0);
    assert_eq!(roles, 2, "only postgres and the entitlement are left");
}

#[tokio::test]
async fn refusals_are_permanent_and_change_nothing() {
    let Fixture { connector: c, admin, pg: _pg } = fixture().await;
    admin.batch_execute("CREATE ROLE analyst NOLOGIN; CREATE ROLE legacy LOGIN").await.unwrap();
    assert_eq!(c.apply(&create("hana", "E600")).await.unwrap(), Applied::Changed);

    // A grant of a role that does not exist is a finding, not a silent creation.
    assert_permanent(
        c.apply(&with_entitlement(OpKind::Grant, "hana", "no-such-role")).await,
        "`no-such-role` does not exist",
    );
    assert_eq!(role(&admin, "no-such-role").await, None);
    assert_eq!(c.apply(&with_entitlement(OpKind::Revoke, "hana", "no-such-role")).await.unwrap(), Applied::AlreadyDone);
    assert_permanent(c.apply(&req(OpKind::Grant, "hana")).await, "no entitlement");

    // A role of the same name that is not this identity's account is not adopted.
    assert_permanent(c.apply(&create("hana", "E601")).await, "identity `E600`");
    assert_permanent(c.apply(&create("legacy", "E602")).await, "not tagged");
    assert_permanent(c.apply(&create("analyst", "E603")).await, "not tagged");
    assert_eq!(role(&admin, "analyst").await, Some((false, None)));
    assert_eq!(role(&admin, "hana").await, Some((true, Some("tenure:E600".into()))));

    // Tenure never locks itself out.
    for kind in [OpKind::Disable, OpKind::DeleteAccount] {
        assert_permanent(c.apply(&req(kind, "postgres")).await, "connects as");
    }
    assert_permanent(c.apply(&rotation("postgres").0).await, "connects as");
    assert_eq!(role(&admin, "postgres").await.map(|r| r.0), Some(true));
    assert_permanent(c.apply(&req(OpKind::TransferOwnership, "hana")).await, "needs a new owner");
    assert_permanent(c.apply(&with_owner(OpKind::DeleteAccount, "hana", "nobody-here")).await, "nobody-here");
    assert!(role(&admin, "hana").await.is_some());

    // The connecting role, superusers, system roles and group roles are not accounts.
    let accounts: Vec<String> = c.list_accounts().await.unwrap().into_iter().map(|a| a.account).collect();
    assert_eq!(accounts, ["hana", "legacy"]);
}

#[tokio::test]
async fn concurrent_operations_share_a_bounded_pool() {
    let Fixture { connector, admin, pg: _pg } = fixture().await;
    admin.batch_execute("CREATE ROLE analyst NOLOGIN").await.unwrap();
    let c = Arc::new(connector);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let c = Arc::clone(&c);
        tasks.spawn(async move {
            let name = format!("worker{i:02}");
            let created = c.apply(&create(&name, &format!("E7{i:02}"))).await?;
            let granted = c.apply(&with_entitlement(OpKind::Grant, &name, "analyst")).await?;
            Ok::<_, ConnectorError>((created, granted))
        });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), (Applied::Changed, Applied::Changed));
    }
    let accounts = c.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 24);
    assert!(accounts.iter().all(|a| a.grants == set(&["analyst"]) && a.enabled));
    let ours: i64 = admin
        .query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tenure'", &[])
        .await
        .unwrap()
        .get(0);
    assert!((1..=4).contains(&ours), "at most `concurrency` connections, found {ours}");
}

#[tokio::test]
async fn unreachable_target_is_transient_and_never_shows_the_secret() {
    let secret = "hunter2-do-not-print";
    let port = free_port().unwrap();
    let file = std::env::temp_dir().join(format!("tenure-pg-test-url-{}-{port}", std::process::id()));
    std::fs::write(&file, format!("postgres://tenure:{secret}@127.0.0.1:{port}/postgres\n")).unwrap();
    let settings =
        PostgresSettings { url: SecretRef::File(file.to_str().unwrap().to_string()), ..PostgresSettings::default() };
    let c = PostgresConnector::new("warehouse", &settings, 2).await.unwrap();
    assert_transient_without(c.apply(&create("ivan", "E800")).await, secret);
    assert_transient_without(c.read_account(&spec("ivan", "E800")).await, secret);
    assert_transient_without(c.list_accounts().await, secret);
    assert_transient_without(c.list_entitlements().await, secret);

    std::fs::write(&file, format!("postgres://tenure:{secret}@127.0.0.1:notaport/postgres")).unwrap();
    let e = PostgresConnector::new("warehouse", &settings, 2).await.err().unwrap();
    assert!(!e.is_transient() && !e.message.contains(secret), "{e:?}");
    std::fs::remove_file(&file).unwrap();

    let e = PostgresConnector::new(
        "warehouse",
        &PostgresSettings { url: SecretRef::Env("TENURE_TEST_UNSET_VAR".into()), ..PostgresSettings::default() },
        2,
    )
    .await
    .err()
    .unwrap();
    assert!(!e.is_transient() && e.message.contains("TENURE_TEST_UNSET_VAR"), "{e:?}");
}

#[tokio::test]
async fn target_down_mid_apply_fails_transiently_then_recovers() {
    let Fixture { connector: c, admin, mut pg } = fixture().await;
    assert_eq!(c.apply(&create("judy", "E900")).await.unwrap(), Applied::Changed);
    drop(admin);

    pg.stop().unwrap();
    assert_transient_without(c.apply(&create("kim", "E901")).await, pg.password());
    assert_transient_without(c.read_account(&spec("judy", "E900")).await, pg.password());

    pg.start_again().unwrap();
    // The pool's connections died with the server; the next operation opens fresh ones.
    assert_eq!(c.apply(&create("kim", "E901")).await.unwrap(), Applied::Changed);
    let admin = connect(&pg.url()).await;
    assert_eq!(role(&admin, "kim").await, Some((true, Some("tenure:E901".into()))));
    assert_eq!(role(&admin, "judy").await, Some((true, Some("tenure:E900".into()))));

    // A wrong password is not something retrying fixes, and it is not printed either.
    let wrong = format!("postgres://postgres:not-{}@127.0.0.1:{}/postgres", pg.password(), pg.port());
    let file = pg.dir().join("wrong-url");
    std::fs::write(&file, &wrong).unwrap();
    let settings =
        PostgresSettings { url: SecretRef::File(file.to_str().unwrap().to_string()), ..PostgresSettings::default() };
    let bad = PostgresConnector::new("warehouse", &settings, 1).await.unwrap();
    let e = bad.list_accounts().await.unwrap_err();
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.message.contains("28P01") && !e.message.contains(pg.password()), "{}", e.message);
}

#[tokio::test]
async fn privileged_or_login_roles_are_never_granted_as_entitlements() {
    let Fixture { connector: c, admin, pg: _pg } = fixture().await;
    admin
        .batch_execute(
            "CREATE ROLE root_like SUPERUSER NOLOGIN; CREATE ROLE makes_roles CREATEROLE NOLOGIN; \
             CREATE ROLE alice LOGIN; CREATE ROLE reporting NOLOGIN",
        )
        .await
        .unwrap();
    c.apply(&create("bob", "E2")).await.unwrap();
    c.apply(&create("carol", "E3")).await.unwrap();
    for (role, why) in [
        ("root_like", "superuser"),
        ("makes_roles", "createrole"),
        ("alice", "can log in"),
        ("carol", "can log in"),
        ("pg_execute_server_program", "built-in"),
    ] {
        assert_permanent(c.apply(&with_entitlement(OpKind::Grant, "bob", role)).await, why);
    }
    assert!(memberships(&admin, "bob").await.is_empty(), "nothing was granted");
    assert_eq!(c.apply(&with_entitlement(OpKind::Grant, "bob", "reporting")).await.unwrap(), Applied::Changed);
    assert_eq!(memberships(&admin, "bob").await, ["reporting"]);
}

#[tokio::test]
async fn issue6_connection_errors_show_the_url_redacted_and_never_the_password() {
    let port = free_port().unwrap();
    let file = std::env::temp_dir().join(format!("tenure-pg-issue6-{}-{port}", std::process::id()));
    let settings =
        PostgresSettings { url: SecretRef::File(file.to_str().unwrap().to_string()), ..PostgresSettings::default() };
    let build = |url: String| {
        std::fs::write(&file, url).unwrap();
        PostgresConnector::new("warehouse", &settings, 1)
    };

    // An unencoded `/` in the password makes it no URL at all: refused, not guessed at.
    let e = build(format!("postgres://tenure:pa/ss-9@127.0.0.1:{port}/postgres")).await.err().unwrap();
    assert!(!e.is_transient() && e.message.contains("`%2F`"), "{e:?}");
    assert!(!e.message.contains("pa/ss-9") && !e.message.contains("ss-9@"), "{e:?}");

    // Nothing listens: the error names where it tried, redacted, wherever the password sits.
    for url in [
        format!("postgres://tenure:pa%2Fss-9@127.0.0.1:{port}/postgres"),
        format!("postgresql://tenure@127.0.0.1:{port}/postgres?password=pa%2Fss-9&sslmode=disable"),
    ] {
        let c = build(url.clone()).await.unwrap();
        let e = c.list_accounts().await.unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        assert!(e.message.contains("connecting to `postgres"), "{e:?}");
        assert!(e.message.contains(&format!("127.0.0.1:{port}/postgres")), "{e:?}");
        assert!(
            !e.message.contains("pa%2Fss-9") && !e.message.contains("pa/ss-9") && !e.message.contains("tenure@"),
            "{url}: {e:?}"
        );
    }
    let c = build(format!("host=127.0.0.1 port={port} user=tenure password='pa/ss-9' dbname=postgres")).await.unwrap();
    let e = c.read_account(&spec("ivan", "E800")).await.unwrap_err();
    assert!(e.message.contains(&format!("connecting to `host=127.0.0.1 port={port} dbname=postgres`")), "{e:?}");
    assert!(!e.message.contains("pa/ss-9"), "{e:?}");
    std::fs::remove_file(&file).unwrap();
}

/// Issue 10: a rotated password logs in and the one before it no longer does, checked with
/// plain tokio-postgres connections as the account; the connector's own read-back agrees, and
/// no message it makes carries either secret.
#[tokio::test]
async fn issue10_a_rotated_password_logs_in_and_the_old_one_does_not() {
    let Fixture { connector: c, admin, pg } = fixture().await;
    assert_eq!(c.apply(&create("svc-etl", "S1")).await.unwrap(), Applied::Changed);
    let login = |password: String| {
        let url = format!("postgres://svc-etl:{password}@127.0.0.1:{}/postgres", pg.port());
        async move { tokio_postgres::connect(&url, NoTls).await.map(|(client, conn)| (client, tokio::spawn(conn))) }
    };
    let (first_req, first) = rotation("svc-etl");
    assert_eq!(c.apply(&first_req).await.unwrap(), Applied::Changed);
    let (client, _conn) = login(first.expose().to_string()).await.expect("the rotated password logs in");
    let who: String = client.query_one("SELECT current_user::text", &[]).await.unwrap().get(0);
    assert_eq!(who, "svc-etl");
    assert!(c.verify_secret(&spec("svc-etl", "S1"), &first).await.unwrap());

    let (second_req, second) = rotation("svc-etl");
    assert_eq!(c.apply(&second_req).await.unwrap(), Applied::Changed);
    assert!(login(second.expose().to_string()).await.is_ok(), "the new password logs in");
    let refused = login(first.expose().to_string()).await.expect_err("the old password is refused");
    assert_eq!(refused.code(), Some(&tokio_postgres::error::SqlState::INVALID_PASSWORD), "{refused}");
    assert!(!c.verify_secret(&spec("svc-etl", "S1"), &first).await.unwrap(), "the old secret no longer verifies");
    assert!(c.verify_secret(&spec("svc-etl", "S1"), &second).await.unwrap());

    // A disabled account cannot log in, so its new secret cannot be verified either.
    assert_eq!(c.apply(&req(OpKind::Disable, "svc-etl")).await.unwrap(), Applied::Changed);
    assert!(!c.verify_secret(&spec("svc-etl", "S1"), &second).await.unwrap());
    let e = c.verify_secret(&spec("nobody", ""), &second).await;
    assert!(matches!(e, Ok(false)), "an unknown role is a refused login: {e:?}");
    drop(admin);
}

/// Review finding 2: without required TLS, a new password is never sent to a host off this
/// machine (to set it or to log in with it). The refusal comes before any connection, so it is
/// permanent even though nothing listens at the TEST-NET address; on loopback the same
/// settings rotate (the tests above).
#[tokio::test]
async fn a_new_password_is_refused_over_a_plain_connection_off_this_machine() {
    let Fixture { connector: local, admin, pg } = fixture().await;
    assert_eq!(local.apply(&create("svc-etl", "S1")).await.unwrap(), Applied::Changed);
    let before = password_verifier(&admin, "svc-etl").await;
    for (host, mode) in [("192.0.2.10", "disable"), ("db.example.net", "prefer"), ("[2001:db8::1]", "disable")] {
        let file = std::env::temp_dir().join(format!("tenure-pg-test-plain-{}-{}", std::process::id(), pg.port()));
        std::fs::write(&file, format!("postgres://tenure:pw-9@{host}:{}/postgres?sslmode={mode}", pg.port())).unwrap();
        let settings = PostgresSettings { url: SecretRef::File(file.to_str().unwrap().to_string()), ..pg.settings() };
        let c = PostgresConnector::new("warehouse", &settings, 1).await.unwrap();
        std::fs::remove_file(&file).unwrap();
        let (rotate, secret) = rotation("svc-etl");
        let e = c.apply(&rotate).await.expect_err("rotation over a plain connection is refused");
        assert!(!e.is_transient() && e.message.contains("cleartext") && e.message.contains("require"), "{e:?}");
        assert_eq!(e.code(), tenure_core::error::Code::TargetRefused);
        assert!(!e.message.contains(secret.expose()) && !e.message.contains("pw-9"), "{e:?}");
        let e = c.verify_secret(&spec("svc-etl", "S1"), &secret).await.expect_err("so is logging in with it");
        assert!(!e.is_transient() && e.message.contains("cleartext"), "{e:?}");
    }
    assert_eq!(password_verifier(&admin, "svc-etl").await, before, "nothing changed");

    // Loopback with `sslmode=disable` crosses no wire, so it rotates.
    let file = std::env::temp_dir().join(format!("tenure-pg-test-loop-{}-{}", std::process::id(), pg.port()));
    std::fs::write(&file, format!("{}?sslmode=disable", pg.url())).unwrap();
    let settings = PostgresSettings { url: SecretRef::File(file.to_str().unwrap().to_string()), ..pg.settings() };
    let c = PostgresConnector::new("warehouse", &settings, 1).await.unwrap();
    std::fs::remove_file(&file).unwrap();
    let (rotate, secret) = rotation("svc-etl");
    assert_eq!(c.apply(&rotate).await.unwrap(), Applied::Changed);
    assert!(c.verify_secret(&spec("svc-etl", "S1"), &secret).await.unwrap());
}

/// `sslmode` `disable` or `prefer` (downgradable by anyone on the path) to a host off this
/// machine is warned about, by `tenure check` and every run; `require` or this machine is not.
#[tokio::test]
async fn issue15_a_downgradable_sslmode_to_another_host_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let warnings = |url: &str, sslmode: Option<&str>| {
        let file = dir.path().join(format!("url{}", url.len() + sslmode.map_or(0, str::len)));
        std::fs::write(&file, url).unwrap();
        let mode = sslmode.map(|m| format!("sslmode = \"{m}\"\n")).unwrap_or_default();
        let text = format!("[[target]]\nname = \"db\"\nkind = \"postgres\"\nurl_file = \"{}\"\n{mode}", file.display());
        let cfg = tenure_core::config::parse("tenure.toml", &text).unwrap_or_else(|p| panic!("{p:#?}"));
        let target = cfg.targets.into_iter().next().unwrap();
        async move { tenure_connect::warnings(&target).await }
    };
    let remote = "postgres://tenure:pw@db.example.com/app";
    for mode in [None, Some("prefer"), Some("disable")] {
        let w = warnings(remote, mode).await;
        assert_eq!(w.len(), 1, "{mode:?}: {w:#?}");
        assert!(w[0].starts_with("target `db`: the connection does not require TLS"), "{w:#?}");
        assert!(!w[0].contains("pw@"), "the password is never shown: {w:#?}");
    }
    assert!(warnings(remote, Some("require")).await.is_empty());
    assert!(warnings("postgres://tenure:pw@127.0.0.1/app", Some("disable")).await.is_empty());
}
