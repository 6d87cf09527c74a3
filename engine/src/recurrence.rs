//! Recurring windows: "every Friday 18:00-20:00, Europe/Berlin".
//!
//! Times of day are wall-clock times in an IANA time zone (chrono-tz's copy
//! of the tz database), so an occurrence keeps its local hours across DST
//! changes and its length in UTC changes instead. A wall time that a DST
//! change skips or repeats is resolved the way RFC 9557 / JavaScript
//! Temporal's `compatible` mode does: a skipped time moves forward by the
//! length of the gap, a repeated time takes its earlier instant.

use crate::time::{format_time, parse_time, MICROS_PER_SECOND};
use cavra_grammar::diagnostic::{quoted, quoted_json};
use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::Value as Json;
use std::fmt;

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];
const EVERY_DAY: u8 = 0x7f;

/// A weekly recurrence; see the module docs for the DST rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recurrence {
    /// Bit `n` is set when occurrences start on weekday `n` (Monday = 0).
    weekdays: u8,
    start: NaiveTime,
    end: NaiveTime,
    zone: Tz,
    /// Occurrences are clipped to `[from, until)` when these are given.
    from: Option<i64>,
    until: Option<i64>,
}

/// A field of the JSON form that is wrong: the key (relative to the
/// recurrence object) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecurrenceError {
    pub field: &'static str,
    /// Index into `weekdays` when the bad value is one weekday.
    pub item: Option<usize>,
    pub message: String,
}

impl Recurrence {
    /// Reads `{"weekdays": [...], "start_time": "18:00", "end_time": "20:00",
    /// "time_zone": "Europe/Berlin", "from": TIME, "until": TIME}`.
    pub fn from_json(json: &Json) -> Result<Recurrence, RecurrenceError> {
        let err = |field, item, message: String| RecurrenceError { field, item, message };
        let Json::Object(obj) = json else {
            return Err(err("", None, "expected an object with start_time, end_time and time_zone".into()));
        };
        let mut weekdays = 0u8;
        match obj.get("weekdays") {
            None | Some(Json::Null) => {}
            Some(Json::Array(days)) => {
                for (i, day) in days.iter().enumerate() {
                    let name = day.as_str().unwrap_or_default().trim().to_ascii_lowercase();
                    let Some((_, wd)) = WEEKDAYS.iter().find(|(n, _)| *n == name || (name.len() == 3 && n.starts_with(&name))) else {
                        return Err(err("weekdays", Some(i), format!("unknown weekday {}; expected monday ... sunday", quoted_json(day))));
                    };
                    weekdays |= 1 << wd.num_days_from_monday();
                }
            }
            Some(other) => return Err(err("weekdays", None, format!("expected a list of weekdays, got {}", quoted_json(other)))),
        }
        if weekdays == 0 {
            weekdays = EVERY_DAY;
        }
        let time_of_day = |field: &'static str| -> Result<NaiveTime, RecurrenceError> {
            match obj.get(field) {
                Some(Json::String(s)) => NaiveTime::parse_from_str(s, "%H:%M")
                    .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
                    .map_err(|_| err(field, None, format!("expected a time of day such as \"18:00\", got {}", quoted(s)))),
                Some(other) => Err(err(field, None, format!("expected a time of day such as \"18:00\", got {}", quoted_json(other)))),
                None => Err(err(field, None, format!("missing required field `{field}`"))),
            }
        };
        let start = time_of_day("start_time")?;
        let end = time_of_day("end_time")?;
        let zone = match obj.get("time_zone") {
            Some(Json::String(name)) => name
                .parse::<Tz>()
                .map_err(|_| err("time_zone", None, format!("unknown time zone {}; expected an IANA name such as \"Europe/Berlin\"", quoted(name))))?,
            Some(other) => return Err(err("time_zone", None, format!("expected an IANA time zone name, got {}", quoted_json(other)))),
            None => return Err(err("time_zone", None, "missing required field `time_zone`".into())),
        };
        let instant = |field: &'static str| -> Result<Option<i64>, RecurrenceError> {
            match obj.get(field) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => parse_time(s).map(Some).map_err(|m| err(field, None, m)),
                Some(other) => Err(err(field, None, format!("expected an RFC 3339 timestamp, got {}", quoted_json(other)))),
            }
        };
        let (from, until) = (instant("from")?, instant("until")?);
        if let (Some(f), Some(u)) = (from, until) {
            if u <= f {
                return Err(err("until", None, format!("`until` ({}) must be after `from` ({})", format_time(u), format_time(f))));
            }
        }
        Ok(Recurrence { weekdays, start, end, zone, from, until })
    }

    pub fn to_json(&self) -> Json {
        let mut obj = serde_json::Map::new();
        let days: Vec<Json> = WEEKDAYS.iter().filter(|(_, wd)| self.on(*wd)).map(|(n, _)| Json::from(*n)).collect();
        obj.insert("weekdays".into(), Json::Array(days));
        obj.insert("start_time".into(), Json::from(self.start.format("%H:%M").to_string()));
        obj.insert("end_time".into(), Json::from(self.end.format("%H:%M").to_string()));
        obj.insert("time_zone".into(), Json::from(self.zone.name()));
        if let Some(f) = self.from {
            obj.insert("from".into(), Json::from(format_time(f)));
        }
        if let Some(u) = self.until {
            obj.insert("until".into(), Json::from(format_time(u)));
        }
        Json::Object(obj)
    }

    fn on(&self, wd: Weekday) -> bool {
        self.weekdays & (1 << wd.num_days_from_monday()) != 0
    }

    /// The occurrence starting on local date `day`, clipped to `from`/`until`
    /// (`None` when the weekday does not match or nothing is left).
    fn occurrence(&self, day: NaiveDate) -> Option<(i64, i64)> {
        if !self.on(day.weekday()) {
            return None;
        }
        // An end at or before the start ends on the next day (equal: 24 hours).
        let end_day = if self.end <= self.start { day.checked_add_days(Days::new(1))? } else { day };
        let lo = resolve(self.zone, day.and_time(self.start))?;
        let hi = resolve(self.zone, end_day.and_time(self.end))?;
        let lo = self.from.map_or(lo, |f| lo.max(f));
        let hi = self.until.map_or(hi, |u| hi.min(u));
        (lo < hi).then_some((lo, hi))
    }

    fn local_date(&self, t: i64) -> Option<NaiveDate> {
        let utc = DateTime::<Utc>::from_timestamp_micros(t)?;
        Some(utc.with_timezone(&self.zone).date_naive())
    }

    /// Whether instant `t` (microseconds since the epoch) is in an occurrence.
    pub fn covers(&self, t: i64) -> bool {
        self.covering(t).is_some()
    }

    /// The occurrence `[start, end)` that contains instant `t`, if any.
    pub fn covering(&self, t: i64) -> Option<(i64, i64)> {
        let today = self.local_date(t)?;
        // An occurrence lasts at most a day, so it started today, yesterday, or
        // (across a DST fold at midnight) the day before.
        (0..3).filter_map(|back| today.checked_sub_days(Days::new(back)).and_then(|d| self.occurrence(d))).find(|&(lo, hi)| lo <= t && t < hi)
    }

    /// The occurrences that overlap `[from, to)`, in order, clipped to it.
    pub fn occurrences(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let (Some(first), Some(last)) = (self.local_date(from), self.local_date(to)) else { return out };
        let mut day = first.checked_sub_days(Days::new(2)).unwrap_or(first);
        while day <= last {
            if let Some((lo, hi)) = self.occurrence(day) {
                if lo < to && hi > from {
                    out.push((lo.max(from), hi.min(to)));
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        out
    }
}

/// Local wall time -> instant, the `compatible` way (see the module docs).
fn resolve(zone: Tz, local: NaiveDateTime) -> Option<i64> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.timestamp_micros()),
        LocalResult::Ambiguous(earlier, _) => Some(earlier.timestamp_micros()),
        LocalResult::None => {
            // In a gap: read the wall time with the offset in force before the
            // gap, which lands as far past the gap's end as the time was past its start.
            let before = local.checked_sub_days(Days::new(1))?.and_utc();
            let offset = zone.offset_from_utc_datetime(&before.naive_utc()).fix().local_minus_utc() as i64;
            Some((local.and_utc().timestamp() - offset) * MICROS_PER_SECOND)
        }
    }
}

/// Compact display form: `friday 18:00-20:00 Europe/Berlin`.
impl fmt::Display for Recurrence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.weekdays == EVERY_DAY {
            f.write_str("daily")?;
        } else {
            let days: Vec<&str> = WEEKDAYS.iter().filter(|(_, wd)| self.on(*wd)).map(|(n, _)| *n).collect();
            f.write_str(&days.join(","))?;
        }
        write!(f, " {}-{} {}", self.start.format("%H:%M"), self.end.format("%H:%M"), self.zone.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> i64 {
        parse_time(s).unwrap()
    }

    fn friday_evening() -> Recurrence {
        Recurrence::from_json(&json!({"weekdays": ["friday"], "start_time": "18:00", "end_time": "20:00", "time_zone": "Europe/Berlin"})).unwrap()
    }

    #[test]
    fn local_hours_hold_across_dst() {
        let r = friday_evening();
        // 2026-03-27 is the Friday before spring-forward (CET, +01:00).
        assert!(!r.covers(at("2026-03-27T16:59:59Z")));
        assert!(r.covers(at("2026-03-27T17:00:00Z")));
        assert!(r.covers(at("2026-03-27T18:59:59Z")));
        assert!(!r.covers(at("2026-03-27T19:00:00Z")));
        // A week later it is CEST (+02:00): the same 18:00-20:00 local.
        assert!(r.covers(at("2026-04-03T16:00:00Z")));
        assert!(!r.covers(at("2026-04-03T18:00:00Z")));
        assert!(!r.covers(at("2026-04-04T17:00:00Z")), "saturday is not a listed weekday");
    }

    #[test]
    fn spring_forward_day_is_shorter_and_fall_back_day_longer() {
        let night =
            |day: &str| Recurrence::from_json(&json!({"weekdays": [day], "start_time": "01:00", "end_time": "04:00", "time_zone": "Europe/Berlin"})).unwrap();
        // 2026-03-29: 01:00 CET = 00:00Z, 04:00 CEST = 02:00Z (two hours).
        assert_eq!(
            night("sunday").occurrences(at("2026-03-29T00:00:00Z"), at("2026-03-30T00:00:00Z")),
            vec![(at("2026-03-29T00:00:00Z"), at("2026-03-29T02:00:00Z"))]
        );
        // 2026-10-25: 01:00 CEST = 23:00Z the day before, 04:00 CET = 03:00Z (four hours).
        assert_eq!(
            night("sunday").occurrences(at("2026-10-24T12:00:00Z"), at("2026-10-26T00:00:00Z")),
            vec![(at("2026-10-24T23:00:00Z"), at("2026-10-25T03:00:00Z"))]
        );
    }

    #[test]
    fn skipped_and_repeated_wall_times_resolve_like_temporal() {
        let r = |start: &str| {
            Recurrence::from_json(&json!({"weekdays": ["sunday"], "start_time": start, "end_time": "05:00", "time_zone": "Europe/Berlin"})).unwrap()
        };
        // 02:30 does not exist on 2026-03-29: it becomes 03:30 CEST (01:30Z).
        assert_eq!(r("02:30").occurrences(at("2026-03-28T00:00:00Z"), at("2026-03-30T00:00:00Z"))[0].0, at("2026-03-29T01:30:00Z"));
        // 02:30 happens twice on 2026-10-25: the earlier, CEST one (00:30Z).
        assert_eq!(r("02:30").occurrences(at("2026-10-24T00:00:00Z"), at("2026-10-26T00:00:00Z"))[0].0, at("2026-10-25T00:30:00Z"));
    }

    #[test]
    fn overnight_every_day_and_bounds() {
        let r = Recurrence::from_json(
            &json!({"start_time": "22:00", "end_time": "06:00", "time_zone": "UTC", "from": "2026-06-01T00:00:00Z", "until": "2026-06-03T00:00:00Z"}),
        )
        .unwrap();
        assert!(!r.covers(at("2026-05-31T23:00:00Z")), "before from");
        assert!(r.covers(at("2026-06-01T23:00:00Z")));
        assert!(r.covers(at("2026-06-02T05:59:59Z")), "ends the next morning");
        assert!(!r.covers(at("2026-06-02T06:00:00Z")));
        assert!(r.covers(at("2026-06-02T23:30:00Z")), "the last night, cut short by until");
        assert!(!r.covers(at("2026-06-03T01:00:00Z")), "until is exclusive");
        let all = r.occurrences(at("2026-05-01T00:00:00Z"), at("2026-07-01T00:00:00Z"));
        assert_eq!(all.len(), 3, "{all:?}");
        assert_eq!(all[0], (at("2026-06-01T00:00:00Z"), at("2026-06-01T06:00:00Z")), "the May 31 night, clipped by from");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = |j: Json| Recurrence::from_json(&j).unwrap_err();
        let base = |k: &str, v: Json| {
            let mut o = json!({"weekdays": ["monday"], "start_time": "18:00", "end_time": "20:00", "time_zone": "Europe/Berlin"});
            o[k] = v;
            o
        };
        assert_eq!(e(base("time_zone", json!("Europe/Atlantis"))).field, "time_zone");
        let bad_day = e(base("weekdays", json!(["monday", "funday"])));
        assert_eq!((bad_day.field, bad_day.item), ("weekdays", Some(1)));
        assert_eq!(e(base("start_time", json!("6pm"))).field, "start_time");
        let mut reversed = base("from", json!("2026-06-01T00:00:00Z"));
        reversed["until"] = json!("2026-05-01T00:00:00Z");
        assert_eq!(e(reversed).field, "until");
        // A value is quoted by a prefix: a 1 MB time zone is not echoed whole.
        let huge = e(base("time_zone", json!("Z".repeat(1_000_000))));
        assert!(huge.message.starts_with(&format!("unknown time zone \"{}\"…;", "Z".repeat(60))), "{}", &huge.message[..100]);
        for (field, value) in
            [("weekdays", json!(["x".repeat(100_000)])), ("start_time", json!("9".repeat(100_000))), ("from", json!({"k": "v".repeat(100_000)}))]
        {
            assert!(e(base(field, value)).message.len() < 200, "{field}");
        }
        let fine = Recurrence::from_json(&base("weekdays", json!(["Mon", "FRIDAY"]))).unwrap();
        assert_eq!(fine.to_string(), "monday,friday 18:00-20:00 Europe/Berlin");
    }
}
