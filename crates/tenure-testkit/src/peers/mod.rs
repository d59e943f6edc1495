//! Starting and stopping real peers.
//!
//! Each peer type (`Ldap`, `Scim`, `Postgres`) owns a temp dir and a child process and stops it
//! on drop. Installation is serialized across processes with a lock file, because the test
//! binary runs tests in parallel and several may find a package missing at once.

pub mod hostile_scim;
pub mod ldap;
pub mod postgres;
pub mod scim;
pub mod tls;

pub use hostile_scim::HostileScim;
pub use ldap::{Ldap, LdapOptions};
pub use postgres::Postgres;
pub use scim::Scim;
pub use tls::{ServerCert, TestCa, TlsTerminator};

use anyhow::{Context, Result, bail};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}")
}

/// Runs `f` while holding a machine-wide lock named `name`.
pub fn with_install_lock<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let path = std::env::temp_dir().join(format!("tenure-install-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.lock().context("taking the install lock")?;
    let out = f();
    let _ = file.unlock();
    out
}

/// Whether a program exists at `path` or on `PATH`.
pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Installs Debian packages unless `probe` (a program) is already present.
pub fn ensure_apt(probe: &str, packages: &[&str]) -> Result<()> {
    if have(probe) {
        return Ok(());
    }
    with_install_lock("apt", || {
        if have(probe) {
            return Ok(());
        }
        eprintln!("testkit: installing {} (apt-get)", packages.join(" "));
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(packages))?;
        if !have(probe) {
            bail!("installed {} but `{probe}` is still missing", packages.join(" "));
        }
        Ok(())
    })
}

/// A Python virtualenv shared by all tests on this machine, with `packages` installed.
/// Returns the venv's `bin` dir.
pub fn ensure_venv(packages: &[&str], probe: &str) -> Result<PathBuf> {
    let venv = std::env::var_os("TENURE_TESTKIT_VENV")
        .map_or_else(|| std::env::temp_dir().join("tenure-testkit-venv"), PathBuf::from);
    let bin = venv.join("bin");
    if bin.join(probe).exists() {
        return Ok(bin);
    }
    with_install_lock("venv", || {
        if bin.join(probe).exists() {
            return Ok(bin.clone());
        }
        eprintln!("testkit: installing {} (pip, into {})", packages.join(" "), venv.display());
        if !bin.join("pip").exists() {
            run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        }
        run(Command::new(bin.join("pip")).args(["install", "-q", "--disable-pip-version-check"]).args(packages))?;
        Ok(bin.clone())
    })
}

/// Runs a command to completion; a non-zero exit is an error carrying its stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).chars().take(2000).collect::<String>()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
