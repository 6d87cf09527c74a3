//! Route assembly on a bound routing program (DOMAIN §5 steps 2 and 3): for
//! each owner of a schedule and each of its providers, one typed route
//! decision, plus each owner's resolved settings. Many schedules are planned
//! in parallel. The plan document (ids, counts, JSON) is made from this at the
//! edge (`plan.rs`); the routing rules themselves live in `rules/routing.cavra`.

use cavra_engine::{EvalError, Program, Session, Value};
use rustc_hash::FxHashMap;
use serde_json::{json, Map, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::sync::Arc;

pub const PLAN_SCHEMA: &str = "cavra.go-backend-pilot.rollback-drill-notification-plan.v1";

/// What one plan routes: a schedule, the status the routing pack sees, and
/// the providers of each owner (already filtered by `--provider`).
#[derive(Clone, Debug)]
pub struct ScheduleRoutes {
    pub schedule_id: Arc<str>,
    /// The schedule's status when a notification is due, else `healthy`.
    pub status: Arc<str>,
    pub owners: Vec<OwnerProviders>,
}

#[derive(Clone, Debug)]
pub struct OwnerProviders {
    pub owner: Arc<str>,
    /// The owner's route providers (its own, else the schedule's).
    pub configured: Vec<Arc<str>>,
    /// Those that are routed now (after `--provider`).
    pub providers: Vec<Arc<str>>,
}

/// One route's decision, as the routing pack made it. It borrows the names
/// from the program and the request rather than counting references to them:
/// the threads of [`Router::plan_all`] share both, and a shared count is a
/// cache line every core writes.
#[derive(Clone, Debug)]
pub struct RouteDecision<'a> {
    pub owner: &'a str,
    pub provider: &'a str,
    pub action: &'a str,
    pub category: &'a str,
    pub reason: Value,
    pub escalation_owner: Value,
    pub acknowledgement_minutes: Value,
    pub maintenance_window_id: Value,
    pub owner_availability: Value,
}

/// An owner's acknowledgement minutes and escalation owner under the policy.
#[derive(Clone, Debug)]
pub struct OwnerSettings<'a> {
    pub owner: &'a str,
    pub acknowledgement_minutes: Value,
    pub escalation_owner: Value,
}

#[derive(Clone, Debug, Default)]
pub struct PlannedRoutes<'a> {
    pub routes: Vec<RouteDecision<'a>>,
    pub owners: Vec<OwnerSettings<'a>>,
}

/// The routing program with its input slots resolved once.
pub struct Router<'p> {
    program: &'p Program,
    now: usize,
    schedule_id: usize,
    schedule_status: usize,
    owner: usize,
    provider: usize,
}

impl<'p> Router<'p> {
    /// Fails with the name of a missing input when the pack does not declare
    /// the routing inputs (`now`, `schedule_id`, `schedule_status`, `owner`, `provider`).
    pub fn new(program: &'p Program) -> Result<Router<'p>, String> {
        let slot = |name: &str| program.input_slot(name).ok_or_else(|| format!("the routing pack has no input `{name}`"));
        Ok(Router {
            now: slot("now")?,
            schedule_id: slot("schedule_id")?,
            schedule_status: slot("schedule_status")?,
            owner: slot("owner")?,
            provider: slot("provider")?,
            program,
        })
    }

    pub fn program(&self) -> &'p Program {
        self.program
    }

    /// The routes of one schedule at `now`.
    pub fn plan<'a>(&self, now: i64, schedule: &'a ScheduleRoutes) -> Result<PlannedRoutes<'a>, EvalError>
    where
        'p: 'a,
    {
        self.plan_with(&mut Worker::new(self.program, false), now, schedule)
    }

    fn plan_with<'a>(&self, worker: &mut Worker<'p>, now: i64, schedule: &'a ScheduleRoutes) -> Result<PlannedRoutes<'a>, EvalError>
    where
        'p: 'a,
    {
        // The session keeps the owner's lets (route, calendar) across its providers.
        worker.session.set(self.now, Value::Time(now));
        let text = worker.text(&schedule.schedule_id);
        worker.session.set(self.schedule_id, text);
        let text = worker.text(&schedule.status);
        worker.session.set(self.schedule_status, text);
        let mut planned = PlannedRoutes {
            routes: Vec::with_capacity(schedule.owners.iter().map(|o| o.providers.len()).sum()),
            owners: Vec::with_capacity(schedule.owners.len()),
        };
        for owner in &schedule.owners {
            let text = worker.text(&owner.owner);
            worker.session.set(self.owner, text);
            let mut settings = None;
            for provider in &owner.providers {
                let text = worker.text(provider);
                worker.session.set(self.provider, text);
                let route = self.decide(&mut worker.session, owner, provider)?;
                settings.get_or_insert_with(|| (route.acknowledgement_minutes.clone(), route.escalation_owner.clone()));
                planned.routes.push(route);
            }
            let (acknowledgement_minutes, escalation_owner) = match settings {
                Some(s) => s,
                None => {
                    // Every provider was filtered out: the settings do not
                    // depend on the provider, so ask the pack with none.
                    worker.session.set(self.provider, Value::text(""));
                    let route = self.decide(&mut worker.session, owner, "")?;
                    (route.acknowledgement_minutes, route.escalation_owner)
                }
            };
            planned.owners.push(OwnerSettings { owner: &owner.owner, acknowledgement_minutes, escalation_owner });
        }
        Ok(planned)
    }

    fn decide<'a>(&self, inputs: &mut Session<'p>, owner: &'a OwnerProviders, provider: &'a str) -> Result<RouteDecision<'a>, EvalError>
    where
        'p: 'a,
    {
        let outcome = inputs.decide("route")?;
        let mut route = RouteDecision {
            owner: &owner.owner,
            provider,
            action: outcome.action,
            category: outcome.category,
            reason: Value::Null,
            escalation_owner: Value::Null,
            acknowledgement_minutes: Value::Null,
            maintenance_window_id: Value::Null,
            owner_availability: Value::Null,
        };
        let (reason, fields) = outcome.into_parts();
        route.reason = reason.unwrap_or(Value::Null);
        for (name, value) in fields {
            match name {
                "escalation_owner" => route.escalation_owner = value,
                "acknowledgement_minutes" => route.acknowledgement_minutes = value,
                "maintenance_window_id" => route.maintenance_window_id = value,
                "owner_availability" => route.owner_availability = value,
                _ => {}
            }
        }
        Ok(route)
    }

    /// The routes of many schedules at `now`, split across the machine's
    /// cores. The program is shared; each thread has its own session and its
    /// own copies of the request's texts. Results are in the order of `schedules`.
    pub fn plan_all<'a>(&self, now: i64, schedules: &'a [ScheduleRoutes]) -> Vec<Result<PlannedRoutes<'a>, EvalError>>
    where
        'p: 'a,
    {
        parallel_map_with(schedules, || Worker::new(self.program, true), |worker, s| self.plan_with(worker, now, s))
    }
}

/// One thread's planning state: a session reused across schedules, and a
/// thread-local copy of each request text it has set as an input. Cloning the
/// caller's `Arc<str>` instead would write to reference counts that every
/// thread shares, and the cores would then queue for those cache lines.
struct Worker<'p> {
    session: Session<'p>,
    /// Keyed by the address of the caller's text, which outlives the worker;
    /// `None` for a single plan, where there is nothing to share.
    texts: Option<FxHashMap<*const u8, Value>>,
}

impl<'p> Worker<'p> {
    /// `many`: the worker plans many schedules (texts are worth sharing).
    fn new(program: &'p Program, many: bool) -> Worker<'p> {
        let session = if many { program.session().share_texts() } else { program.session() };
        Worker { session, texts: many.then(FxHashMap::default) }
    }

    fn text(&mut self, text: &Arc<str>) -> Value {
        match &mut self.texts {
            Some(texts) => texts.entry(text.as_ptr()).or_insert_with(|| Value::text(text)).clone(),
            None => Value::Text(text.clone()),
        }
    }
}

/// `items.iter().map(f)`, split into one contiguous chunk per core; results
/// keep the order of `items`.
pub fn parallel_map<'a, T: Sync, R: Send>(items: &'a [T], f: impl Fn(&'a T) -> R + Sync) -> Vec<R> {
    parallel_map_with(items, || (), |_, item| f(item))
}

/// [`parallel_map`] with per-thread state made by `init`.
fn parallel_map_with<'a, T: Sync, S, R: Send>(items: &'a [T], init: impl Fn() -> S + Sync, f: impl Fn(&mut S, &'a T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    let (init, f) = (&init, &f);
    let run = move |part: &'a [T]| {
        let mut state = init();
        part.iter().map(|item| f(&mut state, item)).collect::<Vec<_>>()
    };
    if threads <= 1 {
        return run(items);
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items.chunks(chunk).map(|part| scope.spawn(move || run(part))).collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// What a plan document says besides its routes.
pub struct PlanHeader<'a> {
    pub generated_at: &'a str,
    pub generated_by: &'a str,
    pub mode: &'a str,
    /// The schedule report's status.
    pub status: &'a str,
    pub reason: &'a str,
}

/// The plan document (DOMAIN §5 step 4). Ids hash the content, including its
/// time, so a re-run at another time is a new plan and nothing is overwritten.
pub fn plan_document(header: &PlanHeader, request: &ScheduleRoutes, planned: &PlannedRoutes) -> Json {
    let mut owner_routes = Map::new();
    for (settings, owner) in planned.owners.iter().zip(&request.owners) {
        let providers: Vec<&str> = owner.configured.iter().map(|p| p.as_ref()).collect();
        owner_routes.insert(
            settings.owner.to_string(),
            json!({"providers": providers, "acknowledgement_minutes": settings.acknowledgement_minutes.to_json(), "escalation_owner": settings.escalation_owner.to_json()}),
        );
    }
    let routes: Vec<Json> = planned
        .routes
        .iter()
        .map(|r| {
            json!({
                "schedule_id": request.schedule_id.as_ref(),
                "owner": r.owner,
                "escalation_owner": r.escalation_owner.to_json(),
                "provider": r.provider,
                "action": r.action,
                "category": r.category,
                "acknowledgement_minutes": r.acknowledgement_minutes.to_json(),
                "reason": r.reason.to_json(),
                "maintenance_window_id": r.maintenance_window_id.to_json(),
                "owner_availability": r.owner_availability.to_json(),
                "created_at": header.generated_at,
            })
        })
        .collect();
    let count = |pred: &dyn Fn(&RouteDecision) -> bool| planned.routes.iter().filter(|r| pred(r)).count();
    let providers_where = |action: &str| -> Vec<&str> {
        planned.routes.iter().filter(|r| r.action == action).map(|r| r.provider).collect::<BTreeSet<_>>().into_iter().collect()
    };
    let delivered = providers_where("deliver");
    let alert_level = match header.status {
        "needs_attention" => "critical",
        "due_soon" => "warning",
        _ => "healthy",
    };
    let mut plan = json!({
        "schema_version": PLAN_SCHEMA,
        "schedule_id": request.schedule_id.as_ref(),
        "generated_at": header.generated_at,
        "generated_by": header.generated_by,
        "mode": header.mode,
        "status": header.status,
        "alert_level": alert_level,
        "owner_routes": owner_routes,
        "deliverable_route_count": count(&|r| r.action == "deliver"),
        "suppressed_route_count": count(&|r| r.action == "suppress"),
        "maintenance_suppressed_count": count(&|r| r.category == "maintenance_window"),
        "calendar_suppressed_count": count(&|r| r.category == "owner_calendar"),
        "healthy_suppressed_count": count(&|r| r.category == "healthy_schedule"),
        "selected_providers": delivered,
        "acknowledgement_required_providers": delivered,
        "suppressed_providers": providers_where("suppress"),
        "reason": header.reason,
        "route_decisions": routes,
    });
    let plan_id = format!("plan_{}", content_hash(&plan));
    plan["plan_id"] = json!(plan_id);
    if let Some(routes) = plan["route_decisions"].as_array_mut() {
        for route in routes {
            route["plan_id"] = json!(plan_id);
            route["route_id"] = json!(format!("route_{}", content_hash(route)));
        }
    }
    plan
}

/// The first 16 hex digits of SHA-256 over canonical JSON (sorted keys, no spaces).
pub fn content_hash(value: &Json) -> String {
    let mut text = String::with_capacity(1024);
    canonical(value, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quoted(k, out);
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        Json::String(text) => quoted(text, out),
        other => out.push_str(&other.to_string()),
    }
}

/// A JSON string literal, escaped as serde_json escapes it.
fn quoted(text: &str, out: &mut String) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Json::from(text).to_string());
    }
}

// `Router` is shared by reference across the threads of `plan_all`.
const _: () = {
    const fn shared<T: Sync>() {}
    shared::<Router<'static>>();
};
