//! The SCIM 2.0 connector (RFC 7643 resources, RFC 7644 protocol).
//!
//! Accounts are `/Users` (`userName` = the account, `externalId` = Tenure's identity id);
//! entitlements are `/Groups`, named by `displayName`. Design choices, and why:
//!
//! - **Idempotency by reading first, not by trusting error codes.** Servers disagree on what a
//!   repeated "add member" or "remove member" answers (scim2-server says 204 either way), so
//!   `grant`/`revoke`/`enable`/`disable` read the current state and report
//!   [`Applied::AlreadyDone`] without sending a change when nothing needs to change. `create`
//!   is the exception: it POSTs, and on `409 uniqueness` looks the user up. Only a user carrying
//!   this identity's `externalId` (a create whose answer was lost) is brought to what the create
//!   would have made; one carrying none is never adopted, it is handed back unchanged as
//!   [`Applied::NotOwned`] for a person to decide whose it is (a correlation case), and one
//!   carrying another identity's is refused: taking over someone else's account is never right.
//! - **Ownership before every write.** Every change first finds the user and checks whose it is
//!   by its `externalId`: among the users a server returns for a `userName`, the one carrying
//!   this identity's id, else one carrying none; one carrying another identity's id is never
//!   written to (the operation is refused before any PATCH, PUT or DELETE). When no user of the
//!   name carries this identity's id, the user carrying it under another name (an admin changed
//!   the `userName`) is the one Tenure holds, so a leaver's renamed account is still disabled.
//! - **PATCH (RFC 7644 §3.5.2), PUT only as a fallback.** A server that answers a PATCH with 405
//!   or 501 is remembered, and from then on the connector GETs the resource, changes it and PUTs
//!   it back with `If-Match`.
//! - **`If-Match` where a decision rests on a read.** Enabling or disabling a user, and adopting
//!   an existing one, send the version that was read; a `412` means someone else changed the
//!   user in between, so the connector reads again, decides again and retries once. Membership
//!   changes carry no `If-Match`: adding or removing one member commutes with other members'
//!   changes, and on a popular group every concurrent grant would otherwise fail the others.
//! - **Filters are built, never formatted.** Every look-up is `ATTR eq VALUE` with a constant
//!   attribute and a JSON-quoted value (RFC 7644 §3.4.2.2), see `filter`.
//! - **Ids are cached only as a hint.** `account -> id` and `group name -> id` maps save a
//!   look-up; a cached user id is used only after GETting it and checking its `userName`, and a
//!   404 drops the entry and looks the name up again. Nothing read back comes from a cache.
//! - **Group names are matched exactly.** SCIM's `displayName eq` compares without case, so the
//!   connector picks the group whose name is exactly the entitlement. Groups a user is in come
//!   from the user's `groups` attribute when the server fills it in, otherwise from
//!   `GET /Groups?filter=members.value eq "ID"`, and, for a server that refuses that filter, from
//!   listing every group. Creating a group is serialized within the connector so two concurrent
//!   first grants do not make two groups of the same name (SCIM does not make `displayName`
//!   unique); several Tenure processes could still race, and membership in any group of the name
//!   counts as the grant.
//! - **Delete leaves no dangling references.** `delete_account` first removes the user from
//!   its groups: some servers (scim2-server among them) keep a deleted user's id in `members`.
//! - **Missing accounts.** `disable`, `revoke` and `delete_account` of an account that exists
//!   neither by name nor by `externalId` are already done (there is no access left to remove). `enable` and `grant` of one are
//!   transient errors: with `concurrency > 1` the create may simply not have finished yet, and
//!   the executor's bounded retries settle it.
//! - **Authentication.** A static bearer token, or OAuth 2.0 client credentials (`oauth`: the
//!   token cached until shortly before expiry, refreshed then and on a 401).
//! - **Dialects.** `patch_op_case`, `active_as_string`, `filtered_patch_paths` and
//!   `put_instead_of_patch` shape the requests (`wire::patch_body`); `dialect = "entra"` sets
//!   them as apps built for Entra ID provisioning expect. A server that refuses removing a
//!   member by value gets the filtered path from then on, with a note.
//! - **Listing limits.** `page_size`, `max_pages` and `max_response_bytes` bound a page, and
//!   `max_listing_items` / `max_listing_bytes` / `max_listing_seconds` the whole listing (users
//!   and groups together, `crate::listing`). A page is counted before it is decoded — its size
//!   plus 64 bytes for every value it lists, members and emails included — and a member without
//!   a `value` is dropped while decoding (noted). The reads of one user's groups share one cap
//!   across the connector, however many run at once. Hitting a cap is a permanent error, never a silently partial list
//!   (reconciliation would read missing accounts as gone). A resource two pages both hold is
//!   kept once; a page with no resource the earlier pages had not returned (a server ignoring
//!   `startIndex`) fails the listing. A page whose `itemsPerPage` differs from what it held is
//!   paged by what it held and noted (`Connector::take_notes`).
//! - **TLS.** `https://` with rustls, `ca_file` or the system's roots, `tls_verify` (see
//!   `crate::tls`).
//! - **Errors.** Connection failures, timeouts, 408, 429 and 5xx are transient (with the server's
//!   `Retry-After`); every other unexpected status is permanent. Messages name the target and the
//!   step, never the token.
//! - **Wire types are hand-written** (`wire`) rather than taken from the `scim_v2` crate: Tenure
//!   needs six user attributes and two group attributes, and `scim_v2` decodes whole resources
//!   strictly (for instance `meta.created` must be a valid date), so one malformed attribute Tenure
//!   never uses would make an account unreadable and block verification. Its filter support
//!   (a parser, with `lalrpop-util` and `fluent-uri`) is for reading filters; Tenure only writes
//!   them, and writing one is a dozen lines (see `filter`).

// Public for the fuzz targets, which parse every quoted value back with `tenure-scim`'s parser.
pub mod filter;
mod http;
mod oauth;
mod wire;

use crate::listing;
use crate::{AccountSpec, AccountState, Applied, Capability, Connector, ConnectorError, ErrorKind, Request, Result};
use filter::Filter;
use http::{Http, Reply};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use tenure_core::OpKind;
use tenure_core::config::{ScimDialect, ScimSettings};
use wire::{Change, Group, ListResponse, User};

const CAPABILITIES: &[Capability] = &[
    Capability::CreateAccount,
    Capability::Enable,
    Capability::Disable,
    Capability::DeleteAccount,
    Capability::Grant,
    Capability::Revoke,
    Capability::UpdateAttributes,
    Capability::ListAccounts,
    Capability::ListGrants,
    Capability::ReadBack,
];

/// A SCIM 2.0 service provider.
pub struct ScimConnector {
    name: String,
    http: Http,
    page_size: usize,
    max_pages: usize,
    /// What one listing may hold in all.
    listing: tenure_core::config::ListingLimits,
    /// `create_groups`: whether a grant of a group the service lacks creates it.
    create_groups: bool,
    dialect: ScimDialect,
    /// What the connector noticed about the server, for a report (see `Connector::take_notes`).
    notes: Mutex<Vec<String>>,
    /// Account name -> SCIM user id. A hint only, see the module docs.
    user_ids: Mutex<HashMap<String, String>>,
    /// Group displayName -> SCIM group id. A hint only.
    group_ids: Mutex<HashMap<String, String>>,
    /// Held while looking up and creating a group, so one connector never creates a name twice.
    group_create: tokio::sync::Mutex<()>,
    /// Set once the server refused a PATCH with 405 or 501 (or from the start, with
    /// `put_instead_of_patch`).
    patch_refused: AtomicBool,
    /// Set once the server refused removing a member by value (400).
    value_remove_refused: AtomicBool,
    /// Set once the server refused `filter=members.value eq ...` on `/Groups`.
    member_filter_refused: AtomicBool,
    /// What the reads of one user's groups in flight hold together, under `listing`'s caps.
    member_reads: listing::Pool,
}

/// A user found for an account, and whose it is by its `externalId`.
enum Found {
    /// Carries this identity's id.
    Mine(User),
    /// Carries none (a user made by hand, or linked by correlation).
    Unmarked(User),
    /// Carries another identity's id (the second field).
    Other(User, String),
    None,
}

/// An account as read, with the names of the groups it is in.
fn state_of(user: User, grants: BTreeSet<String>) -> AccountState {
    AccountState {
        enabled: user.enabled(),
        email: user.email(),
        account: user.user_name,
        external_id: user.external_id,
        grants,
        sessions: None,
    }
}

/// How a change to one resource ended, when the server answered.
enum Modified {
    Done,
    NotFound,
    /// `412 Precondition Failed`: the resource changed since it was read.
    Stale,
}

impl ScimConnector {
    /// A connector for the service provider at `settings.url` (the base URL, such as
    /// `https://host/scim/v2`), sending at most `concurrency` requests at once.
    pub fn new(name: &str, settings: &ScimSettings, concurrency: usize) -> Result<Self> {
        let token = crate::resolve_secret(&settings.token, &format!("scim target `{name}` token"))?;
        let oauth = settings.oauth.as_ref().map(|o| oauth::OAuth::new(name, o)).transpose()?;
        Ok(Self {
            name: name.to_string(),
            http: Http::new(
                name,
                &settings.url,
                &token,
                oauth,
                concurrency,
                &settings.tls,
                settings.max_response_bytes,
            )?,
            page_size: settings.page_size.max(1),
            max_pages: settings.max_pages.max(1),
            listing: settings.listing,
            create_groups: settings.create_groups,
            dialect: settings.dialect,
            notes: Mutex::new(Vec::new()),
            user_ids: Mutex::new(HashMap::new()),
            group_ids: Mutex::new(HashMap::new()),
            group_create: tokio::sync::Mutex::new(()),
            patch_refused: AtomicBool::new(settings.dialect.put_instead_of_patch),
            value_remove_refused: AtomicBool::new(false),
            member_filter_refused: AtomicBool::new(false),
            member_reads: listing::Pool::default(),
        })
    }

    /// How many OAuth tokens this connector has fetched (0 with a static token).
    pub fn token_fetches(&self) -> u64 {
        self.http.token_fetches()
    }

    fn note(&self, note: String) {
        tracing::warn!(target: "tenure_connect::scim", scim_target = %self.name, "{note}");
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        if !notes.contains(&note) && notes.len() < 100 {
            notes.push(note);
        }
    }

    /// Sets how many resources to ask for per page when listing (default 500).
    #[must_use]
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    fn err(&self, kind: ErrorKind, what: &str, why: &str) -> ConnectorError {
        self.http.error(kind, what, why)
    }

    /// The URL of one resource. Server-assigned ids are percent-encoded as a path segment; an
    /// id that would name no resource (`..`) is refused.
    fn resource_url(&self, endpoint: &str, id: &str, what: &str) -> Result<Url> {
        if id.is_empty() || id == "." || id == ".." {
            return Err(self.err(ErrorKind::Permanent, what, &format!("the server gave the unusable id `{id}`")));
        }
        Ok(self.http.url(&[endpoint, id], &[]))
    }

    async fn get(&self, url: Url, what: &str) -> Result<Reply> {
        self.http.send(Method::GET, url, None, None, what).await
    }

    // ---- caches (hints only) ----

    fn cached(map: &Mutex<HashMap<String, String>>, key: &str) -> Option<String> {
        map.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned()
    }

    fn remember(map: &Mutex<HashMap<String, String>>, key: &str, id: &str) {
        map.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_string(), id.to_string());
    }

    fn forget(map: &Mutex<HashMap<String, String>>, key: &str) {
        map.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    // ---- users ----

    /// The users named `account` (RFC 7644 §3.4.2.2): the cached id first (used only after
    /// reading it and checking its `userName`), else a filter on `userName`. `userName` is
    /// case-insensitive in SCIM, so is the filter; every user the server returns with that name
    /// (case-insensitively) is a candidate, an exact match first.
    async fn named(&self, account: &str) -> Result<Vec<User>> {
        if let Some(id) = Self::cached(&self.user_ids, account) {
            let what = format!("reading user `{account}`");
            let reply = self.get(self.resource_url("Users", &id, &what)?, &what).await?;
            match reply.status {
                StatusCode::OK => {
                    let user: User = reply.json(&self.http, &what)?;
                    if same_user_name(&user.user_name, account) {
                        return Ok(vec![user]);
                    }
                }
                StatusCode::NOT_FOUND => {}
                _ => return Err(reply.error(&self.http, &what)),
            }
            Self::forget(&self.user_ids, account);
        }
        let what = format!("looking up user `{account}`");
        let filter = Filter::eq("userName", account);
        let url = self.http.url(&["Users"], &[("filter", filter.as_str())]);
        let reply = self.get(url, &what).await?;
        if !reply.is_success() {
            return Err(reply.error(&self.http, &what));
        }
        let list: ListResponse<User> = reply.json(&self.http, &what)?;
        let mut found: Vec<User> =
            list.resources.into_iter().filter(|u| same_user_name(&u.user_name, account)).collect();
        // A stable sort: the server's order otherwise.
        found.sort_by_key(|u| u.user_name != account);
        Ok(found)
    }

    /// Who the user named `spec.account` belongs to, by its `externalId`, decided before anything
    /// is written to it: among the users the server returns for the name, the one carrying this
    /// identity's id, else one carrying none; a user carrying another identity's id is only ever
    /// reported, never chosen.
    async fn by_name(&self, spec: &AccountSpec) -> Result<Found> {
        let found = self.named(&spec.account).await?;
        let id = spec.identity_id.as_str();
        let owner = |u: &User| u.external_id.as_deref().filter(|e| !e.is_empty()).map(str::to_string);
        let pick = if id.is_empty() {
            // No identity to check against (it is unknown to Tenure now): the name decides.
            found.into_iter().next().map(Found::Unmarked)
        } else {
            let mut mine = None;
            let mut unmarked = None;
            let mut other = None;
            for u in found {
                match owner(&u) {
                    Some(o) if o == id => {
                        mine.get_or_insert(u);
                    }
                    Some(o) => {
                        other.get_or_insert((u, o));
                    }
                    None => {
                        unmarked.get_or_insert(u);
                    }
                }
            }
            mine.map(Found::Mine).or(unmarked.map(Found::Unmarked)).or(other.map(|(u, o)| Found::Other(u, o)))
        };
        match &pick {
            Some(Found::Mine(u) | Found::Unmarked(u)) => Self::remember(&self.user_ids, &spec.account, &u.id),
            _ => Self::forget(&self.user_ids, &spec.account),
        }
        Ok(pick.unwrap_or(Found::None))
    }

    /// The user carrying `identity` as its `externalId` (`caseExact`, RFC 7643 §3.1), wherever
    /// it is: an admin may have changed its `userName`. Two such users are an error: which one
    /// Tenure holds cannot be told.
    async fn by_external_id(&self, identity: &str) -> Result<Option<User>> {
        let what = format!("looking up the user with externalId `{identity}`");
        let filter = Filter::eq("externalId", identity);
        let url = self.http.url(&["Users"], &[("filter", filter.as_str())]);
        let reply = self.get(url, &what).await?;
        if reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_IMPLEMENTED {
            // A server that cannot filter on externalId: the user is looked for by name only. A
            // leaver's account Tenure read back before and cannot find is then not "verified"
            // (the executor makes it an exception), so nothing is claimed that was not seen.
            self.note(format!(
                "the server refuses filtering users by externalId ({}); accounts are found by userName only",
                reply.status.as_u16()
            ));
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(reply.error(&self.http, &what));
        }
        let list: ListResponse<User> = reply.json(&self.http, &what)?;
        let mut found: Vec<User> =
            list.resources.into_iter().filter(|u| u.external_id.as_deref() == Some(identity)).collect();
        if found.len() > 1 {
            let names: Vec<String> = found.iter().map(|u| format!("`{}`", u.user_name)).collect();
            return Err(self.err(
                ErrorKind::Permanent,
                &what,
                &format!(
                    "{} users carry it ({}); which one is this identity's cannot be told",
                    found.len(),
                    names.join(", ")
                ),
            ));
        }
        Ok(found.pop())
    }

    /// The user `spec` is about: by name ([`Self::by_name`]), and when no user of the name
    /// carries this identity's id, the user that carries it under another name (renamed by
    /// hand), which is then the one Tenure holds.
    async fn locate(&self, spec: &AccountSpec) -> Result<Found> {
        let found = self.by_name(spec).await?;
        if matches!(found, Found::Mine(_)) || spec.identity_id.is_empty() {
            return Ok(found);
        }
        match self.by_external_id(&spec.identity_id).await? {
            Some(user) => Ok(Found::Mine(user)),
            None => Ok(found),
        }
    }

    /// The user to change for `spec`: refused, before anything is written, when the only user
    /// found carries another identity's `externalId`.
    async fn owned(&self, spec: &AccountSpec, what: &str) -> Result<Option<User>> {
        match self.locate(spec).await? {
            Found::Mine(u) | Found::Unmarked(u) => Ok(Some(u)),
            Found::Other(u, other) => Err(self.err(
                ErrorKind::Permanent,
                what,
                &format!(
                    "user `{}` belongs to identity `{other}` (its externalId), not `{}`; nothing was changed",
                    u.user_name, spec.identity_id
                ),
            )),
            Found::None => Ok(None),
        }
    }

    async fn create(&self, spec: &AccountSpec) -> Result<Applied> {
        let what = format!("creating user `{}`", spec.account);
        if spec.account.is_empty() {
            return Err(self.err(ErrorKind::Permanent, &what, "the account name is empty"));
        }
        let body = wire::new_user(spec);
        let reply = self.http.send(Method::POST, self.http.url(&["Users"], &[]), Some(&body), None, &what).await?;
        match reply.status {
            StatusCode::CREATED | StatusCode::OK => {
                // The user exists now, whatever the body says; an unreadable body only costs
                // the cached id.
                if let Ok(user) = reply.json::<User>(&self.http, &what) {
                    Self::remember(&self.user_ids, &spec.account, &user.id);
                }
                Ok(Applied::Changed)
            }
            StatusCode::CONFLICT => self.adopt(spec, &what).await,
            _ => Err(reply.error(&self.http, &what)),
        }
    }

    /// After a `409` on create: a user of this name exists. One carrying this identity's
    /// `externalId` is its own (a create whose answer was lost): it is made what the create would
    /// have made. Any other is not adopted: one carrying no `externalId` is handed back as
    /// [`Applied::NotOwned`], unchanged, for a person to decide whose it is, and one carrying
    /// another identity's is refused.
    async fn adopt(&self, spec: &AccountSpec, what: &str) -> Result<Applied> {
        for attempt in 0..2 {
            let user = match self.by_name(spec).await? {
                Found::Mine(u) if !spec.identity_id.is_empty() => u,
                Found::Mine(u) | Found::Unmarked(u) => {
                    let grants = self.memberships(&u).await?.into_iter().map(|(_, name)| name).collect();
                    return Ok(Applied::NotOwned(Box::new(state_of(u, grants))));
                }
                Found::Other(_, other) => {
                    return Err(self.err(
                        ErrorKind::Permanent,
                        what,
                        &format!("the account exists and belongs to identity `{other}` (its externalId)"),
                    ));
                }
                Found::None => {
                    return Err(self.err(
                        ErrorKind::Transient,
                        what,
                        "the server reported a uniqueness conflict, but no user has this userName",
                    ));
                }
            };
            let changes = wire::changes_to_match(&user, spec);
            if changes.is_empty() {
                return Ok(Applied::AlreadyDone);
            }
            match self.modify("Users", &user.id, &changes, user.version(), what).await? {
                Modified::Done => return Ok(Applied::Changed),
                Modified::NotFound | Modified::Stale if attempt == 0 => Self::forget(&self.user_ids, &spec.account),
                Modified::NotFound | Modified::Stale => break,
            }
        }
        Err(self.err(ErrorKind::Transient, what, "the user kept changing while it was being updated"))
    }

    /// `update_attributes`: reads the user and PATCHes (or, where PATCH is refused, PUTs) only
    /// the mapped attributes that differ from the identity's, with the version read as
    /// `If-Match`; a `412` reads and decides again, once. Nothing differs: nothing is sent. The
    /// `userName` is never changed (renames are out of scope).
    async fn update_attributes(&self, spec: &AccountSpec) -> Result<Applied> {
        let what = format!("updating the attributes of user `{}`", spec.account);
        for attempt in 0..2 {
            let Some(user) = self.owned(spec, &what).await? else {
                return Err(self.err(ErrorKind::Transient, &what, "the account does not exist (yet)"));
            };
            let changes = wire::attribute_changes(&user, spec);
            if changes.is_empty() {
                return Ok(Applied::AlreadyDone);
            }
            match self.modify("Users", &user.id, &changes, user.version(), &what).await? {
                Modified::Done => return Ok(Applied::Changed),
                Modified::NotFound | Modified::Stale if attempt == 0 => Self::forget(&self.user_ids, &spec.account),
                Modified::NotFound | Modified::Stale => break,
            }
        }
        Err(self.err(ErrorKind::Transient, &what, "the user kept changing while it was being updated"))
    }

    async fn set_active(&self, spec: &AccountSpec, active: bool) -> Result<Applied> {
        let what = format!("{} user `{}`", if active { "enabling" } else { "disabling" }, spec.account);
        for attempt in 0..2 {
            let Some(user) = self.owned(spec, &what).await? else {
                return if active {
                    Err(self.err(ErrorKind::Transient, &what, "the account does not exist (yet)"))
                } else {
                    Ok(Applied::AlreadyDone)
                };
            };
            if user.enabled() == active {
                return Ok(Applied::AlreadyDone);
            }
            let change = [Change::Replace("active", serde_json::Value::Bool(active))];
            match self.modify("Users", &user.id, &change, user.version(), &what).await? {
                Modified::Done => return Ok(Applied::Changed),
                Modified::NotFound | Modified::Stale if attempt == 0 => Self::forget(&self.user_ids, &spec.account),
                Modified::NotFound | Modified::Stale => break,
            }
        }
        Err(self.err(ErrorKind::Transient, &what, "the user kept changing while it was being updated"))
    }

    async fn delete(&self, spec: &AccountSpec) -> Result<Applied> {
        let what = format!("deleting user `{}`", spec.account);
        let Some(user) = self.owned(spec, &what).await? else {
            return Ok(Applied::AlreadyDone);
        };
        // Leave no dangling member references behind: some servers (scim2-server among them)
        // keep a deleted user's id in its groups' `members`.
        for (group_id, _) in self.memberships(&user).await? {
            self.modify("Groups", &group_id, &[Change::RemoveMember(user.id.clone())], None, &what).await?;
        }
        let url = self.resource_url("Users", &user.id, &what)?;
        let reply = self.http.send(Method::DELETE, url, None, None, &what).await?;
        Self::forget(&self.user_ids, &spec.account);
        match reply.status {
            s if s.is_success() => Ok(Applied::Changed),
            StatusCode::NOT_FOUND => Ok(Applied::AlreadyDone),
            _ => Err(reply.error(&self.http, &what)),
        }
    }

    // ---- groups ----

    /// The groups `user` is in, as `(id, displayName)`.
    async fn memberships(&self, user: &User) -> Result<Vec<(String, String)>> {
        let from_user: Vec<(String, String)> =
            user.groups.iter().filter_map(|g| Some((g.value.clone()?, g.display.clone()?))).collect();
        if !from_user.is_empty() && from_user.len() == user.groups.len() {
            return Ok(from_user);
        }
        let what = format!("listing the groups of user `{}`", user.user_name);
        if !self.member_filter_refused.load(Ordering::Relaxed) {
            let filter = Filter::eq("members.value", &user.id);
            let query = [("filter", filter.as_str()), ("attributes", "displayName")];
            let budget = listing::Budget::pooled(self.listing, &self.member_reads);
            match self.page_all::<Group>("Groups", &query, &budget, &what).await? {
                Ok(groups) => return Ok(groups.into_iter().map(|g| (g.id, g.display_name)).collect()),
                Err(reply)
                    if reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_IMPLEMENTED =>
                {
                    tracing::info!(
                        target: "tenure_connect::scim", scim_target = %self.name,
                        "the server refuses filtering groups by member; listing all groups instead"
                    );
                    self.member_filter_refused.store(true, Ordering::Relaxed);
                }
                Err(reply) => return Err(reply.error(&self.http, &what)),
            }
        }
        let groups = self.all_groups(&listing::Budget::pooled(self.listing, &self.member_reads), &what).await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.members.iter().any(|m| m.user_id() == Some(user.id.as_str())))
            .map(|g| (g.id, g.display_name))
            .collect())
    }

    /// Every group with its members.
    async fn all_groups(&self, budget: &listing::Budget<'_>, what: &str) -> Result<Vec<Group>> {
        self.page_all::<Group>("Groups", &[("attributes", "displayName,members")], budget, what)
            .await?
            .map_err(|reply| reply.error(&self.http, what))
    }

    /// The id of the group named exactly `name`, read from the server.
    async fn find_group(&self, name: &str) -> Result<Option<String>> {
        let what = format!("looking up group `{name}`");
        let filter = Filter::eq("displayName", name);
        let url = self.http.url(&["Groups"], &[("filter", filter.as_str()), ("attributes", "displayName")]);
        let reply = self.get(url, &what).await?;
        if !reply.is_success() {
            return Err(reply.error(&self.http, &what));
        }
        let list: ListResponse<Group> = reply.json(&self.http, &what)?;
        let id = list.resources.into_iter().find(|g| g.display_name == name).map(|g| g.id);
        match &id {
            Some(id) => Self::remember(&self.group_ids, name, id),
            None => Self::forget(&self.group_ids, name),
        }
        Ok(id)
    }

    async fn grant(&self, spec: &AccountSpec, group: &str) -> Result<Applied> {
        let what = format!("granting group `{group}` to user `{}`", spec.account);
        for attempt in 0..2 {
            let Some(user) = self.owned(spec, &what).await? else {
                return Err(self.err(ErrorKind::Transient, &what, "the account does not exist (yet)"));
            };
            if self.memberships(&user).await?.iter().any(|(_, n)| n == group) {
                return Ok(Applied::AlreadyDone);
            }
            let group_id = match Self::cached(&self.group_ids, group) {
                Some(id) => Some(id),
                None => self.find_group(group).await?,
            };
            let Some(group_id) = group_id else {
                if !self.create_groups {
                    return Err(self.err(
                        ErrorKind::Permanent,
                        &what,
                        "the group does not exist and Tenure does not create groups here (`create_groups = false`); \
                         create it in the service first",
                    ));
                }
                return self.create_group_with(group, &user.id, &what).await;
            };
            match self.modify("Groups", &group_id, &[Change::AddMember(user.id.clone())], None, &what).await? {
                Modified::Done => return Ok(Applied::Changed),
                Modified::NotFound | Modified::Stale if attempt == 0 => Self::forget(&self.group_ids, group),
                Modified::NotFound | Modified::Stale => break,
            }
        }
        Err(self.err(ErrorKind::Transient, &what, "the group kept changing while it was being updated"))
    }

    /// Creates group `name` with `user_id` as its first member, unless another task created it
    /// meanwhile, in which case the user is added to that one.
    async fn create_group_with(&self, name: &str, user_id: &str, what: &str) -> Result<Applied> {
        let _guard = self.group_create.lock().await;
        if let Some(id) = self.find_group(name).await? {
            return self.add_member(&id, user_id, what).await;
        }
        let body = wire::new_group(name, user_id);
        let reply = self.http.send(Method::POST, self.http.url(&["Groups"], &[]), Some(&body), None, what).await?;
        match reply.status {
            StatusCode::CREATED | StatusCode::OK => {
                if let Ok(group) = reply.json::<Group>(&self.http, what) {
                    Self::remember(&self.group_ids, name, &group.id);
                }
                Ok(Applied::Changed)
            }
            // A server that keeps displayName unique: someone else may have just created it.
            StatusCode::CONFLICT => match self.find_group(name).await? {
                Some(id) => self.add_member(&id, user_id, what).await,
                None => Err(self.err(
                    ErrorKind::Permanent,
                    what,
                    "the server refuses to create the group (409) but has no group of exactly this name; \
                     one whose name differs only in case may exist",
                )),
            },
            _ => Err(reply.error(&self.http, what)),
        }
    }

    async fn add_member(&self, group_id: &str, user_id: &str, what: &str) -> Result<Applied> {
        match self.modify("Groups", group_id, &[Change::AddMember(user_id.to_string())], None, what).await? {
            Modified::Done => Ok(Applied::Changed),
            Modified::NotFound | Modified::Stale => {
                Err(self.err(ErrorKind::Transient, what, "the group changed while it was being updated"))
            }
        }
    }

    async fn revoke(&self, spec: &AccountSpec, group: &str) -> Result<Applied> {
        let what = format!("revoking group `{group}` from user `{}`", spec.account);
        let Some(user) = self.owned(spec, &what).await? else {
            return Ok(Applied::AlreadyDone);
        };
        let held: Vec<String> =
            self.memberships(&user).await?.into_iter().filter(|(_, n)| n == group).map(|(id, _)| id).collect();
        if held.is_empty() {
            return Ok(Applied::AlreadyDone);
        }
        for group_id in held {
            // A group deleted meanwhile no longer grants anything: that is success too.
            match self.modify("Groups", &group_id, &[Change::RemoveMember(user.id.clone())], None, &what).await? {
                Modified::Done | Modified::NotFound => {}
                Modified::Stale => {
                    return Err(self.err(ErrorKind::Transient, &what, "the group changed while it was being updated"));
                }
            }
        }
        Ok(Applied::Changed)
    }

    // ---- changing and listing ----

    /// Changes one resource with PATCH, or with GET + PUT on a server that refuses PATCH.
    async fn modify(
        &self,
        endpoint: &str,
        id: &str,
        changes: &[Change],
        if_match: Option<&str>,
        what: &str,
    ) -> Result<Modified> {
        let url = self.resource_url(endpoint, id, what)?;
        let removes_by_value = changes.iter().any(|c| matches!(c, Change::RemoveMember(_)));
        for _ in 0..2 {
            if self.patch_refused.load(Ordering::Relaxed) {
                break;
            }
            let mut dialect = self.dialect;
            if self.value_remove_refused.load(Ordering::Relaxed) {
                dialect.filtered_patch_paths = true;
            }
            let body = wire::patch_body(changes, &dialect);
            let reply = self.http.send(Method::PATCH, url.clone(), Some(&body), if_match, what).await?;
            match reply.status {
                s if s.is_success() => return Ok(Modified::Done),
                StatusCode::NOT_FOUND => return Ok(Modified::NotFound),
                StatusCode::PRECONDITION_FAILED => return Ok(Modified::Stale),
                StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => {
                    tracing::info!(
                        target: "tenure_connect::scim", scim_target = %self.name,
                        "the server refuses PATCH; falling back to PUT"
                    );
                    self.patch_refused.store(true, Ordering::Relaxed);
                }
                // A server that follows RFC 7644 refuses removing a member by value (a 400
                // changes nothing): from now on it gets the filtered path.
                StatusCode::BAD_REQUEST if removes_by_value && !dialect.filtered_patch_paths => {
                    self.value_remove_refused.store(true, Ordering::Relaxed);
                    self.note(format!(
                        "the server refused removing a group member by value (`filtered_patch_paths = false`, \
                         as the `entra` dialect does): {}; using a filtered path (`members[value eq \"...\"]`) instead",
                        reply.error(&self.http, what).message
                    ));
                }
                _ => return Err(reply.error(&self.http, what)),
            }
        }
        let reply = self.get(url.clone(), what).await?;
        match reply.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Modified::NotFound),
            _ => return Err(reply.error(&self.http, what)),
        }
        let mut resource: serde_json::Value = reply.json(&self.http, what)?;
        let version = if_match
            .map(str::to_string)
            .or(reply.etag)
            .or_else(|| resource.pointer("/meta/version").and_then(serde_json::Value::as_str).map(str::to_string));
        wire::apply_changes(&mut resource, changes, &self.dialect);
        let reply = self.http.send(Method::PUT, url, Some(&resource), version.as_deref(), what).await?;
        match reply.status {
            s if s.is_success() => Ok(Modified::Done),
            StatusCode::NOT_FOUND => Ok(Modified::NotFound),
            StatusCode::PRECONDITION_FAILED => Ok(Modified::Stale),
            _ => Err(reply.error(&self.http, what)),
        }
    }

    /// Every resource of `endpoint` matching `query`, paging with `startIndex`/`count`
    /// (RFC 7644 §3.4.2.4), counted against `budget` (the listing's `max_listing_items` and
    /// `max_listing_bytes`). A resource a page repeats from an earlier one is kept once; a page
    /// that holds nothing new (a server ignoring `startIndex` answers the first page forever) ends
    /// the listing with an error. The inner `Err` is the first answer that was not a success.
    /// The whole listing runs under `max_listing_seconds`.
    async fn page_all<T: DeserializeOwned + wire::Resource>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
        budget: &listing::Budget<'_>,
        what: &str,
    ) -> Result<std::result::Result<Vec<T>, Reply>> {
        budget
            .within(self.pages::<T>(endpoint, query, budget, what))
            .await
            .map_err(|why| self.err(ErrorKind::Permanent, what, &why))?
    }

    async fn pages<T: DeserializeOwned + wire::Resource>(
        &self,
        endpoint: &str,
        query: &[(&str, &str)],
        budget: &listing::Budget<'_>,
        what: &str,
    ) -> Result<std::result::Result<Vec<T>, Reply>> {
        let mut out = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut start: u64 = 1;
        let count = self.page_size.to_string();
        for page_no in 0..self.max_pages {
            let start_text = start.to_string();
            let mut q = query.to_vec();
            q.push(("startIndex", &start_text));
            q.push(("count", &count));
            let reply = self.get(self.http.url(&[endpoint], &q), what).await?;
            if !reply.is_success() {
                return Ok(Err(reply));
            }
            // Counted before decoding: what the page will hold once decoded is bounded by its size
            // and the number of values it lists, however small each is on the wire.
            let values = wire::count_values(&reply.body).unwrap_or(0);
            let held = reply.body.len().saturating_add(values.saturating_mul(listing::PER_VALUE_BYTES));
            budget.take(0, held).map_err(|why| self.err(ErrorKind::Permanent, what, &why))?;
            let page: ListResponse<T> = reply.json(&self.http, what)?;
            drop(reply);
            let got = page.resources.len();
            let dropped: usize = page.resources.iter().map(wire::Resource::dropped).sum();
            if dropped > 0 {
                self.note(format!(
                    "listing {endpoint}: page {} listed {dropped} group members without a `value`; they were ignored",
                    page_no + 1
                ));
            }
            // RFC 7644 §3.4.2: itemsPerPage is the number returned on this page. Some servers
            // report the count asked for, or the page size they use; what was returned is what
            // counts, and the difference is noted.
            if let Some(claimed) = page.items_per_page
                && claimed != got as u64
            {
                self.note(format!(
                    "listing {endpoint}: page {} claimed itemsPerPage {claimed} but held {got} resources; \
                     paging by what was returned",
                    page_no + 1
                ));
            }
            let fresh: Vec<T> = page.resources.into_iter().filter(|r| seen.insert(r.id().to_string())).collect();
            if got > 0 && fresh.is_empty() {
                return Err(self.err(
                    ErrorKind::Permanent,
                    what,
                    &format!(
                        "page {} (`startIndex` {start}) held only resources earlier pages had returned: the \
                         server seems to ignore `startIndex`, so the listing stops instead of reading the same \
                         page again",
                        page_no + 1
                    ),
                ));
            }
            budget.take(fresh.len(), 0).map_err(|why| self.err(ErrorKind::Permanent, what, &why))?;
            out.extend(fresh);
            start += got as u64;
            // Stop on an empty page, past totalResults, or (for a server that leaves
            // totalResults out) on a short page.
            let done = match page.total_results {
                Some(total) => start > total,
                None => got < self.page_size,
            };
            if got == 0 || done {
                return Ok(Ok(out));
            }
        }
        Err(self.err(
            ErrorKind::Permanent,
            what,
            &format!(
                "stopped after {} pages ({} resources, `max_pages`); raise `max_pages` or `page_size` if the \
                 service really holds more",
                self.max_pages,
                out.len()
            ),
        ))
    }
}

/// `userName` is case-insensitive (RFC 7643 §4.1.1: `caseExact` false).
fn same_user_name(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

#[async_trait::async_trait]
impl Connector for ScimConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }

    async fn apply(&self, req: &Request) -> Result<Applied> {
        let entitlement = || {
            req.entitlement.as_deref().filter(|e| !e.is_empty()).ok_or_else(|| {
                self.err(ErrorKind::Permanent, req.kind.as_str(), "the operation names no entitlement (group)")
            })
        };
        match req.kind {
            OpKind::CreateAccount => self.create(&req.account).await,
            OpKind::Enable => self.set_active(&req.account, true).await,
            OpKind::Disable => self.set_active(&req.account, false).await,
            OpKind::DeleteAccount => self.delete(&req.account).await,
            OpKind::Grant => self.grant(&req.account, entitlement()?).await,
            OpKind::Revoke => self.revoke(&req.account, entitlement()?).await,
            OpKind::UpdateAttributes => self.update_attributes(&req.account).await,
            other => Err(self.err(ErrorKind::Permanent, other.as_str(), "scim targets do not support this operation")),
        }
    }

    /// The account by name, else by its `externalId` (see `locate`); a user carrying another
    /// identity's `externalId` is returned as read, for the caller to see whose it is.
    async fn read_account(&self, account: &AccountSpec) -> Result<Option<AccountState>> {
        let user = match self.locate(account).await? {
            Found::Mine(u) | Found::Unmarked(u) | Found::Other(u, _) => u,
            Found::None => return Ok(None),
        };
        let grants = self.memberships(&user).await?.into_iter().map(|(_, name)| name).collect();
        Ok(Some(state_of(user, grants)))
    }

    async fn read_attributes(&self, account: &AccountSpec) -> Result<Option<tenure_core::attributes::Live>> {
        Ok(match self.locate(account).await? {
            Found::Mine(u) | Found::Unmarked(u) | Found::Other(u, _) => Some(wire::live_attributes(&u)),
            Found::None => None,
        })
    }

    async fn list_accounts(&self) -> Result<Vec<AccountState>> {
        let what = "listing users";
        let users_query = [("attributes", "userName,externalId,active,emails,groups")];
        // One budget for both: the listing is the users and the groups together.
        let budget = listing::Budget::new(self.listing);
        let (users, groups) = tokio::join!(
            self.page_all::<User>("Users", &users_query, &budget, what),
            self.all_groups(&budget, "listing groups")
        );
        let users = users?.map_err(|reply| reply.error(&self.http, what))?;
        let groups = groups?;
        let mut grants: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for group in &groups {
            for member in group.members.iter() {
                if let Some(id) = member.user_id() {
                    grants.entry(id).or_default().insert(group.display_name.clone());
                }
            }
        }
        Ok(users
            .iter()
            .map(|user| {
                let mut held = grants.get(user.id.as_str()).cloned().unwrap_or_default();
                held.extend(user.groups.iter().filter_map(|g| g.display.clone()));
                AccountState {
                    account: user.user_name.clone(),
                    external_id: user.external_id.clone(),
                    email: user.email(),
                    enabled: user.enabled(),
                    grants: held,
                    sessions: None,
                }
            })
            .collect())
    }

    fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock().unwrap_or_else(PoisonError::into_inner))
    }

    async fn list_entitlements(&self) -> Result<Vec<String>> {
        let what = "listing groups";
        let groups = self
            .page_all::<Group>("Groups", &[("attributes", "displayName")], &listing::Budget::new(self.listing), what)
            .await?
            .map_err(|reply| reply.error(&self.http, what))?;
        let names: BTreeSet<String> = groups.into_iter().map(|g| g.display_name).collect();
        Ok(names.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenure_core::TargetKind;

    #[test]
    fn capabilities_match_what_scim_targets_support() {
        for op in OpKind::ALL {
            let supported = TargetKind::Scim.supports(*op);
            let offered = Capability::for_op(*op).is_some_and(|c| CAPABILITIES.contains(&c));
            assert_eq!(offered, supported, "{op}");
        }
        assert!(CAPABILITIES.contains(&Capability::ListAccounts));
        assert!(CAPABILITIES.contains(&Capability::ListGrants));
        assert!(CAPABILITIES.contains(&Capability::ReadBack));
    }

    #[test]
    fn user_names_compare_without_case() {
        assert!(same_user_name("Jürgen", "jürgen"));
        assert!(!same_user_name("ann", "anne"));
    }
}
