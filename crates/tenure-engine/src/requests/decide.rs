//! The decisions of access requests, without IO: who approves each stage, whether a person may
//! decide a stage, what SoD predicts for a request, and whether a duration is allowed. The
//! engine reads the people and the holdings, and these functions decide; `tests.rs` checks them
//! over data.

use std::collections::BTreeSet;
use tenure_core::error::Code;
use tenure_core::{Entitlement, Status};
use tenure_policy::{ApprovalStage, Policy, Role, SodAction, SodHit, SodMode};
use tenure_store::NewStage;

/// What approver resolution needs to know about a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub username: Option<String>,
    pub status: Status,
    pub manager_id: Option<String>,
}

/// The people, as resolution asks for them: by identity id, or by username.
pub trait People {
    fn by_id(&self, id: &str) -> Option<Person>;
    fn by_username(&self, username: &str) -> Option<Person>;

    /// The person a name stands for: an identity id first, else a username.
    fn named(&self, name: &str) -> Option<Person> {
        self.by_id(name).or_else(|| self.by_username(name))
    }
}

/// A refusal: its stable code and what to tell the person. Nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
}

fn refuse(code: Code, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// How far up a manager chain resolution walks before it gives up (a cycle in HR data, or a
/// chain of inactive managers).
const MAX_CHAIN: usize = 16;

/// The approver a `manager` stage resolves to for `identity`: its manager from HR; if that
/// manager is not active, or is the requester (who may not approve their own request), the
/// manager's manager, and so on up the chain. `None` when the chain ends first.
pub fn manager_of(people: &dyn People, identity: &Person, requester: Option<&str>) -> Option<Person> {
    let mut next = identity.manager_id.clone();
    let mut seen = BTreeSet::new();
    while let Some(id) = next {
        if seen.len() >= MAX_CHAIN || !seen.insert(id.clone()) || is(identity, &id) {
            return None;
        }
        let m = people.by_id(&id)?;
        if m.status == Status::Active && requester.is_none_or(|r| !is(&m, r)) {
            return Some(m);
        }
        next = m.manager_id.clone();
    }
    None
}

/// Whether `name` (an identity id or a username, case-folded) names `p`
/// ([`crate::people::names`], the one matcher).
pub fn is(p: &Person, name: &str) -> bool {
    crate::people::names(name, &p.id, p.username.as_deref())
}

/// The approval stages of a request for `role` for `identity` asked by `requester`, in order:
/// the role's stages, then one per flagged SoD rule (its `owner`, else the manager). A stage
/// whose approver would be the identity itself or the requester is a refusal (self-approval),
/// as is a stage nobody can approve.
pub fn stages(
    people: &dyn People,
    role: &Role,
    identity: &Person,
    requester: &str,
    flagged: &[(&str, Option<&str>)],
) -> Result<Vec<NewStage>, Refusal> {
    let mut out = Vec::new();
    let mut resolve = |rule: String, stage: &ApprovalStage| -> Result<(), Refusal> {
        let approver = match stage {
            ApprovalStage::Manager => manager_of(people, identity, Some(requester)).map(|m| m.id).ok_or_else(|| {
                refuse(
                    Code::RequestRefused,
                    format!(
                        "no active manager of `{}` can approve `{rule}` (HR names {}), and nobody above them either",
                        identity.id,
                        identity.manager_id.as_deref().map_or_else(|| "none".to_string(), |m| format!("`{m}`"))
                    ),
                )
            })?,
            ApprovalStage::Owner(name) => {
                let who = people.named(name);
                if let Some(p) = &who
                    && p.status == Status::Terminated
                {
                    return Err(refuse(
                        Code::RequestRefused,
                        format!("approver `{name}` of `{rule}` has left; the policy must name another"),
                    ));
                }
                who.map_or_else(|| name.clone(), |p| p.id)
            }
        };
        if is(identity, &approver) || people.named(&approver).is_some_and(|p| is(&p, &identity.id)) {
            return Err(refuse(
                Code::SelfApproval,
                format!("`{approver}` would approve `{rule}` of their own request; self-approval is refused"),
            ));
        }
        if crate::people::same_name(&approver, requester) || people.named(requester).is_some_and(|p| is(&p, &approver))
        {
            return Err(refuse(
                Code::SelfApproval,
                format!("`{requester}` asked for this and is the approver of `{rule}`; self-approval is refused"),
            ));
        }
        out.push(NewStage { rule, approver });
        Ok(())
    };
    for s in &role.approval {
        resolve(s.to_string(), s)?;
    }
    for (rule, owner) in flagged {
        let stage = owner.map_or(ApprovalStage::Manager, |o| ApprovalStage::Owner(o.to_string()));
        resolve(format!("sod:{rule}"), &stage)?;
    }
    if out.is_empty() {
        return Err(refuse(Code::RequestRefused, format!("role `{}` names no approver", role.id)));
    }
    Ok(out)
}

/// Who is deciding a stage and how they were identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decider {
    pub name: String,
    pub via: Via,
}

/// How a decider or requester was identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An API token: the name is the token's, never a field of the body.
    Token,
    /// The CLI's `--as NAME`, for local use.
    CliAs,
    /// The CLI without `--as`: `$TENURE_USER`, then `$USER`.
    Cli,
}

impl Decider {
    pub fn new(name: impl Into<String>, via: Via) -> Self {
        Self { name: name.into(), via }
    }

    /// What the audit trail records as `via`: `token:NAME`, `cli --as` or `cli`.
    pub fn via_text(&self) -> String {
        match self.via {
            Via::Token => format!("token:{}", self.name),
            Via::CliAs => "cli --as".to_string(),
            Via::Cli => "cli".to_string(),
        }
    }

    /// The audit actor: the token, or the person the CLI was told.
    pub fn actor(&self) -> String {
        match self.via {
            Via::Token => format!("token:{}", self.name),
            Via::CliAs | Via::Cli => format!("user:{}", self.name),
        }
    }
}

/// Whether `decider` may approve a stage that resolved to `approver` of a request for
/// `identity` asked by `requester`: never the identity itself, never the requester, and only
/// the resolved approver (by identity id or username).
pub fn may_approve(
    people: &dyn People,
    decider: &str,
    approver: &str,
    identity: &str,
    requester: &str,
) -> Result<(), Refusal> {
    let who = people.named(decider);
    let names = |n: &str| crate::people::same_name(decider, n) || who.as_ref().is_some_and(|p| is(p, n));
    if names(identity) {
        return Err(refuse(Code::SelfApproval, format!("`{decider}` cannot approve a request for themselves")));
    }
    let requester_is = people.named(requester);
    if names(requester) || requester_is.as_ref().is_some_and(|r| names(&r.id)) {
        return Err(refuse(Code::SelfApproval, format!("`{decider}` asked for this request and cannot approve it")));
    }
    let approver_is = people.named(approver);
    if names(approver) || approver_is.as_ref().is_some_and(|a| names(&a.id)) {
        return Ok(());
    }
    Err(refuse(Code::NotApprover, format!("`{decider}` is not the approver of this stage; it waits for `{approver}`")))
}

/// The duration a request gets: the one asked for, which must not be longer than the role's
/// `max_duration`, else the role's `max_duration` (`None`: until revoked).
pub fn duration(role: &Role, asked: Option<u64>, asked_text: Option<&str>) -> Result<Option<u64>, Refusal> {
    match (asked, role.max_duration) {
        (Some(a), Some(max)) if a > max => Err(refuse(
            Code::RequestRefused,
            format!(
                "duration `{}` ({a} s) is longer than role `{}` allows (max_duration {max} s)",
                asked_text.unwrap_or_default(),
                role.id
            ),
        )),
        (Some(a), _) => Ok(Some(a)),
        (None, max) => Ok(max),
    }
}

/// What SoD says about a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prediction {
    /// Enforced `block` rules the request would violate: it is refused.
    pub blocks: Vec<SodHit>,
    /// Enforced `flag` rules: each needs an extra approval stage and becomes an accepted risk.
    pub flags: Vec<SodHit>,
    /// `mode = "record"` rules: recorded, nothing refused.
    pub recorded: Vec<SodHit>,
}

/// Predicts SoD for granting `requested` to an identity that holds or is desired to hold `have`.
pub fn predict(policy: &Policy, have: &BTreeSet<Entitlement>, requested: &[Entitlement]) -> Prediction {
    let mut p = Prediction::default();
    for hit in policy.predict_sod(have, requested) {
        match (hit.mode, hit.action) {
            (SodMode::Record, _) => p.recorded.push(hit),
            (SodMode::Enforce, SodAction::Block) => p.blocks.push(hit),
            (SodMode::Enforce, SodAction::Flag) => p.flags.push(hit),
        }
    }
    p
}

impl Prediction {
    /// The refusal a `block` makes, naming the rule.
    pub fn refusal(&self, role: &str, identity: &str) -> Option<Refusal> {
        let hit = self.blocks.first()?;
        Some(refuse(
            Code::SodConflict,
            format!(
                "role `{role}` for `{identity}` would combine {}, which sod rule `{}` blocks",
                hit.conflicting.join(" and "),
                hit.rule
            ),
        ))
    }
}
