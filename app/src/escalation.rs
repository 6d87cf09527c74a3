//! The escalation plan (README, "Notification lifecycle"): every open
//! notification of every schedule as of an instant, each with its state and
//! the recommended action decided by `rules/escalation.cavra`. Nothing is
//! written. `alert_level` is `critical` when anything is breached or failed,
//! `warning` when anything is outstanding, pending or suppressed.

use crate::documents::clock;
use crate::error::{AppError, Field};
use crate::lifecycle::{self, micros, Entry};
use crate::packs::{BoundPack, PackSource};
use crate::policy::{bind_routing, separate_policy, Policies};
use crate::records::{AlertLevel, EscalationPlan, EscalationRoute, Minutes, RouteRecord};
use crate::routing::{OwnerProviders, Router, ScheduleRoutes};
use crate::safety::Screen;
use crate::store::{History, StoreProvider};
use cavra_engine::{BindOptions, Value};
use std::sync::Arc;

pub const ESCALATION_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-escalation-plan.v1";

/// The escalation plan to compute.
#[derive(Clone, Debug, Default)]
pub struct EscalationRequest {
    /// Re-resolve each notification's acknowledgement minutes and escalation owner from this policy.
    pub policies: Policies,
    /// Minutes to acknowledge, for every notification (overrides the minutes frozen at delivery).
    pub acknowledgement_minutes: Option<f64>,
    /// The clock; `None` is now. Records made after it are ignored.
    pub at: Option<String>,
}

/// Whole minutes from 1 to a week, or an error naming `acknowledgement_minutes`.
pub(crate) fn checked_minutes(minutes: Option<f64>) -> Result<Option<f64>, AppError> {
    match minutes.and_then(crate::policy::acknowledgement_minutes_problem) {
        Some(problem) => Err(AppError::field(Field::named("acknowledgement_minutes"), problem)),
        None => Ok(minutes),
    }
}

pub fn escalation_plan(packs: &PackSource, store: &dyn StoreProvider, request: &EscalationRequest) -> Result<EscalationPlan, AppError> {
    let minutes = checked_minutes(request.acknowledgement_minutes)?;
    let now_text = clock(request.at.as_deref())?;
    let now = micros(&now_text).ok_or_else(|| AppError::field(Field::named("at"), format!("not a time: {now_text}")))?;
    let routing = match separate_policy(&request.policies)? {
        Some((label, policy)) => Some(routing_program(packs, &label, &policy)?),
        None => None,
    };
    // One router for every notification: its slots and outcome fields are resolved once.
    let routing = match &routing {
        Some(pack) => Some(Routing { router: Router::new(&pack.program).map_err(|e| AppError::Pack(format!("{}: {e}", pack.file)))?, pack, now }),
        None => None,
    };
    // Reading does not create a store.
    let history = match store.readable()? {
        Some(store) => store.history(None, now)?,
        None => History::default(),
    };
    let resolve = |route: &RouteRecord| match &routing {
        Some(routing) => routing.resolve(route),
        None => Ok((None, None)),
    };
    let options = lifecycle::Options { acknowledgement_minutes: minutes, resolve: Some(&resolve) };
    let states = lifecycle::derive(packs, &history, now, &options)?;
    let routes: Vec<EscalationRoute> = states.open().map(escalation_route).collect();
    let count = |state: &str| routes.iter().filter(|r| r.state == state).count();
    let (breached, failed) = (count("breached"), count("delivery_failed"));
    let (outstanding, pending, suppressed) = (count("outstanding") + breached, count("pending_delivery"), count("suppressed"));
    let alert_level = if breached + failed > 0 {
        AlertLevel::Critical
    } else if outstanding + pending + suppressed > 0 {
        AlertLevel::Warning
    } else {
        AlertLevel::Healthy
    };
    Ok(EscalationPlan {
        schema_version: ESCALATION_SCHEMA.to_string(),
        generated_at: now_text,
        alert_level,
        routes,
        outstanding_count: outstanding,
        breached_count: breached,
        pending_count: pending,
        suppressed_count: suppressed,
        failed_count: failed,
    })
}

/// An open notification as the escalation plan lists it.
pub(crate) fn escalation_route(entry: &Entry) -> EscalationRoute {
    let route = &entry.route;
    EscalationRoute {
        route_id: route.route_id.to_string(),
        plan_id: route.plan_id.to_string(),
        schedule_id: route.schedule_id.to_string(),
        owner: route.owner.to_string(),
        escalation_owner: entry.escalation_owner.clone(),
        provider: route.provider.to_string(),
        acknowledgement_minutes: Minutes(entry.acknowledgement_minutes),
        delivered_at: entry.delivered_at.map(cavra_engine::time::format_time),
        outstanding: entry.outstanding,
        breached: entry.breached,
        recommended_action: entry.recommended_action.clone(),
        acknowledgement_state: entry.acknowledgement_state.clone(),
        reason: entry.reason.clone(),
        notification_id: route.notification_id.to_string(),
        state: entry.state.clone(),
        episode: route.episode.as_deref().map(String::from),
        kind: entry.kind(),
        escalates: route.escalates.as_deref().map(String::from),
        alert_level: entry.alert_level,
        suppressed_until: route.suppressed_until.as_deref().map(String::from),
        last_attempt: entry.last_attempt_summary(),
        problem: entry.problem.clone(),
    }
}

/// The routing pack bound to a separate policy, and the same router the
/// plan uses, which resolves each notification's settings under it.
struct Routing<'p> {
    pack: &'p BoundPack,
    router: Router<'p>,
    now: i64,
}

/// The routing pack bound to a separate policy, once the policy is screened.
fn routing_program(packs: &PackSource, label: &str, policy: &serde_json::Value) -> Result<BoundPack, AppError> {
    let refusals: Vec<_> = Screen::load(packs)?.refusals(policy)?.iter().map(|r| r.located(label)).collect();
    if !refusals.is_empty() {
        return Err(AppError::NotPublicSafe { head: "the routing policy is not public-safe; nothing was decided".into(), refusals });
    }
    let pack = bind_routing(packs, policy, BindOptions::default()).map_err(|e| match e {
        AppError::Input { path, message, .. } => AppError::Input { field: Some(Field::named("routing_policy")), path, message },
        other => other,
    })?;
    Ok(pack)
}

impl Routing<'_> {
    /// The notification's acknowledgement minutes and escalation owner under the policy.
    fn resolve(&self, route: &RouteRecord) -> Result<(Option<f64>, Option<String>), AppError> {
        let provider: Arc<str> = Arc::from(route.provider.as_str());
        let schedule = ScheduleRoutes {
            schedule_id: Arc::from(route.schedule_id.as_str()),
            // A notification is of a due schedule.
            status: Arc::from("needs_attention"),
            owners: vec![OwnerProviders { owner: Arc::from(route.owner.as_str()), configured: vec![provider.clone()], providers: vec![provider] }],
        };
        let planned = self.router.plan(self.now, &schedule).map_err(|e| self.pack.render_error(&e))?;
        let settings = planned.owners.first();
        let minutes = settings.and_then(|s| match *s.acknowledgement_minutes() {
            Value::Number(n) => Some(n),
            _ => None,
        });
        Ok((minutes, settings.and_then(|s| s.escalation_owner().as_text().map(String::from))))
    }
}
