//! The LDAP connector: accounts and groups in whatever schema the target's profile names.
//!
//! **Profiles.** `openldap` (the default: `inetOrgPerson` named by `uid`, `groupOfNames` with
//! `member`, disabled by moving), `active_directory` (`user` named by `cn` with
//! `sAMAccountName` and `userPrincipalName`, `group` with `member`, disabled by the
//! ACCOUNTDISABLE bit of `userAccountControl`, an initial random password as `unicodePwd` in the
//! creating `add`, only over TLS), `389ds` (`groupOfUniqueNames` with `uniqueMember`) and `posix`
//! (`posixAccount`, `posixGroup` with `memberUid` names; groups are never created, they need a
//! `gidNumber`). The target may override classes and attributes and map identity attributes to
//! LDAP attributes by template; `tenure_core::config::LdapSettings::schema` resolves all of that
//! into one [`LdapSchema`](tenure_core::config::LdapSchema), and `ops` turns it into the exact
//! requests, as data, before anything is sent (unit-tested per profile there).
//!
//! Directory layout, described here for the default profile (the containers come from the
//! target's config; other profiles differ only in the attribute names above):
//! - an enabled account is `uid=NAME,<users_dn>`; a disabled one is the same entry moved (modrdn
//!   with a new superior) to `uid=NAME,<disabled_dn>`, stripped of its group memberships. Moving
//!   rather than flagging works on any schema and any server, and "enabled" is then simply "lives
//!   under `users_dn`". `employeeNumber` holds Tenure's identity id (the correlation id).
//! - an entitlement is `cn=NAME,<groups_dn>`; a grant is the account's enabled DN in `member`.
//!   Grants always name the enabled DN, so a grant made while the account is disabled (a
//!   prehire's) lies dormant until enable moves the entry back; it is still reported as held.
//!   Disable and delete remove the account's memberships under either DN.
//!
//! Design choices:
//! - **The empty group placeholder.** `groupOfNames` requires at least one `member`. When the
//!   last real member is revoked, the same modify request adds the placeholder member
//!   [`LdapConnector::placeholder`] (the `groups_dn` itself: a DN that always exists, so
//!   referential-integrity overlays leave it alone, and that can never be an account because it
//!   is not under `users_dn` or `disabled_dn`). The placeholder stays in the group afterwards;
//!   it is never reported as an account or a grant. Groups are created on first grant.
//! - **Idempotency from result codes, not from read-before-write.** Grant is one `modify add`;
//!   `attributeOrValueExists` means it was already there. Revoke is one `modify delete`;
//!   `noSuchAttribute`/`noSuchObject` mean it was already gone. Create checks for an entry of the
//!   same name first, enabled or disabled (creating `uid=x,<users_dn>` beside a disabled
//!   `uid=x,<disabled_dn>` would be a duplicate account), and again on `entryAlreadyExists`:
//!   it is already done only when the entry carries this identity's correlation id; one
//!   carrying none (made by hand) is [`Applied::NotOwned`], unchanged, never adopted, and one
//!   carrying another identity's is refused. Disable of an account found nowhere is
//!   `AlreadyDone` (the executor decides whether that absence can be trusted); enable of a
//!   missing account is a permanent error.
//! - **Ownership before every write.** Every operation reads the entry of the account's name
//!   first and refuses, before sending anything, when it carries another identity's
//!   correlation id.
//! - **An account is where its correlation id is.** When no entry of the name carries this
//!   identity's id, the account is looked for by it: a subtree search of the naming context
//!   that holds `users_dn` (root DSE `namingContexts`, else the DN above the configured
//!   containers) for `(&(objectClass=<user class>)(<id_attribute>=<id>))`, size-limited to two
//!   (two entries carrying one id are an error). An entry renamed or moved by hand is read back,
//!   disabled (moved into `disabled_dn` under its own RDN, its password removed), revoked and
//!   deleted where it is found, and its memberships are removed by its real DN as well as by the
//!   DN its name would have.
//! - **`userAccountControl` is read, then swapped.** Disable and enable read the value and send
//!   one modify that deletes the value read and adds the new one, which fails with
//!   `noSuchAttribute` if anyone changed it meanwhile (then it is read again), so a flag someone
//!   else set is never lost. With a `disabled_dn`, an AD account is also moved there.
//! - **TLS.** `ldaps://` or StartTLS (`starttls = true`) with rustls, the target's `ca_file` or
//!   the system's roots, verified unless `tls_verify = false` (see `crate::tls`). A certificate
//!   that is refused is a permanent error that says why.
//! - **Escaping.** Every name placed in a DN goes through `dn::dn_value` (RFC 4514), and every
//!   value placed in a filter through `dn::filter_value` (RFC 4515). DNs read back from the
//!   server are parsed, never string-matched, and compared the way the server does for `uid`
//!   (case-insensitive, insignificant spaces), see `dn`.
//! - **Fast listing.** `list_accounts` runs three paged searches (RFC 2696) at once, on
//!   separate pooled connections: enabled accounts, disabled accounts, and all groups with their
//!   `member` values. Memberships are mapped back to accounts in memory from each member DN,
//!   instead of one search per account, so reconciliation costs three streams whatever the
//!   population. DNs without escapes are split without a full parse, and container spellings are
//!   cached (`dn::split_leaf`, `dn::Parents`): 100,000 accounts with 200,000 memberships list
//!   in about 2 s in a debug build on the 2-core machine (7 s with a full parse of every DN).
//!   The list is in the server's order.
//! - **Errors.** Connection refused, reset, closed or timed out, and the result codes `busy`,
//!   `unavailable`, `timeLimitExceeded`, `adminLimitExceeded`, `operationsError`, `other` are
//!   transient; everything else (schema, access, invalid DN, bad credentials) is permanent. The
//!   bind password is resolved once, kept out of `Debug`, never formatted into a message, and
//!   scrubbed from any server text; the URL appears only redacted (`crate::redact`).
//! - **Concurrency.** At most `concurrency` operations are in flight, over a few multiplexed
//!   connections made lazily (see `pool`); a multi-step operation (disable, delete) holds one
//!   permit throughout.

// Public for the fuzz targets' escape-then-parse checks (`tenure-fuzz-targets`); pure functions.
pub mod dn;
mod ops;
mod pool;

use crate::{AccountSpec, AccountState, Applied, Capability, Connector, ConnectorError, Request, Result};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapResult, Mod, Scope, SearchEntry};
use ops::{Layout, Op, Place, Value};
use pool::{Conn, Pool};
use std::collections::{BTreeSet, HashMap, HashSet};
use tenure_core::OpKind;
use tenure_core::config::{LdapProfile, LdapSettings, MemberValues};

/// Requests no attributes (RFC 4511 §4.5.1.8).
const NO_ATTRS: &str = "1.1";

/// What this connector can do; the same set as `TargetKind::Ldap.supports(..)`.
const CAPABILITIES: &[Capability] = &[
    Capability::CreateAccount,
    Capability::Enable,
    Capability::Disable,
    Capability::DeleteAccount,
    Capability::Grant,
    Capability::Revoke,
    Capability::RotateCredential,
    Capability::UpdateAttributes,
    Capability::ListAccounts,
    Capability::ListGrants,
    Capability::ReadBack,
];

/// An LDAP target. Cheap to build: connections are made on first use.
#[derive(Debug)]
pub struct LdapConnector {
    name: String,
    layout: Layout,
    /// Canonical texts of the containers, for recognising DNs read back (see `dn::canonical`).
    users_key: String,
    disabled_key: Option<String>,
    groups_key: String,
    /// Whether connections are encrypted (ldaps:// or StartTLS): the only way a password is sent.
    secure: bool,
    page_size: i32,
    /// What one listing may hold in all.
    listing: tenure_core::config::ListingLimits,
    pool: Pool,
    /// The naming context the accounts live in (read from the root DSE once), searched for an
    /// account by its correlation id when it is not where its name says.
    base: tokio::sync::OnceCell<String>,
}

/// An account's entry as found.
#[derive(Debug)]
struct Located {
    dn: String,
    /// The account's name as the entry has it (its naming attribute).
    name: String,
    /// Its container: under `users_dn` or `disabled_dn`, or `None` for anywhere else (moved
    /// there by hand).
    place: Option<Place>,
    entry: SearchEntry,
}

/// An account's entry, and whose it is by its correlation id attribute.
#[derive(Debug)]
enum Found {
    /// Carries this identity's id.
    Mine(Located),
    /// Carries none (made by hand, or linked by correlation).
    Unmarked(Located),
    /// Carries another identity's id (the second field).
    Other(Located, String),
    None,
}

impl LdapConnector {
    /// Builds the connector; resolves the bind password and reads the CA file now so a missing
    /// secret or certificate is reported at startup. Does not connect.
    pub fn new(name: &str, s: &LdapSettings, concurrency: usize) -> Result<Self> {
        if let Err(e) = url::Url::parse(&s.url) {
            return Err(ConnectorError::permanent(format!("target `{name}`: `url` is not a valid URL ({e})")));
        }
        let password = crate::resolve_secret(&s.password, &format!("target `{name}` password"))?;
        let canonical = |what: &str, v: &str| {
            dn::canonical_str(v)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| ConnectorError::permanent(format!("target `{name}`: `{what}` is not a valid DN: `{v}`")))
        };
        let users_key = canonical("users_dn", &s.users_dn)?;
        let disabled_key = s.disabled_dn.as_deref().map(|d| canonical("disabled_dn", d)).transpose()?;
        let groups_key = canonical("groups_dn", &s.groups_dn)?;
        if disabled_key.as_ref() == Some(&users_key) {
            return Err(ConnectorError::permanent(format!(
                "target `{name}`: `users_dn` and `disabled_dn` must differ"
            )));
        }
        let schema = s.schema();
        if schema.disable == tenure_core::config::LdapDisable::Move && s.disabled_dn.is_none() {
            return Err(ConnectorError::permanent(format!(
                "target `{name}`: profile `{}` disables accounts by moving them, and `disabled_dn` is not set",
                s.profile.as_str()
            )));
        }
        let secure = s.uses_tls();
        let tls = if secure {
            let verify = crate::tls::Verify::from_flag(s.tls.verify);
            Some(std::sync::Arc::new(crate::tls::client_config(name, "ca_file", s.tls.ca_file.as_deref(), verify)?))
        } else {
            None
        };
        Ok(Self {
            name: name.to_string(),
            layout: Layout {
                schema,
                users_dn: s.users_dn.clone(),
                groups_dn: s.groups_dn.clone(),
                disabled_dn: s.disabled_dn.clone(),
            },
            users_key,
            disabled_key,
            groups_key,
            secure,
            page_size: s.page_size.max(1),
            listing: s.listing,
            pool: Pool::new(name, &s.url, &s.bind_dn, password, concurrency, tls, s.starttls),
            base: tokio::sync::OnceCell::new(),
        })
    }

    /// How many connections to the directory this connector has opened and bound: a connection
    /// given up on midway (a listing past its caps) is retired and replaced, never reused.
    pub fn connections_opened(&self) -> usize {
        self.pool.opened()
    }

    /// The member value that keeps an otherwise empty group valid: the `groups_dn` itself.
    pub fn placeholder(&self) -> &str {
        self.layout.placeholder()
    }

    fn check_name(&self, what: &str, value: &str) -> Result<()> {
        if value.trim().is_empty() {
            return Err(ConnectorError::permanent(format!("{}: the {what} name is empty", self.name)));
        }
        Ok(())
    }

    fn entitlement<'r>(&self, req: &'r Request) -> Result<&'r str> {
        let ent = req.entitlement.as_deref().ok_or_else(|| {
            ConnectorError::permanent(format!("{}: {} needs an entitlement", self.name, req.kind.as_str()))
        })?;
        self.check_name("entitlement", ent)?;
        Ok(ent)
    }

    /// Sends one request and returns its result, whatever the result code (the caller decides
    /// which codes are fine).
    async fn send(&self, c: &mut Conn<'_>, op: &Op) -> Result<LdapResult> {
        let what = op.what();
        let bytes = |vals: &[Value]| -> HashSet<Vec<u8>> { vals.iter().map(|v| v.bytes().to_vec()).collect() };
        let r = match op {
            Op::Add { dn, attrs } => {
                let attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)> =
                    attrs.iter().map(|(a, v)| (a.as_bytes().to_vec(), bytes(v))).collect();
                c.ldap().add(dn, attrs).await
            }
            Op::Modify { dn, changes } => {
                let mods: Vec<Mod<Vec<u8>>> = changes
                    .iter()
                    .map(|ch| match ch {
                        ops::Change::Add(a, v) => Mod::Add(a.as_bytes().to_vec(), bytes(v)),
                        ops::Change::Delete(a, v) => Mod::Delete(a.as_bytes().to_vec(), bytes(v)),
                        ops::Change::Replace(a, v) => Mod::Replace(a.as_bytes().to_vec(), bytes(v)),
                    })
                    .collect();
                c.ldap().modify(dn, mods).await
            }
            Op::ModDn { dn, rdn, superior } => c.ldap().modifydn(dn, rdn, true, Some(superior)).await,
            Op::Delete { dn } => c.ldap().delete(dn).await,
        };
        c.check(&what, r)
    }

    /// Refuses to send a password to the directory over a plain connection.
    fn require_tls(&self, account: &str) -> Result<()> {
        if self.secure {
            return Ok(());
        }
        Err(ConnectorError::permanent(format!(
            "{}: refusing to rotate the password of `{account}` over a plain connection: a password reaches a \
             directory only over TLS (use ldaps:// or starttls = true)",
            self.name
        )))
    }

    /// The DN of `account`'s entry, enabled or disabled, if it exists.
    async fn account_entry_dn(&self, c: &mut Conn<'_>, account: &str) -> Result<Option<String>> {
        for &place in self.layout.places() {
            let dn = self.layout.account_dn(account, place);
            if self.entry(c, &dn).await?.is_some() {
                return Ok(Some(dn));
            }
        }
        Ok(None)
    }

    /// Where an entry is: under `users_dn`, under `disabled_dn`, or elsewhere (`None`), and its
    /// name (the value of its naming attribute) when it is named by it.
    fn place_of(&self, entry_dn: &str) -> (Option<Place>, Option<String>) {
        let naming = &self.layout.schema.naming_attribute;
        if let Some(n) = dn::leaf_under(entry_dn, naming, &self.users_key) {
            return (Some(Place::Enabled), Some(n));
        }
        if let Some(k) = &self.disabled_key
            && let Some(n) = dn::leaf_under(entry_dn, naming, k)
        {
            return (Some(Place::Disabled), Some(n));
        }
        (None, dn::leaf_value(entry_dn, naming))
    }

    /// Classifies an entry read for `spec` by its correlation id attribute.
    fn classify(&self, spec: &AccountSpec, entry: SearchEntry) -> Found {
        let (place, name) = self.place_of(&entry.dn);
        let owner = non_empty(first_value(&entry, &self.layout.schema.id_attribute)).map(str::to_string);
        let loc = Located { dn: entry.dn.clone(), name: name.unwrap_or_else(|| spec.account.clone()), place, entry };
        match owner {
            None => Found::Unmarked(loc),
            Some(o) if spec.identity_id.is_empty() || o.trim().eq_ignore_ascii_case(spec.identity_id.trim()) => {
                Found::Mine(loc)
            }
            Some(o) => Found::Other(loc, o),
        }
    }

    /// The account's entry where its name puts it (`users_dn`, then `disabled_dn`), and whose
    /// it is. An entry of this identity's wins over one carrying no id, which wins over another
    /// identity's.
    async fn by_name(&self, c: &mut Conn<'_>, spec: &AccountSpec) -> Result<Found> {
        let mut best = Found::None;
        for &place in self.layout.places() {
            let Some(entry) = self.entry(c, &self.layout.account_dn(&spec.account, place)).await? else { continue };
            match self.classify(spec, entry) {
                mine @ Found::Mine(_) => return Ok(mine),
                u @ Found::Unmarked(_) if !matches!(best, Found::Unmarked(_)) => best = u,
                o @ Found::Other(..) if matches!(best, Found::None) => best = o,
                _ => {}
            }
        }
        Ok(best)
    }

    /// The base searched for an account by its correlation id: the server's naming context that
    /// holds `users_dn` (root DSE `namingContexts`), else the deepest DN above `users_dn`,
    /// `groups_dn` and `disabled_dn` alike.
    async fn search_base(&self, c: &mut Conn<'_>) -> Result<String> {
        if let Some(b) = self.base.get() {
            return Ok(b.clone());
        }
        let contexts = self
            .search(c, "", Scope::Base, "(objectClass=*)", vec!["namingContexts".to_string()])
            .await
            .ok()
            .flatten()
            .unwrap_or_default();
        let holds_users = |nc: &str| {
            dn::canonical_str(nc)
                .is_some_and(|k| !k.is_empty() && (self.users_key == k || self.users_key.ends_with(&format!(",{k}"))))
        };
        let from_dse = contexts.iter().flat_map(|e| values(e, "namingContexts")).find(|nc| holds_users(nc)).cloned();
        let base = from_dse.unwrap_or_else(|| {
            let mut keys = vec![self.users_key.as_str(), self.groups_key.as_str()];
            keys.extend(self.disabled_key.as_deref());
            dn::common_suffix(&keys)
        });
        let _ = self.base.set(base.clone());
        Ok(base)
    }

    /// The account entry carrying `identity` in the correlation id attribute, anywhere under
    /// the search base (a subtree search): where an account renamed or moved by hand still is.
    /// Two such entries are an error: which one is the identity's cannot be told.
    async fn by_id(&self, c: &mut Conn<'_>, spec: &AccountSpec) -> Result<Option<Located>> {
        let identity = spec.identity_id.trim();
        if identity.is_empty() {
            return Ok(None);
        }
        let base = self.search_base(c).await?;
        let id_attr = &self.layout.schema.id_attribute;
        let filter = format!("(&{}({id_attr}={}))", self.layout.accounts_filter(), dn::filter_value(identity));
        let what = format!("searching `{base}` for `{id_attr}={identity}`");
        let opts = ldap3::SearchOptions::new().sizelimit(2);
        let r =
            c.ldap().with_search_options(opts).search(&base, Scope::Subtree, &filter, self.layout.read_attrs()).await;
        let sr = match r {
            Ok(sr) => sr,
            Err(e) => return Err(c.fail(&what, e)),
        };
        let entries: Vec<SearchEntry> = sr.0.into_iter().map(SearchEntry::construct).collect();
        match sr.1.rc {
            0 | 4 => {}
            32 => return Ok(None),
            _ => return Err(c.unexpected(&what, &sr.1)),
        }
        if entries.len() > 1 || sr.1.rc == 4 {
            let dns: Vec<String> = entries.iter().map(|e| format!("`{}`", e.dn)).collect();
            return Err(ConnectorError::permanent(format!(
                "{}: {what}: more than one entry carries it ({}); which one is this identity's cannot be told",
                self.name,
                dns.join(", ")
            )));
        }
        Ok(entries.into_iter().next().and_then(|entry| match self.classify(spec, entry) {
            Found::Mine(l) | Found::Unmarked(l) | Found::Other(l, _) => Some(l),
            Found::None => None,
        }))
    }

    /// The account `spec` is about: by name ([`Self::by_name`]), and when no entry of the name
    /// carries this identity's id, the entry that carries it anywhere in the directory (renamed
    /// or moved by hand), which is then the one Tenure holds.
    async fn locate(&self, c: &mut Conn<'_>, spec: &AccountSpec) -> Result<Found> {
        let found = self.by_name(c, spec).await?;
        if matches!(found, Found::Mine(_)) || spec.identity_id.trim().is_empty() {
            return Ok(found);
        }
        Ok(match self.by_id(c, spec).await? {
            Some(l) => Found::Mine(l),
            None => found,
        })
    }

    /// Refuses a write to an entry of another identity's, before anything is sent.
    fn not_theirs(&self, spec: &AccountSpec, loc: &Located, other: &str) -> ConnectorError {
        ConnectorError::permanent(format!(
            "{}: account `{}` (`{}`) belongs to identity `{other}` (its `{}`), not `{}`; nothing was changed",
            self.name, spec.account, loc.dn, self.layout.schema.id_attribute, spec.identity_id
        ))
    }

    /// The account entry to change for `spec`, checked to be this identity's (or to carry no id)
    /// before any write; `None` when there is none.
    async fn owned(&self, c: &mut Conn<'_>, spec: &AccountSpec, locate: bool) -> Result<Option<Located>> {
        let found = if locate { self.locate(c, spec).await? } else { self.by_name(c, spec).await? };
        match found {
            Found::Mine(l) | Found::Unmarked(l) => Ok(Some(l)),
            Found::Other(l, other) => Err(self.not_theirs(spec, &l, &other)),
            Found::None => Ok(None),
        }
    }

    /// The value by which the account is listed in a group it is granted: the located entry's
    /// (a disabled entry's as it will be once enabled, under `users_dn`), else its name's. A
    /// disabled entry whose enabled DN is another entry's is refused: the grant would name that
    /// other entry.
    async fn member_value_at(&self, c: &mut Conn<'_>, spec: &AccountSpec, loc: Option<&Located>) -> Result<String> {
        let Some(l) = loc else { return Ok(self.layout.member_value(&spec.account)) };
        if self.layout.schema.member_values == MemberValues::Name {
            return Ok(l.name.clone());
        }
        if l.place != Some(Place::Disabled) {
            return Ok(l.dn.clone());
        }
        let enabled = self.layout.account_dn(&l.name, Place::Enabled);
        if self.entry(c, &enabled).await?.is_some() {
            return Err(ConnectorError::permanent(format!(
                "{}: account `{}` is disabled (`{}`) and another entry holds its name under `users_dn` \
                 (`{enabled}`): a group membership would name that entry; nothing was changed",
                self.name, spec.account, l.dn
            )));
        }
        Ok(enabled)
    }

    /// Every value by which the account may be listed in a group: those of its name, and those
    /// of the entry where it was found.
    fn member_values_of(&self, account: &str, loc: Option<&Located>) -> Vec<String> {
        let mut v = self.layout.member_values(account);
        if let Some(l) = loc {
            let extra = match self.layout.schema.member_values {
                MemberValues::Dn => l.dn.clone(),
                MemberValues::Name => l.name.clone(),
            };
            if !v.iter().any(|x| dn::canonical_str(x) == dn::canonical_str(&extra)) {
                v.push(extra);
            }
        }
        v
    }

    /// Sets `account`'s password to `secret`: Active Directory's `unicodePwd` replaced (delete
    /// and add in one modify, which AD takes from a privileged bind as a reset), any other
    /// profile through the Password Modify extended operation (RFC 3062), so the server stores
    /// the password hashed under its own policy (`olcPasswordHash`, 389's storage scheme) rather
    /// than the cleartext a plain `userPassword` modify would leave. Only over TLS.
    async fn rotate(
        &self,
        c: &mut Conn<'_>,
        account: &str,
        at: Option<String>,
        secret: &crate::NewSecret,
    ) -> Result<Applied> {
        self.require_tls(account)?;
        let Some(dn) = at else {
            return Err(ConnectorError::permanent(format!(
                "{}: cannot rotate the password of `{account}`: the account does not exist",
                self.name
            )));
        };
        let what = format!("rotating the password of `{dn}`");
        if self.layout.schema.profile == LdapProfile::ActiveDirectory {
            let value: HashSet<Vec<u8>> = HashSet::from([ops::unicode_pwd(secret.expose())]);
            let r = c.ldap().modify(&dn, vec![Mod::Replace(b"unicodePwd".to_vec(), value)]).await;
            let res = c.check(&what, r)?;
            return if res.rc == 0 { Ok(Applied::Changed) } else { Err(c.unexpected(&what, &res)) };
        }
        let exop = ldap3::exop::PasswordModify { user_id: Some(&dn), old_pass: None, new_pass: Some(secret.expose()) };
        let r = c.ldap().extended(exop).await.map(|ex| ex.1);
        let res = c.check(&what, r)?;
        if res.rc == 0 { Ok(Applied::Changed) } else { Err(c.unexpected(&what, &res)) }
    }

    /// A single-response search (no paging). `Ok(None)` when `base` does not exist.
    async fn search(
        &self,
        c: &mut Conn<'_>,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<String>,
    ) -> Result<Option<Vec<SearchEntry>>> {
        let what = format!("searching `{base}`");
        let sr = match c.ldap().search(base, scope, filter, attrs).await {
            Ok(sr) => sr,
            Err(e) => return Err(c.fail(&what, e)),
        };
        match sr.1.rc {
            0 => Ok(Some(sr.0.into_iter().map(SearchEntry::construct).collect())),
            32 => Ok(None),
            _ => Err(c.unexpected(&what, &sr.1)),
        }
    }

    /// A paged search (RFC 2696) one level under `base`, calling `each` for every entry as it
    /// arrives, so a large directory is never held in memory as `ldap3` entries. Every entry is
    /// counted against `budget` (the listing's `max_listing_items` and `max_listing_bytes`, its
    /// DN and values as bytes plus a value's decoded overhead each): a directory that answers
    /// without end fails the listing, and one past `max_listing_seconds` too (the connection is
    /// retired either way, its search unfinished).
    async fn paged(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
        budget: &crate::listing::Budget<'_>,
        mut each: impl FnMut(SearchEntry) + Send,
    ) -> Result<()> {
        let mut c = self.pool.get().await?;
        let what = format!("searching `{base}`");
        let adapters: Vec<Box<dyn Adapter<_, _>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(self.page_size))];
        let started = budget.within(c.ldap().streaming_search_with(adapters, base, Scope::OneLevel, filter, attrs));
        let mut stream = match started.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(c.fail(&what, e)),
            Err(why) => return Err(c.abandon(&what, &why)),
        };
        loop {
            let next = match budget.within(stream.next()).await {
                Ok(next) => next,
                Err(why) => return Err(c.abandon(&what, &why)),
            };
            match next {
                Ok(Some(entry)) => {
                    let entry = SearchEntry::construct(entry);
                    if let Err(why) = budget.take(1, entry_bytes(&entry)) {
                        return Err(c.abandon(&what, &why));
                    }
                    each(entry);
                }
                Ok(None) => break,
                Err(e) => return Err(c.fail(&what, e)),
            }
        }
        let res = stream.finish().await;
        if res.rc != 0 {
            return Err(c.unexpected(&what, &res));
        }
        Ok(())
    }

    /// The entry `dn` with the account attributes read back, if it exists.
    async fn entry(&self, c: &mut Conn<'_>, dn: &str) -> Result<Option<SearchEntry>> {
        let found = self.search(c, dn, Scope::Base, &self.layout.accounts_filter(), self.layout.read_attrs()).await?;
        Ok(found.and_then(|e| e.into_iter().next()))
    }

    /// The account's entry (enabled or disabled) with its mapped attributes, if it exists.
    async fn mapped_entry(&self, c: &mut Conn<'_>, account: &str) -> Result<Option<SearchEntry>> {
        for &place in self.layout.places() {
            let dn = self.layout.account_dn(account, place);
            let found =
                self.search(c, &dn, Scope::Base, &self.layout.accounts_filter(), self.layout.mapped_attrs()).await?;
            if let Some(e) = found.and_then(|e| e.into_iter().next()) {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// `update_attributes`: reads the entry's mapped attributes and replaces those that differ
    /// from the identity's (`tenure_core::attributes::changes`), in one modify; an attribute
    /// that should be absent is replaced with no values, which removes it. Nothing differs:
    /// nothing is sent. The naming attribute is never among them (renames are out of scope). A
    /// missing account is transient: with `concurrency > 1` its creation may not have run yet.
    async fn update_attributes(&self, c: &mut Conn<'_>, spec: &AccountSpec, at: Option<String>) -> Result<Applied> {
        // A concurrent change between the read and the write is harmless (replace is absolute),
        // so one round is enough.
        let entry = match at {
            Some(dn) => self
                .search(c, &dn, Scope::Base, &self.layout.accounts_filter(), self.layout.mapped_attrs())
                .await?
                .and_then(|e| e.into_iter().next()),
            None => None,
        };
        let Some(entry) = entry else {
            return Err(ConnectorError::transient(format!(
                "{}: cannot update the attributes of `{}`: the account does not exist (yet)",
                self.name, spec.account
            )));
        };
        let changes = tenure_core::attributes::changes(&self.layout.desired(spec), &self.live_attributes(&entry));
        if changes.is_empty() {
            return Ok(Applied::AlreadyDone);
        }
        let op = self.layout.replace_attributes(&entry.dn, &changes);
        let res = self.send(c, &op).await?;
        match res.rc {
            0 => Ok(Applied::Changed),
            32 => Err(ConnectorError::transient(format!(
                "{}: `{}` moved while its attributes were updated",
                self.name, spec.account
            ))),
            _ => Err(c.unexpected(&op.what(), &res)),
        }
    }

    /// Every mapped attribute of `entry` by its configured name, with the values read (none
    /// when the entry lacks it).
    fn live_attributes(&self, entry: &SearchEntry) -> tenure_core::attributes::Live {
        self.layout
            .mapped_attrs()
            .into_iter()
            .map(|a| {
                let v = values(entry, &a).cloned().collect();
                (a, v)
            })
            .collect()
    }

    /// Whether the entry `dn` exists.
    async fn exists(&self, c: &mut Conn<'_>, dn: &str) -> Result<bool> {
        Ok(self
            .search(c, dn, Scope::Base, "(objectClass=*)", vec![NO_ATTRS.to_string()])
            .await?
            .is_some_and(|e| !e.is_empty()))
    }

    /// The DNs of the groups (directly under `groups_dn`) that list any of `values`.
    async fn groups_of(&self, c: &mut Conn<'_>, values: &[String]) -> Result<Vec<String>> {
        let filter = self.layout.groups_filter(values);
        let found =
            self.search(c, &self.layout.groups_dn, Scope::OneLevel, &filter, vec![NO_ATTRS.to_string()]).await?;
        Ok(found.unwrap_or_default().into_iter().map(|e| e.dn).collect())
    }

    /// The entitlement name of a group entry, if it is one of ours (directly under `groups_dn`).
    fn group_name(&self, group_dn: &str) -> Option<String> {
        dn::leaf_under(group_dn, &self.layout.schema.group_naming_attribute, &self.groups_key)
    }

    /// Removes `value` from `group`, keeping the group valid when it was the last member of a
    /// group whose schema requires one. Returns whether anything changed.
    async fn remove_member(&self, c: &mut Conn<'_>, group: &str, value: &str) -> Result<bool> {
        // A concurrent change between our two requests is retried; three rounds is plenty.
        for _ in 0..3 {
            let op = self.layout.remove_member(group, value);
            let res = self.send(c, &op).await?;
            match res.rc {
                0 => return Ok(true),
                16 | 32 => return Ok(false),
                // The last member of a groupOfNames: swap in the placeholder in one request.
                65 => {
                    let op = self.layout.remove_last_member(group, value);
                    let res = self.send(c, &op).await?;
                    match res.rc {
                        0 => return Ok(true),
                        16 | 32 => return Ok(false),
                        20 => continue,
                        _ => return Err(c.unexpected(&op.what(), &res)),
                    }
                }
                _ => return Err(c.unexpected(&op.what(), &res)),
            }
        }
        Err(ConnectorError::transient(format!(
            "{}: removing `{value}` from `{group}`: the group kept changing",
            self.name
        )))
    }

    /// Removes the account, by every value it may be listed under (those of its name and of
    /// the entry where it was found), from every group. Returns whether anything changed.
    async fn strip_memberships(&self, c: &mut Conn<'_>, account: &str, loc: Option<&Located>) -> Result<bool> {
        let mut changed = false;
        for value in self.member_values_of(account, loc) {
            for group in self.groups_of(c, std::slice::from_ref(&value)).await? {
                changed |= self.remove_member(c, &group, &value).await?;
            }
        }
        Ok(changed)
    }

    /// Creates the account. An entry of the name that exists already (enabled, or disabled:
    /// creating `uid=x,<users_dn>` beside a disabled `uid=x,<disabled_dn>` would be a duplicate
    /// account) is this identity's only when it carries its correlation id: then the create is
    /// already done. Any other is never adopted: one carrying no id is [`Applied::NotOwned`],
    /// unchanged, and one carrying another identity's is refused.
    async fn create(&self, c: &mut Conn<'_>, a: &AccountSpec) -> Result<Applied> {
        if let Some(done) = self.existing(c, a).await? {
            return done;
        }
        let password = if self.layout.schema.profile == LdapProfile::ActiveDirectory && self.secure {
            Some(ops::random_password())
        } else {
            None
        };
        let op = self
            .layout
            .create(a, password.as_deref())
            .map_err(|e| ConnectorError::permanent(format!("{}: cannot create `{}`: {}", self.name, a.account, e.0)))?;
        let res = self.send(c, &op).await?;
        match res.rc {
            0 => Ok(Applied::Changed),
            // Created meanwhile: whose it is decides, as above.
            68 => match self.existing(c, a).await? {
                Some(done) => done,
                None => Err(ConnectorError::transient(format!(
                    "{}: {}: the entry exists, but could not be read",
                    self.name,
                    op.what()
                ))),
            },
            _ => Err(c.unexpected(&op.what(), &res)),
        }
    }

    /// What a create of `a` meets where its name puts the account, if anything: already done
    /// (this identity's entry), not owned (an entry carrying no id), or refused (another's).
    async fn existing(&self, c: &mut Conn<'_>, a: &AccountSpec) -> Result<Option<Result<Applied>>> {
        Ok(match self.by_name(c, a).await? {
            Found::None => None,
            Found::Mine(_) if !a.identity_id.trim().is_empty() => Some(Ok(Applied::AlreadyDone)),
            Found::Mine(l) | Found::Unmarked(l) => {
                Some(Ok(Applied::NotOwned(Box::new(self.state_of(c, a, &l).await?))))
            }
            Found::Other(l, other) => Some(Err(self.not_theirs(a, &l, &other))),
        })
    }

    /// An entry found for `spec` as an account state, with the groups it is in.
    async fn state_of(&self, c: &mut Conn<'_>, spec: &AccountSpec, l: &Located) -> Result<AccountState> {
        let grants = self
            .groups_of(c, &self.member_values_of(&spec.account, Some(l)))
            .await?
            .iter()
            .filter_map(|g| self.group_name(g))
            .collect();
        Ok(AccountState {
            account: l.name.clone(),
            external_id: non_empty(first_value(&l.entry, &self.layout.schema.id_attribute)).map(str::to_string),
            email: non_empty(first_value(&l.entry, ops::MAIL)).map(str::to_string),
            enabled: self.is_enabled(&l.entry, l.place.unwrap_or(Place::Enabled)),
            grants,
            sessions: None,
        })
    }

    /// Moves the entry `l` into `disabled_dn` under its own RDN. Returns the new DN.
    async fn move_to_disabled(&self, c: &mut Conn<'_>, l: &Located) -> Result<String> {
        let Some(disabled) = self.layout.disabled_dn.clone() else { return Ok(l.dn.clone()) };
        let op = Op::ModDn { dn: l.dn.clone(), rdn: self.layout.rdn(&l.name), superior: disabled.clone() };
        let res = self.send(c, &op).await?;
        match res.rc {
            0 => Ok(format!("{},{disabled}", self.layout.rdn(&l.name))),
            68 => Err(ConnectorError::permanent(format!(
                "{}: cannot move `{}` to `{disabled}`: an entry of that name is there already",
                self.name, l.dn
            ))),
            _ => Err(c.unexpected(&op.what(), &res)),
        }
    }

    /// Moves an account between containers. `Ok(None)` when the entry is not at `from`.
    async fn move_account(&self, c: &mut Conn<'_>, account: &str, from: Place, to: Place) -> Result<Option<()>> {
        let op = self.layout.move_account(account, from, to);
        let res = self.send(c, &op).await?;
        match res.rc {
            0 => Ok(Some(())),
            32 => {
                if self.exists(c, op.dn()).await? {
                    // The entry is there, so the new superior is what is missing.
                    Err(c.unexpected(&op.what(), &res))
                } else {
                    Ok(None)
                }
            }
            68 => Err(ConnectorError::permanent(format!(
                "{}: cannot move `{account}`: it exists both under `{}` and `{}`",
                self.name,
                self.layout.users_dn,
                self.layout.disabled_dn.as_deref().unwrap_or_default()
            ))),
            _ => Err(c.unexpected(&op.what(), &res)),
        }
    }

    /// Sets or clears ACCOUNTDISABLE on the entry `dn` (read, then compare-and-swap, retried
    /// when someone else changed the value in between). `Ok(None)` when the entry is missing.
    async fn set_uac(&self, c: &mut Conn<'_>, dn: &str, disabled: bool) -> Result<Option<bool>> {
        for _ in 0..3 {
            let Some(entry) = self.entry(c, dn).await? else { return Ok(None) };
            let Some(read) = first_value(&entry, "userAccountControl").and_then(|v| v.trim().parse::<i64>().ok())
            else {
                return Err(ConnectorError::permanent(format!(
                    "{}: `{dn}` has no readable `userAccountControl`",
                    self.name
                )));
            };
            let Some(op) = self.layout.set_disabled(dn, read, disabled) else { return Ok(Some(false)) };
            let res = self.send(c, &op).await?;
            match res.rc {
                0 => return Ok(Some(true)),
                // The value changed since it was read: read again.
                16 => continue,
                32 => return Ok(None),
                _ => return Err(c.unexpected(&op.what(), &res)),
            }
        }
        Err(ConnectorError::transient(format!("{}: `{dn}`: userAccountControl kept changing", self.name)))
    }

    async fn enable(&self, c: &mut Conn<'_>, account: &str) -> Result<Applied> {
        let mut changed = false;
        if self.layout.disabled_dn.is_some() {
            changed = self.move_account(c, account, Place::Disabled, Place::Enabled).await?.is_some();
        }
        let enabled_dn = self.layout.account_dn(account, Place::Enabled);
        if self.layout.by_uac() {
            match self.set_uac(c, &enabled_dn, false).await? {
                Some(flipped) => changed |= flipped,
                None => return Err(self.missing(account)),
            }
        } else if !changed && !self.exists(c, &enabled_dn).await? {
            return Err(self.missing(account));
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    fn missing(&self, account: &str) -> ConnectorError {
        ConnectorError::permanent(format!("{}: cannot enable `{account}`: the account does not exist", self.name))
    }

    /// Disables the account where it is: by name, else wherever the entry carrying the
    /// identity's correlation id is (renamed or moved by hand), which is moved into
    /// `disabled_dn` under its own name. An account found nowhere has no access to take away.
    async fn disable(&self, c: &mut Conn<'_>, spec: &AccountSpec) -> Result<Applied> {
        let account = spec.account.as_str();
        let loc = self.owned(c, spec, true).await?;
        // Memberships first: if what follows fails, a retry finds the account still enabled
        // and finishes the job; the reverse order could leave a disabled account in groups.
        let mut changed = self.strip_memberships(c, account, loc.as_ref()).await?;
        let Some(loc) = loc else { return Ok(if changed { Applied::Changed } else { Applied::AlreadyDone }) };
        if self.layout.by_uac() {
            if let Some(flipped) = self.set_uac(c, &loc.dn, true).await? {
                changed |= flipped;
            }
            if self.layout.disabled_dn.is_some() && loc.place != Some(Place::Disabled) {
                self.move_to_disabled(c, &loc).await?;
                changed = true;
            }
            return Ok(if changed { Applied::Changed } else { Applied::AlreadyDone });
        }
        let disabled_dn = if loc.place == Some(Place::Disabled) {
            loc.dn.clone()
        } else {
            changed = true;
            self.move_to_disabled(c, &loc).await?
        };
        // A disabled entry must not be able to bind: moving it does not stop a simple bind with
        // its password, so the password goes too (a rehire gets a new one).
        let op = self.layout.drop_password(&disabled_dn);
        let res = self.send(c, &op).await?;
        match res.rc {
            0 => changed = true,
            // No password, or no entry (nothing to take away).
            16 | 32 => {}
            _ => return Err(c.unexpected(&op.what(), &res)),
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    /// Deletes the account's entry where it was found (by name, else by its correlation id),
    /// and only that one: another entry of its name (made by hand after a rename) is not it.
    async fn delete(&self, c: &mut Conn<'_>, spec: &AccountSpec) -> Result<Applied> {
        let account = spec.account.as_str();
        let loc = self.owned(c, spec, true).await?;
        let mut changed = self.strip_memberships(c, account, loc.as_ref()).await?;
        if let Some(l) = loc {
            let op = Op::Delete { dn: l.dn };
            let res = self.send(c, &op).await?;
            match res.rc {
                0 => changed = true,
                32 => {}
                _ => return Err(c.unexpected(&op.what(), &res)),
            }
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    async fn grant(&self, c: &mut Conn<'_>, member: &str, entitlement: &str) -> Result<Applied> {
        let op = self.layout.grant(member, entitlement);
        // Two rounds: a concurrent grant may create the group between our modify and add.
        for _ in 0..2 {
            let res = self.send(c, &op).await?;
            match res.rc {
                0 => return Ok(Applied::Changed),
                20 => return Ok(Applied::AlreadyDone),
                32 if !self.layout.schema.create_groups => {
                    return Err(ConnectorError::permanent(format!(
                        "{}: group `{entitlement}` does not exist under `{}`, and this target creates no groups \
                         (`create_groups = false`); create it first",
                        self.name, self.layout.groups_dn
                    )));
                }
                32 => {
                    let create = self.layout.create_group(entitlement, member);
                    let res = self.send(c, &create).await?;
                    match res.rc {
                        0 => return Ok(Applied::Changed),
                        68 => continue,
                        _ => return Err(c.unexpected(&create.what(), &res)),
                    }
                }
                _ => return Err(c.unexpected(&op.what(), &res)),
            }
        }
        Err(ConnectorError::transient(format!("{}: {}: the group kept changing", self.name, op.what())))
    }

    /// Removes the account from the group by every value it may be listed under: its name's,
    /// and the entry's where it was found (renamed or moved by hand).
    async fn revoke(&self, c: &mut Conn<'_>, spec: &AccountSpec, entitlement: &str) -> Result<Applied> {
        let loc = self.owned(c, spec, true).await?;
        let group = self.layout.group_dn(entitlement);
        let mut changed = false;
        for value in self.member_values_of(&spec.account, loc.as_ref()) {
            changed |= self.remove_member(c, &group, &value).await?;
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    /// Whether an entry read back is enabled: it lives under `users_dn` and, where the profile
    /// disables by `userAccountControl`, has ACCOUNTDISABLE clear (an unreadable value counts as
    /// enabled: the account may well be able to sign in).
    fn is_enabled(&self, entry: &SearchEntry, place: Place) -> bool {
        if place == Place::Disabled {
            return false;
        }
        if !self.layout.by_uac() {
            return true;
        }
        first_value(entry, "userAccountControl")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .is_none_or(|uac| uac & ops::UAC_ACCOUNTDISABLE == 0)
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

/// The first value of `attr` (matched case-insensitively, as attribute names are).
fn first_value<'e>(entry: &'e SearchEntry, attr: &str) -> Option<&'e str> {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first()).map(String::as_str)
}

/// All values of `attr` (matched case-insensitively).
fn values<'e>(entry: &'e SearchEntry, attr: &str) -> impl Iterator<Item = &'e String> {
    entry.attrs.iter().filter(|(k, _)| k.eq_ignore_ascii_case(attr)).flat_map(|(_, v)| v.iter())
}

#[async_trait::async_trait]
impl Connector for LdapConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> &'static [Capability] {
        CAPABILITIES
    }

    async fn apply(&self, req: &Request) -> Result<Applied> {
        let account = req.account.account.as_str();
        self.check_name("account", account)?;
        let entitlement = match req.kind {
            OpKind::Grant | OpKind::Revoke => Some(self.entitlement(req)?),
            OpKind::CreateAccount | OpKind::Enable | OpKind::Disable | OpKind::DeleteAccount => None,
            OpKind::RotateCredential => {
                let Some(secret) = &req.secret else {
                    return Err(ConnectorError::permanent(format!(
                        "{}: rotate_credential of `{account}` needs the new secret",
                        self.name
                    )));
                };
                let mut c = self.pool.get().await?;
                // The entry whose ownership was checked is the one written to.
                let at = self.owned(&mut c, &req.account, false).await?.map(|l| l.dn);
                return self.rotate(&mut c, account, at, secret).await.map_err(|mut e| {
                    e.message = secret.scrub(&e.message);
                    e
                });
            }
            OpKind::UpdateAttributes => {
                let mut c = self.pool.get().await?;
                let at = self.owned(&mut c, &req.account, false).await?.map(|l| l.dn);
                return self.update_attributes(&mut c, &req.account, at).await;
            }
            OpKind::RevokeSessions | OpKind::TransferOwnership | OpKind::OpenTicket => {
                return Err(ConnectorError::permanent(format!(
                    "{}: `{}` is not supported by LDAP targets",
                    self.name,
                    req.kind.as_str()
                )));
            }
        };
        let mut c = self.pool.get().await?;
        // Whose the entry of the name is is checked before anything is written to it, and a
        // grant names the entry checked.
        let mut member = None;
        if matches!(req.kind, OpKind::Enable | OpKind::Grant) {
            let loc = self.owned(&mut c, &req.account, false).await?;
            member = Some(self.member_value_at(&mut c, &req.account, loc.as_ref()).await?);
        }
        match (req.kind, entitlement) {
            (OpKind::CreateAccount, _) => self.create(&mut c, &req.account).await,
            (OpKind::Enable, _) => self.enable(&mut c, account).await,
            (OpKind::Disable, _) => self.disable(&mut c, &req.account).await,
            (OpKind::DeleteAccount, _) => self.delete(&mut c, &req.account).await,
            (OpKind::Grant, Some(e)) => {
                let member = member.unwrap_or_else(|| self.layout.member_value(account));
                self.grant(&mut c, &member, e).await
            }
            (OpKind::Revoke, Some(e)) => self.revoke(&mut c, &req.account, e).await,
            (kind, _) => Err(ConnectorError::permanent(format!(
                "{}: `{}` is not supported by LDAP targets",
                c.target(),
                kind.as_str()
            ))),
        }
    }

    /// The account by name, else the entry carrying the identity's correlation id anywhere in
    /// the directory; an entry of another identity's is returned as read, for the caller to see
    /// whose it is.
    async fn read_account(&self, account: &AccountSpec) -> Result<Option<AccountState>> {
        self.check_name("account", &account.account)?;
        let mut c = self.pool.get().await?;
        let loc = match self.locate(&mut c, account).await? {
            Found::Mine(l) | Found::Unmarked(l) | Found::Other(l, _) => l,
            Found::None => return Ok(None),
        };
        Ok(Some(self.state_of(&mut c, account, &loc).await?))
    }

    async fn read_attributes(&self, account: &AccountSpec) -> Result<Option<tenure_core::attributes::Live>> {
        self.check_name("account", &account.account)?;
        let mut c = self.pool.get().await?;
        let Some(entry) = self.mapped_entry(&mut c, &account.account).await? else { return Ok(None) };
        Ok(Some(self.live_attributes(&entry)))
    }

    async fn verify_secret(&self, account: &AccountSpec, secret: &crate::NewSecret) -> Result<bool> {
        self.check_name("account", &account.account)?;
        self.require_tls(&account.account)?;
        let dn = {
            let mut c = self.pool.get().await?;
            self.account_entry_dn(&mut c, &account.account).await?
        };
        let Some(dn) = dn else {
            return Err(ConnectorError::permanent(format!(
                "{}: account `{}` does not exist",
                self.name, account.account
            )));
        };
        self.pool.try_bind(&dn, secret.expose()).await.map_err(|mut e| {
            e.message = secret.scrub(&e.message);
            e
        })
    }

    async fn list_accounts(&self) -> Result<Vec<AccountState>> {
        let naming = self.layout.schema.naming_attribute.as_str();
        let group_naming = self.layout.schema.group_naming_attribute.as_str();
        let by_name = self.layout.schema.member_values == MemberValues::Name;
        let mut enabled = Vec::new();
        let mut disabled = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        // (folded account name, index into `groups`)
        let mut memberships: Vec<(String, usize)> = Vec::new();
        let mut containers = vec![self.users_key.as_str()];
        containers.extend(self.disabled_key.as_deref());
        let group_container = [self.groups_key.as_str()];
        let member_attr = self.layout.schema.member_attribute.clone();
        let membership = {
            let mut parents = dn::Parents::new(&containers);
            let mut group_parents = dn::Parents::new(&group_container);
            let (groups, memberships) = (&mut groups, &mut memberships);
            move |e: SearchEntry| {
                let Some((group, parent)) = dn::split_leaf(&e.dn, group_naming) else { return };
                if group_parents.which(parent).is_none() {
                    return;
                }
                let g = groups.len();
                groups.push(group.into_owned());
                for m in values(&e, &member_attr) {
                    if by_name {
                        memberships.push((dn::fold(m), g));
                    } else if let Some((name, parent)) = dn::split_leaf(m, naming)
                        && parents.which(parent).is_some()
                    {
                        memberships.push((dn::fold(&name), g));
                    }
                }
            }
        };
        let filter = self.layout.accounts_filter();
        let attrs = self.layout.read_attrs();
        let enabled_keys = [self.users_key.as_str()];
        let disabled_keys: Vec<&str> = self.disabled_key.iter().map(String::as_str).collect();
        // One budget for the three searches: the listing is all of them together.
        let budget = crate::listing::Budget::new(self.listing);
        let list_enabled = self.paged(
            &self.layout.users_dn,
            &filter,
            attrs.clone(),
            &budget,
            self.collect_accounts(&enabled_keys, &mut enabled, Place::Enabled),
        );
        let list_disabled = async {
            match &self.layout.disabled_dn {
                Some(d) => {
                    let each = self.collect_accounts(&disabled_keys, &mut disabled, Place::Disabled);
                    self.paged(d, &filter, attrs.clone(), &budget, each).await
                }
                None => Ok(()),
            }
        };
        let groups_filter = self.layout.groups_only_filter();
        let list_groups = self.paged(
            &self.layout.groups_dn,
            &groups_filter,
            vec![self.layout.schema.member_attribute.clone()],
            &budget,
            membership,
        );
        tokio::try_join!(list_enabled, list_disabled, list_groups)?;
        let mut accounts = enabled;
        accounts.append(&mut disabled);
        let mut by_key: HashMap<String, Vec<usize>> = HashMap::with_capacity(accounts.len());
        for (i, a) in accounts.iter().enumerate() {
            by_key.entry(dn::fold(&a.account)).or_default().push(i);
        }
        for (key, g) in memberships {
            let (Some(held_by), Some(group)) = (by_key.get(&key), groups.get(g)) else { continue };
            for &i in held_by {
                if let Some(a) = accounts.get_mut(i) {
                    a.grants.insert(group.clone());
                }
            }
        }
        Ok(accounts)
    }

    async fn list_entitlements(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let budget = crate::listing::Budget::new(self.listing);
        let (groups_dn, filter) = (&self.layout.groups_dn, self.layout.groups_only_filter());
        self.paged(groups_dn, &filter, vec![NO_ATTRS.to_string()], &budget, |e| {
            if let Some(n) = self.group_name(&e.dn) {
                names.push(n);
            }
        })
        .await?;
        names.sort();
        names.dedup();
        Ok(names)
    }
}

/// What an entry costs a listing: its DN, attribute names and values, in bytes, and each
/// value's decoded overhead (a group of a hundred million one-byte members costs what it holds,
/// not a hundred megabytes).
fn entry_bytes(e: &SearchEntry) -> usize {
    let per = crate::listing::PER_VALUE_BYTES;
    let text: usize = e.attrs.iter().map(|(k, v)| k.len() + v.iter().map(|s| s.len() + per).sum::<usize>()).sum();
    let binary: usize = e.bin_attrs.iter().map(|(k, v)| k.len() + v.iter().map(|b| b.len() + per).sum::<usize>()).sum();
    e.dn.len() + text + binary
}

impl LdapConnector {
    /// A `paged` callback that collects the accounts (entries named by the naming attribute
    /// directly under the container whose canonical text is in `keys`) into `out`.
    fn collect_accounts<'a>(
        &'a self,
        keys: &'a [&'a str],
        out: &'a mut Vec<AccountState>,
        place: Place,
    ) -> impl FnMut(SearchEntry) + Send + 'a {
        let naming = self.layout.schema.naming_attribute.as_str();
        let id_attr = self.layout.schema.id_attribute.as_str();
        let mut parents = dn::Parents::new(keys);
        move |e: SearchEntry| {
            if let Some((account, parent)) = dn::split_leaf(&e.dn, naming)
                && parents.which(parent).is_some()
            {
                out.push(AccountState {
                    account: account.into_owned(),
                    external_id: non_empty(first_value(&e, id_attr)).map(str::to_string),
                    email: non_empty(first_value(&e, ops::MAIL)).map(str::to_string),
                    enabled: self.is_enabled(&e, place),
                    grants: BTreeSet::new(),
                    sessions: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue15_an_entry_costs_each_value_it_holds_not_only_its_text() {
        // A group of 1,000 one-byte member values: 1,000 bytes of text, but each value is a
        // decoded `String` in a `Vec`.
        let values: Vec<String> = (0..1000).map(|i| (i % 10).to_string()).collect();
        let entry = SearchEntry {
            dn: "cn=g".into(),
            attrs: [("member".to_string(), values)].into_iter().collect(),
            bin_attrs: [("jpegPhoto".to_string(), vec![vec![1u8]])].into_iter().collect(),
        };
        let text = "cn=g".len() + "member".len() + 1000 + "jpegPhoto".len() + 1;
        assert_eq!(entry_bytes(&entry), text + 1001 * crate::listing::PER_VALUE_BYTES);
    }
}
