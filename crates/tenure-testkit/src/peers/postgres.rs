//! A throwaway PostgreSQL cluster: `initdb` in a temp dir, `pg_ctl start` on a free loopback port.
//!
//! The server binaries come from `/usr/lib/postgresql/<version>/bin` (the newest version
//! installed; `TENURE_PG_BIN` overrides the directory). If there are none, the Debian
//! `postgresql` package is installed with [`ensure_apt`].
//!
//! PostgreSQL refuses to run as root, so when the tests run as root the temp dir is handed to
//! the `postgres` OS user and every server command runs through `runuser -u postgres --`;
//! otherwise the commands run as the current user. The machine's own cluster (port 5432) is
//! never touched: the new cluster gets its own data dir, socket dir and port.
//!
//! The listen address, port, socket dir and `fsync = off` are written into the cluster's
//! `postgresql.conf` rather than passed on the `pg_ctl -o` command line: no shell quoting of the
//! temp path, and [`Postgres::start_again`] comes back on the same port by construction.
//!
//! The cluster uses SCRAM authentication over TCP with a random superuser password and `trust`
//! over its private Unix socket. Dropping a [`Postgres`] stops the server (`pg_ctl -m fast`) and
//! removes the temp dir.

use super::{ensure_apt, free_port, run, wait_for_port};
use anyhow::{Context, Result, bail};
use rand::Rng as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;
use tenure_core::config::{PostgresSettings, SecretRef};

/// How many ports to try when another process takes the free port first.
const START_ATTEMPTS: usize = 4;

/// A running throwaway PostgreSQL cluster, stopped and deleted on drop.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    password: String,
    /// The file holding [`Postgres::url`], for `url_file` settings.
    url_file: String,
    /// Whether server commands run as the `postgres` OS user (we are root).
    as_postgres: bool,
    running: bool,
    /// Whether the server has `ssl = on`.
    tls: bool,
}

impl Postgres {
    /// Creates and starts a cluster. Fails, with the server log when there is one, if it cannot.
    pub fn start() -> Result<Postgres> {
        Self::start_opts(None)
    }

    /// Creates and starts a cluster with `ssl = on`, serving `cert` (issued by a
    /// [`super::TestCa`]). Plain connections are still accepted, so `sslmode` decides.
    pub fn start_tls(cert: &super::ServerCert) -> Result<Postgres> {
        Self::start_opts(Some(cert))
    }

    fn start_opts(cert: Option<&super::ServerCert>) -> Result<Postgres> {
        let bin = server_bin()?;
        let dir = tempfile::Builder::new().prefix("tenure-pg-").tempdir().context("creating the cluster's temp dir")?;
        let as_postgres = std::fs::metadata(dir.path())?.uid() == 0;
        let password: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect();
        let url_path = dir.path().join("url");
        let url_file = url_path.to_str().context("the temp dir path is not UTF-8")?.to_string();
        let mut pg = Postgres { dir, bin, port: 0, password, url_file, as_postgres, running: false, tls: false };
        pg.init().context("initdb of a throwaway PostgreSQL cluster")?;
        if let Some(cert) = cert {
            pg.install_cert(cert).context("installing the server certificate")?;
        }
        let mut last = None;
        for _ in 0..START_ATTEMPTS {
            pg.port = pick_port()?;
            pg.configure()?;
            match pg.start_again() {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(e) = last {
            return Err(
                e.context(format!("starting a throwaway PostgreSQL cluster (binaries in {})", pg.bin.display()))
            );
        }
        write_private(&url_path, &pg.url())?;
        Ok(pg)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The password of the `postgres` superuser.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/postgres", self.password, self.port)
    }

    /// A file (mode 0600) that holds [`Postgres::url`], for a target's `url_file`.
    pub fn url_file(&self) -> &str {
        &self.url_file
    }

    /// Connector settings that read the URL from [`Postgres::url_file`].
    pub fn settings(&self) -> PostgresSettings {
        PostgresSettings { url: SecretRef::File(self.url_file.clone()), ..PostgresSettings::default() }
    }

    /// Connector settings that read the URL from the environment variable `var`. Setting the
    /// variable (to [`Postgres::url`]) is the caller's job, typically in a child process's
    /// environment: changing this process's environment is `unsafe` in Rust 2024.
    pub fn settings_env(&self, var: &str) -> PostgresSettings {
        PostgresSettings { url: SecretRef::Env(var.to_string()), ..PostgresSettings::default() }
    }

    /// The cluster's temp dir (data in `data/`, the server log in `log`, the Unix socket).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Stops the server (`pg_ctl -m fast`), keeping the data dir, e.g. to test a target that
    /// goes down mid-apply.
    pub fn stop(&mut self) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        run(self.server_cmd("pg_ctl").arg("-D").arg(self.data()).args(["-m", "fast", "-w", "stop"]))
            .context("stopping the throwaway PostgreSQL cluster")?;
        self.running = false;
        Ok(())
    }

    /// Starts the server again on the same data dir and port.
    pub fn start_again(&mut self) -> Result<()> {
        if self.running {
            return Ok(());
        }
        let started = run(self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"]));
        if let Err(e) = started {
            return Err(e.context(format!(
                "pg_ctl start on port {}; server log:\n{}",
                self.port,
                tail(&self.log(), 40)
            )));
        }
        self.running = true;
        wait_for_port(self.port, Duration::from_secs(10))
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server program from the PostgreSQL `bin` dir, run as `postgres` when we are root. It
    /// runs in the temp dir, because the `postgres` user may not be allowed into ours.
    fn server_cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        c.current_dir(self.dir.path());
        c
    }

    fn init(&self) -> Result<()> {
        let pwfile = self.dir.path().join("pwfile");
        write_private(&pwfile, &self.password)?;
        if self.as_postgres {
            run(Command::new("chown").args(["-R", "postgres:"]).arg(self.dir.path()))
                .context("handing the temp dir to the `postgres` OS user")?;
        }
        let out = run(self
            .server_cmd("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", "postgres"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync"]));
        let _ = std::fs::remove_file(&pwfile);
        out.map(drop)
    }

    /// Copies the certificate and key into the data dir (PostgreSQL wants the key owned by the
    /// server's user and private) and turns `ssl` on.
    fn install_cert(&mut self, cert: &super::ServerCert) -> Result<()> {
        let (crt, key) = (self.data().join("server.crt"), self.data().join("server.key"));
        std::fs::write(&crt, &cert.cert_pem).with_context(|| format!("writing {}", crt.display()))?;
        write_private(&key, &cert.key_pem)?;
        if self.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&crt).arg(&key)).context("handing the key to `postgres`")?;
        }
        self.tls = true;
        Ok(())
    }

    /// Appends the listen settings to `postgresql.conf`; a later line wins, so a retry on
    /// another port just appends again.
    fn configure(&self) -> Result<()> {
        let socket_dir = self.dir.path().to_str().context("the temp dir path is not UTF-8")?.replace('\'', "''");
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).with_context(|| format!("reading {}", conf.display()))?;
        text.push_str(&format!(
            "\n# tenure-testkit\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{socket_dir}'\nfsync = off\n",
            self.port
        ));
        if self.tls {
            text.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
        }
        std::fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("testkit: {e:#}");
        }
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, installing PostgreSQL if
/// there is none.
fn server_bin() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TENURE_PG_BIN") {
        let dir = PathBuf::from(dir);
        if !dir.join("initdb").is_file() {
            bail!("TENURE_PG_BIN={} holds no `initdb`", dir.display());
        }
        return Ok(dir);
    }
    if let Some(dir) = newest_server_bin() {
        return Ok(dir);
    }
    // `pg_createcluster` comes with postgresql-common, which the server packages pull in and
    // the client packages do not.
    ensure_apt("pg_createcluster", &["postgresql"])?;
    newest_server_bin().context(
        "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin; \
         install them with `apt-get install postgresql` or set TENURE_PG_BIN",
    )
}

fn newest_server_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// A free loopback port that is not PostgreSQL's default, so nothing can mistake the machine's
/// own cluster for ours.
fn pick_port() -> Result<u16> {
    loop {
        let port = free_port()?;
        if port != 5432 {
            return Ok(port);
        }
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

fn tail(text: &str, lines: usize) -> String {
    let skip = text.lines().count().saturating_sub(lines);
    text.lines().skip(skip).collect::<Vec<_>>().join("\n")
}
