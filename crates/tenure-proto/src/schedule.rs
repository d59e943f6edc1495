//! What a pass of the schedules did (`tenure schedule run-once`, the server's scheduler log).

use serde::{Deserialize, Serialize};
use tenure_core::JobOutcome;

/// One job's run in a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// The job's name (`end_date`, `reconcile`, ...); its audit actor is `schedule:NAME`.
    pub job: String,
    pub outcome: JobOutcome,
    /// What it did, or why it failed.
    pub detail: String,
    /// How many things it acted on (identities pushed, findings, exceptions, ...).
    pub acted: usize,
}

/// A pass of the schedules: the jobs that were due (or asked for), in the order they ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRun {
    /// Set when another process holds the scheduler lease, so nothing ran.
    pub held_by: Option<String>,
    pub jobs: Vec<JobReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_run_prints_its_fields_in_order() {
        let run = ScheduleRun {
            held_by: None,
            jobs: vec![JobReport {
                job: "end_date".into(),
                outcome: JobOutcome::Ok,
                detail: "1 leaver".into(),
                acted: 1,
            }],
        };
        let json = serde_json::to_string(&run).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"held_by":null,"jobs":[{"job":"end_date","outcome":"ok","detail":"1 leaver","acted":1}]}"#
        );
    }
}
