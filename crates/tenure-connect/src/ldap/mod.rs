//! The LDAP connector: accounts as `inetOrgPerson` entries, entitlements as `groupOfNames`.
//!
//! Directory layout (all three containers come from the target's config):
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
//!   `noSuchAttribute`/`noSuchObject` mean it was already gone. Create checks for a disabled
//!   entry of the same name first (creating `uid=x,<users_dn>` beside a disabled
//!   `uid=x,<disabled_dn>` would be a duplicate account), then relies on `entryAlreadyExists`.
//!   Disable of a missing account is `AlreadyDone` (an account that does not exist grants no
//!   access); enable of a missing account is a permanent error.
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

mod dn;
mod pool;

use crate::{AccountSpec, AccountState, Applied, Capability, Connector, ConnectorError, Request, Result};
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Mod, Scope, SearchEntry};
use pool::{Conn, Pool};
use std::collections::{BTreeSet, HashMap, HashSet};
use tenure_core::OpKind;
use tenure_core::config::LdapSettings;

const ACCOUNT_CLASSES: [&str; 4] = ["top", "person", "organizationalPerson", "inetOrgPerson"];
const ACCOUNT_FILTER: &str = "(objectClass=inetOrgPerson)";
const GROUP_FILTER: &str = "(objectClass=groupOfNames)";
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
    Capability::ListAccounts,
    Capability::ListGrants,
    Capability::ReadBack,
];

/// An LDAP target. Cheap to build: connections are made on first use.
#[derive(Debug)]
pub struct LdapConnector {
    name: String,
    users_dn: String,
    groups_dn: String,
    disabled_dn: String,
    /// Canonical texts of the containers, for recognising DNs read back (see `dn::canonical`).
    users_key: String,
    disabled_key: String,
    groups_key: String,
    page_size: i32,
    pool: Pool,
}

/// Where an account's entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Enabled,
    Disabled,
}

impl LdapConnector {
    /// Builds the connector; resolves the bind password now so a missing secret is reported at
    /// startup. Does not connect.
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
        let disabled_key = canonical("disabled_dn", &s.disabled_dn)?;
        let groups_key = canonical("groups_dn", &s.groups_dn)?;
        if users_key == disabled_key {
            return Err(ConnectorError::permanent(format!(
                "target `{name}`: `users_dn` and `disabled_dn` must differ"
            )));
        }
        Ok(Self {
            name: name.to_string(),
            users_dn: s.users_dn.clone(),
            groups_dn: s.groups_dn.clone(),
            disabled_dn: s.disabled_dn.clone(),
            users_key,
            disabled_key,
            groups_key,
            page_size: s.page_size.max(1),
            pool: Pool::new(name, &s.url, &s.bind_dn, password, concurrency),
        })
    }

    /// The member value that keeps an otherwise empty group valid: the `groups_dn` itself.
    pub fn placeholder(&self) -> &str {
        &self.groups_dn
    }

    fn account_dn(&self, account: &str, place: Place) -> String {
        let parent = match place {
            Place::Enabled => &self.users_dn,
            Place::Disabled => &self.disabled_dn,
        };
        format!("uid={},{parent}", dn::dn_value(account))
    }

    fn group_dn(&self, group: &str) -> String {
        format!("cn={},{}", dn::dn_value(group), self.groups_dn)
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

    fn rdn(account: &str) -> String {
        format!("uid={}", dn::dn_value(account))
    }

    /// A single-response search (no paging). `Ok(None)` when `base` does not exist.
    async fn search(
        &self,
        c: &mut Conn<'_>,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: Vec<&'static str>,
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
    /// arrives, so a large directory is never held in memory as `ldap3` entries.
    async fn paged(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<&'static str>,
        mut each: impl FnMut(SearchEntry) + Send,
    ) -> Result<()> {
        let mut c = self.pool.get().await?;
        let what = format!("searching `{base}`");
        let adapters: Vec<Box<dyn Adapter<_, _>>> =
            vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(self.page_size))];
        let mut stream = match c.ldap().streaming_search_with(adapters, base, Scope::OneLevel, filter, attrs).await {
            Ok(s) => s,
            Err(e) => return Err(c.fail(&what, e)),
        };
        loop {
            match stream.next().await {
                Ok(Some(entry)) => each(SearchEntry::construct(entry)),
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

    /// Whether the entry `dn` exists.
    async fn exists(&self, c: &mut Conn<'_>, dn: &str) -> Result<bool> {
        Ok(self.search(c, dn, Scope::Base, "(objectClass=*)", vec![NO_ATTRS]).await?.is_some_and(|e| !e.is_empty()))
    }

    /// The DNs of the groups (directly under `groups_dn`) that list `member`.
    async fn groups_of(&self, c: &mut Conn<'_>, members: &[&str]) -> Result<Vec<String>> {
        let mut filter = String::from("(&(objectClass=groupOfNames)(|");
        for m in members {
            filter.push_str("(member=");
            filter.push_str(&dn::filter_value(m));
            filter.push(')');
        }
        filter.push_str("))");
        let found = self.search(c, &self.groups_dn, Scope::OneLevel, &filter, vec![NO_ATTRS]).await?;
        Ok(found.unwrap_or_default().into_iter().map(|e| e.dn).collect())
    }

    /// The entitlement name of a group entry, if it is one of ours (directly under `groups_dn`).
    fn group_name(&self, group_dn: &str) -> Option<String> {
        dn::leaf_under(group_dn, "cn", &self.groups_key)
    }

    /// Removes `member` from `group`, keeping the group valid when it was the last member.
    /// Returns whether anything changed.
    async fn remove_member(&self, c: &mut Conn<'_>, group: &str, member: &str) -> Result<bool> {
        let what = format!("removing `{member}` from `{group}`");
        // A concurrent change between our two requests is retried; three rounds is plenty.
        for _ in 0..3 {
            let r = c.ldap().modify(group, vec![Mod::Delete("member", HashSet::from([member]))]).await;
            let res = c.check(&what, r)?;
            match res.rc {
                0 => return Ok(true),
                16 | 32 => return Ok(false),
                // The last member of a groupOfNames: swap in the placeholder in one request.
                65 => {
                    let mods = vec![
                        Mod::Add("member", HashSet::from([self.placeholder()])),
                        Mod::Delete("member", HashSet::from([member])),
                    ];
                    let r = c.ldap().modify(group, mods).await;
                    let res = c.check(&what, r)?;
                    match res.rc {
                        0 => return Ok(true),
                        16 | 32 => return Ok(false),
                        20 => continue,
                        _ => return Err(c.unexpected(&what, &res)),
                    }
                }
                _ => return Err(c.unexpected(&what, &res)),
            }
        }
        Err(ConnectorError::transient(format!("{}: {what}: the group kept changing", self.name)))
    }

    /// Removes the account, under either DN, from every group. Returns whether anything changed.
    async fn strip_memberships(&self, c: &mut Conn<'_>, account: &str) -> Result<bool> {
        let mut changed = false;
        for place in [Place::Enabled, Place::Disabled] {
            let member = self.account_dn(account, place);
            for group in self.groups_of(c, &[&member]).await? {
                changed |= self.remove_member(c, &group, &member).await?;
            }
        }
        Ok(changed)
    }

    async fn create(&self, c: &mut Conn<'_>, a: &AccountSpec) -> Result<Applied> {
        // The same name disabled is the same account: creating it again would be a duplicate.
        if self.exists(c, &self.account_dn(&a.account, Place::Disabled)).await? {
            return Ok(Applied::AlreadyDone);
        }
        let dn = self.account_dn(&a.account, Place::Enabled);
        let display = a.display_name();
        let sn = non_empty(a.family_name.as_deref()).unwrap_or(&a.account);
        let mut attrs: Vec<(&str, HashSet<&str>)> = vec![
            ("objectClass", ACCOUNT_CLASSES.into_iter().collect()),
            ("uid", HashSet::from([a.account.as_str()])),
            ("cn", HashSet::from([display.as_str()])),
            ("sn", HashSet::from([sn])),
            ("displayName", HashSet::from([display.as_str()])),
        ];
        for (attr, value) in [
            ("givenName", a.given_name.as_deref()),
            ("mail", a.email.as_deref()),
            ("employeeNumber", Some(a.identity_id.as_str())),
        ] {
            if let Some(v) = non_empty(value) {
                attrs.push((attr, HashSet::from([v])));
            }
        }
        let what = format!("creating `{dn}`");
        let r = c.ldap().add(&dn, attrs).await;
        let res = c.check(&what, r)?;
        match res.rc {
            0 => Ok(Applied::Changed),
            68 => Ok(Applied::AlreadyDone),
            _ => Err(c.unexpected(&what, &res)),
        }
    }

    async fn enable(&self, c: &mut Conn<'_>, account: &str) -> Result<Applied> {
        let from = self.account_dn(account, Place::Disabled);
        let what = format!("enabling `{from}`");
        let r = c.ldap().modifydn(&from, &Self::rdn(account), false, Some(&self.users_dn)).await;
        let res = c.check(&what, r)?;
        match res.rc {
            0 => Ok(Applied::Changed),
            32 => {
                if self.exists(c, &self.account_dn(account, Place::Enabled)).await? {
                    Ok(Applied::AlreadyDone)
                } else if self.exists(c, &from).await? {
                    // The entry is there, so the new superior (`users_dn`) is what is missing.
                    Err(c.unexpected(&what, &res))
                } else {
                    Err(ConnectorError::permanent(format!(
                        "{}: cannot enable `{account}`: the account does not exist",
                        self.name
                    )))
                }
            }
            68 => Err(ConnectorError::permanent(format!(
                "{}: cannot enable `{account}`: it exists both under `{}` and `{}`",
                self.name, self.users_dn, self.disabled_dn
            ))),
            _ => Err(c.unexpected(&what, &res)),
        }
    }

    async fn disable(&self, c: &mut Conn<'_>, account: &str) -> Result<Applied> {
        // Memberships first: if the move then fails, a retry finds the account still enabled
        // and finishes the job; the reverse order could leave a disabled account in groups.
        let mut changed = self.strip_memberships(c, account).await?;
        let from = self.account_dn(account, Place::Enabled);
        let what = format!("disabling `{from}`");
        let r = c.ldap().modifydn(&from, &Self::rdn(account), false, Some(&self.disabled_dn)).await;
        let res = c.check(&what, r)?;
        match res.rc {
            0 => changed = true,
            // Already disabled, or absent (no access to take away), unless the entry is there
            // and it is `disabled_dn` that is missing.
            32 => {
                if self.exists(c, &from).await? {
                    return Err(c.unexpected(&what, &res));
                }
            }
            68 => {
                return Err(ConnectorError::permanent(format!(
                    "{}: cannot disable `{account}`: it exists both under `{}` and `{}`",
                    self.name, self.users_dn, self.disabled_dn
                )));
            }
            _ => return Err(c.unexpected(&what, &res)),
        }
        // A disabled entry must not be able to bind: moving it does not stop a simple bind with
        // its password, so the password goes too (a rehire gets a new one).
        let disabled = self.account_dn(account, Place::Disabled);
        let what = format!("removing the password of `{disabled}`");
        let r = c.ldap().modify(&disabled, vec![Mod::Delete("userPassword", HashSet::new())]).await;
        let res = c.check(&what, r)?;
        match res.rc {
            0 => changed = true,
            // No password, or no entry (nothing to take away).
            16 | 32 => {}
            _ => return Err(c.unexpected(&what, &res)),
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    async fn delete(&self, c: &mut Conn<'_>, account: &str) -> Result<Applied> {
        let mut changed = self.strip_memberships(c, account).await?;
        for place in [Place::Enabled, Place::Disabled] {
            let dn = self.account_dn(account, place);
            let what = format!("deleting `{dn}`");
            let r = c.ldap().delete(&dn).await;
            let res = c.check(&what, r)?;
            match res.rc {
                0 => changed = true,
                32 => {}
                _ => return Err(c.unexpected(&what, &res)),
            }
        }
        Ok(if changed { Applied::Changed } else { Applied::AlreadyDone })
    }

    async fn grant(&self, c: &mut Conn<'_>, account: &str, entitlement: &str) -> Result<Applied> {
        let group = self.group_dn(entitlement);
        let member = self.account_dn(account, Place::Enabled);
        let what = format!("adding `{member}` to `{group}`");
        // Two rounds: a concurrent grant may create the group between our modify and add.
        for _ in 0..2 {
            let r = c.ldap().modify(&group, vec![Mod::Add("member", HashSet::from([member.as_str()]))]).await;
            let res = c.check(&what, r)?;
            match res.rc {
                0 => return Ok(Applied::Changed),
                20 => return Ok(Applied::AlreadyDone),
                32 => {
                    let attrs = vec![
                        ("objectClass", HashSet::from(["top", "groupOfNames"])),
                        ("cn", HashSet::from([entitlement])),
                        ("member", HashSet::from([member.as_str()])),
                    ];
                    let what = format!("creating `{group}`");
                    let r = c.ldap().add(&group, attrs).await;
                    let res = c.check(&what, r)?;
                    match res.rc {
                        0 => return Ok(Applied::Changed),
                        68 => continue,
                        _ => return Err(c.unexpected(&what, &res)),
                    }
                }
                _ => return Err(c.unexpected(&what, &res)),
            }
        }
        Err(ConnectorError::transient(format!("{}: {what}: the group kept changing", self.name)))
    }

    async fn revoke(&self, c: &mut Conn<'_>, account: &str, entitlement: &str) -> Result<Applied> {
        let group = self.group_dn(entitlement);
        let member = self.account_dn(account, Place::Enabled);
        Ok(if self.remove_member(c, &group, &member).await? { Applied::Changed } else { Applied::AlreadyDone })
    }
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.trim().is_empty())
}

/// The first value of `attr` (matched case-insensitively, as attribute names are).
fn first_value<'e>(entry: &'e SearchEntry, attr: &str) -> Option<&'e str> {
    entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(attr)).and_then(|(_, v)| v.first()).map(String::as_str)
}

/// A `paged` callback that collects the accounts (entries named `uid=..` directly under the
/// container whose canonical text is in `keys`) into `out`.
fn collect_accounts<'a>(
    keys: &'a [&'a str],
    out: &'a mut Vec<AccountState>,
    enabled: bool,
) -> impl FnMut(SearchEntry) + Send + 'a {
    let mut parents = dn::Parents::new(keys);
    move |e: SearchEntry| {
        if let Some((account, parent)) = dn::split_leaf(&e.dn, "uid")
            && parents.which(parent).is_some()
        {
            out.push(AccountState {
                account: account.into_owned(),
                external_id: first_value(&e, "employeeNumber").map(str::to_string),
                enabled,
                grants: BTreeSet::new(),
                sessions: None,
            });
        }
    }
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
            OpKind::RevokeSessions | OpKind::RotateCredential | OpKind::TransferOwnership | OpKind::OpenTicket => {
                return Err(ConnectorError::permanent(format!(
                    "{}: `{}` is not supported by LDAP targets",
                    self.name,
                    req.kind.as_str()
                )));
            }
        };
        let mut c = self.pool.get().await?;
        match (req.kind, entitlement) {
            (OpKind::CreateAccount, _) => self.create(&mut c, &req.account).await,
            (OpKind::Enable, _) => self.enable(&mut c, account).await,
            (OpKind::Disable, _) => self.disable(&mut c, account).await,
            (OpKind::DeleteAccount, _) => self.delete(&mut c, account).await,
            (OpKind::Grant, Some(e)) => self.grant(&mut c, account, e).await,
            (OpKind::Revoke, Some(e)) => self.revoke(&mut c, account, e).await,
            (kind, _) => Err(ConnectorError::permanent(format!(
                "{}: `{}` is not supported by LDAP targets",
                c.target(),
                kind.as_str()
            ))),
        }
    }

    async fn read_account(&self, account: &AccountSpec) -> Result<Option<AccountState>> {
        self.check_name("account", &account.account)?;
        let mut c = self.pool.get().await?;
        let enabled_dn = self.account_dn(&account.account, Place::Enabled);
        let disabled_dn = self.account_dn(&account.account, Place::Disabled);
        let mut found = None;
        for (dn, enabled) in [(&enabled_dn, true), (&disabled_dn, false)] {
            let entries = self.search(&mut c, dn, Scope::Base, ACCOUNT_FILTER, vec!["employeeNumber"]).await?;
            if let Some(entry) = entries.unwrap_or_default().into_iter().next() {
                found = Some((entry, enabled));
                break;
            }
        }
        let Some((entry, enabled)) = found else { return Ok(None) };
        let key = if enabled { &self.users_key } else { &self.disabled_key };
        // The name as stored (the server may differ from the request in case or spacing).
        let name = dn::leaf_under(&entry.dn, "uid", key).unwrap_or_else(|| account.account.clone());
        let grants = self
            .groups_of(&mut c, &[&enabled_dn, &disabled_dn])
            .await?
            .iter()
            .filter_map(|g| self.group_name(g))
            .collect();
        Ok(Some(AccountState {
            account: name,
            external_id: first_value(&entry, "employeeNumber").map(str::to_string),
            enabled,
            grants,
            sessions: None,
        }))
    }

    async fn list_accounts(&self) -> Result<Vec<AccountState>> {
        let mut enabled = Vec::new();
        let mut disabled = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        // (folded account name, index into `groups`)
        let mut memberships: Vec<(String, usize)> = Vec::new();
        let containers = [self.users_key.as_str(), self.disabled_key.as_str()];
        let group_container = [self.groups_key.as_str()];
        let membership = {
            let mut parents = dn::Parents::new(&containers);
            let mut group_parents = dn::Parents::new(&group_container);
            let (groups, memberships) = (&mut groups, &mut memberships);
            move |e: SearchEntry| {
                let Some((group, parent)) = dn::split_leaf(&e.dn, "cn") else { return };
                if group_parents.which(parent).is_none() {
                    return;
                }
                let g = groups.len();
                groups.push(group.into_owned());
                for m in values(&e, "member") {
                    if let Some((name, parent)) = dn::split_leaf(m, "uid")
                        && parents.which(parent).is_some()
                    {
                        memberships.push((dn::fold(&name), g));
                    }
                }
            }
        };
        tokio::try_join!(
            self.paged(
                &self.users_dn,
                ACCOUNT_FILTER,
                vec!["employeeNumber"],
                collect_accounts(&containers[..1], &mut enabled, true)
            ),
            self.paged(
                &self.disabled_dn,
                ACCOUNT_FILTER,
                vec!["employeeNumber"],
                collect_accounts(&containers[1..], &mut disabled, false)
            ),
            self.paged(&self.groups_dn, GROUP_FILTER, vec!["member"], membership),
        )?;
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
        self.paged(&self.groups_dn, GROUP_FILTER, vec![NO_ATTRS], |e| {
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
