//! Domain types: identities, lifecycle events, entitlements, operations and cases.

use crate::schema::{self, Schema, Slot};
use std::fmt;
use std::str::FromStr;

macro_rules! string_enum {
    // `$text` is a token tree, not a `literal` fragment: a fragment reaches derive macros wrapped
    // in an invisible group, which utoipa does not read as the variant's `serde(rename)`, so the
    // OpenAPI document named the variants (`Keep`) instead of what serde accepts (`keep`).
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:tt),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{}`; expected one of: {}",
                        stringify!($name).to_lowercase(), s, [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// What an identity is: a person or a non-human identity (NHI).
    Kind { Employee = "employee", Contractor = "contractor", Service = "service", Bot = "bot" }
);

string_enum!(
    /// The lifecycle status, derived from the HR status and the dates.
    Status { Prehire = "prehire", Active = "active", Suspended = "suspended", Terminated = "terminated" }
);

string_enum!(
    EventKind {
        Joiner = "joiner",
        Mover = "mover",
        Leaver = "leaver",
        Rehire = "rehire",
        Suspend = "suspend",
        Resume = "resume",
        Update = "update",
    }
);

string_enum!(
    OpKind {
        CreateAccount = "create_account",
        Enable = "enable",
        Disable = "disable",
        DeleteAccount = "delete_account",
        Grant = "grant",
        Revoke = "revoke",
        RevokeSessions = "revoke_sessions",
        RotateCredential = "rotate_credential",
        TransferOwnership = "transfer_ownership",
        OpenTicket = "open_ticket",
        // Brings an existing account's mapped attributes (`crate::attributes`) to what the
        // identity's attributes make of them: a mover's new title or name. Never renames.
        UpdateAttributes = "update_attributes",
    }
);

string_enum!(
    OpState {
        Pending = "pending",
        Running = "running",
        Done = "done",
        Verified = "verified",
        Failed = "failed",
        Held = "held",
        Excepted = "excepted",
        Cancelled = "cancelled",
    }
);

string_enum!(
    /// Where one approval stage of an access request stands: `waiting` for the stage before it,
    /// `pending` with its approval, `approved` or `rejected`; `cancelled` after a rejection or
    /// when the request ended first.
    StageState {
        Waiting = "waiting",
        Pending = "pending",
        Approved = "approved",
        Rejected = "rejected",
        Cancelled = "cancelled",
    }
);

string_enum!(
    CaseState { Open = "open", Closed = "closed", Stuck = "stuck" }
);

string_enum!(
    /// What an approval releases: a held snapshot batch, held reconciliation remediation, or
    /// one stage of an access request.
    ApprovalKind { Batch = "batch", Remediation = "remediation", Request = "request" }
);

string_enum!(
    /// Where an access request stands: `pending` while its stages are decided, `granted` once
    /// the last stage approves (until it expires or is revoked), `rejected` by an approver,
    /// `expired` at its expiry, `revoked` early, `cancelled` when its identity leaves.
    RequestState {
        Pending = "pending",
        Granted = "granted",
        Rejected = "rejected",
        Expired = "expired",
        Revoked = "revoked",
        Cancelled = "cancelled",
    }
);

string_enum!(
    /// Where an approval stands. Only `pending` ones can be decided.
    ApprovalState { Pending = "pending", Approved = "approved", Rejected = "rejected", Superseded = "superseded" }
);

string_enum!(
    /// Where an import stands: applied at once, held for approval, then approved, rejected or
    /// superseded by a newer snapshot of its source.
    ImportState {
        Applied = "applied",
        Held = "held",
        Approved = "approved",
        Rejected = "rejected",
        Superseded = "superseded",
    }
);

string_enum!(
    /// Where a journaled event stands; an approved held event becomes `applied`.
    EventState { Applied = "applied", Held = "held", Rejected = "rejected", Superseded = "superseded" }
);

string_enum!(
    /// A manual ticket: open until a person completes it with evidence, or withdrawn when newer
    /// work no longer needs it.
    TicketState { Open = "open", Done = "done", Withdrawn = "withdrawn" }
);

string_enum!(
    /// What a recorded deviation (control debt) is about. `failed_operation` is
    /// any other operation that failed past its retries; `failed_revocation` one that removes
    /// access (revoke, disable, delete_account, revoke_sessions); `partial_removal` a leaver or
    /// suspension case that closed with removals excepted; `declined_fix` a reconciliation fix
    /// someone declined.
    ExceptionKind {
        OverdueTicket = "overdue_ticket",
        FailedOperation = "failed_operation",
        AcceptedSod = "accepted_sod",
        ManualOverride = "manual_override",
        PartialRemoval = "partial_removal",
        FailedRevocation = "failed_revocation",
        DeclinedFix = "declined_fix",
    }
);

string_enum!(
    ExceptionState { Open = "open", Resolved = "resolved", Accepted = "accepted" }
);

string_enum!(
    /// What reconciliation found. `resurrected` comes from the post-offboarding re-check: a
    /// leaver's account enabled again or a grant back after the leaver case closed.
    /// `stale_credential` is a non-human identity's account whose credential is older than its
    /// `credential_max_age`; `nhi_without_owner` one whose owner is not an active identity.
    FindingKind {
        Orphan = "orphan",
        Drift = "drift",
        Missing = "missing",
        Sod = "sod",
        Ambiguous = "ambiguous",
        Resurrected = "resurrected",
        StaleCredential = "stale_credential",
        NhiWithoutOwner = "nhi_without_owner",
    }
);

string_enum!(
    /// A correlation case: `open` until a person decides it, then `linked` (the account is the
    /// chosen identity's, and Tenure may manage it) or `orphaned` (it is nobody's Tenure knows, for
    /// good: no rule links it again).
    CorrelationState { Open = "open", Linked = "linked", Orphaned = "orphaned" }
);

string_enum!(
    /// How a scheduled job's run ended.
    JobOutcome { Ok = "ok", Failed = "failed" }
);

string_enum!(
    /// How an import ended: applied, held for approval, or nothing changed.
    ImportOutcome { Applied = "applied", Held = "held", Unchanged = "unchanged" }
);

string_enum!(
    /// How a target's revocations are carried out; coverage is reported per class.
    RevocationClass { Scim = "scim", Api = "api", Manual = "manual" }
);

string_enum!(
    TargetKind { Ldap = "ldap", Scim = "scim", Postgres = "postgres", Manual = "manual" }
);

string_enum!(
    /// What an API token may do: `admin` everything; `operator` imports, apply,
    /// reconcile, tasks and reading; `approver` approvals, requests, reviews and reading;
    /// `auditor` reading and the audit trail; `source` only its own source's webhook and SCIM
    /// endpoint.
    Scope { Admin = "admin", Operator = "operator", Approver = "approver", Auditor = "auditor", Source = "source" }
);

impl TargetKind {
    /// Whether a target of this kind can carry out `op`. The planner only plans what a target
    /// supports; each connector declares the same set through `Connector::capabilities`.
    pub fn supports(self, op: OpKind) -> bool {
        match self {
            // Directory and SCIM accounts hold no sessions Tenure can end: disabling the account
            // is what stops new logins there.
            // A directory account's password (`userPassword`, `unicodePwd`) can be rotated.
            TargetKind::Ldap => !matches!(op, OpKind::RevokeSessions | OpKind::TransferOwnership | OpKind::OpenTicket),
            TargetKind::Scim => !matches!(
                op,
                OpKind::RevokeSessions | OpKind::RotateCredential | OpKind::TransferOwnership | OpKind::OpenTicket
            ),
            // PostgreSQL roles and manual apps keep no attributes about the person.
            TargetKind::Postgres => !matches!(op, OpKind::OpenTicket | OpKind::UpdateAttributes),
            TargetKind::Manual => op != OpKind::UpdateAttributes,
        }
    }
}

impl OpKind {
    /// Whether the operation takes access away: its failure past the retries is a
    /// `failed_revocation` exception, and its being excepted in a leaver's case a
    /// `partial_removal`.
    pub fn removes_access(self) -> bool {
        matches!(self, OpKind::Revoke | OpKind::Disable | OpKind::DeleteAccount | OpKind::RevokeSessions)
    }
}

impl OpState {
    /// A state the executor will not touch again.
    pub fn is_final(self) -> bool {
        matches!(self, OpState::Verified | OpState::Failed | OpState::Excepted | OpState::Cancelled)
    }

    /// A state that counts as settled for a case: its effect was read back, recorded as an
    /// exception, or no longer needed.
    pub fn is_settled(self) -> bool {
        matches!(self, OpState::Verified | OpState::Excepted | OpState::Cancelled)
    }
}

/// Attribute values of one identity, one optional value per schema slot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attrs(Box<[Option<Box<str>>]>);

impl Attrs {
    pub fn new(schema: &Schema) -> Self {
        Self(vec![None; schema.len()].into_boxed_slice())
    }

    pub fn get(&self, slot: Slot) -> Option<&str> {
        self.0.get(slot).and_then(|v| v.as_deref())
    }

    pub fn set(&mut self, slot: Slot, value: Option<&str>) {
        if let Some(cell) = self.0.get_mut(slot) {
            *cell = value.filter(|v| !v.is_empty()).map(Into::into);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Slots whose values differ, ignoring `status` (lifecycle changes are events of their own).
    pub fn changed_slots(&self, other: &Attrs) -> Vec<Slot> {
        let n = self.0.len().max(other.0.len());
        (0..n).filter(|&s| s != schema::STATUS && self.get(s) != other.get(s)).collect()
    }

    /// The attributes as a JSON object keyed by name; absent values are omitted.
    pub fn to_json(&self, schema: &Schema) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (slot, v) in self.0.iter().enumerate() {
            if let Some(v) = v {
                map.insert(schema.name(slot).to_string(), serde_json::Value::String(v.to_string()));
            }
        }
        serde_json::Value::Object(map)
    }

    /// Reads attributes from JSON text holding an object keyed by name (what [`Attrs::to_json`]
    /// writes), without building a JSON tree: the store reads 100,000 of these per import.
    /// Names not in the schema and non-string values are dropped.
    pub fn from_json_str(schema: &Schema, text: &str) -> Result<Self, serde_json::Error> {
        use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
        struct Seed<'s>(&'s Schema);
        impl<'de> DeserializeSeed<'de> for Seed<'_> {
            type Value = Attrs;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Attrs, D::Error> {
                d.deserialize_map(self)
            }
        }
        impl<'de> Visitor<'de> for Seed<'_> {
            type Value = Attrs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of attribute names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs, A::Error> {
                let mut attrs = Attrs::new(self.0);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match self.0.slot(&key) {
                        Some(slot) => {
                            let v: Option<std::borrow::Cow<'de, str>> = map.next_value()?;
                            attrs.set(slot, v.as_deref());
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(attrs)
            }
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let attrs = Seed(schema).deserialize(&mut de)?;
        de.end()?;
        Ok(attrs)
    }

    /// Reads attributes from a JSON object keyed by name; names not in the schema are dropped.
    pub fn from_json(schema: &Schema, value: &serde_json::Value) -> Self {
        let mut attrs = Self::new(schema);
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                if let (Some(slot), Some(s)) = (schema.slot(k), v.as_str()) {
                    attrs.set(slot, Some(s));
                }
            }
        }
        attrs
    }
}

/// An identity as Tenure knows it: the source's key, what it is, its lifecycle status and its
/// attributes. `status` and `kind` are mirrored into their attribute slots so that policy sees
/// them like any other attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub id: Box<str>,
    pub kind: Kind,
    pub status: Status,
    pub attrs: Attrs,
}

impl Identity {
    pub fn new(id: &str, kind: Kind, status: Status, mut attrs: Attrs) -> Self {
        attrs.set(schema::STATUS, Some(status.as_str()));
        attrs.set(schema::KIND, Some(kind.as_str()));
        Self { id: id.into(), kind, status, attrs }
    }

    pub fn set_status(&mut self, status: Status) {
        self.status = status;
        self.attrs.set(schema::STATUS, Some(status.as_str()));
    }

    pub fn attr<'a>(&'a self, schema: &Schema, name: &str) -> Option<&'a str> {
        schema.slot(name).and_then(|s| self.attrs.get(s))
    }

    pub fn is_nhi(&self) -> bool {
        matches!(self.kind, Kind::Service | Kind::Bot)
    }
}

/// An entitlement `TARGET:NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Entitlement {
    pub target: String,
    pub name: String,
}

impl Entitlement {
    /// Parses `TARGET:NAME`. The name may itself contain `:`; the target may not.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((target, name)) = s.split_once(':') else {
            return Err(format!("entitlement `{s}` is malformed: expected `TARGET:NAME`"));
        };
        if target.is_empty() || name.is_empty() {
            return Err(format!("entitlement `{s}` is malformed: expected `TARGET:NAME`"));
        }
        if name.chars().any(char::is_control) || name.len() > 256 {
            return Err(format!("entitlement `{s}` is malformed: control characters or over 256 bytes"));
        }
        if name.trim() != name {
            return Err(format!("entitlement `{s}` is malformed: leading or trailing space"));
        }
        Ok(Self { target: target.to_string(), name: name.to_string() })
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.target, self.name)
    }
}

/// A change of one attribute carried by an event.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub attribute: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A lifecycle event derived from a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub identity: Identity,
    /// The identity before the event, if Tenure knew it.
    pub previous: Option<Identity>,
    pub changes: Vec<Change>,
    /// For a mover: whether a change touches a `[mover] significant` attribute.
    pub significant: bool,
    /// Why a leaver is a leaver, or other short context.
    pub note: Option<String>,
}

// Certification campaigns (issue 10): the kinds and states a campaign and its review items carry.

string_enum!(
    /// Where a certification campaign stands: items are decided while it is `open`.
    CampaignState { Open = "open", Closed = "closed" }
);

string_enum!(
    /// A reviewer's decision on one item: keep the access, or revoke it.
    ReviewDecision { Keep = "keep", Revoke = "revoke" }
);

string_enum!(
    /// What an item nobody reviewed by the campaign's due date becomes: revoked, kept, or
    /// escalated to the reviewer's manager (and left open for them).
    OnTimeout { Revoke = "revoke", Keep = "keep", Escalate = "escalate" }
);

string_enum!(
    /// What came of a decided item: `kept`; a revocation `revoking` (planned, not read back yet),
    /// `held` (past the guard, waiting for approval), `revoked` (verified on the target),
    /// `failed` (past its retries), `excepted` (its held fix was rejected), `cancelled`; or
    /// `not_held` (the access was already gone when the decision was applied).
    ReviewOutcome {
        Kept = "kept",
        Revoking = "revoking",
        Held = "held",
        Revoked = "revoked",
        Failed = "failed",
        Excepted = "excepted",
        Cancelled = "cancelled",
        NotHeld = "not_held",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_back_from_their_json_text() {
        let schema = Schema::default();
        let mut a = Attrs::new(&schema);
        a.set(schema.slot_of("title"), Some("Lead \"of\" things\n"));
        a.set(schema.slot_of("email"), Some("zoë@x.com"));
        let text = a.to_json(&schema).to_string();
        assert_eq!(Attrs::from_json_str(&schema, &text).ok(), Some(a.clone()));
        let extra = r#"{"title":"T","unknown":{"deep":[1,2]},"email":null}"#;
        let b = Attrs::from_json_str(&schema, extra).unwrap_or_default();
        assert_eq!(b.get(schema.slot_of("title")), Some("T"));
        assert!(Attrs::from_json_str(&schema, "[1]").is_err());
        assert!(Attrs::from_json_str(&schema, "{} x").is_err());
    }
}
