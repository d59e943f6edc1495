//! `tenure serve [--listen ADDR]`: the server (`tenure_server::serve`) on the address given,
//! else `TENURE_LISTEN`, else `[server] listen`, until Ctrl-C or SIGTERM.
//!
//! `TENURE_AUTH_FAILURES` (default 10) and `TENURE_AUTH_WINDOW_SECONDS` (default 60) set the
//! throttle: that many failed authentications from one address within the window, and it is
//! answered 429 for failing attempts until the window has passed (a valid token is always
//! served). The connection limits and the trusted proxies are `[server]` keys
//! (`tenure_core::config::ServerConfig`). A webhook source whose secret is readable but too
//! weak to sign pushes stops the server from starting.

use anyhow::{Context as _, Result};
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_server::{ServerOptions, ServerState};

/// A number from the environment, or the default; a malformed value is a usage error.
fn env_number(name: &str, default: u64) -> Result<u64> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| crate::support::UsageError(format!("{name} `{v}` is not a whole number")).into()),
    }
}

pub fn run(app: &App, listen: Option<&str>) -> Result<ExitCode> {
    let defaults = ServerOptions::default();
    let options = ServerOptions {
        throttle_limit: u32::try_from(env_number("TENURE_AUTH_FAILURES", u64::from(defaults.throttle_limit))?)
            .unwrap_or(u32::MAX),
        throttle_window: std::time::Duration::from_secs(env_number(
            "TENURE_AUTH_WINDOW_SECONDS",
            defaults.throttle_window.as_secs(),
        )?),
    };
    let weak = tenure_server::hooks::weak_secrets(app.config());
    if !weak.is_empty() {
        let file = app.loaded().config_path.display().to_string();
        let problems =
            weak.into_iter().map(|message| tenure_core::diag::Problem { file: file.clone(), line: 0, message });
        return Err(tenure_engine::app::AppError::Config(problems.collect()).into());
    }
    tenure_server::telemetry::init();
    let addr = listen.map_or_else(|| app.config().server_listen.clone(), str::to_string);
    let runtime = crate::support::runtime()?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on `{addr}`"))?;
        let local = listener.local_addr().context("reading the listening address")?;
        tracing::info!(address = %local, config = %app.loaded().config_path.display(), "listening");
        // On a worker thread, not the thread that blocks on the runtime: the accept loop and
        // the connections it serves then share the runtime's workers.
        let state = ServerState::with_options(app.clone(), options);
        tokio::spawn(tenure_server::serve(state, listener, tenure_server::shutdown_signal()))
            .await
            .context("the server task")?
            .context("serving")
    })?;
    Ok(ExitCode::SUCCESS)
}
