//! Connectors: how Tenure changes and reads real target systems.
//!
//! One trait, [`Connector`], and one module per target kind (`ldap`, `scim`, `postgres`), in the
//! shape of ripgrep's matcher crates. Manual targets have no API: their operations become
//! tickets, which live in the store, so the manual "connector" is part of the engine.
//!
//! The contract every connector keeps:
//! - `apply` is idempotent. "Already exists", "already a member", "already revoked" and
//!   "already gone" are success ([`Applied::AlreadyDone`]), never an error or a duplicate.
//! - `read_account` reads the target itself, never a cache, because the executor marks an
//!   operation `verified` only from what it reads back. An account not found by its name is
//!   looked for by its correlation id across the whole target (renamed or moved by hand), so a
//!   leaver's account is never "absent" while it still works somewhere else.
//! - A create never adopts an account it did not make: an existing account of the name that
//!   does not carry the identity's correlation id is [`Applied::NotOwned`], unchanged.
//! - Whose an account is (its correlation id) is checked before every write, never after: an
//!   account carrying another identity's id is not changed.
//! - Errors say whether retrying can help ([`ErrorKind::Transient`]) or not.
//! - Every value placed in an LDAP DN or filter, a SCIM filter or SQL is escaped, quoted or bound.
//! - Secrets never appear in errors or logs. A connector shows a URL only through [`redact`]
//!   and passes every message through its [`redact::Scrubber`], which erases the secret values it
//!   holds, so not even a library's or a server's own text can carry one into an operation's
//!   `last_error` or the audit trail.

pub mod ldap;
mod listing;
pub mod postgres;
pub mod redact;
pub mod scim;
pub mod secret;
mod tls;

pub use redact::redact;
pub use secret::NewSecret;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tenure_core::OpKind;

pub use tenure_core::config::{SecretRef, TargetConfig, TargetSettings};

/// What a connector can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    CreateAccount,
    Enable,
    Disable,
    DeleteAccount,
    Grant,
    Revoke,
    RevokeSessions,
    RotateCredential,
    TransferOwnership,
    /// Brings an account's mapped attributes to the identity's (`update_attributes`).
    UpdateAttributes,
    ListAccounts,
    ListGrants,
    ReadBack,
}

impl Capability {
    /// The capability an operation needs.
    pub fn for_op(op: OpKind) -> Option<Capability> {
        Some(match op {
            OpKind::CreateAccount => Capability::CreateAccount,
            OpKind::Enable => Capability::Enable,
            OpKind::Disable => Capability::Disable,
            OpKind::DeleteAccount => Capability::DeleteAccount,
            OpKind::Grant => Capability::Grant,
            OpKind::Revoke => Capability::Revoke,
            OpKind::RevokeSessions => Capability::RevokeSessions,
            OpKind::RotateCredential => Capability::RotateCredential,
            OpKind::TransferOwnership => Capability::TransferOwnership,
            OpKind::UpdateAttributes => Capability::UpdateAttributes,
            OpKind::OpenTicket => return None,
        })
    }
}

/// The account an operation is about, with the attributes a target may need to create it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSpec {
    /// Tenure's identity id: SCIM `externalId`, LDAP `employeeNumber`, a PostgreSQL role comment.
    pub identity_id: String,
    /// The account name in the target (LDAP `uid`, SCIM `userName`, PostgreSQL role name).
    pub account: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    /// Every attribute of the identity by name, for a target's attribute templates
    /// (`[target.attributes]`); empty values are left out.
    pub attributes: BTreeMap<String, String>,
}

impl AccountSpec {
    /// The value a template's `{name}` stands for: `account`, `id`, or an identity attribute
    /// (`given_name`, `family_name` and `email` also from their own fields).
    pub fn lookup(&self, name: &str) -> Option<&str> {
        let v = match name {
            "account" => Some(self.account.as_str()),
            "id" => Some(self.identity_id.as_str()),
            _ => self.attributes.get(name).map(String::as_str).or(match name {
                "given_name" => self.given_name.as_deref(),
                "family_name" => self.family_name.as_deref(),
                "email" => self.email.as_deref(),
                _ => None,
            }),
        };
        v.filter(|v| !v.trim().is_empty())
    }

    pub fn display_name(&self) -> String {
        match (&self.given_name, &self.family_name) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => self.account.clone(),
        }
    }
}

/// One operation for a connector to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: OpKind,
    /// The entitlement name within the target (group cn, SCIM group displayName, role name) for
    /// `grant` and `revoke`.
    pub entitlement: Option<String>,
    pub account: AccountSpec,
    /// For `transfer_ownership` and `delete_account` on PostgreSQL: who receives owned objects.
    pub new_owner: Option<String>,
    /// For `rotate_credential`: the new secret to set. A connector never makes one up: the
    /// executor generates it, so it can hand it to the sink and verify it.
    pub secret: Option<NewSecret>,
}

/// What `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// The change was made.
    Changed,
    /// The target already was in the requested state; nothing was sent that changed it.
    AlreadyDone,
    /// A `create_account` found an account of this name that does not carry this identity's
    /// correlation id (made by hand, or never Tenure's). Nothing was changed: it is not adopted,
    /// and the caller decides what follows (the executor opens a correlation case for a person).
    NotOwned(Box<AccountState>),
}

/// An account as read from the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountState {
    pub account: String,
    /// The correlation id stored in the target, if any (SCIM externalId, LDAP employeeNumber,
    /// PostgreSQL role comment).
    pub external_id: Option<String>,
    /// The account's email where the target keeps one (LDAP `mail`, the SCIM primary email),
    /// for correlating accounts Tenure did not create.
    pub email: Option<String>,
    pub enabled: bool,
    /// Entitlement names held (group cns, group displayNames, granted roles).
    pub grants: BTreeSet<String>,
    /// Live sessions, where the target has such a notion (PostgreSQL backends).
    pub sessions: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Retrying may help: connection refused, timeout, 429, 5xx, serialization failure.
    Transient,
    /// Retrying will not help: bad request, schema violation, permission denied, bad config.
    Permanent,
}

/// A connector failure. `message` never contains secrets.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    pub kind: ErrorKind,
    pub message: String,
    /// A server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl ConnectorError {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Transient, message: message.into(), retry_after: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Permanent, message: message.into(), retry_after: None }
    }

    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// The stable code: a transient failure is `target_unavailable`, a permanent one
    /// `target_refused`.
    pub fn code(&self) -> tenure_core::error::Code {
        match self.kind {
            ErrorKind::Transient => tenure_core::error::Code::TargetUnavailable,
            ErrorKind::Permanent => tenure_core::error::Code::TargetRefused,
        }
    }
}

pub type Result<T> = std::result::Result<T, ConnectorError>;

/// A connected target system.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// The target's name from the config.
    fn name(&self) -> &str;

    fn capabilities(&self) -> &'static [Capability];

    /// Carries out one operation, idempotently.
    async fn apply(&self, req: &Request) -> Result<Applied>;

    /// Reads one account back from the target: by name, else (when `account.identity_id` is set)
    /// the account carrying that correlation id anywhere in the target. `Ok(None)` means it
    /// exists neither by name nor by correlation id.
    async fn read_account(&self, account: &AccountSpec) -> Result<Option<AccountState>>;

    /// Reads the account's mapped attributes (`tenure_core::attributes`): every attribute name
    /// the target maps, with the values the live account holds. `Ok(None)` when the account does
    /// not exist. Targets that keep no attributes about the person (PostgreSQL) keep this
    /// default, an empty map.
    async fn read_attributes(&self, account: &AccountSpec) -> Result<Option<tenure_core::attributes::Live>> {
        Ok(self.read_account(account).await?.map(|_| tenure_core::attributes::Live::new()))
    }

    /// Lists every account the target holds, with grants, paging through the target as needed.
    async fn list_accounts(&self) -> Result<Vec<AccountState>>;

    /// The entitlements that exist in the target (groups, roles), for `check --online` and
    /// reconciliation.
    async fn list_entitlements(&self) -> Result<Vec<String>>;

    /// Whether `secret` is the account's credential now, by logging in (PostgreSQL) or binding
    /// (LDAP) with it on a fresh connection: the read-back of a `rotate_credential`. `Ok(false)`
    /// means the target refused it; an error means the check could not be made. Targets that
    /// cannot rotate credentials say so.
    async fn verify_secret(&self, account: &AccountSpec, secret: &NewSecret) -> Result<bool> {
        let _ = (account, secret);
        Err(ConnectorError::permanent(format!("`{}` cannot verify a credential", self.name())))
    }

    /// Notes about the target gathered since the last call, for a report to show (a server
    /// that answered a page with another `itemsPerPage` than it returned, say). Empty unless a
    /// connector has something to say.
    fn take_notes(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Resolves a secret reference. The value is returned, never logged.
pub fn resolve_secret(r: &SecretRef, what: &str) -> Result<String> {
    match r {
        SecretRef::Env(var) => std::env::var(var)
            .map_err(|_| ConnectorError::permanent(format!("{what}: environment variable `{var}` is not set"))),
        SecretRef::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| ConnectorError::permanent(format!("{what}: cannot read secret file `{path}`: {}", e.kind()))),
        SecretRef::None => Ok(String::new()),
    }
}

/// Builds the connector for a configured target. Manual targets return `None`: the engine
/// handles them with tickets.
///
/// Insecure settings (`tls_verify = false`, a token over plain http) are printed on stderr here,
/// every time a command connects, so they cannot be forgotten.
pub async fn connect(cfg: &TargetConfig) -> Result<Option<Box<dyn Connector>>> {
    for warning in cfg.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(match &cfg.settings {
        TargetSettings::Ldap(s) => Some(Box::new(ldap::LdapConnector::new(&cfg.name, s, cfg.concurrency)?)),
        TargetSettings::Scim(s) => Some(Box::new(scim::ScimConnector::new(&cfg.name, s, cfg.concurrency)?)),
        TargetSettings::Postgres(s) => {
            let c = postgres::PostgresConnector::new(&cfg.name, s, cfg.concurrency).await?;
            if let Some(why) = c.plain_wire() {
                eprintln!("warning: target `{}`: {why}", cfg.name);
            }
            Some(Box::new(c))
        }
        TargetSettings::Manual(_) => None,
    })
}

/// What is insecure about a target's settings ([`TargetConfig::warnings`]), and for PostgreSQL
/// what only its connection URL shows: an `sslmode` that allows plain text (`disable`, or
/// `prefer`, which anyone on the path can downgrade) to a host off this machine. Reads the
/// URL's secret but connects to nothing; a URL that cannot be read adds nothing here (using the
/// target reports it).
pub async fn warnings(cfg: &TargetConfig) -> Vec<String> {
    let mut out = cfg.warnings();
    if let TargetSettings::Postgres(s) = &cfg.settings
        && let Ok(c) = postgres::PostgresConnector::new(&cfg.name, s, 1).await
        && let Some(why) = c.plain_wire()
    {
        out.push(format!("target `{}`: {why}", cfg.name));
    }
    out
}
