//! `tenure-bench`: the benchmarks behind `BENCHMARKS.md`, for the performance targets of
//! the project (P1–P11) that need no peer:
//!
//! - **P1**: desired-state recompute of 100,000 identities under 300 roles and 2,000
//!   entitlements, measured in-process on [`tenure_engine::desired::recompute_all`].
//! - **P2**: `tenure import` of a 100,000-row snapshot with 1% changes into a store that already
//!   holds yesterday's 100,000 identities, measured as the wall time of the real release binary.
//! - **P7**: peak resident memory of that same import process (`/usr/bin/time -v`).
//!
//! These are benchmarks, not tests: they run on demand in release mode
//! (`cargo build --release -p tenure -p tenure-bench && target/release/tenure-bench all`) and
//! report min and median over several runs. `gen` writes the data set once: a config dir like
//! `tenure init` writes, with a benchmark policy, yesterday's and today's snapshots, and a store
//! seeded with yesterday's snapshot by the real binary. Every P2/P7 run imports today's snapshot
//! into a fresh copy of that seeded store, so runs are independent.
//!
//! The connector targets (P4–P6) need real peers and live in the connector benchmarks.

mod data;
mod p1;
mod p10;
mod p3;
mod p8;
mod p9;
mod proc;
mod stats;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "tenure-bench", about = "Benchmarks for the performance targets P1, P2 and P7")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct Common {
    /// Where the data set lives (written by `gen`).
    #[arg(long, global = true, env = "TENURE_BENCH_DIR", default_value = "target/tenure-bench")]
    dir: PathBuf,
    /// The `tenure` binary to run for P2 and P7 (default: the one next to this binary).
    #[arg(long, global = true, env = "TENURE_BENCH_TENURE")]
    tenure: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write the data set: config, bench policy, two snapshots, and a seeded store.
    Gen(data::GenOpts),
    /// P1: desired-state recompute, in-process.
    P1 {
        #[arg(long, default_value_t = 10)]
        runs: usize,
    },
    /// P2: wall time of `tenure import` of today's snapshot into yesterday's store, beside its
    /// floor (with `--policy starter`; the bench policy needs `gen`'s seeded store).
    P2 {
        #[arg(long, default_value_t = 5)]
        runs: usize,
        #[arg(long, value_enum)]
        policy: Option<p8::Policy>,
    },
    /// P7: peak RSS of the import process (and of the initial load, for contrast).
    P7 {
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// P8: the first import of the 100,000-row seed into an empty store, beside its floor (the
    /// same rows inserted into SQLite by a minimal program), with its peak RSS (P7).
    P8 {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, value_enum, default_value = "starter")]
        policy: p8::Policy,
        /// Only the first N rows of the seed (the bench policy plans ~231 operations a person).
        #[arg(long)]
        rows: Option<usize>,
    },
    /// P3: signed webhook pushes against a real `tenure serve` under `wrk`, beside the floor (a
    /// minimal axum handler appending each body to SQLite), in the same run.
    P3 {
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        #[arg(long, default_value_t = 50)]
        connections: u32,
    },
    /// P10: leavers pushed by signed webhook to a real `tenure serve`, timed to every operation
    /// verified on the real LDAP, SCIM and PostgreSQL peers.
    P10 {
        #[arg(long, default_value_t = 100)]
        leavers: usize,
    },
    /// The floor server P3 starts (not for direct use).
    #[command(hide = true)]
    P3Floor {
        #[arg(long)]
        db: PathBuf,
        #[arg(long)]
        listen: String,
    },
    /// P9: API read latency at 100,000 identities under 50 clients (`wrk`), beside its floor.
    P9 {
        /// Seconds of load per case.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// `gen` when the data set is missing, then P1, P2 and P7 with their default run counts.
    All {
        /// Regenerate the data set and reseed the store even if they exist.
        #[arg(long)]
        regen: bool,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("tenure-bench: a target was missed");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("tenure-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(false)` means it measured something that missed its target.
fn run(cli: Cli) -> Result<bool> {
    let layout = data::Layout::new(cli.common.dir)?;
    let tenure = || proc::tenure_binary(cli.common.tenure.as_deref());
    match cli.command {
        Command::Gen(opts) => {
            data::generate(&layout, &opts, &tenure()?)?;
            Ok(true)
        }
        Command::P1 { runs } => p1::run(&layout, runs),
        Command::P3 { runs, seconds, connections } => {
            p3::run(&layout.dir, &tenure()?, &p3::Opts { runs, seconds, connections })
        }
        Command::P10 { leavers } => p10::run(&layout.dir, &tenure()?, leavers),
        Command::P3Floor { db, listen } => p3::floor_server(&db, &listen).map(|()| true),
        Command::P2 { runs, policy: None } => proc::p2(&layout, &tenure()?, runs),
        Command::P2 { runs, policy: Some(policy) } => p8::daily(&layout, &tenure()?, runs, policy),
        Command::P7 { runs } => proc::p7(&layout, &tenure()?, runs),
        Command::P8 { runs, policy, rows } => p8::run(&layout, &tenure()?, runs, policy, rows),
        Command::P9 { seconds } => p9::run(&layout, &tenure()?, seconds),
        Command::All { regen } => {
            let tenure = tenure()?;
            if regen || !layout.is_generated() {
                data::generate(&layout, &data::GenOpts { reseed: regen, ..data::GenOpts::default() }, &tenure)?;
            }
            let p1 = p1::run(&layout, 10)?;
            let p2 = proc::p2(&layout, &tenure, 5)?;
            let p7 = proc::p7(&layout, &tenure, 3)?;
            Ok(p1 && p2 && p7)
        }
    }
}
