//! Dates: the one format Tenure stores (`YYYY-MM-DD`) and the relative forms policy uses.

use chrono::{Days, NaiveDate};

/// Parses a calendar date. HR extracts commonly carry `YYYY-MM-DD`; `YYYY/MM/DD` and an ISO
/// timestamp (whose date part is taken) are accepted too.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let head = s.get(..10).unwrap_or(s);
    NaiveDate::parse_from_str(head, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(head, "%Y/%m/%d"))
        .ok()
        .filter(|_| s.len() == 10 || s.as_bytes().get(10).is_some_and(|c| *c == b'T' || *c == b' '))
}

/// Parses `today`, `today+30d`, `today-2w` or an absolute date, relative to `today`.
pub fn parse_relative(s: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let t = s.trim();
    let Some(rest) = t.strip_prefix("today") else {
        return parse_date(t)
            .ok_or_else(|| format!("`{s}` is not a date: expected `YYYY-MM-DD`, `today`, `today+Nd` or `today-Nw`"));
    };
    if rest.is_empty() {
        return Ok(today);
    }
    let bad = || format!("`{s}` is not a relative date: expected `today+Nd` or `today-Nw`");
    let (sign, amount) = match rest.split_at_checked(1) {
        Some(("+", a)) => (1i64, a),
        Some(("-", a)) => (-1i64, a),
        _ => return Err(bad()),
    };
    let (num, unit) = amount.split_at_checked(amount.len().saturating_sub(1)).ok_or_else(bad)?;
    let n: u64 = num.parse().map_err(|_| bad())?;
    let days = match unit {
        "d" => n,
        "w" => n.saturating_mul(7),
        _ => return Err(bad()),
    };
    let shifted =
        if sign > 0 { today.checked_add_days(Days::new(days)) } else { today.checked_sub_days(Days::new(days)) };
    shifted.ok_or_else(bad)
}

/// Parses a duration such as `8h`, `30m`, `7d` into seconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, unit) = s.split_at_checked(s.len().checked_sub(1)?)?;
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    n.checked_mul(mult).filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap_or_default()
    }

    #[test]
    fn dates_parse_in_accepted_forms_only() {
        let cases = [
            ("2026-03-01", Some("2026-03-01")),
            ("2026/03/01", Some("2026-03-01")),
            ("2026-03-01T09:00:00Z", Some("2026-03-01")),
            ("2026-02-30", None),
            ("01/03/2026", None),
            ("2026-03-01x", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_date(input).map(|d| d.to_string()).as_deref(), want, "{input}");
        }
    }

    #[test]
    fn relative_dates_shift_from_today() {
        let today = d("2026-11-21");
        assert_eq!(parse_relative("today", today), Ok(today));
        assert_eq!(parse_relative("today+10d", today), Ok(d("2026-12-01")));
        assert_eq!(parse_relative("today-2w", today), Ok(d("2026-11-07")));
        assert_eq!(parse_relative("2020-01-01", today), Ok(d("2020-01-01")));
        assert!(parse_relative("today+x", today).is_err());
        assert!(parse_relative("tomorrow", today).is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("8h"), Some(28_800));
        assert_eq!(parse_duration("30m"), Some(1_800));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5y"), None);
    }
}
