//! `tenure serve [--listen ADDR]`: the server (`tenure_server::serve`) on the address given,
//! else `TENURE_LISTEN`, else `[server] listen`, until Ctrl-C or SIGTERM.

use anyhow::{Context as _, Result};
use std::process::ExitCode;
use tenure_engine::app::App;
use tenure_server::ServerState;

pub fn run(app: &App, listen: Option<&str>) -> Result<ExitCode> {
    tenure_server::telemetry::init();
    let addr = listen.map_or_else(|| app.config().server_listen.clone(), str::to_string);
    let runtime = crate::support::runtime()?;
    runtime.block_on(async {
        let listener =
            tokio::net::TcpListener::bind(&addr).await.with_context(|| format!("cannot listen on `{addr}`"))?;
        let local = listener.local_addr().context("reading the listening address")?;
        tracing::info!(address = %local, config = %app.loaded().config_path.display(), "listening");
        tenure_server::serve(ServerState::new(app.clone()), listener, tenure_server::shutdown_signal())
            .await
            .context("serving")
    })?;
    Ok(ExitCode::SUCCESS)
}
