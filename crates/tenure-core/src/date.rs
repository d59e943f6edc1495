//! Dates: the one format Tenure stores (`YYYY-MM-DD`) and the relative forms policy uses.

use chrono::{Days, NaiveDate};

/// The years a date may carry. HR data outside them is a typo or an attack (`-001-01-01`,
/// `0000-01-01`), never a real start or end date.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=9999;

/// Parses a calendar date: `YYYY-MM-DD`, or a full, valid RFC 3339 time whose date part (as
/// written, in its own offset) is taken. Nothing else is accepted, so a value is either a date
/// Tenure acts on or a rejected row, never something silently ignored.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    check_date(s).ok()
}

/// Like [`parse_date`], with the reason a value is not a date.
pub fn check_date(s: &str) -> Result<NaiveDate, String> {
    const EXPECTED: &str = "expected YYYY-MM-DD or an RFC 3339 time";
    let s = s.trim();
    let b = s.as_bytes();
    let shape = |b: &[u8]| {
        b.len() >= 10
            && b.iter()
                .take(10)
                .enumerate()
                .all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() })
    };
    if !shape(b) {
        return Err(EXPECTED.into());
    }
    let date = if b.len() == 10 {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| "no such calendar date".to_string())?
    } else {
        chrono::DateTime::parse_from_rfc3339(s).map_err(|_| format!("not a valid time; {EXPECTED}"))?.date_naive()
    };
    if !YEARS.contains(&chrono::Datelike::year(&date)) {
        return Err(format!("year outside {}-{}", YEARS.start(), YEARS.end()));
    }
    Ok(date)
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
            (" 2026-03-01 ", Some("2026-03-01")),
            ("2026-03-01T09:00:00Z", Some("2026-03-01")),
            ("2026-03-01T23:30:00-08:00", Some("2026-03-01")),
            ("1900-01-01", Some("1900-01-01")),
            ("9999-12-31", Some("9999-12-31")),
            ("2026/03/01", None),
            ("2026-02-30", None),
            ("01/03/2026", None),
            ("2026-03-01x", None),
            ("2026-03-01 09:00", None),
            ("2026-01-01T25:99:99garbage", None),
            ("2026-01-01T10:00:00", None),
            ("-001-01-01", None),
            ("0000-01-01", None),
            ("1899-12-31", None),
            ("+2026-01-01", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_date(input).map(|d| d.to_string()).as_deref(), want, "{input}");
        }
        assert_eq!(check_date("0000-01-01"), Err("year outside 1900-9999".to_string()));
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
