//! End-to-end tests of the `tenure` binary. One integration test binary (each test binary costs
//! a link step); modules by purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, reason = "test code")]

mod audit;
mod campaigns;
mod contract;
mod explain;
mod hardening;
mod issue10_exceptions;
mod issue10_sink;
mod issue15_approvals;
mod issue15_connectors;
mod issue15_import;
mod issue15_limits;
mod issue15_server;
mod lifecycle;
mod peers;
mod pushes;
mod requests;
mod schedule;
mod scim;
mod server;
mod snapshots;
mod tour;

use chrono::NaiveDate;
use std::path::PathBuf;
use std::process::Command;
use tempfile::TempDir;
use tenure_testkit::company::{Company, Options};

pub const TODAY: &str = "2026-11-21";

/// A temp dir with a starter config, and a way to run the real binary in it.
pub struct Env {
    pub dir: TempDir,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// `tenure init` into a fresh temp dir.
    pub fn new() -> Self {
        let env = Self { dir: TempDir::new().unwrap() };
        let out = env.run(&["init", "."]);
        assert_eq!(out.code, 0, "init failed: {}", out.stderr);
        env
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn run(&self, args: &[&str]) -> Out {
        self.run_with_today(TODAY, args)
    }

    pub fn run_with_today(&self, today: &str, args: &[&str]) -> Out {
        self.run_with(&[("TENURE_TODAY", today)], args)
    }

    /// Runs on a clock that starts at `now` (`TENURE_NOW`), on the tests' day.
    pub fn run_at(&self, now: &str, args: &[&str]) -> Out {
        self.run_with(&[("TENURE_TODAY", TODAY), ("TENURE_NOW", now)], args)
    }

    /// Runs on a clock that starts at `now` (`TENURE_NOW`) with no pinned day: the date follows
    /// the clock, as it does for `tenure serve` and the schedules.
    pub fn run_on_clock(&self, now: &str, args: &[&str]) -> Out {
        self.run_env(&[("TENURE_NOW", now)], &["TENURE_TODAY"], args)
    }

    /// Runs with these environment variables set.
    pub fn run_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Out {
        self.run_env(vars, &[], args)
    }

    /// Runs with `vars` set and `unset` removed from the environment.
    fn run_env(&self, vars: &[(&str, &str)], unset: &[&str], args: &[&str]) -> Out {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenure"));
        for name in unset {
            cmd.env_remove(name);
        }
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .envs(vars.iter().copied())
            .env_remove("TENURE_CONFIG")
            .env_remove("TENURE_STORE_URL")
            .env("TENURE_USER", "test-admin")
            .output()
            .unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects exit status `code`.
    pub fn ok(&self, args: &[&str]) -> Out {
        self.expect(0, args)
    }

    pub fn expect(&self, code: i32, args: &[&str]) -> Out {
        let out = self.run(args);
        assert_eq!(out.code, code, "tenure {args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        out
    }

    pub fn db(&self) -> PathBuf {
        self.path("tenure-data/tenure.db")
    }

    /// Pending operations of one identity as `target kind entitlement` strings, sorted.
    pub fn pending(&self, identity: &str) -> Vec<String> {
        self.pending_after(0, identity)
    }

    /// Like [`Env::pending`], only operations with an id above `after`.
    pub fn pending_after(&self, after: u64, identity: &str) -> Vec<String> {
        let ops = self.ok(&["plan", "--identity", identity, "--format", "json"]).json();
        let mut v: Vec<String> = ops
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["id"].as_u64().unwrap() > after)
            .map(|o| {
                format!(
                    "{} {}{}",
                    o["target"].as_str().unwrap(),
                    o["kind"].as_str().unwrap(),
                    o["entitlement"].as_str().map(|e| format!(" {e}")).unwrap_or_default()
                )
            })
            .collect();
        v.sort();
        v
    }

    /// Stands in for `tenure apply` against real targets in tests that have none: marks every
    /// pending operation verified directly in the database, so the next snapshot is planned
    /// against access that took effect (queued work that never ran is replaced, not stacked).
    pub fn settle_in_db(&self) {
        let db = rusqlite::Connection::open(self.db()).unwrap();
        db.execute("UPDATE operations SET state = 'verified', attempts = 1 WHERE state = 'pending'", []).unwrap();
    }

    pub fn pending_count(&self) -> usize {
        self.ok(&["plan", "--format", "json"]).json().as_array().unwrap().len()
    }
}

/// A small company of employees in four departments, no contractors or service accounts.
pub fn company(people: usize) -> Company {
    let mut o = Options::new(people, NaiveDate::parse_from_str(TODAY, "%Y-%m-%d").unwrap());
    o.departments = 4;
    o.service_accounts = 0;
    o.contractor_fraction = 0.0;
    Company::generate(&o)
}
