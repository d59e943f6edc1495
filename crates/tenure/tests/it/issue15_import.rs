//! Imports under hostile input: a file that repeats one row, a record too long to read whole,
//! and every source held to the same row checks.

use crate::Env;
use std::process::Command;

const HEADER: &str = "employee_id,first_name,last_name,work_email,login,dept,title,location,cost_center,manager,employment_type,kind,owner,start,end,employment_status";
const ADA: &str = "E1,Ada,Lovelace,ada@x.com,ada,Engineering,Lead,Berlin,CC1,,employee,,,2020-01-01,,active";

/// Runs `tenure ARGS` in `env` under a small Python parent that reports the child's peak
/// resident set size (`getrusage(RUSAGE_CHILDREN)` of a process with that one child) and kills
/// it past `kill_mb` of RSS or `kill_secs` seconds, so a regression fails instead of taking the
/// machine down. Returns (exit code, stdout, peak RSS in MB, killed).
fn measured(env: &Env, args: &[&str], kill_mb: u64, kill_secs: u64) -> (i32, String, f64, bool) {
    const WATCH: &str = r#"
import os, resource, subprocess, sys, time
kill_kb, kill_s = int(sys.argv[1]) * 1024, float(sys.argv[2])
out = open(sys.argv[3], "wb")
p = subprocess.Popen(sys.argv[4:], stdout=out, stderr=subprocess.DEVNULL)
start, killed = time.time(), False
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            rss = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), 0)
    except OSError:
        rss = 0
    if rss > kill_kb or time.time() - start > kill_s:
        p.kill(); killed = True
        p.wait()
        break
    time.sleep(0.02)
print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, int(killed))
"#;
    let out_file = env.path("measured.out");
    let out = Command::new("python3")
        .arg("-c")
        .arg(WATCH)
        .arg(kill_mb.to_string())
        .arg(kill_secs.to_string())
        .arg(&out_file)
        .arg(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .current_dir(env.dir.path())
        .env("TENURE_TODAY", crate::TODAY)
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL")
        .env("TENURE_USER", "test-admin")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let v: Vec<i64> = line.split_whitespace().map(|t| t.parse().unwrap()).collect();
    let stdout = std::fs::read_to_string(&out_file).unwrap_or_default();
    (v[0] as i32, stdout, v[1] as f64 * 1024.0 / 1e6, v[2] == 1)
}

#[test]
fn issue15_a_file_repeating_one_row_is_rejected_in_bounded_memory() {
    let env = Env::new();
    let n = 100_000;
    let mut text = format!("{HEADER}\n");
    for _ in 0..n {
        text.push_str(ADA);
        text.push('\n');
    }
    env.write("repeated.csv", &text);
    let (code, stdout, peak_mb, killed) =
        measured(&env, &["import", "--source", "hr", "repeated.csv", "--format", "json"], 1_000, 300);
    eprintln!("peak RSS of `tenure import` for {n} copies of one row: {peak_mb:.0} MB");
    assert!(!killed, "the import was killed past 1 GB or 300 s (peak {peak_mb:.0} MB)");
    assert!(peak_mb < 300.0, "peak RSS {peak_mb:.0} MB for {n} copies of one row");
    assert_eq!(code, 1, "rejected rows need action");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["counts"]["rows"], n);
    assert_eq!(report["counts"]["rejected"], n, "every copy is counted");
    assert_eq!(report["counts"]["accepted"], 0);
    let detail = report["rejected"].as_array().unwrap();
    assert_eq!(detail.len(), 1_000, "the detail is capped");
    assert_eq!(report["rejected_more"], n - 1_000, "and says how many more");
    assert_eq!(detail[0]["line"], 2);
    assert_eq!(detail[0]["reason"], format!("duplicate key (also on line 3, 4, 5, 6, 7 and {} more)", n - 6));
    // The audit trail lists the same detail and counts the rest in one record.
    let db = rusqlite::Connection::open(env.db()).unwrap();
    let count = |action: &str| -> i64 {
        db.query_row("SELECT count(*) FROM audit WHERE action = ?1", [action], |r| r.get(0)).unwrap()
    };
    assert_eq!(count("import.row_rejected"), 1_000);
    assert_eq!(count("import.rows_rejected"), 1);
    // Text output says so too.
    let out = env.expect(1, &["import", "--source", "hr", "repeated.csv", "--dry-run"]);
    assert!(out.stdout.contains(&format!("... and {} more rejected rows", n - 1_000)), "{}", &out.stdout[..500]);
}

#[test]
fn issue15_a_record_too_long_to_read_whole_is_refused_with_its_line() {
    let env = Env::new();
    // One 50 MB line after the header, never terminated: read whole, it cost seven times its
    // size.
    let mut text = format!("{HEADER}\nE1,");
    text.push_str(&"x".repeat(50 * 1024 * 1024));
    env.write("one-line.csv", &text);
    drop(text);
    let (code, stdout, peak_mb, killed) =
        measured(&env, &["import", "--source", "hr", "one-line.csv", "--format", "json"], 1_000, 300);
    eprintln!("peak RSS of `tenure import` of a 50 MB line: {peak_mb:.0} MB");
    assert!(!killed, "killed past 1 GB or 300 s");
    assert_eq!(code, 1);
    let err: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(err["code"], "snapshot_invalid", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("line 2: the record starting here is over 1048576 bytes"),
        "{err}"
    );
    assert!(peak_mb < 100.0, "peak RSS {peak_mb:.0} MB for a file of one 50 MB line");
    // Nothing was imported.
    assert_eq!(env.ok(&["identity", "list", "--format", "json"]).json().as_array().unwrap().len(), 0);
}

#[test]
fn issue15_look_alike_usernames_are_refused_with_row_field_and_reason() {
    let env = Env::new();
    env.write("day1.csv", &format!("{HEADER}\n{ADA}\n"));
    env.ok(&["import", "--source", "hr", "day1.csv"]);
    let fullwidth = "E2,Ada,Fake,fake@x.com,ａｄａ,Engineering,Lead,Berlin,CC1,,employee,,,2020-01-01,,active";
    let cyrillic = "E3,Ada,Fake,fake2@x.com,\u{430}da,Engineering,Lead,Berlin,CC1,,employee,,,2020-01-01,,active";
    let boss = "E4,Bo,Ss,bo@x.com,boss,Engineering,Lead,Berlin,CC1,E4,employee,,,2020-01-01,,active";
    env.write("day2.csv", &format!("{HEADER}\n{ADA}\n{fullwidth}\n{cyrillic}\n{boss}\n"));
    let out = env.expect(1, &["import", "--source", "hr", "day2.csv"]);
    for want in [
        "day2.csv:3: rejected `E2` field `username`: duplicate username `ada` (also `E1`)",
        "day2.csv:4: rejected `E3` field `username`: username `\u{430}da` looks like `ada` of identity `E1` (look-alike characters)",
        "day2.csv:5: rejected `E4` field `manager_id`: `E4` names itself as its manager",
    ] {
        assert!(out.stdout.lines().any(|l| l == want), "`{want}` not in:\n{}", out.stdout);
    }
}
