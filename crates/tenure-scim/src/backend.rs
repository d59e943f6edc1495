//! The persistence boundary: what the protocol layer asks of whoever stores the resources.
//!
//! The protocol layer does everything SCIM: it parses and checks requests, normalizes bodies,
//! applies PATCH, filters, sorts, pages and projects, renders `meta` and ETags, and maps errors.
//! A backend only keeps bodies, per caller and resource type, with ids, versions and
//! timestamps, and makes each write atomic:
//!
//! - **Callers.** Every call carries the [`ScimBackend::Caller`] the server's authentication
//!   put in the request (for Tenure, the SCIM source); a backend scopes everything to it.
//! - **Versions.** Every write gives the resource a new opaque version. `replace` and `delete`
//!   take the version the protocol layer read; if the resource has moved on since, they fail
//!   with [`BackendError::VersionMismatch`] and change nothing (compare-and-swap). That is what
//!   makes `If-Match` (412) and concurrent PATCHes correct without a lock around the request.
//! - **Uniqueness.** `create` and `replace` carry the [`UniqueKey`]s the schema asks for
//!   (`userName`, case-folded); a backend refuses, with [`BackendError::Conflict`], a write
//!   whose key another resource of the same type holds, in the same transaction as the write.
//!   It may refuse more (Tenure's server also refuses a second User mapping to the same
//!   identity key) the same way.
//! - **Listing.** `list` returns the candidates for a query: a superset of the matches, in a
//!   stable order (pagination relies on it). The protocol layer evaluates the filter exactly, so
//!   a backend may ignore [`ListQuery::filter`] and return everything, or use
//!   [`ListQuery::equality`] to answer the lookups IdPs make before every write
//!   (`userName eq "..."`, `externalId eq "..."`) from an index.
//!
//! Bodies are JSON objects exactly as [`crate::resource::normalize`] made them (canonical
//! attribute names, `schemas` included, no `id` or `meta`); a backend stores them as given and
//! returns them unchanged, so attributes Tenure does not map read back as the client wrote them.

use crate::error::BackendError;
use crate::filter::Filter;
use crate::resource::{StoredResource, UniqueKey};
use crate::schema::{ResourceKind, ResourceType};
use async_trait::async_trait;
use serde_json::{Map, Value};

/// A body to store, with the keys that must be unique.
#[derive(Clone, Debug, PartialEq)]
pub struct Write {
    pub body: Map<String, Value>,
    pub unique: Vec<UniqueKey>,
}

/// What a list is for.
#[derive(Clone, Copy, Debug)]
pub struct ListQuery<'a> {
    rt: &'static ResourceType,
    filter: Option<&'a Filter>,
}

impl<'a> ListQuery<'a> {
    pub(crate) fn new(kind: ResourceKind, filter: Option<&'a Filter>) -> ListQuery<'a> {
        ListQuery { rt: kind.resource_type(), filter }
    }

    /// The client's filter, if any (already checked against the resource type).
    pub fn filter(&self) -> Option<&'a Filter> {
        self.filter
    }

    /// The value every match has for the core attribute `attribute` (`userName`,
    /// `externalId`, `displayName`, `id`), when the filter pins it with `eq`. Compare as the
    /// attribute's `caseExact` says: `userName` and `displayName` case-insensitively, `id` and
    /// `externalId` exactly.
    pub fn equality(&self, attribute: &str) -> Option<&'a str> {
        self.filter?.required_equality(self.rt, attribute)
    }
}

/// Storage for SCIM resources (see the module doc for the contract).
#[async_trait]
pub trait ScimBackend: Send + Sync + 'static {
    /// Who is calling, as the server's authentication established it: its layer inserts a
    /// value of this type into the request's extensions (for Tenure, the `kind = "scim"`
    /// source the token belongs to), and every call below receives it, so one router serves
    /// several sources, each seeing and writing only its own resources.
    type Caller: Clone + Send + Sync + 'static;

    /// The caller for a request without one in its extensions. `None` (the default) makes
    /// the resource endpoints answer 401: a router mounted without the authentication layer
    /// is closed, not open. Discovery endpoints need no caller.
    fn default_caller() -> Option<Self::Caller> {
        None
    }

    /// Stores a new resource and returns it with its new id, version and timestamps.
    async fn create(
        &self,
        caller: &Self::Caller,
        kind: ResourceKind,
        write: Write,
    ) -> Result<StoredResource, BackendError>;

    /// The resource, or `None` if there is none with that id.
    async fn get(
        &self,
        caller: &Self::Caller,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, BackendError>;

    /// Replaces the body if the current version is `expected`; returns the new state.
    /// [`BackendError::NotFound`] if it is gone, [`BackendError::VersionMismatch`] if it moved.
    async fn replace(
        &self,
        caller: &Self::Caller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
        write: Write,
    ) -> Result<StoredResource, BackendError>;

    /// Deletes the resource if the current version is `expected`.
    async fn delete(
        &self,
        caller: &Self::Caller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
    ) -> Result<(), BackendError>;

    /// The candidates for `query`, in a stable order (see the module doc).
    async fn list(
        &self,
        caller: &Self::Caller,
        kind: ResourceKind,
        query: ListQuery<'_>,
    ) -> Result<Vec<StoredResource>, BackendError>;
}

/// A shared backend is a backend, so the server (or a test) can keep a handle on the one it
/// gives the router.
#[async_trait]
impl<B: ScimBackend> ScimBackend for std::sync::Arc<B> {
    type Caller = B::Caller;

    fn default_caller() -> Option<B::Caller> {
        B::default_caller()
    }

    async fn create(
        &self,
        caller: &B::Caller,
        kind: ResourceKind,
        write: Write,
    ) -> Result<StoredResource, BackendError> {
        (**self).create(caller, kind, write).await
    }

    async fn get(
        &self,
        caller: &B::Caller,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Option<StoredResource>, BackendError> {
        (**self).get(caller, kind, id).await
    }

    async fn replace(
        &self,
        caller: &B::Caller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
        write: Write,
    ) -> Result<StoredResource, BackendError> {
        (**self).replace(caller, kind, id, expected, write).await
    }

    async fn delete(
        &self,
        caller: &B::Caller,
        kind: ResourceKind,
        id: &str,
        expected: &str,
    ) -> Result<(), BackendError> {
        (**self).delete(caller, kind, id, expected).await
    }

    async fn list(
        &self,
        caller: &B::Caller,
        kind: ResourceKind,
        query: ListQuery<'_>,
    ) -> Result<Vec<StoredResource>, BackendError> {
        (**self).list(caller, kind, query).await
    }
}
