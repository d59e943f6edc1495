//! `explain`: why one identity should hold what it holds, and what applying would change.
//!
//! The policy half walks each birthright role's condition tree the way the reference evaluator
//! does (`tenure_policy::reference`), recording the attribute tests that decided it: for a role
//! that matches, the tests that made it true; for one that does not, the first test that failed
//! (every failed branch under an `any`). The desired entitlements and SoD outcomes come from
//! `desired::for_identity`, the same function imports plan with, so the explanation cannot
//! disagree with what an import would do. The target half plans against what the store holds,
//! as `simulate` does; [`read_targets`] then reads each account from the live target (only
//! reads) and compares it with the desired access and with the desired mapped attributes
//! (`tenure_core::attributes`: each attribute that would change, `live -> desired`;
//! `targets_read` says whether it ran). Nothing is changed.

use crate::{Engine, EngineError, Result, desired};
use std::collections::BTreeMap;
use tenure_core::plan;
use tenure_core::{Identity, OpKind, Schema, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Cond, DateOp, SodAction, Test, reference};
use tenure_proto as proto;
use tenure_store::OpFilter;

/// Explains identity `id`, limited to `target` when given. `None` when there is no such identity.
pub fn explain(engine: &Engine<'_>, id: &str, target: Option<&str>) -> Result<Option<proto::Explanation>> {
    if let Some(t) = target
        && engine.config.target(t).is_none()
    {
        return Err(EngineError::UnknownTarget(t.to_string(), crate::reconcile::target_names(engine.config)));
    }
    let schema = &engine.config.schema;
    let Some(identity) = engine.store.identity(schema, id)? else {
        return Ok(None);
    };
    let last_event = engine.store.events(id)?.iter().max_by_key(|e| e.id).map(crate::views::event);
    let changes: &[proto::Change] = last_event.as_ref().map_or(&[], |e| e.changes.as_slice());
    let keep = |t: &str| target.is_none_or(|x| x == t);
    let mut matched = Vec::new();
    let mut unmatched = Vec::new();
    for role in &engine.policy.roles {
        let Some(cond) = &role.when else { continue };
        let grants: Vec<String> = role.grant.iter().filter(|e| keep(&e.target)).map(ToString::to_string).collect();
        if target.is_some() && grants.is_empty() {
            continue;
        }
        let holds = reference::eval(cond, &identity);
        let mut facts = Vec::new();
        why(cond, &identity, schema, holds, false, &mut facts);
        mark_changes(&mut facts, changes);
        let trace = proto::RoleTrace { role: role.id.clone(), grants, facts };
        if holds { matched.push(trace) } else { unmatched.push(trace) }
    }

    // As every plan does: a linked account Tenure holds nothing for yet is the account as read,
    // and a target where correlation holds the identity back gets nothing planned.
    let stored = engine.store.holdings(id)?;
    let overlay = crate::correlation::Overlay::load(engine)?;
    let held = overlay.holdings(id, &stored).unwrap_or(stored);
    let overrides = desired::overrides(engine, Some(&[id]))?.remove(id).unwrap_or_default();
    let (mut want, hits) = desired::for_identity(engine, &identity, &held, &overrides, &mut Scratch::default());
    want.retain(|t, _| keep(t));
    let mut wanted = desired::names(&want);
    wanted.retain(|t, _| overlay.held_back(engine, &identity, t, &held).is_none());
    let sod = hits
        .into_iter()
        .map(|h| proto::SodOutcome {
            rule: h.rule,
            action: match h.action {
                SodAction::Block => "block".into(),
                SodAction::Flag => "flag".into(),
            },
            conflicting: h.conflicting,
            refused: h.refused,
        })
        .collect();

    let ops = engine.store.operations(&OpFilter { identity: Some(id.to_string()), ..OpFilter::default() })?;
    let p = plan::plan(identity.status, &held, &wanted);
    let mut targets: BTreeMap<String, proto::TargetEffect> = BTreeMap::new();
    let names = held.keys().chain(want.keys()).filter(|t| keep(t)).cloned().collect::<std::collections::BTreeSet<_>>();
    for t in names {
        let a = held.get(&t);
        let account = a.and_then(|a| a.name.clone()).or_else(|| {
            engine.config.target(&t).and_then(|c| identity.attrs.get(c.account_attribute)).map(str::to_string)
        });
        let effect = proto::TargetEffect {
            account,
            held: proto::AccountView {
                enabled: a.is_some_and(|a| a.exists && a.enabled),
                exists: a.is_some_and(|a| a.exists),
                grants: a.map(|a| a.grants.iter().cloned().collect()).unwrap_or_default(),
            },
            open_operations: ops.iter().filter(|o| o.target == t && !o.state.is_settled()).count(),
            changes: Vec::new(),
            live: None,
        };
        targets.insert(t, effect);
    }
    for op in p.ops {
        if !engine.config.target(&op.target).is_some_and(|t| t.kind.supports(op.kind)) {
            continue;
        }
        let Some(effect) = targets.get_mut(&op.target) else { continue };
        let rules = match (&op.entitlement, op.kind) {
            (Some(g), OpKind::Grant) => want.get(&op.target).and_then(|m| m.get(g)).cloned().unwrap_or_default(),
            _ => Vec::new(),
        };
        effect.changes.push(proto::PlannedChange { kind: op.kind, entitlement: op.entitlement, rules });
    }
    if identity.status == Status::Terminated {
        want.clear();
    }
    Ok(Some(proto::Explanation {
        id: identity.id.to_string(),
        kind: identity.kind,
        status: identity.status,
        last_event,
        matched,
        unmatched,
        desired: want,
        sod,
        targets,
        targets_read: false,
    }))
}

/// Reads each target of `x` live and records the account found there (`TargetEffect::live`):
/// found by the account name Tenure knows, with the correlation id the target stores compared
/// with the identity, and its grants against the desired ones. Only reads; a target that cannot
/// be read says why and the others go on. Sets `targets_read`.
pub async fn read_targets(engine: &Engine<'_>, x: &mut proto::Explanation, timeout: std::time::Duration) -> Result<()> {
    let Some(identity) = engine.store.identity(&engine.config.schema, &x.id)? else {
        return Ok(());
    };
    let managed = crate::reconcile::correlate::managed(engine.config, engine.policy);
    for (t, effect) in &mut x.targets {
        let want: std::collections::BTreeSet<&String> =
            x.desired.get(t).map(|m| m.keys().collect()).unwrap_or_default();
        let failed = |e: String| proto::LiveAccount {
            found: false,
            correlated_by: String::new(),
            enabled: false,
            grants: Vec::new(),
            missing: Vec::new(),
            extra: Vec::new(),
            unmanaged: Vec::new(),
            attributes: Vec::new(),
            error: Some(e),
        };
        let Some(cfg) = engine.config.target(t) else { continue };
        let spec = match crate::executor::spec_of(engine.config, t, &x.id, effect.account.as_deref(), Some(&identity)) {
            Ok(s) => s,
            Err(e) => {
                effect.live = Some(failed(e));
                continue;
            }
        };
        let conn = match tenure_connect::connect(cfg).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                effect.live = Some(failed("a manual target: there is nothing to read".into()));
                continue;
            }
            Err(e) => {
                effect.live = Some(failed(e.to_string()));
                continue;
            }
        };
        let state = match tokio::time::timeout(timeout, conn.read_account(&spec)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                effect.live = Some(failed(e.to_string()));
                continue;
            }
            Err(_) => {
                effect.live = Some(failed(format!("no answer within {}s", timeout.as_secs())));
                continue;
            }
        };
        // The mapped attributes as the live account holds them, against what the identity's
        // attributes make of them: the same function the create and `update_attributes` use.
        let attributes = match &state {
            None => Vec::new(),
            Some(_) => match tokio::time::timeout(timeout, conn.read_attributes(&spec)).await {
                Ok(Ok(Some(live))) => {
                    let desired = tenure_core::attributes::desired(&cfg.settings, |n| spec.lookup(n));
                    tenure_core::attributes::changes(&desired, &live)
                        .into_iter()
                        .map(|c| proto::AttributeChange { attribute: c.attribute, live: c.live, desired: c.desired })
                        .collect()
                }
                Ok(Ok(None)) => Vec::new(),
                Ok(Err(e)) => {
                    effect.live = Some(failed(e.to_string()));
                    continue;
                }
                Err(_) => {
                    effect.live = Some(failed(format!("no answer within {}s", timeout.as_secs())));
                    continue;
                }
            },
        };
        let manages = |g: &str| managed.get(t).is_some_and(|m| m.contains(g));
        effect.live = Some(match state {
            None => proto::LiveAccount {
                found: false,
                correlated_by: format!("no account `{}`", spec.account),
                enabled: false,
                grants: Vec::new(),
                missing: want.iter().map(|g| (*g).clone()).collect(),
                extra: Vec::new(),
                unmanaged: Vec::new(),
                attributes: Vec::new(),
                error: None,
            },
            Some(s) => {
                let by_id = match s.external_id.as_deref() {
                    Some(e) if e == x.id => "and its correlation id names this identity".to_string(),
                    Some(e) => format!("but its correlation id names `{e}`"),
                    None => "with no correlation id".to_string(),
                };
                let held = s.enabled;
                // An account Tenure did not create says which correlation rule (and how sure) or
                // which person's decision linked it.
                let linked = crate::correlation::how_linked(engine.store, t, &s.account)?;
                let found = format!("account name `{}` {by_id}", s.account);
                proto::LiveAccount {
                    found: true,
                    correlated_by: match linked {
                        Some(how) => format!("{how}; {found}"),
                        None => found,
                    },
                    enabled: s.enabled,
                    grants: s.grants.iter().cloned().collect(),
                    missing: if held {
                        want.iter().filter(|g| !s.grants.contains(**g)).map(|g| (*g).clone()).collect()
                    } else {
                        want.iter().map(|g| (*g).clone()).collect()
                    },
                    extra: s.grants.iter().filter(|g| manages(g) && !want.contains(g)).cloned().collect(),
                    unmanaged: s.grants.iter().filter(|g| !manages(g)).cloned().collect(),
                    attributes,
                    error: None,
                }
            }
        });
    }
    x.targets_read = true;
    Ok(())
}

/// Appends to `out` the attribute tests that make `cond` evaluate to `want` for `identity`:
/// under `all` every test when it holds and the first failing branch when it does not; under
/// `any` the first holding branch, or every failing one. `negated` flips under each `not`.
fn why(cond: &Cond, identity: &Identity, schema: &Schema, want: bool, negated: bool, out: &mut Vec<proto::Fact>) {
    match cond {
        Cond::All(cs) | Cond::Any(cs) => {
            // `all` wanting true and `any` wanting false need every branch; the other two
            // cases are decided by the first branch that comes out as wanted.
            let every = matches!(cond, Cond::All(_)) == want;
            if every {
                for c in cs {
                    why(c, identity, schema, want, negated, out);
                }
            } else if let Some(c) = cs.iter().find(|c| reference::eval(c, identity) == want) {
                why(c, identity, schema, want, negated, out);
            }
        }
        Cond::Not(c) => why(c, identity, schema, !want, !negated, out),
        Cond::Attr(slot, test) => {
            let (name, expected) = describe(test);
            out.push(proto::Fact {
                attribute: schema.name(*slot).to_string(),
                test: name.to_string(),
                negated,
                expected,
                actual: identity.attrs.get(*slot).map(str::to_string),
                held: reference::eval(cond, identity),
                changed: false,
                previous: None,
            });
        }
    }
}

/// Marks the facts about attributes the latest event changed, with the value before.
fn mark_changes(facts: &mut [proto::Fact], changes: &[proto::Change]) {
    for f in facts {
        if let Some(c) = changes.iter().find(|c| c.attribute == f.attribute) {
            f.changed = true;
            f.previous.clone_from(&c.from);
        }
    }
}

/// A test's name as the policy spells it and the values it compares with.
fn describe(test: &Test) -> (&'static str, Vec<String>) {
    match test {
        Test::Eq(v) => ("eq", vec![v.clone()]),
        Test::In(vs) => ("in", vs.clone()),
        Test::Prefix(v) => ("prefix", vec![v.clone()]),
        Test::Suffix(v) => ("suffix", vec![v.clone()]),
        Test::Regex(re) => ("regex", vec![re.as_str().to_string()]),
        Test::Present(b) => ("present", vec![b.to_string()]),
        Test::Date(op, d) => {
            let name = match op {
                DateOp::Before => "before",
                DateOp::After => "after",
                DateOp::OnOrBefore => "on_or_before",
                DateOp::OnOrAfter => "on_or_after",
            };
            (name, vec![d.to_string()])
        }
    }
}
