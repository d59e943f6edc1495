//! The router in-process (`oneshot`), nested at `/scim/v2` as the server nests it: one
//! behaviour per test, asserted on status, headers and body.

use crate::reference_backend::ReferenceBackendForProtocolTests;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tenure_scim::ScimBackend;
use tenure_scim::schema::ENTERPRISE_USER_URN;
use tower::ServiceExt;

fn app() -> Router {
    Router::new().nest("/scim/v2", tenure_scim::router(ReferenceBackendForProtocolTests::default()))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn etag(&self) -> String {
        self.headers.get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
    }

    fn id(&self) -> String {
        self.body["id"].as_str().unwrap().to_string()
    }

    /// Asserts a SCIM Error with this status and `scimType`.
    fn assert_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(self.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]), "{}", self.body);
        assert_eq!(self.body["status"], json!(status.to_string()), "{}", self.body);
        assert_eq!(self.body.get("scimType").and_then(Value::as_str), scim_type, "{}", self.body);
        assert_eq!(self.headers["content-type"], "application/scim+json");
    }
}

async fn call(app: &Router, method: Method, uri: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let mut req = Request::builder().method(method).uri(uri).header("host", "tenure.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/scim+json").body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Answer { status, headers, body }
}

async fn create_user(app: &Router, body: Value) -> Answer {
    let a = call(app, Method::POST, "/scim/v2/Users", &[], Some(body)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a
}

fn bjensen() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN],
        "externalId": "E-1001",
        "userName": "bjensen@example.com",
        "password": "t1meMa$heen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true,
        ENTERPRISE_USER_URN: {"employeeNumber": "701984", "department": "Tours", "manager": {"value": "E-0007"}}
    })
}

#[tokio::test]
async fn a_created_user_has_id_meta_etag_and_location_and_never_its_password() {
    let app = app();
    let a = create_user(&app, bjensen()).await;
    let id = a.id();
    assert_eq!(a.headers["content-type"], "application/scim+json");
    let location = format!("http://tenure.test/scim/v2/Users/{id}");
    assert_eq!(a.headers["location"], location.as_str());
    assert_eq!(a.body["meta"]["location"], json!(location));
    assert_eq!(a.body["meta"]["resourceType"], json!("User"));
    assert_eq!(a.body["meta"]["version"], json!(a.etag()));
    assert!(a.etag().starts_with("W/\""), "{}", a.etag());
    assert!(a.body.get("password").is_none(), "{}", a.body);
    assert_eq!(a.body[ENTERPRISE_USER_URN]["department"], json!("Tours"));

    let got = call(&app, Method::GET, &format!("/scim/v2/Users/{id}"), &[], None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, a.body);
    assert!(!got.body.to_string().contains("t1meMa$heen"));
}

#[tokio::test]
async fn a_user_name_taken_in_any_case_is_a_409_uniqueness() {
    let app = app();
    create_user(&app, bjensen()).await;
    let a = call(&app, Method::POST, "/scim/v2/Users", &[], Some(json!({"userName": "BJensen@Example.COM"}))).await;
    a.assert_error(409, Some("uniqueness"));
    // And by PUT onto another user.
    let other = create_user(&app, json!({"userName": "other"})).await;
    let a = call(
        &app,
        Method::PUT,
        &format!("/scim/v2/Users/{}", other.id()),
        &[],
        Some(json!({"userName": "bjensen@EXAMPLE.com"})),
    )
    .await;
    a.assert_error(409, Some("uniqueness"));
}

#[tokio::test]
async fn if_match_guards_writes_and_if_none_match_saves_a_read() {
    let app = app();
    let a = create_user(&app, bjensen()).await;
    let uri = format!("/scim/v2/Users/{}", a.id());
    let stale = a.etag();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "replace", "path": "title", "value": "Guide"}]});
    let b = call(&app, Method::PATCH, &uri, &[("if-match", &stale)], Some(patch.clone())).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_ne!(b.etag(), stale);
    assert_eq!(b.body["title"], json!("Guide"));

    call(&app, Method::PATCH, &uri, &[("if-match", &stale)], Some(patch)).await.assert_error(412, None);
    call(&app, Method::PUT, &uri, &[("if-match", &stale)], Some(bjensen())).await.assert_error(412, None);
    call(&app, Method::DELETE, &uri, &[("if-match", &stale)], None).await.assert_error(412, None);

    let fresh = call(&app, Method::GET, &uri, &[("if-none-match", &b.etag())], None).await;
    assert_eq!(fresh.status, StatusCode::NOT_MODIFIED);
    assert_eq!(fresh.etag(), b.etag());
    let changed = call(&app, Method::GET, &uri, &[("if-none-match", &stale)], None).await;
    assert_eq!(changed.status, StatusCode::OK);

    let gone = call(&app, Method::DELETE, &uri, &[("if-match", &b.etag())], None).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    call(&app, Method::GET, &uri, &[], None).await.assert_error(404, None);
}

#[tokio::test]
async fn a_patch_that_changes_nothing_keeps_the_version() {
    let app = app();
    let a = create_user(&app, bjensen()).await;
    let patch = json!({"Operations": [{"op": "add", "path": "emails", "value": [{"value": "bjensen@example.com", "type": "work", "primary": true}]}]});
    let b = call(&app, Method::PATCH, &format!("/scim/v2/Users/{}", a.id()), &[], Some(patch)).await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(b.etag(), a.etag());
}

#[tokio::test]
async fn entra_deactivation_maps_to_a_leaver() {
    let app = app();
    let a = create_user(&app, bjensen()).await;
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]});
    let b = call(&app, Method::PATCH, &format!("/scim/v2/Users/{}", a.id()), &[], Some(patch)).await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(b.body["active"], json!(false));
    let record = tenure_scim::mapping::user_record(&b.id(), b.body.as_object().unwrap()).unwrap();
    assert_eq!(record.key, "E-1001");
    assert_eq!(record.status.as_str(), "terminated");
    assert_eq!(record.manager_id.as_deref(), Some("E-0007"));
}

#[tokio::test]
async fn lists_filter_sort_and_page() {
    let app = app();
    for (name, title) in [("carol", "b"), ("alice", "c"), ("bob", "a"), ("dave", "")] {
        let mut u = json!({"userName": name});
        if !title.is_empty() {
            u["title"] = json!(title);
        }
        create_user(&app, u).await;
    }
    let names = |a: &Answer| -> Vec<String> {
        a.body["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_string()).collect()
    };
    let a = call(&app, Method::GET, "/scim/v2/Users?sortBy=userName&startIndex=2&count=2", &[], None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    assert_eq!(
        (a.body["totalResults"].clone(), a.body["startIndex"].clone(), a.body["itemsPerPage"].clone()),
        (json!(4), json!(2), json!(2))
    );
    assert_eq!(names(&a), ["bob", "carol"]);
    // Without a value sorts last ascending, first descending.
    let a = call(&app, Method::GET, "/scim/v2/Users?sortBy=title", &[], None).await;
    assert_eq!(names(&a), ["bob", "carol", "alice", "dave"]);
    let a = call(&app, Method::GET, "/scim/v2/Users?sortBy=title&sortOrder=descending", &[], None).await;
    assert_eq!(names(&a), ["dave", "alice", "carol", "bob"]);
    let a = call(
        &app,
        Method::GET,
        "/scim/v2/Users?filter=title%20pr%20and%20userName%20lt%20%22c%22&sortBy=userName",
        &[],
        None,
    )
    .await;
    assert_eq!(names(&a), ["alice", "bob"]);
    assert_eq!(a.body["totalResults"], json!(2));
    // count=0: the total only; past the end: an empty page.
    let a = call(&app, Method::GET, "/scim/v2/Users?count=0", &[], None).await;
    assert_eq!((a.body["totalResults"].clone(), a.body["itemsPerPage"].clone()), (json!(4), json!(0)));
    let a = call(&app, Method::GET, "/scim/v2/Users?startIndex=9", &[], None).await;
    assert_eq!((a.body["totalResults"].clone(), a.body["itemsPerPage"].clone()), (json!(4), json!(0)));
    // Projection applies to every resource listed.
    let a = call(&app, Method::GET, "/scim/v2/Users?attributes=userName&count=1", &[], None).await;
    let r = &a.body["Resources"][0];
    assert_eq!(r.as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "schemas", "userName"]);
}

#[tokio::test]
async fn searches_by_post_on_a_type_and_across_types() {
    let app = app();
    create_user(&app, bjensen()).await;
    let g = call(&app, Method::POST, "/scim/v2/Groups", &[], Some(json!({"displayName": "Tour Guides"}))).await;
    assert_eq!(g.status, StatusCode::CREATED, "{}", g.body);
    let search = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "displayName sw \"tour\"", "attributes": ["displayName"]});
    let a = call(&app, Method::POST, "/scim/v2/Groups/.search", &[], Some(search.clone())).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["totalResults"], json!(1));
    // Across types the filter need only make sense for one of them.
    let a =
        call(&app, Method::POST, "/scim/v2/.search", &[], Some(json!({"filter": "members pr or userName pr"}))).await;
    assert_eq!(a.body["totalResults"], json!(1), "{}", a.body);
    let a = call(&app, Method::POST, "/scim/v2/.search", &[], Some(json!({}))).await;
    assert_eq!(a.body["totalResults"], json!(2), "{}", a.body);
    call(&app, Method::POST, "/scim/v2/.search", &[], Some(json!({"filter": "nope pr"})))
        .await
        .assert_error(400, Some("invalidFilter"));
}

#[tokio::test]
async fn bad_requests_are_scim_errors() {
    let app = app();
    let a = create_user(&app, bjensen()).await;
    let uri = format!("/scim/v2/Users/{}", a.id());
    call(&app, Method::GET, "/scim/v2/Users?filter=userName%20eq", &[], None)
        .await
        .assert_error(400, Some("invalidFilter"));
    call(&app, Method::GET, "/scim/v2/Users?filter=department%20eq%20%22x%22", &[], None)
        .await
        .assert_error(400, Some("invalidFilter"));
    call(&app, Method::GET, "/scim/v2/Users?count=lots", &[], None).await.assert_error(400, Some("invalidValue"));
    call(&app, Method::GET, "/scim/v2/Users?sortOrder=sideways", &[], None)
        .await
        .assert_error(400, Some("invalidValue"));
    call(&app, Method::POST, "/scim/v2/Users", &[], Some(json!({"title": "no name"})))
        .await
        .assert_error(400, Some("invalidValue"));
    call(&app, Method::POST, "/scim/v2/Users", &[], Some(json!(["not", "an", "object"])))
        .await
        .assert_error(400, Some("invalidSyntax"));
    call(&app, Method::PATCH, &uri, &[], Some(json!({"Operations": [{"op": "remove"}]})))
        .await
        .assert_error(400, Some("noTarget"));
    call(
        &app,
        Method::PATCH,
        &uri,
        &[],
        Some(json!({"Operations": [{"op": "replace", "path": "emails[type eq", "value": "x"}]})),
    )
    .await
    .assert_error(400, Some("invalidPath"));
    call(
        &app,
        Method::PATCH,
        &uri,
        &[],
        Some(json!({"Operations": [{"op": "replace", "path": "meta.created", "value": "x"}]})),
    )
    .await
    .assert_error(400, Some("mutability"));
    call(
        &app,
        Method::PATCH,
        &uri,
        &[],
        Some(json!({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]})),
    )
    .await
    .assert_error(400, Some("invalidValue"));
    call(&app, Method::GET, "/scim/v2/Users/nobody", &[], None).await.assert_error(404, None);
    call(
        &app,
        Method::PATCH,
        "/scim/v2/Users/nobody",
        &[],
        Some(json!({"Operations": [{"op": "replace", "path": "title", "value": "x"}]})),
    )
    .await
    .assert_error(404, None);
    call(&app, Method::GET, "/scim/v2/Nothing", &[], None).await.assert_error(404, None);
    call(&app, Method::POST, "/scim/v2/Schemas", &[], Some(json!({}))).await.assert_error(405, None);
    call(&app, Method::PUT, "/scim/v2/Users", &[], Some(json!({}))).await.assert_error(405, None);

    let raw =
        Request::builder().method(Method::POST).uri("/scim/v2/Users").body(Body::from("{\"userName\": ")).unwrap();
    let res = app.clone().oneshot(raw).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let big = format!("{{\"userName\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let raw = Request::builder().method(Method::POST).uri("/scim/v2/Users").body(Body::from(big)).unwrap();
    let res = app.clone().oneshot(raw).await.unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn discovery_describes_what_is_served() {
    let app = app();
    let spc = call(&app, Method::GET, "/scim/v2/ServiceProviderConfig", &[], None).await;
    assert_eq!(spc.status, StatusCode::OK);
    for (feature, supported) in
        [("patch", true), ("filter", true), ("sort", true), ("etag", true), ("bulk", false), ("changePassword", false)]
    {
        assert_eq!(spc.body[feature]["supported"], json!(supported), "{feature}");
    }
    assert_eq!(spc.body["filter"]["maxResults"], json!(1000));
    let rts = call(&app, Method::GET, "/scim/v2/ResourceTypes", &[], None).await;
    assert_eq!(rts.body["totalResults"], json!(2));
    let user = call(&app, Method::GET, "/scim/v2/ResourceTypes/user", &[], None).await;
    assert_eq!(user.body["schemaExtensions"][0]["schema"], json!(ENTERPRISE_USER_URN));
    let schemas = call(&app, Method::GET, "/scim/v2/Schemas", &[], None).await;
    assert_eq!(schemas.body["totalResults"], json!(3));
    let ent = call(&app, Method::GET, &format!("/scim/v2/Schemas/{ENTERPRISE_USER_URN}"), &[], None).await;
    let names: Vec<&str> =
        ent.body["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["employeeNumber", "costCenter", "organization", "division", "department", "manager"]);
    call(&app, Method::GET, "/scim/v2/Schemas/urn:example:nothing", &[], None).await.assert_error(404, None);
}

#[tokio::test]
async fn a_resource_type_not_served_is_absent_from_discovery_and_refused() {
    let config = tenure_scim::Config { kinds: vec![tenure_scim::ResourceKind::User], ..Default::default() };
    let app =
        Router::new().nest("/scim/v2", tenure_scim::router_with(ReferenceBackendForProtocolTests::default(), config));
    let rts = call(&app, Method::GET, "/scim/v2/ResourceTypes", &[], None).await;
    assert_eq!(rts.body["totalResults"], json!(1));
    assert_eq!(rts.body["Resources"][0]["name"], json!("User"));
    call(&app, Method::GET, "/scim/v2/ResourceTypes/Group", &[], None).await.assert_error(404, None);
    let schemas = call(&app, Method::GET, "/scim/v2/Schemas", &[], None).await;
    let ids: Vec<&str> =
        schemas.body["Resources"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_USER_URN]);
    let group = json!({"displayName": "Tour Guides"});
    for (method, uri, body) in [
        (Method::POST, "/scim/v2/Groups", Some(group.clone())),
        (Method::GET, "/scim/v2/Groups", None),
        (Method::GET, "/scim/v2/Groups/g1", None),
        (Method::PUT, "/scim/v2/Groups/g1", Some(group)),
        (Method::POST, "/scim/v2/Groups/.search", Some(json!({}))),
    ] {
        let a = call(&app, method, uri, &[], body).await;
        a.assert_error(404, None);
        assert_eq!(a.body["detail"], json!("this service provider does not serve Group resources"), "{uri}");
    }
    // A search across types covers only the types served.
    create_user(&app, bjensen()).await;
    let all = call(&app, Method::POST, "/scim/v2/.search", &[], Some(json!({"filter": "displayName pr"}))).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["totalResults"], json!(0));
}

#[tokio::test]
async fn group_membership_by_patch() {
    let app = app();
    let u1 = create_user(&app, json!({"userName": "one"})).await.id();
    let u2 = create_user(&app, json!({"userName": "two"})).await.id();
    let g = call(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        &[],
        Some(json!({"displayName": "Staff", "members": [{"value": u1}]})),
    )
    .await;
    let uri = format!("/scim/v2/Groups/{}", g.id());
    let add = json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": u2}, {"value": u1}]}]});
    let a = call(&app, Method::PATCH, &uri, &[], Some(add)).await;
    assert_eq!(a.body["members"], json!([{"value": u1}, {"value": u2}]));
    let remove = json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{u1}\"]")}]});
    let a = call(&app, Method::PATCH, &uri, &[], Some(remove.clone())).await;
    assert_eq!(a.body["members"], json!([{"value": u2}]));
    // Again: nothing to remove is not an error.
    let a = call(&app, Method::PATCH, &uri, &[], Some(remove)).await;
    assert_eq!(a.status, StatusCode::OK);
    let a =
        call(&app, Method::GET, &format!("/scim/v2/Groups?filter=members[value%20eq%20%22{u2}%22]"), &[], None).await;
    assert_eq!(a.body["totalResults"], json!(1), "{}", a.body);
}

/// A backend whose callers are SCIM sources: it records who called and serves the reference
/// backend's storage.
#[derive(Default)]
struct SourceScoped {
    inner: ReferenceBackendForProtocolTests,
    callers: std::sync::Mutex<Vec<String>>,
}

#[derive(Clone)]
struct Source(String);

#[async_trait::async_trait]
impl tenure_scim::ScimBackend for SourceScoped {
    type Caller = Source;

    async fn create(
        &self,
        caller: &Source,
        kind: tenure_scim::ResourceKind,
        write: tenure_scim::Write,
    ) -> Result<tenure_scim::StoredResource, tenure_scim::BackendError> {
        self.callers.lock().unwrap().push(caller.0.clone());
        self.inner.create(&(), kind, write).await
    }

    async fn get(
        &self,
        _: &Source,
        kind: tenure_scim::ResourceKind,
        id: &str,
    ) -> Result<Option<tenure_scim::StoredResource>, tenure_scim::BackendError> {
        self.inner.get(&(), kind, id).await
    }

    async fn replace(
        &self,
        _: &Source,
        kind: tenure_scim::ResourceKind,
        id: &str,
        expected: &str,
        write: tenure_scim::Write,
    ) -> Result<tenure_scim::StoredResource, tenure_scim::BackendError> {
        self.inner.replace(&(), kind, id, expected, write).await
    }

    async fn delete(
        &self,
        _: &Source,
        kind: tenure_scim::ResourceKind,
        id: &str,
        expected: &str,
    ) -> Result<(), tenure_scim::BackendError> {
        self.inner.delete(&(), kind, id, expected).await
    }

    async fn list(
        &self,
        _: &Source,
        kind: tenure_scim::ResourceKind,
        query: tenure_scim::ListQuery<'_>,
    ) -> Result<Vec<tenure_scim::StoredResource>, tenure_scim::BackendError> {
        self.inner.list(&(), kind, query).await
    }
}

#[tokio::test]
async fn without_the_servers_authentication_the_resources_are_closed() {
    let backend = std::sync::Arc::new(SourceScoped::default());
    let bare = Router::new().nest("/scim/v2", tenure_scim::router(backend.clone()));
    call(&bare, Method::GET, "/scim/v2/Users", &[], None).await.assert_error(401, None);
    call(&bare, Method::POST, "/scim/v2/Users", &[], Some(bjensen())).await.assert_error(401, None);
    // Discovery is static and needs no caller.
    assert_eq!(call(&bare, Method::GET, "/scim/v2/Schemas", &[], None).await.status, StatusCode::OK);

    // The server's layer names the caller; the backend sees it.
    let authed =
        bare.layer(axum::middleware::from_fn(|mut req: axum::extract::Request, next: axum::middleware::Next| {
            req.extensions_mut().insert(Source("okta".into()));
            next.run(req)
        }));
    create_user(&authed, bjensen()).await;
    assert_eq!(*backend.callers.lock().unwrap(), ["okta"]);
    assert!(SourceScoped::default_caller().is_none());
}
