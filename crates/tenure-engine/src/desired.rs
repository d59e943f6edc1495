//! Desired state: which entitlements each identity should hold under the policy, and what
//! people decided beyond it ([`Overrides`]).

use crate::Engine;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tenure_core::plan::Holdings;
use tenure_core::{Entitlement, Identity, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Desired, SodHit};

/// What people decided about one identity beyond the policy. Every planning path (imports,
/// pushes, approvals of held batches, simulate, explain, the schedules through pushes) passes the
/// identity's overrides to [`for_identity`], so a later plan never undoes the decision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Entitlements a certification review revoked (while its `manual_override` exception is
    /// not resolved): never desired, whatever the roles say.
    pub revoked: BTreeSet<Entitlement>,
}

impl Overrides {
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }
}

/// The overrides of `identities` (or of every identity), by identity; identities without any are
/// absent.
pub fn overrides(engine: &Engine<'_>, identities: Option<&[&str]>) -> crate::Result<HashMap<String, Overrides>> {
    let revoked = crate::campaigns::overrides(engine.store, identities)?;
    Ok(revoked.into_iter().map(|(id, revoked)| (id, Overrides { revoked })).collect())
}

/// Desired entitlements of one identity with the SoD rules applied against what it holds, less
/// what its `overrides` revoked. A terminated identity desires nothing.
pub fn for_identity(
    engine: &Engine<'_>,
    identity: &Identity,
    held: &Holdings,
    overrides: &Overrides,
    scratch: &mut Scratch,
) -> (Desired, Vec<SodHit>) {
    if identity.status == Status::Terminated {
        return (Desired::new(), Vec::new());
    }
    let mut roles = Vec::new();
    engine.compiled.matching_roles(identity, scratch, &mut roles);
    let mut desired = engine.policy.desired(&roles);
    // Only targets that exist in the config can be planned; policy load guarantees this, but a
    // config edit could remove a target after the fact.
    desired.retain(|t, _| engine.config.target(t).is_some());
    for e in &overrides.revoked {
        if let Some(names) = desired.get_mut(&e.target) {
            names.remove(&e.name);
        }
    }
    desired.retain(|_, names| !names.is_empty());
    let held_set: BTreeSet<Entitlement> = held
        .iter()
        .flat_map(|(t, a)| a.grants.iter().map(move |g| Entitlement { target: t.clone(), name: g.clone() }))
        .collect();
    let hits = engine.policy.apply_sod(&mut desired, &held_set);
    (desired, hits)
}

/// Entitlement names per target, the shape the planner wants.
pub fn names(desired: &Desired) -> BTreeMap<String, BTreeSet<String>> {
    desired.iter().map(|(t, m)| (t.clone(), m.keys().cloned().collect())).collect()
}

/// Recomputes the desired entitlements of every identity, in parallel over the available
/// cores. Returns the number of entitlements assigned in total. Used by `simulate` and the
/// recompute benchmark.
pub fn recompute_all(engine: &Engine<'_>, identities: &[Identity]) -> usize {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).max(1);
    let chunk = identities.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = identities
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut scratch = Scratch::default();
                    let mut roles = Vec::new();
                    let mut seen: Vec<u32> = Vec::new();
                    let mut total = 0usize;
                    for identity in part {
                        if identity.status == Status::Terminated {
                            continue;
                        }
                        roles.clear();
                        engine.compiled.matching_roles(identity, &mut scratch, &mut roles);
                        seen.clear();
                        for &r in &roles {
                            if let Some(role) = engine.policy.roles.get(r) {
                                seen.extend(role.grant_ids.iter().copied());
                            }
                        }
                        seen.sort_unstable();
                        seen.dedup();
                        total += seen.len();
                    }
                    total
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    })
}
