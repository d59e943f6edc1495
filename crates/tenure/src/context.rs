//! Loading what every command needs: config, policy, store, today's date.

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::NaiveDate;
use std::path::{Path, PathBuf};
use tenure_core::Problem;
use tenure_core::config::Config;
use tenure_policy::Policy;
use tenure_store::{SqliteStore, StoreOptions};

pub struct Loaded {
    pub config: Config,
    pub config_dir: PathBuf,
}

/// Problems with a config or policy, already formatted.
#[derive(Debug)]
pub struct Invalid(pub Vec<Problem>, pub tenure_core::error::Code);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{} problem(s):\n{}", self.0.len(), lines.join("\n"))
    }
}

impl std::error::Error for Invalid {}

/// Today's date: `TENURE_TODAY` (YYYY-MM-DD) if set, for reproducible runs, else the UTC date.
pub fn today() -> Result<NaiveDate> {
    match std::env::var("TENURE_TODAY") {
        Ok(s) => {
            tenure_core::date::parse_date(&s).ok_or_else(|| anyhow!("TENURE_TODAY `{s}` is not a YYYY-MM-DD date"))
        }
        Err(_) => Ok(chrono::Utc::now().date_naive()),
    }
}

pub fn load_config(path: &Path) -> Result<Loaded> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        // No config where the user pointed (or in the current directory) is a usage error.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(crate::run::UsageError(format!(
                "no config at `{}`: run `tenure init`, pass `--config PATH` or set TENURE_CONFIG",
                path.display()
            ))
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read config `{}`", path.display())),
    };
    let config = tenure_core::config::parse(&path.display().to_string(), &text)
        .map_err(|p| Invalid(p, tenure_core::error::Code::ConfigInvalid))?;
    let config_dir = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Ok(Loaded { config, config_dir })
}

impl Loaded {
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_path_buf() } else { self.config_dir.join(p) }
    }

    /// `[audit] signing_key_file`, resolved against the config's directory.
    pub fn signing_key_path(&self) -> PathBuf {
        self.resolve(&self.config.audit.signing_key_file)
    }

    pub fn policy_path(&self) -> PathBuf {
        self.resolve(&self.config.policy_path)
    }

    pub fn load_policy_at(&self, path: &Path, today: NaiveDate) -> Result<Policy> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read policy `{}`", path.display()))?;
        Ok(tenure_policy::parse(&path.display().to_string(), &text, &self.config, today)
            .map_err(|p| Invalid(p, tenure_core::error::Code::PolicyInvalid))?)
    }

    pub fn load_policy(&self, today: NaiveDate) -> Result<Policy> {
        self.load_policy_at(&self.policy_path(), today)
    }

    /// Opens the store named by `[store] url` (or `TENURE_STORE_URL`).
    pub fn open_store(&self) -> Result<SqliteStore> {
        self.open_store_with(false)
    }

    /// Opens the store for reading only: no file is created, no migration runs, and a
    /// read-only copy owned by someone else works (`audit verify`, `audit export`).
    pub fn open_store_read_only(&self) -> Result<SqliteStore> {
        self.open_store_with(true)
    }

    fn open_store_with(&self, read_only: bool) -> Result<SqliteStore> {
        let url = std::env::var("TENURE_STORE_URL").unwrap_or_else(|_| self.config.store_url.clone());
        if let Some(path) = url.strip_prefix("sqlite://") {
            let path = self.resolve(path);
            let options = StoreOptions { read_only, allow_symlink: self.config.store_allow_symlink };
            return Ok(SqliteStore::open_with(&path, options, std::sync::Arc::new(tenure_store::SystemClock))?);
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            bail!("the PostgreSQL store is not part of this build yet; use a sqlite:// store url");
        }
        bail!("store url must start with sqlite:// (got a url with another scheme)")
    }
}
