//! P8 (and P7 on the first import): the day-one seed. `tenure import` of 100,000 joiners into an
//! empty store, with every birthright operation planned and committed in one transaction,
//! beside its floor: the very rows that import wrote, inserted into a fresh database with the
//! same schema by a minimal program (prepared statements, one transaction), so that the engine's
//! overhead shows as a ratio that survives a noisy machine.

use crate::data::Layout;
use crate::proc::{import_with, kib_to_mb, mb};
use crate::stats::{Summary, verdict};
use anyhow::{Context as _, Result};
use rusqlite::types::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// P8 target: seconds.
const P8_TARGET_S: f64 = 5.0;
/// P7 target: megabytes.
const P7_TARGET_MB: f64 = 300.0;

/// Which policy the seed is planned under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// The starter policy `tenure init` writes (about 7 operations per person).
    Starter,
    /// The benchmark policy of P1 (300 roles, 2,000 entitlements, ~231 per person).
    Bench,
}

pub fn run(layout: &Layout, tenure: &Path, runs: usize, policy: Policy, rows: Option<usize>) -> Result<bool> {
    layout.require(false)?;
    let name = match policy {
        Policy::Starter => "p8-starter",
        Policy::Bench => "p8-bench",
    };
    let dir = layout.run_dir(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let policy_text = match policy {
        Policy::Starter => tenure_sample::starter::POLICY.to_string(),
        Policy::Bench => std::fs::read_to_string(layout.policy()).context("reading the bench policy")?,
    };
    std::fs::write(dir.join("policy.toml"), policy_text)?;
    std::fs::write(dir.join("tenure.toml"), crate::data::config())?;
    let csv = dir.join("day1.csv");
    let day1 = std::fs::read_to_string(layout.day1()).context("reading day1.csv")?;
    let text = match rows {
        None => day1,
        Some(n) => day1.split_inclusive('\n').take(n + 1).collect(),
    };
    std::fs::write(&csv, &text)?;
    let (mut secs, mut floors, mut mbs) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs.max(1) {
        let store_dir = dir.join("store");
        if store_dir.exists() {
            std::fs::remove_dir_all(&store_dir)?;
        }
        let db = store_dir.join("tenure.db");
        let out = import_with(&dir.join("tenure.toml"), tenure, &db, &csv, true)?;
        let floor = floor(&db, &dir.join("floor.db"))?;
        println!(
            "P8 run {}: {:.2} s, peak {}; floor {:.2} s (ratio {:.2}); {}",
            i + 1,
            out.wall.as_secs_f64(),
            mb(out.max_rss_kib.unwrap_or_default()),
            floor.as_secs_f64(),
            out.wall.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            out.summary()
        );
        secs.push(out.wall.as_secs_f64());
        floors.push(floor.as_secs_f64());
        mbs.push(out.max_rss_kib.map_or(0.0, kib_to_mb));
    }
    let f = Summary::of(floors).context("no runs")?;
    println!("P8 floor (the same rows into SQLite by a minimal program): min {:.2} s, median {:.2} s", f.min, f.median);
    let s = Summary::of(secs).context("no runs")?;
    let time_ok = verdict("P8", &format!("first import, {name}"), &s, "s", P8_TARGET_S);
    let m = Summary::of(mbs).context("no runs")?;
    let mem_ok = verdict("P7", &format!("peak RSS of the first import, {name}"), &m, "MB", P7_TARGET_MB);
    Ok(time_ok && mem_ok)
}

/// Reads every row `tenure` wrote, then times inserting them into a fresh database with the
/// same schema and pragmas: open, one transaction of prepared inserts, commit, close (which
/// checkpoints the WAL, as the `tenure` process does on exit).
fn floor(source: &Path, target: &Path) -> Result<Duration> {
    let src = rusqlite::Connection::open(source)?;
    let schema: Vec<(String, String, String)> = {
        let mut stmt = src.prepare(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'
             ORDER BY type = 'index', rowid",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
    };
    let mut tables: Vec<Rows> = Vec::new();
    for (kind, name, _) in &schema {
        if kind != "table" {
            continue;
        }
        tables.push(Rows::read(&src, name, "", 0)?);
    }
    drop(src);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    let started = Instant::now();
    let mut dst = rusqlite::Connection::open(target)?;
    dst.pragma_update(None, "journal_mode", "WAL")?;
    dst.pragma_update(None, "synchronous", "NORMAL")?;
    for (_, _, sql) in &schema {
        dst.execute_batch(sql)?;
    }
    let tx = dst.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for table in &tables {
        table.insert(&tx, "INSERT")?;
    }
    tx.commit()?;
    drop(dst);
    Ok(started.elapsed())
}

/// P2 under a chosen policy: the daily import (today's snapshot, 1 % changed) into a copy of a
/// store that holds yesterday's, beside its floor measured in the same run: a minimal program
/// that reads what the import must read (every stored identity of the source, and today's CSV
/// parsed with the csv crate) and inserts the rows the import added, in one transaction.
pub fn daily(layout: &Layout, tenure: &Path, runs: usize, policy: Policy) -> Result<bool> {
    layout.require(false)?;
    let name = match policy {
        Policy::Starter => "p2-starter",
        Policy::Bench => "p2-bench",
    };
    let dir = layout.run_dir(name);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create `{}`", dir.display()))?;
    let seed_db = match policy {
        Policy::Bench => {
            layout.require(true)?;
            layout.seed_db()
        }
        Policy::Starter => {
            // Yesterday's store under the starter policy: one day-one import of day1.csv.
            std::fs::write(dir.join("policy.toml"), tenure_sample::starter::POLICY)?;
            std::fs::write(dir.join("tenure.toml"), crate::data::config())?;
            let seed = dir.join("seed").join("tenure.db");
            if !seed.exists() {
                let out = import_with(&dir.join("tenure.toml"), tenure, &seed, &layout.day1(), false)?;
                println!("P2 seed: {:.1} s: {}", out.wall.as_secs_f64(), out.summary());
            }
            seed
        }
    };
    let config = match policy {
        Policy::Starter => dir.join("tenure.toml"),
        Policy::Bench => layout.config(),
    };
    let (mut secs, mut floors) = (Vec::new(), Vec::new());
    for i in 0..runs.max(1) {
        let run = dir.join("run");
        if run.exists() {
            std::fs::remove_dir_all(&run)?;
        }
        std::fs::create_dir_all(&run)?;
        let db = run.join("tenure.db");
        std::fs::copy(&seed_db, &db)?;
        std::fs::File::open(&db).and_then(|f| f.sync_all())?;
        let out = import_with(&config, tenure, &db, &layout.day2(), true)?;
        let floor = daily_floor(&seed_db, &db, &layout.day2(), &run.join("floor.db"))?;
        println!(
            "P2 run {}: {:.2} s, peak {}; floor {:.2} s (ratio {:.2}); {}",
            i + 1,
            out.wall.as_secs_f64(),
            mb(out.max_rss_kib.unwrap_or_default()),
            floor.as_secs_f64(),
            out.wall.as_secs_f64() / floor.as_secs_f64().max(1e-9),
            out.summary()
        );
        secs.push(out.wall.as_secs_f64());
        floors.push(floor.as_secs_f64());
    }
    let f = Summary::of(floors).context("no runs")?;
    println!(
        "P2 floor (read the stored identities and the CSV, write the same rows): min {:.2} s, median {:.2} s",
        f.min, f.median
    );
    let s = Summary::of(secs).context("no runs")?;
    Ok(verdict("P2", &format!("daily import, 100,000 rows, 1% changed, {name}"), &s, "s", 1.0))
}

/// The minimal program P2 is compared with: reads every stored identity row and every CSV
/// record (both are needed to find what changed), then inserts into a copy of the seed exactly
/// the rows the real import added to each table, in one transaction.
fn daily_floor(seed: &Path, after: &Path, csv_file: &Path, target: &Path) -> Result<Duration> {
    let seed_conn = rusqlite::Connection::open(seed)?;
    let after_conn = rusqlite::Connection::open(after)?;
    let tables: Vec<String> = {
        let mut stmt = after_conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    // The rows the import added: rowids above the seed's largest, per table.
    let mut added: Vec<Rows> = Vec::new();
    for t in &tables {
        let max: i64 =
            seed_conn.query_row(&format!("SELECT coalesce(max(rowid), 0) FROM \"{t}\""), [], |r| r.get(0)).unwrap_or(0);
        let rows = Rows::read(&after_conn, t, " WHERE rowid > ?1", max)?;
        if !rows.rows.is_empty() {
            added.push(rows);
        }
    }
    drop((seed_conn, after_conn));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::copy(seed, target)?;
    std::fs::File::open(target).and_then(|f| f.sync_all())?;
    let started = Instant::now();
    let mut conn = rusqlite::Connection::open(target)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Rows go in table by table, not in the import's order; the import itself kept the keys.
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    let mut stored = 0usize;
    {
        let mut stmt = conn.prepare("SELECT id, attrs FROM identities")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let attrs: String = r.get(1)?;
            stored += attrs.len();
        }
    }
    let mut reader = csv::ReaderBuilder::new().from_path(csv_file)?;
    let mut records = 0usize;
    for rec in reader.byte_records() {
        records += rec?.len();
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for table in &added {
        // The import replaces a changed identity's holdings (delete, then insert): REPLACE does
        // the same for rows whose key the seed already holds.
        table.insert(&tx, "INSERT OR REPLACE")?;
    }
    tx.commit()?;
    drop(conn);
    let elapsed = started.elapsed();
    // Keep the reads from being optimised away.
    if stored == 0 || records == 0 {
        anyhow::bail!("the floor read nothing");
    }
    Ok(elapsed)
}

/// One table's stored rows, as the floor programs copy them. Only the columns a row stores are
/// read and written: generated columns (the store's lookup columns over `attrs`) are computed by
/// SQLite and cannot be given values, so a `SELECT *` copy breaks whenever a migration adds one.
struct Rows {
    table: String,
    /// The stored columns, quoted and comma-separated.
    columns: String,
    count: usize,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Reads `table`'s stored columns of the rows `filter` selects (`filter` may bind `?1` to
    /// `param`).
    fn read(conn: &rusqlite::Connection, table: &str, filter: &str, param: i64) -> Result<Self> {
        // `hidden` is 0 for an ordinary column, 2 or 3 for a generated one.
        let names: Vec<String> = {
            let mut stmt = conn.prepare(&format!("SELECT name, hidden FROM pragma_table_xinfo('{table}')"))?;
            stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
                .filter_map(|r| match r {
                    Ok((name, 0)) => Some(Ok(name)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?
        };
        let columns = names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
        let count = names.len();
        let sql = format!("SELECT {columns} FROM \"{table}\"{filter}");
        let mut stmt = conn.prepare(&sql)?;
        let map =
            |r: &rusqlite::Row<'_>| (0..count).map(|i| r.get::<_, Value>(i)).collect::<rusqlite::Result<Vec<_>>>();
        let rows = if filter.contains("?1") {
            stmt.query_map([param], map)?.collect::<rusqlite::Result<Vec<_>>>()?
        } else {
            stmt.query_map([], map)?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(Self { table: table.to_string(), columns, count, rows })
    }

    /// Writes the rows into the same table of `tx` with `verb` (`INSERT` or `INSERT OR REPLACE`).
    fn insert(&self, tx: &rusqlite::Transaction<'_>, verb: &str) -> Result<()> {
        let marks = vec!["?"; self.count].join(", ");
        let mut stmt = tx.prepare(&format!("{verb} INTO \"{}\" ({}) VALUES ({marks})", self.table, self.columns))?;
        for row in &self.rows {
            stmt.execute(rusqlite::params_from_iter(row.iter()))?;
        }
        Ok(())
    }
}
