//! What the targets parse against: the starter config `tenure init` writes (with a webhook
//! source beside its CSV source) and its policy, on a fixed day.

use chrono::NaiveDate;
use std::sync::OnceLock;
use tenure_core::config::{Config, SourceConfig};

/// The CSV source of the starter config.
pub const CSV_SOURCE: &str = "hr";
/// A webhook source with the same columns.
pub const WEBHOOK_SOURCE: &str = "hooks";

/// "Today" for everything that reads dates.
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 21).unwrap_or_default()
}

/// The starter config text, with a webhook source.
pub fn config_text() -> String {
    format!(
        "{}\n{}",
        tenure_sample::starter::config(),
        tenure_sample::company::webhook_source_toml(WEBHOOK_SOURCE, "/nonexistent/webhook-secret")
    )
}

pub fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| match tenure_core::config::parse("tenure.toml", &config_text()) {
        Ok(c) => c,
        Err(problems) => panic!("the fixture config does not load: {problems:?}"),
    })
}

pub fn source(name: &str) -> &'static SourceConfig {
    match config().source(name) {
        Some(s) => s,
        None => panic!("the fixture config has no source `{name}`"),
    }
}
