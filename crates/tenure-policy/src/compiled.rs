//! The compiled evaluator.
//!
//! Compilation interns every string that an `eq`/`in` test compares against (per attribute
//! slot), rewrites those tests as integer comparisons, and indexes each birthright role by one
//! of its top-level equality or membership tests (its *anchor*). Evaluating an identity then
//! costs one hash look-up per interned attribute, plus a full check of only the roles whose
//! anchor value matches and of the few roles that have no anchor.

use crate::{Cond, DateOp, Policy, Test};
use std::collections::HashMap;
use tenure_core::date::parse_date;
use tenure_core::{Identity, Slot, schema};

/// Marks an attribute value the policy never mentions (or an absent one).
const NONE: u32 = u32::MAX;

#[derive(Debug)]
enum CCond {
    All(Vec<CCond>),
    Any(Vec<CCond>),
    Not(Box<CCond>),
    Eq(Slot, u32),
    In(Slot, Vec<u32>),
    Prefix(Slot, Box<str>),
    Suffix(Slot, Box<str>),
    Regex(Slot, regex::Regex),
    Date(Slot, DateOp, chrono::NaiveDate),
    Present(Slot, bool),
}

#[derive(Debug)]
pub struct Compiled {
    /// `(index in policy.roles, condition)` for every birthright role.
    roles: Vec<(usize, CCond)>,
    /// Per slot: interned constants. Slots the policy never compares for equality are empty.
    dicts: Vec<HashMap<Box<str>, u32>>,
    interned: Vec<Slot>,
    /// Per anchor slot: value code -> positions in `roles`.
    index: Vec<(Slot, HashMap<u32, Vec<u32>>)>,
    /// Roles without an anchor, checked for every identity.
    always: Vec<u32>,
}

/// Per-thread scratch space, so evaluation allocates nothing per identity.
#[derive(Debug, Default)]
pub struct Scratch {
    codes: Vec<u32>,
}

impl Compiled {
    pub fn new(policy: &Policy, schema_len: usize) -> Self {
        let mut dicts: Vec<HashMap<Box<str>, u32>> = vec![HashMap::new(); schema_len];
        let mut roles = Vec::new();
        for (i, r) in policy.roles.iter().enumerate() {
            if let Some(c) = &r.when {
                roles.push((i, lower(c, &mut dicts)));
            }
        }
        let interned = (0..schema_len).filter(|&s| dicts.get(s).is_some_and(|d| !d.is_empty())).collect();
        let mut by_slot: HashMap<Slot, HashMap<u32, Vec<u32>>> = HashMap::new();
        let mut always = Vec::new();
        for (pos, (_, c)) in roles.iter().enumerate() {
            let pos = u32::try_from(pos).unwrap_or(u32::MAX);
            match anchor(c) {
                Some((slot, codes)) => {
                    let m = by_slot.entry(slot).or_default();
                    for code in codes {
                        m.entry(code).or_default().push(pos);
                    }
                }
                None => always.push(pos),
            }
        }
        let mut index: Vec<_> = by_slot.into_iter().collect();
        index.sort_by_key(|(s, _)| *s);
        Self { roles, dicts, interned, index, always }
    }

    /// Appends to `out` the indices (into `policy.roles`) of the birthright roles `identity`
    /// qualifies for, in policy order.
    pub fn matching_roles(&self, identity: &Identity, scratch: &mut Scratch, out: &mut Vec<usize>) {
        let codes = &mut scratch.codes;
        codes.clear();
        codes.resize(self.dicts.len(), NONE);
        for &slot in &self.interned {
            if let (Some(v), Some(d)) = (identity.attrs.get(slot), self.dicts.get(slot))
                && let (Some(&c), Some(cell)) = (d.get(v), codes.get_mut(slot))
            {
                *cell = c;
            }
        }
        let start = out.len();
        let mut check = |pos: u32| {
            if let Some((role, c)) = self.roles.get(pos as usize)
                && eval(c, identity, codes)
            {
                out.push(*role);
            }
        };
        for (slot, m) in &self.index {
            let code = codes.get(*slot).copied().unwrap_or(NONE);
            if code == NONE {
                continue;
            }
            if let Some(list) = m.get(&code) {
                list.iter().copied().for_each(&mut check);
            }
        }
        self.always.iter().copied().for_each(&mut check);
        if let Some(found) = out.get_mut(start..) {
            found.sort_unstable();
        }
    }
}

fn intern(dicts: &mut [HashMap<Box<str>, u32>], slot: Slot, v: &str) -> u32 {
    let Some(d) = dicts.get_mut(slot) else {
        return NONE - 1;
    };
    let next = u32::try_from(d.len()).unwrap_or(NONE - 1);
    *d.entry(v.into()).or_insert(next)
}

fn lower(c: &Cond, dicts: &mut [HashMap<Box<str>, u32>]) -> CCond {
    match c {
        Cond::All(cs) => CCond::All(cs.iter().map(|c| lower(c, dicts)).collect()),
        Cond::Any(cs) => CCond::Any(cs.iter().map(|c| lower(c, dicts)).collect()),
        Cond::Not(c) => CCond::Not(Box::new(lower(c, dicts))),
        Cond::Attr(slot, t) => match t {
            Test::Eq(v) => CCond::Eq(*slot, intern(dicts, *slot, v)),
            Test::In(vs) => {
                let mut codes: Vec<u32> = vs.iter().map(|v| intern(dicts, *slot, v)).collect();
                codes.sort_unstable();
                codes.dedup();
                CCond::In(*slot, codes)
            }
            Test::Prefix(p) => CCond::Prefix(*slot, p.as_str().into()),
            Test::Suffix(p) => CCond::Suffix(*slot, p.as_str().into()),
            Test::Regex(re) => CCond::Regex(*slot, re.clone()),
            Test::Date(op, d) => CCond::Date(*slot, *op, *d),
            Test::Present(b) => CCond::Present(*slot, *b),
        },
    }
}

/// Picks the anchor of a role: a top-level `eq`/`in` test, preferring attributes other than
/// `status` and `kind` (which nearly everyone shares) and then the fewest values.
fn anchor(c: &CCond) -> Option<(Slot, Vec<u32>)> {
    let candidates: Vec<(Slot, Vec<u32>)> = match c {
        CCond::All(cs) => cs.iter().filter_map(simple).collect(),
        other => simple(other).into_iter().collect(),
    };
    candidates.into_iter().min_by_key(|(slot, codes)| {
        let common = *slot == schema::STATUS || *slot == schema::KIND;
        (common, codes.len())
    })
}

fn simple(c: &CCond) -> Option<(Slot, Vec<u32>)> {
    match c {
        CCond::Eq(s, v) => Some((*s, vec![*v])),
        CCond::In(s, vs) => Some((*s, vs.clone())),
        _ => None,
    }
}

fn eval(c: &CCond, identity: &Identity, codes: &[u32]) -> bool {
    let code = |s: &Slot| codes.get(*s).copied().unwrap_or(NONE);
    match c {
        CCond::All(cs) => cs.iter().all(|c| eval(c, identity, codes)),
        CCond::Any(cs) => cs.iter().any(|c| eval(c, identity, codes)),
        CCond::Not(c) => !eval(c, identity, codes),
        CCond::Eq(s, v) => code(s) == *v,
        CCond::In(s, vs) => {
            let x = code(s);
            x != NONE && vs.binary_search(&x).is_ok()
        }
        CCond::Prefix(s, p) => identity.attrs.get(*s).is_some_and(|v| v.starts_with(&**p)),
        CCond::Suffix(s, p) => identity.attrs.get(*s).is_some_and(|v| v.ends_with(&**p)),
        CCond::Regex(s, re) => identity.attrs.get(*s).is_some_and(|v| re.is_match(v)),
        CCond::Present(s, b) => identity.attrs.get(*s).is_some() == *b,
        CCond::Date(s, op, d) => identity.attrs.get(*s).and_then(parse_date).is_some_and(|x| match op {
            DateOp::Before => x < *d,
            DateOp::After => x > *d,
            DateOp::OnOrBefore => x <= *d,
            DateOp::OnOrAfter => x >= *d,
        }),
    }
}
