//! The schedules in-process on a fake clock: a date's day ends and its job pushes the change
//! through the ingest path, once; the lease keeps a second scheduler out; a checkpoint signs only
//! what is new; jobs with nothing to do say so and write nothing.

use super::*;
use tenure_core::JobOutcome;
use tenure_engine::executor::Connectors;
use tenure_engine::schedule::{self, Job, PassOptions};
use tenure_proto::ScheduleRun;

/// One pass of `jobs` (or only `only`) as `owner`.
fn pass_as(app: &App, owner: &str, jobs: &'static [Job], only: Option<Job>) -> ScheduleRun {
    let opts = PassOptions { only, jobs, owner: owner.into(), lease: Duration::from_secs(60) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(schedule::run_pass(app, &Arc::new(Connectors::default()), &opts)).unwrap()
}

fn pass(w: &World, jobs: &'static [Job]) -> Vec<String> {
    lines(&pass_as(&w.app, "S", jobs, None))
}

fn lines(run: &ScheduleRun) -> Vec<String> {
    run.jobs.iter().map(|j| format!("{} {} {}: {}", j.job, j.outcome, j.acted, j.detail)).collect()
}

fn at(w: &World, t: &str) {
    w.clock.set(tenure_core::clock::parse_stamp(t).unwrap());
}

/// A person with given dates and HR status, as the snapshot's row.
fn dated(id: &str, login: &str, start: &str, end: &str, status: &str) -> String {
    format!(
        "{id},N,L,{login}@example.com,{login},Engineering,Engineer,Berlin,CC1,,contractor,contractor,,{start},{end},{status}"
    )
}

fn import_with_crowd(w: &World, rows: &[String]) {
    let mut all: Vec<String> = rows.to_vec();
    all.extend(crowd());
    w.import(&csv(&all));
    w.settle();
}

const END_DATE: &[Job] = &[Job::EndDate];
const DATES: &[Job] = &[Job::StartDate, Job::EndDate];

#[test]
fn a_contractors_end_date_makes_a_leaver_once_that_day_is_over() {
    let w = World::new();
    import_with_crowd(&w, &[dated("K1", "kim", "2020-01-01", "2026-11-21", "active")]);
    assert_eq!(w.status("K1"), Status::Active, "the end date is the last working day");
    assert_eq!(pass(&w, END_DATE), ["end_date ok 0: nothing due"]);
    // Each pass runs what is due: a tick (30 s by default) after its last run.
    at(&w, "2026-11-21T23:59:30Z");
    assert_eq!(pass(&w, END_DATE), ["end_date ok 0: nothing due"]);
    at(&w, "2026-11-22T00:00:00Z");
    let ran = pass(&w, END_DATE);
    assert_eq!(ran.len(), 1);
    assert!(ran[0].starts_with("end_date ok 1: hr: leaver `K1` ("), "{ran:?}");
    assert_eq!(w.status("K1"), Status::Terminated);
    let planned: Vec<String> = w
        .ops()
        .values()
        .filter(|o| o.identity == "K1" && o.state == OpState::Pending)
        .map(|o| format!("{} {}", o.target, o.kind))
        .collect();
    assert!(planned.iter().any(|p| p == "directory disable"), "the leaver's plan: {planned:?}");
    let actors: BTreeSet<String> = w
        .audit("")
        .into_iter()
        .filter(|r| r.entry.identity.as_deref() == Some("K1") || r.entry.action == "schedule.run")
        .filter(|r| r.at.as_str() >= "2026-11-22")
        .map(|r| format!("{} {}", r.entry.actor, r.entry.action))
        .collect();
    assert!(actors.contains("schedule:end_date schedule.run"), "{actors:?}");
    assert!(actors.contains("schedule:end_date event.leaver"), "the event names the schedule: {actors:?}");
    assert!(
        actors.iter().all(|a| a.starts_with("schedule:end_date ") || a.starts_with("planner ")),
        "nobody else acted: {actors:?}"
    );
    // Due again a tick later, and nothing to do: the leaver left once.
    assert!(pass(&w, END_DATE).is_empty(), "not due within the tick");
    w.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(pass(&w, END_DATE), ["end_date ok 0: nothing due"]);
}

#[test]
fn a_prehire_becomes_active_on_start_date() {
    let w = World::new();
    import_with_crowd(&w, &[dated("P1", "pat", "2026-11-23", "", "active")]);
    assert_eq!(w.status("P1"), Status::Prehire);
    at(&w, "2026-11-22T23:59:30Z");
    assert_eq!(pass(&w, DATES), ["start_date ok 0: nothing due", "end_date ok 0: nothing due"]);
    at(&w, "2026-11-23T00:00:00Z");
    let ran = pass(&w, DATES);
    assert!(ran[0].starts_with("start_date ok 1: hr: ") && ran[0].contains("`P1`"), "{ran:?}");
    assert_eq!(ran[1], "end_date ok 0: nothing due");
    assert_eq!(w.status("P1"), Status::Active);
}

#[test]
fn only_the_lease_holder_runs_the_schedules() {
    let w = World::new();
    import_with_crowd(&w, &[dated("K1", "kim", "2020-01-01", "2026-11-21", "active")]);
    at(&w, "2026-11-22T00:00:00Z");
    w.store().lead("other:1:ff", Duration::from_secs(60)).unwrap();
    let run = pass_as(&w.app, "S", END_DATE, None);
    assert!(run.held_by.as_deref().is_some_and(|h| h.starts_with("other:1:ff (until ")), "{run:?}");
    assert!(run.jobs.is_empty());
    assert_eq!(w.status("K1"), Status::Active, "nothing ran");
    assert!(w.store().job_runs().unwrap().is_empty(), "nothing recorded");
    // Its lease lapses (the process died): this one takes over.
    w.clock.advance(chrono::Duration::seconds(61));
    assert!(pass(&w, END_DATE)[0].starts_with("end_date ok 1"));
    assert_eq!(w.status("K1"), Status::Terminated);
}

#[test]
fn jobs_with_nothing_to_do_say_so_and_a_checkpoint_signs_only_what_is_new() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    let loaded = Loaded { config_dir: dir.path().to_path_buf(), ..w.app.loaded().clone() };
    let app = App::from_parts(loaded, w.app.policy().unwrap().clone(), w.store().clone(), w.clock.clone());
    const QUIET: &[Job] = &[Job::GrantExpiry, Job::Recheck, Job::Overdue, Job::Retention, Job::Checkpoint];
    let first = lines(&pass_as(&app, "S", QUIET, None));
    assert_eq!(
        first[..4],
        [
            "grant_expiry ok 0: no time-bound grant has expired",
            "recheck ok 0: no leaver case is due for its re-check",
            "overdue ok 0: no ticket is newly overdue",
            "retention ok 0: no account is past its retention period",
        ]
    );
    assert!(first[4].starts_with("checkpoint ok 1: the chain up to seq "), "{first:?}");
    let cp = w.audit("audit.checkpoint");
    assert_eq!(cp.iter().map(|r| r.entry.actor.as_str()).collect::<Vec<_>>(), ["schedule:checkpoint"]);
    assert!(dir.path().join("tenure-data/audit-signing.key.pub").exists(), "the key beside the config");
    // Nothing acted, so nothing but the checkpoint was audited.
    assert!(w.audit("schedule.run").is_empty());
    // An hour on nothing new was appended: nothing to sign.
    w.clock.advance(chrono::Duration::hours(1));
    let again = lines(&pass_as(&app, "S", QUIET, Some(Job::Checkpoint)));
    assert!(again[0].starts_with("checkpoint ok 0: nothing appended since the checkpoint at seq "), "{again:?}");
    let key = tenure_engine::evidence::read_public_key(&dir.path().join("tenure-data/audit-signing.key.pub")).unwrap();
    let report = tenure_engine::evidence::verify_store(w.store().as_ref(), Some(&key), None).unwrap();
    assert!(report.ok, "{:?}", report.checkpoints.problems);
    assert_eq!(report.checkpoints.verified, 1);
    let runs: Vec<(String, JobOutcome, i64)> =
        w.store().job_runs().unwrap().into_iter().map(|r| (r.job, r.outcome, r.runs)).collect();
    assert!(runs.contains(&("checkpoint".to_string(), JobOutcome::Ok, 2)), "{runs:?}");
}
