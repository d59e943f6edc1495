//! The README's five-minute tour, run line by line as written (issue 6, point 15). The demo line
//! with `--keep` starts real peers in the background, exactly as a user's first terminal would.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The shell lines of the tour's code blocks, in order.
fn tour_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find("## A five-minute tour").expect("the README has a tour");
    let end = readme[start..].find("\n### ").map_or(readme.len(), |e| start + e);
    let mut lines = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block && !line.trim().is_empty() {
            lines.push(line.to_string());
        }
    }
    lines
}

/// `command  # comment` split at the first run of spaces before `#`.
fn split_comment(line: &str) -> (&str, &str) {
    match line.find("  #") {
        Some(i) => (line[..i].trim(), line[i..].trim_start().trim_start_matches('#').trim()),
        None => (line.trim(), ""),
    }
}

fn shell(cwd: &Path, path: &str, cmd: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .env("PATH", path)
        .env("TENURE_TODAY", crate::TODAY)
        .env("TENURE_USER", "tour-reader")
        .env_remove("TENURE_CONFIG")
        .env_remove("TENURE_STORE_URL");
    c
}

#[test]
fn issue6_the_readme_tour_runs_as_written() {
    let lines = tour_lines();
    assert!(lines.len() > 15, "{lines:#?}");
    let root = tempfile::TempDir::new().unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_tenure")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cwd: PathBuf = root.path().to_path_buf();
    let mut demo: Option<std::process::Child> = None;
    let mut demo_out = String::new();
    for line in &lines {
        let (cmd, comment) = split_comment(line);
        if cmd.starts_with("cargo ") {
            continue; // the test runs the binary cargo built for it
        }
        if cmd.starts_with("tenure demo") && cmd.contains("--keep") {
            let mut child = shell(&cwd, &path, &format!("exec {cmd}")).stdout(Stdio::piped()).spawn().unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    let _ = tx.send(l);
                }
            });
            let started = Instant::now();
            loop {
                let l =
                    rx.recv_timeout(Duration::from_secs(300)).unwrap_or_else(|_| panic!("demo stalled:\n{demo_out}"));
                demo_out.push_str(&l);
                demo_out.push('\n');
                if l.contains("stay up until Ctrl-C") {
                    break;
                }
                assert!(started.elapsed() < Duration::from_secs(300), "{demo_out}");
            }
            std::thread::spawn(move || rx.into_iter().for_each(drop));
            demo = Some(child);
            continue;
        }
        let want = if comment.contains("exits 1") { 1 } else { 0 };
        for part in cmd.split(" && ") {
            if let Some(dir) = part.strip_prefix("cd ") {
                cwd = cwd.join(dir.trim());
                assert!(cwd.is_dir(), "`{line}`: no dir {}", cwd.display());
                continue;
            }
            let out = shell(&cwd, &path, part).output().unwrap();
            let (stdout, stderr) =
                (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
            assert_eq!(
                out.status.code(),
                Some(want),
                "tour line `{line}` in {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                cwd.display()
            );
            // What the comments promise.
            if part.contains("import --source hr cut.csv") {
                assert!(stdout.contains("HELD"), "{stdout}");
            }
            if part.contains("reconcile --remediate") {
                assert!(stdout.contains("0 finding(s)") && !stdout.contains("remediation"), "{stdout}");
            }
            if part.contains("cases --coverage") {
                assert!(stdout.contains("0 still open") && !stdout.contains(" 0.0%"), "{stdout}");
            }
            if part.contains("identity show") && comment.contains("the leaver") {
                let accounts: Vec<&str> = stdout
                    .lines()
                    .skip_while(|l| !l.starts_with("accounts"))
                    .take_while(|l| !l.starts_with("operations"))
                    .collect();
                assert!(stdout.contains("terminated") && accounts.len() > 2, "{stdout}");
                assert!(accounts.iter().skip(2).all(|l| !l.contains("enabled") && l.contains("disabled")), "{stdout}");
            }
        }
    }
    let mut child = demo.expect("the tour starts the demo with --keep");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert!(status.success(), "the demo ends cleanly on Ctrl-C: {status:?}\n{demo_out}");
}
