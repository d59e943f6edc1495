//! The reference evaluator: a direct interpretation of the condition tree. It exists to be
//! obviously correct; the compiled evaluator is checked against it.

use crate::{Cond, DateOp, Policy, Test};
use tenure_core::Identity;
use tenure_core::date::parse_date;

pub fn eval(cond: &Cond, identity: &Identity) -> bool {
    match cond {
        Cond::All(cs) => cs.iter().all(|c| eval(c, identity)),
        Cond::Any(cs) => cs.iter().any(|c| eval(c, identity)),
        Cond::Not(c) => !eval(c, identity),
        Cond::Attr(slot, test) => {
            let value = identity.attrs.get(*slot);
            match test {
                Test::Present(want) => value.is_some() == *want,
                _ => value.is_some_and(|v| test_value(test, v)),
            }
        }
    }
}

fn test_value(test: &Test, v: &str) -> bool {
    match test {
        Test::Eq(s) => v == s,
        Test::In(list) => list.iter().any(|s| s == v),
        Test::Prefix(p) => v.starts_with(p.as_str()),
        Test::Suffix(p) => v.ends_with(p.as_str()),
        Test::Regex(re) => re.is_match(v),
        Test::Present(_) => true,
        Test::Date(op, d) => parse_date(v).is_some_and(|x| match op {
            DateOp::Before => x < *d,
            DateOp::After => x > *d,
            DateOp::OnOrBefore => x <= *d,
            DateOp::OnOrAfter => x >= *d,
        }),
    }
}

/// Indices of the birthright roles `identity` qualifies for, in policy order.
pub fn matching_roles(policy: &Policy, identity: &Identity) -> Vec<usize> {
    policy
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| r.when.as_ref().is_some_and(|c| eval(c, identity)))
        .map(|(i, _)| i)
        .collect()
}
