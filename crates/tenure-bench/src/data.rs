//! The benchmark data set: a config dir in the layout `tenure init` writes, the bench policy,
//! yesterday's and today's snapshots, and a store seeded with yesterday's snapshot.

use anyhow::{Context as _, Result, bail};
use chrono::NaiveDate;
use clap::Args;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tenure_testkit::company::{Company, Options, bench_policy};

/// The fixed date every benchmark run uses (`TENURE_TODAY`), so runs are reproducible.
pub const TODAY: &str = "2026-11-21";

/// The targets of the bench policy, as in the starter config.
pub const TARGETS: &[&str] = &["directory", "chat", "warehouse", "payroll"];

/// Roles and distinct entitlements the bench policy must have (performance target P1).
pub const ROLES: usize = 300;
pub const ENTITLEMENTS: usize = 2_000;

/// The starter config (`tenure init`) with two kinds of differences, both needed for the
/// benchmark: no target declares an `entitlements = [...]` list (the starter's `payroll` list
/// would reject the 2,000 invented entitlements of the bench policy), and the guard's absolute
/// limits are far above the defaults. 1% churn of 100,000 rows removes about 300 people (over
/// the default `max_leavers = 25`) and takes access from about 800 identities (over the default
/// `max_access_losses = 100`), so with the defaults the batch would be held rather than applied.
/// The fractional limits keep their defaults (5% leavers, 10% losing access).
pub fn config() -> String {
    let guard = tenure_sample::starter::Guard {
        max_leavers: 100_000,
        max_leaver_fraction: 0.05,
        max_access_losses: Some(100_000),
        max_access_loss_fraction: Some(0.10),
    };
    tenure_sample::starter::config_with(
        "# Benchmark config written by `tenure-bench gen`: the starter layout, without declared\n# entitlement lists and with absolute guard limits loose enough that 1% daily churn is applied.",
        &guard,
        &tenure_sample::starter::targets(false),
    )
}

#[derive(Debug, Clone, Args)]
pub struct GenOpts {
    /// Snapshot rows: people plus service accounts (one per 50 rows), as `Options::new` mixes them.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Fraction of rows today's snapshot changes (moves, leavers, joiners in equal parts).
    #[arg(long, default_value_t = 0.01)]
    pub churn: f64,
    /// Seed the store again even if it was built from this very `day1.csv` (after a change to
    /// the store format or the import path, for example).
    #[arg(long)]
    pub reseed: bool,
    /// Write the files only, without seeding the store (P1 and P8 need no seed).
    #[arg(long)]
    pub files_only: bool,
}

impl Default for GenOpts {
    fn default() -> Self {
        Self { rows: 100_000, churn: 0.01, reseed: false, files_only: false }
    }
}

/// Where the data set's files live.
pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    /// `dir` made absolute, because the store URL handed to `tenure` must not depend on its
    /// working directory.
    pub fn new(dir: PathBuf) -> Result<Self> {
        let dir = if dir.is_absolute() { dir } else { std::env::current_dir()?.join(dir) };
        Ok(Self { dir })
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("tenure.toml")
    }

    pub fn policy(&self) -> PathBuf {
        self.dir.join("policy.toml")
    }

    /// Yesterday's snapshot: the seeded store holds it.
    pub fn day1(&self) -> PathBuf {
        self.dir.join("day1.csv")
    }

    /// Today's snapshot: yesterday's with the churn applied.
    pub fn day2(&self) -> PathBuf {
        self.dir.join("day2.csv")
    }

    /// The store after importing `day1.csv`. Runs work on copies of it.
    pub fn seed_db(&self) -> PathBuf {
        self.dir.join("seed").join("tenure.db")
    }

    /// A scratch directory for one benchmark's runs.
    pub fn run_dir(&self, name: &str) -> PathBuf {
        self.dir.join("runs").join(name)
    }

    /// The config, policy and snapshots exist (P1 needs nothing more).
    pub fn has_files(&self) -> bool {
        [self.config(), self.policy(), self.day1(), self.day2()].iter().all(|p| p.exists())
    }

    /// The files exist and the store is seeded.
    pub fn is_generated(&self) -> bool {
        self.has_files() && self.seed_db().exists()
    }

    /// Fails with a hint when `gen` has not run (to the end, with `seeded`).
    pub fn require(&self, seeded: bool) -> Result<()> {
        if !(if seeded { self.is_generated() } else { self.has_files() }) {
            bail!("no complete data set in `{}`; run `tenure-bench gen` first", self.dir.display());
        }
        Ok(())
    }
}

pub fn today() -> Result<NaiveDate> {
    tenure_core::date::parse_date(TODAY).with_context(|| format!("bad TODAY `{TODAY}`"))
}

/// Writes the data set and seeds the store by importing yesterday's snapshot with the real
/// binary (timed and measured, for contrast with the daily import).
pub fn generate(layout: &Layout, opts: &GenOpts, tenure: &Path) -> Result<()> {
    let today = today()?;
    let services = opts.rows / 50;
    let mut company_opts = Options::new(opts.rows - services, today);
    company_opts.service_accounts = services;
    let mut company = Company::generate(&company_opts);
    let day1 = company.to_csv();
    let rows1 = company.people.len();
    let yesterday = company.clone();
    let changed = company.churn(opts.churn);
    let transferred = transfer_orphans(&yesterday, &mut company);
    let day2 = company.to_csv();
    let rows2 = company.people.len();
    let policy = bench_policy(ROLES, ENTITLEMENTS, TARGETS, 10);

    std::fs::create_dir_all(&layout.dir).with_context(|| format!("cannot create `{}`", layout.dir.display()))?;
    let config = config();
    let files = [
        (layout.config(), config.as_str()),
        (layout.policy(), policy.as_str()),
        (layout.day1(), day1.as_str()),
        (layout.day2(), day2.as_str()),
    ];
    for (path, text) in files {
        std::fs::write(&path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    println!(
        "gen: wrote {}: day1.csv {} rows, day2.csv {} rows ({changed} rows churned, {transferred} service accounts transferred), policy {} bytes",
        layout.dir.display(),
        rows1,
        rows2,
        policy.len()
    );

    if opts.files_only {
        return Ok(());
    }
    // The seed takes minutes: keep it when it was built from this very day1.csv.
    let built_from = layout.seed_db().with_file_name("day1.csv");
    if !opts.reseed && layout.seed_db().exists() && std::fs::read(&built_from).ok().as_deref() == Some(day1.as_bytes())
    {
        println!("gen: kept the seeded store {}: it holds this day1.csv", layout.seed_db().display());
        return Ok(());
    }
    seed(layout, &yesterday, tenure)?;
    std::fs::write(&built_from, &day1).with_context(|| format!("cannot write `{}`", built_from.display()))
}

/// `Company::churn` removes leavers' rows but leaves service accounts naming a removed owner,
/// and such rows are rejected (`unknown owner`), which is not what P2 is about. They move to the
/// leaver's nearest remaining manager, as an HR system that transfers ownership would show.
/// Returns how many moved.
fn transfer_orphans(yesterday: &Company, today: &mut Company) -> usize {
    let present: HashSet<String> = today.people.iter().map(|p| p.id.clone()).collect();
    let manager_of: HashMap<&str, &str> =
        yesterday.people.iter().filter_map(|p| Some((p.id.as_str(), p.manager.as_deref()?))).collect();
    // Walks up the manager chain to the first remaining person (bounded: the tree is acyclic).
    let heir = |owner: &str| {
        let mut id = owner;
        for _ in 0..=manager_of.len() {
            if present.contains(id) {
                return id.to_string();
            }
            match manager_of.get(id) {
                Some(m) => id = m,
                None => break,
            }
        }
        ROOT.to_string()
    };
    let mut moved = 0;
    for p in &mut today.people {
        if let Some(owner) = p.owner.as_deref().filter(|o| !present.contains(*o)) {
            p.owner = Some(heir(owner));
            moved += 1;
        }
    }
    moved
}

/// The root of the manager tree; `Company::generate` never removes it.
const ROOT: &str = "E000000";

/// Rows per seeding step: at most this many joiners per import. `plan_events` switches to
/// loading every holding in the store above 2,000 events, which at 23 million grants would
/// exhaust memory.
const SEED_STEP: usize = 2_000;

/// Seeds the store with yesterday's snapshot through the real binary, in growing prefixes of
/// `SEED_STEP` rows. One import of all 100,000 rows as joiners plans every grant of every
/// identity in one batch (23 million operations under the bench policy), which does not fit in
/// this machine's memory; growing prefixes reach the same state (every prefix only adds joiners,
/// because managers precede their reports and service accounts come last).
fn seed(layout: &Layout, company: &Company, tenure: &Path) -> Result<()> {
    let seed_dir = layout.seed_db().parent().map(Path::to_path_buf).unwrap_or_default();
    if seed_dir.exists() {
        std::fs::remove_dir_all(&seed_dir).with_context(|| format!("cannot remove `{}`", seed_dir.display()))?;
    }
    std::fs::create_dir_all(&seed_dir).with_context(|| format!("cannot create `{}`", seed_dir.display()))?;
    let total = company.people.len();
    let prefix_csv = seed_dir.join("prefix.csv");
    let (mut wall, mut peak, mut ops) = (0.0f64, 0u64, 0u64);
    let mut rows = 0;
    while rows < total {
        rows = (rows + SEED_STEP).min(total);
        let mut prefix = company.clone();
        prefix.people.truncate(rows);
        std::fs::write(&prefix_csv, prefix.to_csv())
            .with_context(|| format!("cannot write `{}`", prefix_csv.display()))?;
        let out = crate::proc::import(layout, tenure, &layout.seed_db(), &prefix_csv, true)?;
        wall += out.wall.as_secs_f64();
        peak = peak.max(out.max_rss_kib.unwrap_or_default());
        ops += out.operations();
        eprintln!("gen: seeded {rows}/{total} rows ({:.1} s): {}", out.wall.as_secs_f64(), out.summary());
    }
    std::fs::remove_file(&prefix_csv).with_context(|| format!("cannot remove `{}`", prefix_csv.display()))?;
    let size = std::fs::metadata(layout.seed_db()).map(|m| m.len()).unwrap_or_default();
    println!(
        "gen: seeded {} with {total} rows in {} imports: {wall:.0} s in total, {ops} operations planned, \
         peak RSS {}, store {:.1} GB",
        layout.seed_db().display(),
        total.div_ceil(SEED_STEP),
        crate::proc::mb(peak),
        size as f64 / 1e9
    );
    Ok(())
}
