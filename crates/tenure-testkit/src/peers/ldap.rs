//! A throwaway OpenLDAP `slapd` on a free loopback port.
//!
//! Design choices:
//! - The server is configured with a classic `slapd.conf` in a temp dir (schemas `core`,
//!   `cosine`, `inetorgperson`, `nis`; one `mdb` database sized for well over 100,000 entries),
//!   not `cn=config`: one readable file, nothing to bootstrap.
//! - The base entries (`dc=example,dc=com`, `ou=people`, `ou=groups`, `ou=disabled`) and any seed
//!   data are loaded offline with `slapadd -q` before the server starts. That needs no
//!   `ldap-utils` at run time and loads 100,000 entries in seconds, which the reconciliation
//!   benchmark relies on.
//! - `slapd` runs in the foreground (`-d 0`) as our child, so an early exit (bad config, port
//!   taken) is seen at once and reported with its log, and stopping it is a signal to a PID we
//!   own. A port lost to a race between [`free_port`] and `slapd`'s bind is retried on a new port.
//! - The root password is random per peer and reaches the connector through a file
//!   ([`SecretRef::File`]), as a real deployment's would; it is never printed.
//!
//! A peer that cannot be installed or started is an error, never a skip.

use super::{ensure_apt, free_port, run};
use anyhow::{Context, Result};
use rand::Rng;
use rand::distr::Alphanumeric;
use std::fmt;
use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tenure_core::config::{LdapSettings, SecretRef};

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const SLAPTEST: &str = "/usr/sbin/slaptest";
const BASE_DN: &str = "dc=example,dc=com";
const START_ATTEMPTS: usize = 5;
const START_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `slapd` with suffix `dc=example,dc=com`, stopped and deleted on drop.
pub struct Ldap {
    /// `ldap://127.0.0.1:PORT/` (with TLS configured, StartTLS works here too).
    pub url: String,
    pub port: u16,
    /// `ldaps://127.0.0.1:PORT/` when started with TLS.
    pub ldaps_url: Option<String>,
    /// The CA that issued the server certificate, when started with TLS.
    pub ca_file: Option<PathBuf>,
    /// The root DN, `cn=admin,dc=example,dc=com`.
    pub bind_dn: String,
    /// The root DN's password (random per peer).
    pub password: String,
    /// A file holding [`Ldap::password`], for [`SecretRef::File`].
    pub password_file: PathBuf,
    pub base_dn: String,
    pub users_dn: String,
    pub groups_dn: String,
    pub disabled_dn: String,
    child: Child,
    log: PathBuf,
    // Dropped after `Drop::drop` has stopped the server, so its files go last.
    _dir: tempfile::TempDir,
}

impl fmt::Debug for Ldap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ldap")
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field("password", &"<redacted>")
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

impl Ldap {
    /// Starts an empty directory (base entries only).
    pub fn start() -> Result<Ldap> {
        Self::start_seeded("")
    }

    /// Starts a directory loaded with the base entries and then `ldif` (entries in LDIF, each a
    /// full entry with its `objectClass`es; empty for none), loaded offline with `slapadd`.
    pub fn start_seeded(ldif: &str) -> Result<Ldap> {
        Self::start_with(LdapOptions { seed: ldif, ..LdapOptions::default() })
    }

    /// Starts a directory as `opts` say: seeded, with TLS (an `ldaps://` listener besides the
    /// plain one, which then also offers StartTLS), and with the Active Directory compatible
    /// schema ([`AD_SCHEMA`]).
    pub fn start_with(opts: LdapOptions<'_>) -> Result<Ldap> {
        let ldif = opts.seed;
        ensure_apt(SLAPD, &["slapd", "ldap-utils"]).context("installing OpenLDAP for the ldap peer")?;
        let dir = tempfile::Builder::new().prefix("tenure-slapd-").tempdir().context("creating the slapd temp dir")?;
        let root = dir.path();
        let data = root.join("data");
        fs::create_dir(&data).context("creating the slapd data dir")?;

        let password: String = rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
        let password_file = root.join("rootpw");
        write_private(&password_file, &password)?;

        let conf = root.join("slapd.conf");
        let mut extra = String::new();
        if opts.ad_schema {
            let schema = root.join("ad.schema");
            fs::write(&schema, AD_SCHEMA).context("writing the AD-compatible schema")?;
            extra.push_str(&format!("include {}\n", schema.display()));
        }
        let mut tls = String::new();
        if let Some(cert) = opts.tls {
            tls = format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                cert.ca_file.display(),
                cert.cert_file.display(),
                cert.key_file.display()
            );
        }
        write_private(&conf, &slapd_conf(root, &data, &password, &extra, &tls))?;
        run(Command::new(SLAPTEST).arg("-f").arg(&conf).arg("-u")).context("checking the generated slapd.conf")?;

        let seed = root.join("seed.ldif");
        let mut f = fs::File::create(&seed).context("creating the seed LDIF")?;
        f.write_all(base_ldif().as_bytes())?;
        if !ldif.trim().is_empty() {
            f.write_all(b"\n")?;
            f.write_all(ldif.as_bytes())?;
            f.write_all(b"\n")?;
        }
        drop(f);
        run(Command::new(SLAPADD).arg("-q").arg("-f").arg(&conf).arg("-l").arg(&seed))
            .context("loading the base entries with slapadd")?;
        let _ = fs::remove_file(&seed);

        let log = root.join("slapd.log");
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let ldaps = if opts.tls.is_some() { Some(free_port()?) } else { None };
            match spawn_slapd(&conf, port, ldaps, &log) {
                Ok(child) => {
                    return Ok(Ldap {
                        url: format!("ldap://127.0.0.1:{port}/"),
                        port,
                        ldaps_url: ldaps.map(|p| format!("ldaps://127.0.0.1:{p}/")),
                        ca_file: opts.tls.map(|c| c.ca_file.clone()),
                        bind_dn: format!("cn=admin,{BASE_DN}"),
                        password,
                        password_file,
                        base_dn: BASE_DN.to_string(),
                        users_dn: format!("ou=people,{BASE_DN}"),
                        groups_dn: format!("ou=groups,{BASE_DN}"),
                        disabled_dn: format!("ou=disabled,{BASE_DN}"),
                        child,
                        log,
                        _dir: dir,
                    });
                }
                Err(StartError::PortTaken(e)) => last_error = Some(e),
                Err(StartError::Failed(e)) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("slapd did not start")))
            .context(format!("starting slapd: the port was taken {START_ATTEMPTS} times"))
    }

    /// Connector settings for this peer; the password goes through [`Ldap::password_file`].
    pub fn settings(&self) -> LdapSettings {
        LdapSettings {
            url: self.url.clone(),
            bind_dn: self.bind_dn.clone(),
            password: SecretRef::File(self.password_file.to_string_lossy().into_owned()),
            users_dn: self.users_dn.clone(),
            groups_dn: self.groups_dn.clone(),
            disabled_dn: Some(self.disabled_dn.clone()),
            page_size: 500,
            ..LdapSettings::default()
        }
    }

    /// Reads the directory with the `ldapsearch` command (ldap-utils), bound as the root DN over
    /// the plain listener: `-LLL` LDIF of the entries under `base` matching `filter`, with
    /// `attrs` (all user attributes when empty). Binary values come base64-encoded (`attr::`).
    pub fn ldapsearch(&self, base: &str, filter: &str, attrs: &[&str]) -> Result<String> {
        let mut cmd = Command::new("ldapsearch");
        cmd.args(["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &self.url, "-D", &self.bind_dn, "-y"])
            .arg(&self.password_file)
            .args(["-b", base, filter])
            .args(attrs);
        run(&mut cmd).context("running ldapsearch against the peer")
    }

    /// The server's log so far (empty at the default log level unless something went wrong).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The PID of the running `slapd`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Ldap {
    fn drop(&mut self) {
        // SIGTERM first so slapd closes its database cleanly, then SIGKILL if it lingers.
        let term = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !term.is_ok_and(|s| s.success()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return;
        }
        let start = Instant::now();
        while start.elapsed() < STOP_TIMEOUT {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`Ldap::start_with`] starts.
#[derive(Debug, Default, Clone, Copy)]
pub struct LdapOptions<'a> {
    /// LDIF loaded after the base entries.
    pub seed: &'a str,
    /// Serve TLS with this certificate: `ldaps://` on a second port, StartTLS on the first.
    pub tls: Option<&'a super::ServerCert>,
    /// Load [`AD_SCHEMA`].
    pub ad_schema: bool,
}

/// The few Active Directory attribute types and object classes the `active_directory` profile
/// writes, with Microsoft's OIDs, so slapd can hold what the profile sends. This is not Active
/// Directory: slapd stores `unicodePwd` as bytes and gives `userAccountControl` no meaning; the
/// tests read both back to check what was sent.
pub const AD_SCHEMA: &str = "\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.90 NAME 'unicodePwd' EQUALITY octetStringMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.35 NAME 'employeeID' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.2.141 NAME 'department' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.750 NAME 'groupType' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL
  MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ unicodePwd $ employeeID $
        department $ mail $ displayName $ givenName $ title ) )
objectclass ( 1.2.840.113556.1.3.30 NAME 'computer' SUP user STRUCTURAL )
objectclass ( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL MUST cn
  MAY ( member $ sAMAccountName $ groupType $ description ) )
";

enum StartError {
    /// Another process bound the port first; worth retrying on another port.
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

fn spawn_slapd(conf: &Path, port: u16, ldaps: Option<u16>, log: &Path) -> std::result::Result<Child, StartError> {
    let failed = |e: anyhow::Error| StartError::Failed(e);
    let out = fs::File::create(log).context("creating the slapd log").map_err(failed)?;
    let err = out.try_clone().context("opening the slapd log").map_err(failed)?;
    let mut child = Command::new(SLAPD)
        .arg("-f")
        .arg(conf)
        .arg("-h")
        .arg(match ldaps {
            Some(s) => format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{s}/"),
            None => format!("ldap://127.0.0.1:{port}/"),
        })
        .args(["-d", "0"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("running {SLAPD}"))
        .map_err(failed)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("waiting for slapd").map_err(failed)? {
            let text = fs::read_to_string(log).unwrap_or_default();
            let tail: String =
                text.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
            let e = anyhow::anyhow!("slapd exited with {status} before listening on port {port}: {tail}");
            return Err(if text.contains("Address already in use") {
                StartError::PortTaken(e)
            } else {
                StartError::Failed(e)
            });
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(child);
        }
        if start.elapsed() > START_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let text = fs::read_to_string(log).unwrap_or_default();
            return Err(StartError::Failed(anyhow::anyhow!(
                "slapd did not listen on port {port} within {START_TIMEOUT:?}: {text}"
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn slapd_conf(root: &Path, data: &Path, password: &str, extra_schema: &str, tls: &str) -> String {
    let root = root.display();
    let data = data.display();
    // `index member eq` keeps "which groups is this DN in" (disable, delete, read-back) an index
    // lookup rather than a scan of every group. `dbnosync` trades crash safety, which a
    // throwaway test server does not need, for speed.
    format!(
        "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
{extra_schema}{tls}pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
loglevel none
sizelimit unlimited
database mdb
maxsize 1073741824
suffix \"{BASE_DN}\"
rootdn \"cn=admin,{BASE_DN}\"
rootpw {password}
directory {data}
dbnosync
index objectClass eq
index uid eq
index member eq
"
    )
}

fn base_ldif() -> String {
    format!(
        "dn: {BASE_DN}
objectClass: top
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,{BASE_DN}
objectClass: organizationalUnit
ou: people

dn: ou=groups,{BASE_DN}
objectClass: organizationalUnit
ou: groups

dn: ou=disabled,{BASE_DN}
objectClass: organizationalUnit
ou: disabled
"
    )
}
