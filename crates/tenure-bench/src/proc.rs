//! P2 and P7: the real `tenure import` as a child process, timed from spawn to exit, and its
//! peak resident set size as `/usr/bin/time -v` reports it (the kernel's `ru_maxrss`).

use crate::data::{Layout, TODAY};
use crate::stats::{Summary, verdict};
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// P2 target: seconds.
const P2_TARGET_S: f64 = 2.0;
/// P7 target: megabytes (10^6 bytes; `ru_maxrss` is in KiB and converted).
const P7_TARGET_MB: f64 = 300.0;
const TIME: &str = "/usr/bin/time";

/// The `tenure` binary: `explicit`, or the one built next to this benchmark binary.
pub fn tenure_binary(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("tenure"),
    };
    if !path.is_file() {
        bail!("no `tenure` binary at `{}`; run `cargo build --release -p tenure -p tenure-bench`", path.display());
    }
    if path.components().any(|c| c.as_os_str() == "debug") {
        eprintln!("warning: `{}` looks like a debug build; benchmark figures need --release", path.display());
    }
    Ok(path)
}

/// One finished `tenure import`.
pub struct Outcome {
    pub wall: Duration,
    pub max_rss_kib: Option<u64>,
    pub stdout: String,
}

impl Outcome {
    /// The import's own summary line (rows, events, operations).
    pub fn summary(&self) -> &str {
        self.stdout.lines().rev().find(|l| l.contains("operations planned")).unwrap_or("(no summary line)")
    }

    /// The number of operations the import planned, from its summary line.
    pub fn operations(&self) -> u64 {
        let s = self.summary();
        s.rsplit(';').next().and_then(|t| t.split_whitespace().next()).and_then(|n| n.parse().ok()).unwrap_or_default()
    }
}

/// KiB as megabytes (10^6 bytes), with the MiB figure for readers who think in those.
pub fn mb(kib: u64) -> String {
    format!("{:.1} MB ({:.1} MiB)", kib_to_mb(kib), kib as f64 / 1024.0)
}

pub fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// Runs `tenure import --source hr <csv>` against the store at `store` (created if missing).
/// With `measure_rss`, the child runs under `/usr/bin/time -v`. A non-zero exit (rejected rows,
/// a held batch, an error) is an error: the benchmark must measure an applied import.
pub fn import(layout: &Layout, tenure: &Path, store: &Path, csv: &Path, measure_rss: bool) -> Result<Outcome> {
    import_with(&layout.config(), tenure, store, csv, measure_rss)
}

/// Like [`import`], with the config at `config`.
pub fn import_with(config: &Path, tenure: &Path, store: &Path, csv: &Path, measure_rss: bool) -> Result<Outcome> {
    let mut cmd = if measure_rss {
        let mut c = Command::new(TIME);
        c.arg("-v").arg(tenure);
        c
    } else {
        Command::new(tenure)
    };
    cmd.arg("--config")
        .arg(config)
        .args(["import", "--source", "hr"])
        .arg(csv)
        .env("TENURE_TODAY", TODAY)
        .env("TENURE_STORE_URL", format!("sqlite://{}", store.display()))
        .env_remove("TENURE_CONFIG")
        .stdin(Stdio::null());
    let start = Instant::now();
    let out = cmd.output().with_context(|| format!("cannot run `{}`", tenure.display()))?;
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let tail: Vec<&str> = stdout.lines().rev().take(3).collect();
        bail!("`tenure import {}` exited with {}: {}\n{stderr}", csv.display(), out.status, tail.join(" | "));
    }
    let max_rss_kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok());
    if measure_rss && max_rss_kib.is_none() {
        bail!("`{TIME} -v` reported no maximum resident set size:\n{stderr}");
    }
    Ok(Outcome { wall, max_rss_kib, stdout })
}

/// A fresh copy of the seeded store in `dir`, so that every run imports into yesterday's state.
fn fresh_store(layout: &Layout, dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot remove `{}`", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let db = dir.join("tenure.db");
    let seed = layout.seed_db();
    std::fs::copy(&seed, &db).with_context(|| format!("cannot copy `{}`", seed.display()))?;
    // Flush the copy, so that its writeback does not compete with the timed run.
    std::fs::File::open(&db).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync `{}`", db.display()))?;
    // The seeding process checkpoints and removes its WAL on exit; copy one if it did not.
    let wal = seed.with_extension("db-wal");
    if wal.exists() {
        std::fs::copy(&wal, db.with_extension("db-wal")).with_context(|| format!("cannot copy `{}`", wal.display()))?;
    }
    Ok(db)
}

/// P2: `runs` imports of today's snapshot, each into a fresh copy of yesterday's store.
pub fn p2(layout: &Layout, tenure: &Path, runs: usize) -> Result<bool> {
    layout.require(true)?;
    let dir = layout.run_dir("p2");
    let mut secs = Vec::with_capacity(runs);
    for i in 0..runs.max(1) {
        let store = fresh_store(layout, &dir)?;
        let out = import(layout, tenure, &store, &layout.day2(), false)?;
        if i == 0 {
            println!("P2 run 1: {}", out.summary());
        }
        secs.push(out.wall.as_secs_f64());
    }
    let s = Summary::of(secs).context("no runs")?;
    Ok(verdict("P2", "tenure import, 100,000 rows, 1% changed, into yesterday's store", &s, "s", P2_TARGET_S))
}

/// P7: peak RSS of the daily import of P2, each run into a fresh copy of yesterday's store.
pub fn p7(layout: &Layout, tenure: &Path, runs: usize) -> Result<bool> {
    layout.require(true)?;
    let dir = layout.run_dir("p7");
    let mut mbs = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let store = fresh_store(layout, &dir)?;
        let out = import(layout, tenure, &store, &layout.day2(), true)?;
        mbs.push(out.max_rss_kib.map_or(0.0, kib_to_mb));
    }
    let s = Summary::of(mbs).context("no runs")?;
    Ok(verdict("P7", "peak RSS of tenure import, 100,000 identities", &s, "MB", P7_TARGET_MB))
}
