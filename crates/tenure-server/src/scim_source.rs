//! The SCIM 2.0 service provider for `kind = "scim"` sources, nested by `app()` at `/scim/v2`
//! — `tenure-scim`'s router over [`StoreScimBackend`], Tenure's store.
//!
//! **Who may call.** A `source`-scope token bound to a `kind = "scim"` source; that source is
//! the request's [`ScimCaller`], and every backend call is scoped to it, so one source never
//! reads or writes another's resources. Any other token (another scope, a webhook or CSV
//! source's token) is a SCIM 403 that says why; the authentication layer in front answers a
//! request without a valid token (401, or 429 for a throttled address), and [`scim_errors`]
//! re-renders that refusal as a SCIM Error.
//!
//! **What a write does.** The protocol layer normalizes the resource; the backend maps a User
//! to the record the engine ingests ([`tenure_scim::mapping::user_record`]: key, attributes,
//! `active` as the HR status), has the engine prepare the lifecycle batch that record makes
//! (diff, guard over the push window, plan) and has the store write the resource row and
//! commit that batch in one transaction ([`tenure_store::ScimStore::scim_write`]). A User
//! write is a full replacement, so every mapped attribute is in the record and one the User
//! no longer has is cleared. `active: false` makes a leaver; a DELETE is the record
//! `{key, deleted: true}`. `manager.value` names the manager's SCIM id; when it is a User of the
//! same source, the engine sees that User's key.
//!
//! **The key is fixed when a User is created** (`externalId`, else `employeeNumber`, else the
//! resource id). A later write that changes `externalId` or `employeeNumber` is kept
//! in the body, as written, but the User stays the same identity: the SCIM resource is the
//! person. IdPs set or correct `externalId` after creating a User (Entra, Okta); moving the User
//! to a new identity would make that person a leaver and a joiner at once, and the new identity
//! could not even take the account name the old one still holds.
//!
//! **Groups.** No source maps groups yet, so the router serves Users only: `/Groups` answers a
//! SCIM 404 that says so, discovery lists no Group type, and the backend refuses a Group write
//! as well.

use crate::ServerState;
use crate::access::Principal;
use crate::auth::Scope;
use async_trait::async_trait;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use std::sync::Mutex;
use tenure_core::config::SourceKind;
use tenure_core::error::{Code, HasCode};
use tenure_core::record::{Field, Record, RecordField};
use tenure_engine::app::App;
use tenure_engine::import::Commit;
use tenure_engine::ingest::{self, PushOptions};
use tenure_scim::mapping::{self, UserRecord};
use tenure_scim::{BackendError, ListQuery, ResourceKind, ScimBackend, ScimError, StoredResource, Write};
use tenure_store::scim::{ScimBody, ScimChange, ScimKind, ScimLookup, ScimOutcome, ScimResource, ScimTaken, ScimWrite};
use tenure_store::{Batch, BatchIds, EventIn};

/// The SCIM router, behind the check that turns the request's principal into its
/// [`ScimCaller`].
pub fn router(state: &ServerState) -> axum::Router<ServerState> {
    let config = tenure_scim::Config { kinds: vec![ResourceKind::User], ..Default::default() };
    let scim = tenure_scim::router_with(StoreScimBackend::new(state.app.clone()), config)
        .layer(axum::middleware::from_fn_with_state(state.clone(), caller));
    axum::Router::new().fallback_service(scim)
}

/// The SCIM source a request acts for: the source its token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimCaller {
    pub source: String,
}

impl ScimCaller {
    /// The actor recorded in the audit trail: the source, as for a webhook push.
    fn actor(&self) -> String {
        format!("source:{}", self.source)
    }
}

/// Outside the authentication layer: its refusals of a SCIM request (401, 429, each `{code,
/// message}` JSON) are answered as SCIM Errors with the same status, message and headers
/// (`Retry-After`), as RFC 7644 §3.12 wants every error of the endpoint to be.
pub async fn scim_errors(req: Request, next: Next) -> Response {
    let scim = req.uri().path().starts_with("/scim/");
    let res = next.run(req).await;
    let api_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !scim || res.status().is_success() || !api_json {
        return res;
    }
    let (parts, body) = res.into_parts();
    // An API error body is a short JSON object; anything else is passed on unread.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return ScimError::with_status(parts.status, "request refused").into_response();
    };
    let message = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| String::from("request refused"));
    let mut scim = ScimError::with_status(parts.status, message).into_response();
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            scim.headers_mut().insert(name.clone(), value.clone());
        }
    }
    scim
}

/// Turns the principal the authentication layer put in the request into its [`ScimCaller`],
/// or answers a SCIM 401 / 403.
async fn caller(State(state): State<ServerState>, mut req: Request, next: Next) -> Response {
    let Some(p) = req.extensions().get::<Principal>().cloned() else {
        return ScimError::unauthorized().into_response();
    };
    match scim_source_of(&state.app, &p) {
        Ok(source) => {
            req.extensions_mut().insert(ScimCaller { source });
            next.run(req).await
        }
        Err(why) => ScimError::forbidden(why).into_response(),
    }
}

/// The `kind = "scim"` source `p` may push for, or why it may not use the SCIM endpoint.
fn scim_source_of(app: &App, p: &Principal) -> Result<String, String> {
    let need = "the SCIM endpoint takes a `source` token of a `kind = \"scim\"` source";
    if p.scope != Scope::Source {
        return Err(format!("a token with scope {} may not use it; {need}", p.scope));
    }
    let Some(name) = p.source.as_deref() else { return Err(need.to_string()) };
    match app.config().source(name) {
        Some(s) if s.kind == SourceKind::Scim => Ok(s.name.clone()),
        Some(s) => Err(format!("source `{}` is a {} source; {need}", tenure_core::text::escape(name), s.kind.as_str())),
        None => Err(format!("source `{}` is not in the config; {need}", tenure_core::text::escape(name))),
    }
}

/// [`ScimBackend`] on Tenure's store (see the module doc). Every call runs on the blocking
/// pool.
#[derive(Clone)]
pub struct StoreScimBackend {
    app: App,
}

impl StoreScimBackend {
    pub fn new(app: App) -> Self {
        Self { app }
    }

    async fn store<T, F>(&self, f: F) -> Result<T, BackendError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn tenure_store::Backend) -> tenure_store::Result<T> + Send + 'static,
    {
        tenure_engine::blocking::store(self.app.store(), f).await.map_err(internal)
    }

    /// The identity key a User's `manager.value` stands for: the key of the source's User
    /// with that SCIM id, else the value as written when it is an identity's key (which the
    /// engine then checks like a CSV row's: of this source, not the User itself, no cycle). A
    /// reference to nothing at all (a resource the client never wrote here) gives the identity
    /// no manager; the resource keeps it as written.
    async fn manager_key(&self, caller: &ScimCaller, record: &mut UserRecord) -> Result<(), BackendError> {
        let Some(manager) = record.manager_id.clone() else { return Ok(()) };
        let source = caller.source.clone();
        let found = self
            .store(move |s| {
                let user = s.scim_get(&source, ScimKind::User, &manager)?.and_then(|m| m.identity_key);
                match user {
                    // A User of this source: its key, stored or still in a held batch.
                    Some(key) => Ok(Some(key)),
                    None => Ok(s.sources_of(&[&manager])?.into_iter().next().map(|_| manager)),
                }
            })
            .await?;
        record.manager_id = found;
        Ok(())
    }

    /// Writes `change` of resource `id` together with the batch `records` make: the engine
    /// prepares the push ([`ingest::push_with`]) and [`ScimCommit`] commits it with the
    /// resource row. A record the engine refuses refuses the whole write.
    async fn write(
        &self,
        caller: &ScimCaller,
        id: &str,
        change: ScimChange,
        records: Vec<Record>,
        what: &'static str,
    ) -> Result<Option<ScimResource>, BackendError> {
        let escaped = tenure_core::text::escape(id);
        let audit = vec![
            tenure_core::audit::AuditEntry::new(&caller.actor(), &format!("scim.user.{what}"), "written")
                .reason(format!("SCIM User `{escaped}` {what}")),
        ];
        let write =
            ScimWrite { source: caller.source.clone(), kind: ScimKind::User, id: id.to_string(), change, audit };
        let opts =
            PushOptions { actor: caller.actor(), label: format!("scim User {escaped}"), ..PushOptions::default() };
        let (app, source) = (self.app.clone(), caller.source.clone());
        let pushed = tokio::task::spawn_blocking(move || {
            let commit = ScimCommit { store: app.store().as_ref(), write: &write, outcome: Mutex::new(None) };
            let pushed = ingest::push_with(&app, &source, &records, &opts, &commit);
            let outcome = commit.outcome.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            // A refused record: the reason, from the same push prepared without committing.
            let reason = match (&pushed, &outcome) {
                (Ok(_), Some(Committed::Rejected)) => {
                    let dry = PushOptions { dry_run: true, ..opts };
                    ingest::push(&app, &source, &records, &dry).ok().and_then(|r| r.rejected.into_iter().next())
                }
                _ => None,
            };
            (pushed, outcome, reason)
        })
        .await
        .map_err(internal)?;
        match pushed {
            (Ok(_), Some(Committed::Written(o)), _) => match o {
                ScimOutcome::Written { resource, .. } => Ok(resource.map(|r| *r)),
                ScimOutcome::NotFound => Err(BackendError::NotFound),
                ScimOutcome::VersionMismatch => Err(BackendError::VersionMismatch),
                ScimOutcome::Taken(ScimTaken::UserName) => Err(BackendError::Conflict { attribute: "userName".into() }),
                ScimOutcome::Taken(ScimTaken::IdentityKey) => {
                    Err(BackendError::Conflict { attribute: "externalId".into() })
                }
                // A random id already in use: vanishingly rare, and the client may retry.
                ScimOutcome::IdTaken => Err(BackendError::Unavailable { detail: "resource id collision".into() }),
            },
            (Ok(_), Some(Committed::Rejected), reason) => Err(BackendError::Invalid {
                detail: match reason {
                    Some(r) => match r.field {
                        Some(f) => format!("`{}`: {}", scim_name(&f), r.reason),
                        None => r.reason,
                    },
                    None => "the record this resource makes was refused".into(),
                },
            }),
            (Ok(_), None, _) => Err(internal("the push committed nothing")),
            (Err(e), _, _) => Err(match e.code() {
                Code::InvalidInput => BackendError::Invalid { detail: e.to_string() },
                Code::StoreUnavailable | Code::Conflict => BackendError::Unavailable { detail: e.to_string() },
                _ => internal(e),
            }),
        }
    }
}

/// How a [`ScimCommit`] ended.
enum Committed {
    /// The store's answer to the write (which committed the batch only if it is `Written`).
    Written(ScimOutcome),
    /// The engine refused a record, so nothing was written.
    Rejected,
}

/// Commits a push's batch together with a SCIM resource write, in the store's one
/// transaction ([`tenure_store::ScimStore::scim_write`]). A write the store refuses (a stale
/// version, a taken `userName`), or a batch that refused a record, commits nothing: the commit
/// then returns without error and [`ScimCommit::outcome`] says why, so the push is not
/// prepared again for a refusal that would only repeat.
struct ScimCommit<'a> {
    store: &'a dyn tenure_store::Backend,
    write: &'a ScimWrite,
    outcome: Mutex<Option<Committed>>,
}

impl Commit for ScimCommit<'_> {
    fn commit(
        &self,
        schema: &tenure_core::Schema,
        batch: &Batch,
        events: Option<&mut dyn Iterator<Item = EventIn>>,
    ) -> tenure_store::Result<BatchIds> {
        let set = |c: Committed| *self.outcome.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(c);
        let rejected = batch.summary.get("rejected").and_then(Value::as_u64).unwrap_or(0);
        if rejected > 0 {
            set(Committed::Rejected);
            return Ok(BatchIds::default());
        }
        // A push is a handful of events: they are gathered and written with the resource.
        let mut full = batch.clone();
        if let Some(events) = events {
            full.events = events.collect();
        }
        let outcome = self.store.scim_write(schema, self.write, Some(&full))?;
        let ids = match &outcome {
            ScimOutcome::Written { batch: Some(ids), .. } => ids.clone(),
            _ => BatchIds::default(),
        };
        set(Committed::Written(outcome));
        Ok(ids)
    }
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal { detail: e.to_string() }
}

fn refuse_groups(kind: ResourceKind) -> Result<(), BackendError> {
    match kind {
        ResourceKind::User => Ok(()),
        ResourceKind::Group => Err(BackendError::Invalid {
            detail: "this source does not map groups: Group resources are not accepted".into(),
        }),
    }
}

/// A new resource id: a random UUID (version 4).
fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    if let Some(v) = b.get_mut(6) {
        *v = (*v & 0x0f) | 0x40;
    }
    if let Some(v) = b.get_mut(8) {
        *v = (*v & 0x3f) | 0x80;
    }
    let h = hex::encode(b);
    let part = |r: std::ops::Range<usize>| h.get(r).unwrap_or_default().to_string();
    format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
}

/// The standard mapping's User as a record for the engine: every mapped attribute, so one the
/// User no longer has is cleared (a SCIM write replaces the whole resource), and the status.
fn to_record(user: &UserRecord, schema: &tenure_core::Schema) -> Record {
    let attr = |name: &'static str, scim: &str, value: &Option<String>| {
        schema.slot(name).map(|slot| RecordField {
            field: Field::Attr(slot),
            name: scim.to_string(),
            value: value.clone(),
        })
    };
    let mut fields: Vec<RecordField> = [
        attr("username", "userName", &user.username),
        attr("given_name", "name.givenName", &user.given_name),
        attr("family_name", "name.familyName", &user.family_name),
        attr("email", "emails", &user.email),
        attr("title", "title", &user.title),
        attr("department", "department", &user.department),
        attr("cost_center", "costCenter", &user.cost_center),
        attr("manager_id", "manager", &user.manager_id),
        attr("employment_type", "userType", &user.employment_type),
    ]
    .into_iter()
    .flatten()
    .collect();
    fields.push(RecordField {
        field: Field::Status,
        name: "active".into(),
        value: Some(user.status.as_str().to_string()),
    });
    Record { index: 0, key: user.key.clone(), deleted: false, fields }
}

/// The SCIM attribute a record field stands for, in messages: the engine names a field by the
/// name the record gave it (the SCIM names [`to_record`] uses) or, for a check of its own (an
/// account name another identity holds), by Tenure's attribute name.
fn scim_name(field: &str) -> &str {
    match field {
        "username" => "userName",
        "given_name" => "name.givenName",
        "family_name" => "name.familyName",
        "email" => "emails",
        "cost_center" => "costCenter",
        "manager_id" => "manager",
        "employment_type" => "userType",
        other => other,
    }
}

fn deletion(key: &str) -> Record {
    Record { index: 0, key: key.to_string(), deleted: true, fields: Vec::new() }
}

/// A User body mapped and checked: its record and what the store indexes.
struct Mapped {
    user: UserRecord,
    body: ScimBody,
}

/// The first string in `body` over the field limit, as `` `path`: value is N bytes; the limit is
/// 4096 `` (the attribute named as SCIM writes it, `addresses[0].streetAddress`).
fn oversized(body: &Map<String, Value>) -> Option<String> {
    fn walk(v: &Value, path: &mut String) -> Option<String> {
        match v {
            Value::String(s) if s.len() > tenure_core::text::FIELD_LIMIT => Some(format!(
                "`{}`: value is {} bytes; the limit is {}",
                tenure_core::text::quote(path),
                s.len(),
                tenure_core::text::FIELD_LIMIT
            )),
            Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            Value::Object(o) => o.iter().find_map(|(k, item)| {
                let len = path.len();
                // An extension's attributes follow its URN with `:`, sub-attributes with `.`.
                if path.contains(':') && !path.contains(['.', '[']) {
                    path.push(':');
                } else if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    body.iter().find_map(|(k, v)| walk(v, &mut k.clone()))
}

fn user_name(write: &Write) -> Option<String> {
    write.unique.iter().find(|k| k.attribute == "userName").map(|k| k.value.clone())
}

fn text(body: &Map<String, Value>, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

impl StoreScimBackend {
    /// Maps a User body. `fixed_key` is the identity key of a User that exists: it is kept,
    /// whatever the body now says (see the module doc).
    async fn map(
        &self,
        caller: &ScimCaller,
        id: &str,
        write: &Write,
        fixed_key: Option<String>,
    ) -> Result<Mapped, BackendError> {
        // Every value is within the field limit, the attributes the mapping does not read
        // (`nickName`, `addresses`, ...) as much as the mapped ones: the body is stored whole.
        if let Some(why) = oversized(&write.body) {
            return Err(BackendError::Invalid { detail: why });
        }
        let mut user =
            mapping::user_record(id, &write.body).map_err(|e| BackendError::Invalid { detail: e.to_string() })?;
        if let Some(key) = fixed_key {
            user.key = key;
        }
        // The key is checked as any source's key is: printable ASCII, within the field limit.
        let employee_number = write
            .body
            .get(tenure_scim::schema::ENTERPRISE_USER_URN)
            .and_then(Value::as_object)
            .and_then(|e| text(e, "employeeNumber"));
        let key_name = match (text(&write.body, "externalId"), employee_number) {
            (Some(_), _) => "externalId",
            (None, Some(_)) => "employeeNumber",
            (None, None) => "id",
        };
        user.key = tenure_core::record::check_key(0, key_name, Some(&user.key))
            .map_err(|e| BackendError::Invalid { detail: format!("`{key_name}`: {}", e.reason) })?;
        self.manager_key(caller, &mut user).await?;
        self.unique(caller, id, user_name(write), &user.key).await?;
        let body = ScimBody {
            body: Value::Object(write.body.clone()).to_string(),
            user_name: user_name(write),
            external_id: text(&write.body, "externalId"),
            identity_key: Some(user.key.clone()),
        };
        Ok(Mapped { user, body })
    }

    /// Refuses, before the engine sees the record, a `userName` or identity key another User of
    /// the source holds: a 409, not the engine's refusal of an account name it already gave
    /// out. The store checks both again in the write's transaction.
    async fn unique(
        &self,
        caller: &ScimCaller,
        id: &str,
        user_name: Option<String>,
        key: &str,
    ) -> Result<(), BackendError> {
        let (source, id, key) = (caller.source.clone(), id.to_string(), key.to_string());
        let taken = self
            .store(move |s| {
                let other = |r: &ScimResource| r.id != id;
                if let Some(name) = &user_name
                    && s.scim_list(&source, ScimKind::User, Some(ScimLookup::UserName(name)))?.iter().any(other)
                {
                    return Ok(Some("userName"));
                }
                let same_key = s.scim_list(&source, ScimKind::User, Some(ScimLookup::IdentityKey(&key)))?;
                Ok(same_key.iter().any(other).then_some("externalId"))
            })
            .await?;
        match taken {
            Some(attribute) => Err(BackendError::Conflict { attribute: attribute.into() }),
            None => Ok(()),
        }
    }

    fn stored(r: ScimResource) -> Result<StoredResource, BackendError> {
        let time = |s: &str| {
            tenure_core::clock::parse_stamp(s)
                .ok_or_else(|| internal(format!("bad stored time `{s}` of SCIM `{}`", r.id)))
        };
        let body = match serde_json::from_str::<Value>(&r.body) {
            Ok(Value::Object(o)) => o,
            _ => return Err(internal(format!("the stored body of SCIM `{}` is not a JSON object", r.id))),
        };
        Ok(StoredResource {
            id: r.id.clone(),
            version: r.version.to_string(),
            created: time(&r.created_at)?,
            last_modified: time(&r.modified_at)?,
            body,
        })
    }
}

fn version(expected: &str) -> Result<i64, BackendError> {
    expected.parse().map_err(|_| BackendError::VersionMismatch)
}

#[async_trait]
impl ScimBackend for StoreScimBackend {
    type Caller = ScimCaller;

    async fn create(
        &self,
        caller: &ScimCaller,
        kind: ResourceKind,
        write: Write,
    ) -> Result<StoredResource, BackendError> {
        refuse_groups(kind)?;
        let id = new_id();
        let m = self.map(caller, &id, &write, None).await?;
        let record = to_record(&m.user, &self.app.config().schema);
        let r = self.write(caller, &id, ScimChange::Create(m.body), vec![record], "created").await?;
        Self::stored(r.ok_or_else(|| internal("a create returned no resource"))?)
    }

    async fn get(
        &self,
        caller: &ScimCaller,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, BackendError> {
        if kind == ResourceKind::Group {
            return Ok(None);
        }
        let (source, id) = (caller.source.clone(), id.to_string());
        self.store(move |s| s.scim_get(&source, ScimKind::User, &id)).await?.map(Self::stored).transpose()
    }

    async fn replace(
        &self,
        caller: &ScimCaller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
        write: Write,
    ) -> Result<StoredResource, BackendError> {
        refuse_groups(kind)?;
        let expected = version(expected)?;
        let (source, rid) = (caller.source.clone(), id.to_string());
        let previous =
            self.store(move |s| s.scim_get(&source, ScimKind::User, &rid)).await?.ok_or(BackendError::NotFound)?;
        let m = self.map(caller, id, &write, previous.identity_key).await?;
        let records = vec![to_record(&m.user, &self.app.config().schema)];
        let r = self.write(caller, id, ScimChange::Replace { expected, body: m.body }, records, "replaced").await?;
        Self::stored(r.ok_or_else(|| internal("a replace returned no resource"))?)
    }

    async fn delete(
        &self,
        caller: &ScimCaller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
    ) -> Result<(), BackendError> {
        refuse_groups(kind)?;
        let expected = version(expected)?;
        let (source, rid) = (caller.source.clone(), id.to_string());
        let previous =
            self.store(move |s| s.scim_get(&source, ScimKind::User, &rid)).await?.ok_or(BackendError::NotFound)?;
        let records = previous.identity_key.iter().map(|k| deletion(k)).collect();
        self.write(caller, id, ScimChange::Delete { expected }, records, "deleted").await?;
        Ok(())
    }

    async fn list(
        &self,
        caller: &ScimCaller,
        kind: ResourceKind,
        query: ListQuery<'_>,
    ) -> Result<Vec<StoredResource>, BackendError> {
        if kind == ResourceKind::Group {
            return Ok(Vec::new());
        }
        // The lookups IdPs make before every write come from an index; the protocol layer
        // evaluates the filter exactly on whatever is returned.
        let lookup = match (query.equality("userName"), query.equality("externalId"), query.equality("id")) {
            (_, _, Some(id)) => {
                return Ok(self.get(caller, kind, id).await?.into_iter().collect());
            }
            (Some(name), _, _) => Some(Lookup::UserName(name.to_lowercase())),
            (None, Some(ext), _) => Some(Lookup::ExternalId(ext.to_string())),
            (None, None, None) => None,
        };
        let source = caller.source.clone();
        let rows = self
            .store(move |s| {
                let lookup = match &lookup {
                    Some(Lookup::UserName(v)) => Some(ScimLookup::UserName(v)),
                    Some(Lookup::ExternalId(v)) => Some(ScimLookup::ExternalId(v)),
                    None => None,
                };
                s.scim_list(&source, ScimKind::User, lookup)
            })
            .await?;
        rows.into_iter().map(Self::stored).collect()
    }
}

/// An owned [`ScimLookup`], to move onto the blocking pool.
enum Lookup {
    UserName(String),
    ExternalId(String),
}

#[cfg(test)]
mod tests;
