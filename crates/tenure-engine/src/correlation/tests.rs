//! The correlation rules as data: `check(settings, accounts, expect)` over a fixed roster.
//!
//! An account is written `NAME [id=X] [mail=Y] [off] GRANT...`; the outcome is rendered one line
//! per account: `link NAME -> ID by RULE 0.95`, `case NAME [ID RULE 0.60, ...]: WHY`, or
//! `none NAME`.

use super::rules::{Outcome, Person, decide, normalise};
use std::collections::BTreeSet;
use tenure_connect::AccountState;
use tenure_core::config::{CorrelationRule, CorrelationSettings};

fn roster() -> Vec<Person> {
    let p = |id: &str, account: &str, email: &str, given: &str, family: &str| Person {
        id: id.into(),
        account: Some(account.into()),
        email: Some(email.into()),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        terminated: id == "E6",
    };
    vec![
        p("E1", "ada", "ada@example.com", "Ada", "Lovelace"),
        p("E2", "jose.nunez", "jose.nunez@example.com", "José", "Núñez"),
        p("E3", "jsmith", "john.smith@example.com", "John", "Smith"),
        p("E4", "jane", "jane.smith@example.com", "Jane", "Smith"),
        p("E5", "bob", "bob@example.com", "Bob", "Stone"),
        p("E6", "gone", "gone@example.com", "Gil", "Gone"),
    ]
}

fn account(line: &str) -> AccountState {
    let mut words = line.split_whitespace();
    let account = words.next().unwrap_or_default().to_string();
    let (mut external_id, mut email, mut enabled, mut grants) = (None, None, true, BTreeSet::new());
    for w in words {
        if let Some(x) = w.strip_prefix("id=") {
            external_id = Some(x.to_string());
        } else if let Some(x) = w.strip_prefix("mail=") {
            email = Some(x.to_string());
        } else if w == "off" {
            enabled = false;
        } else {
            grants.insert(w.to_string());
        }
    }
    AccountState { account, external_id, email, enabled, grants, sessions: None }
}

fn render(o: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    for l in &o.links {
        out.push(format!("link {} -> {} by {} {:.2}", l.account, l.identity, l.rule, l.confidence));
    }
    for c in &o.cases {
        let cands: Vec<String> =
            c.candidates.iter().map(|c| format!("{} {} {:.2}", c.identity, c.rule, c.confidence)).collect();
        out.push(format!("case {} [{}]: {}", c.account, cands.join(", "), c.why));
    }
    for u in &o.unmatched {
        out.push(format!("none {}", u.account));
    }
    out.sort();
    out
}

fn settings(rules: &[CorrelationRule], min: f64) -> CorrelationSettings {
    CorrelationSettings { rules: rules.to_vec(), min_confidence: min }
}

fn default() -> CorrelationSettings {
    CorrelationSettings::default_for(tenure_core::TargetKind::Ldap)
}

#[track_caller]
fn check(settings: &CorrelationSettings, accounts: &[&str], expect: &[&str]) {
    let accounts: Vec<AccountState> = accounts.iter().map(|a| account(a)).collect();
    let got = render(&decide(settings, &accounts, &roster()));
    let mut want: Vec<String> = expect.iter().map(ToString::to_string).collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn normalise_folds_case_accents_width_and_space() {
    assert_eq!(normalise("  José.NÚÑEZ "), "jose.nunez");
    assert_eq!(normalise("Ｊｏｓé"), "jose");
    assert_eq!(normalise("Ångström"), "angstrom");
}

#[test]
fn an_employee_number_links_with_certainty_and_goes_first() {
    // The id decides even though the name is someone else's.
    check(&default(), &["bob id=E1"], &["link bob -> E1 by employee_number 1.00"]);
}

#[test]
fn username_and_email_match_after_normalisation() {
    check(
        &default(),
        &["José.Nuñez", "alovelace mail=ADA@Example.COM"],
        &["link José.Nuñez -> E2 by username 0.95", "link alovelace -> E1 by email 0.95"],
    );
}

#[test]
fn a_fuzzy_name_match_is_a_case_below_the_threshold_and_a_link_above_it() {
    check(
        &default(),
        &["john.smith", "bob.stone"],
        &[
            "case john.smith [E3 name 0.80]: the match by rule `name` is below the target's confidence threshold 0.90",
            "case bob.stone [E5 name 0.80]: the match by rule `name` is below the target's confidence threshold 0.90",
        ],
    );
    check(&settings(&[CorrelationRule::Name], 0.8), &["john.smith"], &["link john.smith -> E3 by name 0.80"]);
}

#[test]
fn an_initial_and_family_name_is_a_weaker_guess() {
    check(
        &default(),
        &["bstone"],
        &["case bstone [E5 name 0.60]: the match by rule `name` is below the target's confidence threshold 0.90"],
    );
}

#[test]
fn two_candidates_are_a_case_with_both() {
    // `j.smith` is John's and Jane's initial and family name.
    check(&default(), &["j.smith"], &["case j.smith [E3 name 0.60, E4 name 0.60]: 2 identities match by rule `name`"]);
}

#[test]
fn two_accounts_claiming_one_identity_are_both_cases() {
    check(
        &default(),
        &["ada", "ada2 mail=ada@example.com"],
        &[
            "case ada [E1 username 0.95]: another account also matches identity `E1`",
            "case ada2 [E1 email 0.95]: another account also matches identity `E1`",
        ],
    );
}

#[test]
fn a_correlation_id_naming_nobody_makes_a_name_match_a_case() {
    check(
        &default(),
        &["bob id=X999"],
        &[
            "case bob [E5 username 0.95]: its correlation id `X999` names no identity Tenure knows, while rule `username` matches",
        ],
    );
}

#[test]
fn a_match_to_a_terminated_identity_is_a_case_even_with_certainty() {
    check(
        &default(),
        &["gone id=E6"],
        &[
            "case gone [E6 employee_number 1.00]: identity `E6` is terminated: a person confirms before Tenure disables an account it did not create",
        ],
    );
}

#[test]
fn a_correlation_id_naming_another_identity_makes_a_name_match_a_case() {
    // Without the employee number rule the name still matches E5, but the account says it is E1's.
    check(
        &settings(&[CorrelationRule::Username], 0.9),
        &["bob id=E1"],
        &["case bob [E5 username 0.95]: its correlation id `E1` names another identity, while rule `username` matches"],
    );
}

#[test]
fn an_account_nobody_matches_is_left_alone() {
    check(&default(), &["printer id=SVC-1", "scanner"], &["none printer", "none scanner"]);
}

#[test]
fn an_account_under_a_candidates_name_is_a_case_even_without_the_username_rule() {
    check(
        &settings(&[CorrelationRule::EmployeeNumber, CorrelationRule::Email], 0.9),
        &["bob"],
        &[
            "case bob [E5 username 0.50]: its name matches identity `E5`'s account name, but rule `username` is not configured",
        ],
    );
}

#[test]
fn the_first_rule_that_matches_decides() {
    // The email says E1, but the username rule comes first and says E5.
    check(&default(), &["bob mail=ada@example.com"], &["link bob -> E5 by username 0.95"]);
    check(
        &settings(&[CorrelationRule::Email, CorrelationRule::Username], 0.9),
        &["bob mail=ada@example.com"],
        &["link bob -> E1 by email 0.95"],
    );
}

#[test]
fn a_link_keeps_the_account_as_read() {
    let o = decide(&default(), &[account("ada off staff mail-list")], &roster());
    let l = o.links.first().unwrap();
    assert!(!l.enabled);
    assert_eq!(l.grants, vec!["mail-list".to_string(), "staff".to_string()]);
}
