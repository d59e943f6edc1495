//! Output: the `outln!` macro, formats, JSON, aligned tables. Everything a command prints goes
//! through here.

/// `println!` that exits quietly when stdout is closed (`tenure plan | head`), instead of
/// panicking on the broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

use crate::support::UsageError;
use anyhow::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Csv,
}

/// What most commands print: text (the default) or JSON.
pub const TEXT_JSON: &[Format] = &[Format::Text, Format::Json];

impl Format {
    /// Parses `--format` for a command that accepts `allowed`.
    pub fn parse(value: Option<&str>, allowed: &[Format], default: Format) -> Result<Format> {
        let f = match value {
            None => return Ok(default),
            Some("text") => Format::Text,
            Some("json") => Format::Json,
            Some("jsonl") => Format::Jsonl,
            Some("csv") => Format::Csv,
            Some(other) => return Err(UsageError(format!("unknown format `{other}`")).into()),
        };
        if !allowed.contains(&f) {
            let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
            return Err(UsageError(format!("this command prints {}, not {}", names.join(" or "), f.name())).into());
        }
        Ok(f)
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Prints rows as aligned columns. Cells are untrusted text: hidden characters (a newline in a
/// title, an escape sequence) are escaped so every row stays on one line.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> =
        rows.iter().map(|r| r.iter().map(|c| tenure_core::text::escape(c).into_owned()).collect()).collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        outln!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

pub fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".into())
}

/// Untrusted text for one line of output: hidden characters escaped.
pub fn esc(s: &str) -> String {
    tenure_core::text::escape(s).into_owned()
}

/// An operation's reason on one line: `event 3 (joiner); rules staff,eng` or `finding ...`.
pub fn reason_text(r: &tenure_proto::OpReason) -> String {
    let mut s = String::new();
    if let Some(e) = r.event {
        s.push_str(&format!("event {e}"));
    }
    if let Some(k) = r.kind {
        s.push_str(&format!(" ({k})"));
    }
    if !r.rules.is_empty() {
        s.push_str(&format!("; rules {}", r.rules.join(",")));
    }
    if let Some(i) = r.review {
        s.push_str(&format!("; review item {i}"));
    }
    if let Some(f) = &r.finding {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&format!("finding {f}"));
    }
    s
}

/// What happened to the audit signing key files; never the key.
pub fn key_notes(k: &tenure_engine::evidence::KeyFiles, path: &std::path::Path) {
    if k.created {
        outln!(
            "created signing key `{}` (0600, key id {}); keep it away from the database's writers",
            path.display(),
            k.signer.key_id()
        );
    }
    if k.wrote_public {
        outln!("wrote public key `{}`: give it to your auditors", k.public_path.display());
    }
}
