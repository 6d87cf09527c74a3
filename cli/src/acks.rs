//! Acknowledgements of delivered rollback-drill notifications
//! (`go-rollback-drill-notification-ack`) and the escalation plan over the
//! latest stored plan of each schedule (`go-rollback-drill-escalation-plan`).
//! The escalation decision lives in `rules/escalation.cavra`; this module
//! validates, stores, looks up and assembles.

use crate::authoring::say;
use crate::packs::CompiledPacks;
use crate::runtime::{load_pack, ReportArgs, UsageError};
use crate::store::{SqliteStore, Store};
use crate::Io;
use cavra_engine::Value;
use clap::Args;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) const ACK_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-acknowledgement.v1";
pub(crate) const ESCALATION_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-escalation-plan.v1";
pub(crate) const ACK_STATES: &[&str] = &["acknowledged", "dismissed", "escalated", "resolved"];
const ESCALATION_PACK: &str = "escalation.cavra";
const ROUTING_PACK: &str = "routing.cavra";
const MAX_TEXT: usize = 500;

pub(crate) const ACK_HELP: &str = "Records one acknowledgement of a delivered notification, append-only, in --store (env
CAVRA_STORE, default .cavra/cavra.db). The id is ack_ + 16 hex digits of SHA-256 over the record
(including its time). Free text (--acknowledged-by, --notes, --external-ref) must be public-safe:
no URL, hostname, IP address, e-mail address or credential; otherwise nothing is stored (exit 2).
An acknowledgement applies to the schedule's routes on that provider delivered at or before it
(and, with --plan-id, only to that plan's routes).

Examples:
  cavra runtime go-rollback-drill-notification-ack go_backend_python_fallback_monthly \\
      --provider teams --acknowledged-by release-governance --at 2026-05-21T19:30:00Z
  cavra runtime go-rollback-drill-notification-ack SCHEDULE --provider slack \\
      --acknowledged-by platform-lead --acknowledgement-state resolved --notes \"drill booked\" --json";

pub(crate) const ESCALATION_HELP: &str = "For the latest stored plan of each schedule, each delivered route is decided by
rules/escalation.cavra: acknowledged or resolved (or dismissed) -> no_action; otherwise outstanding,
and breached strictly after acknowledgement_minutes since delivery -> escalate_missed_drill_notification
to its escalation owner, else wait_for_acknowledgement. The acknowledgement used is the newest one for
the schedule and provider made at or after the route was delivered and not after --at.
--acknowledgement-minutes overrides every route's minutes; --routing-policy re-resolves each route's
minutes and escalation owner from that policy. alert_level: critical when any route is breached,
warning when any is outstanding, else healthy. Nothing is written.

Examples:
  cavra runtime go-rollback-drill-escalation-plan --at 2026-05-21T19:45:00Z --json
  cavra runtime go-rollback-drill-escalation-plan --acknowledgement-minutes 15 --store /var/lib/cavra/cavra.db";

/// Flags shared by these commands.
#[derive(Args, Debug, Clone)]
pub(crate) struct CommonArgs {
    /// The clock (RFC 3339 with an offset); defaults to now.
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
    /// The store [default: .cavra/cavra.db].
    #[arg(long, env = "CAVRA_STORE", value_name = "FILE")]
    store: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Use the rule packs in this folder (same layout as `rules/`) instead of the bundled ones.
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
    #[arg(skip)]
    packs: Option<Arc<CompiledPacks>>,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct AckArgs {
    /// The drill schedule whose notification is acknowledged.
    schedule_id: String,
    /// The provider the notification was delivered on, e.g. teams.
    #[arg(long)]
    provider: String,
    /// Who acknowledges (an owner or team name).
    #[arg(long, value_name = "WHO")]
    acknowledged_by: String,
    /// acknowledged, dismissed, escalated or resolved.
    #[arg(long, value_name = "STATE", default_value = "acknowledged")]
    acknowledgement_state: String,
    /// The plan acknowledged (optional).
    #[arg(long)]
    plan_id: Option<String>,
    /// An external reference, e.g. a ticket id (public-safe).
    #[arg(long)]
    external_ref: Option<String>,
    /// Notes (public-safe).
    #[arg(long)]
    notes: Option<String>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct EscalationArgs {
    /// Re-resolve each route's acknowledgement minutes and escalation owner from this policy.
    #[arg(long, value_name = "FILE")]
    routing_policy: Option<PathBuf>,
    /// Minutes to acknowledge, for every route (overrides the stored per-route minutes).
    #[arg(long, value_name = "N")]
    acknowledgement_minutes: Option<f64>,
    #[command(flatten)]
    common: CommonArgs,
    /// A routing policy given as a document (the API's `routing_policy`); wins over `--routing-policy`.
    #[arg(skip)]
    policy_document: Option<Json>,
}

impl CommonArgs {
    pub(crate) fn new(at: Option<String>, store: Option<PathBuf>, packs: Arc<CompiledPacks>) -> CommonArgs {
        CommonArgs { at, store, json: true, rules: None, packs: Some(packs) }
    }
}

/// One acknowledgement as the API receives it.
pub(crate) struct AckRequest {
    pub schedule_id: String,
    pub provider: String,
    pub acknowledged_by: String,
    pub acknowledgement_state: Option<String>,
    pub plan_id: Option<String>,
    pub external_ref: Option<String>,
    pub notes: Option<String>,
}

impl AckArgs {
    pub(crate) fn new(request: AckRequest, common: CommonArgs) -> AckArgs {
        AckArgs {
            schedule_id: request.schedule_id,
            provider: request.provider,
            acknowledged_by: request.acknowledged_by,
            acknowledgement_state: request.acknowledgement_state.unwrap_or_else(|| "acknowledged".into()),
            plan_id: request.plan_id,
            external_ref: request.external_ref,
            notes: request.notes,
            common,
        }
    }
}

impl EscalationArgs {
    pub(crate) fn new(policy_document: Option<Json>, acknowledgement_minutes: Option<f64>, common: CommonArgs) -> EscalationArgs {
        EscalationArgs { routing_policy: None, acknowledgement_minutes, common, policy_document }
    }
}

/// The pack-loading settings (`--rules`) as the runtime's report arguments.
fn report_args(common: &CommonArgs) -> Result<ReportArgs, UsageError> {
    Ok(ReportArgs::rules_only(common.rules.clone()).with_packs(common.packs.clone()))
}

fn store_error(e: crate::store::StoreError) -> UsageError {
    UsageError(e.to_string())
}

// ---- go-rollback-drill-notification-ack ------------------------------------------

pub(crate) fn run_ack(io: &mut Io, args: &AckArgs) -> i32 {
    crate::runtime::finish(io, args.common.json, acknowledge(args), print_ack)
}

fn required(flag: &str, value: &str) -> Result<String, UsageError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(UsageError(format!("{flag}: a value is required")));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(UsageError(format!("{flag}: at most {MAX_TEXT} characters")));
    }
    Ok(value.to_string())
}

fn name(flag: &str, value: &str) -> Result<String, UsageError> {
    let value = required(flag, value)?;
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return Err(UsageError(format!("{flag}: expected letters, digits, `_`, `-` or `.`, got {value:?}")));
    }
    Ok(value)
}

fn optional(flag: &str, value: &Option<String>) -> Result<Option<String>, UsageError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => required(flag, v).map(Some),
        None => Ok(None),
    }
}

pub(crate) fn acknowledge(args: &AckArgs) -> Result<Json, UsageError> {
    let schedule_id = name("SCHEDULE_ID", &args.schedule_id)?;
    let provider = name("--provider", &args.provider)?.to_lowercase();
    let acknowledged_by = required("--acknowledged-by", &args.acknowledged_by)?;
    let state = args.acknowledgement_state.trim().to_lowercase();
    if !ACK_STATES.contains(&state.as_str()) {
        return Err(UsageError(format!("--acknowledgement-state: expected one of {}, got {:?}", ACK_STATES.join(", "), args.acknowledgement_state)));
    }
    let plan_id = match optional("--plan-id", &args.plan_id)? {
        Some(p) => Some(name("--plan-id", &p)?),
        None => None,
    };
    let external_ref = optional("--external-ref", &args.external_ref)?;
    let notes = optional("--notes", &args.notes)?;
    let now = crate::documents::clock(args.common.at.as_deref()).map_err(UsageError)?;

    let mut ack = json!({
        "schema_version": ACK_SCHEMA,
        "schedule_id": schedule_id,
        "provider": provider,
        "acknowledged_by": acknowledged_by,
        "acknowledgement_state": state,
        "plan_id": plan_id,
        "external_ref": external_ref,
        "notes": notes,
        "created_at": now,
    });
    // Nothing unsafe is stored.
    let screen = crate::safety::Screen::load(&report_args(&args.common)?)?;
    let refused = screen.refusals(&ack)?;
    if !refused.is_empty() {
        return Err(UsageError(format!("the acknowledgement is not public-safe; nothing was stored:\n  {}", refused.join("\n  "))));
    }
    ack["ack_id"] = json!(format!("ack_{}", crate::plan::content_hash(&ack)));
    let path = crate::store::store_path(args.common.store.as_deref());
    SqliteStore::open(&path).and_then(|store| store.save_acknowledgement(&ack)).map_err(store_error)?;
    Ok(ack)
}

/// The stored acknowledgements of a schedule, newest first.
pub(crate) fn list_acknowledgements(store: Option<&Path>, schedule_id: &str) -> Result<Json, UsageError> {
    let schedule_id = name("schedule_id", schedule_id)?;
    let path = crate::store::store_path(store);
    // Reading does not create a store.
    let acks = if path.exists() { SqliteStore::open(&path).and_then(|store| store.acknowledgements(&schedule_id)).map_err(store_error)? } else { Vec::new() };
    Ok(json!({"schedule_id": schedule_id, "acknowledgements": acks, "count": acks.len()}))
}

fn print_ack(io: &mut Io, ack: &Json) {
    let s = |k: &str| ack[k].as_str().unwrap_or_default().to_string();
    say!(io.out, "{} {}: {} {} on {} at {}", s("ack_id"), s("schedule_id"), s("acknowledged_by"), s("acknowledgement_state"), s("provider"), s("created_at"));
}

// ---- go-rollback-drill-escalation-plan --------------------------------------------

pub(crate) fn run_escalation(io: &mut Io, args: &EscalationArgs) -> i32 {
    crate::runtime::finish(io, args.common.json, escalation_plan(args), print_escalation)
}

fn micros(text: &str) -> Option<i64> {
    cavra_engine::time::parse_time(text).ok()
}

/// The newest acknowledgement state for `route` among the schedule's
/// acknowledgements (newest first): same provider, made at or after delivery
/// and not after `now`, and for the route's plan when the acknowledgement names one.
fn acknowledgement_state(acks: &[Json], route: &Json, delivered: i64, now: i64) -> Option<String> {
    acks.iter()
        .filter(|a| a["provider"] == route["provider"])
        .filter(|a| a["plan_id"].is_null() || a["plan_id"] == route["plan_id"])
        .find(|a| a["created_at"].as_str().and_then(micros).is_some_and(|t| delivered <= t && t <= now))
        .and_then(|a| a["acknowledgement_state"].as_str().map(String::from))
}

pub(crate) fn escalation_plan(args: &EscalationArgs) -> Result<Json, UsageError> {
    if let Some(m) = args.acknowledgement_minutes {
        if !m.is_finite() || m <= 0.0 {
            return Err(UsageError(format!("--acknowledgement-minutes: expected a positive number, got {m}")));
        }
    }
    let now_text = crate::documents::clock(args.common.at.as_deref()).map_err(UsageError)?;
    let now = micros(&now_text).ok_or_else(|| UsageError(format!("--at: not a time: {now_text}")))?;
    let report = report_args(&args.common)?;
    let routing = match crate::plan::separate_policy(args.routing_policy.as_deref(), args.policy_document.as_ref())? {
        Some((label, policy)) => Some(routing_program(&report, &label, &policy)?),
        None => None,
    };

    let pack = load_pack(&report, ESCALATION_PACK)?;
    let program = pack.bind(&HashMap::new()).map_err(|e| UsageError(format!("{ESCALATION_PACK}: {e}")))?;
    let slot = |name: &str| program.input_slot(name).ok_or_else(|| UsageError(format!("{ESCALATION_PACK}: the pack has no input `{name}`")));
    let slots = ["now", "delivered_at", "acknowledgement_minutes", "acknowledgement_state", "owner", "escalation_owner"]
        .map(slot)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut inputs = program.inputs();
    inputs.set(slots[0], Value::Time(now));

    let path = crate::store::store_path(args.common.store.as_deref());
    // Reading does not create a store.
    let (plans, store) = if path.exists() {
        let store = SqliteStore::open(&path).map_err(store_error)?;
        (store.latest_plans().map_err(store_error)?, Some(store))
    } else {
        (Vec::new(), None)
    };
    let mut routes = Vec::new();
    for plan in &plans {
        let schedule_id = plan["schedule_id"].as_str().unwrap_or_default();
        let acks = match &store {
            Some(store) => store.acknowledgements(schedule_id).map_err(store_error)?,
            None => Vec::new(),
        };
        for route in plan["route_decisions"].as_array().into_iter().flatten().filter(|r| r["action"] == "deliver") {
            let delivered_text = route["created_at"].as_str().unwrap_or_default();
            let delivered = micros(delivered_text).ok_or_else(|| UsageError(format!("{}: a stored route has no valid created_at", path.display())))?;
            let owner = route["owner"].as_str().unwrap_or_default().to_string();
            let provider = route["provider"].as_str().unwrap_or_default().to_string();
            let mut minutes = route["acknowledgement_minutes"].as_f64().unwrap_or(60.0);
            let mut escalation_owner = route["escalation_owner"].as_str().unwrap_or(&owner).to_string();
            if let Some(routing) = &routing {
                let (m, e) = routing.resolve(now, schedule_id, &owner, &provider)?;
                minutes = m.unwrap_or(minutes);
                escalation_owner = e.unwrap_or(escalation_owner);
            }
            if let Some(m) = args.acknowledgement_minutes {
                minutes = m;
            }
            let state = acknowledgement_state(&acks, route, delivered, now);
            inputs.set(slots[1], Value::Time(delivered));
            inputs.set(slots[2], Value::Number(minutes));
            inputs.set(slots[3], state.as_deref().map(Value::text).unwrap_or_default());
            inputs.set(slots[4], Value::text(&owner));
            inputs.set(slots[5], Value::text(&escalation_owner));
            let outcome = program.decide("escalation", &inputs).map_err(|e| UsageError(program.render_error(&e)))?;
            let field = |name: &str| outcome.field(name).map(Value::to_json).unwrap_or(Json::Bool(false));
            routes.push(json!({
                "route_id": route["route_id"],
                "plan_id": plan["plan_id"],
                "schedule_id": schedule_id,
                "owner": owner,
                "escalation_owner": escalation_owner,
                "provider": provider,
                "acknowledgement_minutes": json_number(minutes),
                "delivered_at": delivered_text,
                "outstanding": field("outstanding"),
                "breached": field("breached"),
                "recommended_action": outcome.action,
                "acknowledgement_state": state,
                "reason": outcome.reason().map(Value::to_json).unwrap_or(Json::Null),
            }));
        }
    }
    let outstanding = routes.iter().filter(|r| r["outstanding"] == true).count();
    let breached = routes.iter().filter(|r| r["breached"] == true).count();
    let alert_level = if breached > 0 {
        "critical"
    } else if outstanding > 0 {
        "warning"
    } else {
        "healthy"
    };
    Ok(json!({
        "schema_version": ESCALATION_SCHEMA,
        "generated_at": now_text,
        "alert_level": alert_level,
        "routes": routes,
        "outstanding_count": outstanding,
        "breached_count": breached,
    }))
}

/// Whole minutes print as integers.
fn json_number(n: f64) -> Json {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// The routing pack bound to a separate policy, for `--routing-policy`.
struct Routing {
    program: cavra_engine::Program,
}

fn routing_program(report: &ReportArgs, label: &str, policy: &Json) -> Result<Routing, UsageError> {
    let refused = crate::safety::Screen::load(report)?.refusals(policy)?;
    if !refused.is_empty() {
        let located: Vec<String> = refused.iter().map(|r| crate::plan::locate(label, r)).collect();
        return Err(UsageError(format!("the routing policy is not public-safe; nothing was decided:\n  {}", located.join("\n  "))));
    }
    let program =
        crate::plan::bind_routing(report, policy, cavra_engine::BindOptions::default()).map_err(|e| UsageError(format!("--routing-policy: {}", e.0)))?;
    Ok(Routing { program })
}

impl Routing {
    /// The route's acknowledgement minutes and escalation owner under the policy.
    fn resolve(&self, now: i64, schedule_id: &str, owner: &str, provider: &str) -> Result<(Option<f64>, Option<String>), UsageError> {
        let program = &self.program;
        let mut inputs = program.inputs();
        for (name, value) in [
            ("now", Value::Time(now)),
            ("schedule_id", Value::text(schedule_id)),
            ("schedule_status", Value::text("due_soon")),
            ("owner", Value::text(owner)),
            ("provider", Value::text(provider)),
        ] {
            let slot = program.input_slot(name).ok_or_else(|| UsageError(format!("{ROUTING_PACK}: the pack has no input `{name}`")))?;
            inputs.set(slot, value);
        }
        let outcome = program.decide("route", &inputs).map_err(|e| UsageError(program.render_error(&e)))?;
        let field = |name: &str| outcome.field(name).map(Value::to_json).unwrap_or(Json::Null);
        Ok((field("acknowledgement_minutes").as_f64(), field("escalation_owner").as_str().map(String::from)))
    }
}

fn print_escalation(io: &mut Io, doc: &Json) {
    say!(
        io.out,
        "escalation plan at {}: {} ({} outstanding, {} breached)",
        doc["generated_at"].as_str().unwrap_or_default(),
        doc["alert_level"].as_str().unwrap_or_default(),
        doc["outstanding_count"],
        doc["breached_count"]
    );
    const COLUMNS: [(&str, &str); 6] = [
        ("SCHEDULE", "schedule_id"),
        ("OWNER", "owner"),
        ("PROVIDER", "provider"),
        ("ESCALATION", "escalation_owner"),
        ("ACTION", "recommended_action"),
        ("REASON", "reason"),
    ];
    let routes = doc["routes"].as_array().map(Vec::as_slice).unwrap_or_default();
    crate::runtime::print_columns(io, &COLUMNS, routes);
}
