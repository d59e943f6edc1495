//! Store records as the wire types (`tenure-proto`), and the lists the CLI prints and the API
//! serves. This is the one place a record becomes something printed or served: a column the
//! store adds for itself stays inside unless a wire type grows a field for it here.

use tenure_core::audit::AuditRecord as StoredAudit;
use tenure_core::clock::parse_stamp;
use tenure_core::schema::Schema;
use tenure_core::{EventKind, ExceptionState, Identity};
use tenure_proto as proto;
use tenure_store::{
    ApprovalRecord, CaseRecord, EventRecord, ExceptionRecord, Finding, OpFilter, OpRecord, Queue, Store, TicketRecord,
};

pub fn operation(o: &OpRecord) -> proto::Operation {
    proto::Operation {
        id: o.id,
        case_id: o.case_id,
        identity: o.identity.clone(),
        target: o.target.clone(),
        kind: o.kind,
        entitlement: o.entitlement.clone(),
        reason: op_reason(&o.reason),
        idem_key: o.idem_key.clone(),
        state: o.state,
        attempts: o.attempts,
        next_attempt_at: o.next_attempt_at.clone(),
        last_error: o.last_error.clone(),
        created_at: o.created_at.clone(),
        updated_at: o.updated_at.clone(),
        verified_at: o.verified_at.clone(),
        account: o.account.clone(),
        note: o.note.clone(),
    }
}

/// The store keeps an operation's reason as a JSON object (`event`, `kind`, `rules`, and
/// `finding` for a remediation); each field is read on its own, so one the store does not
/// write is simply absent.
pub fn op_reason(v: &serde_json::Value) -> proto::OpReason {
    proto::OpReason {
        event: v.get("event").and_then(serde_json::Value::as_i64),
        finding: v.get("finding").and_then(|f| f.as_str()).map(str::to_string),
        kind: v.get("kind").and_then(|k| k.as_str()).and_then(|k| k.parse::<EventKind>().ok()),
        review: v.get("review").and_then(serde_json::Value::as_i64),
        rules: v
            .get("rules")
            .and_then(|r| r.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(str::to_string).collect())
            .unwrap_or_default(),
    }
}

pub fn case(c: &CaseRecord) -> proto::Case {
    proto::Case {
        id: c.id,
        event_id: c.event_id,
        identity: c.identity.clone(),
        kind: c.kind,
        state: c.state,
        opened_at: c.opened_at.clone(),
        closed_at: c.closed_at.clone(),
        revoke_ms: c.revoke_ms,
        ops: c.ops.clone(),
    }
}

pub fn approval(a: &ApprovalRecord) -> proto::Approval {
    proto::Approval {
        id: a.id,
        kind: a.kind,
        subject: a.subject,
        summary: a.summary.clone(),
        state: a.state,
        created_at: a.created_at.clone(),
        decided_at: a.decided_at.clone(),
        decided_by: a.decided_by.clone(),
        decision_reason: a.decision_reason.clone(),
    }
}

pub fn ticket(t: &TicketRecord) -> proto::Ticket {
    proto::Ticket {
        id: t.id,
        operation_id: t.operation_id,
        target: t.target.clone(),
        owner: t.owner.clone(),
        identity: t.identity.clone(),
        summary: t.summary.clone(),
        state: t.state,
        created_at: t.created_at.clone(),
        due_at: t.due_at.clone(),
        done_at: t.done_at.clone(),
        done_by: t.done_by.clone(),
        evidence: t.evidence.clone(),
        overdue: t.overdue,
    }
}

/// An exception as listed at `now`: its age runs until it was closed, and an open or accepted
/// one past its due date is overdue.
pub fn exception(e: &ExceptionRecord, now: chrono::DateTime<chrono::Utc>) -> proto::Exception {
    let opened = parse_stamp(&e.created_at);
    let until = e.resolved_at.as_deref().and_then(parse_stamp).filter(|_| e.state == ExceptionState::Resolved);
    let age_seconds = opened.map_or(0, |o| (until.unwrap_or(now) - o).num_seconds().max(0));
    let overdue =
        e.state != ExceptionState::Resolved && e.due_at.as_deref().and_then(parse_stamp).is_some_and(|due| due < now);
    proto::Exception {
        id: e.id,
        kind: e.kind,
        subject: e.subject.clone(),
        case_id: e.case_id,
        identity: e.identity.clone(),
        target: e.target.clone(),
        owner: e.owner.clone(),
        reason: e.reason.clone(),
        state: e.state,
        created_at: e.created_at.clone(),
        resolved_at: e.resolved_at.clone(),
        due_at: e.due_at.clone(),
        closed_by: e.closed_by.clone(),
        close_reason: e.close_reason.clone(),
        age_seconds,
        overdue,
    }
}

pub fn finding(f: &Finding) -> proto::Finding {
    proto::Finding {
        kind: f.kind,
        target: f.target.clone(),
        account: f.account.clone(),
        identity: f.identity.clone(),
        entitlement: f.entitlement.clone(),
        detail: f.detail.clone(),
    }
}

pub fn event(e: &EventRecord) -> proto::Event {
    proto::Event {
        id: e.id,
        import_id: e.import_id,
        source: e.source.clone(),
        kind: e.kind,
        identity: e.identity.clone(),
        received_at: e.received_at.clone(),
        changes: e
            .changes
            .iter()
            .map(|c| proto::Change { attribute: c.attribute.clone(), from: c.from.clone(), to: c.to.clone() })
            .collect(),
        significant: e.significant,
        note: e.note.clone(),
        state: e.state,
    }
}

pub fn audit_record(r: StoredAudit) -> proto::AuditRecord {
    let e = r.entry;
    proto::AuditRecord {
        seq: r.seq,
        at: r.at,
        actor: e.actor,
        action: e.action,
        identity: e.identity,
        target: e.target,
        entitlement: e.entitlement,
        reason: e.reason,
        approver: e.approver,
        outcome: e.outcome,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// The attributes by name; absent values are left out.
pub fn attributes(i: &Identity, schema: &Schema) -> std::collections::BTreeMap<String, String> {
    (0..i.attrs.len())
        .filter_map(|slot| Some((schema.name(slot).to_string(), i.attrs.get(slot)?.to_string())))
        .collect()
}

pub fn identity_summary(i: &Identity, schema: &Schema) -> proto::IdentitySummary {
    proto::IdentitySummary { attributes: attributes(i, schema), id: i.id.to_string(), kind: i.kind, status: i.status }
}

/// Operations matching `filter`, oldest first.
pub fn operations(store: &dyn Store, filter: &OpFilter) -> crate::Result<Vec<proto::Operation>> {
    Ok(store.operations(filter)?.iter().map(operation).collect())
}

/// Lifecycle cases, every one or only the open ones.
pub fn cases(store: &dyn Store, open_only: bool) -> crate::Result<Vec<proto::Case>> {
    Ok(store.cases(open_only)?.iter().map(case).collect())
}

/// Approvals, pending only or every one.
pub fn approvals(store: &dyn Store, pending_only: bool) -> crate::Result<Vec<proto::Approval>> {
    Ok(store.approvals(pending_only)?.iter().map(approval).collect())
}

/// Every identity, as listed.
pub fn identities(store: &dyn Store, schema: &Schema) -> crate::Result<Vec<proto::IdentitySummary>> {
    Ok(store.identities(schema, None)?.iter().map(|i| identity_summary(i, schema)).collect())
}

/// Manual tickets, open only or every one, each saying whether it is overdue now. A listing is
/// a read: it writes nothing (the `overdue` schedule records overdue tickets as exceptions).
pub fn tickets(queue: &dyn Queue, open_only: bool) -> crate::Result<Vec<proto::Ticket>> {
    Ok(queue.tickets(open_only)?.iter().map(ticket).collect())
}

/// The exceptions register, open only or every one. A listing is a read: it writes nothing (an
/// overdue ticket enters the register when the `overdue` schedule records it).
pub fn exceptions(store: &dyn tenure_store::Backend, open_only: bool) -> crate::Result<Vec<proto::Exception>> {
    let now = store.clock().now();
    Ok(store.exceptions(open_only)?.iter().map(|e| exception(e, now)).collect())
}

/// A page of identities matching `query`, in id order (the API's list).
pub fn identity_page(
    store: &dyn tenure_store::Browse,
    schema: &Schema,
    query: &tenure_store::IdentityQuery,
) -> crate::Result<Vec<proto::IdentitySummary>> {
    Ok(store.identity_page(schema, query)?.iter().map(|i| identity_summary(i, schema)).collect())
}

/// The findings of each target's latest reconciliation run.
pub fn latest_findings(store: &dyn tenure_store::Browse) -> crate::Result<Vec<proto::Finding>> {
    Ok(store.latest_findings()?.iter().map(finding).collect())
}

/// A piece of the audit trail for a streamed export: records after `after_seq`, at most `limit`.
pub fn audit_page(
    store: &dyn tenure_store::Browse,
    filter: &tenure_store::AuditFilter,
    after_seq: i64,
    limit: usize,
) -> crate::Result<Vec<proto::AuditRecord>> {
    Ok(store.audit_page(filter, after_seq, limit)?.into_iter().map(audit_record).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operations_reason_keeps_what_the_store_wrote() {
        let check = |stored: serde_json::Value, expect: &str| {
            assert_eq!(serde_json::to_string(&op_reason(&stored)).ok().as_deref(), Some(expect), "{stored}");
        };
        check(
            serde_json::json!({"event": 3, "kind": "mover", "rules": ["a", "b"]}),
            r#"{"event":3,"kind":"mover","rules":["a","b"]}"#,
        );
        check(
            serde_json::json!({"event": 9, "kind": "update", "rules": [], "finding": "retention"}),
            r#"{"event":9,"finding":"retention","kind":"update","rules":[]}"#,
        );
        check(serde_json::json!({}), r#"{"event":null,"kind":null,"rules":[]}"#);
    }
}
