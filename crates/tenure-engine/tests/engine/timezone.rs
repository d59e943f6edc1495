//! A CSV snapshot's dates are read in its source's `timezone` (issue 9, point 7): a contractor's
//! last day ends at midnight where the source keeps its dates, not at midnight UTC, so the same
//! snapshot imported at the same instant makes a leaver in one zone and not yet in another.

use super::*;

/// A contractor whose last day is 2026-11-30, as the snapshot's row.
fn contractor() -> String {
    "K1,N,L,kim@example.com,kim,Engineering,Engineer,Berlin,CC1,,contractor,contractor,,2020-01-01,2026-11-30,active"
        .to_string()
}

/// Imports the crowd and the contractor into a world whose `hr` source is in `timezone`, once at
/// each instant, and says the contractor's status after each import and how many leavers each
/// import made.
fn check(timezone: Option<&'static str>, instants: &[&str], expect: &[(Status, usize)]) {
    let w = World::with(Setup { timezone, ..Setup::default() });
    let mut rows = vec![contractor()];
    rows.extend(crowd());
    let mut got = Vec::new();
    for t in instants {
        w.clock.set(tenure_core::clock::parse_stamp(t).unwrap());
        let report = w.import(&csv(&rows));
        got.push((w.status("K1"), report.counts.leavers));
        w.settle();
    }
    assert_eq!(got, expect, "source in {timezone:?} at {instants:?}");
}

#[test]
fn issue9_a_last_day_ends_at_midnight_in_the_sources_timezone() {
    use Status::{Active, Terminated};
    // 02:00 UTC on Dec 1 is still Nov 30 in Los Angeles: the contract runs; at 08:30 UTC it is
    // past midnight there and the contractor is a leaver.
    check(
        Some("America/Los_Angeles"),
        &["2026-12-01T02:00:00Z", "2026-12-01T08:30:00Z"],
        &[(Active, 0), (Terminated, 1)],
    );
    // The same first instant in a UTC source is already Dec 1.
    check(None, &["2026-11-30T20:00:00Z", "2026-12-01T02:00:00Z"], &[(Active, 0), (Terminated, 1)]);
    // Tokyo is ahead: at 16:00 UTC on Nov 30 it is already Dec 1 there, while UTC is not.
    check(Some("Asia/Tokyo"), &["2026-11-30T14:00:00Z", "2026-11-30T16:00:00Z"], &[(Active, 0), (Terminated, 1)]);
    check(None, &["2026-11-30T14:00:00Z", "2026-11-30T16:00:00Z"], &[(Active, 0), (Active, 0)]);
}

#[test]
fn issue9_a_joiner_whose_start_date_has_begun_in_the_sources_timezone_is_active() {
    // A start date of Dec 1 has begun in Tokyo at 16:00 UTC on Nov 30, not yet in Los Angeles.
    let row = "P1,N,L,pat@example.com,pat,Engineering,Engineer,Berlin,CC1,,employee,employee,,2026-12-01,,active";
    for (tz, expect) in [(Some("Asia/Tokyo"), Status::Active), (Some("America/Los_Angeles"), Status::Prehire)] {
        let w = World::with(Setup { timezone: tz, ..Setup::default() });
        w.clock.set(tenure_core::clock::parse_stamp("2026-11-30T16:00:00Z").unwrap());
        let mut rows = vec![row.to_string()];
        rows.extend(crowd());
        w.import(&csv(&rows));
        assert_eq!(w.status("P1"), expect, "source in {tz:?}");
    }
}
