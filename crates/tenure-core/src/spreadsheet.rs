//! Cells that are safe to open in a spreadsheet.
//!
//! A CSV cell that begins with `=`, `+`, `-` or `@` is read by Excel, LibreOffice and Google
//! Sheets as a formula, and a leading tab or carriage return can hide one; an attacker who
//! controls a value (an HR field, an account name, a reason) could then run a formula on an
//! auditor's machine (CSV injection). Every CSV export Tenure writes passes each cell through
//! [`safe_cell`], which prefixes such a cell with `'` so the spreadsheet shows it as text. Exports
//! that are hashed or verified (JSONL, evidence bundles) stay byte-exact and never use it.

use std::borrow::Cow;

/// The first characters that make a spreadsheet treat a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// `cell`, prefixed with `'` if a spreadsheet would otherwise read it as a formula.
pub fn safe_cell(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(FORMULA_START) { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

#[cfg(test)]
mod tests {
    use super::safe_cell;

    #[test]
    fn formula_starts_are_neutralised_and_everything_else_is_untouched() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("", ""),
            ("alice", "alice"),
            ("a=b", "a=b"),
            ("'quoted", "'quoted"),
            ("2026-11-21", "2026-11-21"),
        ] {
            assert_eq!(safe_cell(cell), want, "{cell:?}");
        }
    }
}
