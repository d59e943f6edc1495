//! The decisions of certification campaigns, without IO: what a scope selects, who reviews each
//! item, when items escalate and time out, and what came of a decision. `campaigns/tests.rs`
//! drives them with data.

use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::config::Config;
use tenure_core::plan::Holdings;
use tenure_core::{Entitlement, Identity, OpState, ReviewDecision, ReviewOutcome, Status};
use tenure_policy::{Desired, Policy};
use tenure_store::campaigns::ItemRecord;

/// The `why` of held access that no role of the policy grants (nor a request).
pub const UNMANAGED: &str = "unmanaged/not in policy";

/// What a campaign reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignScope {
    /// Everything held in one target.
    Target(String),
    /// What one role grants, wherever it is held.
    Role(String),
    /// One entitlement.
    Entitlement(Entitlement),
    /// Everything a `privileged` role grants.
    Privileged,
}

impl CampaignScope {
    /// Parses `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`, checked against
    /// the config and the policy: an unknown target or role is an error, never an empty
    /// campaign.
    pub fn parse(s: &str, config: &Config, policy: &Policy) -> Result<Self, String> {
        let expected = "expected `target:NAME`, `role:ID`, `entitlement:TARGET:NAME` or `privileged`";
        if s == "privileged" {
            if !policy.roles.iter().any(|r| r.privileged) {
                return Err("scope `privileged`: no role of the policy is privileged".into());
            }
            return Ok(Self::Privileged);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(format!("scope `{s}` is malformed: {expected}"));
        };
        let targets = || config.targets.iter().map(|t| t.name.as_str()).collect::<Vec<_>>().join(", ");
        match kind {
            "target" => match config.target(rest) {
                Some(_) => Ok(Self::Target(rest.to_string())),
                None => Err(format!("scope `{s}`: unknown target `{rest}`; targets in the config: {}", targets())),
            },
            "role" => match policy.roles.iter().find(|r| r.id == rest) {
                Some(_) => Ok(Self::Role(rest.to_string())),
                None => Err(format!(
                    "scope `{s}`: unknown role `{rest}`; roles in the policy: {}",
                    policy.roles.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
                )),
            },
            "entitlement" => {
                let e = Entitlement::parse(rest).map_err(|e| format!("scope `{s}`: {e}"))?;
                if config.target(&e.target).is_none() {
                    return Err(format!(
                        "scope `{s}`: unknown target `{}`; targets in the config: {}",
                        e.target,
                        targets()
                    ));
                }
                Ok(Self::Entitlement(e))
            }
            _ => Err(format!("scope `{s}` is malformed: {expected}")),
        }
    }

    /// Whether held entitlement `e` is in scope.
    fn covers(&self, e: &Entitlement, policy: &Policy) -> bool {
        match self {
            Self::Target(t) => e.target == *t,
            Self::Role(id) => policy.roles.iter().any(|r| r.id == *id && r.grant.contains(e)),
            Self::Entitlement(x) => x == e,
            Self::Privileged => policy.roles.iter().any(|r| r.privileged && r.grant.contains(e)),
        }
    }
}

/// Who reviews an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewerRule {
    /// The identity's manager from HR; if that manager is not active, the manager's manager.
    Manager,
    /// One named person (an identity id or username).
    Owner(String),
}

impl ReviewerRule {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            None if s == "manager" => Ok(Self::Manager),
            Some(("owner", name)) if !name.trim().is_empty() => Ok(Self::Owner(name.trim().to_string())),
            _ => Err(format!("reviewer `{s}` is malformed: expected `manager` or `owner:NAME`")),
        }
    }
}

/// One held entitlement in scope, with why it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    pub identity: String,
    pub entitlement: Entitlement,
    pub why: Vec<String>,
}

/// The items of a campaign over `scope`: every entitlement in scope that a non-terminated
/// identity holds (Tenure's committed holdings: what it granted and has planned), by identity,
/// then entitlement. `desired` holds each identity's desired access under the policy (the roles
/// that grant each entitlement are the `why`); `requested` the access requests behind grants
/// (`request:ID`). Held access that neither explains is `unmanaged/not in policy`.
pub fn select(
    scope: &CampaignScope,
    policy: &Policy,
    identities: &[Identity],
    holdings: &HashMap<String, Holdings>,
    desired: &HashMap<String, Desired>,
    requested: &HashMap<String, BTreeMap<Entitlement, Vec<String>>>,
) -> Vec<Selected> {
    let mut out = Vec::new();
    let mut ids: Vec<&Identity> = identities.iter().filter(|i| i.status != Status::Terminated).collect();
    ids.sort_by(|a, b| a.id.cmp(&b.id));
    for i in ids {
        let Some(h) = holdings.get(&*i.id) else { continue };
        let mut held: BTreeSet<Entitlement> = BTreeSet::new();
        for (target, acct) in h.iter().filter(|(_, a)| a.exists) {
            held.extend(acct.grants.iter().map(|g| Entitlement { target: target.clone(), name: g.clone() }));
        }
        for e in held.into_iter().filter(|e| scope.covers(e, policy)) {
            let mut why: Vec<String> = desired
                .get(&*i.id)
                .and_then(|d| d.get(&e.target))
                .and_then(|m| m.get(&e.name))
                .cloned()
                .unwrap_or_default();
            if let Some(r) = requested.get(&*i.id).and_then(|r| r.get(&e)) {
                why.extend(r.iter().cloned());
            }
            if why.is_empty() {
                why.push(UNMANAGED.to_string());
            }
            out.push(Selected { identity: i.id.to_string(), entitlement: e, why });
        }
    }
    out
}

/// What reviewer resolution knows of people: status, manager and username, by identity id.
#[derive(Debug, Clone, Default)]
pub struct People {
    by_id: HashMap<String, (Status, Option<String>)>,
    /// Ids and usernames as [`crate::people::key`] compares names, to the identity's id.
    by_key: HashMap<String, String>,
    by_username: HashMap<String, String>,
}

impl People {
    pub fn new(identities: &[Identity], config: &Config) -> Self {
        let manager = config.schema.slot("manager_id");
        let username = config.schema.slot("username");
        let mut p = Self::default();
        for i in identities {
            let m = manager.and_then(|s| i.attrs.get(s)).map(str::to_string);
            p.by_id.insert(i.id.to_string(), (i.status, m));
            p.by_key.insert(crate::people::key(&i.id), i.id.to_string());
            if let Some(u) = username.and_then(|s| i.attrs.get(s)) {
                p.by_username.insert(crate::people::key(u), i.id.to_string());
            }
        }
        p
    }

    /// The identity a name names: an identity id, else a username, compared as
    /// [`crate::people`] compares names (NFKC, case-folded).
    pub fn resolve(&self, name: &str) -> Option<&str> {
        if let Some((k, _)) = self.by_id.get_key_value(name) {
            return Some(k.as_str());
        }
        let key = crate::people::key(name);
        self.by_key.get(&key).or_else(|| self.by_username.get(&key)).map(String::as_str)
    }

    fn active(&self, id: &str) -> bool {
        self.by_id.get(id).is_some_and(|(s, _)| *s == Status::Active)
    }

    fn manager_id(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).and_then(|(_, m)| m.as_deref())
    }

    /// `id`'s manager if active, else the manager's manager if active (with a note saying so);
    /// `None` when neither is. Nobody is their own reviewer.
    pub fn manager_of(&self, id: &str) -> Option<(String, Option<String>)> {
        let m = self.manager_id(id).filter(|m| *m != id)?;
        if self.active(m) {
            return Some((m.to_string(), None));
        }
        let mm = self.manager_id(m).filter(|mm| *mm != id && *mm != m)?;
        self.active(mm).then(|| (mm.to_string(), Some(format!("manager `{m}` is not active: their manager reviews"))))
    }
}

/// Who reviews `subject`'s access under `rule`, with a note when it is not the rule's first
/// choice; `fallback` (the campaign's creator) when nobody else can: no active manager, or a
/// named owner reviewing their own access with no active manager of their own.
pub fn reviewer_for(rule: &ReviewerRule, subject: &str, people: &People, fallback: &str) -> (String, Option<String>) {
    let fall = |why: String| (fallback.to_string(), Some(format!("{why}: the campaign's creator reviews")));
    match rule {
        ReviewerRule::Manager => {
            people.manager_of(subject).unwrap_or_else(|| fall(format!("`{subject}` has no active manager")))
        }
        ReviewerRule::Owner(name) => {
            let owner = people.resolve(name).unwrap_or(name);
            if !crate::people::same_name(owner, subject) {
                return (owner.to_string(), None);
            }
            match people.manager_of(owner) {
                Some((m, _)) => (m, Some(format!("`{owner}` may not review their own access: their manager reviews"))),
                None => fall(format!("`{owner}` may not review their own access and has no active manager")),
            }
        }
    }
}

/// The due instant of `--due`: a date means the end of that day (UTC), an RFC 3339 time itself.
pub fn due_at(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if s.len() == 10 {
        let d = tenure_core::date::check_date(s).map_err(|e| format!("due date `{s}`: {e}"))?;
        let next = d.succ_opt().ok_or_else(|| format!("due date `{s}` is out of range"))?;
        return Ok(next.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    tenure_core::clock::parse_stamp(s).ok_or_else(|| format!("due `{s}`: expected YYYY-MM-DD or an RFC 3339 time"))
}

/// `--escalate-after`: `N` days, or a duration such as `3d`, `12h` (seconds allowed for tests).
pub fn escalate_after(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let secs = match s.parse::<u64>() {
        Ok(days) if days > 0 => days.checked_mul(86_400),
        Ok(_) => None,
        Err(_) => tenure_core::date::parse_duration(s),
    };
    secs.ok_or_else(|| format!("escalate_after `{s}`: expected a number of days or a duration such as `3d` or `12h`"))
}

/// What came of an item: nothing until decided; `kept`; for a revocation, its operation's state.
pub fn outcome(i: &ItemRecord) -> Option<ReviewOutcome> {
    match i.decision? {
        ReviewDecision::Keep => Some(ReviewOutcome::Kept),
        ReviewDecision::Revoke if i.not_held => Some(ReviewOutcome::NotHeld),
        ReviewDecision::Revoke => Some(match i.operation_state? {
            OpState::Verified => ReviewOutcome::Revoked,
            OpState::Held => ReviewOutcome::Held,
            OpState::Failed => ReviewOutcome::Failed,
            OpState::Excepted => ReviewOutcome::Excepted,
            OpState::Cancelled => ReviewOutcome::Cancelled,
            OpState::Pending | OpState::Running | OpState::Done => ReviewOutcome::Revoking,
        }),
    }
}

/// Whether a campaign created at `created_at` with `escalate_after_secs` is due to escalate its
/// unreviewed items at `now`.
pub fn escalation_due(created_at: DateTime<Utc>, escalate_after_secs: Option<u64>, now: DateTime<Utc>) -> bool {
    escalate_after_secs.is_some_and(|s| {
        let after = chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
        created_at.checked_add_signed(after).is_some_and(|at| now >= at)
    })
}

/// Whether reviewers are to be reminded now: within the last day before the due date.
pub fn reminder_due(due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    due.is_some_and(|d| now < d && d.signed_duration_since(now) <= chrono::Duration::days(1))
}
