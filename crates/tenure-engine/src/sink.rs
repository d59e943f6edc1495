//! The secret sink: where a rotated credential goes, and the only place it goes.
//!
//! `[nhi] secret_sink = "DIR"` (or a target's own `secret_sink`) names a directory; the secret of
//! account `ACCOUNT` in target `TARGET` is the file `DIR/TARGET/ACCOUNT`, holding the secret and a
//! newline, mode 0600, in directories made 0700. The file is written to a temporary name and
//! renamed over the old one, so a reader sees the old secret or the new one, never half of
//! either. Before the target is changed the new secret is staged as `.staged-ACCOUNT` beside it
//! (a name no account maps to: `component` always encodes a leading `.`): if the process dies
//! between changing the target and promoting the file, the secret that works is still on disk.
//! A staged file that is there when an attempt starts was left by one whose outcome is unknown
//! (it timed out, failed transiently, died, or could not promote), so the secret in it may be
//! the live one: it is kept, renamed aside to `.staged-ACCOUNT.TIMESTAMP`, never overwritten or
//! discarded; the operator removes it once the account's current secret is known to work.
//!
//! What the sink refuses, before anything is changed in a target: a sink that is a symbolic link,
//! not a directory, or open to group or others (a secret must not become readable by accident;
//! `chmod 700` it), and target or account names that cannot be one path component (they are
//! percent-encoded otherwise: `/`, `\`, control characters, a leading `.`). Errors name the path
//! and never the secret.
//!
//! Nothing else in Tenure receives the secret: not the store, the audit trail, the logs, any
//! output or any error (`tenure_connect::NewSecret` has no `Display` and a redacted `Debug`).

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use tenure_connect::NewSecret;

/// Where one account's secret goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkFile {
    dir: PathBuf,
    name: String,
}

impl SinkFile {
    /// The file for `account` of `target` under the sink `root`; checks the sink and makes the
    /// target's directory (0700) if needed. Writes no secret.
    pub fn prepare(root: &Path, target: &str, account: &str) -> Result<Self, String> {
        ensure_private_dir(root, true)?;
        let dir = root.join(component(target));
        ensure_private_dir(&dir, true)?;
        Ok(Self { dir, name: component(account) })
    }

    /// The path the secret is promoted to.
    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// Where the secret waits until the target has it: `.staged-ACCOUNT`.
    pub fn staged(&self) -> PathBuf {
        self.dir.join(format!(".staged-{}", self.name))
    }

    /// Writes `secret` to `.staged-ACCOUNT` (0600), before the target is changed. A staged file
    /// already there is an earlier attempt's secret that the target may hold: it is renamed
    /// aside (`.staged-ACCOUNT.TIMESTAMP`) first, and the stage is refused if it cannot be.
    pub fn stage(&self, secret: &NewSecret) -> Result<(), String> {
        let staged = self.staged();
        match fs::symlink_metadata(&staged) {
            Ok(_) => {
                let aside = self.aside_path();
                fs::rename(&staged, &aside).map_err(|e| {
                    format!(
                        "cannot keep the earlier staged secret `{}` as `{}`: {}",
                        staged.display(),
                        aside.display(),
                        e.kind()
                    )
                })?;
                tracing::warn!(
                    kept = %aside.display(),
                    "an earlier rotation's outcome is unknown; its staged secret is kept beside the account's"
                );
                sync_dir(&self.dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read `{}`: {}", staged.display(), e.kind())),
        }
        write_private(&self.dir, &staged, secret)
    }

    /// A free `.staged-ACCOUNT.TIMESTAMP` name (UTC, to the microsecond; a counter after it if
    /// two attempts share one).
    fn aside_path(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
        let base = format!(".staged-{}.{stamp}", self.name);
        let mut path = self.dir.join(&base);
        let mut n = 1;
        while fs::symlink_metadata(&path).is_ok() {
            path = self.dir.join(format!("{base}-{n}"));
            n += 1;
        }
        path
    }

    /// Renames the staged secret over `ACCOUNT`, once the target has it.
    pub fn promote(&self) -> Result<(), String> {
        let (from, to) = (self.staged(), self.path());
        fs::rename(&from, &to)
            .map_err(|e| format!("cannot move `{}` to `{}`: {}", from.display(), to.display(), e.kind()))?;
        sync_dir(&self.dir);
        Ok(())
    }

    /// Removes the secret this attempt staged, once the target refused it outright (it never
    /// took effect). An earlier attempt's secret was renamed aside by `stage`, so it is not
    /// this file.
    pub fn discard(&self) {
        let _ = fs::remove_file(self.staged());
    }
}

/// What `tenure check` says about a sink: nothing when it is a private directory or does not
/// exist yet (it is made 0700 on the first rotation), else why a rotation would be refused.
pub fn check(root: &Path) -> Option<String> {
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => ensure_private_dir(root, false).err(),
    }
}

/// `name` as one path component: kept when it is plain, percent-encoded otherwise.
fn component(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        let plain = c.is_alphanumeric() || matches!(c, '-' | '_' | '@' | '+') || (c == '.' && i > 0);
        if plain && !c.is_control() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() { "%".into() } else { out }
}

/// Makes `dir` (0700) if it is missing; refuses a symbolic link, a non-directory, or a
/// directory group or others may enter.
fn ensure_private_dir(dir: &Path, create: bool) -> Result<(), String> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "secret sink `{}` is a symbolic link; point `secret_sink` at the directory itself",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => Err(format!("secret sink `{}` is not a directory", dir.display())),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Err(format!(
            "secret sink `{}` is open to others (mode {:04o}); `chmod 700` it",
            dir.display(),
            m.permissions().mode() & 0o7777
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create secret sink `{}`: {}", dir.display(), e.kind()))?;
            // `recursive` applies the mode to every level it creates, and the umask may have
            // narrowed it further, never widened it; set it exactly on the last one.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot restrict secret sink `{}`: {}", dir.display(), e.kind()))
        }
        Err(e) => Err(format!("cannot read secret sink `{}`: {}", dir.display(), e.kind())),
    }
}

/// Writes `secret` to `path` through a temporary file created 0600 in `dir`, synced and renamed.
fn write_private(dir: &Path, path: &Path, secret: &NewSecret) -> Result<(), String> {
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand_suffix()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("cannot create `{}`: {}", tmp.display(), e.kind()))?;
        f.write_all(secret.expose().as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("cannot write `{}`: {}", tmp.display(), e.kind()))?;
        fs::rename(&tmp, path)
            .map_err(|e| format!("cannot move `{}` to `{}`: {}", tmp.display(), path.display(), e.kind()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    sync_dir(dir);
    result
}

fn rand_suffix() -> String {
    use rand::Rng as _;
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(12).map(char::from).collect()
}

/// Makes a rename in `dir` durable (best effort: not every file system lets a directory sync).
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
    }

    #[test]
    fn a_secret_is_staged_then_promoted_0600_in_0700_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("sink");
        let f = SinkFile::prepare(&root, "warehouse", "svc-etl").unwrap();
        let s = NewSecret::generate();
        f.stage(&s).unwrap();
        assert!(!f.path().exists(), "not promoted before the target has it");
        f.promote().unwrap();
        assert_eq!(fs::read_to_string(f.path()).unwrap(), format!("{}\n", s.expose()));
        assert_eq!((mode(&f.path()), mode(&root), mode(&root.join("warehouse"))), (0o600, 0o700, 0o700));
        let again = NewSecret::generate();
        f.stage(&again).unwrap();
        f.promote().unwrap();
        assert_eq!(fs::read_to_string(f.path()).unwrap().trim(), again.expose(), "replaced whole");
        let names: Vec<String> = fs::read_dir(root.join("warehouse"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["svc-etl"], "no temporary or staged file is left");
    }

    #[test]
    fn names_become_one_component_and_unsafe_sinks_are_refused() {
        for (name, want) in [
            ("svc-etl", "svc-etl"),
            ("a/b", "a%2Fb"),
            ("..", "%2E."),
            (".hidden", "%2Ehidden"),
            ("", "%"),
            ("x\ny", "x%0Ay"),
        ] {
            assert_eq!(component(name), want, "{name:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o755)).unwrap();
        let e = SinkFile::prepare(&open, "t", "a").unwrap_err();
        assert!(e.contains("is open to others (mode 0755)"), "{e}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        assert!(SinkFile::prepare(&link, "t", "a").unwrap_err().contains("symbolic link"));
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(SinkFile::prepare(&file, "t", "a").unwrap_err().contains("not a directory"));
        assert!(check(&open).is_some_and(|e| e.contains("chmod 700")) && check(&tmp.path().join("later")).is_none());
    }
}
