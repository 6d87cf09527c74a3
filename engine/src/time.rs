//! Time and duration primitives: RFC 3339 parsing (an offset is required),
//! UTC printing, and the `1h30m` duration syntax. Instants are microseconds
//! since the Unix epoch so that comparisons are integer comparisons.
//!
//! The documents' convention is stricter than chrono's RFC 3339 reader: the
//! date and the time are separated by `T` (chrono also takes a space) and
//! seconds run from 00 to 59 (chrono also takes a leap second, `:60`). Rule
//! text's `@...` literals go through the same function. Errors quote the
//! value by a prefix only ([`quoted`]).

use cavra_grammar::diagnostic::quoted;
use chrono::format::ParseErrorKind;
use chrono::{DateTime, NaiveDate, SecondsFormat, Timelike, Utc};

pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// Parses an RFC 3339 timestamp with an offset (`Z` or `+02:00`), `T`
/// between date and time, and seconds 00-59.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let trimmed = text.trim();
    match DateTime::parse_from_rfc3339(trimmed) {
        // `YYYY-MM-DD` is ten bytes: the separator follows (chrono takes only 4-digit years).
        Ok(_) if !matches!(trimmed.as_bytes().get(10), Some(b'T' | b't')) => {
            Err(format!("expected an RFC 3339 timestamp with `T` between the date and the time, got {}", quoted(text)))
        }
        // chrono keeps a leap second as a second past 59 (nanoseconds over 10^9).
        Ok(t) if t.nanosecond() >= 1_000_000_000 => Err(format!("{} is a leap second; seconds run from 00 to 59", quoted(text))),
        Ok(t) => Ok(t.with_timezone(&Utc).timestamp_micros()),
        Err(_) if trimmed.len() > 10 && !has_offset(trimmed) => {
            Err(format!("expected an RFC 3339 timestamp with an offset (Z or +02:00), got {}", quoted(text)))
        }
        Err(e) if matches!(e.kind(), ParseErrorKind::OutOfRange | ParseErrorKind::Impossible) => {
            Err(format!("{} is not a real date and time ({e})", quoted(text)))
        }
        Err(_) => Err(format!("expected an RFC 3339 timestamp, got {}", quoted(text))),
    }
}

fn has_offset(text: &str) -> bool {
    let tail = &text[text.len().saturating_sub(6)..];
    text.ends_with('Z') || text.ends_with('z') || tail.starts_with('+') || tail.starts_with('-')
}

/// A timestamp literal: RFC 3339, or a date alone meaning midnight UTC.
pub fn parse_time_literal(text: &str) -> Result<i64, String> {
    if text.len() == 10 {
        return match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) => Ok(date.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_micros()).unwrap_or_default()),
            Err(e) => Err(format!("{} is not a real date ({e})", quoted(text))),
        };
    }
    parse_time(text)
}

pub fn format_time(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => format!("<time out of range: {micros}>"),
    }
}

/// Parses `90d`, `1h30m`, `2w`, `45s` (units w, d, h, m, s; largest first is
/// conventional but not required).
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("expected a duration such as 30m, 90d or 1h30m, got {}", quoted(text));
    let (negative, body) = match text.trim().strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.trim()),
    };
    if body.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(bad()),
        };
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n.checked_mul(unit * MICROS_PER_SECOND).and_then(|v| total.checked_add(v)).ok_or_else(|| format!("duration {} is too large", quoted(text)))?;
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    Ok(if negative { -total } else { total })
}

pub fn format_duration(micros: i64) -> String {
    if micros == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if micros < 0 {
        out.push('-');
    }
    let mut rest = micros.unsigned_abs();
    let sub_second = rest % MICROS_PER_SECOND as u64;
    rest /= MICROS_PER_SECOND as u64;
    for (unit, size) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
        let n = rest / size;
        rest %= size;
        if n > 0 || (unit == 's' && sub_second > 0) {
            if unit == 's' && sub_second > 0 {
                let frac = format!("{:06}", sub_second);
                out.push_str(&format!("{n}.{}s", frac.trim_end_matches('0')));
            } else {
                out.push_str(&format!("{n}{unit}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_normalise_to_utc() {
        let a = parse_time("2026-05-21T20:00:00+02:00").unwrap();
        assert_eq!(format_time(a), "2026-05-21T18:00:00Z");
        assert!(parse_time("2026-05-21T18:00:00").unwrap_err().contains("offset"));
        assert!(parse_time("tomorrow").unwrap_err().contains("\"tomorrow\""));
        assert_eq!(format_time(parse_time_literal("2026-05-21").unwrap()), "2026-05-21T00:00:00Z");
    }

    #[test]
    fn durations_round_trip() {
        for (text, canonical) in [("90d", "90d"), ("1h30m", "1h30m"), ("2w", "14d"), ("45s", "45s"), ("90m", "1h30m")] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), canonical);
        }
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("99999999999999999w").is_err());
    }

    #[test]
    fn only_t_separates_date_and_time_and_seconds_stop_at_59() {
        assert!(parse_time("2026-05-21T18:00:00Z").is_ok());
        // RFC 3339 allows a lower-case `t` (and `z`), as the rule grammar does.
        assert_eq!(parse_time("2026-05-21t18:00:00z"), parse_time("2026-05-21T18:00:00Z"));
        let space = parse_time("2026-05-21 18:00:00Z").unwrap_err();
        assert!(space.contains("`T` between the date and the time") && space.contains("\"2026-05-21 18:00:00Z\""), "{space}");
        for leap in ["2026-12-31T23:59:60Z", "2026-06-30T23:59:60.5+00:00", "2026-05-21T12:30:60+02:00"] {
            let e = parse_time(leap).unwrap_err();
            assert!(e.contains("leap second") || e.contains("not a real date"), "{leap}: {e}");
            assert!(e.contains(leap), "{e}");
        }
        assert!(parse_time_literal("2026-12-31T23:59:60Z").unwrap_err().contains("leap second"));
        assert!(parse_time("2026-12-31T23:59:59.999999Z").is_ok());
    }

    #[test]
    fn errors_quote_a_prefix_of_the_value() {
        let huge = format!("2026-05-21T18:00:00{}", "Z".repeat(1_000_000));
        for e in [parse_time(&huge).unwrap_err(), parse_duration(&huge).unwrap_err(), parse_time(&format!("x{huge}")).unwrap_err()] {
            assert!(e.len() < 200, "{} bytes", e.len());
            assert!(e.contains("\"2026-05-21T18:00:00ZZZ") || e.contains("\"x2026"), "{e}");
        }
    }
}
