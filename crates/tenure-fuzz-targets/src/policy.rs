//! `policy_toml` (policy loading) and `policy_eval` (the compiled condition evaluator against
//! the reference evaluator).

use crate::fixtures;
use arbitrary::{Result, Unstructured};
use std::sync::OnceLock;
use tenure_core::{Attrs, Identity, Kind, Schema, Status};
use tenure_policy::compiled::Scratch;
use tenure_policy::{Compiled, Cond, DateOp, OnOwnerLeave, Policy, Role, Test, reference};

/// Asserts that the compiled evaluator picks exactly the reference evaluator's roles for every
/// identity.
fn agree(policy: &Policy, schema: &Schema, people: &[Identity]) {
    let compiled = Compiled::new(policy, schema.len());
    let mut scratch = Scratch::default();
    for person in people {
        let want = reference::matching_roles(policy, person);
        let mut got = Vec::new();
        compiled.matching_roles(person, &mut scratch, &mut got);
        assert_eq!(got, want, "the evaluators disagree on {person:?}\nroles: {:#?}", policy.roles);
    }
}

/// Attribute values the generated conditions and identities share, so that they meet: case
/// and prefix neighbours, dates on either side of the fixture's day, text that is no date.
const VALUES: &[&str] = &[
    "",
    "Engineering",
    "engineering",
    "Eng",
    "Sales",
    "DBA",
    "Senior DBA",
    "ä",
    "Ä",
    "a\u{0}b",
    "2026-11-21",
    "2026-11-20",
    "2026-11-22",
    "1900-01-01",
    "9999-12-31",
    "2026-11-21T08:00:00Z",
    "not-a-date",
    "active",
    "employee",
];

const REGEXES: &[&str] = &["^E", "ing$", "(?i)^eng", ".*", "^$", "[0-9]{4}-", "DBA|Sales", "^\\p{Lu}"];

/// [`REGEXES`], compiled once: compiling one per test made the target ten times slower.
fn regexes() -> &'static [Option<regex::Regex>] {
    static COMPILED: OnceLock<Vec<Option<regex::Regex>>> = OnceLock::new();
    COMPILED.get_or_init(|| REGEXES.iter().map(|r| regex::Regex::new(r).ok()).collect())
}

/// A few people over the starter schema, for checking policies loaded from text.
fn people() -> &'static [Identity] {
    static PEOPLE: OnceLock<Vec<Identity>> = OnceLock::new();
    PEOPLE.get_or_init(|| {
        let schema = &fixtures::config().schema;
        let rows: &[&[(&str, &str)]] = &[
            &[("department", "Engineering"), ("title", "Senior Engineer"), ("location", "Berlin")],
            &[("department", "Sales"), ("title", "DBA"), ("start_date", "2026-11-21")],
            &[("department", "engineering"), ("employment_type", "contractor"), ("end_date", "2026-12-01")],
            &[("title", ""), ("email", "a@example.com"), ("start_date", "not-a-date")],
            &[],
        ];
        let mut out = Vec::new();
        for (n, row) in rows.iter().enumerate() {
            for (i, status) in Status::ALL.iter().enumerate() {
                let mut attrs = Attrs::new(schema);
                for (name, value) in *row {
                    if let Some(slot) = schema.slot(name) {
                        attrs.set(slot, Some(value));
                    }
                }
                let kind = Kind::ALL.get((n + i) % Kind::ALL.len()).copied().unwrap_or(Kind::Employee);
                out.push(Identity::new(&format!("E{n}{i}"), kind, *status, attrs));
            }
        }
        out
    })
}

/// Loads `data` as `policy.toml` against the starter config. A refusal must name a problem on
/// a line of the file; an accepted policy must be evaluated alike by both evaluators.
pub fn policy_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config = fixtures::config();
    match tenure_policy::parse("policy.toml", text, config, fixtures::today()) {
        Ok(policy) => agree(&policy, &config.schema, people()),
        Err(problems) => {
            assert!(!problems.is_empty(), "a refused policy names no problem");
            let lines = text.lines().count() + 1;
            for p in &problems {
                assert!(p.line <= lines, "problem on line {} of a {lines}-line file: {}", p.line, p.message);
            }
        }
    }
}

fn value<'a>(u: &mut Unstructured<'a>) -> Result<&'a str> {
    // Mostly the shared vocabulary; sometimes the fuzzer's own text.
    if u.ratio(1, 8)? { u.arbitrary::<&str>() } else { Ok(*u.choose(VALUES)?) }
}

fn test(u: &mut Unstructured<'_>) -> Result<Test> {
    Ok(match u.int_in_range(0..=6)? {
        0 => Test::Eq(value(u)?.to_string()),
        1 => {
            let n = u.int_in_range(0..=4)?;
            Test::In((0..n).map(|_| value(u).map(str::to_string)).collect::<Result<_>>()?)
        }
        2 => Test::Prefix(value(u)?.to_string()),
        3 => Test::Suffix(value(u)?.to_string()),
        4 => match u.choose(regexes())? {
            Some(re) => Test::Regex(re.clone()),
            None => Test::Present(true),
        },
        5 => {
            let op = *u.choose(&[DateOp::Before, DateOp::After, DateOp::OnOrBefore, DateOp::OnOrAfter])?;
            let day = fixtures::today() + chrono::Days::new(u.int_in_range(0..=2)?) - chrono::Days::new(1);
            Test::Date(op, day)
        }
        _ => Test::Present(u.arbitrary()?),
    })
}

fn cond(u: &mut Unstructured<'_>, slots: usize, depth: u32) -> Result<Cond> {
    let leaf = depth == 0 || u.ratio(1, 2)?;
    if leaf {
        return Ok(Cond::Attr(u.choose_index(slots)?, test(u)?));
    }
    Ok(match u.int_in_range(0..=2)? {
        0 => Cond::All(children(u, slots, depth)?),
        1 => Cond::Any(children(u, slots, depth)?),
        _ => Cond::Not(Box::new(cond(u, slots, depth - 1)?)),
    })
}

fn children(u: &mut Unstructured<'_>, slots: usize, depth: u32) -> Result<Vec<Cond>> {
    let n = u.int_in_range(0..=4)?;
    (0..n).map(|_| cond(u, slots, depth - 1)).collect()
}

fn policy(u: &mut Unstructured<'_>, slots: usize) -> Result<Policy> {
    let n = u.int_in_range(1..=8)?;
    let mut roles = Vec::new();
    for i in 0..n {
        let when = if u.ratio(1, 10)? { None } else { Some(cond(u, slots, 4)?) };
        roles.push(Role {
            id: format!("r{i}"),
            when,
            grant: Vec::new(),
            privileged: false,
            requestable: false,
            approval: Vec::new(),
            max_duration: None,
            grant_ids: Vec::new(),
        });
    }
    Ok(Policy {
        roles,
        entitlements: Vec::new(),
        sod: Vec::new(),
        significant: Vec::new(),
        on_owner_leave: OnOwnerLeave::Revoke,
    })
}

fn identity(u: &mut Unstructured<'_>, schema: &Schema, n: usize) -> Result<Identity> {
    let status = *u.choose(Status::ALL)?;
    let kind = *u.choose(Kind::ALL)?;
    let mut person = Identity::new(&format!("E{n}"), kind, status, Attrs::new(schema));
    // Status and kind keep the values `Identity::new` gives them, as everywhere in the engine.
    for slot in 2..schema.len() {
        if u.ratio(1, 3)? {
            person.attrs.set(slot, Some(value(u)?));
        }
    }
    Ok(person)
}

/// Builds a policy (conditions over every attribute of the starter schema, with every kind of
/// test, nested) and a few identities from `data`, and asserts that the compiled evaluator and
/// the reference evaluator pick the same roles for each identity.
pub fn policy_eval(data: &[u8]) {
    let schema = &fixtures::config().schema;
    let mut u = Unstructured::new(data);
    let Ok(policy) = policy(&mut u, schema.len()) else {
        return;
    };
    let mut people = Vec::new();
    while people.len() < 8 && !u.is_empty() {
        match identity(&mut u, schema, people.len()) {
            Ok(p) => people.push(p),
            Err(_) => break,
        }
    }
    agree(&policy, schema, &people);
}
