//! The escalation plan over the latest stored plan of each schedule: each
//! delivered route is decided by `rules/escalation.cavra` (acknowledged,
//! waiting, or breached and to escalate). Nothing is written.

use crate::documents::clock;
use crate::error::{AppError, Field};
use crate::packs::{BoundPack, PackSource};
use crate::policy::{bind_routing, separate_policy, PolicySource};
use crate::records::{Acknowledgement, AlertLevel, EscalationPlan, EscalationRoute, Minutes, Plan, RouteRecord};
use crate::routing::{OwnerProviders, Router, ScheduleRoutes};
use crate::safety::Screen;
use crate::store::StoreProvider;
use cavra_engine::{BindOptions, Value};
use std::sync::Arc;

pub const ESCALATION_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-escalation-plan.v1";
const ESCALATION_PACK: &str = "escalation.cavra";
/// Minutes to acknowledge when neither the route nor an override says.
const DEFAULT_MINUTES: f64 = 60.0;

/// The escalation plan to compute.
#[derive(Clone, Debug, Default)]
pub struct EscalationRequest {
    /// Re-resolve each route's acknowledgement minutes and escalation owner from this policy.
    pub policy: Option<PolicySource>,
    /// Minutes to acknowledge, for every route (overrides the stored per-route minutes).
    pub acknowledgement_minutes: Option<f64>,
    /// The clock; `None` is now.
    pub at: Option<String>,
}

pub fn escalation_plan(packs: &PackSource, store: &dyn StoreProvider, request: &EscalationRequest) -> Result<EscalationPlan, AppError> {
    if let Some(m) = request.acknowledgement_minutes {
        if !m.is_finite() || m <= 0.0 {
            return Err(AppError::field(Field::named("acknowledgement_minutes"), format!("expected a positive number, got {m}")));
        }
    }
    let now_text = clock(request.at.as_deref())?;
    let now = micros(&now_text).ok_or_else(|| AppError::field(Field::named("at"), format!("not a time: {now_text}")))?;
    let routing = match separate_policy(request.policy.as_ref())? {
        Some((label, policy)) => Some(routing_program(packs, &label, &policy)?),
        None => None,
    };
    // One router for every route: its slots and outcome fields are resolved once.
    let routing = match &routing {
        Some(pack) => Some(Routing { router: Router::new(&pack.program).map_err(|e| AppError::Pack(format!("{}: {e}", pack.file)))?, pack }),
        None => None,
    };

    let pack = packs.bind(ESCALATION_PACK)?;
    let slots = pack.slots(["now", "delivered_at", "acknowledgement_minutes", "acknowledgement_state", "owner", "escalation_owner"])?;
    let mut inputs = pack.inputs();
    inputs.set(slots[0], Value::Time(now));

    // Reading does not create a store.
    let store = store.readable()?;
    let plans = match &store {
        Some(store) => store.latest_plans()?,
        None => Vec::new(),
    };
    let mut routes = Vec::new();
    for plan in &plans {
        let acks = match &store {
            Some(store) => store.acknowledgements(&plan.schedule_id)?,
            None => Vec::new(),
        };
        for route in plan.route_decisions.iter().filter(|r| r.delivers()) {
            let delivered = micros(&route.created_at).ok_or_else(|| AppError::input(format!("a stored route has no valid created_at: {}", route.route_id)))?;
            let mut minutes = route.acknowledgement_minutes.map_or(DEFAULT_MINUTES, |m| m.0);
            let mut escalation_owner = route.escalation_owner_or_owner().to_string();
            if let Some(routing) = &routing {
                let (m, e) = routing.resolve(now, plan, &route.owner, &route.provider)?;
                minutes = m.unwrap_or(minutes);
                escalation_owner = e.unwrap_or(escalation_owner);
            }
            if let Some(m) = request.acknowledgement_minutes {
                minutes = m;
            }
            let state = acknowledgement_state(&acks, route, delivered, now);
            inputs.set(slots[1], Value::Time(delivered));
            inputs.set(slots[2], Value::Number(minutes));
            inputs.set(slots[3], state.as_deref().map(Value::text).unwrap_or_default());
            inputs.set(slots[4], Value::text(&route.owner));
            inputs.set(slots[5], Value::text(&escalation_owner));
            let outcome = pack.decide("escalation", &inputs)?;
            let flag = |name: &str| matches!(outcome.field(name), Some(Value::Bool(true)));
            routes.push(EscalationRoute {
                route_id: route.route_id.clone(),
                plan_id: plan.plan_id.clone(),
                schedule_id: plan.schedule_id.clone(),
                owner: route.owner.clone(),
                escalation_owner,
                provider: route.provider.clone(),
                acknowledgement_minutes: Minutes(minutes),
                delivered_at: route.created_at.clone(),
                outstanding: flag("outstanding"),
                breached: flag("breached"),
                recommended_action: outcome.action.to_string(),
                acknowledgement_state: state,
                reason: outcome.reason().and_then(Value::as_text).map(String::from),
            });
        }
    }
    let outstanding = routes.iter().filter(|r| r.outstanding).count();
    let breached = routes.iter().filter(|r| r.breached).count();
    let alert_level = if breached > 0 {
        AlertLevel::Critical
    } else if outstanding > 0 {
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
    })
}

fn micros(text: &str) -> Option<i64> {
    cavra_engine::time::parse_time(text).ok()
}

/// The newest acknowledgement state for `route` among the schedule's
/// acknowledgements (newest first): same provider, made at or after delivery
/// and not after `now`, and for the route's plan when the acknowledgement names one.
fn acknowledgement_state(acks: &[Acknowledgement], route: &RouteRecord, delivered: i64, now: i64) -> Option<String> {
    acks.iter()
        .filter(|a| a.provider == route.provider)
        .filter(|a| a.plan_id.as_ref().is_none_or(|p| *p == route.plan_id))
        .find(|a| micros(&a.created_at).is_some_and(|t| delivered <= t && t <= now))
        .map(|a| a.acknowledgement_state.clone())
}

/// The routing pack bound to a separate policy, and the same router the
/// plan uses, which resolves each route's settings under it.
struct Routing<'p> {
    pack: &'p BoundPack,
    router: Router<'p>,
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
    /// The route's acknowledgement minutes and escalation owner under the policy.
    fn resolve(&self, now: i64, plan: &Plan, owner: &str, provider: &str) -> Result<(Option<f64>, Option<String>), AppError> {
        let provider: Arc<str> = Arc::from(provider);
        let schedule = ScheduleRoutes {
            schedule_id: Arc::from(plan.schedule_id.as_str()),
            // The status the plan routed with: its delivered routes were due.
            status: Arc::from(plan.status.as_str()),
            owners: vec![OwnerProviders { owner: Arc::from(owner), configured: vec![provider.clone()], providers: vec![provider] }],
        };
        let planned = self.router.plan(now, &schedule).map_err(|e| self.pack.render_error(&e))?;
        let settings = planned.owners.first();
        let minutes = settings.and_then(|s| match *s.acknowledgement_minutes {
            Value::Number(n) => Some(n),
            _ => None,
        });
        Ok((minutes, settings.and_then(|s| s.escalation_owner.as_text().map(String::from))))
    }
}
