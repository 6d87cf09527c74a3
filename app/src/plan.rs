//! The rollback-drill notification plan (README, "Notification plan"): who is told about a due
//! or stale rollback drill, on which provider, and which routes are
//! suppressed. The schedule report (readiness pack) says whether to notify;
//! the routing pack decides each route. This module merges the policy,
//! checks the provider filter, iterates owners and providers through the
//! router, names each route's notification, and stores the plan with the
//! policy it used.

use crate::error::{AppError, Field};
use crate::lifecycle::{self, micros};
use crate::packs::PackSource;
use crate::policy::{
    bind_routing, check_route_count, policy_record, provider_filter, routing_documents, schedule_providers, schedule_routes, Policies, ROUTING_PACK,
};
use crate::readiness::{schedule_report, Evidence};
use crate::records::{Plan, PolicyRecord, ReadinessReport, ReadinessStatus};
use crate::routing::{plan_document, PlanHeader, Router};
use crate::store::{History, StoreProvider};
use cavra_engine::BindOptions;
use serde_json::Value as Json;

/// One plan to build.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The schedule and drill history documents, clock and mode.
    pub evidence: Evidence,
    /// Routing policies besides the schedule's own keys, merged over them in order.
    pub policies: Policies,
    /// `all`, or provider names separated by commas.
    pub provider: String,
    /// Plan notifications even when the schedule is not due soon or stale.
    pub force: bool,
    /// `cli` or `api`, recorded in the plan.
    pub generated_by: String,
}

/// A plan and what it was built from.
pub struct BuiltPlan {
    pub plan: Plan,
    pub schedule: Json,
    /// The merged routing policy.
    pub policy: Json,
    pub policy_record: PolicyRecord,
}

/// Builds the plan without storing it.
pub fn build_plan(packs: &PackSource, request: &PlanRequest) -> Result<BuiltPlan, AppError> {
    let (session, schedule_report) = schedule_report(packs, &request.evidence)?;
    let schedule_path = request.evidence.schedule_path()?;
    let limits = &request.evidence.limits;
    let documents = routing_documents(packs, schedule_path, &request.policies, limits)?;
    let (schedule, policy) = (&documents.schedule, &documents.policy);
    let status = schedule_report.status.clone();
    let notify = request.force || matches!(status, ReadinessStatus::NeedsAttention | ReadinessStatus::DueSoon);
    let schedule_id = schedule["schedule_id"].as_str().unwrap_or_default().to_string();

    // Only providers this schedule routes to: a typo must not plan (and store) nothing.
    let wanted = provider_filter(&request.provider)?;
    if let Some(wanted) = &wanted {
        let known = schedule_providers(schedule, policy);
        let unknown: Vec<&str> = wanted.iter().filter(|p| !known.contains(*p)).map(String::as_str).collect();
        if !unknown.is_empty() {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return Err(AppError::field(
                Field::named("provider"),
                format!(
                    "schedule {schedule_id} has no route on {}; its providers are {} (or `all`); nothing was planned or stored",
                    unknown.join(", "),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ),
            ));
        }
    }

    let now = cavra_engine::time::parse_time(&session.now).map_err(AppError::input)?;
    // Every route is decided at `now`: pin the clock so window tests run once, at bind time.
    let routing = bind_routing(packs, policy, BindOptions::at(now)).map_err(|e| documents.locate(e))?;
    let router = Router::new(&routing.program).map_err(|e| AppError::Pack(format!("{ROUTING_PACK}: {e}")))?;
    let routes = schedule_routes(schedule, policy, if notify { status.as_str() } else { "healthy" }, wanted.as_ref());
    check_route_count(schedule_path, &routes, limits)?;
    let planned = router.plan(now, &routes).map_err(|e| routing.render_error(&e))?;

    let reason = plan_reason(&schedule_id, &status, notify, request.force, &schedule_report);
    let episode = episode(&schedule_report);
    let record = policy_record(policy);
    let header = PlanHeader {
        generated_at: &session.now,
        generated_by: &request.generated_by,
        mode: &session.mode,
        status: &status,
        reason: &reason,
        episode: episode.as_deref(),
        policy_sources: &documents.sources,
        policy_id: &record.policy_id,
    };
    let plan = plan_document(&header, &routes, planned.view());
    Ok(BuiltPlan { plan, schedule: documents.schedule, policy: documents.policy, policy_record: record })
}

/// The drill's due time the plan's notifications are about: the schedule
/// report's `next_due_at` (the schedule's own, else the latest drill plus the interval).
fn episode(report: &ReadinessReport) -> Option<String> {
    report.checks.iter().find_map(|c| c.extra.get("next_due_at").and_then(Json::as_str)).and_then(micros).map(cavra_engine::time::format_time)
}

/// Builds the plan and stores it with its policy (unless `store` is `None`:
/// a dry run). The plan says whether it was stored, and how many of its
/// schedule's notifications wait for delivery or failed once it is made.
pub fn plan_and_store(packs: &PackSource, request: &PlanRequest, store: Option<&dyn StoreProvider>) -> Result<Plan, AppError> {
    let built = build_plan(packs, request)?;
    let mut plan = built.plan;
    let at = micros(&plan.generated_at).unwrap_or_default();
    let writable = store.map(|s| s.writable()).transpose()?;
    let history = match &writable {
        Some(store) => store.history(Some(&plan.schedule_id), at)?,
        None => History::default(),
    };
    count_open(packs, &mut plan, history, at, &lifecycle::Options::default())?;
    plan.stored = Some(writable.is_some());
    if let Some(store) = writable {
        store.save_plans(std::slice::from_ref(&plan), std::slice::from_ref(&built.policy_record))?;
    }
    Ok(plan)
}

/// Sets the plan's pending and failed counts from its schedule's history
/// with the plan in it, and returns the states they were counted from.
pub(crate) fn count_open(
    packs: &PackSource,
    plan: &mut Plan,
    mut history: History,
    at: i64,
    options: &lifecycle::Options,
) -> Result<lifecycle::Lifecycle, AppError> {
    lifecycle::with_plan(&mut history, plan);
    let states = lifecycle::derive(packs, &history, at, options)?;
    plan.pending_count = Some(states.count(&plan.schedule_id, "pending_delivery"));
    plan.failed_count = Some(states.count(&plan.schedule_id, "delivery_failed"));
    Ok(states)
}

fn plan_reason(schedule_id: &str, status: &ReadinessStatus, notify: bool, forced: bool, report: &ReadinessReport) -> String {
    let failing: Vec<&str> = report.checks.iter().filter(|c| !c.passed()).map(|c| c.message.as_str()).collect();
    match (status, notify) {
        (ReadinessStatus::NeedsAttention, _) => format!("rollback drill schedule {schedule_id} needs attention: {}", failing.join("; ")),
        (ReadinessStatus::DueSoon, _) => match report.checks.iter().find(|c| c.extra.contains_key("next_due_at")) {
            Some(c) => format!(
                "rollback drill schedule {schedule_id} is due soon: the next drill is due at {} (in {} days)",
                c.extra["next_due_at"].as_str().unwrap_or_default(),
                c.extra.get("days_until_due").unwrap_or(&Json::Null)
            ),
            None => format!("rollback drill schedule {schedule_id} is due soon"),
        },
        (_, true) if forced => format!("rollback drill schedule {schedule_id} is {status}; notifications forced with --force"),
        _ => format!("rollback drill schedule {schedule_id} is {status}; no notification is due"),
    }
}
