//! `tenure explain` (issue 9, point 6; acceptance: "`tenure explain` output for a mover names
//! the rule and the attribute that changed"): the real binary, a person imported in Engineering
//! and then moved to Sales.

use crate::{Env, company};

#[test]
fn issue9_explain_for_a_mover_names_the_rule_and_the_attribute_that_changed() {
    let env = Env::new();
    let mut co = company(10);
    let mover = co.hire("Engineering");
    env.write("day1.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    env.settle_in_db();
    co.transfer(&mover, "Sales");
    env.write("day2.csv", &co.to_csv());
    env.ok(&["import", "--source", "hr", "day2.csv"]);
    let pending = env.pending_count();

    let text = env.ok(&["explain", &mover]).stdout;
    let lines: Vec<&str> = text.lines().collect();
    let after = |heading: &str| -> Vec<&str> {
        let at = lines.iter().position(|l| *l == heading).unwrap_or_else(|| panic!("no `{heading}` in\n{text}"));
        lines[at + 1..].iter().take_while(|l| l.starts_with("  ")).copied().collect()
    };
    assert!(text.contains("latest event #"), "{text}");
    assert!(text.contains("mover: department \"Engineering\" -> \"Sales\""), "{text}");
    let matched = after("matched roles:");
    let sales = matched.iter().position(|l| l.starts_with("  sales grants ")).unwrap_or_else(|| panic!("{text}"));
    assert!(
        matched[sales + 1..]
            .contains(&"    because: department eq \"Sales\", value \"Sales\" (changed from \"Engineering\")"),
        "{text}"
    );
    let unmatched = after("unmatched roles:");
    let eng = unmatched.iter().position(|l| l.starts_with("  engineering grants ")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        unmatched[eng + 1],
        "    failed: department eq \"Engineering\", value \"Sales\" (changed from \"Engineering\")",
        "{text}"
    );
    assert!(text.contains("  directory:sales from sales"), "{text}");
    assert!(
        text.contains("targets (not read, see --live: compared with what Tenure holds, pending work included):"),
        "{text}"
    );

    // JSON carries the same facts, and `--target` narrows it; nothing was planned by explaining.
    let json = env.ok(&["explain", &mover, "--target", "directory", "--format", "json"]).json();
    assert_eq!(json["targets_read"], false);
    assert_eq!(json["targets"].as_object().unwrap().keys().collect::<Vec<_>>(), ["directory"]);
    let role = json["unmatched"].as_array().unwrap().iter().find(|r| r["role"] == "engineering").unwrap();
    assert_eq!(role["facts"][0]["attribute"], "department");
    assert_eq!(role["facts"][0]["expected"][0], "Engineering");
    assert_eq!(role["facts"][0]["actual"], "Sales");
    assert_eq!(role["facts"][0]["previous"], "Engineering");
    assert_eq!(env.pending_count(), pending);

    // An unknown identity or target is a clear error.
    let out = env.expect(1, &["explain", "nobody"]);
    assert!(out.stderr.contains("no identity `nobody`"), "{}", out.stderr);
    let out = env.run(&["explain", &mover, "--target", "nope"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("unknown target `nope`"), "{}", out.stderr);
}
