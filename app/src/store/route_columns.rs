//! A route decision as both backends' rows keep it from SQLite schema 8 and
//! PostgreSQL schema 3 on: its fields in columns, without the JSON document
//! that repeated them. Rows written before keep their documents and are
//! read from them; an empty `document` marks the rows read from their
//! columns. Both backends read a route through [`select_list`] and give it
//! back with [`RouteColumns::record`], field for field as it was written.

use crate::records::{AlertLevel, Minutes, RouteRecord, Text};

/// The columns a route is read from, in this order: its document (empty
/// from the column layout on), then its fields.
pub(crate) const READ_COLUMNS: [&str; 22] = [
    "document",
    "route_id",
    "plan_id",
    "schedule_id",
    "owner",
    "escalation_owner",
    "escalation_owner_given",
    "provider",
    "action",
    "category",
    "acknowledgement_minutes",
    "reason",
    "maintenance_window_id",
    "owner_availability",
    "created_at",
    "created_at_text",
    "episode",
    "suppressed_until",
    "notification_id",
    "escalates",
    "alert_level",
    "recorded_at",
];

/// The select list of a route's columns, `table.` before each (`""` for none).
pub(crate) fn select_list(table: &str) -> String {
    READ_COLUMNS.iter().map(|column| format!("{table}{column}")).collect::<Vec<_>>().join(", ")
}

/// `created_at` as written, when the store's own form of its microseconds
/// (`format_time`) would not give the text back (an offset, say); `None`
/// keeps the row from repeating it.
pub(crate) fn created_at_text(route: &RouteRecord, micros: i64) -> Option<&str> {
    (cavra_engine::time::format_time(micros) != route.created_at).then_some(route.created_at.as_str())
}

/// A route's fields as its columns hold them (the columns after `document`
/// in [`select_list`], in that order). Texts are read into [`Text`] straight
/// from the row, without a `String` of their own.
pub(crate) struct RouteColumns {
    pub route_id: Text,
    pub plan_id: Text,
    pub schedule_id: Text,
    pub owner: Text,
    /// The escalation owner, else the owner (what the index holds).
    pub escalation_owner: Text,
    /// Whether the route named its escalation owner.
    pub escalation_owner_given: bool,
    pub provider: Text,
    pub action: Text,
    pub category: Text,
    pub acknowledgement_minutes: Option<f64>,
    pub reason: Option<Text>,
    pub maintenance_window_id: Option<Text>,
    pub owner_availability: Option<Text>,
    /// Microseconds since the epoch.
    pub created_at: i64,
    pub created_at_text: Option<Text>,
    pub episode: Option<Text>,
    pub suppressed_until: Option<Text>,
    pub notification_id: Option<Text>,
    pub escalates: Option<Text>,
    pub alert_level: Option<Text>,
    /// When the store wrote it (microseconds).
    pub recorded_at: Option<i64>,
}

impl RouteColumns {
    /// The route as written, listed with when it was recorded. `Err` names
    /// a value cavra never writes.
    pub(crate) fn record(self) -> Result<RouteRecord, String> {
        let alert_level = match self.alert_level {
            None => None,
            Some(level) => Some(AlertLevel::parse(&level).ok_or_else(|| format!("route {}: unknown alert level `{level}`", self.route_id))?),
        };
        Ok(RouteRecord {
            schedule_id: self.schedule_id,
            escalation_owner: self.escalation_owner_given.then_some(self.escalation_owner),
            owner: self.owner,
            provider: self.provider,
            action: self.action,
            category: self.category,
            acknowledgement_minutes: self.acknowledgement_minutes.map(Minutes),
            reason: self.reason,
            maintenance_window_id: self.maintenance_window_id,
            owner_availability: self.owner_availability,
            created_at: self.created_at_text.unwrap_or_else(|| cavra_engine::time::format_time(self.created_at).into()),
            episode: self.episode,
            suppressed_until: self.suppressed_until,
            notification_id: self.notification_id.unwrap_or_default(),
            escalates: self.escalates,
            alert_level,
            plan_id: self.plan_id,
            route_id: self.route_id,
            recorded_at: self.recorded_at.map(|at| cavra_engine::time::format_time(at).into()),
        })
    }
}
