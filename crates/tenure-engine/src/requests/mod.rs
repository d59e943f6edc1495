//! Access requests: a requestable role asked for an identity, approved stage by
//! stage, granted with an expiry, revoked at its expiry or early.
//!
//! - [`create`] checks the request (the role is requestable, the identity is known and not
//!   terminated, the duration is within `max_duration`, SoD predicts no `block`, no entitlement
//!   of the role is one a certification review revoked while its `review:ITEM` exception is not
//!   resolved), resolves the
//!   approvers of every stage ([`decide::stages`]) and stores it with its first stage's approval.
//! - A stage is decided through the approvals list (`tenure approve|reject`,
//!   `/api/v1/approvals/{id}/approve|reject`): [`approve`] allows only the resolved approver,
//!   never the identity itself nor the requester, predicts SoD again (and refuses review-revoked
//!   access again), and for the last stage
//!   plans the grant (the identity planned with its overrides, this request's entitlements
//!   among them) and writes it with the request's expiry in the same transaction.
//! - [`expire_due`] (the `grant_expiry` job, and `tenure apply` before it executes) and
//!   [`revoke`] plan the identity without the request's entitlements and end the request.
//! - A leaver's open requests are cancelled by the leaver's batch in the store; its plan
//!   revokes the grants with the rest.
//!
//! Every refusal is a [`crate::EngineError::Refused`] with a stable code and changes nothing.
//! Every step is audited with the request id in its reason.

pub mod decide;

use crate::desired::{self, OverrideGrant, Overrides};
use crate::import::plan_event;
use crate::{Engine, EngineError, Result};
use decide::{Decider, People, Person, Refusal};
use std::collections::{BTreeSet, HashMap};
use tenure_core::audit::AuditEntry;
use tenure_core::date::parse_duration;
use tenure_core::error::Code;
use tenure_core::{ApprovalKind, ApprovalState, Entitlement, Event, EventKind, Identity, RequestState, Status};
use tenure_policy::compiled::Scratch;
use tenure_proto as proto;
use tenure_store::{
    AcceptedRisk, Batch, BatchState, EndRequest, NewRequest, RequestEnd, RequestRecord, StageApproval, StageRecord,
};

impl From<Refusal> for EngineError {
    fn from(r: Refusal) -> Self {
        EngineError::Refused(r.code, r.message)
    }
}

/// The store's identities as [`People`].
struct StorePeople<'a, 'e>(&'a Engine<'e>);

impl People for StorePeople<'_, '_> {
    fn by_id(&self, id: &str) -> Option<Person> {
        let i = self.0.store.identity(&self.0.config.schema, id).ok()??;
        Some(person(self.0, &i))
    }

    fn by_username(&self, username: &str) -> Option<Person> {
        let holders = self.0.store.username_holders(&[username.to_string()]).ok()?;
        // Usernames are unique as folded (the import refuses a second holder), so one matches.
        let want = tenure_core::text::fold(username);
        let (id, _) = holders.into_iter().find(|(_, u)| tenure_core::text::fold(u) == want)?;
        self.by_id(&id)
    }
}

/// The people approvers are resolved among while a batch is planned, by id and by folded
/// username: the stored identities with the batch's in their place (a joiner's manager may join
/// in the same file, before the store knows them). Read once, before planning, and only when
/// one of the batch's identities matches a role whose birthright match needs approval
/// ([`desired::gated`]): a batch is planned while its transaction writes, so planning must not
/// ask the store.
#[derive(Debug, Default)]
pub(crate) struct Roster {
    people: HashMap<String, Person>,
    usernames: HashMap<String, String>,
    /// Everyone is here: never ask the store.
    complete: bool,
}

impl Roster {
    pub(crate) fn new<'i>(
        engine: &Engine<'_>,
        identities: impl IntoIterator<Item = &'i Identity> + Clone,
    ) -> Result<Self> {
        let mut r = Self::default();
        if !engine.policy.roles.iter().any(desired::gated) {
            return Ok(r);
        }
        let mut scratch = Scratch::default();
        if !identities.clone().into_iter().any(|i| !desired::gated_roles(engine, i, &mut scratch).is_empty()) {
            return Ok(r);
        }
        for i in &engine.store.identities(&engine.config.schema, None)? {
            let p = person(engine, i);
            if let Some(u) = &p.username {
                r.usernames.insert(tenure_core::text::fold(u), p.id.clone());
            }
            r.people.insert(p.id.clone(), p);
        }
        // The batch's identities are read last: their new state wins.
        for i in identities {
            let p = person(engine, i);
            if let Some(u) = &p.username {
                r.usernames.insert(tenure_core::text::fold(u), p.id.clone());
            }
            r.people.insert(p.id.clone(), p);
        }
        r.complete = true;
        Ok(r)
    }
}

/// A [`Roster`] first, then the store.
pub(crate) struct BatchPeople<'a, 'e> {
    pub engine: &'a Engine<'e>,
    pub roster: &'a Roster,
}

impl People for BatchPeople<'_, '_> {
    fn by_id(&self, id: &str) -> Option<Person> {
        match self.roster.people.get(id) {
            Some(p) => Some(p.clone()),
            None if self.roster.complete => None,
            None => StorePeople(self.engine).by_id(id),
        }
    }

    fn by_username(&self, username: &str) -> Option<Person> {
        match self.roster.usernames.get(&tenure_core::text::fold(username)) {
            Some(id) => self.by_id(id),
            None if self.roster.complete => None,
            None => StorePeople(self.engine).by_username(username),
        }
    }
}

/// The birthright requests a plan ends: the ones the policy opened for a role whose condition
/// `identity` no longer matches (`gated`: the roles with `approval` it matches). A pending one
/// is cancelled; a granted one is revoked, its grant moved to `ended` in the returned overrides
/// so that the same plan revokes it. A leaver's requests are the store's to cancel.
pub(crate) fn birthright_ends(
    engine: &Engine<'_>,
    identity: &Identity,
    overrides: &Overrides,
    gated: &[usize],
) -> (Option<Overrides>, Vec<EndRequest>) {
    if identity.status == Status::Terminated {
        return (None, Vec::new());
    }
    let matching: Vec<&str> = gated.iter().filter_map(|&r| engine.policy.roles.get(r)).map(|r| r.id.as_str()).collect();
    let mut ends = Vec::new();
    let mut out: Option<Overrides> = None;
    for r in overrides.requests.iter().filter(|r| r.birthright && !matching.contains(&r.role.as_str())) {
        let reason = if engine.policy.role(&r.role).is_none() {
            format!("role `{}` is no longer in the policy", r.role)
        } else {
            format!("the `when` of role `{}` no longer matches `{}`", r.role, identity.id)
        };
        match r.state {
            RequestState::Pending => {
                ends.push(EndRequest { request_id: r.id, was: r.state, state: RequestState::Cancelled, reason });
            }
            RequestState::Granted => {
                ends.push(EndRequest { request_id: r.id, was: r.state, state: RequestState::Revoked, reason });
                let o = out.get_or_insert_with(|| overrides.clone());
                let mine = format!("request:{}", r.id);
                let (gone, kept): (Vec<OverrideGrant>, Vec<OverrideGrant>) =
                    std::mem::take(&mut o.grants).into_iter().partition(|g| g.reason == mine);
                o.grants = kept;
                o.ended.extend(gone);
            }
            _ => {}
        }
    }
    if let Some(o) = out.as_mut() {
        let ended: Vec<i64> = ends.iter().map(|e| e.request_id).collect();
        o.requests.retain(|r| !ended.contains(&r.id));
    }
    (out, ends)
}

/// The requests a plan opens for `identity`: one per role with `approval` whose condition it
/// matches (`gated`) and that has no open request yet, asked by the policy (`via` birthright)
/// with the role's stages (and one per flagged SoD rule) and its `max_duration`. A role that
/// cannot be asked (a `block` SoD rule, no approver, access a review revoked) gets no request,
/// and the reason goes into `audit`: nothing is granted either way until a person approves.
pub(crate) fn birthright_opens(
    engine: &Engine<'_>,
    identity: &Identity,
    overrides: &Overrides,
    gated: &[usize],
    have: &BTreeSet<Entitlement>,
    people: &dyn People,
    audit: &mut Vec<AuditEntry>,
) -> Vec<NewRequest> {
    let policy = engine.policy;
    let mut out = Vec::new();
    for role in gated.iter().filter_map(|&r| policy.roles.get(r)) {
        if overrides.requests.iter().any(|r| r.role == role.id) {
            continue;
        }
        let not_opened = |why: String| {
            AuditEntry::new("policy", "request.not_opened", "refused").identity(&identity.id).reason(format!(
                "the `when` of role `{}` matches, but it needs approval and no request can be opened: {why}; nothing is granted",
                role.id
            ))
        };
        if let Some(e) = role.grant.iter().find(|e| overrides.revoked.contains(*e)) {
            audit.push(not_opened(format!("`{e}` was revoked by a certification review")));
            continue;
        }
        let prediction = decide::predict(policy, have, &role.grant);
        if let Some(r) = prediction.refusal(&role.id, &identity.id) {
            audit.push(not_opened(r.message));
            continue;
        }
        let flagged: Vec<(&str, Option<&str>)> = prediction
            .flags
            .iter()
            .map(|h| (h.rule.as_str(), policy.sod.iter().find(|s| s.id == h.rule).and_then(|s| s.owner.as_deref())))
            .collect();
        let stages =
            match decide::stages(people, role, &person(engine, identity), desired::BIRTHRIGHT_REQUESTER, &flagged) {
                Ok(s) => s,
                Err(r) => {
                    audit.push(not_opened(r.message));
                    continue;
                }
            };
        let mut extra = recorded(&prediction.recorded, &identity.id, "at request");
        for h in &prediction.flags {
            extra.push(AuditEntry::new("policy", "sod.flagged", "flagged").identity(&identity.id).reason(format!(
                "at request: sod rule `{}` (flag) conflicts: {}; an extra approval stage accepts the risk",
                h.rule,
                h.conflicting.join(", ")
            )));
        }
        out.push(NewRequest {
            role: role.id.clone(),
            identity: identity.id.to_string(),
            requester: desired::BIRTHRIGHT_REQUESTER.to_string(),
            via: desired::BIRTHRIGHT_VIA.to_string(),
            reason: format!("the `when` of role `{}` matches; the role needs approval before it is granted", role.id),
            duration_secs: role.max_duration,
            entitlements: role.grant.iter().map(ToString::to_string).collect(),
            stages,
            audit: extra,
        });
    }
    out
}

fn person(engine: &Engine<'_>, i: &Identity) -> Person {
    let schema = &engine.config.schema;
    let attr = |name: &str| schema.slot(name).and_then(|s| i.attrs.get(s)).map(str::to_string);
    Person { id: i.id.to_string(), username: attr("username"), status: i.status, manager_id: attr("manager_id") }
}

/// A new request, as asked.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub role: &'a str,
    pub identity: &'a str,
    pub reason: &'a str,
    /// `2s`, `30m`, `8h`; none: the role's `max_duration`.
    pub duration: Option<&'a str>,
}

fn refused(code: Code, message: impl Into<String>) -> EngineError {
    EngineError::Refused(code, message.into())
}

/// What the identity holds and is desired to hold now: the SoD prediction's base.
fn have(engine: &Engine<'_>, identity: &Identity) -> Result<BTreeSet<Entitlement>> {
    let held = engine.store.holdings(&identity.id)?;
    let overrides = desired::overrides(engine, Some(&[&identity.id]))?.remove(&*identity.id).unwrap_or_default();
    let (want, _) = desired::for_identity(engine, identity, &held, &overrides, &mut Scratch::default());
    let mut out: BTreeSet<Entitlement> = held
        .iter()
        .flat_map(|(t, a)| a.grants.iter().map(move |g| Entitlement { target: t.clone(), name: g.clone() }))
        .collect();
    for (t, m) in &want {
        out.extend(m.keys().map(|n| Entitlement { target: t.clone(), name: n.clone() }));
    }
    Ok(out)
}

/// Refuses a request for access a certification review revoked: while the review's
/// `manual_override` exception (`review:ITEM`) is not resolved, planning never desires that
/// access (`desired::Overrides::revoked`), so the request would be granted with nothing granted.
/// The refusal names the exception to resolve first.
fn not_review_revoked(engine: &Engine<'_>, identity: &str, asked: &[Entitlement], when: &str) -> Result<()> {
    let revoked = desired::overrides(engine, Some(&[identity]))?.remove(identity).unwrap_or_default().revoked;
    let Some(e) = asked.iter().find(|e| revoked.contains(*e)) else {
        return Ok(());
    };
    let mut named = None;
    for x in engine.store.exceptions(true)? {
        let Some(item) = x.subject.strip_prefix("review:").and_then(|i| i.parse::<i64>().ok()) else {
            continue;
        };
        if x.kind != tenure_core::ExceptionKind::ManualOverride
            || x.identity.as_deref() != Some(identity)
            || x.target.as_deref() != Some(e.target.as_str())
        {
            continue;
        }
        if engine.store.campaign_item(item).is_ok_and(|i| i.entitlement == e.name) {
            named = Some((x.id, x.subject));
            break;
        }
    }
    let which = named.map_or_else(
        || "its certification review's `manual_override` exception".to_string(),
        |(id, subject)| format!("exception {id} (`{subject}`)"),
    );
    Err(refused(
        Code::RequestRefused,
        format!(
            "{when}: `{e}` of `{identity}` was revoked by a certification review and stays revoked until \
             {which} is resolved (`tenure exception resolve`); resolve it first, then ask again"
        ),
    ))
}

/// Audit records of `mode = "record"` SoD rules a request would violate (nothing is refused).
fn recorded(hits: &[tenure_policy::SodHit], identity: &str, when: &str) -> Vec<AuditEntry> {
    hits.iter()
        .map(|h| {
            AuditEntry::new("policy", "sod.recorded", "recorded").identity(identity).reason(format!(
                "{when}: sod rule `{}` ({:?}, mode = record) would be violated: {}; recorded, not enforced",
                h.rule,
                h.action,
                h.conflicting.join(", ")
            ))
        })
        .collect()
}

/// Asks for `ask.role` for `ask.identity` as `requester`. Refused (changing nothing) when the
/// role is unknown or not requestable, the identity unknown or terminated, the duration longer
/// than `max_duration`, a `block` SoD rule would be violated, the same role is already open for
/// the identity, or no approver can be resolved.
pub fn create(engine: &Engine<'_>, ask: &Ask<'_>, requester: &Decider) -> Result<proto::Request> {
    let policy = engine.policy;
    let requestable = || {
        let names: Vec<&str> = policy.roles.iter().filter(|r| r.requestable).map(|r| r.id.as_str()).collect();
        if names.is_empty() { "none".to_string() } else { names.join(", ") }
    };
    let role = policy.role(ask.role).ok_or_else(|| {
        refused(Code::NotFound, format!("unknown role `{}`; requestable roles: {}", ask.role, requestable()))
    })?;
    if !role.requestable {
        return Err(refused(
            Code::RequestRefused,
            format!("role `{}` is not requestable; requestable roles: {}", role.id, requestable()),
        ));
    }
    if ask.reason.trim().is_empty() {
        return Err(EngineError::Invalid("a request needs a reason (`--reason TEXT`)".into()));
    }
    let identity = engine.store.identity(&engine.config.schema, ask.identity)?.ok_or_else(|| {
        refused(Code::NotFound, format!("unknown identity `{}`", tenure_core::text::quote(ask.identity)))
    })?;
    if identity.status == Status::Terminated {
        return Err(refused(
            Code::RequestRefused,
            format!("identity `{}` is terminated; nothing can be requested for it", identity.id),
        ));
    }
    let asked = match ask.duration {
        None => None,
        Some(d) => Some(parse_duration(d).ok_or_else(|| {
            EngineError::Invalid(format!(
                "duration `{}` is not a duration like `2s`, `30m`, `8h` or `7d`",
                tenure_core::text::quote(d)
            ))
        })?),
    };
    let duration = decide::duration(role, asked, ask.duration)?;
    not_review_revoked(engine, &identity.id, &role.grant, &format!("role `{}` cannot be requested", role.id))?;
    let open = engine.store.requests(true)?;
    if let Some(o) = open.iter().find(|r| r.identity == *identity.id && r.role == role.id) {
        return Err(refused(
            Code::Conflict,
            format!("request {} for role `{}` of `{}` is already {}", o.id, role.id, identity.id, o.state),
        ));
    }
    let prediction = decide::predict(policy, &have(engine, &identity)?, &role.grant);
    if let Some(r) = prediction.refusal(&role.id, &identity.id) {
        return Err(r.into());
    }
    let flagged: Vec<(&str, Option<&str>)> = prediction
        .flags
        .iter()
        .map(|h| (h.rule.as_str(), policy.sod.iter().find(|s| s.id == h.rule).and_then(|s| s.owner.as_deref())))
        .collect();
    let people = StorePeople(engine);
    let stages = decide::stages(&people, role, &person(engine, &identity), &requester.name, &flagged)?;
    let mut audit = recorded(&prediction.recorded, &identity.id, "at request");
    for h in &prediction.flags {
        audit.push(AuditEntry::new("policy", "sod.flagged", "flagged").identity(&identity.id).reason(format!(
            "at request: sod rule `{}` (flag) conflicts: {}; an extra approval stage accepts the risk",
            h.rule,
            h.conflicting.join(", ")
        )));
    }
    let rec = engine.store.create_request(&NewRequest {
        role: role.id.clone(),
        identity: identity.id.to_string(),
        requester: requester.name.clone(),
        via: requester.via_text(),
        reason: ask.reason.to_string(),
        duration_secs: duration,
        entitlements: role.grant.iter().map(ToString::to_string).collect(),
        stages,
        audit,
    })?;
    Ok(view(&rec))
}

/// The requests (the open ones only: pending and granted), newest first.
pub fn list(engine: &Engine<'_>, open_only: bool) -> Result<Vec<proto::Request>> {
    Ok(engine.store.requests(open_only)?.iter().map(view).collect())
}

/// The request whose stage is approval `approval_id`, with that stage, if it is a request's.
fn stage_of(engine: &Engine<'_>, approval_id: i64) -> Result<(RequestRecord, StageRecord)> {
    let a = engine.store.approval(approval_id)?;
    if a.kind != ApprovalKind::Request {
        return Err(EngineError::Invalid(format!("approval {approval_id} is a {} approval, not a request's", a.kind)));
    }
    if a.state != ApprovalState::Pending {
        return Err(refused(Code::Conflict, format!("approval {approval_id} is {}, not pending", a.state)));
    }
    let rec = engine
        .store
        .request_by_approval(approval_id)?
        .ok_or_else(|| refused(Code::NotFound, format!("the request of approval {approval_id}")))?;
    let stage = rec
        .stages
        .iter()
        .find(|s| s.approval_id == Some(approval_id))
        .cloned()
        .ok_or_else(|| refused(Code::NotFound, format!("the stage of approval {approval_id}")))?;
    Ok((rec, stage))
}

/// Approves the request stage that is approval `approval_id`, as `decider`. Refused (changing
/// nothing) for the identity itself, the requester, anyone but the stage's resolved approver, a
/// terminated identity, and a `block` SoD conflict that arose since the request. The last stage
/// plans the grant.
pub fn approve(engine: &Engine<'_>, approval_id: i64, decider: &Decider) -> Result<proto::Request> {
    let (rec, stage) = stage_of(engine, approval_id)?;
    let people = StorePeople(engine);
    decide::may_approve(&people, &decider.name, &stage.approver, &rec.identity, &rec.requester)?;
    let identity = engine
        .store
        .identity(&engine.config.schema, &rec.identity)?
        .ok_or_else(|| refused(Code::NotFound, format!("unknown identity `{}`", rec.identity)))?;
    if identity.status == Status::Terminated {
        return Err(refused(
            Code::RequestRefused,
            format!("identity `{}` is terminated; the request cannot be granted", identity.id),
        ));
    }
    let last = !rec.stages.iter().any(|s| s.stage > stage.stage && s.state == tenure_core::StageState::Waiting);
    let mut d = StageApproval {
        approval_id,
        by: decider.name.clone(),
        via: decider.via_text(),
        grant: None,
        exceptions: Vec::new(),
        audit: Vec::new(),
    };
    if last {
        let requested: Vec<Entitlement> = rec.entitlements.iter().filter_map(|e| Entitlement::parse(e).ok()).collect();
        not_review_revoked(engine, &identity.id, &requested, &format!("request {} cannot be granted", rec.id))?;
        let prediction = decide::predict(engine.policy, &have(engine, &identity)?, &requested);
        if let Some(r) = prediction.refusal(&rec.role, &identity.id) {
            return Err(r.into());
        }
        // A flagged conflict that arose after the request was made has had no stage of its own:
        // its owner has not accepted the risk, so the request cannot be granted as it stands.
        if let Some(h) =
            prediction.flags.iter().find(|h| !rec.stages.iter().any(|s| s.rule == format!("sod:{}", h.rule)))
        {
            return Err(refused(
                Code::SodConflict,
                format!(
                    "since request {} was made, role `{}` for `{}` would combine {}, which sod rule `{}` flags; \
                     its risk has no approval stage: reject this request and ask again",
                    rec.id,
                    rec.role,
                    identity.id,
                    h.conflicting.join(" and "),
                    h.rule
                ),
            ));
        }
        d.audit.extend(recorded(&prediction.recorded, &identity.id, &format!("request {} at approval", rec.id)));
        for h in &prediction.flags {
            let owner = rec
                .stages
                .iter()
                .find(|s| s.rule == format!("sod:{}", h.rule))
                .map_or_else(|| decider.name.clone(), |s| s.approver.clone());
            let target = h.conflicting.first().and_then(|c| c.split_once(':')).map(|(t, _)| t.to_string());
            d.exceptions.push(AcceptedRisk {
                subject: format!("request:{}:sod:{}", rec.id, h.rule),
                identity: identity.id.to_string(),
                target,
                owner,
                reason: format!(
                    "request {}: sod rule `{}` (flag) accepted for role `{}`: {}",
                    rec.id,
                    h.rule,
                    rec.role,
                    h.conflicting.join(", ")
                ),
            });
        }
        let mut overrides =
            desired::overrides(engine, Some(&[&identity.id]))?.remove(&*identity.id).unwrap_or_default();
        overrides.grants.extend(grants_of(&rec));
        d.grant = Some(plan_identity(engine, &identity, &overrides, &decider.actor(), &rec, "approved")?);
    }
    Ok(view(&engine.store.approve_stage(&engine.config.schema, &d)?))
}

/// Rejects the request stage that is approval `approval_id`, as `decider`, with `reason`: the
/// stage's approver may, and so may the requester (withdrawing their own request).
pub fn reject(engine: &Engine<'_>, approval_id: i64, decider: &Decider, reason: &str) -> Result<()> {
    let (rec, stage) = stage_of(engine, approval_id)?;
    let people = StorePeople(engine);
    let withdraws = crate::people::same_name(&decider.name, &rec.requester)
        || people.named(&decider.name).is_some_and(|p| decide::is(&p, &rec.requester));
    if !withdraws {
        match decide::may_approve(&people, &decider.name, &stage.approver, &rec.identity, &rec.requester) {
            Ok(()) => {}
            // The identity may turn down what was asked for it.
            Err(r) if r.code == Code::SelfApproval => {}
            Err(r) => return Err(r.into()),
        }
    }
    Ok(engine.store.reject_via(approval_id, &decider.name, &decider.via_text(), reason)?)
}

/// Revokes request `id` early, as `decider`: a granted one is planned for revocation (verified
/// like any), a pending one simply ends.
pub fn revoke(engine: &Engine<'_>, id: i64, decider: &Decider, reason: &str) -> Result<proto::Request> {
    if reason.trim().is_empty() {
        return Err(EngineError::Invalid("revoking a request needs a reason (`--reason TEXT`)".into()));
    }
    let rec = engine.store.request(id)?;
    if !matches!(rec.state, RequestState::Granted | RequestState::Pending) {
        return Err(refused(
            Code::Conflict,
            format!("request {id} is {}; only a pending or granted request can be revoked", rec.state),
        ));
    }
    let why = format!("revoked early by `{}` via {}: {reason}", decider.name, decider.via_text());
    Ok(view(&end(engine, &rec, RequestState::Revoked, &decider.actor(), &why)?))
}

/// The granted requests whose expiry has come by the store's clock, soonest first (decided by
/// `schedule::select::expired_requests`).
pub fn due(store: &dyn tenure_store::Backend) -> Result<Vec<i64>> {
    let grants = crate::schedule::select::time_bound(&store.request_grants(None)?);
    Ok(crate::schedule::select::expired_requests(&grants, store.clock().now()))
}

/// Ends every granted request whose expiry has come (by the store's clock), planning each
/// one's revocation, as `actor`. Returns the requests ended.
pub fn expire_due(engine: &Engine<'_>, actor: &str) -> Result<Vec<proto::Request>> {
    let mut out = Vec::new();
    for id in due(engine.store)? {
        let rec = engine.store.request(id)?;
        let why = format!("its expiry {} has come", rec.expires_at.as_deref().unwrap_or("?"));
        out.push(view(&end(engine, &rec, RequestState::Expired, actor, &why)?));
    }
    Ok(out)
}

fn end(engine: &Engine<'_>, rec: &RequestRecord, state: RequestState, actor: &str, why: &str) -> Result<RequestRecord> {
    let identity = engine.store.identity(&engine.config.schema, &rec.identity)?;
    let batch = match (rec.state, identity) {
        (RequestState::Granted, Some(identity)) => {
            let mut overrides =
                desired::overrides(engine, Some(&[&identity.id]))?.remove(&*identity.id).unwrap_or_default();
            let mine = format!("request:{}", rec.id);
            overrides.grants.retain(|g| g.reason != mine);
            overrides.ended.retain(|g| g.reason != mine);
            overrides.ended.extend(grants_of(rec));
            // A birthright grant that expires while its role's condition still matches is asked
            // again (a new request, approved again before it is granted again).
            if state == RequestState::Expired {
                overrides.requests.retain(|r| r.id != rec.id);
            }
            Some(plan_identity(engine, &identity, &overrides, actor, rec, state.as_str())?)
        }
        _ => None,
    };
    Ok(engine.store.end_request(
        &engine.config.schema,
        &RequestEnd {
            request_id: rec.id,
            state,
            by: actor.to_string(),
            reason: why.to_string(),
            batch,
            audit: Vec::new(),
        },
    )?)
}

fn grants_of(rec: &RequestRecord) -> Vec<OverrideGrant> {
    rec.entitlements
        .iter()
        .filter_map(|e| Entitlement::parse(e).ok())
        .map(|entitlement| OverrideGrant { entitlement, reason: format!("request:{}", rec.id) })
        .collect()
}

/// The identity planned as it is, with `overrides`: one `update` event noting the request, as
/// a batch recorded under the identity's source (so a concurrent import of it fails as stale).
fn plan_identity(
    engine: &Engine<'_>,
    identity: &Identity,
    overrides: &Overrides,
    actor: &str,
    rec: &RequestRecord,
    what: &str,
) -> Result<Batch> {
    let source = engine
        .store
        .identity_source(&identity.id)?
        .ok_or_else(|| refused(Code::NotFound, format!("unknown identity `{}`", identity.id)))?;
    let base_import = engine.store.last_import(&source)?;
    let holdings = engine.store.holdings(&identity.id)?;
    let queued = engine.store.queued(Some(&[&identity.id]))?;
    let q = queued.get(&*identity.id).map_or(&[][..], Vec::as_slice);
    let event = Event {
        kind: EventKind::Update,
        identity: identity.clone(),
        previous: Some(identity.clone()),
        changes: Vec::new(),
        significant: false,
        note: Some(format!("access request {} {what} (role `{}`)", rec.id, rec.role)),
    };
    // As every plan: a linked account is taken over, a target correlation holds back gets nothing.
    let overlay = crate::correlation::Overlay::load(engine)?;
    let roster = Roster::default();
    let people = BatchPeople { engine, roster: &roster };
    let planned = plan_event(engine, &event, &holdings, q, overrides, &mut Scratch::default(), &overlay, &people);
    Ok(Batch {
        actor: actor.to_string(),
        source,
        file: format!("request {}", rec.id),
        sha256: String::new(),
        summary: serde_json::json!({ "request": rec.id, "role": rec.role, "what": what }),
        state: BatchState::Planned,
        events: vec![planned],
        audit: Vec::new(),
        base_import,
        supersede: Vec::new(),
        ingests: Default::default(),
        correlation: Vec::new(),
    })
}

/// A stored request as the wire type.
pub fn view(r: &RequestRecord) -> proto::Request {
    proto::Request {
        id: r.id,
        role: r.role.clone(),
        identity: r.identity.clone(),
        requester: r.requester.clone(),
        via: r.via.clone(),
        reason: r.reason.clone(),
        duration_secs: r.duration_secs,
        entitlements: r.entitlements.clone(),
        state: r.state,
        created_at: r.created_at.clone(),
        decided_at: r.decided_at.clone(),
        expires_at: r.expires_at.clone(),
        ended_at: r.ended_at.clone(),
        ended_by: r.ended_by.clone(),
        end_reason: r.end_reason.clone(),
        stages: r
            .stages
            .iter()
            .map(|s| proto::RequestStage {
                stage: s.stage + 1,
                rule: s.rule.clone(),
                approver: s.approver.clone(),
                approval_id: s.approval_id,
                state: s.state,
                decided_by: s.decided_by.clone(),
                decided_at: s.decided_at.clone(),
                via: s.via.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
