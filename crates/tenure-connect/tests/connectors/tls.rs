//! TLS on every connector, against the real peers serving a certificate from a throwaway CA
//! (`tenure_testkit::peers::TestCa`): slapd over `ldaps://` and StartTLS, scim2-server behind the
//! test kit's TLS terminator, PostgreSQL with `ssl = on`. Each works with the right CA, and a
//! certificate from another CA is refused with an error that says why and holds no secret.

use tenure_connect::ldap::LdapConnector;
use tenure_connect::postgres::PostgresConnector;
use tenure_connect::scim::ScimConnector;
use tenure_connect::{AccountSpec, Applied, Connector, ConnectorError, ErrorKind, Request};
use tenure_core::OpKind;
use tenure_core::config::{PgSslMode, PostgresSettings, SecretRef, TlsSettings};
use tenure_testkit::peers::{Ldap, LdapOptions, Postgres, Scim, TestCa};

fn spec(account: &str) -> AccountSpec {
    AccountSpec {
        identity_id: format!("id-{account}"),
        account: account.to_string(),
        given_name: Some("Tess".into()),
        family_name: Some("Ellis".into()),
        ..AccountSpec::default()
    }
}

fn create(account: &AccountSpec) -> Request {
    Request { kind: OpKind::CreateAccount, entitlement: None, account: account.clone(), new_owner: None, secret: None }
}

fn trust(ca: &TestCa) -> TlsSettings {
    TlsSettings { ca_file: Some(ca.ca_file().to_string_lossy().into_owned()), verify: true }
}

/// A refused certificate: permanent, says why, and repeats none of `secrets`.
fn assert_refused(e: &ConnectorError, secrets: &[&str]) {
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("TLS handshake failed"), "{e}");
    assert!(e.message.contains("not issued by a trusted CA") && e.message.contains("`ca_file`"), "{e}");
    for s in secrets {
        assert!(!e.message.contains(s), "the error repeats a secret: {e}");
    }
}

#[tokio::test]
async fn ldaps_and_starttls_work_with_the_right_ca_and_a_wrong_ca_is_refused() {
    let ca = TestCa::new("right").unwrap();
    let wrong = TestCa::new("wrong").unwrap();
    let cert = ca.server(&[]).unwrap();
    let peer = Ldap::start_with(LdapOptions { tls: Some(&cert), ..LdapOptions::default() })
        .expect("slapd must start with TLS");
    let ldaps_url = peer.ldaps_url.clone().unwrap();

    // ldaps:// with the CA that issued the server's certificate.
    let ldaps = tenure_core::config::LdapSettings { url: ldaps_url.clone(), tls: trust(&ca), ..peer.settings() };
    let c = LdapConnector::new("directory", &ldaps, 2).unwrap();
    assert_eq!(c.apply(&create(&spec("over-ldaps"))).await.unwrap(), Applied::Changed);
    assert!(c.read_account(&spec("over-ldaps")).await.unwrap().unwrap().enabled);

    // StartTLS on the plain port, and by the name `localhost`, which the certificate also lists.
    let starttls = tenure_core::config::LdapSettings {
        url: peer.url.replace("127.0.0.1", "localhost"),
        starttls: true,
        tls: trust(&ca),
        ..peer.settings()
    };
    let c = LdapConnector::new("directory", &starttls, 2).unwrap();
    assert_eq!(c.apply(&create(&spec("over-starttls"))).await.unwrap(), Applied::Changed);
    let seen = peer.ldapsearch(&peer.users_dn, "(objectClass=inetOrgPerson)", &["uid"]).unwrap();
    assert!(seen.contains("uid: over-ldaps") && seen.contains("uid: over-starttls"), "{seen}");

    // A certificate from another CA is refused, over ldaps:// and StartTLS alike.
    for url_and_starttls in [(ldaps_url.clone(), false), (peer.url.clone(), true)] {
        let settings = tenure_core::config::LdapSettings {
            url: url_and_starttls.0,
            starttls: url_and_starttls.1,
            tls: trust(&wrong),
            ..peer.settings()
        };
        let c = LdapConnector::new("directory", &settings, 1).unwrap();
        let e = c.read_account(&spec("over-ldaps")).await.unwrap_err();
        assert_refused(&e, &[&peer.password]);
        let e = c.apply(&create(&spec("refused"))).await.unwrap_err();
        assert_refused(&e, &[&peer.password]);
    }
    // So is one checked against the system's roots, which know nothing of the test CA.
    let system = tenure_core::config::LdapSettings { url: ldaps_url.clone(), ..peer.settings() };
    let e = LdapConnector::new("directory", &system, 1).unwrap().read_account(&spec("x")).await.unwrap_err();
    assert_refused(&e, &[&peer.password]);
    assert!(!peer.ldapsearch(&peer.base_dn, "(uid=refused)", &["uid"]).unwrap().contains("refused"));

    // Verification off is explicit, and then the wrong CA does not matter.
    let off = tenure_core::config::LdapSettings {
        url: ldaps_url,
        tls: TlsSettings { ca_file: None, verify: false },
        ..peer.settings()
    };
    let c = LdapConnector::new("directory", &off, 1).unwrap();
    assert!(c.read_account(&spec("over-ldaps")).await.unwrap().is_some());
}

#[tokio::test]
async fn https_to_the_scim_peer_behind_tls_works_with_the_right_ca_and_a_wrong_ca_is_refused() {
    let ca = TestCa::new("right").unwrap();
    let wrong = TestCa::new("wrong").unwrap();
    let cert = ca.server(&[]).unwrap();
    let peer =
        tokio::task::spawn_blocking(move || Scim::start_tls(&cert)).await.unwrap().expect("scim2-server must start");
    let https = peer.https_url().unwrap();

    let settings = tenure_core::config::ScimSettings { url: https.clone(), tls: trust(&ca), ..peer.settings() };
    let c = ScimConnector::new("chat", &settings, 2).unwrap();
    let tess = spec("tess");
    assert_eq!(c.apply(&create(&tess)).await.unwrap(), Applied::Changed);
    let state = c.read_account(&tess).await.unwrap().unwrap();
    assert_eq!((state.account.as_str(), state.external_id.as_deref()), ("tess", Some("id-tess")));

    let bad = tenure_core::config::ScimSettings { url: https.clone(), tls: trust(&wrong), ..peer.settings() };
    let e = ScimConnector::new("chat", &bad, 1).unwrap().read_account(&tess).await.unwrap_err();
    assert_refused(&e, &[peer.token()]);
    let system = tenure_core::config::ScimSettings { url: https, ..peer.settings() };
    let e = ScimConnector::new("chat", &system, 1).unwrap().apply(&create(&spec("nope"))).await.unwrap_err();
    assert_refused(&e, &[peer.token()]);
}

/// Whether every backend of the connector's sessions (`application_name = 'tenure'`) uses TLS,
/// as the server sees it, and how many there are.
async fn tenure_sessions_over_tls(pg: &Postgres) -> (bool, i64) {
    let (admin, conn) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = admin
        .query_one(
            "SELECT coalesce(bool_and(s.ssl), false), count(*) FROM pg_stat_ssl s \
             JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tenure'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn postgres_sslmode_verify_full_works_with_the_right_ca_and_a_wrong_ca_is_refused() {
    let ca = TestCa::new("right").unwrap();
    let wrong = TestCa::new("wrong").unwrap();
    let cert = ca.server(&[]).unwrap();
    let pg = Postgres::start_tls(&cert).expect("PostgreSQL must start with ssl = on");

    let verify_full =
        |tls: TlsSettings| PostgresSettings { sslmode: Some(PgSslMode::VerifyFull), tls, ..pg.settings() };
    let c = PostgresConnector::new("warehouse", &verify_full(trust(&ca)), 2).await.unwrap();
    assert_eq!(c.apply(&create(&spec("tls_role"))).await.unwrap(), Applied::Changed);
    assert!(c.read_account(&spec("tls_role")).await.unwrap().is_some());
    assert_eq!(tenure_sessions_over_tls(&pg).await, (true, 1));
    drop(c);

    // The libpq spelling in the URL itself works the same.
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("url");
    let ca_path = ca.ca_file().to_string_lossy().replace('/', "%2F");
    std::fs::write(&url_file, format!("{}?sslmode=verify-full&sslrootcert={ca_path}", pg.url())).unwrap();
    let in_url = PostgresSettings { url: SecretRef::File(url_file.to_string_lossy().into_owned()), ..pg.settings() };
    let c = PostgresConnector::new("warehouse", &in_url, 1).await.unwrap();
    assert!(c.read_account(&spec("tls_role")).await.unwrap().is_some());

    // Another CA, or the system's roots: refused, and the password is in no message.
    for tls in [trust(&wrong), TlsSettings::default()] {
        let c = PostgresConnector::new("warehouse", &verify_full(tls), 1).await.unwrap();
        let e = c.read_account(&spec("tls_role")).await.unwrap_err();
        assert_refused(&e, &[pg.password()]);
    }
    // `verify-ca` checks the chain too; `require` with verification off only encrypts.
    let verify_ca = PostgresSettings { sslmode: Some(PgSslMode::VerifyCa), tls: trust(&wrong), ..pg.settings() };
    let e =
        PostgresConnector::new("warehouse", &verify_ca, 1).await.unwrap().read_account(&spec("x")).await.unwrap_err();
    assert_refused(&e, &[pg.password()]);
    let encrypt_only = PostgresSettings {
        sslmode: Some(PgSslMode::Require),
        tls: TlsSettings { ca_file: None, verify: false },
        ..pg.settings()
    };
    let c = PostgresConnector::new("warehouse", &encrypt_only, 1).await.unwrap();
    assert!(c.read_account(&spec("tls_role")).await.unwrap().is_some());

    // The URL and the target must not disagree.
    let both = PostgresSettings { sslmode: Some(PgSslMode::Disable), ..in_url.clone() };
    let e = PostgresConnector::new("warehouse", &both, 1).await.err().unwrap();
    assert!(e.message.contains("keep one") && !e.message.contains(pg.password()), "{e}");
}

#[tokio::test]
async fn postgres_require_against_a_server_without_tls_fails_permanently_and_says_so() {
    let pg = Postgres::start().expect("PostgreSQL must start");
    let settings = PostgresSettings { sslmode: Some(PgSslMode::Require), ..pg.settings() };
    let e =
        PostgresConnector::new("warehouse", &settings, 1).await.unwrap().read_account(&spec("x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("TLS") && !e.message.contains(pg.password()), "{e}");
    // The default (`prefer`) still talks to it in plain text, as before.
    let c = PostgresConnector::new("warehouse", &pg.settings(), 1).await.unwrap();
    assert!(c.read_account(&spec("x")).await.unwrap().is_none());
}

/// Issue 10: an LDAP account's password is rotated through the Password Modify extended
/// operation only over TLS; the new one binds (checked with `ldapwhoami` over ldaps://), the old
/// one no longer does, the directory keeps a hash and not the text, and a plain connection is
/// refused before anything is sent.
#[tokio::test]
async fn issue10_ldap_passwords_rotate_only_over_tls_and_the_new_one_binds() {
    use tenure_connect::NewSecret;
    let ca = TestCa::new("right").unwrap();
    let cert = ca.server(&[]).unwrap();
    let peer = Ldap::start_with(LdapOptions { tls: Some(&cert), ..LdapOptions::default() })
        .expect("slapd must start with TLS");
    let ldaps_url = peer.ldaps_url.clone().unwrap();
    let ldaps = tenure_core::config::LdapSettings { url: ldaps_url.clone(), tls: trust(&ca), ..peer.settings() };
    let c = LdapConnector::new("directory", &ldaps, 2).unwrap();
    let who = spec("svc-dir");
    assert_eq!(c.apply(&create(&who)).await.unwrap(), Applied::Changed);
    let dn = format!("uid=svc-dir,{}", peer.users_dn);
    let rotate =
        |secret: &NewSecret| Request { kind: OpKind::RotateCredential, secret: Some(secret.clone()), ..create(&who) };
    let binds = |password: &str| {
        let out = std::process::Command::new("ldapwhoami")
            .args(["-x", "-H", &ldaps_url, "-D", &dn, "-w", password])
            .env("LDAPTLS_CACERT", ca.ca_file())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string())
    };

    let first = NewSecret::generate();
    assert_eq!(c.apply(&rotate(&first)).await.unwrap(), Applied::Changed);
    assert_eq!(binds(first.expose()), (Some(0), format!("dn:{dn}")), "the new password binds");
    assert!(c.verify_secret(&who, &first).await.unwrap());
    let stored = peer.ldapsearch(&dn, "(objectClass=*)", &["userPassword"]).unwrap();
    assert!(!stored.contains(first.expose()), "the directory keeps a hash: {stored}");

    let second = NewSecret::generate();
    assert_eq!(c.apply(&rotate(&second)).await.unwrap(), Applied::Changed);
    assert_eq!(binds(second.expose()).0, Some(0));
    assert_eq!(binds(first.expose()).0, Some(49), "the old password is refused (invalidCredentials)");
    assert!(!c.verify_secret(&who, &first).await.unwrap());
    assert!(c.verify_secret(&who, &second).await.unwrap());

    // Over a plain connection the rotation is refused, and nothing changed.
    let plain = LdapConnector::new("directory", &peer.settings(), 1).unwrap();
    let third = NewSecret::generate();
    let e = plain.apply(&rotate(&third)).await.unwrap_err();
    assert!(!e.is_transient() && e.message.contains("only over TLS"), "{e}");
    assert!(!e.message.contains(third.expose()));
    assert!(plain.verify_secret(&who, &third).await.unwrap_err().message.contains("only over TLS"));
    assert_eq!(binds(second.expose()).0, Some(0), "the password is unchanged");
    // A missing account has no password to rotate.
    let e = c.apply(&Request { account: spec("nobody"), ..rotate(&third) }).await.unwrap_err();
    assert!(e.message.contains("does not exist"), "{e}");
}

/// What a SCIM connector trusting `cert` (its own self-signed certificate as `ca_file`) says
/// when the server presents that certificate.
async fn self_signed_answer(ca: bool) -> std::result::Result<(), ConnectorError> {
    let dir = tempfile::tempdir().unwrap();
    answer_with(tenure_testkit::peers::tls::self_signed(dir.path(), ca).unwrap()).await
}

/// What a SCIM connector at `https://127.0.0.1`, trusting `cert` as `ca_file`, says when the
/// server presents `cert`.
async fn answer_with(cert: tenure_testkit::peers::tls::ServerCert) -> std::result::Result<(), ConnectorError> {
    let backend = tenure_testkit::peers::HostileScim::start(|_| {
        (200, tenure_testkit::peers::hostile_scim::list_response(&[], 0, 1))
    })
    .unwrap();
    let port: u16 = backend.url.split(':').nth(2).and_then(|p| p.split('/').next()).unwrap().parse().unwrap();
    let front = tenure_testkit::peers::TlsTerminator::start(&cert, port).unwrap();
    let settings = tenure_core::config::ScimSettings {
        url: format!("https://127.0.0.1:{}/scim/v2", front.port()),
        tls: TlsSettings { ca_file: Some(cert.ca_file.to_string_lossy().into_owned()), verify: true },
        ..tenure_core::config::ScimSettings::default()
    };
    ScimConnector::new("chat", &settings, 1).unwrap().list_accounts().await.map(|_| ())
}

#[tokio::test]
async fn issue15_a_self_signed_ca_certificate_given_as_ca_file_is_refused_saying_what_to_do() {
    // `openssl req -x509` makes a CA:TRUE certificate; served as the server's own certificate,
    // rustls refuses it (`CaUsedAsEndEntity`): the error says what that means and what to do.
    let e = self_signed_answer(true).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("TLS handshake failed: the server's certificate is a CA certificate"), "{e}");
    assert!(e.message.contains("self-signed"), "{e}");
    assert!(e.message.contains("give `ca_file` the CA's certificate"), "{e}");
    assert!(!e.message.contains("CaUsedAsEndEntity"), "{e}");
}

#[tokio::test]
async fn issue15_a_self_signed_leaf_certificate_given_as_ca_file_is_trusted_as_given() {
    // A self-signed certificate without CA:TRUE is its own trust anchor: trusting exactly that
    // certificate is what `ca_file` says.
    let r = self_signed_answer(false).await;
    assert!(r.is_ok(), "{r:?}");
    // Trusted as given, and no more: one naming another host, or expired, is still refused.
    let dir = tempfile::tempdir().unwrap();
    let other = tenure_testkit::peers::tls::self_signed_as(dir.path(), false, &["other.example.com"], false).unwrap();
    let e = answer_with(other).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("does not name the host"), "{e}");
    let old = tenure_testkit::peers::tls::self_signed_as(dir.path(), false, &["127.0.0.1"], true).unwrap();
    let e = answer_with(old).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("expired"), "{e}");
}
