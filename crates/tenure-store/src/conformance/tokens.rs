//! Conformance cases for the token table ([`crate::Tokens`]).

use super::{Failure, Outcome, Subject, World, expect_code};
use crate::NewToken;
use tenure_core::Scope;
use tenure_core::error::Code;

fn new<'a>(name: &'a str, hash: &'a str, scope: Scope, source: Option<&'a str>) -> NewToken<'a> {
    NewToken { name, hash, scope, source, created_by: "user:alice" }
}

/// Tokens are found by hash while live, never list their hash, are audited without it, and a
/// revoked name can be taken again.
pub fn tokens_are_found_by_hash_revoked_and_audited(subject: &dyn Subject) -> Outcome {
    let w = World::new(subject)?;
    let s = &w.store;
    let admin = s.create_token(&new("ci", "aa11", Scope::Admin, None))?;
    ensure_eq!(admin.scope, Scope::Admin, "scope kept");
    ensure_eq!(admin.created_at, w.now(), "created by the store's clock");
    let hr = s.create_token(&new("hr-push", "bb22", Scope::Source, Some("hr")))?;
    ensure_eq!(hr.source.as_deref(), Some("hr"), "the bound source is kept");
    expect_code(s.create_token(&new("ci", "cc33", Scope::Auditor, None)), Code::Conflict, "a live name twice")?;
    expect_code(s.create_token(&new("other", "aa11", Scope::Auditor, None)), Code::Conflict, "a hash twice")?;

    let found = s.token_by_hash("aa11")?.ok_or_else(|| Failure("the admin token is not found by hash".into()))?;
    ensure_eq!(found.name, "ci", "found by hash");
    ensure!(s.token_by_hash("nope")?.is_none(), "an unknown hash finds nothing");
    ensure!(found.last_used_at.is_none(), "never used yet");
    w.clock.advance(super::seconds(5));
    s.touch_token(found.id)?;
    let used = s.token_by_hash("aa11")?.ok_or_else(|| Failure("gone after touch".into()))?;
    ensure_eq!(used.last_used_at, Some(w.now()), "last use recorded by the store's clock");

    let names: Vec<String> = s.tokens(false)?.into_iter().map(|t| t.name).collect();
    ensure_eq!(names, vec!["ci".to_string(), "hr-push".to_string()], "listed by name");
    let revoked = s.revoke_token("ci", "user:bob")?;
    ensure_eq!(revoked.revoked_by.as_deref(), Some("user:bob"), "who revoked it");
    ensure!(s.token_by_hash("aa11")?.is_none(), "a revoked token is not found");
    expect_code(s.revoke_token("ci", "user:bob"), Code::NotFound, "revoking twice")?;
    ensure_eq!(s.tokens(false)?.len(), 1, "live tokens");
    ensure_eq!(s.tokens(true)?.len(), 2, "revoked ones too");
    s.create_token(&new("ci", "dd44", Scope::Operator, None))?;
    ensure_eq!(s.tokens(true)?.len(), 3, "a revoked name can be taken again");

    let records = w.audit_records()?;
    let actions: Vec<&str> = records.iter().map(|r| r.entry.action.as_str()).collect();
    ensure_eq!(actions, vec!["token.create", "token.create", "token.revoke", "token.create"], "audited");
    for r in &records {
        let text = format!("{:?}", r.entry);
        ensure!(!text.contains("aa11") && !text.contains("bb22") && !text.contains("dd44"), "no hash in {text}");
    }
    ensure_eq!(records.first().map(|r| r.entry.actor.as_str()), Some("user:alice"), "the creator acts");
    w.chain_verifies()
}
