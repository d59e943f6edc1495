//! The application state: configuration, policy, store and clock, loaded once and shared.
//!
//! [`App`] is cheap to clone (one `Arc`) and owns everything it holds, so the CLI builds one per
//! command and the server keeps one for its whole life and hands it to every request and worker.
//! An [`Engine`](crate::Engine) is the short-lived borrowed view the engine's functions take;
//! `App::engine` makes one.
//!
//! The policy is read when the App opens ([`App::open`], what the server does: a bad policy keeps
//! it from starting) or, for commands that never evaluate it, the first time something asks
//! ([`App::open_without_policy`]): listing the plan, applying queued work or verifying the audit
//! chain keeps working while `policy.toml` is being fixed.
//!
//! [`Loaded`] is the first half: the config file read and validated, paths resolved against its
//! directory, nothing else opened (what `tenure check` and `tenure init` need).

use crate::Engine;
use crate::clock::ClockError;
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tenure_core::Problem;
use tenure_core::clock::Clock;
use tenure_core::config::Config;
use tenure_core::error::{Code, HasCode};
use tenure_policy::Policy;
use tenure_store::{Backend, SqliteStore, StoreError, StoreOptions};

/// Why the application state could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no config at `{0}`: run `tenure init`, pass `--config PATH` or set TENURE_CONFIG")]
    ConfigMissing(String),
    #[error("cannot read {what} `{path}`")]
    Read { what: &'static str, path: String, source: std::io::Error },
    #[error("{} problem(s):\n{}", .0.len(), lines(.0))]
    Config(Vec<Problem>),
    #[error("{} problem(s):\n{}", .0.len(), lines(.0))]
    Policy(Vec<Problem>),
    #[error("{0}")]
    StoreUrl(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Clock(#[from] ClockError),
}

fn lines(p: &[Problem]) -> String {
    p.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl HasCode for AppError {
    fn code(&self) -> Code {
        match self {
            AppError::ConfigMissing(_) | AppError::Clock(_) => Code::Usage,
            AppError::Read { .. } | AppError::Config(_) | AppError::StoreUrl(_) => Code::ConfigInvalid,
            AppError::Policy(_) => Code::PolicyInvalid,
            AppError::Store(e) => e.code(),
        }
    }
}

pub type Result<T> = std::result::Result<T, AppError>;

/// A validated config and where it lives.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub config_path: PathBuf,
    pub config_dir: PathBuf,
}

impl Loaded {
    /// Reads and validates the config at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(AppError::ConfigMissing(path.display().to_string()));
            }
            Err(source) => return Err(AppError::Read { what: "config", path: path.display().to_string(), source }),
        };
        let mut config = tenure_core::config::parse(&path.display().to_string(), &text).map_err(AppError::Config)?;
        let config_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        // Secret sinks are relative to the config file, like every path in it; the executor,
        // which only sees the `Config`, gets them resolved.
        let resolve = |p: &mut Option<String>| {
            if let Some(dir) = p.as_mut()
                && Path::new(dir.as_str()).is_relative()
            {
                *dir = config_dir.join(dir.as_str()).display().to_string();
            }
        };
        resolve(&mut config.nhi.secret_sink);
        for t in &mut config.targets {
            resolve(&mut t.secret_sink);
        }
        Ok(Self { config, config_path: path.to_path_buf(), config_dir })
    }

    /// A path from the config, relative to the config file's directory.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_path_buf() } else { self.config_dir.join(p) }
    }

    pub fn policy_path(&self) -> PathBuf {
        self.resolve(&self.config.policy_path)
    }

    /// `[audit] signing_key_file`, resolved.
    pub fn signing_key_path(&self) -> PathBuf {
        self.resolve(&self.config.audit.signing_key_file)
    }

    /// Loads and validates the policy at `path` (relative dates resolved against `today`).
    pub fn load_policy_at(&self, path: &Path, today: NaiveDate) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|source| AppError::Read {
            what: "policy",
            path: path.display().to_string(),
            source,
        })?;
        tenure_policy::parse(&path.display().to_string(), &text, &self.config, today).map_err(AppError::Policy)
    }

    pub fn load_policy(&self, today: NaiveDate) -> Result<Policy> {
        self.load_policy_at(&self.policy_path(), today)
    }

    /// The store `[store] url` (or `TENURE_STORE_URL`) names. Read-only opens create nothing and
    /// run no migration (`audit verify` on a copy owned by someone else).
    pub fn open_store(&self, read_only: bool, clock: Arc<dyn Clock>) -> Result<Arc<SqliteStore>> {
        let url = std::env::var("TENURE_STORE_URL").unwrap_or_else(|_| self.config.store_url.clone());
        if let Some(path) = url.strip_prefix("sqlite://") {
            let options = StoreOptions { read_only, allow_symlink: self.config.store_allow_symlink };
            return Ok(Arc::new(SqliteStore::open_with(&self.resolve(path), options, clock)?));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Err(AppError::StoreUrl(
                "the PostgreSQL store is not part of this build yet; use a sqlite:// store url".into(),
            ));
        }
        Err(AppError::StoreUrl("store url must start with sqlite:// (got a url with another scheme)".into()))
    }
}

/// Everything a command, a request or a worker needs. Clone it freely.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    loaded: Loaded,
    config: Arc<Config>,
    /// Set at open, or on first use for an App opened without it.
    policy: OnceLock<Arc<Policy>>,
    store: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("config", &self.inner.loaded.config_path).finish_non_exhaustive()
    }
}

impl App {
    /// Loads the config at `path`, its policy and its store, on `clock`. The policy is checked
    /// before the store is opened, so a bad policy creates no store.
    pub fn open(path: &Path, read_only: bool, clock: Arc<dyn Clock>) -> Result<Self> {
        let loaded = Loaded::load(path)?;
        let policy = loaded.load_policy(clock.today())?;
        let store = loaded.open_store(read_only, clock.clone())?;
        Ok(Self::from_parts(loaded, policy, store, clock))
    }

    /// Loads the config at `path` and its store, on `clock`; the policy is read the first time
    /// [`App::policy`] or [`App::engine`] needs it.
    pub fn open_without_policy(path: &Path, read_only: bool, clock: Arc<dyn Clock>) -> Result<Self> {
        let loaded = Loaded::load(path)?;
        let store = loaded.open_store(read_only, clock.clone())?;
        Ok(Self::build(loaded, OnceLock::new(), store, clock))
    }

    pub fn from_parts(loaded: Loaded, policy: Policy, store: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Self {
        Self::build(loaded, OnceLock::from(Arc::new(policy)), store, clock)
    }

    fn build(loaded: Loaded, policy: OnceLock<Arc<Policy>>, store: Arc<dyn Backend>, clock: Arc<dyn Clock>) -> Self {
        let config = Arc::new(loaded.config.clone());
        Self { inner: Arc::new(Inner { loaded, config, policy, store, clock }) }
    }

    /// The same state under another policy (`simulate`).
    pub fn with_policy(&self, policy: Policy) -> Self {
        let i = &self.inner;
        Self::build(i.loaded.clone(), OnceLock::from(Arc::new(policy)), i.store.clone(), i.clock.clone())
    }

    pub fn loaded(&self) -> &Loaded {
        &self.inner.loaded
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn config_arc(&self) -> Arc<Config> {
        self.inner.config.clone()
    }

    /// The policy, read now if the App was opened without it (and kept for its clones).
    pub fn policy(&self) -> Result<&Policy> {
        if let Some(p) = self.inner.policy.get() {
            return Ok(p);
        }
        let policy = Arc::new(self.inner.loaded.load_policy(self.today())?);
        Ok(self.inner.policy.get_or_init(|| policy))
    }

    pub fn store(&self) -> &Arc<dyn Backend> {
        &self.inner.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Today, as the clock says (`TENURE_TODAY` pins it).
    pub fn today(&self) -> NaiveDate {
        self.inner.clock.today()
    }

    /// The engine's view for one operation (reading the policy if it was not read yet).
    pub fn engine(&self) -> Result<Engine<'_>> {
        let policy = self.policy()?;
        let store: &dyn tenure_store::Backend = self.inner.store.as_ref();
        let mut engine = Engine::new(&self.inner.config, policy, store, self.today());
        engine.clock = Some(self.inner.clock.clone());
        Ok(engine)
    }

    /// The store as the read-side functions take it.
    pub fn store_ref(&self) -> &dyn tenure_store::Store {
        self.inner.store.as_ref()
    }
}
