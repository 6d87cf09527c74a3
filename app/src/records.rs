//! The typed records the operations produce and the store keeps: readiness
//! reports, plans and their route decisions, acknowledgements, delivery
//! attempts, escalation plans, trends, simulations and impact analyses (diffs). Each derives
//! `Serialize` in the field order of its JSON document, so the documents
//! users' scripts read are exactly what they were; JSON exists only there.
//!
//! Packs are replaceable (`--rules`), so what a pack adds beyond the typed
//! core (a check's extra fields) is kept in a flattened map beside it.

use cavra_plugin_host::DeliveryRecord;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// A map that keeps its keys in insertion order (owners in schedule order,
/// report sections in gate order).
#[derive(Clone, Debug, PartialEq)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<V: Serialize> Serialize for Ordered<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_json keeps object order (preserve_order), so the map does too.
        let map: serde_json::Map<String, serde_json::Value> = serde_json::Map::deserialize(deserializer)?;
        map.into_iter().map(|(k, v)| V::deserialize(v).map(|v| (k, v)).map_err(serde::de::Error::custom)).collect::<Result<Vec<_>, _>>().map(Ordered)
    }
}

/// A number of minutes; whole numbers are written as integers (`60`, not `60.0`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Deserialize)]
#[serde(transparent)]
pub struct Minutes(pub f64);

impl Serialize for Minutes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        whole_or_fraction(self.0, serializer)
    }
}

/// As the engine writes numbers: integers when whole, else a float.
fn whole_or_fraction<S: Serializer>(n: f64, serializer: S) -> Result<S::Ok, S::Error> {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        serializer.serialize_i64(n as i64)
    } else {
        serializer.serialize_f64(n)
    }
}

/// A readiness report's status. Packs may name statuses of their own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadinessStatus {
    NotRequested,
    Ready,
    DueSoon,
    NeedsAttention,
    Other(String),
}

impl ReadinessStatus {
    pub fn parse(text: &str) -> ReadinessStatus {
        match text {
            "not_requested" => ReadinessStatus::NotRequested,
            "ready" => ReadinessStatus::Ready,
            "due_soon" => ReadinessStatus::DueSoon,
            "needs_attention" => ReadinessStatus::NeedsAttention,
            other => ReadinessStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ReadinessStatus::NotRequested => "not_requested",
            ReadinessStatus::Ready => "ready",
            ReadinessStatus::DueSoon => "due_soon",
            ReadinessStatus::NeedsAttention => "needs_attention",
            ReadinessStatus::Other(s) => s,
        }
    }
}

impl std::fmt::Display for ReadinessStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReadinessStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReadinessStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| ReadinessStatus::parse(&s))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
}

/// One readiness check: `{"id", "status", "message", ...extra}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    pub id: String,
    pub status: CheckStatus,
    pub message: String,
    /// Fields the pack adds (`next_due_at`, `days_until_due`, ...).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.status == CheckStatus::Pass
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub generated_at: String,
    pub requested: bool,
    pub check_count: usize,
    pub passed_count: usize,
    pub failed_count: usize,
    pub failed_checks: Vec<String>,
}

/// A readiness report; the production report also holds each go-backend
/// report as a section after its summary.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReadinessReport {
    pub schema_version: String,
    pub mode: String,
    pub status: ReadinessStatus,
    pub checks: Vec<Check>,
    pub summary: Summary,
    #[serde(flatten)]
    pub sections: Ordered<ReadinessReport>,
}

/// An action decision: `{decision, rule_id, severity, reason}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionDecision {
    pub decision: String,
    pub rule_id: Option<String>,
    pub severity: Option<String>,
    pub reason: Option<String>,
}

/// `go-pilot-evaluate`'s result (`cavra.go-backend-pilot.evaluation.v1`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendEvaluation {
    pub schema_version: String,
    pub action_type: String,
    pub target: String,
    /// The compiled policy given to the external runtime (`--policy-path`), `null` when none.
    pub policy_path: Option<String>,
    /// The external runtime's package folder (`--package-dir`), `null` when none.
    pub package_dir: Option<String>,
    pub backend_mode: String,
    pub selected_backend: String,
    pub fallback_used: bool,
    pub fallback_reason: Option<String>,
    pub parity_match: Option<bool>,
    pub builtin_decision: ActionDecision,
    pub external_decision: Option<ActionDecision>,
    pub effective_decision: ActionDecision,
    pub generated_at: String,
    /// The gate reports computed (promoted mode).
    #[serde(flatten)]
    pub gates: Ordered<ReadinessReport>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    Critical,
    Warning,
    Healthy,
}

impl AlertLevel {
    /// `critical` for a schedule that needs attention, `warning` when due soon.
    pub fn of(status: &ReadinessStatus) -> AlertLevel {
        match status {
            ReadinessStatus::NeedsAttention => AlertLevel::Critical,
            ReadinessStatus::DueSoon => AlertLevel::Warning,
            _ => AlertLevel::Healthy,
        }
    }

    /// The level `as_str` names.
    pub fn parse(text: &str) -> Option<AlertLevel> {
        [AlertLevel::Critical, AlertLevel::Warning, AlertLevel::Healthy].into_iter().find(|level| level.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertLevel::Critical => "critical",
            AlertLevel::Warning => "warning",
            AlertLevel::Healthy => "healthy",
        }
    }
}

/// An owner's resolved route settings in a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OwnerRoute {
    pub providers: Vec<String>,
    pub acknowledgement_minutes: Option<Minutes>,
    pub escalation_owner: Option<String>,
}

/// A route record's text: most (owners, providers, ids, times) are short
/// enough to be kept inline, so a 90,000-route batch does not allocate (and
/// free) each of them apart. It reads as a `&str`.
pub type Text = compact_str::CompactString;

/// One stored route decision of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouteRecord {
    pub schedule_id: Text,
    pub owner: Text,
    pub escalation_owner: Option<Text>,
    pub provider: Text,
    pub action: Text,
    pub category: Text,
    pub acknowledgement_minutes: Option<Minutes>,
    pub reason: Option<Text>,
    pub maintenance_window_id: Option<Text>,
    pub owner_availability: Option<Text>,
    pub created_at: Text,
    /// The drill's due time the notification is about (its episode).
    #[serde(default)]
    pub episode: Option<Text>,
    /// When the window or absence that suppressed the route ends.
    #[serde(default)]
    pub suppressed_until: Option<Text>,
    /// The notification this decision is about (`ntf_...`); empty for a
    /// healthy schedule's routes, which notify nobody.
    #[serde(default, skip_serializing_if = "Text::is_empty")]
    pub notification_id: Text,
    /// For an escalation: the breached notification it escalates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalates: Option<Text>,
    /// The notification's alert level (its plan's; for an escalation, the escalated one's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert_level: Option<AlertLevel>,
    /// Empty only while the plan's id is computed.
    #[serde(default, skip_serializing_if = "Text::is_empty")]
    pub plan_id: Text,
    /// Empty only while the route's id is computed.
    #[serde(default, skip_serializing_if = "Text::is_empty")]
    pub route_id: Text,
    /// When the store wrote it (wall clock; only in listings of stored routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<Text>,
}

impl RouteRecord {
    pub fn delivers(&self) -> bool {
        self.action == "deliver"
    }

    /// The escalation owner, else the owner.
    pub fn escalation_owner_or_owner(&self) -> &str {
        self.escalation_owner.as_deref().unwrap_or(&self.owner)
    }

    /// `notification` or `escalation`.
    pub fn kind(&self) -> NotificationKind {
        if self.escalates.is_some() {
            NotificationKind::Escalation
        } else {
            NotificationKind::Notification
        }
    }
}

/// A notification to an owner, or an escalation of a breached one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Notification,
    Escalation,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Notification => "notification",
            NotificationKind::Escalation => "escalation",
        }
    }
}

/// A notification plan (`cavra.go-backend-pilot.rollback-drill-notification-plan.v1`).
/// It serializes through [`PlanFields`], which a store also writes without
/// the route decisions (each is stored in a row of its own).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Plan {
    pub schema_version: String,
    pub schedule_id: String,
    pub generated_at: String,
    pub generated_by: String,
    pub mode: String,
    /// The schedule report's status.
    pub status: ReadinessStatus,
    pub alert_level: AlertLevel,
    pub owner_routes: Ordered<OwnerRoute>,
    pub deliverable_route_count: usize,
    pub suppressed_route_count: usize,
    pub maintenance_suppressed_count: usize,
    pub calendar_suppressed_count: usize,
    pub healthy_suppressed_count: usize,
    /// Suppressed routes by every category the pack produced, custom ones
    /// included (only categories with a count). Derived from the routes, so
    /// not part of the id (plans stored before it have none).
    #[serde(default)]
    pub suppressed_by_category: Option<BTreeMap<String, usize>>,
    pub selected_providers: Vec<String>,
    pub acknowledgement_required_providers: Vec<String>,
    pub suppressed_providers: Vec<String>,
    pub reason: String,
    /// The drill's due time this plan's notifications are about.
    #[serde(default)]
    pub episode: Option<String>,
    /// Where the routing policy came from, merged in this order: `schedule`,
    /// `policy` (the CLI's `--routing-policy`) or `server` (the API's), `request`.
    #[serde(default)]
    pub policy_sources: Vec<String>,
    /// The merged policy, stored once per distinct content (`pol_...`).
    #[serde(default)]
    pub policy_id: String,
    pub route_decisions: Vec<RouteRecord>,
    /// Empty only while the id is computed.
    #[serde(default)]
    pub plan_id: String,
    /// The schedule's notifications waiting to be delivered once this plan is
    /// made (not part of the id).
    #[serde(default)]
    pub pending_count: Option<usize>,
    /// The schedule's notifications whose delivery failed (not part of the id).
    #[serde(default)]
    pub failed_count: Option<usize>,
    /// Whether the plan was stored (not part of the id).
    #[serde(default)]
    pub stored: Option<bool>,
}

/// A plan's JSON document, field by field in document order, borrowed.
#[derive(Serialize)]
pub struct PlanFields<'a> {
    schema_version: &'a str,
    schedule_id: &'a str,
    generated_at: &'a str,
    generated_by: &'a str,
    mode: &'a str,
    status: &'a ReadinessStatus,
    alert_level: AlertLevel,
    owner_routes: &'a Ordered<OwnerRoute>,
    deliverable_route_count: usize,
    suppressed_route_count: usize,
    maintenance_suppressed_count: usize,
    calendar_suppressed_count: usize,
    healthy_suppressed_count: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed_by_category: Option<&'a BTreeMap<String, usize>>,
    selected_providers: &'a [String],
    acknowledgement_required_providers: &'a [String],
    suppressed_providers: &'a [String],
    reason: &'a str,
    episode: Option<&'a str>,
    policy_sources: &'a [String],
    policy_id: &'a str,
    route_decisions: &'a [RouteRecord],
    #[serde(skip_serializing_if = "str::is_empty")]
    plan_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pending_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored: Option<bool>,
}

impl Serialize for Plan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields(&self.route_decisions).serialize(serializer)
    }
}

impl Plan {
    /// The plan's document with `route_decisions` empty: how a store keeps
    /// it, beside a row for each route (see [`Plan::with_routes`]).
    pub fn without_routes(&self) -> PlanFields<'_> {
        self.fields(&[])
    }

    /// Gives a plan read back without its routes ([`Plan::without_routes`])
    /// its routes again, in plan order, as the store lists them: their
    /// `recorded_at` is not part of a plan's routes.
    pub fn restore_routes(&mut self, routes: Vec<RouteRecord>) {
        self.route_decisions = routes;
        for route in &mut self.route_decisions {
            route.recorded_at = None;
        }
    }

    fn fields<'a>(&'a self, route_decisions: &'a [RouteRecord]) -> PlanFields<'a> {
        // Every field named: a new one must be placed in the document here.
        let Plan {
            schema_version,
            schedule_id,
            generated_at,
            generated_by,
            mode,
            status,
            alert_level,
            owner_routes,
            deliverable_route_count,
            suppressed_route_count,
            maintenance_suppressed_count,
            calendar_suppressed_count,
            healthy_suppressed_count,
            suppressed_by_category,
            selected_providers,
            acknowledgement_required_providers,
            suppressed_providers,
            reason,
            episode,
            policy_sources,
            policy_id,
            route_decisions: _,
            plan_id,
            pending_count,
            failed_count,
            stored,
        } = self;
        PlanFields {
            schema_version,
            schedule_id,
            generated_at,
            generated_by,
            mode,
            status,
            alert_level: *alert_level,
            owner_routes,
            deliverable_route_count: *deliverable_route_count,
            suppressed_route_count: *suppressed_route_count,
            maintenance_suppressed_count: *maintenance_suppressed_count,
            calendar_suppressed_count: *calendar_suppressed_count,
            healthy_suppressed_count: *healthy_suppressed_count,
            suppressed_by_category: suppressed_by_category.as_ref(),
            selected_providers,
            acknowledgement_required_providers,
            suppressed_providers,
            reason,
            episode: episode.as_deref(),
            policy_sources,
            policy_id,
            route_decisions,
            plan_id,
            pending_count: *pending_count,
            failed_count: *failed_count,
            stored: *stored,
        }
    }
}

/// A route decision as a store lists it: with `recorded_at`, when the store
/// wrote it (the route's own, if it has one, is replaced).
pub struct ListedRoute<'a> {
    pub route: &'a RouteRecord,
    pub recorded_at: &'a str,
}

impl Serialize for ListedRoute<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        /// `recorded_at` is the route's last field: after the rest of them.
        #[derive(Serialize)]
        struct Listed<'a> {
            #[serde(flatten)]
            route: &'a RouteRecord,
            recorded_at: &'a str,
        }
        match &self.route.recorded_at {
            None => Listed { route: self.route, recorded_at: self.recorded_at }.serialize(serializer),
            Some(_) => RouteRecord { recorded_at: Some(self.recorded_at.to_string().into()), ..self.route.clone() }.serialize(serializer),
        }
    }
}

impl Plan {
    /// A plan of a schedule that is not due: it closes every open notification of it.
    pub fn is_healthy(&self) -> bool {
        self.alert_level == AlertLevel::Healthy && self.deliverable_route_count == 0
    }
}

/// A merged routing policy as stored: content-addressed, public-safe.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyRecord {
    /// `pol_` + the hash of the policy.
    pub policy_id: String,
    /// The policy's canonical JSON text.
    pub document: String,
}

/// `{"routes": [...], "count": N}`: stored route decisions, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteList {
    pub routes: Vec<RouteRecord>,
    pub count: usize,
}

/// `{"plans": [...], "count": N}`: the latest stored plan of each schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanList {
    pub plans: Vec<Plan>,
    pub count: usize,
}

/// One acknowledgement (`cavra.go-backend-pilot.rollback-drill-notification-acknowledgement.v1`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub schema_version: String,
    pub schedule_id: String,
    pub provider: String,
    pub acknowledged_by: String,
    pub acknowledgement_state: String,
    pub plan_id: Option<String>,
    pub external_ref: Option<String>,
    pub notes: Option<String>,
    pub created_at: String,
    /// The notification named by the request, if one was.
    #[serde(default)]
    pub notification_id: Option<String>,
    /// The owner named by the request, if one was.
    #[serde(default)]
    pub owner: Option<String>,
    /// The notifications it answers, resolved when it was made (absent in
    /// acknowledgements made before notifications had ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_ids: Option<Vec<String>>,
    /// Empty only while the id is computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ack_id: String,
    /// When the store wrote it (wall clock; not part of the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
}

/// `{"schedule_id", "acknowledgements": [...], "count"}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AcknowledgementList {
    pub schedule_id: String,
    pub acknowledgements: Vec<Acknowledgement>,
    pub count: usize,
}

/// The last delivery attempt of a notification.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LastAttempt {
    pub at: String,
    pub outcome: String,
    pub status_code: Option<u16>,
}

/// One open notification of the escalation plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EscalationRoute {
    /// The newest route decision about the notification, and its plan.
    pub route_id: String,
    pub plan_id: String,
    pub schedule_id: String,
    pub owner: String,
    pub escalation_owner: String,
    pub provider: String,
    pub acknowledgement_minutes: Minutes,
    /// The first successful delivery; null before it.
    pub delivered_at: Option<String>,
    pub outstanding: bool,
    pub breached: bool,
    pub recommended_action: String,
    pub acknowledgement_state: Option<String>,
    pub reason: Option<String>,
    pub notification_id: String,
    /// `pending_delivery`, `suppressed`, `delivery_failed`, `outstanding` or `breached`.
    pub state: String,
    pub episode: Option<String>,
    pub kind: NotificationKind,
    /// For an escalation, the notification it escalates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub escalates: Option<String>,
    pub alert_level: AlertLevel,
    pub suppressed_until: Option<String>,
    pub last_attempt: Option<LastAttempt>,
    /// What was wrong with its stored facts (a value this build refuses), when something was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `cavra.go-backend-pilot.rollback-drill-escalation-plan.v1`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EscalationPlan {
    pub schema_version: String,
    pub generated_at: String,
    pub alert_level: AlertLevel,
    pub routes: Vec<EscalationRoute>,
    pub outstanding_count: usize,
    pub breached_count: usize,
    pub pending_count: usize,
    pub suppressed_count: usize,
    pub failed_count: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrendFilters {
    pub owner: Option<String>,
    pub provider: Option<String>,
    pub schedule_id: Option<String>,
}

/// Suppressed route decisions counted (`cavra.go-backend-pilot.rollback-drill-suppression-trends.v1`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trend {
    pub schema_version: String,
    pub kind: String,
    pub generated_at: String,
    pub filters: TrendFilters,
    pub suppressed_route_count: u64,
    pub by_category: BTreeMap<String, u64>,
    pub by_owner: BTreeMap<String, u64>,
    pub by_provider: BTreeMap<String, u64>,
    pub by_schedule: BTreeMap<String, u64>,
    pub latest_suppressed: Vec<RouteRecord>,
    /// Empty only while the id is computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub trend_id: String,
    /// Whether the trend was kept as metadata (set once it was, or was not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<bool>,
}

/// One interval of a simulated route.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulatedInterval {
    pub start_at: String,
    pub end_at: String,
    pub action: String,
    pub category: String,
    pub reason: Option<String>,
    pub maintenance_window_id: Option<String>,
    pub owner_availability: Option<String>,
}

impl SimulatedInterval {
    /// Same decision (times aside): neighbours like this merge.
    pub fn same_outcome(&self, other: &SimulatedInterval) -> bool {
        (&self.action, &self.category, &self.reason, &self.maintenance_window_id, &self.owner_availability)
            == (&other.action, &other.category, &other.reason, &other.maintenance_window_id, &other.owner_availability)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimulatedRoute {
    pub owner: String,
    pub provider: String,
    pub delivered_minutes: i64,
    pub suppressed_minutes: i64,
    pub intervals: Vec<SimulatedInterval>,
}

/// `cavra.go-backend-pilot.rollback-drill-routing-simulation.v1`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Simulation {
    pub schema_version: String,
    pub schedule_id: String,
    pub from: String,
    pub to: String,
    pub assumes: String,
    pub routes: Vec<SimulatedRoute>,
}

/// What `cavra diff` found (`{"changes": [...], "change_count": N}`): every
/// decision that differs between the two sides, per key and interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffReport {
    pub changes: Vec<DecisionChange>,
    pub change_count: usize,
}

/// One key whose decision differs during `[from, to)` (for a rule-test
/// case, `from` and `to` are both the case's instant).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecisionChange {
    /// The inputs that make the key, by name (`owner`, `provider`,
    /// `schedule_id`, then the other inputs examined; a case's `case` name
    /// and the inputs it sets), in that order.
    pub key: Ordered<serde_json::Value>,
    pub from: String,
    pub to: String,
    pub old: DecidedOutcome,
    pub new: DecidedOutcome,
}

/// A decision as the diff compares it: what it does, under which category, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecidedOutcome {
    pub action: String,
    pub category: String,
    pub reason: Option<String>,
}

/// A stored delivery attempt: the host's public-safe record plus the
/// schedule, the notification key and an id over its content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    #[serde(flatten)]
    pub record: DeliveryRecord,
    pub schedule_id: String,
    /// The notification's id, as `notification_id` (kept for older readers).
    pub notification_key: String,
    #[serde(default)]
    pub notification_id: String,
    /// The logical instant of the run that made the attempt (`--at`).
    #[serde(default)]
    pub at: String,
    /// The route's minutes to acknowledge and escalation owner when it was sent.
    #[serde(default)]
    pub acknowledgement_minutes: Option<Minutes>,
    #[serde(default)]
    pub escalation_owner: Option<String>,
    /// The approved retry that made the attempt, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_id: Option<String>,
    /// Empty only while the id is computed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delivery_id: String,
    /// When the store wrote it (wall clock; not part of the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
}

impl DeliveryAttempt {
    /// The run's last attempt for the notification, and it did not deliver.
    /// An interrupted one (a server stopping mid-delivery) is no failure:
    /// the notification still waits, and the next delivery run sends it.
    pub fn failed_for_good(&self) -> bool {
        self.record.is_final && !self.record.is_delivered() && !self.record.is_interrupted()
    }
}

/// A notification this run did not send, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedNotification {
    pub route_id: String,
    pub owner: String,
    pub provider: String,
    pub notification_key: String,
    /// Its state (`outstanding`, `delivery_failed`, `suppressed`, ...).
    pub state: String,
    pub reason: String,
}

/// `cavra.go-backend-pilot.rollback-drill-notification-delivery.v1`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryResult {
    pub schema_version: String,
    pub plan_id: String,
    pub schedule_id: String,
    pub generated_at: String,
    pub alert_level: AlertLevel,
    pub deliverable_route_count: usize,
    pub suppressed_route_count: usize,
    pub delivered_count: usize,
    pub failed_count: usize,
    /// Attempts a server shutdown interrupted: not failed, still pending.
    pub interrupted_count: usize,
    pub skipped_count: usize,
    pub attempt_count: usize,
    /// Escalations this run sent (or tried to).
    pub escalation_count: usize,
    /// Notifications of the schedule left failed by earlier runs (an approved
    /// retry sends them again).
    pub earlier_failed_count: usize,
    pub deliveries: Vec<DeliveryAttempt>,
    pub skipped: Vec<SkippedNotification>,
    /// Connector recoveries this run recorded.
    pub recoveries: Vec<Recovery>,
}

/// One notification an approved retry sent again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetriedNotification {
    pub notification_id: String,
    pub schedule_id: String,
    pub owner: String,
    pub provider: String,
    pub outcome: String,
    pub attempts: u32,
    pub status_code: Option<u16>,
}

/// An approved retry's execution record (append-only, `rtr_...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub retry_id: String,
    pub approval_id: String,
    pub approved_by: String,
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
    pub notifications: Vec<RetriedNotification>,
    pub delivered_count: usize,
    pub failed_count: usize,
}

/// `{"retries": [...], "count"}`, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetryList {
    pub retries: Vec<Retry>,
    pub count: usize,
}

/// The attempt that showed a connector works again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecoveringAttempt {
    pub notification_id: String,
    pub status_code: Option<u16>,
}

/// Evidence that a provider with failed deliveries delivered again (metadata
/// kind `go-backend-rollback-drill-connector-recovery`; `rcv_...`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub recovery_id: String,
    pub kind: String,
    pub provider: String,
    pub first_failure_at: String,
    pub last_failure_at: String,
    pub recovered_at: String,
    pub recovering_attempt: RecoveringAttempt,
    pub retry_id: Option<String>,
    pub approval_id: Option<String>,
    pub notifications: Vec<String>,
    pub time_to_recovery_seconds: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_at: Option<String>,
}

/// `{"recoveries": [...], "count"}`, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecoveryList {
    pub recoveries: Vec<Recovery>,
    pub count: usize,
}

/// A notification's id (README, "Notification lifecycle"): `ntf_` and the hash of
/// the schedule, episode, alert level, owner and provider. No time is in it,
/// so every plan of the same episode names the same notification; it is also
/// the idempotency key providers receive.
pub fn notification_id(schedule_id: &str, episode: Option<&str>, alert_level: AlertLevel, owner: &str, provider: &str) -> Text {
    let identity = [
        ("alert_level", Some(alert_level.as_str())),
        ("episode", episode),
        ("owner", Some(owner)),
        ("provider", Some(provider)),
        ("schedule_id", Some(schedule_id)),
    ];
    crate::hash::fields_id("ntf_", &identity)
}

/// An escalation's id: `ntf_` and the hash of `{kind: "escalation",
/// escalates, owner, provider}`, so it never collides with the notification
/// it escalates, even when the escalation owner is the owner.
pub fn escalation_id(escalates: &str, owner: &str, provider: &str) -> Text {
    let identity = [("escalates", Some(escalates)), ("kind", Some("escalation")), ("owner", Some(owner)), ("provider", Some(provider))];
    crate::hash::fields_id("ntf_", &identity)
}

/// The first 16 hex digits of SHA-256 over a record's canonical JSON.
pub fn content_hash(record: &impl Serialize) -> String {
    crate::hash::record_hash(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_are_written_as_the_engine_writes_numbers() {
        assert_eq!(serde_json::to_string(&Minutes(60.0)).unwrap(), "60");
        assert_eq!(serde_json::to_string(&Minutes(7.5)).unwrap(), "7.5");
        assert_eq!(serde_json::from_str::<Minutes>("45").unwrap(), Minutes(45.0));
    }

    #[test]
    fn statuses_of_packs_of_ones_own_survive_a_round_trip() {
        for text in ["not_requested", "ready", "due_soon", "needs_attention", "blocked_by_freeze"] {
            let status: ReadinessStatus = serde_json::from_str(&format!("{text:?}")).unwrap();
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("{text:?}"));
        }
        assert_eq!(ReadinessStatus::parse("blocked_by_freeze"), ReadinessStatus::Other("blocked_by_freeze".into()));
    }

    #[test]
    fn a_check_keeps_the_fields_its_pack_adds_after_the_core() {
        let mut extra = serde_json::Map::new();
        extra.insert("days_until_due".into(), serde_json::json!(9));
        let check = Check { id: "next_due".into(), status: CheckStatus::Pass, message: "due in 9 days".into(), extra };
        assert_eq!(serde_json::to_string(&check).unwrap(), r#"{"id":"next_due","status":"pass","message":"due in 9 days","days_until_due":9}"#);
    }

    #[test]
    fn ordered_maps_keep_their_order_both_ways() {
        let owners = Ordered(vec![("zeta".to_string(), 1), ("alpha".to_string(), 2)]);
        let text = serde_json::to_string(&owners).unwrap();
        assert_eq!(text, r#"{"zeta":1,"alpha":2}"#);
        assert_eq!(serde_json::from_str::<Ordered<i32>>(&text).unwrap(), owners);
    }

    /// A plan with something of everything: owners out of key order, a
    /// fractional minute, quotes and a line break, an escalation, ids.
    fn plan() -> Plan {
        let route = serde_json::json!({
            "schedule_id": "s", "owner": "zeta \"ops\"", "escalation_owner": "lead", "provider": "teams", "action": "deliver",
            "category": "deliver", "acknowledgement_minutes": 7.5, "reason": "notify\nzeta", "maintenance_window_id": null,
            "owner_availability": null, "created_at": "2026-05-21T19:00:00Z", "episode": "2026-05-30T15:40:00Z", "suppressed_until": null,
            "notification_id": "ntf_1", "escalates": "ntf_0", "alert_level": "warning", "plan_id": "plan_1", "route_id": "route_1",
        });
        serde_json::from_value(serde_json::json!({
            "schema_version": "v1", "schedule_id": "s", "generated_at": "2026-05-21T19:00:00Z", "generated_by": "cli", "mode": "promoted",
            "status": "due_soon", "alert_level": "warning",
            "owner_routes": {"zeta \"ops\"": {"providers": ["teams"], "acknowledgement_minutes": 7.5, "escalation_owner": "lead"},
                             "alpha": {"providers": [], "acknowledgement_minutes": 60, "escalation_owner": null}},
            "deliverable_route_count": 1, "suppressed_route_count": 0, "maintenance_suppressed_count": 0, "calendar_suppressed_count": 0,
            "healthy_suppressed_count": 0, "selected_providers": ["teams"], "acknowledgement_required_providers": ["teams"],
            "suppressed_providers": [], "reason": "due \"soon\"", "episode": "2026-05-30T15:40:00Z", "policy_sources": ["schedule"],
            "policy_id": "pol_1", "route_decisions": [route.clone(), route], "plan_id": "plan_1", "pending_count": 2, "stored": true,
        }))
        .unwrap()
    }

    #[test]
    fn plans_hash_as_their_json_values_did() {
        let mut plan = plan();
        let value = |plan: &Plan| serde_json::to_value(plan).unwrap();
        assert_eq!(content_hash(&plan), crate::hash::content_hash(&value(&plan)));
        assert_eq!(content_hash(&plan.route_decisions[0]), crate::hash::content_hash(&serde_json::to_value(&plan.route_decisions[0]).unwrap()));
        plan.plan_id.clear();
        plan.route_decisions[1].acknowledgement_minutes = Some(Minutes(1e-7));
        assert_eq!(content_hash(&plan), crate::hash::content_hash(&value(&plan)));
    }

    #[test]
    fn a_plan_without_its_routes_reads_back_whole_once_given_them() {
        let plan = plan();
        let text = serde_json::to_string(&plan).unwrap();
        assert!(text.find("\"policy_id\"") < text.find("\"route_decisions\"") && text.ends_with(r#""plan_id":"plan_1","pending_count":2,"stored":true}"#));
        let kept = serde_json::to_string(&plan.without_routes()).unwrap();
        assert_eq!(kept, text.replace(&serde_json::to_string(&plan.route_decisions).unwrap(), "[]"));
        let mut read: Plan = serde_json::from_str(&kept).unwrap();
        let listed: Vec<RouteRecord> = plan
            .route_decisions
            .iter()
            .map(|route| serde_json::from_str(&serde_json::to_string(&ListedRoute { route, recorded_at: "2026-05-21T19:00:01Z" }).unwrap()).unwrap())
            .collect();
        assert!(listed.iter().all(|r| r.recorded_at.as_deref() == Some("2026-05-21T19:00:01Z")));
        read.restore_routes(listed);
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
    }

    #[test]
    fn a_listed_route_is_the_route_with_when_it_was_written() {
        let route = plan().route_decisions.remove(0);
        let listed = |route: &RouteRecord| serde_json::to_string(&ListedRoute { route, recorded_at: "T" }).unwrap();
        let expected = serde_json::to_string(&RouteRecord { recorded_at: Some("T".into()), ..route.clone() }).unwrap();
        assert_eq!(listed(&route), expected);
        assert_eq!(listed(&RouteRecord { recorded_at: Some("earlier".into()), ..route }), expected, "its own is replaced");
    }

    #[test]
    fn ids_are_left_out_until_they_are_computed() {
        let ack = Acknowledgement {
            schema_version: "v1".into(),
            schedule_id: "s".into(),
            provider: "teams".into(),
            acknowledged_by: "ops".into(),
            acknowledgement_state: "acknowledged".into(),
            plan_id: None,
            external_ref: None,
            notes: None,
            created_at: "2026-05-21T19:00:00Z".into(),
            notification_id: None,
            owner: None,
            notification_ids: None,
            ack_id: String::new(),
            recorded_at: None,
        };
        let without = serde_json::to_value(&ack).unwrap();
        assert!(without.get("ack_id").is_none() && without["plan_id"].is_null());
        let with = Acknowledgement { ack_id: format!("ack_{}", content_hash(&ack)), ..ack };
        assert_eq!(serde_json::to_value(&with).unwrap().as_object().unwrap().keys().next_back().map(String::as_str), Some("ack_id"));
        assert!(without.get("recorded_at").is_none(), "the wall clock is never hashed");
    }
}
