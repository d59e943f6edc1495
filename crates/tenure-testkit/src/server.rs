//! A real `tenure serve` for tests, the way kanidm's testkit boots its server: the binary is
//! started on a free loopback port in a temp dir, the test waits for `/readyz`, and gets the
//! base URL, an admin token and a `reqwest` client. The process is killed when the [`Server`]
//! is dropped; [`Server::terminate`] stops it the way an orchestrator does (SIGTERM) and returns
//! its exit status and everything it logged.
//!
//! The binary is the one the test passes ([`Server::start_with`]), else `TENURE_BIN`, else the
//! `tenure` next to the test executable's directory (`target/debug/tenure` beside
//! `target/debug/deps/`), which is where Cargo puts it for a package's integration tests.

use anyhow::{Context as _, Result, anyhow, bail};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `tenure serve`.
pub struct Server {
    child: Option<Child>,
    bin: PathBuf,
    dir: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// A token with scope admin, named `testkit-admin`.
    pub admin_token: String,
    pub client: reqwest::Client,
    logs: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

/// The `tenure` binary a test should run.
pub fn tenure_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("TENURE_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let dir = exe.parent().and_then(Path::parent).ok_or_else(|| anyhow!("no target directory above the test"))?;
    let bin = dir.join("tenure");
    if bin.exists() {
        Ok(bin)
    } else {
        bail!("no `tenure` binary at `{}`; build it first or set TENURE_BIN", bin.display())
    }
}

/// The address a `listening` log line names (JSON or text).
fn listening_address(line: &str) -> Option<String> {
    if !line.contains("listening") {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
        return v.get("address").and_then(|a| a.as_str()).map(str::to_string);
    }
    line.split_whitespace().find_map(|w| w.strip_prefix("address=")).map(str::to_string)
}

impl Server {
    /// Writes `config_toml` as `dir/tenure.toml` (and the starter policy as `dir/policy.toml`
    /// when there is none), creates the admin token and starts the server.
    pub async fn start(dir: &Path, config_toml: &str) -> Result<Server> {
        Self::start_with(&tenure_bin()?, dir, config_toml, &[]).await
    }

    /// [`Server::start`] with a given binary and extra environment variables.
    pub async fn start_with(bin: &Path, dir: &Path, config_toml: &str, env: &[(&str, &str)]) -> Result<Server> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("tenure.toml"), config_toml)?;
        if !dir.join("policy.toml").exists() {
            std::fs::write(dir.join("policy.toml"), tenure_sample::starter::POLICY)?;
        }
        let admin_token = token_in(bin, dir, "testkit-admin", "admin", None)?;
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("TENURE_CONFIG", dir.join("tenure.toml"))
            .env_remove("TENURE_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting `{} serve`", bin.display()))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        for stream in [
            child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            let addr_tx = addr_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(std::result::Result::ok) {
                    if let Some(a) = listening_address(&line) {
                        let _ = addr_tx.send(a);
                    }
                    logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
                }
            });
        }
        let mut server = Server {
            child: Some(child),
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            base_url: String::new(),
            admin_token,
            client: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            logs,
        };
        let addr = match addr_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(a) => a,
            Err(_) => bail!("`tenure serve` did not start listening; it logged:\n{}", server.logs().join("\n")),
        };
        server.base_url = format!("http://{addr}");
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(c) = self.child.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("`tenure serve` exited with {status}; it logged:\n{}", self.logs().join("\n"));
            }
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("`tenure serve` was not ready in time; it logged:\n{}", self.logs().join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates another token (`tenure token create`) and returns its text.
    pub fn token(&self, name: &str, scope: &str, source: Option<&str>) -> Result<String> {
        token_in(&self.bin, &self.dir, name, scope, source)
    }

    /// Runs `tenure ARGS` against this server's config; returns (status, stdout, stderr).
    pub fn tenure(&self, args: &[&str]) -> Result<(i32, String, String)> {
        let out = Command::new(&self.bin)
            .current_dir(&self.dir)
            .args(args)
            .env("TENURE_CONFIG", self.dir.join("tenure.toml"))
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    /// Everything the server logged so far, one line each.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Sends SIGTERM and waits for the process to end; returns its exit code and its logs.
    pub fn terminate(mut self) -> Result<(Option<i32>, Vec<String>)> {
        let Some(mut child) = self.child.take() else { bail!("the server is not running") };
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status()?;
        if !status.success() {
            bail!("`kill -TERM {pid}` failed");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        let code = loop {
            if let Some(s) = child.try_wait()? {
                break s.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("the server did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Let the log readers drain what the process wrote last.
        std::thread::sleep(Duration::from_millis(100));
        Ok((code, self.logs()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn token_in(bin: &Path, dir: &Path, name: &str, scope: &str, source: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir)
        .args(["token", "create", "--name", name, "--scope", scope, "--format", "json"])
        .env("TENURE_CONFIG", dir.join("tenure.toml"));
    if let Some(s) = source {
        cmd.args(["--source", s]);
    }
    let out = cmd.output().context("running `tenure token create`")?;
    if !out.status.success() {
        bail!(
            "`tenure token create` failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading the created token")?;
    v.get("secret").and_then(|s| s.as_str()).map(str::to_string).ok_or_else(|| anyhow!("no `secret` in the output"))
}
