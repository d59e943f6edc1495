//! The engine in-process: imports, the guard, approvals and rejections on a real SQLite store in
//! memory, on a fake clock, with the starter config and policy parsed from their texts. One
//! integration test binary for the crate (each costs a link step); modules by purpose.
//!
//! Every case starts from a [`World`]: the starter's four targets, a crowd of 40 support staff
//! (`C01`..`C40`, so one leaver is under the guard's 5 %) imported and, unless a case says
//! otherwise, settled (their operations verified), then the rows the case is about. What a step
//! did is read back from the store and rendered as lines, so each case is data.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

mod correlation;
mod decisions;
mod explain;
mod guard;
mod import;
mod issue15;
mod issue15_rows;
mod push;
mod requests;
mod schedule;
mod sink;
mod timezone;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tenure_core::audit::{AuditEntry, AuditRecord};
use tenure_core::clock::{Clock, FakeClock};
use tenure_core::{ApprovalState, OpState, Status};
use tenure_engine::app::{App, Loaded};
use tenure_engine::import::{ImportOptions, ImportReport, import_csv};
use tenure_sample::starter::{self, Guard};
use tenure_store::{AuditFilter, Backend, Finished, OpFilter, OpRecord, SqliteStore};

/// The instant every case starts at (the binary's tests use the same day).
pub const NOW: &str = "2026-11-21T09:00:00Z";

const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";

/// How a world is set up: the starter's, unless a case changes it.
#[derive(Debug, Clone)]
pub struct Setup {
    pub guard: Guard,
    pub policy: String,
    /// A second CSV source, `contractors`, with the same columns as `hr`.
    pub second_source: bool,
    /// Whether the crowd's operations are verified before the case starts.
    pub settled: bool,
    /// The `hr` source's `timezone`, if not the default UTC.
    pub timezone: Option<&'static str>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            guard: Guard::STARTER,
            policy: starter::POLICY.to_string(),
            second_source: false,
            settled: true,
            timezone: None,
        }
    }
}

/// A person as the cases write them: `id login department title status [end_date]`, with the
/// HR status values (`active`, `leave`, `terminated`).
pub fn row(spec: &str) -> String {
    let words: Vec<&str> = spec.split(' ').collect();
    let [id, login, dept, title, status, rest @ ..] = &words[..] else { panic!("row `{spec}`") };
    let end = rest.first().copied().unwrap_or("");
    format!(
        "{id},N,L,{login}@example.com,{login},{dept},{title},Berlin,CC1,,employee,employee,,2020-01-01,{end},{status}"
    )
}

/// The crowd: 40 support staff, who hold only the birthright roles.
pub fn crowd() -> Vec<String> {
    (1..=40).map(|i| row(&format!("C{i:02} c{i:02} Support Associate active"))).collect()
}

/// A snapshot file: the header and `rows`.
pub fn csv(rows: &[String]) -> String {
    format!("{HEADER}\n{}\n", rows.join("\n"))
}

/// The crowd, without the members named, then `people`: a snapshot as the cases write them.
pub fn snapshot(people: &[&str], without: &[&str]) -> String {
    let mut rows: Vec<String> = people.iter().map(|p| row(p)).collect();
    rows.extend(crowd().into_iter().filter(|r| !without.iter().any(|w| r.starts_with(&format!("{w},")))));
    csv(&rows)
}

pub struct World {
    pub app: App,
    pub clock: Arc<FakeClock>,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

impl World {
    pub fn new() -> Self {
        Self::with(Setup::default())
    }

    pub fn with(setup: Setup) -> Self {
        let w = Self::empty(&setup);
        let report = w.import(&csv(&crowd()));
        assert_eq!(report.counts.joiners, 40, "{report:?}");
        if setup.settled {
            w.settle();
        }
        w
    }

    /// A world with nothing imported yet.
    pub fn empty(setup: &Setup) -> Self {
        let mut text = starter::config_with("# engine tests", &setup.guard, &starter::targets(true));
        if setup.second_source {
            text.push('\n');
            text.push_str(&tenure_sample::company::SOURCE_TOML.replace("name = \"hr\"", "name = \"contractors\""));
        }
        if let Some(tz) = setup.timezone {
            text = text.replacen("name = \"hr\"\n", &format!("name = \"hr\"\ntimezone = \"{tz}\"\n"), 1);
            assert!(text.contains("timezone = "), "the starter names its source `hr`");
        }
        let config = tenure_core::config::parse("tenure.toml", &text).unwrap();
        let clock = Arc::new(FakeClock::at(tenure_core::clock::parse_stamp(NOW).unwrap()));
        let policy = tenure_policy::parse("policy.toml", &setup.policy, &config, clock.today()).unwrap();
        let store: Arc<dyn Backend> = Arc::new(SqliteStore::memory(clock.clone()).unwrap());
        let loaded = Loaded { config, config_path: PathBuf::from("tenure.toml"), config_dir: PathBuf::from(".") };
        Self { app: App::from_parts(loaded, policy, store, clock.clone()), clock }
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        self.app.store()
    }

    /// Imports `text` as a snapshot of `hr`; the import must not fail.
    pub fn import(&self, text: &str) -> ImportReport {
        self.import_from("hr", text).unwrap()
    }

    pub fn import_from(&self, source: &str, text: &str) -> tenure_engine::Result<ImportReport> {
        self.import_with(source, text, &ImportOptions::default())
    }

    pub fn import_with(&self, source: &str, text: &str, opts: &ImportOptions) -> tenure_engine::Result<ImportReport> {
        import_csv(&self.app.engine().unwrap(), source, &format!("{source}.csv"), text.as_bytes(), opts)
    }

    /// Every operation, by id.
    pub fn ops(&self) -> BTreeMap<i64, OpRecord> {
        self.store().operations(&OpFilter::default()).unwrap().into_iter().map(|o| (o.id, o)).collect()
    }

    /// Ends every runnable operation in `state`, as an executor would record it: `verified`
    /// stands in for `tenure apply` against targets that took every change.
    pub fn finish_all(&self, state: OpState) {
        loop {
            let claimed = self.store().claim("test", Duration::from_secs(60), 1_000).unwrap();
            if claimed.is_empty() {
                return;
            }
            let done: Vec<Finished> = claimed
                .iter()
                .map(|o| Finished {
                    op: o.id,
                    state,
                    error: (state == OpState::Failed).then(|| "no answer".to_string()),
                    next_attempt_at: None,
                    note: None,
                    audit: AuditEntry::new("executor", &format!("apply.{}", o.kind), state.as_str())
                        .identity(&o.identity),
                })
                .collect();
            assert_eq!(self.store().finish_many(&done, &[], "test").unwrap(), done.len());
        }
    }

    pub fn settle(&self) {
        self.finish_all(OpState::Verified);
    }

    /// Each identity's status and attributes, by id: what a held batch must leave alone.
    pub fn identities(&self) -> BTreeMap<String, String> {
        let schema = &self.app.config().schema;
        self.store()
            .identities(schema, None)
            .unwrap()
            .into_iter()
            .map(|i| {
                let attrs: Vec<String> =
                    schema.names().filter_map(|n| Some(format!("{n}={}", i.attr(schema, n)?))).collect();
                (i.id.to_string(), format!("{} {}", i.status, attrs.join(" ")))
            })
            .collect()
    }

    pub fn status(&self, id: &str) -> Status {
        self.store().identity(&self.app.config().schema, id).unwrap().unwrap().status
    }

    /// The audit records whose action starts with `action`.
    pub fn audit(&self, action: &str) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        self.store()
            .scan_audit(&AuditFilter::default(), &mut |r| {
                if r.entry.action.starts_with(action) {
                    out.push(r);
                }
                true
            })
            .unwrap();
        out
    }

    /// The only pending approval's id.
    pub fn pending_approval(&self) -> i64 {
        let pending = self.store().approvals(true).unwrap();
        assert_eq!(pending.len(), 1, "{pending:?}");
        assert_eq!(pending[0].state, ApprovalState::Pending);
        pending[0].id
    }

    /// Runs `step` and renders what it did to the operations: `plan IDENTITY TARGET KIND
    /// [ENTITLEMENT] [RULES]` for each new one and `cancel IDENTITY TARGET KIND [ENTITLEMENT]`
    /// for each queued one it cancelled, each group sorted.
    pub fn changes<T>(&self, step: impl FnOnce() -> T) -> (T, Vec<String>) {
        let before = self.ops();
        let out = step();
        let after = self.ops();
        let mut planned = BTreeSet::new();
        let mut cancelled = BTreeSet::new();
        for (id, op) in &after {
            match before.get(id) {
                None => planned.insert(format!("plan {}{}", op_line(op), rules(op))),
                Some(was) if was.state != OpState::Cancelled && op.state == OpState::Cancelled => {
                    cancelled.insert(format!("cancel {}", op_line(op)))
                }
                Some(_) => false,
            };
        }
        (out, planned.into_iter().chain(cancelled).collect())
    }

    /// Imports `text` and renders the outcome (`applied`, `unchanged`, `held: REASON`), the
    /// rejected rows, the events and what happened to the operations.
    pub fn import_lines(&self, text: &str) -> Vec<String> {
        self.import_lines_from("hr", text)
    }

    pub fn import_lines_from(&self, source: &str, text: &str) -> Vec<String> {
        let (report, ops) = self.changes(|| self.import_from(source, text).unwrap());
        let mut lines = vec![match &report.held_reason {
            Some(why) => format!("{}: {why}", report.outcome),
            None => report.outcome.to_string(),
        }];
        for r in &report.rejected {
            lines.push(format!(
                "rejected line {}{}{}: {}",
                r.line,
                r.key.as_deref().map(|k| format!(" {k}")).unwrap_or_default(),
                r.field.as_deref().map(|f| format!(" field `{f}`")).unwrap_or_default(),
                r.reason
            ));
        }
        let mut events: Vec<String> = report
            .events
            .iter()
            .map(|e| format!("{} {}{}", e.kind, e.identity, if e.significant { " significant" } else { "" }))
            .collect();
        events.sort();
        lines.extend(events);
        lines.extend(ops);
        assert_eq!(
            report.counts.operations,
            lines.iter().filter(|l| l.starts_with("plan ")).count(),
            "the summary counts what was planned"
        );
        assert_eq!(report.counts.cancelled, lines.iter().filter(|l| l.starts_with("cancel ")).count());
        lines
    }
}

fn op_line(op: &OpRecord) -> String {
    format!(
        "{} {} {}{}",
        op.identity,
        op.target,
        op.kind,
        op.entitlement.as_deref().map(|e| format!(" {e}")).unwrap_or_default()
    )
}

/// The policy rules behind an operation, as `[rule, ...]`, if any.
fn rules(op: &OpRecord) -> String {
    let rules: Vec<&str> =
        op.reason["rules"].as_array().map(|r| r.iter().filter_map(|r| r.as_str()).collect()).unwrap_or_default();
    if rules.is_empty() { String::new() } else { format!(" [{}]", rules.join(", ")) }
}
