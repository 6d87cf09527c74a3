//! Route assembly on a bound routing program (README, "Notification plan"): for
//! each owner of a schedule and each of its providers, one typed route
//! decision, plus each owner's resolved settings. Many schedules are planned
//! in parallel. [`plan_document`] turns one schedule's routes into the plan
//! record (ids, counts); the routing rules themselves live in
//! `rules/routing.cavra`.

use crate::hash::record_id_and_element_ids;
use crate::records::{content_hash, notification_id, AlertLevel, Minutes, Ordered, OwnerRoute, Plan, ReadinessStatus, RouteRecord, Text};
use cavra_engine::{EvalError, InputSlot, KeptOutcome, OutcomeRef, Program, Session, Value};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
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

/// One route's decision, as the routing pack made it: the owner and provider
/// it was asked for and the outcome, read through its accessors. The outcome
/// is kept as the engine lends it ([`OutcomeRef::keep`]): a decision table's
/// label stays in the program, values the session remembers (a reason that
/// names an owner the policy does not) are shared with it. A batch of
/// 90,000 routes then copies no value and writes under a third of the memory a
/// record of values would.
pub struct RouteDecision<'a> {
    // The request's own texts, by one pointer each.
    owner: &'a Arc<str>,
    provider: &'a Arc<str>,
    outcome: KeptOutcome<'a>,
}

impl<'a> RouteDecision<'a> {
    fn new(outcome: OutcomeRef<'_, 'a>, owner: &'a Arc<str>, provider: &'a Arc<str>) -> RouteDecision<'a> {
        RouteDecision { owner, provider, outcome: outcome.keep() }
    }

    /// The owner the route was asked for.
    pub fn owner(&self) -> &'a str {
        self.owner
    }

    /// The provider the route was asked for.
    pub fn provider(&self) -> &'a str {
        self.provider
    }

    pub fn action(&self) -> &'a str {
        self.outcome.action()
    }

    pub fn category(&self) -> &'a str {
        self.outcome.category()
    }

    /// The reason (null when the arm gives none).
    pub fn reason(&self) -> &Value {
        self.outcome.reason().unwrap_or(&Value::Null)
    }

    /// Extra field `name` of the route's arm (null when it has none). The
    /// plan reads [`ROUTE_FIELDS`]; any other field is the pack's own.
    pub fn field(&self, name: &str) -> &Value {
        self.outcome.field_named(name).unwrap_or(&Value::Null)
    }

    pub fn escalation_owner(&self) -> &Value {
        self.field("escalation_owner")
    }
    pub fn acknowledgement_minutes(&self) -> &Value {
        self.field("acknowledgement_minutes")
    }
    pub fn maintenance_window_id(&self) -> &Value {
        self.field("maintenance_window_id")
    }
    pub fn owner_availability(&self) -> &Value {
        self.field("owner_availability")
    }
    /// When the suppression ends (a time), else null.
    pub fn suppressed_until(&self) -> &Value {
        self.field("suppressed_until")
    }
}

impl std::fmt::Debug for RouteDecision<'_> {
    /// The values, wherever they are kept (a lent and a made outcome of
    /// the same decision print alike).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut route = f.debug_struct("RouteDecision");
        route.field("owner", &self.owner).field("provider", &self.provider).field("action", &self.action()).field("category", &self.category());
        route.field("reason", self.reason());
        for name in ROUTE_FIELDS {
            route.field(name, self.field(name));
        }
        route.finish()
    }
}

/// An owner's acknowledgement minutes and escalation owner under the
/// policy: those its routes give, which do not depend on the provider (kept
/// as the owner's first route keeps its outcome).
pub struct OwnerSettings<'a> {
    owner: &'a Arc<str>,
    outcome: KeptOutcome<'a>,
}

impl<'a> OwnerSettings<'a> {
    pub fn owner(&self) -> &'a str {
        self.owner
    }
    pub fn acknowledgement_minutes(&self) -> &Value {
        self.outcome.field_named("acknowledgement_minutes").unwrap_or(&Value::Null)
    }
    pub fn escalation_owner(&self) -> &Value {
        self.outcome.field_named("escalation_owner").unwrap_or(&Value::Null)
    }
}

impl std::fmt::Debug for OwnerSettings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerSettings")
            .field("owner", &self.owner)
            .field("acknowledgement_minutes", self.acknowledgement_minutes())
            .field("escalation_owner", self.escalation_owner())
            .finish()
    }
}

#[derive(Debug, Default)]
pub struct PlannedRoutes<'a> {
    pub routes: Vec<RouteDecision<'a>>,
    pub owners: Vec<OwnerSettings<'a>>,
}

impl<'a> PlannedRoutes<'a> {
    pub fn view(&self) -> PlanView<'_, 'a> {
        PlanView { routes: &self.routes, owners: &self.owners }
    }
}

/// One schedule's routes and owner settings, wherever they are stored.
#[derive(Clone, Copy, Debug)]
pub struct PlanView<'r, 'a> {
    pub routes: &'r [RouteDecision<'a>],
    pub owners: &'r [OwnerSettings<'a>],
}

/// The plans of many schedules ([`Router::plan_all`]). The routes of a block
/// of schedules are stored in one vector, sized up front, rather than in two
/// small vectors per schedule: at 90,000 routes the allocations, page faults
/// and frees of the small vectors cost more than deciding.
#[derive(Debug, Default)]
pub struct PlanBatch<'a> {
    parts: Vec<BatchPart<'a>>,
}

#[derive(Debug, Default)]
struct BatchPart<'a> {
    routes: Vec<RouteDecision<'a>>,
    owners: Vec<OwnerSettings<'a>>,
    /// Per schedule: where its routes and owners are, or what stopped it.
    plans: Vec<Result<PlanRanges, EvalError>>,
}

/// Where one schedule's routes and owner settings are in a [`BatchPart`].
type PlanRanges = (Range<usize>, Range<usize>);

impl<'a> BatchPart<'a> {
    fn plan(&self, i: usize) -> Option<Result<PlanView<'_, 'a>, &EvalError>> {
        Some(match self.plans.get(i)? {
            Ok((routes, owners)) => Ok(PlanView { routes: &self.routes[routes.clone()], owners: &self.owners[owners.clone()] }),
            Err(e) => Err(e),
        })
    }
}

impl<'a> PlanBatch<'a> {
    /// The number of schedules planned.
    pub fn len(&self) -> usize {
        self.parts.iter().map(|p| p.plans.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan of schedule `i` (in the order given), or the error that stopped it.
    pub fn get(&self, mut i: usize) -> Option<Result<PlanView<'_, 'a>, &EvalError>> {
        for part in &self.parts {
            if i < part.plans.len() {
                return part.plan(i);
            }
            i -= part.plans.len();
        }
        None
    }

    /// Every schedule's plan, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = Result<PlanView<'_, 'a>, &EvalError>> + '_ {
        self.parts.iter().flat_map(|part| (0..part.plans.len()).filter_map(move |i| part.plan(i)))
    }

    /// The number of routes decided (in the schedules that were not stopped by an error).
    pub fn route_count(&self) -> usize {
        self.iter().filter_map(Result::ok).map(|plan| plan.routes.len()).sum()
    }
}

/// The inputs the plan sets on the routing pack, per route.
pub(crate) const ROUTING_INPUTS: [&str; 5] = ["now", "schedule_id", "schedule_status", "owner", "provider"];
/// The decision the plan asks the routing pack for.
pub(crate) const ROUTE_DECISION: &str = "route";
/// The `with` fields of a route decision that the plan reads (any other is ignored).
pub(crate) const ROUTE_FIELDS: [&str; 5] = ["escalation_owner", "acknowledgement_minutes", "maintenance_window_id", "owner_availability", "suppressed_until"];

/// The routing program with its input slots resolved once.
pub struct Router<'p> {
    program: &'p Program,
    now: InputSlot,
    schedule_id: InputSlot,
    schedule_status: InputSlot,
    owner: InputSlot,
    provider: InputSlot,
}

impl<'p> Router<'p> {
    /// Fails with the name of a missing input when the pack does not declare
    /// the routing inputs (`now`, `schedule_id`, `schedule_status`, `owner`,
    /// `provider`) or the `route` decision.
    pub fn new(program: &'p Program) -> Result<Router<'p>, String> {
        let slot = |name: &str| program.input_slot(name).ok_or_else(|| format!("the routing pack has no input `{name}`"));
        program.decider(ROUTE_DECISION).map_err(|_| "the routing pack has no decision `route`")?;
        let [now, schedule_id, schedule_status, owner, provider] = ROUTING_INPUTS;
        Ok(Router {
            now: slot(now)?,
            schedule_id: slot(schedule_id)?,
            schedule_status: slot(schedule_status)?,
            owner: slot(owner)?,
            provider: slot(provider)?,
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
        let mut planned = PlannedRoutes { routes: Vec::with_capacity(schedule.route_count()), owners: Vec::with_capacity(schedule.owners.len()) };
        self.plan_into(&mut Worker::new(self.program, false), now, schedule, &mut planned.routes, &mut planned.owners)?;
        Ok(planned)
    }

    /// Appends one schedule's routes and owner settings.
    fn plan_into<'a>(
        &self,
        worker: &mut Worker<'p>,
        now: i64,
        schedule: &'a ScheduleRoutes,
        routes: &mut Vec<RouteDecision<'a>>,
        owners: &mut Vec<OwnerSettings<'a>>,
    ) -> Result<(), EvalError>
    where
        'p: 'a,
    {
        // The session keeps the owner's lets (route, calendar) across its providers.
        worker.session.set(self.now, Value::Time(now));
        // Each schedule's own texts are set once per schedule: not worth sharing.
        worker.session.set(self.schedule_id, Value::Text(schedule.schedule_id.clone()));
        worker.session.set(self.schedule_status, Value::Text(schedule.status.clone()));
        for owner in &schedule.owners {
            let text = worker.texts.get(&owner.owner);
            worker.session.set(self.owner, text);
            let first = routes.len();
            // The owner's providers in one call: the table row of the owner
            // is found once, and each provider is looked up in it.
            let providers = &owner.providers;
            worker
                .session
                .decide_each(ROUTE_DECISION, self.provider, providers, |i, outcome| routes.push(RouteDecision::new(outcome, &owner.owner, &providers[i])))?;
            let outcome = match routes.get(first) {
                Some(route) => route.outcome.clone(),
                None => {
                    // Every provider was filtered out: the settings do not
                    // depend on the provider, so ask the pack with none.
                    worker.session.set(self.provider, Value::text(""));
                    worker.session.decide_with(ROUTE_DECISION, |outcome| outcome.keep())?
                }
            };
            owners.push(OwnerSettings { owner: &owner.owner, outcome });
        }
        Ok(())
    }

    /// The routes of many schedules at `now`, split across the machine's
    /// cores. The program is shared; each thread has its own session, its
    /// own copies of the owner texts, and its own storage.
    /// Results are in the order of `schedules`, and the same as
    /// [`Router::plan`] gives for each.
    pub fn plan_all<'a>(&self, now: i64, schedules: &'a [ScheduleRoutes]) -> PlanBatch<'a>
    where
        'p: 'a,
    {
        let parts = crate::parallel::parallel_blocks(schedules, || Worker::new(self.program, true), |worker, block| self.plan_block(worker, now, block));
        PlanBatch { parts }
    }

    /// A block of [`Router::plan_all`]'s schedules, on the thread's worker,
    /// with one vector for all their routes.
    fn plan_block<'a>(&self, worker: &mut Worker<'p>, now: i64, block: &'a [ScheduleRoutes]) -> BatchPart<'a>
    where
        'p: 'a,
    {
        let mut part = BatchPart {
            routes: Vec::with_capacity(block.iter().map(ScheduleRoutes::route_count).sum()),
            owners: Vec::with_capacity(block.iter().map(|s| s.owners.len()).sum()),
            plans: Vec::with_capacity(block.len()),
        };
        for schedule in block {
            let (routes, owners) = (part.routes.len(), part.owners.len());
            match self.plan_into(worker, now, schedule, &mut part.routes, &mut part.owners) {
                Ok(()) => part.plans.push(Ok((routes..part.routes.len(), owners..part.owners.len()))),
                Err(e) => {
                    part.routes.truncate(routes);
                    part.owners.truncate(owners);
                    part.plans.push(Err(e));
                }
            }
        }
        part
    }
}

impl ScheduleRoutes {
    /// How many routes the schedule has: one per owner and routed provider.
    pub fn route_count(&self) -> usize {
        self.owners.iter().map(|o| o.providers.len()).sum()
    }
}

/// One thread's planning state: a session reused across schedules, and a
/// thread-local copy of each owner text it has set as an input (providers
/// are not set: `Session::decide_each` looks them up by their address).
struct Worker<'p> {
    session: Session<'p>,
    texts: LocalTexts,
}

impl<'p> Worker<'p> {
    /// `many`: the worker plans many schedules (outcomes and owner texts
    /// are worth remembering). Texts the session makes are not shared
    /// (`Session::share_texts`): the outcomes that repeat are remembered
    /// whole, and the ones made anew name one schedule each.
    fn new(program: &'p Program, many: bool) -> Worker<'p> {
        let session = if many { program.session().memoize_outcomes() } else { program.session() };
        Worker { session, texts: LocalTexts { copies: many.then(FxHashMap::default) } }
    }
}

/// Copies of the caller's texts for one thread. Owners and providers repeat
/// across schedules, so the threads would otherwise all write to the same
/// few reference counts, and the cores would queue for those cache lines.
struct LocalTexts {
    /// Keyed by the address of the caller's text, which outlives the worker;
    /// `None` for a single plan, where there is nothing to share.
    copies: Option<FxHashMap<*const u8, Value>>,
}

impl LocalTexts {
    fn get(&mut self, text: &Arc<str>) -> Value {
        match &mut self.copies {
            Some(copies) => copies.entry(text.as_ptr()).or_insert_with(|| Value::text(text)).clone(),
            None => Value::Text(text.clone()),
        }
    }
}

/// What a plan document says besides its routes.
pub struct PlanHeader<'a> {
    pub generated_at: &'a str,
    pub generated_by: &'a str,
    pub mode: &'a str,
    /// The schedule report's status.
    pub status: &'a ReadinessStatus,
    pub reason: &'a str,
    /// The drill's due time the notifications are about.
    pub episode: Option<&'a str>,
    pub policy_sources: &'a [String],
    pub policy_id: &'a str,
}

/// The plan record (README, "Notification plan"). Ids hash the content, including its
/// time, so a re-run at another time is a new plan and nothing is overwritten.
pub fn plan_document(header: &PlanHeader, request: &ScheduleRoutes, planned: PlanView) -> Plan {
    let owner_routes = planned
        .owners
        .iter()
        .zip(&request.owners)
        .map(|(settings, owner)| {
            let route = OwnerRoute {
                providers: owner.configured.iter().map(|p| p.to_string()).collect(),
                acknowledgement_minutes: minutes(settings.acknowledgement_minutes()),
                escalation_owner: text(settings.escalation_owner()),
            };
            (settings.owner.to_string(), route)
        })
        .collect();
    let alert_level = AlertLevel::of(header.status);
    // A healthy schedule's routes notify nobody: they have no notification.
    let healthy = alert_level == AlertLevel::Healthy && !planned.routes.iter().any(|r| r.action() == "deliver");
    let routes: Vec<RouteRecord> = planned
        .routes
        .iter()
        .map(|r| {
            let mut route = route_record(r, &request.schedule_id, header.generated_at, header.episode);
            if !healthy {
                route.notification_id = notification_id(&request.schedule_id, header.episode, alert_level, r.owner, r.provider);
                route.alert_level = Some(alert_level);
            }
            route
        })
        .collect();
    let count = |pred: &dyn Fn(&RouteDecision) -> bool| planned.routes.iter().filter(|r| pred(r)).count();
    let providers_where = |action: &str| -> Vec<String> {
        planned.routes.iter().filter(|r| r.action() == action).map(|r| r.provider()).collect::<BTreeSet<_>>().into_iter().map(String::from).collect()
    };
    let delivered = providers_where("deliver");
    let mut plan = Plan {
        schema_version: PLAN_SCHEMA.to_string(),
        schedule_id: request.schedule_id.to_string(),
        generated_at: header.generated_at.to_string(),
        generated_by: header.generated_by.to_string(),
        mode: header.mode.to_string(),
        status: header.status.clone(),
        alert_level,
        owner_routes: Ordered(owner_routes),
        deliverable_route_count: count(&|r| r.action() == "deliver"),
        suppressed_route_count: count(&|r| r.action() == "suppress"),
        maintenance_suppressed_count: count(&|r| r.category() == "maintenance_window"),
        calendar_suppressed_count: count(&|r| r.category() == "owner_calendar"),
        healthy_suppressed_count: count(&|r| r.category() == "healthy_schedule"),
        // Set once the id is made: it repeats what the routes say.
        suppressed_by_category: None,
        selected_providers: delivered.clone(),
        acknowledgement_required_providers: delivered,
        suppressed_providers: providers_where("suppress"),
        reason: header.reason.to_string(),
        episode: header.episode.map(String::from),
        policy_sources: header.policy_sources.to_vec(),
        policy_id: header.policy_id.to_string(),
        route_decisions: routes,
        plan_id: String::new(),
        pending_count: None,
        failed_count: None,
        stored: None,
    };

    // The routes' ids are hashes over their content with the plan's id in
    // it; each route's text is taken from the plan's (the id's) on the way.
    let (plan_id, route_ids) = record_id_and_element_ids(&plan, |hash| format!("plan_{hash}"), "route_decisions", "plan_id", "route_");
    plan.plan_id = plan_id;
    // Every category the pack produced, custom ones too (the named counts
    // above cover the bundled pack's three only).
    let mut by_category = BTreeMap::new();
    for route in planned.routes.iter().filter(|r| r.action() == "suppress") {
        *by_category.entry(route.category().to_string()).or_insert(0) += 1;
    }
    plan.suppressed_by_category = Some(by_category);
    let mut route_ids = route_ids.filter(|ids| ids.len() == plan.route_decisions.len()).map(Vec::into_iter);
    for route in &mut plan.route_decisions {
        route.plan_id = plan.plan_id.as_str().into();
        route.route_id = route_ids.as_mut().and_then(Iterator::next).unwrap_or_else(|| format!("route_{}", content_hash(route)).into());
    }
    plan
}

/// The record of a route decision made at `created_at` (RFC 3339), before
/// its notification, plan and route ids are known.
pub fn route_record(r: &RouteDecision, schedule_id: &str, created_at: &str, episode: Option<&str>) -> RouteRecord {
    RouteRecord {
        schedule_id: schedule_id.into(),
        owner: r.owner().into(),
        escalation_owner: text(r.escalation_owner()),
        provider: r.provider().into(),
        action: r.action().into(),
        category: r.category().into(),
        acknowledgement_minutes: minutes(r.acknowledgement_minutes()),
        reason: text(r.reason()),
        maintenance_window_id: text(r.maintenance_window_id()),
        owner_availability: text(r.owner_availability()),
        created_at: created_at.into(),
        episode: episode.map(Text::from),
        suppressed_until: match r.suppressed_until() {
            Value::Time(t) => Some(cavra_engine::time::format_time(*t).into()),
            _ => None,
        },
        notification_id: Text::default(),
        escalates: None,
        alert_level: None,
        plan_id: Text::default(),
        route_id: Text::default(),
        recorded_at: None,
    }
}

/// A pack's text value, or none (null, or a pack that gave something else).
fn text<T: for<'t> From<&'t str>>(value: &Value) -> Option<T> {
    value.as_text().map(T::from)
}

fn minutes(value: &Value) -> Option<Minutes> {
    match value {
        Value::Number(n) => Some(Minutes(*n)),
        _ => None,
    }
}

// `Router` is shared by reference across the threads of `plan_all`.
const _: () = {
    const fn shared<T: Sync>() {}
    shared::<Router<'static>>();
};

#[cfg(test)]
mod tests {
    use super::*;

    /// A routing pack whose decision fails for the owner `broken`.
    const PACK: &str = r#"
pack routing_with_a_fault
input now: time
input schedule_id: text
input schedule_status: text
input owner: text
input provider: text
decision route {
  when owner == "broken" and len(schedule_id) / 0 > 1 => suppress never
  otherwise => deliver reason "notify {owner} on {provider}" with { escalation_owner: owner, acknowledgement_minutes: 30 }
}
"#;

    fn schedule(id: &str, owners: &[&str]) -> ScheduleRoutes {
        let providers: Vec<Arc<str>> = vec![Arc::from("slack"), Arc::from("teams")];
        ScheduleRoutes {
            schedule_id: Arc::from(id),
            status: Arc::from("due_soon"),
            // `quiet` has every provider filtered out (`--provider`): no routes, only settings.
            owners: owners
                .iter()
                .map(|o| OwnerProviders {
                    owner: Arc::from(*o),
                    configured: providers.clone(),
                    providers: if *o == "quiet" { Vec::new() } else { providers.clone() },
                })
                .collect(),
        }
    }

    /// A batch holds one route per owner and provider (90,000 in the plan
    /// benchmark): a route keeps pointers into the program and the
    /// request, not values (about 200 bytes when it kept six of them).
    #[test]
    fn a_route_decision_is_a_few_pointers() {
        let size = std::mem::size_of::<RouteDecision<'static>>();
        assert!(size <= 40, "RouteDecision is {size} bytes");
    }

    #[test]
    fn a_failing_schedule_stops_only_itself_and_its_neighbours_keep_their_routes() {
        let program = cavra_engine::compile("fault.cavra", PACK).unwrap().bind(&Default::default()).unwrap();
        let router = Router::new(&program).unwrap();
        let schedules: Vec<ScheduleRoutes> = (0..40)
            .map(|i| match i {
                _ if i % 7 == 3 => schedule(&format!("s{i}"), &["ops", "broken"]),
                _ if i % 5 == 0 => schedule(&format!("s{i}"), &["ops", "quiet", "release"]),
                _ => schedule(&format!("s{i}"), &["ops", "release"]),
            })
            .collect();
        let batch = router.plan_all(0, &schedules);
        assert_eq!(batch.len(), schedules.len());
        let mut failed = 0;
        for (i, (s, planned)) in schedules.iter().zip(batch.iter()).enumerate() {
            let single = router.plan(0, s);
            match (planned, single) {
                (Ok(view), Ok(single)) => {
                    assert_eq!(format!("{:?}", view.routes), format!("{:?}", single.routes), "schedule {i}");
                    assert_eq!(format!("{:?}", view.owners), format!("{:?}", single.owners), "schedule {i}");
                    assert_eq!(view.routes.len(), 4);
                    assert_eq!(view.owners.len(), s.owners.len());
                    if let Some(quiet) = view.owners.iter().find(|o| o.owner() == "quiet") {
                        assert_eq!(quiet.escalation_owner().as_text(), Some("quiet"));
                        assert_eq!(*quiet.acknowledgement_minutes(), Value::Number(30.0));
                    }
                    assert_eq!(view.routes[1].reason().as_text(), Some(&*format!("notify {} on teams", view.routes[1].owner())));
                }
                (Err(e), Err(single)) => {
                    assert_eq!(*e, single, "schedule {i}");
                    assert!(e.message.contains("division by zero"), "{}", e.message);
                    failed += 1;
                }
                (batched, single) => panic!("schedule {i}: batched {batched:?}, alone {single:?}"),
            }
        }
        assert_eq!(failed, 6);
        assert_eq!(batch.route_count(), (schedules.len() - failed) * 4);
        assert!(batch.get(schedules.len()).is_none());
    }
}
