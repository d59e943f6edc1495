//! Desired state: which entitlements each identity should hold under the policy.

use crate::Engine;
use std::collections::{BTreeMap, BTreeSet};
use tenure_core::plan::Holdings;
use tenure_core::{Entitlement, Identity, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Desired, SodHit};

/// Desired entitlements of one identity with the SoD rules applied against what it holds.
/// A terminated identity desires nothing.
pub fn for_identity(
    engine: &Engine<'_>,
    identity: &Identity,
    held: &Holdings,
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
