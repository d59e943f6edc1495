//! Tests of the SCIM connector against a real scim2-server (each test starts its own), plus a few
//! against `fake_scim`, a scripted HTTP server for what the real one never does (429, 503, 412,
//! refusing PATCH). What the server holds is checked with plain reqwest calls, not through the
//! connector under test.

use crate::req;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tenure_connect::scim::ScimConnector;
use tenure_connect::{AccountSpec, AccountState, Applied, Connector, ErrorKind};
use tenure_core::OpKind;
use tenure_core::config::{ClientAuth, OAuthSettings, ScimDialect, ScimSettings, SecretRef, TargetSettings};
use tenure_testkit::peers::{Scim, free_port};

// ---- helpers ----

async fn peer() -> Scim {
    tokio::task::spawn_blocking(Scim::start).await.unwrap().expect("scim2-server must start for these tests")
}

fn connector(peer: &Scim) -> ScimConnector {
    ScimConnector::new("chat", &peer.settings(), 4).unwrap()
}

fn spec(account: &str, identity: &str) -> AccountSpec {
    AccountSpec {
        identity_id: identity.into(),
        account: account.into(),
        given_name: Some("Ann".into()),
        family_name: Some("Lee".into()),
        email: Some(format!("{identity}@example.com")),
        ..AccountSpec::default()
    }
}

async fn apply(c: &ScimConnector, kind: OpKind, account: &AccountSpec, entitlement: Option<&str>) -> Applied {
    c.apply(&req(kind, account, entitlement)).await.unwrap_or_else(|e| panic!("{kind} of `{}`: {e}", account.account))
}

async fn read(c: &ScimConnector, account: &AccountSpec) -> AccountState {
    c.read_account(account).await.unwrap().unwrap_or_else(|| panic!("`{}` should exist", account.account))
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A plain client for the peer, independent of the connector.
struct Raw {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Raw {
    fn new(peer: &Scim) -> Self {
        Raw { client: reqwest::Client::new(), url: peer.url(), token: peer.token().to_string() }
    }

    async fn list(&self, endpoint: &str) -> Vec<Value> {
        let url = format!("{}/{endpoint}?count=1000", self.url);
        let resp = self.client.get(url).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        body["Resources"].as_array().cloned().unwrap_or_default()
    }

    async fn users_named(&self, user_name: &str) -> Vec<Value> {
        self.list("Users").await.into_iter().filter(|u| u["userName"] == json!(user_name)).collect()
    }

    async fn groups_named(&self, name: &str) -> Vec<Value> {
        self.list("Groups").await.into_iter().filter(|g| g["displayName"] == json!(name)).collect()
    }

    async fn post(&self, endpoint: &str, body: Value) -> Value {
        let url = format!("{}/{endpoint}", self.url);
        let resp = self.client.post(url).bearer_auth(&self.token).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    async fn delete(&self, endpoint: &str, id: &str) {
        let url = format!("{}/{endpoint}/{id}", self.url);
        let resp = self.client.delete(url).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
}

fn member_ids(group: &Value) -> Vec<String> {
    group["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["value"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

// ---- against the real scim2-server ----

#[tokio::test]
async fn lifecycle_create_grant_disable_enable_revoke_delete_reads_back_each_step() {
    let peer = peer().await;
    let c = connector(&peer);
    let ann = spec("ann.lee", "E100");

    assert_eq!(c.read_account(&ann).await.unwrap(), None);
    assert_eq!(apply(&c, OpKind::CreateAccount, &ann, None).await, Applied::Changed);
    let state = read(&c, &ann).await;
    assert_eq!(state.account, "ann.lee");
    assert_eq!(state.external_id.as_deref(), Some("E100"));
    assert!(state.enabled);
    assert!(state.grants.is_empty());
    let stored = Raw::new(&peer).users_named("ann.lee").await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["name"]["formatted"], json!("Ann Lee"));
    assert_eq!(stored[0]["displayName"], json!("Ann Lee"));
    assert_eq!(stored[0]["emails"], json!([{"value": "E100@example.com", "primary": true, "type": "work"}]));

    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("engineers")).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::Grant, &ann, Some("staff")).await, Applied::Changed);
    assert_eq!(read(&c, &ann).await.grants, names(&["engineers", "staff"]));

    assert_eq!(apply(&c, OpKind::Disable, &ann, None).await, Applied::Changed);
    assert!(!read(&c, &ann).await.enabled);
    assert_eq!(apply(&c, OpKind::Enable, &ann, None).await, Applied::Changed);
    assert!(read(&c, &ann).await.enabled);

    assert_eq!(apply(&c, OpKind::Revoke, &ann, Some("engineers")).await, Applied::Changed);
    assert_eq!(read(&c, &ann).await.grants, names(&["staff"]));

    assert_eq!(apply(&c, OpKind::DeleteAccount, &ann, None).await, Applied::Changed);
    assert_eq!(c.read_account(&ann).await.unwrap(), None);
    let raw = Raw::new(&peer);
    assert!(raw.users_named("ann.lee").await.is_empty());
    // The deleted user's id is not left behind in its groups.
    assert!(member_ids(&raw.groups_named("staff").await[0]).is_empty());
}

#[tokio::test]
async fn every_operation_twice_is_already_done_the_second_time_without_duplicates() {
    let peer = peer().await;
    let c = connector(&peer);
    let raw = Raw::new(&peer);
    let bo = spec("bo", "E200");

    let steps: [(OpKind, Option<&str>); 6] = [
        (OpKind::CreateAccount, None),
        (OpKind::Grant, Some("everyone")),
        (OpKind::Disable, None),
        (OpKind::Enable, None),
        (OpKind::Revoke, Some("everyone")),
        (OpKind::DeleteAccount, None),
    ];
    for (kind, entitlement) in steps {
        assert_eq!(apply(&c, kind, &bo, entitlement).await, Applied::Changed, "first {kind}");
        assert_eq!(apply(&c, kind, &bo, entitlement).await, Applied::AlreadyDone, "second {kind}");
        // A fresh connector has no cached ids: it must come to the same answer from the server.
        assert_eq!(apply(&connector(&peer), kind, &bo, entitlement).await, Applied::AlreadyDone, "fresh {kind}");

        let users = raw.users_named("bo").await;
        let groups = raw.groups_named("everyone").await;
        assert!(users.len() <= 1, "after {kind}: {users:?}");
        assert!(groups.len() <= 1, "after {kind}: {groups:?}");
        if kind == OpKind::Grant {
            assert_eq!(member_ids(&groups[0]), vec![users[0]["id"].as_str().unwrap().to_string()]);
        }
        if kind == OpKind::Revoke {
            assert!(member_ids(&groups[0]).is_empty());
        }
    }
    assert!(raw.users_named("bo").await.is_empty());
    // Operations on an account that is gone: nothing to remove is already done.
    assert_eq!(apply(&c, OpKind::Disable, &bo, None).await, Applied::AlreadyDone);
    assert_eq!(apply(&c, OpKind::Revoke, &bo, Some("everyone")).await, Applied::AlreadyDone);
    let grant = c.apply(&req(OpKind::Grant, &bo, Some("everyone"))).await.unwrap_err();
    assert_eq!(grant.kind, ErrorKind::Transient, "{grant}");
}

#[tokio::test]
async fn hostile_user_names_in_filters_match_only_themselves() {
    let peer = peer().await;
    let c = connector(&peer);
    let hostile = [
        r#"a"b\c"#,
        r#"x" or userName pr ""#,
        r#"y" or "1" eq "1"#,
        r#"\"#,
        "Jürgen.Groß",
        "名前",
        "space name",
        "pct%20and&amp=+",
    ];
    let decoy = spec("decoy", "E-decoy");
    apply(&c, OpKind::CreateAccount, &decoy, None).await;
    apply(&c, OpKind::Grant, &decoy, Some("decoys")).await;
    for (i, name) in hostile.iter().enumerate() {
        let s = spec(name, &format!("E3{i:02}"));
        // Before it exists, a filter built from the name must match nobody (not the decoy).
        assert_eq!(c.read_account(&s).await.unwrap(), None, "{name:?}");
        assert_eq!(apply(&c, OpKind::Disable, &s, None).await, Applied::AlreadyDone, "{name:?}");
        assert_eq!(apply(&c, OpKind::CreateAccount, &s, None).await, Applied::Changed, "{name:?}");
        assert_eq!(apply(&connector(&peer), OpKind::CreateAccount, &s, None).await, Applied::AlreadyDone, "{name:?}");
        assert_eq!(apply(&c, OpKind::Grant, &s, Some(name)).await, Applied::Changed, "{name:?}");
        let state = read(&connector(&peer), &s).await;
        assert_eq!(state.account, *name);
        assert_eq!(state.external_id, Some(format!("E3{i:02}")));
        assert_eq!(state.grants, names(&[name]));
    }
    let raw = Raw::new(&peer);
    assert_eq!(raw.list("Users").await.len(), hostile.len() + 1);
    for name in hostile {
        assert_eq!(raw.users_named(name).await.len(), 1, "{name:?}");
    }
    // The decoy was never touched.
    let decoy_state = read(&c, &decoy).await;
    assert!(decoy_state.enabled);
    assert_eq!(decoy_state.grants, names(&["decoys"]));
}

#[tokio::test]
async fn create_never_adopts_an_uncorrelated_user_and_refuses_one_of_another_identity() {
    let peer = peer().await;
    let c = connector(&peer);
    let raw = Raw::new(&peer);
    raw.post(
        "Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "cy", "active": false}),
    )
    .await;
    raw.post(
        "Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dee", "externalId": "E-other"}),
    )
    .await;

    // A user carrying no externalId is handed back, unchanged: a person decides whose it is.
    let cy = spec("CY", "E400");
    let Applied::NotOwned(found) = apply(&c, OpKind::CreateAccount, &cy, None).await else { panic!("adopted") };
    assert_eq!((found.account.as_str(), found.external_id.as_deref(), found.enabled), ("cy", None, false));
    let state = read(&c, &cy).await;
    assert_eq!((state.external_id.as_deref(), state.enabled), (None, false));
    assert_eq!(raw.list("Users").await.len(), 2);

    // One carrying this identity's externalId (a create whose answer was lost) is its own.
    raw.post(
        "Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fay", "externalId": "E402", "active": false}),
    )
    .await;
    let fay = spec("fay", "E402");
    assert_eq!(apply(&c, OpKind::CreateAccount, &fay, None).await, Applied::Changed);
    assert!(read(&c, &fay).await.enabled);
    assert_eq!(apply(&c, OpKind::CreateAccount, &fay, None).await, Applied::AlreadyDone);

    let err = c.apply(&req(OpKind::CreateAccount, &spec("dee", "E401"), None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(err.message.contains("E-other"), "{err}");
    assert_eq!(raw.users_named("dee").await[0]["externalId"], json!("E-other"));
}

#[tokio::test]
async fn a_stale_cached_id_leads_to_a_fresh_look_up() {
    let peer = peer().await;
    let c = connector(&peer);
    let raw = Raw::new(&peer);
    let eve = spec("eve", "E500");
    apply(&c, OpKind::CreateAccount, &eve, None).await;
    apply(&c, OpKind::Grant, &eve, Some("ops")).await;

    // Someone recreates the user behind the connector's back: same userName, new id.
    let old = raw.users_named("eve").await;
    raw.delete("Users", old[0]["id"].as_str().unwrap()).await;
    let group = raw.groups_named("ops").await;
    raw.delete("Groups", group[0]["id"].as_str().unwrap()).await;
    let new = raw
        .post(
            "Users",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "eve", "externalId": "E500"}),
        )
        .await;

    assert_eq!(apply(&c, OpKind::Disable, &eve, None).await, Applied::Changed);
    assert_eq!(apply(&c, OpKind::Grant, &eve, Some("ops")).await, Applied::Changed);
    let state = read(&c, &eve).await;
    assert!(!state.enabled);
    assert_eq!(state.grants, names(&["ops"]));
    assert_eq!(member_ids(&raw.groups_named("ops").await[0]), vec![new["id"].as_str().unwrap().to_string()]);
}

#[tokio::test]
async fn list_accounts_pages_through_users_and_joins_group_memberships() {
    let peer = peer().await;
    let c = connector(&peer).with_page_size(2);
    for i in 0..5 {
        let s = spec(&format!("u{i}"), &format!("E6{i}"));
        apply(&c, OpKind::CreateAccount, &s, None).await;
        apply(&c, OpKind::Grant, &s, Some("all")).await;
        if i % 2 == 0 {
            apply(&c, OpKind::Grant, &s, Some("even")).await;
        }
        if i == 3 {
            apply(&c, OpKind::Disable, &s, None).await;
        }
    }
    for g in ["g1", "g2", "g3"] {
        apply(&c, OpKind::Grant, &spec("u4", "E64"), Some(g)).await;
    }
    let mut accounts = c.list_accounts().await.unwrap();
    accounts.sort_by(|a, b| a.account.cmp(&b.account));
    let got: Vec<(String, Option<String>, bool, BTreeSet<String>)> =
        accounts.into_iter().map(|a| (a.account, a.external_id, a.enabled, a.grants)).collect();
    let want = vec![
        ("u0".to_string(), Some("E60".to_string()), true, names(&["all", "even"])),
        ("u1".into(), Some("E61".into()), true, names(&["all"])),
        ("u2".into(), Some("E62".into()), true, names(&["all", "even"])),
        ("u3".into(), Some("E63".into()), false, names(&["all"])),
        ("u4".into(), Some("E64".into()), true, names(&["all", "even", "g1", "g2", "g3"])),
    ];
    assert_eq!(got, want);
    assert_eq!(c.list_entitlements().await.unwrap(), vec!["all", "even", "g1", "g2", "g3"]);
}

#[tokio::test]
async fn concurrent_first_grants_make_one_group() {
    let peer = peer().await;
    let c = Arc::new(connector(&peer));
    let people: Vec<AccountSpec> = (0..6).map(|i| spec(&format!("p{i}"), &format!("E7{i}"))).collect();
    for p in &people {
        apply(&c, OpKind::CreateAccount, p, None).await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for p in people.clone() {
        let c = c.clone();
        tasks.spawn(async move { c.apply(&req(OpKind::Grant, &p, Some("launch"))).await });
    }
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), Applied::Changed);
    }
    let groups = Raw::new(&peer).groups_named("launch").await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(member_ids(&groups[0]).len(), people.len());
}

#[tokio::test]
async fn a_target_that_goes_down_fails_transiently_and_keeps_its_data_after_restart() {
    let mut peer = peer().await;
    let c = connector(&peer);
    let fay = spec("fay", "E800");
    apply(&c, OpKind::CreateAccount, &fay, None).await;
    apply(&c, OpKind::Grant, &fay, Some("finance")).await;

    let mut peer = tokio::task::spawn_blocking(move || {
        peer.stop().unwrap();
        peer
    })
    .await
    .unwrap();
    let err = c.apply(&req(OpKind::Disable, &fay, None)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert_eq!(c.read_account(&fay).await.unwrap_err().kind, ErrorKind::Transient);

    let peer = tokio::task::spawn_blocking(move || {
        peer.restart().unwrap();
        peer
    })
    .await
    .unwrap();
    // Ids changed with the restart; the connector's cached id is stale and must be looked up.
    assert_eq!(apply(&c, OpKind::Disable, &fay, None).await, Applied::Changed);
    let state = read(&c, &fay).await;
    assert!(!state.enabled);
    assert_eq!(state.external_id.as_deref(), Some("E800"));
    assert_eq!(state.grants, names(&["finance"]));
    assert_eq!(apply(&c, OpKind::Revoke, &fay, Some("finance")).await, Applied::Changed);
    assert!(read(&c, &fay).await.grants.is_empty());
    drop(peer);
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_never_echoed() {
    let peer = peer().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "wrong-token-value\n").unwrap();
    let settings = ScimSettings {
        url: peer.url(),
        token: SecretRef::File(file.to_string_lossy().into_owned()),
        ..ScimSettings::default()
    };
    let c = ScimConnector::new("chat", &settings, 1).unwrap();
    let err = c.read_account(&spec("gus", "E900")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Permanent, "{err}");
    assert!(err.message.contains("401"), "{err}");
    assert!(!err.message.contains("wrong-token-value"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let port = free_port().unwrap();
    let settings = ScimSettings { url: format!("http://127.0.0.1:{port}/v2"), ..ScimSettings::default() };
    let c = ScimConnector::new("chat", &settings, 1).unwrap();
    for result in [
        c.apply(&req(OpKind::CreateAccount, &spec("hal", "E1000"), None)).await.map(|_| ()),
        c.read_account(&spec("hal", "E1000")).await.map(|_| ()),
        c.list_accounts().await.map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Transient, "{err}");
        assert!(err.message.starts_with("scim target `chat`: ") && err.message.contains("cannot connect"), "{err}");
    }
}

#[tokio::test]
async fn bad_settings_are_permanent_errors() {
    let missing = ScimSettings {
        url: "http://127.0.0.1:1/v2".into(),
        token: SecretRef::Env("TENURE_TEST_NO_SUCH_VAR".into()),
        ..ScimSettings::default()
    };
    assert_eq!(ScimConnector::new("chat", &missing, 1).err().unwrap().kind, ErrorKind::Permanent);
    let bad_url = ScimSettings { url: "not a url".into(), token: SecretRef::None, ..ScimSettings::default() };
    assert_eq!(ScimConnector::new("chat", &bad_url, 1).err().unwrap().kind, ErrorKind::Permanent);
}

// ---- against fake_scim, for behaviour the real server never shows ----

pub(crate) mod fake_scim {
    //! A scripted HTTP server on 127.0.0.1 that plays a SCIM service provider badly on purpose.
    //! One request per connection; every request is recorded.

    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub target: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Seen {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        }
    }

    pub struct Reply {
        pub status: u16,
        pub headers: Vec<(&'static str, String)>,
        pub body: String,
    }

    impl Reply {
        pub fn new(status: u16, body: impl Into<String>) -> Self {
            Reply { status, headers: Vec::new(), body: body.into() }
        }

        pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
            self.headers.push((name, value.into()));
            self
        }
    }

    pub struct FakeScim {
        pub url: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for FakeScim {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl FakeScim {
        /// Serves `script(request, index of the request)` until dropped.
        pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> FakeScim {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/v2", listener.local_addr().unwrap());
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let log = seen.clone();
            let task = tokio::spawn(async move {
                while let Ok((mut sock, _)) = listener.accept().await {
                    let Some(req) = read_request(&mut sock).await else { continue };
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(req.clone());
                        log.len() - 1
                    };
                    let reply = script(&req, n);
                    let mut out = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
                    for (name, value) in &reply.headers {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    out.push_str(&format!(
                        "Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n{}",
                        reply.body.len(),
                        reply.body
                    ));
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                }
            });
            FakeScim { url, seen, task }
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    pub async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 1 << 20 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split_whitespace();
        let (method, target) = (first.next()?.to_string(), first.next()?.to_string());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_string(), v.trim().to_string())))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Seen { method, target, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

use fake_scim::{FakeScim, Reply};

const TOKEN: &str = "fake-secret-token-123";

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

fn user_list(active: bool, version: &str) -> String {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": 1,
        "Resources": [{"id": "u1", "userName": "ivy", "externalId": "E1100", "active": active, "meta": {"version": version}}],
    })
    .to_string()
}

#[tokio::test]
async fn fake_scim_429_and_503_carry_retry_after_and_are_transient() {
    let fake = FakeScim::start(|_, n| match n {
        0 => Reply::new(429, r#"{"status": "429", "detail": "slow down"}"#).header("Retry-After", "7"),
        1 => Reply::new(503, "").header("Retry-After", "Fri, 31 Dec 2100 23:59:59 GMT"),
        2 => Reply::new(503, ""),
        3 => Reply::new(502, "<html>bad gateway</html>"),
        4 => Reply::new(400, r#"{"status": "400", "scimType": "invalidValue", "detail": "nope"}"#),
        _ => Reply::new(403, ""),
    })
    .await;
    let (c, _dir) = fake_connector(&fake);
    let ivy = spec("ivy", "E1100");

    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!((e.kind, e.retry_after), (ErrorKind::Transient, Some(Duration::from_secs(7))), "{e}");
    assert!(e.message.contains("429") && e.message.contains("slow down"), "{e}");
    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.retry_after.is_some_and(|d| d > Duration::from_secs(3600)), "{e:?}");
    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!((e.kind, e.retry_after), (ErrorKind::Transient, None), "{e}");
    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!((e.kind, e.retry_after), (ErrorKind::Permanent, None), "{e}");
    assert!(e.message.contains("invalidValue: nope"), "{e}");
    let e = c.read_account(&ivy).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");

    let seen = fake.seen();
    assert_eq!(seen.len(), 6);
    for s in &seen {
        assert_eq!(s.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert!(s.target.starts_with("/v2/Users?filter=userName%20eq%20%22ivy%22"), "{}", s.target);
    }
}

#[tokio::test]
async fn fake_scim_412_makes_the_connector_read_again_and_retry_once() {
    let fake = FakeScim::start(|req, _| match req.method.as_str() {
        "GET" => Reply::new(200, user_list(true, "W/\"2\"")),
        "PATCH" if req.header("if-match") == Some("W/\"2\"") && req.body.contains("\"active\"") => {
            // The first PATCH loses a race; the second wins.
            Reply::new(if FIRST_PATCH.swap(false, std::sync::atomic::Ordering::SeqCst) { 412 } else { 204 }, "")
        }
        _ => Reply::new(400, ""),
    })
    .await;
    static FIRST_PATCH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);
    let (c, _dir) = fake_connector(&fake);
    assert_eq!(apply(&c, OpKind::Disable, &spec("ivy", "E1100"), None).await, Applied::Changed);
    let methods: Vec<String> = fake.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(methods, ["GET", "PATCH", "GET", "PATCH"]);

    // Two 412s in a row: transient, not a loop.
    let always_412 = FakeScim::start(|req, _| match req.method.as_str() {
        "GET" => Reply::new(200, user_list(true, "W/\"5\"")),
        _ => Reply::new(412, ""),
    })
    .await;
    let (c, _dir) = fake_connector(&always_412);
    let e = c.apply(&req(OpKind::Disable, &spec("ivy", "E1100"), None)).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert_eq!(always_412.seen().len(), 4);
}

#[tokio::test]
async fn fake_scim_refusing_patch_gets_a_put_with_if_match() {
    let fake = FakeScim::start(|req, _| match (req.method.as_str(), req.target.as_str()) {
        ("GET", t) if t.starts_with("/v2/Users?") => Reply::new(200, user_list(true, "W/\"3\"")),
        ("PATCH", _) => Reply::new(405, ""),
        ("GET", "/v2/Users/u1") => Reply::new(
            200,
            json!({"id": "u1", "userName": "ivy", "active": true, "title": "keep me", "meta": {"version": "W/\"3\""}})
                .to_string(),
        )
        .header("ETag", "W/\"3\""),
        ("PUT", "/v2/Users/u1") => Reply::new(200, "{}"),
        _ => Reply::new(400, ""),
    })
    .await;
    let (c, _dir) = fake_connector(&fake);
    assert_eq!(apply(&c, OpKind::Disable, &spec("ivy", "E1100"), None).await, Applied::Changed);
    let seen = fake.seen();
    let put = seen.iter().find(|s| s.method == "PUT").expect("a PUT");
    assert_eq!(put.header("if-match"), Some("W/\"3\""));
    let body: Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!((body["active"].clone(), body["title"].clone()), (json!(false), json!("keep me")));
    assert!(body.get("meta").is_none());

    // Once refused, PATCH is not tried again.
    let before = fake.seen().iter().filter(|s| s.method == "PATCH").count();
    apply(&c, OpKind::Disable, &spec("ivy", "E1100"), None).await;
    assert_eq!(fake.seen().iter().filter(|s| s.method == "PATCH").count(), before);
}

// ---- SCIM for real apps: OAuth client credentials, dialects, paging caps ----

mod token_endpoint {
    //! The OAuth 2.0 peer: a tiny token endpoint (RFC 6749 §4.4) the test starts. It hands out
    //! the tokens the test scripts, with the lifetime it is given, and records every request.
    //! The SCIM app behind it stays the real scim2-server.

    use super::fake_scim::Seen;
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    pub struct TokenEndpoint {
        pub url: String,
        pub seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for TokenEndpoint {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl TokenEndpoint {
        /// Answers request `n` with `script(request, n)`: `(status, JSON body)`.
        pub async fn start(script: impl Fn(&Seen, usize) -> (u16, String) + Send + Sync + 'static) -> TokenEndpoint {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/oauth2/token", listener.local_addr().unwrap());
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let log = seen.clone();
            let task = tokio::spawn(async move {
                while let Ok((mut sock, _)) = listener.accept().await {
                    let Some(req) = super::fake_scim::read_request(&mut sock).await else { continue };
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(req.clone());
                        log.len() - 1
                    };
                    let (status, body) = script(&req, n);
                    let out = format!(
                        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Type: application/json\r\n\
                         Cache-Control: no-store\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(out.as_bytes()).await;
                    let _ = sock.shutdown().await;
                }
            });
            TokenEndpoint { url, seen, task }
        }

        pub fn requests(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }
}

use token_endpoint::TokenEndpoint;

const CLIENT_SECRET: &str = "cl13nt-s3cret/with+odd=chars";

fn oauth_settings(peer: &Scim, endpoint: &TokenEndpoint, dir: &tempfile::TempDir, auth: ClientAuth) -> ScimSettings {
    let secret_file = dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
    ScimSettings {
        url: peer.url(),
        oauth: Some(OAuthSettings {
            token_url: endpoint.url.clone(),
            client_id: "tenure app".into(),
            client_secret: SecretRef::File(secret_file.to_string_lossy().into_owned()),
            scope: Some("scim.provision".into()),
            client_auth: auth,
            token_ca_file: None,
        }),
        ..ScimSettings::default()
    }
}

fn token_answer(token: &str, expires_in: f64) -> (u16, String) {
    (200, json!({"access_token": token, "token_type": "Bearer", "expires_in": expires_in}).to_string())
}

#[tokio::test]
async fn oauth_client_credentials_token_is_fetched_cached_and_refreshed_on_expiry_and_on_401() {
    let peer = peer().await;
    let good = peer.token().to_string();
    // The first token handed out has been revoked already (scim2-server answers 401 to it);
    // every later one is the token the app accepts, valid for two seconds.
    let endpoint = TokenEndpoint::start(move |_, n| {
        if n == 0 { token_answer("revoked-before-expiry", 3600.0) } else { token_answer(&good, 2.0) }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = ScimConnector::new("app", &oauth_settings(&peer, &endpoint, &dir, ClientAuth::Basic), 2).unwrap();
    assert_eq!(c.token_fetches(), 0, "nothing is fetched before it is needed");

    let ann = spec("ann", "E1");
    // 401 with the revoked token, a fresh one, and the create goes through.
    assert_eq!(apply(&c, OpKind::CreateAccount, &ann, None).await, Applied::Changed);
    assert_eq!(c.token_fetches(), 2);
    // Cached: a burst of work costs no more token requests.
    apply(&c, OpKind::Grant, &ann, Some("staff")).await;
    assert_eq!(read(&c, &ann).await.grants, names(&["staff"]));
    c.list_accounts().await.unwrap();
    assert_eq!(c.token_fetches(), 2);
    // Expired (refreshed a little before the two seconds are up): fetched again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    apply(&c, OpKind::Disable, &ann, None).await;
    assert_eq!(c.token_fetches(), 3);
    assert!(!Raw::new(&peer).users_named("ann").await[0]["active"].as_bool().unwrap());

    // What the token endpoint saw: the client credentials grant, the scope, HTTP Basic with
    // both parts form-encoded (RFC 6749 §2.3.1), and never the secret in the body.
    let requests = endpoint.requests();
    assert_eq!(requests.len(), 3);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("tenure+app:cl13nt-s3cret%2Fwith%2Bodd%3Dchars");
    for r in &requests {
        assert_eq!((r.method.as_str(), r.target.as_str()), ("POST", "/oauth2/token"));
        assert_eq!(r.header("content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.body, "grant_type=client_credentials&scope=scim.provision");
        assert_eq!(r.header("authorization"), Some(format!("Basic {basic}").as_str()));
    }

    // `client_auth = "post"` puts the credentials in the form instead.
    let c = ScimConnector::new("app", &oauth_settings(&peer, &endpoint, &dir, ClientAuth::Post), 1).unwrap();
    read(&c, &ann).await;
    let last = endpoint.requests().pop().unwrap();
    assert_eq!(last.header("authorization"), None);
    assert_eq!(
        last.body,
        "grant_type=client_credentials&scope=scim.provision&client_id=tenure+app&client_secret=cl13nt-s3cret%2Fwith%2Bodd%3Dchars"
    );
}

#[tokio::test]
async fn oauth_errors_never_show_the_client_secret_or_a_token() {
    let peer = peer().await;
    // An endpoint that echoes the credentials back in its error, as a careless one might.
    let endpoint = TokenEndpoint::start(|req, n| match n {
        0 => (
            401,
            json!({"error": "invalid_client", "error_description": format!("bad secret in {}", req.body)}).to_string(),
        ),
        1 => (503, String::new()),
        _ => (200, json!({"access_token": "t0ken-value-xyz", "token_type": "mac"}).to_string()),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let c = ScimConnector::new("app", &oauth_settings(&peer, &endpoint, &dir, ClientAuth::Post), 1).unwrap();
    let ann = spec("ann", "E1");
    let e = c.read_account(&ann).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("HTTP 401: invalid_client: bad secret in"), "{e}");
    let e2 = c.read_account(&ann).await.unwrap_err();
    assert_eq!(e2.kind, ErrorKind::Transient, "{e2}");
    let e3 = c.read_account(&ann).await.unwrap_err();
    assert!(e3.message.contains("unsupported token type `mac`"), "{e3}");
    let encoded = "cl13nt-s3cret%2Fwith%2Bodd%3Dchars";
    for e in [&e, &e2, &e3] {
        assert!(!e.message.contains(CLIENT_SECRET) && !e.message.contains(encoded), "{e}");
        assert!(!e.message.contains("t0ken-value-xyz"), "{e}");
    }
    // Nothing reachable at all: transient, and still no secret.
    let port = free_port().unwrap();
    let mut settings = oauth_settings(&peer, &endpoint, &dir, ClientAuth::Basic);
    if let Some(o) = settings.oauth.as_mut() {
        o.token_url = format!("http://127.0.0.1:{port}/token");
    }
    let e = ScimConnector::new("app", &settings, 1).unwrap().read_account(&ann).await.unwrap_err();
    assert!(e.is_transient() && e.message.contains("cannot reach the token endpoint"), "{e}");
    assert!(!e.message.contains(CLIENT_SECRET), "{e}");
}

#[tokio::test]
async fn entra_dialect_and_put_instead_of_patch_work_against_scim2_server() {
    let peer = peer().await;
    for dialect in [ScimDialect::ENTRA, ScimDialect { put_instead_of_patch: true, ..ScimDialect::STANDARD }] {
        let raw = Raw::new(&peer);
        let settings = ScimSettings { dialect, ..peer.settings() };
        let c = ScimConnector::new("app", &settings, 2).unwrap();
        let tag = if dialect.put_instead_of_patch { "put" } else { "entra" };
        let (a, b) = (spec(&format!("{tag}-a"), &format!("{tag}-1")), spec(&format!("{tag}-b"), &format!("{tag}-2")));
        let group = format!("{tag}-team");
        for s in [&a, &b] {
            apply(&c, OpKind::CreateAccount, s, None).await;
            assert_eq!(apply(&c, OpKind::Grant, s, Some(&group)).await, Applied::Changed);
        }
        // Removing one member by value leaves the other in place.
        assert_eq!(apply(&c, OpKind::Revoke, &a, Some(&group)).await, Applied::Changed);
        assert_eq!(read(&c, &a).await.grants, names(&[]));
        assert_eq!(read(&c, &b).await.grants, names(&[&group]));
        let stored = raw.groups_named(&group).await;
        assert_eq!(member_ids(&stored[0]).len(), 1, "{dialect:?}: {stored:?}");
        // `active` sent as "False" (or in a PUT) is stored as false.
        assert_eq!(apply(&c, OpKind::Disable, &b, None).await, Applied::Changed);
        assert_eq!(raw.users_named(&b.account).await[0]["active"], json!(false), "{dialect:?}");
        assert!(!read(&c, &b).await.enabled);
        assert_eq!(apply(&c, OpKind::Enable, &b, None).await, Applied::Changed);
        assert_eq!(raw.users_named(&b.account).await[0]["active"], json!(true), "{dialect:?}");
        // A mover's new title and family name: one PATCH (or PUT) of what differs, read back;
        // again is already done; a title that goes away is removed.
        let moved = AccountSpec {
            family_name: Some("Grey".into()),
            attributes: [("title".to_string(), "Lead".to_string())].into(),
            ..b.clone()
        };
        assert_eq!(apply(&c, OpKind::UpdateAttributes, &moved, None).await, Applied::Changed, "{dialect:?}");
        let stored = &raw.users_named(&b.account).await[0];
        assert_eq!(stored["title"], json!("Lead"), "{dialect:?}: {stored}");
        assert_eq!(stored["name"]["familyName"], json!("Grey"), "{dialect:?}: {stored}");
        assert_eq!(stored["displayName"], json!("Ann Grey"), "{dialect:?}: {stored}");
        assert_eq!(stored["userName"], json!(b.account), "{dialect:?}: {stored}");
        assert_eq!(stored["active"], json!(true), "{dialect:?}: {stored}");
        let live = c.read_attributes(&moved).await.unwrap().unwrap();
        let desired = tenure_core::attributes::desired(&TargetSettings::Scim(settings.clone()), |n| moved.lookup(n));
        assert_eq!(tenure_core::attributes::changes(&desired, &live), vec![], "{dialect:?}");
        assert_eq!(apply(&c, OpKind::UpdateAttributes, &moved, None).await, Applied::AlreadyDone);
        let untitled = AccountSpec { attributes: Default::default(), ..moved.clone() };
        assert_eq!(apply(&c, OpKind::UpdateAttributes, &untitled, None).await, Applied::Changed);
        let stored = &raw.users_named(&b.account).await[0];
        assert!(stored.get("title").is_none_or(serde_json::Value::is_null), "{dialect:?}: {stored}");
        // scim2-server follows RFC 7644 and refuses removal by value: the connector says so once
        // and uses the filtered path from then on.
        let notes = c.take_notes();
        if dialect == ScimDialect::ENTRA {
            assert_eq!(notes.len(), 1, "{notes:#?}");
            assert!(
                notes[0].contains("refused removing a group member by value") && notes[0].contains("HTTP 400"),
                "{notes:#?}"
            );
        } else {
            assert!(notes.is_empty(), "{notes:#?}");
        }
    }
}

#[tokio::test]
async fn listing_stops_at_max_pages_and_max_response_bytes() {
    let peer = peer().await;
    let c = connector(&peer);
    for i in 0..40 {
        apply(&c, OpKind::CreateAccount, &spec(&format!("p{i}"), &format!("E{i}")), None).await;
    }
    let capped = |page_size, max_pages, max_response_bytes| {
        let s = ScimSettings { page_size, max_pages, max_response_bytes, ..peer.settings() };
        ScimConnector::new("app", &s, 1).unwrap()
    };
    // 40 users in pages of 15 need 3 pages.
    let e = capped(15, 2, 1 << 20).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("stopped after 2 pages (30 resources, `max_pages`)"), "{e}");
    assert_eq!(capped(15, 3, 1 << 20).list_accounts().await.unwrap().len(), 40);
    // One page of all forty is larger than 4 KiB.
    let e = capped(100, 10, 4096).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("larger than 4096 bytes (`max_response_bytes`)"), "{e}");
    assert_eq!(capped(100, 10, 1 << 20).list_accounts().await.unwrap().len(), 40);
    assert!(c.take_notes().is_empty(), "scim2-server's itemsPerPage is right");
}

#[tokio::test]
async fn fake_scim_items_per_page_that_differs_from_what_was_returned_is_tolerated_and_noted() {
    // A fault the real server does not have: itemsPerPage claims the count asked for.
    let fake = FakeScim::start(|req, _| {
        let page = |ids: &[&str], total: u64| {
            let resources: Vec<Value> = ids.iter().map(|id| json!({"id": id, "userName": id})).collect();
            json!({"totalResults": total, "itemsPerPage": 50, "startIndex": 1, "Resources": resources}).to_string()
        };
        if req.target.starts_with("/v2/Groups") {
            return Reply::new(200, json!({"totalResults": 0, "Resources": []}).to_string());
        }
        match req.target.contains("startIndex=1&") {
            true => Reply::new(200, page(&["u1", "u2"], 3)),
            false => Reply::new(200, page(&["u3"], 3)),
        }
    })
    .await;
    let (c, _dir) = fake_connector(&fake);
    let listed = c.list_accounts().await.unwrap();
    assert_eq!(listed.iter().map(|a| a.account.as_str()).collect::<Vec<_>>(), ["u1", "u2", "u3"]);
    let notes = c.take_notes();
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(notes[0].contains("page 1 claimed itemsPerPage 50 but held 2 resources"), "{notes:#?}");
    assert!(c.take_notes().is_empty(), "notes are handed out once");
}

// ---- issue 15: a listing is bounded in all, not only per page ----

/// A connector for a hostile server, with `max_listing_items`/`max_listing_bytes` as given.
fn hostile_connector(server: &tenure_testkit::peers::HostileScim, items: usize, bytes: usize) -> ScimConnector {
    let settings = ScimSettings {
        url: server.url.clone(),
        page_size: 50,
        listing: tenure_core::config::ListingLimits { max_items: items, max_bytes: bytes, ..Default::default() },
        ..ScimSettings::default()
    };
    ScimConnector::new("chat", &settings, 2).unwrap()
}

/// A connector for a hostile server with these listing limits, sending `concurrency` at once.
fn limited_connector(
    server: &tenure_testkit::peers::HostileScim,
    listing: tenure_core::config::ListingLimits,
    concurrency: usize,
) -> ScimConnector {
    let settings = ScimSettings { url: server.url.clone(), page_size: 50, listing, ..ScimSettings::default() };
    ScimConnector::new("chat", &settings, concurrency).unwrap()
}

#[tokio::test]
async fn issue15_a_groups_page_of_empty_members_fails_before_it_is_decoded() {
    use tenure_testkit::peers::hostile_scim::list_response;
    // Every Groups page is one new group of 100,000 `{}` members: 300 KB on the wire, each a
    // decoded member if kept; a billion results claimed.
    let empty: Vec<Value> = vec![json!({}); 100_000];
    let server = tenure_testkit::peers::HostileScim::start(move |req| {
        if req.path.ends_with("/Users") {
            return (200, list_response(&[], 0, 1));
        }
        let start = req.number("startIndex").unwrap_or(1);
        (200, list_response(&[json!({"id": format!("g{start}"), "members": empty})], 1_000_000_000, start))
    })
    .unwrap();
    let limits = tenure_core::config::ListingLimits { max_bytes: 1_000_000, ..Default::default() };
    let e = limited_connector(&server, limits, 2).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.starts_with("scim target `chat`: listing groups: "), "{e}");
    assert!(e.message.contains("counting 64 bytes for every value it lists (`max_listing_bytes` = 1000000)"), "{e}");
    // The first page alone holds more than the cap once its values are counted: it is never
    // decoded, and no second page is asked for.
    assert_eq!(server.requests_to("/Groups"), 1, "{:#?}", server.seen());
}

#[tokio::test]
async fn issue15_members_without_a_value_are_ignored_with_a_note() {
    use tenure_testkit::peers::hostile_scim::list_response;
    let server = tenure_testkit::peers::HostileScim::start(|req| {
        if req.path.ends_with("/Users") {
            return (200, list_response(&[json!({"id": "u1", "userName": "ann"})], 1, 1));
        }
        let group = json!({"id": "g1", "displayName": "staff", "members": [{}, {"value": "u1"}, {"display": "x"}]});
        (200, list_response(&[group], 1, 1))
    })
    .unwrap();
    let c = limited_connector(&server, Default::default(), 2);
    let listed = c.list_accounts().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].grants, names(&["staff"]));
    let notes = c.take_notes();
    assert!(
        notes.iter().any(|n| n == "listing Groups: page 1 listed 2 group members without a `value`; they were ignored"),
        "{notes:#?}"
    );
}

#[tokio::test]
async fn issue15_reads_of_one_users_groups_at_once_share_one_cap() {
    use tenure_testkit::peers::hostile_scim::list_response;
    // Each user's groups come in two pages: the first (about 40 KB counted) at once, the second
    // (empty) after a while, so reads made at once all hold their first page together.
    let server = tenure_testkit::peers::HostileScim::start_slow(|req| {
        if req.path.ends_with("/Users/u1") {
            return (200, json!({"id": "u1", "userName": "ann"}).to_string(), Duration::ZERO);
        }
        if req.path.ends_with("/Users") {
            return (200, list_response(&[json!({"id": "u1", "userName": "ann"})], 1, 1), Duration::ZERO);
        }
        match req.number("startIndex") {
            Some(1) => {
                let members: Vec<Value> = (0..100).map(|i| json!({"value": format!("{i:0>300}")})).collect();
                let group = json!({"id": "g1", "displayName": "staff", "members": members});
                (200, list_response(&[group], 2, 1), Duration::ZERO)
            }
            _ => (200, list_response(&[], 2, 2), Duration::from_secs(3)),
        }
    })
    .unwrap();
    let limits = tenure_core::config::ListingLimits { max_bytes: 100_000, ..Default::default() };
    let c = limited_connector(&server, limits, 4);
    let ann = spec("ann", "");
    let (a, b, d, e) =
        tokio::join!(c.read_account(&ann), c.read_account(&ann), c.read_account(&ann), c.read_account(&ann));
    let reads = [a, b, d, e];
    let failed: Vec<_> = reads.iter().filter_map(|r| r.as_ref().err()).collect();
    // Each read alone fits; four at once do not.
    assert!(!failed.is_empty(), "{reads:#?}");
    for e in &failed {
        assert!(e.message.contains("listing the groups of user `ann`"), "{e}");
        assert!(e.message.contains("(`max_listing_bytes` = 100000)"), "{e}");
    }
    // A finished read gives its share back: one alone works.
    let alone = c.read_account(&ann).await.unwrap().unwrap();
    assert_eq!(alone.grants, names(&["staff"]));
}

#[tokio::test]
async fn issue15_slow_pages_stop_at_max_listing_seconds() {
    use tenure_testkit::peers::hostile_scim::list_response;
    // One new user a page, each page slow, a billion claimed: only the listing's deadline ends it.
    let server = tenure_testkit::peers::HostileScim::start_slow(|req| {
        if req.path.ends_with("/Groups") {
            return (200, list_response(&[], 0, 1), Duration::ZERO);
        }
        let start = req.number("startIndex").unwrap_or(1);
        let user = json!({"id": format!("u{start}"), "userName": format!("user{start}")});
        (200, list_response(&[user], 1_000_000_000, start), Duration::from_millis(400))
    })
    .unwrap();
    let limits = tenure_core::config::ListingLimits { max_seconds: 2, ..Default::default() };
    let e = limited_connector(&server, limits, 2).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.starts_with("scim target `chat`: listing users: "), "{e}");
    assert!(e.message.contains("more than 2 seconds (`max_listing_seconds` = 2); raise `max_listing_seconds`"), "{e}");
    // It stopped: nothing more is asked for once the deadline has passed.
    let served = server.requests_to("/Users");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(server.requests_to("/Users"), served);
    assert!(served < 100, "{served}");
}

/// A server whose `/Users` never ends: every page holds `count` new users (each carrying `pad`
/// bytes of an attribute Tenure does not read) and claims a billion results.
fn endless(pad: usize) -> tenure_testkit::peers::HostileScim {
    use tenure_testkit::peers::hostile_scim::list_response;
    tenure_testkit::peers::HostileScim::start(move |req| {
        if req.path.ends_with("/Groups") {
            return (200, list_response(&[], 0, 1));
        }
        let (start, count) = (req.number("startIndex").unwrap_or(1), req.number("count").unwrap_or(50));
        let users: Vec<Value> = (start..start + count)
            .map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}"), "nickName": "x".repeat(pad)}))
            .collect();
        (200, list_response(&users, 1_000_000_000, start))
    })
    .unwrap()
}

#[tokio::test]
async fn issue15_endless_pages_under_the_page_cap_stop_at_max_listing_items() {
    let server = endless(0);
    let e = hostile_connector(&server, 500, 1 << 30).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.starts_with("scim target `chat`: listing users: "), "{e}");
    assert!(e.message.contains("more than 500 entries (`max_listing_items` = 500); raise `max_listing_items`"), "{e}");
    // 500 users in pages of 50: the eleventh page passes the cap, and nothing more is asked for.
    assert_eq!(server.requests_to("/Users"), 11, "{:#?}", server.seen());
}

#[tokio::test]
async fn issue15_endless_pages_of_large_users_stop_at_max_listing_bytes() {
    // Pages of 50 users of 10 KB each (about 500 KB a page, well under `max_response_bytes`).
    let server = endless(10_000);
    let e = hostile_connector(&server, 1_000_000, 2_000_000).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.starts_with("scim target `chat`: listing users: "), "{e}");
    assert!(e.message.contains("(`max_listing_bytes` = 2000000); raise `max_listing_bytes`"), "{e}");
    assert_eq!(server.requests_to("/Users"), 4, "four pages of 500 KB pass 2 MB");
    // The defaults are documented and bound a listing too.
    let d = ScimSettings::default().listing;
    assert_eq!((d.max_items, d.max_bytes), (1_000_000, 256 << 20));
}

#[tokio::test]
async fn issue15_a_server_ignoring_start_index_fails_on_the_second_page() {
    use tenure_testkit::peers::hostile_scim::list_response;
    let server = tenure_testkit::peers::HostileScim::start(|req| {
        if req.path.ends_with("/Groups") {
            return (200, list_response(&[], 0, 1));
        }
        // Always the first page, whatever startIndex says.
        let users: Vec<Value> =
            (1..=50).map(|i| json!({"id": format!("u{i}"), "userName": format!("user{i}")})).collect();
        (200, list_response(&users, 1_000_000_000, 1))
    })
    .unwrap();
    let e = hostile_connector(&server, 1_000_000, 1 << 30).list_accounts().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.starts_with("scim target `chat`: listing users: page 2 (`startIndex` 51)"), "{e}");
    assert!(e.message.contains("seems to ignore `startIndex`"), "{e}");
    assert_eq!(server.requests_to("/Users"), 2);
}

#[tokio::test]
async fn issue15_a_user_two_pages_repeat_is_listed_once() {
    use tenure_testkit::peers::hostile_scim::list_response;
    // Page two starts one early (a user was added meanwhile): the overlap is listed once.
    let server = tenure_testkit::peers::HostileScim::start(|req| {
        if req.path.ends_with("/Groups") {
            return (200, list_response(&[], 0, 1));
        }
        let user = |i: u64| json!({"id": format!("u{i}"), "userName": format!("user{i}")});
        match req.number("startIndex") {
            Some(1) => (200, list_response(&(1..=50).map(user).collect::<Vec<_>>(), 60, 1)),
            _ => (200, list_response(&(50..=60).map(user).collect::<Vec<_>>(), 60, 51)),
        }
    })
    .unwrap();
    let listed = hostile_connector(&server, 1_000_000, 1 << 30).list_accounts().await.unwrap();
    assert_eq!(listed.len(), 60);
    assert_eq!(listed.iter().filter(|a| a.account == "user50").count(), 1);
}

#[tokio::test]
async fn issue15_with_create_groups_false_a_grant_never_creates_a_missing_group() {
    use tenure_testkit::peers::hostile_scim::list_response;
    let server = tenure_testkit::peers::HostileScim::start(|req| {
        if req.path.ends_with("/Users") {
            return (200, list_response(&[json!({"id": "u1", "userName": "ann", "externalId": "E1"})], 1, 1));
        }
        (200, list_response(&[], 0, 1))
    })
    .unwrap();
    let settings = ScimSettings { url: server.url.clone(), create_groups: false, ..ScimSettings::default() };
    let c = ScimConnector::new("chat", &settings, 1).unwrap();
    let e = c.apply(&req(OpKind::Grant, &spec("ann", "E1"), Some("incident-locked"))).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permanent, "{e}");
    assert!(e.message.contains("granting group `incident-locked` to user `ann`"), "{e}");
    assert!(e.message.contains("(`create_groups = false`); create it in the service first"), "{e}");
    assert!(server.seen().iter().all(|s| s.method == "GET"), "nothing was written: {:#?}", server.seen());
}
