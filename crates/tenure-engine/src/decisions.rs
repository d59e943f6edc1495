//! What a person decides: approving or rejecting what the guard held or an access request's
//! stage, finishing a manual ticket with evidence, and resolving or accepting an exception of
//! the register. Each decision is recorded with the person's name in the audit trail, and for
//! approvals how they were identified ([`Decider`]: through the API, the token's name, never a
//! name from the body; through the CLI, `--as` or the user).

use crate::Engine;
pub use crate::requests::decide::{Decider, Via};
use tenure_core::ApprovalKind;
use tenure_core::error::Code;
use tenure_proto as proto;
use tenure_store::{BatchIds, Queue};

/// What an approval released.
#[derive(Debug, Clone)]
pub enum Approved {
    /// A held snapshot batch, now applied: its events, operations and cases.
    Batch(BatchIds),
    /// Held reconciliation remediation: this many operations, now pending.
    Remediation(usize),
    /// A stage of an access request: the request as it stands now (granted after its last
    /// stage, its grant planned).
    Request(Box<proto::Request>),
}

/// Approves pending approval `id` as `decider`: a held batch is applied (planned against the
/// current state), held remediation is released to the executor (a certification review's held
/// revocations never by whoever decided them), an access request's stage is
/// approved if `decider` is its resolved approver (and the grant planned after the last stage).
/// Nobody releases a held batch or held remediation that changes their own identity's access or
/// that they submitted (`self_approval`, nothing changed).
pub fn approve(engine: &Engine<'_>, queue: &dyn Queue, id: i64, decider: &Decider) -> crate::Result<Approved> {
    let a = engine.store.approval(id)?;
    match a.kind {
        ApprovalKind::Remediation => {
            not_a_reviewer_of(engine, id, decider)?;
            not_their_own(engine, &a, decider, Decision::Release)?;
            Ok(Approved::Remediation(queue.release_remediation_as(id, &decider.name, &decider.actor())?))
        }
        ApprovalKind::Request => Ok(Approved::Request(Box::new(crate::requests::approve(engine, id, decider)?))),
        // The release checks who decides itself ([`not_their_own`]), whoever calls it.
        ApprovalKind::Batch => Ok(Approved::Batch(crate::import::approve_as(engine, id, decider)?)),
    }
}

/// What a person does with a held batch or held remediation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Release,
    Discard,
}

/// The identities whose access a held batch or held remediation would change: the identities of
/// the batch's held events, or of the held operations of the remediation's cases.
fn affected(engine: &Engine<'_>, a: &tenure_store::ApprovalRecord) -> crate::Result<Vec<tenure_core::Identity>> {
    let schema = &engine.config.schema;
    match a.kind {
        ApprovalKind::Batch => {
            Ok(engine.store.held_events(schema, a.subject)?.into_iter().map(|h| h.identity).collect())
        }
        ApprovalKind::Remediation => {
            let cases: Vec<i64> = a
                .summary
                .get("cases")
                .and_then(serde_json::Value::as_array)
                .map(|v| v.iter().filter_map(serde_json::Value::as_i64).collect())
                .unwrap_or_default();
            let mut ids: Vec<String> = Vec::new();
            for c in cases {
                let filter = tenure_store::OpFilter {
                    case_id: Some(c),
                    states: vec![tenure_core::OpState::Held],
                    ..Default::default()
                };
                for op in engine.store.operations(&filter)? {
                    if !ids.contains(&op.identity) {
                        ids.push(op.identity);
                    }
                }
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(i) = engine.store.identity(schema, &id)? {
                    out.push(i);
                }
            }
            Ok(out)
        }
        ApprovalKind::Request => Ok(Vec::new()),
    }
}

/// Refuses `decider` deciding held batch or remediation `a` about their own access: releasing
/// (or discarding, which keeps what it would have taken away) one that changes the access of
/// the identity their name stands for, and releasing one they submitted (the importing token or
/// `--as` name, the pushing token, whoever planned the fixes). The guard held it so that a
/// second person looks. Names are compared as [`crate::people`] compares them.
pub(crate) fn not_their_own(
    engine: &Engine<'_>,
    a: &tenure_store::ApprovalRecord,
    decider: &Decider,
    decision: Decision,
) -> crate::Result<()> {
    let schema = &engine.config.schema;
    let name = decider.name.as_str();
    let shown = tenure_core::text::quote(name);
    let id = a.id;
    if decision == Decision::Release {
        for actor in crate::import::submitters_of(a) {
            let Some(who) = crate::people::person_of_actor(&actor) else { continue };
            if crate::people::same_person(engine.store, schema, name, who)? {
                return Err(crate::EngineError::Refused(
                    Code::SelfApproval,
                    format!(
                        "`{shown}` submitted what approval {id} holds (as `{}`); someone else approves \
                         (self-approval is refused)",
                        tenure_core::text::quote(&actor)
                    ),
                ));
            }
        }
    }
    let person = crate::people::resolve(engine.store, schema, name)?;
    for i in affected(engine, a)? {
        let theirs = crate::people::names_identity(schema, name, &i)
            || person.as_ref().is_some_and(|p| crate::people::same_name(&p.id, &i.id));
        if theirs {
            let what = if decision == Decision::Release { "approves" } else { "decides" };
            return Err(crate::EngineError::Refused(
                Code::SelfApproval,
                format!(
                    "approval {id} changes the access of identity `{}`, whom `{shown}` names; someone else {what} \
                     (self-approval is refused)",
                    i.id
                ),
            ));
        }
    }
    Ok(())
}

/// Refuses `decider` releasing certification review revocations they decided themselves: the
/// guard held them so that a second person looks (`self_approval`, nothing changed). The
/// decider is compared with each item's recorded decider as [`crate::people::same_person`]
/// compares names: the same name or the same identity, case-folded.
fn not_a_reviewer_of(engine: &Engine<'_>, id: i64, decider: &Decider) -> crate::Result<()> {
    let deciders = engine.store.held_review_deciders(id)?;
    if deciders.is_empty() {
        return Ok(());
    }
    let name = decider.name.as_str();
    let schema = &engine.config.schema;
    let mut mine: Vec<String> = Vec::new();
    for (item, by) in &deciders {
        if crate::people::same_person(engine.store, schema, name, by)? {
            mine.push(item.to_string());
        }
    }
    if mine.is_empty() {
        return Ok(());
    }
    Err(crate::EngineError::Refused(
        Code::SelfApproval,
        format!(
            "`{name}` decided review item(s) {} whose revocation approval {id} releases; someone else approves \
             (self-approval is refused)",
            mine.join(", ")
        ),
    ))
}

/// Rejects pending approval `id` as `decider`, with `reason`: what it held is discarded (never
/// by an identity whose access it changes); an access request is rejected if `decider` is its
/// stage's approver, the identity, or the requester.
pub fn reject(engine: &Engine<'_>, id: i64, decider: &Decider, reason: &str) -> crate::Result<()> {
    // An approval that does not exist is the store's to refuse, as it always was (`conflict`).
    if let Ok(a) = engine.store.approval(id) {
        if a.kind == ApprovalKind::Request {
            return crate::requests::reject(engine, id, decider, reason);
        }
        // Discarding a held leaver batch keeps the leaver's access: not the leaver's call. Whoever
        // submitted it may withdraw it.
        if a.state == tenure_core::ApprovalState::Pending {
            not_their_own(engine, &a, decider, Decision::Discard)?;
        }
    }
    Ok(engine.store.reject_via(id, &decider.name, &decider.via_text(), reason)?)
}

/// Marks manual ticket `id` done by `by`, with `evidence` of what was done; its operation
/// counts as verified.
pub fn complete_ticket(queue: &dyn Queue, id: i64, by: &str, evidence: &str) -> crate::Result<proto::Ticket> {
    Ok(crate::views::ticket(&queue.complete_ticket(id, by, evidence)?))
}

/// A person's decision on an exception of the register.
#[derive(Debug, Clone)]
pub struct ExceptionDecision<'a> {
    pub id: i64,
    pub closing: tenure_store::Closing,
    /// Who decided, by name (a CLI user, a token's name).
    pub by: &'a str,
    /// How the audit trail names them: `user:NAME` from the CLI, `token:NAME` from the API.
    pub actor: &'a str,
    pub reason: &'a str,
    /// `YYYY-MM-DD` or RFC 3339: when an accepted risk is to be looked at again.
    pub due: Option<&'a str>,
}

/// Resolves or accepts exception `id` (audited with who and why). The reason is required and
/// checked like every field; a due date must be a date in the future and is only for an
/// acceptance. An unknown id is `not_found`, one already closed `conflict`; nobody closes an
/// exception about their own identity's access (`self_approval`): resolving a review's
/// `manual_override` would grant the access back, accepting a `failed_revocation` would close a
/// leaver's case with the access kept. Refusals change nothing.
pub fn close_exception(
    store: &dyn tenure_store::Backend,
    schema: &tenure_core::Schema,
    d: &ExceptionDecision<'_>,
) -> crate::Result<proto::Exception> {
    use crate::EngineError::Invalid;
    if d.reason.trim().is_empty() {
        return Err(Invalid("a reason is required: say why the exception is resolved or accepted".into()));
    }
    if d.reason.len() > tenure_core::text::FIELD_LIMIT {
        return Err(Invalid(format!(
            "the reason is {} bytes; the limit is {}",
            d.reason.len(),
            tenure_core::text::FIELD_LIMIT
        )));
    }
    if tenure_core::text::has_hidden(d.reason, false) {
        return Err(Invalid("the reason holds control or invisible characters".into()));
    }
    let now = store.clock().now();
    let due = match d.due {
        None => None,
        Some(_) if d.closing == tenure_store::Closing::Resolve => {
            return Err(Invalid("a due date is for an accepted exception (`accept ... --due DATE`)".into()));
        }
        Some(text) => {
            let at = due_stamp(text).ok_or_else(|| {
                Invalid(format!("due date `{}` is not a date: expected YYYY-MM-DD or an RFC 3339 time", text.trim()))
            })?;
            if at <= now {
                return Err(Invalid(format!("due date `{}` is not in the future", text.trim())));
            }
            Some(tenure_core::clock::stamp(at))
        }
    };
    // An unknown id is the store's to refuse, as it always was.
    let about = store.exception(d.id)?.and_then(|x| x.identity).filter(|i| !i.is_empty());
    if let Some(identity) = about.as_deref()
        && crate::people::same_person(store, schema, d.by, identity)?
    {
        return Err(crate::EngineError::Refused(
            Code::SelfApproval,
            format!(
                "exception {} is about the access of identity `{}`, whom `{}` names; someone else resolves \
                 or accepts it (self-approval is refused)",
                d.id,
                tenure_core::text::quote(identity),
                tenure_core::text::quote(d.by)
            ),
        ));
    }
    let c = tenure_store::CloseException {
        id: d.id,
        closing: d.closing,
        actor: d.actor,
        by: d.by,
        reason: d.reason.trim(),
        due_at: due.as_deref(),
    };
    let x = store.close_exception(&c)?;
    Ok(crate::views::exception(&x, now))
}

/// A due date as a time: the end of a `YYYY-MM-DD` day in UTC, or an RFC 3339 time.
fn due_stamp(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let t = text.trim();
    if t.len() == 10 {
        let day = tenure_core::date::parse_date(t)?;
        return day.and_hms_opt(23, 59, 59).map(|d| d.and_utc());
    }
    tenure_core::date::parse_date(t)?;
    tenure_core::clock::parse_stamp(t)
}
