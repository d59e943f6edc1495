//! The correlation rules, without IO: which of a target's existing accounts belongs to which
//! identity, decided by the target's ordered rules (`correlation = [...]`), or left as a case
//! for a person.
//!
//! Values are compared normalised ([`normalise`]: trimmed, Unicode NFKD with the combining marks
//! dropped, lowercased), so `José.Núñez` and `jose.nunez` are the same name. The rules are tried
//! in the order the target lists them, and the first rule that matches anyone decides, as
//! midPoint's and SailPoint's ordered correlation rules do: an `employee_number` match is not
//! second-guessed by an email that points elsewhere.
//!
//! What the rules decide, per account:
//! - one candidate at or above `correlation_min_confidence`, whom no other account also claims
//!   that way: *linked*;
//! - several candidates, one below the threshold (the fuzzy `name` rule always is by default),
//!   an identity claimed by two accounts, or an account whose correlation id names nobody Tenure
//!   knows while another rule matches someone: a *case*, with every candidate and its rule and
//!   confidence;
//! - a match to a terminated identity: a case too, since linking it would have Tenure disable an
//!   account it did not create on the strength of a rule;
//! - nobody: nothing (reconciliation reports it as an orphan).
//!
//! An account whose name equals a candidate's account name but that no configured rule matched
//! (say `username` is not in the list) is a case too: provisioning would otherwise find the
//! account under that name and take it over without anyone deciding.

use std::collections::{BTreeMap, HashMap};
use tenure_connect::AccountState;
use tenure_core::config::{CorrelationRule, CorrelationSettings, INITIAL_CONFIDENCE};
use tenure_core::text;
use tenure_store::{Candidate, CaseIn, LinkIn};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// `s` as the rules compare it: trimmed, NFKD with combining marks dropped, lowercase.
pub fn normalise(s: &str) -> String {
    s.trim().nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect()
}

/// A name as the fuzzy rule compares it: normalised, with every run of `.`, `_`, `-` and
/// whitespace turned into one `.`, and none at the ends.
fn name_key(s: &str) -> String {
    let n = normalise(s);
    n.split(|c: char| c == '.' || c == '_' || c == '-' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(".")
}

/// What the rules read of one identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    /// The account name Tenure would give it in the target (its `account_attribute`).
    pub account: Option<String>,
    pub email: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// A terminated identity: linking its account would disable an account Tenure did not
    /// create, so a match to it is always a case for a person.
    pub terminated: bool,
}

/// What the rules decided for one target.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub links: Vec<LinkIn>,
    pub cases: Vec<CaseIn>,
    /// Accounts no rule matched, as read: kept, so an identity that arrives later is correlated
    /// with them.
    pub unmatched: Vec<AccountState>,
}

/// The people indexed by what each rule compares.
struct Index<'a> {
    by_id: HashMap<String, Vec<&'a Person>>,
    by_account: HashMap<String, Vec<&'a Person>>,
    by_email: HashMap<String, Vec<&'a Person>>,
    /// `given.family` and `family.given`.
    by_full_name: HashMap<String, Vec<&'a Person>>,
    /// Initial and family name, `jsmith`.
    by_initial: HashMap<String, Vec<&'a Person>>,
}

impl<'a> Index<'a> {
    fn new(people: &'a [Person]) -> Self {
        let mut ix = Index {
            by_id: HashMap::new(),
            by_account: HashMap::new(),
            by_email: HashMap::new(),
            by_full_name: HashMap::new(),
            by_initial: HashMap::new(),
        };
        for p in people {
            ix.by_id.entry(normalise(&p.id)).or_default().push(p);
            if let Some(a) = p.account.as_deref().map(normalise).filter(|a| !a.is_empty()) {
                ix.by_account.entry(a).or_default().push(p);
            }
            if let Some(e) = p.email.as_deref().map(normalise).filter(|e| !e.is_empty()) {
                ix.by_email.entry(e).or_default().push(p);
            }
            let (Some(g), Some(f)) = (p.given_name.as_deref().map(name_key), p.family_name.as_deref().map(name_key))
            else {
                continue;
            };
            if g.is_empty() || f.is_empty() {
                continue;
            }
            let mut full = vec![format!("{g}.{f}"), format!("{f}.{g}")];
            full.dedup();
            for k in full {
                ix.by_full_name.entry(k).or_default().push(p);
            }
            if let Some(initial) = g.chars().next() {
                ix.by_initial.entry(format!("{initial}{}", f.replace('.', ""))).or_default().push(p);
            }
        }
        ix
    }

    /// Who `rule` matches `acc` to, each with the match's confidence.
    fn matches(&self, rule: CorrelationRule, acc: &AccountState) -> Vec<(&'a Person, f64)> {
        let found = |m: &HashMap<String, Vec<&'a Person>>, key: Option<String>, confidence: f64| {
            key.filter(|k| !k.is_empty())
                .and_then(|k| m.get(&k))
                .map(|ps| ps.iter().map(|p| (*p, confidence)).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let c = rule.confidence();
        match rule {
            CorrelationRule::EmployeeNumber => found(&self.by_id, acc.external_id.as_deref().map(normalise), c),
            CorrelationRule::Username => found(&self.by_account, Some(normalise(&acc.account)), c),
            CorrelationRule::Email => found(&self.by_email, acc.email.as_deref().map(normalise), c),
            CorrelationRule::Name => {
                // The account name and the local part of its email, each as a name.
                let mut keys = vec![name_key(&acc.account)];
                if let Some(local) = acc.email.as_deref().and_then(|e| e.split('@').next()) {
                    keys.push(name_key(local));
                }
                keys.dedup();
                let mut out: Vec<(&'a Person, f64)> = Vec::new();
                for k in &keys {
                    out.extend(found(&self.by_full_name, Some(k.clone()), c));
                }
                if out.is_empty() {
                    for k in &keys {
                        out.extend(found(&self.by_initial, Some(k.replace('.', "")), INITIAL_CONFIDENCE));
                    }
                }
                // One person found twice (by the account name and by the email) counts once.
                out.sort_by(|a, b| a.0.id.cmp(&b.0.id).then(b.1.total_cmp(&a.1)));
                out.dedup_by(|a, b| a.0.id == b.0.id);
                out
            }
        }
    }
}

/// One account's evidence before the claims of all accounts are compared.
struct Verdict<'a> {
    acc: &'a AccountState,
    candidates: Vec<Candidate>,
    /// Why the evidence is not enough to link, if it is not.
    doubt: Option<String>,
}

/// Decides `accounts` (a target's accounts Tenure neither created nor linked yet) against
/// `people` (the identities without an account in the target), by `settings`.
pub fn decide(settings: &CorrelationSettings, accounts: &[AccountState], people: &[Person]) -> Outcome {
    let ix = Index::new(people);
    let terminated: std::collections::HashSet<&str> =
        people.iter().filter(|p| p.terminated).map(|p| p.id.as_str()).collect();
    let min = settings.min_confidence;
    let mut verdicts: Vec<Verdict<'_>> = Vec::with_capacity(accounts.len());
    for acc in accounts {
        // An account whose correlation id names nobody Tenure knows, or someone other than the
        // candidate, says it is someone else's (and the executor refuses to change it for anyone
        // else).
        let claimed_id = acc.external_id.as_deref().map(normalise).filter(|x| !x.is_empty());
        let mut hit: Option<(CorrelationRule, Vec<(&Person, f64)>)> = None;
        for &rule in &settings.rules {
            let m = ix.matches(rule, acc);
            if !m.is_empty() {
                hit = Some((rule, m));
                break;
            }
        }
        // No configured rule matched, but the account has a candidate's account name: creating
        // that candidate's account would find this one.
        if hit.is_none()
            && let Some(ps) = ix.by_account.get(&normalise(&acc.account))
        {
            hit = Some((CorrelationRule::Username, ps.iter().map(|p| (*p, 0.5)).collect()));
        }
        let Some((rule, found)) = hit else {
            verdicts.push(Verdict { acc, candidates: Vec::new(), doubt: None });
            continue;
        };
        let unconfigured = !settings.rules.contains(&rule);
        let foreign_id = claimed_id.as_ref().is_some_and(|x| found.iter().any(|(p, _)| normalise(&p.id) != *x));
        let candidates: Vec<Candidate> = found
            .iter()
            .map(|(p, c)| Candidate { identity: p.id.clone(), rule: rule.as_str().to_string(), confidence: *c })
            .collect();
        let doubt = if unconfigured {
            Some(format!(
                "its name matches identity `{}`'s account name, but rule `username` is not configured",
                candidates.first().map(|c| c.identity.as_str()).unwrap_or_default()
            ))
        } else if foreign_id {
            let x = acc.external_id.as_deref().unwrap_or_default();
            let known = ix.by_id.contains_key(&normalise(x));
            Some(format!(
                "its correlation id `{}` names {}, while rule `{}` matches",
                text::quote(x),
                if known { "another identity" } else { "no identity Tenure knows" },
                rule.as_str()
            ))
        } else if candidates.len() > 1 {
            Some(format!("{} identities match by rule `{}`", candidates.len(), rule.as_str()))
        } else if candidates.iter().any(|c| c.confidence < min) {
            Some(format!("the match by rule `{}` is below the target's confidence threshold {min:.2}", rule.as_str()))
        } else {
            candidates.iter().find(|c| terminated.contains(c.identity.as_str())).map(|c| {
                format!(
                    "identity `{}` is terminated: a person confirms before Tenure disables an account it did not create",
                    c.identity
                )
            })
        };
        verdicts.push(Verdict { acc, candidates, doubt });
    }
    // An identity that two accounts would be linked to is linked to neither.
    let mut claims: BTreeMap<&str, usize> = BTreeMap::new();
    for v in verdicts.iter().filter(|v| v.doubt.is_none()) {
        for c in &v.candidates {
            *claims.entry(c.identity.as_str()).or_default() += 1;
        }
    }
    let claimed_twice: Vec<String> = claims.iter().filter(|(_, n)| **n > 1).map(|(id, _)| (*id).to_string()).collect();
    let mut out = Outcome::default();
    for v in verdicts {
        let grants: Vec<String> = v.acc.grants.iter().cloned().collect();
        let twice = v.candidates.iter().find(|c| claimed_twice.contains(&c.identity));
        let doubt = match (v.doubt, twice) {
            (Some(d), _) => Some(d),
            (None, Some(c)) => Some(format!("another account also matches identity `{}`", c.identity)),
            (None, None) => None,
        };
        match (v.candidates.as_slice(), doubt) {
            ([], _) => out.unmatched.push(v.acc.clone()),
            ([c], None) => out.links.push(LinkIn {
                account: v.acc.account.clone(),
                identity: c.identity.clone(),
                rule: c.rule.clone(),
                confidence: c.confidence,
                enabled: v.acc.enabled,
                grants,
            }),
            (_, doubt) => out.cases.push(CaseIn {
                account: v.acc.account.clone(),
                external_id: v.acc.external_id.clone(),
                email: v.acc.email.clone(),
                enabled: v.acc.enabled,
                grants,
                candidates: v.candidates.clone(),
                why: doubt.unwrap_or_default(),
            }),
        }
    }
    out
}
