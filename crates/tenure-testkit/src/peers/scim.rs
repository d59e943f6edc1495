//! A real SCIM 2.0 service provider: the PyPI `scim2-server` (python-scim), in a shared venv.
//!
//! [`Scim::start`] installs `scim2-server` on first use (see [`super::ensure_venv`]), starts
//! `scim2-server --hostname 127.0.0.1 --port PORT --bearer-token TOKEN` with a random token and
//! its working dir in a temp dir, and returns once the server answers
//! `GET /v2/ServiceProviderConfig` with 200: the port opens a little before the WSGI app is
//! ready. Its output goes to `scim2-server.log` in the temp dir, quoted in start-up errors.
//!
//! **State lives in memory only.** scim2-server keeps resources in an `InMemoryStorage`; its
//! `--dump-resources FILE` writes them out on a clean shutdown but there is no option to load
//! them back, so a new process starts empty. A real target that goes down comes back with its
//! data, and tests of "target down mid-apply" need that, so [`Scim::stop`] first reads every
//! user and group over HTTP and [`Scim::restart`] re-creates them on the same port with the same
//! token. Server-assigned ids change across a restart (as after a restore from backup);
//! `userName`, `externalId`, `active`, group names and memberships survive. A peer that is killed
//! without `stop` (dropped) loses everything.
//!
//! The harness talks to the peer with a few lines of HTTP/1.1 over `std::net` (the server is
//! `wsgiref`, which closes every connection after one answer), so the testkit needs no HTTP
//! client and its API stays synchronous.

use super::{ensure_venv, free_port};
use anyhow::{Context, Result, anyhow, bail};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tenure_core::config::{ScimSettings, SecretRef};

/// How long a fresh scim2-server may take to answer (about 2 s is usual; the machine is shared).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LOG_FILE: &str = "scim2-server.log";

/// A running scim2-server. Dropping it kills the process and removes its temp dir.
pub struct Scim {
    // INVARIANT: declared before `dir`, so the process is stopped (in `Drop`) before its working
    // dir is removed.
    child: Option<Child>,
    bin: PathBuf,
    port: u16,
    token: String,
    token_file: PathBuf,
    /// Resources read by `stop`, re-created by `restart`.
    saved: Option<Saved>,
    /// The TLS front, when started with [`Scim::start_tls`].
    tls: Option<super::TlsTerminator>,
    dir: TempDir,
}

/// Users and groups as the server returned them.
struct Saved {
    users: Vec<Value>,
    groups: Vec<Value>,
}

impl Scim {
    /// Installs scim2-server if needed, starts it on a free port and waits until it serves.
    pub fn start() -> Result<Scim> {
        let bin = ensure_venv(&["scim2-server"], "scim2-server")?.join("scim2-server");
        let dir = tempfile::Builder::new().prefix("tenure-scim-").tempdir().context("creating a temp dir")?;
        let token = random_token();
        let token_file = dir.path().join("token");
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&token_file)
            .and_then(|mut f| f.write_all(token.as_bytes()))
            .with_context(|| format!("writing {}", token_file.display()))?;
        let mut scim = Scim { child: None, bin, port: 0, token, token_file, saved: None, tls: None, dir };
        // Another process may take the free port before scim2-server binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            scim.port = free_port()?;
            match scim.spawn() {
                Ok(()) => return Ok(scim),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow!("scim2-server did not start")))
    }

    /// Starts scim2-server (plain HTTP, as it only speaks) behind a [`super::TlsTerminator`]
    /// serving `cert`: [`Scim::https_url`] is the way in over TLS.
    pub fn start_tls(cert: &super::ServerCert) -> Result<Scim> {
        let mut scim = Self::start()?;
        scim.tls = Some(super::TlsTerminator::start(cert, scim.port)?);
        Ok(scim)
    }

    /// `https://127.0.0.1:PORT/v2` through the TLS front, when started with [`Scim::start_tls`].
    pub fn https_url(&self) -> Option<String> {
        self.tls.as_ref().map(|t| format!("https://127.0.0.1:{}/v2", t.port()))
    }

    /// The SCIM base URL, `http://127.0.0.1:PORT/v2`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v2", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bearer token the server accepts.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A file holding the token (mode 0600), for [`SecretRef::File`].
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// The server's combined stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// Target settings for this peer; the token comes from [`Scim::token_file`].
    pub fn settings(&self) -> ScimSettings {
        ScimSettings {
            url: self.url(),
            token: SecretRef::File(self.token_file.to_string_lossy().into_owned()),
            ..ScimSettings::default()
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Saves every user and group, then stops the server; the port refuses connections until
    /// [`Scim::restart`]. Stopping a stopped peer does nothing.
    pub fn stop(&mut self) -> Result<()> {
        if self.child.is_none() {
            return Ok(());
        }
        let saved = self.save();
        self.kill();
        self.saved = Some(saved.context("saving the scim2-server's resources before stopping it")?);
        Ok(())
    }

    /// Starts the server again on the same port with the same token and re-creates what
    /// [`Scim::stop`] saved (stopping it first if it runs). Resource ids change.
    pub fn restart(&mut self) -> Result<()> {
        self.stop()?;
        // The old socket is gone with its process and scim2-server sets SO_REUSEADDR, but give a
        // busy machine a few tries.
        let mut last = None;
        for _ in 0..5 {
            match self.spawn() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        if let Some(e) = last {
            return Err(e.context(format!("restarting scim2-server on port {}", self.port)));
        }
        if let Some(saved) = self.saved.take() {
            self.restore(&saved).context("re-creating the saved resources")?;
        }
        Ok(())
    }

    fn spawn(&mut self) -> Result<()> {
        let log_path = self.log_path();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&self.bin)
            .args(["--hostname", "127.0.0.1", "--port", &self.port.to_string(), "--bearer-token", &self.token])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("duplicating the log file handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(e) => {
                self.kill();
                Err(e.context(format!("scim2-server log ({}):\n{}", log_path.display(), tail(&log_path))))
            }
        }
    }

    fn wait_ready(&mut self) -> Result<()> {
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        while start.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("checking on scim2-server")?
            {
                bail!("scim2-server exited with {status} before it was ready");
            }
            match self.request("GET", "/v2/ServiceProviderConfig", None) {
                Ok((200, _)) => return Ok(()),
                Ok((status, _)) => last = format!("HTTP {status}"),
                Err(e) => last = format!("{e:#}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("scim2-server on port {} was not ready within {READY_TIMEOUT:?} (last: {last})", self.port)
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every resource of `endpoint` (`Users` or `Groups`), paging as the server allows.
    fn list(&self, endpoint: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            let path = format!("/v2/{endpoint}?startIndex={}&count=1000", out.len() + 1);
            let (status, body) = self.request("GET", &path, None)?;
            if status != 200 {
                bail!("GET {path}: HTTP {status}: {}", String::from_utf8_lossy(&body));
            }
            let page: Value = serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))?;
            let resources = page.get("Resources").and_then(Value::as_array).cloned().unwrap_or_default();
            let total = page.get("totalResults").and_then(Value::as_u64).unwrap_or(0);
            let got = resources.len();
            out.extend(resources);
            if got == 0 || out.len() as u64 >= total {
                return Ok(out);
            }
        }
    }

    fn save(&self) -> Result<Saved> {
        Ok(Saved { users: self.list("Users")?, groups: self.list("Groups")? })
    }

    fn restore(&self, saved: &Saved) -> Result<()> {
        let mut ids: HashMap<String, String> = HashMap::new();
        for user in &saved.users {
            let old = id_of(user)?;
            let mut body = user.clone();
            strip_server_attributes(&mut body);
            ids.insert(old, self.create("Users", &body)?);
        }
        for group in &saved.groups {
            let mut body = group.clone();
            strip_server_attributes(&mut body);
            if let Some(members) = body.get_mut("members").and_then(Value::as_array_mut) {
                // Members are users (Tenure makes no nested groups); one whose user is gone
                // is dropped, as the server would have.
                members.retain_mut(|m| {
                    let new = m.get("value").and_then(Value::as_str).and_then(|v| ids.get(v)).cloned();
                    match new {
                        Some(new) => {
                            *m = json!({"value": new});
                            true
                        }
                        None => false,
                    }
                });
            }
            self.create("Groups", &body)?;
        }
        Ok(())
    }

    /// POSTs a resource and returns its new id.
    fn create(&self, endpoint: &str, body: &Value) -> Result<String> {
        let path = format!("/v2/{endpoint}");
        let (status, answer) = self.request("POST", &path, Some(body))?;
        if status != 201 {
            bail!("POST {path}: HTTP {status}: {}", String::from_utf8_lossy(&answer));
        }
        id_of(&serde_json::from_slice(&answer).with_context(|| format!("POST {path}: not JSON"))?)
    }

    /// One HTTP/1.1 request with the bearer token; returns the status and the body.
    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Vec<u8>)> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
            .with_context(|| format!("connecting to 127.0.0.1:{}", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.set_write_timeout(Some(Duration::from_secs(10)))?;
        let body = body.map(serde_json::to_vec).transpose()?.unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {}\r\n\
             Accept: application/scim+json\r\nConnection: close\r\n",
            self.port, self.token
        );
        if !body.is_empty() {
            head.push_str(&format!("Content-Type: application/scim+json\r\nContent-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(&body)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).context("reading the answer")?;
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| anyhow!("no HTTP header end"))?;
        let head = String::from_utf8_lossy(answer.get(..split).unwrap_or_default()).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("bad HTTP status line"))?;
        Ok((status, answer.get(split + 4..).unwrap_or_default().to_vec()))
    }
}

impl Drop for Scim {
    fn drop(&mut self) {
        self.kill();
    }
}

impl std::fmt::Debug for Scim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of Debug output.
        f.debug_struct("Scim").field("url", &self.url()).field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

fn id_of(resource: &Value) -> Result<String> {
    resource.get("id").and_then(Value::as_str).map(str::to_string).ok_or_else(|| anyhow!("resource without an id"))
}

fn strip_server_attributes(resource: &mut Value) {
    if let Some(obj) = resource.as_object_mut() {
        obj.remove("id");
        obj.remove("meta");
        obj.remove("groups");
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last lines of a log file, for errors.
fn tail(path: &Path) -> String {
    let mut text = String::new();
    if File::open(path).and_then(|mut f| f.read_to_string(&mut text)).is_err() {
        return String::from("(no log)");
    }
    let lines: Vec<&str> = text.lines().collect();
    lines.get(lines.len().saturating_sub(20)..).unwrap_or_default().join("\n")
}
