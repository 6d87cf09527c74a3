//! A plan's routes kept in the plan's own SQLite row (schema 9 on): one
//! array of arrays in `plans.routes`, one inner array per route, its fields
//! by position ([`FIELDS`]), stored as SQLite's binary JSON (JSONB, which
//! is read without parsing the whole array), and what all of a plan's
//! routes share (plan, schedule, time, when recorded) once, in the plan's
//! columns. Route history reads them back as rows through `jsonb_each`,
//! with the same columns, names and order as a `route_decisions` row
//! ([`select_list`]), so each query is one `UNION ALL` of the two layouts.
//! The rows naming a plan's people and categories ([`people`],
//! [`categories`]) list the positions of their routes, so that a filtered
//! query reads those routes only.
//!
//! Why: a route row costs SQLite a row and seven index entries (a
//! 10,000-plan batch of 90,000 routes spent 1.4 s there); a plan row with
//! its routes, plus a few rows naming its people and categories, costs
//! about a quarter of that. A plan whose routes differ in schedule or time
//! (cavra never writes one) keeps the schema 8 layout, as do routes added
//! to a plan later (escalations).

use crate::records::{AlertLevel, Plan, RouteRecord};
use std::fmt::Write;

/// Where each route column comes from in this layout: a position of the
/// route's inner array, or an expression over the plan's row. In the order
/// of `route_columns::READ_COLUMNS`.
const FIELDS: [(&str, Source); 22] = [
    ("document", Source::Plan("''")),
    ("route_id", Source::Route(0)),
    ("plan_id", Source::Plan("p.plan_id")),
    ("schedule_id", Source::Plan("p.schedule_id")),
    ("owner", Source::Route(1)),
    ("escalation_owner", Source::Plan("coalesce(r.value ->> 2, r.value ->> 1)")),
    ("escalation_owner_given", Source::Plan("(r.value ->> 2) IS NOT NULL")),
    ("provider", Source::Route(3)),
    ("action", Source::Route(4)),
    ("category", Source::Route(5)),
    ("acknowledgement_minutes", Source::Route(6)),
    ("reason", Source::Route(7)),
    ("maintenance_window_id", Source::Route(8)),
    ("owner_availability", Source::Route(9)),
    ("created_at", Source::Plan("p.routes_at")),
    ("created_at_text", Source::Plan("p.routes_at_text")),
    ("episode", Source::Route(10)),
    ("suppressed_until", Source::Route(11)),
    ("notification_id", Source::Route(12)),
    ("escalates", Source::Route(13)),
    ("alert_level", Source::Route(14)),
    ("recorded_at", Source::Plan("p.recorded_at")),
];

/// Where a route column of this layout comes from.
#[derive(Clone, Copy)]
enum Source {
    /// An SQL expression over the plan `p` and the route `r` (`jsonb_each`).
    Plan(&'static str),
    /// The route's inner array at this position.
    Route(usize),
}

/// SQL for the route field `column` in this layout (`p` the plan, `r` the route).
pub(crate) fn expression(column: &str) -> String {
    match FIELDS.iter().find(|(name, _)| *name == column).map(|(_, source)| *source) {
        Some(Source::Plan(sql)) => sql.to_string(),
        Some(Source::Route(at)) => format!("r.value ->> {at}"),
        None => column.to_string(),
    }
}

/// The select list of a route's columns in this layout, named as a route
/// row's, in the order of `route_columns::select_list`.
pub(crate) fn select_list() -> String {
    FIELDS.iter().map(|(name, _)| format!("{} AS {name}", expression(name))).collect::<Vec<_>>().join(", ")
}

/// The routes of a plan (of `schedule_id`) as its row keeps them, when they
/// fit this layout: the plan has routes, and they share its schedule and
/// one `created_at` text (each route's plan id is checked apart). In
/// SQLite's binary JSON ([`Jsonb`]).
pub(crate) fn encode<'p>(schedule_id: &str, routes: &'p [RouteRecord]) -> Option<Vec<u8>> {
    let first = routes.first()?;
    if !routes.iter().all(|r| r.schedule_id == schedule_id && r.created_at == first.created_at) {
        return None;
    }
    let size = routes.len() * 160;
    let routes: Vec<Jsonb<'p>> = routes
        .iter()
        .map(|route| {
            let text = |t: Option<&'p str>| t.map_or(Jsonb::Null, Jsonb::Text);
            let minutes = route.acknowledgement_minutes.and_then(|m| serde_json::to_string(&m).ok());
            // The positions of `FIELDS`.
            Jsonb::Array(vec![
                text(Some(&route.route_id)),
                text(Some(&route.owner)),
                text(route.escalation_owner.as_deref()),
                text(Some(&route.provider)),
                text(Some(&route.action)),
                text(Some(&route.category)),
                minutes.map_or(Jsonb::Null, Jsonb::Number),
                text(route.reason.as_deref()),
                text(route.maintenance_window_id.as_deref()),
                text(route.owner_availability.as_deref()),
                text(route.episode.as_deref()),
                text(route.suppressed_until.as_deref()),
                text(Some(route.notification_id.as_str()).filter(|n| !n.is_empty())),
                text(route.escalates.as_deref()),
                text(route.alert_level.map(AlertLevel::as_str)),
            ])
        })
        .collect();
    let mut out = Vec::with_capacity(size);
    Jsonb::Array(routes).write(&mut out);
    Some(out)
}

/// A JSON value as SQLite's binary JSON ("JSONB", SQLite 3.45 and later,
/// specified in its `doc/jsonb.md`) encodes it: each element a header (its
/// type in the low four bits; its payload's size in the high four, or in
/// the 1, 2, 4 or 8 big-endian bytes after them) and its payload. Made
/// here, on every core, rather than by SQLite's `jsonb()` inside the write
/// transaction (a quarter of the batch's time there); a test checks that
/// SQLite reads it as the JSON it stands for.
enum Jsonb<'t> {
    Null,
    /// Text as it is: SQLite escapes a raw text's characters when it writes it as JSON (`TEXTRAW`).
    Text(&'t str),
    /// A number as JSON writes it: an integer, or a float (`INT`, `FLOAT`).
    Number(String),
    Array(Vec<Jsonb<'t>>),
}

impl Jsonb<'_> {
    const NULL: u8 = 0;
    const INT: u8 = 3;
    const FLOAT: u8 = 5;
    const TEXTRAW: u8 = 10;
    const ARRAY: u8 = 11;

    /// The bytes `write` writes.
    fn size(&self) -> usize {
        let payload = self.payload_size();
        header_size(payload) + payload
    }

    fn payload_size(&self) -> usize {
        match self {
            Jsonb::Null => 0,
            Jsonb::Text(text) => text.len(),
            Jsonb::Number(number) => number.len(),
            Jsonb::Array(items) => items.iter().map(Jsonb::size).sum(),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        let kind = match self {
            Jsonb::Null => Jsonb::NULL,
            Jsonb::Text(_) => Jsonb::TEXTRAW,
            Jsonb::Number(n) if n.bytes().all(|b| b.is_ascii_digit() || b == b'-') => Jsonb::INT,
            Jsonb::Number(_) => Jsonb::FLOAT,
            Jsonb::Array(_) => Jsonb::ARRAY,
        };
        let payload = self.payload_size();
        match header_size(payload) {
            1 => out.push(kind | (payload as u8) << 4),
            2 => out.extend([kind | 0xc0, payload as u8]),
            3 => {
                out.push(kind | 0xd0);
                out.extend_from_slice(&(payload as u16).to_be_bytes());
            }
            5 => {
                out.push(kind | 0xe0);
                out.extend_from_slice(&(payload as u32).to_be_bytes());
            }
            _ => {
                out.push(kind | 0xf0);
                out.extend_from_slice(&(payload as u64).to_be_bytes());
            }
        }
        match self {
            Jsonb::Null => {}
            Jsonb::Text(text) => out.extend_from_slice(text.as_bytes()),
            Jsonb::Number(number) => out.extend_from_slice(number.as_bytes()),
            Jsonb::Array(items) => items.iter().for_each(|item| item.write(out)),
        }
    }
}

/// The bytes of the header of an element whose payload has `payload` bytes.
fn header_size(payload: usize) -> usize {
    match payload {
        0..=11 => 1,
        12..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Who a plan's routes name, each once (owners and escalation owners: a
/// route history filtered by owner matches either), with the positions of
/// the routes that name them ([`positions`]).
pub(crate) fn people(plan: &Plan) -> Vec<(&str, String)> {
    let named = plan
        .route_decisions
        .iter()
        .enumerate()
        .flat_map(|(i, r)| [Some(r.owner.as_str()), r.escalation_owner.as_deref()].into_iter().flatten().map(move |person| (person, i)));
    positions(named.collect())
}

/// The (action, category) pairs of a plan's routes, each once, with the
/// positions of the routes that have them.
pub(crate) fn categories(plan: &Plan) -> Vec<((&str, &str), String)> {
    positions(plan.route_decisions.iter().enumerate().map(|(i, r)| ((r.action.as_str(), r.category.as_str()), i)).collect())
}

/// Each key once, in order, with the positions it was found at, each
/// between commas (`,0,3,`): the routes a query reads of the plan's through
/// an index row (a plan of 100 routes names each owner in one).
fn positions<K: Ord + Copy>(mut found: Vec<(K, usize)>) -> Vec<(K, String)> {
    found.sort_unstable();
    found.dedup();
    let mut keys: Vec<(K, String)> = Vec::new();
    for (key, at) in found {
        match keys.last_mut() {
            // Written in place, without a string per position.
            Some((last, list)) if *last == key => {
                let _ = write!(list, "{at},");
            }
            _ => keys.push((key, format!(",{at},"))),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::Text;

    #[test]
    fn sqlite_reads_the_binary_json_as_the_routes_it_stands_for() {
        use crate::records::Minutes;
        let route = |i: usize, reason: String, minutes: Option<f64>| RouteRecord {
            schedule_id: "s".into(),
            owner: format!("owner-{i}").into(),
            escalation_owner: (i == 1).then(|| "lead \"é\"".into()),
            provider: "teams".into(),
            action: "suppress".into(),
            category: "maintenance_window".into(),
            acknowledgement_minutes: minutes.map(Minutes),
            reason: Some(reason.into()),
            maintenance_window_id: None,
            owner_availability: Some("away".into()),
            created_at: "2026-06-01T00:00:00Z".into(),
            episode: Some("2026-06-02T00:00:00Z".into()),
            suppressed_until: None,
            notification_id: if i == 2 { Text::default() } else { format!("ntf_{i}").into() },
            escalates: None,
            alert_level: Some(AlertLevel::Warning),
            plan_id: "plan_1".into(),
            route_id: format!("route_{i}").into(),
            recorded_at: None,
        };
        // Sizes under each header width: 11 bytes, 255, 65,535, and more.
        let routes = vec![
            route(0, "short".into(), Some(45.0)),
            route(1, "a \"quoted\"\nline\\ \u{1} ünïcödé ✓".repeat(10), Some(7.5)),
            route(2, "x".repeat(300), None),
            route(3, "y".repeat(70_000), Some(-3.0)),
        ];
        let blob = encode("s", &routes).unwrap();
        let expected: Vec<serde_json::Value> = routes
            .iter()
            .map(|r| {
                serde_json::json!([
                    r.route_id,
                    r.owner,
                    r.escalation_owner,
                    r.provider,
                    r.action,
                    r.category,
                    r.acknowledgement_minutes,
                    r.reason,
                    r.maintenance_window_id,
                    r.owner_availability,
                    r.episode,
                    r.suppressed_until,
                    Some(&r.notification_id).filter(|n| !n.is_empty()),
                    r.escalates,
                    r.alert_level.map(AlertLevel::as_str)
                ])
            })
            .collect();
        let db = rusqlite::Connection::open_in_memory().unwrap();
        let (text, valid, reason): (String, bool, String) =
            db.query_row("SELECT json(?1), json_valid(?1, 8), ?1 ->> '$[1][7]'", [&blob], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert!(valid, "well-formed JSONB");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&text).unwrap(), serde_json::Value::Array(expected));
        assert_eq!(Some(reason.as_str()), routes[1].reason.as_deref());
    }

    #[test]
    fn positions_list_each_key_once_with_where_it_was_found() {
        assert_eq!(positions(vec![("b", 2), ("a", 1), ("b", 0), ("a", 1)]), [("a", ",1,".to_string()), ("b", ",0,2,".to_string())]);
        assert!(positions::<&str>(vec![]).is_empty());
    }

    #[test]
    fn the_layout_names_every_route_column_in_order() {
        let names: Vec<&str> = FIELDS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names, super::super::route_columns::READ_COLUMNS);
        // Every position of an inner array is read, once.
        let mut positions: Vec<usize> = FIELDS.iter().filter_map(|(_, s)| if let Source::Route(at) = s { Some(*at) } else { None }).collect();
        positions.extend([2]);
        positions.sort_unstable();
        assert_eq!(positions, (0..15).collect::<Vec<_>>());
    }
}
