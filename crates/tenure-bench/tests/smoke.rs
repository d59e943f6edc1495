//! Every benchmark of `tenure-bench`, run once at a smoke size, so that a change that breaks one
//! (a migration its floor program did not follow, a route it calls, a report line it parses)
//! fails the suite instead of the next person measuring. The figures of a smoke run mean
//! nothing (a debug build, a few hundred rows); what is checked is that each benchmark completes,
//! measures, and prints its result line beside its floor.
//!
//! The benchmarks run the `tenure` binary that sits beside `tenure-bench` (the workspace's test
//! build makes both).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test: any failure must stop it loudly")]

use std::path::{Path, PathBuf};
use std::process::Command;

fn bench() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tenure-bench"))
}

/// Runs `tenure-bench --dir DIR ARGS`; a benchmark that missed its target exits 1 (expected of a
/// debug build), one that could not measure exits 2. Returns what it printed.
fn run(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bench())
        .arg("--dir")
        .arg(dir)
        .args(args)
        .env_remove("TENURE_CONFIG")
        .output()
        .expect("tenure-bench runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "tenure-bench {args:?} could not measure (exit {code:?}):\n{text}");
    text
}

fn has(text: &str, needle: &str, args: &str) {
    assert!(text.contains(needle), "tenure-bench {args} did not print `{needle}`:\n{text}");
}

#[test]
fn every_benchmark_runs_at_a_smoke_size() {
    let tenure = bench().with_file_name("tenure");
    assert!(tenure.is_file(), "no `tenure` binary beside tenure-bench at `{}`: build the workspace", tenure.display());
    let dir = tempfile::tempdir().unwrap();
    let gen_out = run(dir.path(), &["gen", "--rows", "200"]);
    has(&gen_out, "seeded", "gen");

    has(&run(dir.path(), &["p1", "--runs", "1"]), "P1 desired-state recompute", "p1");
    has(&run(dir.path(), &["p2", "--runs", "1"]), "P2 tenure import", "p2");
    let daily = run(dir.path(), &["p2", "--runs", "1", "--policy", "starter"]);
    has(&daily, "P2 floor", "p2 --policy starter");
    has(&daily, "P2 daily import", "p2 --policy starter");
    has(&run(dir.path(), &["p7", "--runs", "1"]), "P7 peak RSS", "p7");
    let first = run(dir.path(), &["p8", "--runs", "1"]);
    has(&first, "P8 floor", "p8");
    has(&first, "P8 first import", "p8");
    let reads = run(dir.path(), &["p9", "--seconds", "1"]);
    has(&reads, "floor: one row from SQLite", "p9");
    has(&reads, "GET /api/v1/identities (50 from a cursor)", "p9");
    let pushes = run(dir.path(), &["p3", "--runs", "1", "--seconds", "1", "--connections", "4"]);
    has(&pushes, "run 1: tenure", "p3");
    has(&pushes, "| floor", "p3");
    let leavers = run(dir.path(), &["p10", "--leavers", "2"]);
    has(&leavers, "P10: push to verified on LDAP + SCIM + PostgreSQL over 2 leavers", "p10");
    has(&leavers, "| floor", "p10");
}
