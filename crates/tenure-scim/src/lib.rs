//! The SCIM 2.0 service provider protocol (RFC 7643, RFC 7644) that `tenure serve` mounts at
//! `/scim/v2`, so that an IdP or HR system can push identities into Tenure.
//!
//! **What this crate owns.** Everything that is SCIM and nothing that is Tenure: the schemas
//! (core User, the enterprise extension, Group) and their `/Schemas`, `/ResourceTypes` and
//! `/ServiceProviderConfig`; filters ([`filter`]); PATCH ([`patch`]); normalization of incoming
//! resources and the `returned` / `mutability` rules ([`resource`]); lists with filter, sort,
//! pagination and `attributes` / `excludedAttributes`, `/.search`, ETags and `If-Match`, SCIM
//! errors ([`mod@router`]); and the pure mapping of a User to the record Tenure's engine ingests
//! ([`mapping`]). It does no IO of its own: persistence is behind [`ScimBackend`], and
//! authentication is the server's, which wraps the router.
//!
//! **Why our own protocol code.** The crates available (`scim_v2`) model resources as typed
//! structs. A service provider must return what a client wrote, including attributes Tenure
//! never maps (`nickName`, `x509Certificates`, ...), and must evaluate filters and PATCH paths
//! against any attribute with the schema's case and type rules, so the natural representation
//! is the JSON itself, driven by schema data. That is small enough to own, and owning it lets
//! the leniencies real IdPs need (Entra's `"False"` and `"Replace"`, path-less PATCH values,
//! filtered paths that create the element they describe) be deliberate and tested. The
//! independent `scim2-tester` suite (PyPI `scim2-cli`) runs against the router in this crate's
//! tests, with zero failed checks as the bar.
//!
//! **How the server mounts it.**
//! ```text
//! let scim = tenure_scim::router_with(StoreScimBackend::new(app.clone()), tenure_scim::Config {
//!     base_url: Some("https://tenure.example.com/scim/v2".into()),
//!     ..Default::default()
//! });
//! // The token layer checks the bearer token (scope `source`), then inserts the caller the
//! // backend declared as `ScimBackend::Caller` (the SCIM source the token belongs to) into the
//! // request's extensions; the router hands it to every backend call.
//! let app = Router::new().nest("/scim/v2", scim.layer(from_fn_with_state(state, scim_source_auth)));
//! ```
//! A request that reaches a resource endpoint without a caller is answered 401
//! ([`ScimBackend::default_caller`] is `None` unless a backend says otherwise), so a router
//! mounted without its authentication layer is closed, not open.
//!
//! **How the server implements [`ScimBackend`]** (on Tenure's store; see [`backend`] for the
//! contract):
//! - It stores each resource's normalized body, as given, next to the identity it maps to
//!   (one row per SCIM resource: source, kind, id, version, created, modified, body), so that
//!   unmapped attributes read back exactly as written, and returns bodies unchanged. Every
//!   call is scoped to its caller's source: one source never reads or writes another's.
//! - Every User write also becomes a source record: [`mapping::user_record`] gives the key,
//!   the attributes and the status, which go through the lifecycle engine exactly as a signed
//!   webhook record would (journaled durably before the response; `active: false` makes a
//!   leaver; the guard applies over its window). The body and the record commit in one
//!   transaction, so a 2xx never describes a write the engine did not journal. A DELETE is
//!   the record `{key, deleted: true}`.
//! - Versions are a per-resource counter (or a hash of the body); `replace` and `delete`
//!   compare-and-swap on them. `userName` uniqueness, and the uniqueness of the mapped key
//!   (two Users must not map to one identity), are enforced in the same transaction and
//!   reported as [`BackendError::Conflict`] (409 `uniqueness`).
//! - `list` may answer `userName eq` / `externalId eq` lookups from an index via
//!   [`ListQuery::equality`]; otherwise it returns the source's resources in id order.
//! - Group writes map to the source's group memberships when the source maps groups; until
//!   then a backend may refuse them with [`BackendError::Invalid`].

#![deny(clippy::indexing_slicing)]

pub mod backend;
pub mod error;
pub mod filter;
pub mod mapping;
pub mod patch;
pub mod resource;
pub mod router;
pub mod schema;

pub use backend::{ListQuery, ScimBackend, Write};
pub use error::{BackendError, ScimError, ScimType};
pub use resource::{StoredResource, UniqueKey};
pub use router::{Config, router, router_with};
pub use schema::ResourceKind;
