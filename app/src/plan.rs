//! The rollback-drill notification plan (README, "Notification plan"): who is told about a due
//! or stale rollback drill, on which provider, and which routes are
//! suppressed. The schedule report (readiness pack) says whether to notify;
//! the routing pack decides each route. This module resolves the policy,
//! iterates owners and providers through the router, and stores the plan.

use crate::error::AppError;
use crate::packs::PackSource;
use crate::policy::{bind_routing, provider_filter, routing_documents, schedule_routes, separate_policy, PolicySource, ROUTING_PACK};
use crate::readiness::{schedule_report, Evidence};
use crate::records::{Plan, ReadinessReport, ReadinessStatus};
use crate::routing::{plan_document, PlanHeader, Router};
use crate::store::StoreProvider;
use cavra_engine::BindOptions;
use serde_json::Value as Json;

/// One plan to build.
#[derive(Clone, Debug)]
pub struct PlanRequest {
    /// The schedule and drill history documents, clock and mode.
    pub evidence: Evidence,
    /// A routing policy besides the schedule's own keys; its keys win.
    pub policy: Option<PolicySource>,
    /// `all`, or provider names separated by commas.
    pub provider: String,
    /// Plan notifications even when the schedule is not due soon or stale.
    pub force: bool,
    /// `cli` or `api`, recorded in the plan.
    pub generated_by: String,
}

/// A plan and the schedule document it was built from.
pub struct BuiltPlan {
    pub plan: Plan,
    pub schedule: Json,
}

/// Builds the plan without storing it.
pub fn build_plan(packs: &PackSource, request: &PlanRequest) -> Result<BuiltPlan, AppError> {
    let (session, schedule_report) = schedule_report(packs, &request.evidence)?;
    let schedule_path = request.evidence.schedule_path()?;
    let separate = separate_policy(request.policy.as_ref())?;
    let (schedule, policy) = routing_documents(packs, schedule_path, separate)?;
    let status = schedule_report.status.clone();
    let notify = request.force || matches!(status, ReadinessStatus::NeedsAttention | ReadinessStatus::DueSoon);
    let schedule_id = schedule["schedule_id"].as_str().unwrap_or_default().to_string();

    let now = cavra_engine::time::parse_time(&session.now).map_err(AppError::input)?;
    // Every route is decided at `now`: pin the clock so window tests run once, at bind time.
    let routing = bind_routing(packs, &policy, BindOptions::at(now))?;
    let router = Router::new(&routing.program).map_err(|e| AppError::Pack(format!("{ROUTING_PACK}: {e}")))?;
    let wanted = provider_filter(&request.provider)?;
    let routes = schedule_routes(&schedule, &policy, if notify { status.as_str() } else { "healthy" }, wanted.as_ref());
    let planned = router.plan(now, &routes).map_err(|e| routing.render_error(&e))?;

    let reason = plan_reason(&schedule_id, &status, notify, request.force, &schedule_report);
    let header = PlanHeader { generated_at: &session.now, generated_by: &request.generated_by, mode: &session.mode, status: &status, reason: &reason };
    Ok(BuiltPlan { plan: plan_document(&header, &routes, planned.view()), schedule })
}

/// Builds the plan and stores it (unless `store` is `None`: a dry run). A
/// plan is only returned once it is stored (or was stored before).
pub fn plan_and_store(packs: &PackSource, request: &PlanRequest, store: Option<&dyn StoreProvider>) -> Result<Plan, AppError> {
    let built = build_plan(packs, request)?;
    if let Some(store) = store {
        store.writable()?.save_plan(&built.plan)?;
    }
    Ok(built.plan)
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
