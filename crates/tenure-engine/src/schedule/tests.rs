//! What is due, over data and a stepped clock.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use super::Job;
use super::select::{self, TimeBoundGrant};
use chrono::{DateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use tenure_connect::AccountState;
use tenure_core::config::ScheduleConfig;
use tenure_core::plan::AccountView;
use tenure_core::{Attrs, Identity, Kind, OpKind, Status};

fn at(s: &str) -> DateTime<Utc> {
    tenure_core::clock::parse_stamp(s).unwrap()
}

#[test]
fn jobs_are_due_when_never_run_an_interval_after_their_last_run_or_when_the_clock_went_back() {
    let cfg = ScheduleConfig { tick_secs: 30, reconcile_secs: 3600, checkpoint_secs: 600, ..ScheduleConfig::default() };
    let jobs = [Job::EndDate, Job::Reconcile, Job::Checkpoint];
    #[track_caller]
    fn check(cfg: &ScheduleConfig, jobs: &[Job], last: &[(Job, &str)], now: &str, want: &[Job]) {
        let last: HashMap<Job, DateTime<Utc>> = last.iter().map(|(j, t)| (*j, at(t))).collect();
        assert_eq!(select::due_jobs(cfg, jobs, &last, at(now)), want, "at {now}, last runs {last:?}");
    }
    let t0 = "2026-11-30T12:00:00Z";
    check(&cfg, &jobs, &[], t0, &jobs);
    let ran = [(Job::EndDate, t0), (Job::Reconcile, t0), (Job::Checkpoint, t0)];
    check(&cfg, &jobs, &ran, t0, &[]);
    check(&cfg, &jobs, &ran, "2026-11-30T12:00:29Z", &[]);
    check(&cfg, &jobs, &ran, "2026-11-30T12:00:30Z", &[Job::EndDate]);
    check(&cfg, &jobs, &ran, "2026-11-30T12:10:00Z", &[Job::EndDate, Job::Checkpoint]);
    check(&cfg, &jobs, &ran, "2026-11-30T13:00:00Z", &jobs);
    // `TENURE_NOW` set before the stored runs: due at once, not an hour after the future.
    check(&cfg, &jobs, &ran, "2026-11-30T11:59:00Z", &jobs);
    // Only the jobs asked about, in their order.
    check(&cfg, &[Job::Checkpoint, Job::EndDate], &[], t0, &[Job::Checkpoint, Job::EndDate]);
}

#[test]
fn job_names_are_their_actors_and_parse_back() {
    for job in Job::ALL {
        assert_eq!(Job::parse(job.name()), Some(*job));
        assert_eq!(job.actor(), format!("schedule:{}", job.name()));
    }
    assert_eq!(Job::parse("end-date"), None);
    assert_eq!(
        Job::names(),
        "start_date, end_date, grant_expiry, campaigns, recheck, overdue, retention, credentials, reconcile, checkpoint, apply"
    );
    assert!(!Job::SCHEDULED.contains(&Job::Apply), "the server's executor is a worker of its own");
}

/// Two sources: `hr` in UTC, `us` in Los Angeles (UTC-8 in winter).
fn config() -> tenure_core::config::Config {
    let text = r#"
[[source]]
name = "hr"
key = "employee_id"
[source.columns]
username = "login"
start_date = "start"
end_date = "end"
status = "employment_status"

[[source]]
name = "us"
key = "employee_id"
timezone = "America/Los_Angeles"
[source.columns]
username = "login"
start_date = "start"
end_date = "end"
status = "employment_status"
"#;
    tenure_core::config::parse("tenure.toml", text).unwrap()
}

fn person(config: &tenure_core::config::Config, id: &str, status: Status, start: &str, end: &str) -> Identity {
    let schema = &config.schema;
    let mut attrs = Attrs::new(schema);
    attrs.set(schema.slot_of("username"), Some(&id.to_lowercase()));
    attrs.set(schema.slot_of("start_date"), Some(start).filter(|s| !s.is_empty()));
    attrs.set(schema.slot_of("end_date"), Some(end).filter(|s| !s.is_empty()));
    Identity::new(id, Kind::Contractor, status, attrs)
}

#[test]
fn dates_come_due_at_the_days_edges_in_each_sources_timezone() {
    let c = config();
    let people = [
        ("hr", person(&c, "H-END", Status::Active, "2020-01-01", "2026-11-30")),
        ("hr", person(&c, "H-LEAVE", Status::Suspended, "2020-01-01", "2026-11-30")),
        ("hr", person(&c, "H-START", Status::Prehire, "2026-12-01", "")),
        ("hr", person(&c, "H-LATER", Status::Prehire, "2026-12-02", "")),
        ("hr", person(&c, "H-GONE", Status::Terminated, "2020-01-01", "2026-01-31")),
        ("hr", person(&c, "H-STAYS", Status::Active, "2020-01-01", "2026-12-01")),
        ("us", person(&c, "U-END", Status::Active, "2020-01-01", "2026-11-30")),
        ("us", person(&c, "U-START", Status::Prehire, "2026-12-01", "")),
        ("gone", person(&c, "X-END", Status::Active, "2020-01-01", "2026-11-30")),
    ];
    #[track_caller]
    fn check(c: &tenure_core::config::Config, people: &[(&str, Identity)], now: &str, want: &[&str]) {
        let due = select::dates_due(c, people.iter().map(|(s, i)| (*s, i)), at(now));
        let got: Vec<String> = due
            .iter()
            .map(|d| format!("{} {} {}: {} -> {}", d.job.name(), d.source, d.identity, d.from, d.to))
            .collect();
        assert_eq!(got, want, "at {now}");
    }
    // The last second of 30 November in UTC: the end date is the last working day.
    check(&c, &people, "2026-11-30T23:59:59Z", &[]);
    check(
        &c,
        &people,
        "2026-12-01T00:00:00Z",
        &[
            "end_date hr H-END: active -> terminated",
            "end_date hr H-LEAVE: suspended -> terminated",
            "start_date hr H-START: prehire -> active",
        ],
    );
    // Los Angeles is eight hours behind: its 30 November ends at 08:00 UTC.
    check(
        &c,
        &people,
        "2026-12-01T07:59:59Z",
        &[
            "end_date hr H-END: active -> terminated",
            "end_date hr H-LEAVE: suspended -> terminated",
            "start_date hr H-START: prehire -> active",
        ],
    );
    check(
        &c,
        &people,
        "2026-12-01T08:00:00Z",
        &[
            "end_date hr H-END: active -> terminated",
            "end_date hr H-LEAVE: suspended -> terminated",
            "start_date hr H-START: prehire -> active",
            "end_date us U-END: active -> terminated",
            "start_date us U-START: prehire -> active",
        ],
    );
    // A rederived record names only the key: the stored attributes and HR standing decide.
    let r = select::rederive("H-END");
    assert_eq!((r.key.as_str(), r.deleted, r.fields.len()), ("H-END", false, 0));
}

fn view(enabled: bool, grants: &[&str]) -> AccountView {
    AccountView {
        exists: true,
        enabled,
        grants: grants.iter().map(ToString::to_string).collect(),
        name: Some("ada".into()),
    }
}

fn read(enabled: bool, grants: &[&str]) -> AccountState {
    AccountState {
        account: "ada".into(),
        external_id: Some("E1".into()),
        enabled,
        grants: grants.iter().map(ToString::to_string).collect::<BTreeSet<_>>(),
        sessions: None,
        email: None,
    }
}

#[test]
fn a_recheck_finds_what_came_back_and_plans_its_undoing() {
    #[track_caller]
    fn check(view: AccountView, read: Option<AccountState>, want: &[&str]) {
        let back = select::came_back("E1", "dir", &view, read.as_ref());
        assert_eq!(back.findings.len(), back.ops.len(), "one fix per finding");
        let got: Vec<String> = back
            .findings
            .iter()
            .zip(&back.ops)
            .map(|(f, o)| {
                assert_eq!(
                    (f.kind.as_str(), f.identity.as_deref(), f.target.as_str()),
                    ("resurrected", Some("E1"), "dir")
                );
                assert_eq!(o.account.as_deref(), Some("ada"), "the fix acts on the account Tenure named");
                format!("{} {}: {}", o.kind, o.entitlement.as_deref().unwrap_or("-"), f.detail)
            })
            .collect();
        assert_eq!(got, want);
    }
    check(view(false, &[]), None, &[]);
    check(view(false, &[]), Some(read(false, &[])), &[]);
    check(
        view(false, &[]),
        Some(read(true, &[])),
        &["disable -: account `ada` of leaver `E1` is enabled again in `dir`"],
    );
    check(
        view(false, &[]),
        Some(read(true, &["staff", "admins"])),
        &[
            "revoke admins: `admins` is held again in `dir` by account `ada` of leaver `E1`",
            "revoke staff: `staff` is held again in `dir` by account `ada` of leaver `E1`",
            "disable -: account `ada` of leaver `E1` is enabled again in `dir`",
        ],
    );
    // A grant Tenure still means the leaver to hold is not back; nor is an account Tenure keeps
    // enabled.
    check(view(true, &["alumni"]), Some(read(true, &["alumni"])), &[]);
    assert_eq!(select::came_back("E1", "dir", &view(false, &[]), Some(&read(true, &[]))).ops[0].kind, OpKind::Disable);
}

#[test]
fn time_bound_grants_expire_at_their_instant() {
    let g = |id: &str, t: &str| TimeBoundGrant {
        request: i64::from(id.as_bytes()[1] - b'0'),
        identity: id.into(),
        target: "warehouse".into(),
        entitlement: "admin".into(),
        expires_at: at(t),
    };
    let grants = [g("E2", "2026-12-01T10:00:00Z"), g("E1", "2026-12-01T09:00:00Z"), g("E3", "2026-12-02T00:00:00Z")];
    let ids = |now: &str| select::expired(&grants, at(now)).iter().map(|g| g.identity.clone()).collect::<Vec<_>>();
    assert!(ids("2026-12-01T08:59:59Z").is_empty());
    assert_eq!(ids("2026-12-01T09:00:00Z"), ["E1"]);
    assert_eq!(ids("2026-12-01T12:00:00Z"), ["E1", "E2"]);
    assert_eq!(ids("2026-12-03T00:00:00Z"), ["E1", "E2", "E3"]);
    // A request granting two entitlements ends once, in the order its grants expired.
    let mut two = grants.to_vec();
    two.push(TimeBoundGrant { entitlement: "finance".into(), ..g("E2", "2026-12-01T10:00:00Z") });
    assert_eq!(select::expired_requests(&two, at("2026-12-01T12:00:00Z")), [1, 2]);
}

#[test]
fn a_run_is_audited_when_it_acts_or_fails_anew() {
    use super::Done;
    use tenure_core::JobOutcome;
    let last = |outcome: JobOutcome, detail: &str| tenure_store::JobRun {
        job: "recheck".into(),
        last_at: "2026-12-01T00:00:00.000000Z".into(),
        outcome,
        detail: detail.into(),
        runs: 3,
    };
    let down = "case 4 of `E1`: reading `directory` failed: connection refused";
    let check = |job: Job, done: Done, previous: Option<tenure_store::JobRun>| {
        select::worth_auditing(job, &done, previous.as_ref())
    };
    assert!(!check(Job::Recheck, Done::ok(0, "nothing"), None), "nothing done: not audited");
    assert!(check(Job::Recheck, Done::ok(2, "2 findings"), None));
    assert!(check(Job::Recheck, Done::failed(0, down), None), "a first failure");
    assert!(check(Job::Recheck, Done::failed(0, down), Some(last(JobOutcome::Ok, "nothing"))));
    assert!(!check(Job::Recheck, Done::failed(0, down), Some(last(JobOutcome::Failed, down))), "the same again");
    assert!(check(Job::Recheck, Done::failed(0, "another"), Some(last(JobOutcome::Failed, down))));
    assert!(check(Job::Recheck, Done::failed(1, down), Some(last(JobOutcome::Failed, down))), "it acted");
    assert!(!check(Job::Checkpoint, Done::ok(1, "signed"), None), "the checkpoint's record says it");
}
