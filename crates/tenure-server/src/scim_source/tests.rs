//! The SCIM endpoint in-process: the whole `app()` (authentication included) over an in-memory
//! store on a fake clock, with the starter's config and policy and two SCIM sources, `idp` and
//! `idp2`. Each test drives requests with `oneshot` and reads the lifecycle state back from the
//! store: what a User write did to identities, events and operations.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

use crate::ServerState;
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use tenure_core::clock::{Clock, FakeClock};
use tenure_core::{EventKind, Scope, Status};
use tenure_engine::app::{App, Loaded};
use tenure_sample::starter::{self, Guard};
use tenure_store::{Backend, OpFilter, SqliteStore};
use tower::ServiceExt;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

struct World {
    app: App,
    router: Router,
    /// Tokens by name: `idp`, `idp2` (their sources' `source` tokens), `hr` (a CSV source's)
    /// and `admin`.
    tokens: std::collections::HashMap<&'static str, String>,
}

impl World {
    fn new() -> Self {
        Self::with_policy(starter::POLICY)
    }

    fn with_policy(policy: &str) -> Self {
        // One leaver among a handful of identities is far over the starter's fractions; these
        // tests are about the endpoint, not the guard.
        let guard = Guard {
            max_leavers: 25,
            max_leaver_fraction: 1.0,
            max_access_losses: None,
            max_access_loss_fraction: Some(1.0),
        };
        let mut text = starter::config_with("# scim tests", &guard, &starter::targets(true));
        text.push_str(
            "\n[[source]]\nname = \"idp\"\nkind = \"scim\"\n\n[[source]]\nname = \"idp2\"\nkind = \"scim\"\n",
        );
        let config = tenure_core::config::parse("tenure.toml", &text).unwrap();
        let clock = Arc::new(FakeClock::at(tenure_core::clock::parse_stamp("2026-11-21T09:00:00Z").unwrap()));
        let policy = tenure_policy::parse("policy.toml", policy, &config, clock.today()).unwrap();
        let store: Arc<dyn Backend> = Arc::new(SqliteStore::memory(clock.clone()).unwrap());
        let loaded = Loaded { config, config_path: PathBuf::from("tenure.toml"), config_dir: PathBuf::from(".") };
        let app = App::from_parts(loaded, policy, store, clock);
        let mut tokens = std::collections::HashMap::new();
        for (name, scope, source) in [
            ("idp", Scope::Source, Some("idp")),
            ("idp2", Scope::Source, Some("idp2")),
            ("hr", Scope::Source, Some("hr")),
            ("admin", Scope::Admin, None),
        ] {
            let created =
                tenure_engine::tokens::create(app.config(), app.store().as_ref(), name, scope, source, "test").unwrap();
            tokens.insert(name, created.secret);
        }
        let router = crate::app(ServerState::new(app.clone()));
        Self { app, router, tokens }
    }

    async fn call(&self, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(format!("/scim/v2{path}")).header("host", "tenure.test");
        match token {
            // A well-formed token nobody issued.
            Some("nobody") => req = req.header("authorization", format!("Bearer tnr_{}", "A".repeat(43))),
            Some(t) => req = req.header("authorization", format!("Bearer {}", self.tokens[t])),
            None => {}
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/scim+json").body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
    }

    /// Creates `user` as source `idp`; returns its SCIM id.
    async fn create(&self, user: Value) -> String {
        let (status, body) = self.call(Some("idp"), Method::POST, "/Users", Some(user)).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    fn store(&self) -> &Arc<dyn Backend> {
        self.app.store()
    }

    fn status_of(&self, id: &str) -> Option<Status> {
        self.store().identity(&self.app.config().schema, id).unwrap().map(|i| i.status)
    }

    fn attr(&self, id: &str, name: &str) -> Option<String> {
        let i = self.store().identity(&self.app.config().schema, id).unwrap()?;
        i.attr(&self.app.config().schema, name).map(str::to_string)
    }

    fn events(&self, id: &str) -> Vec<EventKind> {
        self.store().events(id).unwrap().iter().map(|e| e.kind).collect()
    }

    /// How many of the identity's operations are still to run.
    fn pending(&self, id: &str) -> usize {
        let filter =
            OpFilter { identity: Some(id.into()), states: vec![tenure_core::OpState::Pending], ..OpFilter::default() };
        self.store().operations(&filter).unwrap().len()
    }

    /// The identity's operations as `target kind [entitlement]`, in queue order.
    fn ops(&self, id: &str) -> Vec<String> {
        let filter = OpFilter { identity: Some(id.into()), ..OpFilter::default() };
        self.store()
            .operations(&filter)
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {}{}",
                    o.target,
                    o.kind,
                    o.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
                )
            })
            .collect()
    }
}

fn ada() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "externalId": "E-1001",
        "userName": "ada",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "ada@example.com", "primary": true}],
        "title": "Engineer",
        "userType": "employee",
        "active": true,
        ENTERPRISE: {"department": "Engineering", "costCenter": "CC1"}
    })
}

#[tokio::test]
async fn a_user_create_is_a_joiner_with_planned_operations() {
    let w = World::new();
    let id = w.create(ada()).await;
    assert_eq!(w.status_of("E-1001"), Some(Status::Active));
    assert_eq!(w.events("E-1001"), [EventKind::Joiner]);
    for (name, value) in [
        ("username", "ada"),
        ("given_name", "Ada"),
        ("family_name", "Lovelace"),
        ("email", "ada@example.com"),
        ("department", "Engineering"),
        ("cost_center", "CC1"),
        ("employment_type", "employee"),
    ] {
        assert_eq!(w.attr("E-1001", name).as_deref(), Some(value), "{name}");
    }
    let ops = w.ops("E-1001");
    assert!(ops.contains(&"directory create_account".to_string()), "{ops:?}");
    assert!(ops.contains(&"directory grant staff".to_string()), "{ops:?}");
    // The resource reads back as written, attributes Tenure does not map included.
    let (status, body) = w.call(Some("idp"), Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], json!({"givenName": "Ada", "familyName": "Lovelace"}));
    assert_eq!(body["meta"]["version"], json!("W/\"1\""));
    // The write and the batch are audited, the write first, by the source.
    let mut actions = Vec::new();
    w.store()
        .scan_audit(&tenure_store::AuditFilter::default(), &mut |r| {
            actions.push((r.entry.actor, r.entry.action));
            true
        })
        .unwrap();
    let actions: Vec<(String, String)> = actions.into_iter().filter(|(a, _)| a == "source:idp").collect();
    assert_eq!(
        actions.iter().map(|(_, a)| a.as_str()).take(3).collect::<Vec<_>>(),
        ["scim.user.created", "import", "event.joiner"]
    );
}

#[tokio::test]
async fn patching_active_false_makes_a_leaver_and_true_a_rehire() {
    let w = World::new();
    let id = w.create(ada()).await;
    let deactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
    });
    let (status, body) = w.call(Some("idp"), Method::PATCH, &format!("/Users/{id}"), Some(deactivate)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], json!(false));
    assert_eq!(w.status_of("E-1001"), Some(Status::Terminated));
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Leaver]);
    // The rest of the identity is kept: a PATCH changes only what it names.
    assert_eq!(w.attr("E-1001", "department").as_deref(), Some("Engineering"));
    let reactivate = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": true}}]
    });
    let (status, body) = w.call(Some("idp"), Method::PATCH, &format!("/Users/{id}"), Some(reactivate)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.status_of("E-1001"), Some(Status::Active));
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Leaver, EventKind::Rehire]);
}

#[tokio::test]
async fn a_put_replaces_every_mapped_attribute_and_the_key_stays_as_created() {
    let w = World::new();
    let id = w.create(ada()).await;
    // What a PUT leaves out is cleared.
    let mut moved = ada();
    moved[ENTERPRISE] = json!({"department": "Research"});
    moved.as_object_mut().unwrap().remove("title");
    let (status, body) = w.call(Some("idp"), Method::PUT, &format!("/Users/{id}"), Some(moved.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(w.attr("E-1001", "department").as_deref(), Some("Research"));
    assert_eq!(w.attr("E-1001", "title"), None);
    assert_eq!(w.attr("E-1001", "cost_center"), None);
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Mover]);
    // A new externalId is kept as written, but the User stays the identity it was created as.
    moved["externalId"] = json!("E-2002");
    let (status, body) = w.call(Some("idp"), Method::PUT, &format!("/Users/{id}"), Some(moved)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["externalId"], json!("E-2002"));
    assert_eq!(w.status_of("E-1001"), Some(Status::Active));
    assert_eq!(w.status_of("E-2002"), None);
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Mover]);
    // The key it holds stays taken: another User created with it is refused.
    let (status, body) =
        w.call(Some("idp"), Method::POST, "/Users", Some(json!({"userName": "x", "externalId": "E-1001"}))).await;
    assert_eq!((status, body["scimType"].clone()), (StatusCode::CONFLICT, json!("uniqueness")), "{body}");
}

#[tokio::test]
async fn a_delete_makes_a_leaver_and_removes_the_resource() {
    let w = World::new();
    let id = w.create(ada()).await;
    let (status, body) = w.call(Some("idp"), Method::DELETE, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(w.status_of("E-1001"), Some(Status::Terminated));
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Leaver]);
    // The joiner's operations never ran: the leaver cancels them rather than undo them.
    assert!(!w.ops("E-1001").is_empty());
    assert_eq!(w.pending("E-1001"), 0, "{:?}", w.ops("E-1001"));
    let (status, _) = w.call(Some("idp"), Method::GET, &format!("/Users/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The key is free again: a new User with it is a rehire of the same identity.
    w.create(ada()).await;
    assert_eq!(w.events("E-1001"), [EventKind::Joiner, EventKind::Leaver, EventKind::Rehire]);
}

#[tokio::test]
async fn a_second_sources_token_sees_nothing_of_the_first() {
    let w = World::new();
    let id = w.create(ada()).await;
    let (status, body) = w.call(Some("idp2"), Method::GET, "/Users", None).await;
    assert_eq!((status, body["totalResults"].clone()), (StatusCode::OK, json!(0)), "{body}");
    let (status, body) = w.call(Some("idp2"), Method::GET, "/Users?filter=userName%20eq%20%22ada%22", None).await;
    assert_eq!((status, body["totalResults"].clone()), (StatusCode::OK, json!(0)), "{body}");
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = w.call(Some("idp2"), method.clone(), &format!("/Users/{id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {body}");
    }
    let (status, _) = w.call(Some("idp2"), Method::PUT, &format!("/Users/{id}"), Some(ada())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Its own User may have the same userName, but never take over the first source's identity.
    let (status, body) = w.call(Some("idp2"), Method::POST, "/Users", Some(ada())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("belongs to source `idp`"), "{body}");
    let (status, body) = w.call(Some("idp2"), Method::GET, "/Users", None).await;
    assert_eq!((status, body["totalResults"].clone()), (StatusCode::OK, json!(0)), "nothing written: {body}");
    let mut own = ada();
    own["externalId"] = json!("X-1");
    own["userName"] = json!("ada2");
    let (status, body) = w.call(Some("idp2"), Method::POST, "/Users", Some(own)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, body) = w.call(Some("idp"), Method::GET, "/Users", None).await;
    assert_eq!(body["totalResults"], json!(1), "the first source still sees only its own: {body}");
    assert_eq!(w.status_of("E-1001"), Some(Status::Active));
}

#[tokio::test]
async fn only_a_scim_sources_token_may_call() {
    let w = World::new();
    // Refused by the authentication in front, still as SCIM Errors.
    for token in [None, Some("nobody")] {
        let (status, body) = w.call(token, Method::GET, "/Users", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{body}");
        assert_eq!(body["status"], json!("401"), "{body}");
    }
    for (token, why) in [("admin", "scope admin may not use it"), ("hr", "source `hr` is a csv source")] {
        let (status, body) = w.call(Some(token), Method::GET, "/Users", None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token}: {body}");
        assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{body}");
        assert!(body["detail"].as_str().unwrap().contains(why), "{token}: {body}");
    }
    let (status, _) = w.call(Some("idp"), Method::GET, "/Users", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let w = World::new();
    w.create(ada()).await;
    // A userName the source already has, in any case: 409.
    let mut twin = ada();
    twin["externalId"] = json!("E-1002");
    twin["userName"] = json!("ADA");
    let (status, body) = w.call(Some("idp"), Method::POST, "/Users", Some(twin)).await;
    assert_eq!((status, body["scimType"].clone()), (StatusCode::CONFLICT, json!("uniqueness")), "{body}");
    // A second User mapping to the same identity: 409.
    let mut same_key = ada();
    same_key["userName"] = json!("lovelace");
    let (status, body) = w.call(Some("idp"), Method::POST, "/Users", Some(same_key)).await;
    assert_eq!((status, body["scimType"].clone()), (StatusCode::CONFLICT, json!("uniqueness")), "{body}");
    // A value the engine refuses, as it would in a CSV cell: 400 naming the attribute.
    let mut bad = ada();
    bad["externalId"] = json!("E-1003");
    bad["userName"] = json!("babbage");
    bad["emails"] = json!([{"value": "nobody"}]);
    let (status, body) = w.call(Some("idp"), Method::POST, "/Users", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("`emails`"), "{body}");
    // A key the engine cannot take: 400.
    let mut spaced = ada();
    spaced["externalId"] = json!("E 1004");
    spaced["userName"] = json!("spaced");
    let (status, body) = w.call(Some("idp"), Method::POST, "/Users", Some(spaced)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    for key in ["E-1002", "E-1003", "E 1004"] {
        assert_eq!(w.status_of(key), None, "{key}");
    }
    let (_, body) = w.call(Some("idp"), Method::GET, "/Users", None).await;
    assert_eq!(body["totalResults"], json!(1), "{body}");
}

#[tokio::test]
async fn the_manager_is_the_managers_key_and_groups_are_not_served() {
    let w = World::new();
    let boss = w.create(ada()).await;
    let mut report = ada();
    report["externalId"] = json!("E-2001");
    report["userName"] = json!("babbage");
    report[ENTERPRISE] = json!({"manager": {"value": boss}});
    w.create(report).await;
    assert_eq!(w.attr("E-2001", "manager_id").as_deref(), Some("E-1001"));
    let (status, body) = w.call(Some("idp"), Method::POST, "/Groups", Some(json!({"displayName": "g"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["detail"], json!("this service provider does not serve Group resources"));
    let (_, types) = w.call(Some("idp"), Method::GET, "/ResourceTypes", None).await;
    assert_eq!(types["totalResults"], json!(1), "{types}");
}

/// Issue 15: a SCIM User whose title makes a privileged role with `approval` match gets a
/// request for it (asked by the policy, waiting for their manager), never the grant; a PUT that
/// changes the title cancels the pending request.
#[tokio::test]
async fn issue15_a_scim_dba_is_asked_for_the_privileged_role_not_granted_it() {
    let policy = format!(
        "{}\n[[role]]\nid = \"dba\"\nprivileged = true\nwhen = {{ title = \"DBA\" }}\napproval = \"manager\"\nmax_duration = \"8h\"\ngrant = [\"warehouse:admin\"]\n",
        starter::POLICY
    );
    let w = World::with_policy(&policy);
    let boss = w.create(ada()).await;
    let mut dba = ada();
    dba["externalId"] = json!("E-2001");
    dba["userName"] = json!("dba1");
    dba["title"] = json!("DBA");
    dba[ENTERPRISE] = json!({"department": "Support", "manager": {"value": boss}});
    let id = w.create(dba.clone()).await;
    assert!(!w.ops("E-2001").iter().any(|o| o.contains("admin")), "{:?}", w.ops("E-2001"));
    let asked = w.store().requests(false).unwrap();
    assert_eq!(asked.len(), 1, "{asked:#?}");
    let r = &asked[0];
    assert_eq!((r.identity.as_str(), r.role.as_str(), r.via.as_str()), ("E-2001", "dba", "birthright"));
    assert_eq!((r.state, r.stages[0].approver.as_str()), (tenure_core::RequestState::Pending, "E-1001"));

    dba["title"] = json!("Associate");
    let (status, body) = w.call(Some("idp"), Method::PUT, &format!("/Users/{id}"), Some(dba)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = w.store().requests(false).unwrap();
    assert_eq!(after[0].state, tenure_core::RequestState::Cancelled, "{after:#?}");
    assert!(!w.ops("E-2001").iter().any(|o| o.contains("admin")));
}

#[tokio::test]
async fn issue15_a_scim_user_is_checked_like_a_csv_row() {
    let w = World::new();
    let id = w.create(ada()).await;
    // The User as its own manager: refused, naming the SCIM attribute, and nothing changes.
    let mut me = ada();
    me[ENTERPRISE] = json!({"manager": {"value": id}});
    let (status, body) = w.call(Some("idp"), Method::PUT, &format!("/Users/{id}"), Some(me)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("`manager`: `E-1001` names itself as its manager"), "{body}");
    assert_eq!(w.attr("E-1001", "manager_id"), None);
    // A reference to nothing gives the identity no manager (never an unknown one).
    let mut user = ada();
    user["externalId"] = json!("E-1009");
    user["userName"] = json!("babbage");
    user["emails"] = json!([{"value": "babbage@example.com", "primary": true}]);
    user[ENTERPRISE] = json!({"manager": {"value": "no-such-user"}});
    w.create(user).await;
    assert_eq!(w.attr("E-1009", "manager_id"), None);
    // A fullwidth or Cyrillic look-alike of ada's userName: refused.
    for name in ["ａｄａ", "\u{430}da"] {
        let mut user = ada();
        user["externalId"] = json!("E-1010");
        user["userName"] = json!(name);
        user["emails"] = json!([{"value": "other@example.com", "primary": true}]);
        let (status, body) = w.call(Some("idp"), Method::POST, "/Users", Some(user)).await;
        assert!(status == StatusCode::BAD_REQUEST || status == StatusCode::CONFLICT, "{name}: {status} {body}");
        assert_eq!(w.status_of("E-1010"), None, "{name}");
    }
}
