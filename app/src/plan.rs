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
use crate::store::{History, SaveOutcome, Store, StoreProvider};
use cavra_engine::BindOptions;
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value as Json;
use std::collections::HashMap;

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
pub fn plan_and_store(packs: &PackSource, request: &PlanRequest, store: Option<&dyn StoreProvider>) -> Result<PlanMade, AppError> {
    let built = build_plan(packs, request)?;
    let mut plan = built.plan;
    let written = match store.map(|s| s.writable()).transpose()? {
        Some(store) => {
            let outcomes = store_plans(packs, &*store, std::slice::from_mut(&mut plan), std::slice::from_ref(&built.policy_record))?;
            outcomes.iter().any(|o| matches!(o, SaveOutcome::Stored { .. }))
        }
        None => {
            let at = micros(&plan.generated_at).unwrap_or_default();
            count_open(packs, &mut plan, History::default(), at, &lifecycle::Options::default())?;
            plan.stored = Some(false);
            false
        }
    };
    Ok(PlanMade { plan, written })
}

/// A plan, and whether this call wrote it: `false` for a dry run and for a
/// plan whose id was stored before (the store is append-only, so the same
/// plan made again writes nothing new; its `stored` is still `true`).
#[derive(Clone, Debug)]
pub struct PlanMade {
    pub plan: Plan,
    pub written: bool,
}

/// What the plan command writes when it stores plans: each plan's pending
/// and failed counts ([`count_open_all`]) and `stored`, then the plans, their
/// routes and the policies they name, all in one transaction (nothing of
/// them on an error).
pub fn store_plans(packs: &PackSource, store: &dyn Store, plans: &mut [Plan], policies: &[PolicyRecord]) -> Result<Vec<SaveOutcome>, AppError> {
    count_open_all(packs, store, plans)?;
    for plan in plans.iter_mut() {
        plan.stored = Some(true);
    }
    Ok(store.save_plans(plans, policies)?)
}

/// Sets each plan's pending and failed counts from its schedule's stored
/// history as of the plan's instant, with the plan in it: what storing the
/// plans one by one would give (each sees the plans of its schedule before
/// it in the batch, made at or before it). Plans of distinct schedules at one
/// instant (a batch's usual shape) read their histories together, and their
/// lifecycles are derived together: the lifecycle of one schedule's
/// notifications depends on that schedule's facts only.
pub fn count_open_all(packs: &PackSource, store: &dyn Store, plans: &mut [Plan]) -> Result<(), AppError> {
    let options = lifecycle::Options::default();
    let at_of = |plan: &Plan| micros(&plan.generated_at).unwrap_or_default();
    let mut seen = std::collections::HashSet::with_capacity(plans.len());
    if !plans.iter().all(|plan| seen.insert(plan.schedule_id.as_str())) {
        // A schedule planned twice: one by one, each with the plans of its schedule before it.
        for i in 0..plans.len() {
            let (before, rest) = plans.split_at_mut(i);
            let plan = &mut rest[0];
            let at = at_of(plan);
            let mut history = store.history(Some(&plan.schedule_id), at)?;
            let mut earlier: Vec<&Plan> = before.iter().filter(|p| p.schedule_id == plan.schedule_id && at_of(p) <= at).collect();
            // The store keeps the newest decision about each notification.
            earlier.sort_by_key(|p| at_of(p));
            for p in earlier {
                lifecycle::with_plan(&mut history, p);
            }
            count_open(packs, plan, history, at, &options)?;
        }
        return Ok(());
    }
    let mut instants: std::collections::BTreeMap<i64, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, plan) in plans.iter().enumerate() {
        instants.entry(at_of(plan)).or_default().push(i);
    }
    for (at, members) in instants {
        let schedules: Vec<&str> = members.iter().map(|&i| plans[i].schedule_id.as_str()).collect();
        let history = store.histories(&schedules, at)?;
        // The plans' routes join the stored history by reference: a batch
        // of 10,000 plans would otherwise copy 90,000 route records.
        let group: Vec<&Plan> = members.iter().map(|&i| &plans[i]).collect();
        let mut view = lifecycle::HistoryView::of(&history);
        view.with_plans(&group);
        let counts = open_counts(packs, view, at)?;
        for &i in &members {
            let plan = &mut plans[i];
            let (pending, failed) = counts.get(plan.schedule_id.as_str()).copied().unwrap_or_default();
            plan.pending_count = Some(pending);
            plan.failed_count = Some(failed);
        }
    }
    Ok(())
}

/// Schedules from which a batch's lifecycle is derived on every core.
const PARALLEL_SCHEDULES: usize = 512;

/// Per schedule of `history`, how many of its notifications are
/// `pending_delivery` and `delivery_failed` at `at`. A large history is
/// split by schedule and derived on every core: the lifecycle of a
/// schedule's notifications depends on that schedule's facts only.
fn open_counts(packs: &PackSource, history: lifecycle::HistoryView<'_>, at: i64) -> Result<HashMap<String, (usize, usize)>, AppError> {
    let count = |history: &lifecycle::HistoryView| -> Result<HashMap<String, (usize, usize)>, AppError> {
        let mut counts: FxHashMap<&str, (usize, usize)> = FxHashMap::default();
        lifecycle::states(packs, history, at, |route, state| match state {
            "pending_delivery" => counts.entry(&route.schedule_id).or_default().0 += 1,
            "delivery_failed" => counts.entry(&route.schedule_id).or_default().1 += 1,
            _ => {}
        })?;
        Ok(counts.into_iter().map(|(schedule, counted)| (schedule.to_string(), counted)).collect())
    };
    let schedules: FxHashSet<&str> = history.routes.iter().map(|r| r.schedule_id.as_str()).collect();
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get());
    if schedules.len() < PARALLEL_SCHEDULES || parts < 2 {
        return count(&history);
    }
    let part_of: FxHashMap<&str, usize> = schedules.into_iter().enumerate().map(|(i, s)| (s, i % parts)).collect();
    let part = |schedule: &str| part_of.get(schedule).copied().unwrap_or(0);
    let mut split: Vec<lifecycle::HistoryView> = (0..parts).map(|_| lifecycle::HistoryView::default()).collect();
    for &route in &history.routes {
        split[part(&route.schedule_id)].routes.push(route);
    }
    for &attempt in &history.attempts {
        split[part(&attempt.schedule_id)].attempts.push(attempt);
    }
    for &ack in &history.acknowledgements {
        split[part(&ack.schedule_id)].acknowledgements.push(ack);
    }
    for &healthy in &history.healthy_plans {
        split[part(healthy.0)].healthy_plans.push(healthy);
    }
    let mut counts = HashMap::new();
    for part in crate::parallel::parallel_map(&split, count) {
        counts.extend(part?);
    }
    Ok(counts)
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
