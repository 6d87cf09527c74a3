//! The notification lifecycle (README, "Notification lifecycle"): the state of
//! each notification as of an instant, derived from everything recorded
//! about it up to then (its newest route decision, its delivery attempts,
//! the acknowledgements that answer it, later plans of its schedule, its
//! successors). This module gathers those raw facts; `rules/escalation.cavra`
//! decides the state and the recommended action. Nothing is written here.

use crate::error::AppError;
use crate::packs::{BoundPack, PackSource};
use crate::records::{Acknowledgement, AlertLevel, DeliveryAttempt, LastAttempt, NotificationKind, Plan, RouteRecord};
use crate::store::History;
use cavra_engine::{InputSlot, Value};
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::rc::Rc;

pub(crate) const ESCALATION_PACK: &str = "escalation.cavra";
/// The decision the lifecycle asks the escalation pack for; its `with` fields `outstanding` and `breached` (bools) are read.
pub(crate) const ESCALATION_DECISION: &str = "escalation";
/// Minutes to acknowledge when neither the route nor an override says.
const DEFAULT_MINUTES: f64 = 60.0;
/// The states of a notification that still needs something to happen.
pub const OPEN_STATES: &[&str] = &["suppressed", "pending_delivery", "delivery_failed", "outstanding", "breached"];

/// The state of a notification whose stored facts could not be decided: listed, with its problem.
pub const UNKNOWN_STATE: &str = "unknown";

/// Whether a notification in `state` still needs something to happen (an
/// undecidable one is kept open, so it is never hidden).
fn is_open(state: &str) -> bool {
    OPEN_STATES.contains(&state) || state == UNKNOWN_STATE
}

/// One notification (or escalation) and its state as of the lifecycle's instant.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The newest route decision about it.
    pub route: RouteRecord,
    pub alert_level: AlertLevel,
    /// `closed`, `acknowledged`, ..., `pending_delivery` (the pack's category).
    pub state: String,
    /// The pack's action (`deliver_notification`, `retry_failed_delivery`, ...).
    pub recommended_action: String,
    pub reason: Option<String>,
    pub outstanding: bool,
    pub breached: bool,
    /// The first successful delivery (microseconds).
    pub delivered_at: Option<i64>,
    /// Frozen at the first successful delivery (unless overridden).
    pub acknowledgement_minutes: f64,
    pub escalation_owner: String,
    pub acknowledgement_state: Option<String>,
    pub last_attempt: Option<DeliveryAttempt>,
    /// What was wrong with its stored facts, when something was.
    pub problem: Option<String>,
}

impl Entry {
    pub fn id(&self) -> &str {
        &self.route.notification_id
    }

    pub fn kind(&self) -> NotificationKind {
        self.route.kind()
    }

    pub fn is_open(&self) -> bool {
        is_open(&self.state)
    }

    /// `{at, outcome, status_code}` of the last attempt.
    pub fn last_attempt_summary(&self) -> Option<LastAttempt> {
        self.last_attempt.as_ref().map(|a| LastAttempt { at: a.at.clone(), outcome: a.record.outcome.as_str().to_string(), status_code: a.record.status_code })
    }
}

/// Every notification of the history and its state at `at`, in a stable
/// order (schedule, episode, owner, provider; escalations after the rest).
pub struct Lifecycle {
    pub at: i64,
    pub entries: Vec<Entry>,
}

impl Lifecycle {
    /// The notifications still open.
    pub fn open(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.is_open())
    }

    pub fn get(&self, notification_id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id() == notification_id)
    }

    /// How many of a schedule's notifications are in `state`.
    pub fn count(&self, schedule_id: &str, state: &str) -> usize {
        self.entries.iter().filter(|e| e.route.schedule_id == schedule_id && e.state == state).count()
    }
}

/// Re-resolves a notification's acknowledgement minutes and escalation owner.
pub type Resolve<'a> = &'a dyn Fn(&RouteRecord) -> Result<(Option<f64>, Option<String>), AppError>;

/// Settings that change how the lifecycle is derived.
#[derive(Default)]
pub struct Options<'a> {
    /// Minutes to acknowledge, for every notification (`--acknowledgement-minutes`).
    pub acknowledgement_minutes: Option<f64>,
    /// The escalation plan's `--routing-policy`.
    pub resolve: Option<Resolve<'a>>,
}

/// Adds a plan not stored yet (a dry run, or one about to be stored) to a
/// history, as the store would hold it: each of its route decisions becomes
/// its notification's newest, and a healthy plan closes what came before it.
pub fn with_plan(history: &mut History, plan: &Plan) {
    with_plans(history, std::slice::from_ref(plan));
}

/// [`with_plan`] of each plan in turn, in one pass over the history (a
/// batch of plans adds tens of thousands of routes to it).
pub fn with_plans(history: &mut History, plans: &[Plan]) {
    let newest = Newest::of(plans);
    history.routes.retain(|r| !newest.places.contains_key(r.notification_id.as_str()));
    history.routes.extend(newest.routes.into_iter().cloned());
    add_healthy(&mut history.healthy_plans, plans, String::from);
}

/// A history's records by reference, as the lifecycle reads them. A batch
/// adds its plans to the stored history ([`HistoryView::with_plans`]) and
/// splits it by schedule across the cores without copying a record: a
/// batch of 10,000 plans has 90,000 route records of a dozen texts each.
#[derive(Clone, Debug, Default)]
pub struct HistoryView<'h> {
    /// The newest route decision about each notification (and escalation).
    pub routes: Vec<&'h RouteRecord>,
    /// Every delivery attempt, in the order they were made.
    pub attempts: Vec<&'h DeliveryAttempt>,
    /// Every acknowledgement, newest first.
    pub acknowledgements: Vec<&'h Acknowledgement>,
    /// Per schedule, the time of its newest healthy plan (microseconds).
    pub healthy_plans: Vec<(&'h str, i64)>,
}

impl<'h> HistoryView<'h> {
    pub fn of(history: &'h History) -> HistoryView<'h> {
        HistoryView {
            routes: history.routes.iter().collect(),
            attempts: history.attempts.iter().collect(),
            acknowledgements: history.acknowledgements.iter().collect(),
            healthy_plans: history.healthy_plans.iter().map(|(schedule, at)| (schedule.as_str(), *at)).collect(),
        }
    }

    /// [`with_plans`], with the plans' routes borrowed instead of copied.
    pub fn with_plans(&mut self, plans: &[&'h Plan]) {
        let newest = Newest::of(plans.iter().copied());
        self.routes.retain(|r| !newest.places.contains_key(r.notification_id.as_str()));
        self.routes.extend(newest.routes);
        add_healthy(&mut self.healthy_plans, plans.iter().copied(), |schedule| schedule);
    }
}

/// The route decisions of some plans that become their notifications'
/// newest (the last about each notification, plan by plan).
struct Newest<'p> {
    /// In the order the notifications first appear (the plans' own order,
    /// where a hash map's would differ from run to run).
    routes: Vec<&'p RouteRecord>,
    /// Each notification's place in `routes`.
    places: FxHashMap<&'p str, usize>,
}

impl<'p> Newest<'p> {
    fn of<I: IntoIterator<Item = &'p Plan>>(plans: I) -> Newest<'p>
    where
        I::IntoIter: Clone,
    {
        let plans = plans.into_iter();
        let count = plans.clone().map(|p| p.route_decisions.len()).sum();
        let mut newest = Newest { routes: Vec::with_capacity(count), places: FxHashMap::with_capacity_and_hasher(count, Default::default()) };
        for route in plans.flat_map(|p| &p.route_decisions).filter(|r| !r.notification_id.is_empty()) {
            match newest.places.entry(route.notification_id.as_str()) {
                std::collections::hash_map::Entry::Occupied(place) => newest.routes[*place.get()] = route,
                std::collections::hash_map::Entry::Vacant(place) => {
                    place.insert(newest.routes.len());
                    newest.routes.push(route);
                }
            }
        }
        newest
    }
}

/// A healthy plan among `plans` closes what came before it: its schedule's
/// newest healthy time becomes the plan's, when later.
fn add_healthy<'p, S: std::borrow::Borrow<str>>(healthy: &mut Vec<(S, i64)>, plans: impl IntoIterator<Item = &'p Plan>, schedule: impl Fn(&'p str) -> S) {
    let mut places: FxHashMap<String, usize> = healthy.iter().enumerate().map(|(i, (s, _))| (s.borrow().to_string(), i)).collect();
    for plan in plans {
        let (true, Some(at)) = (plan.is_healthy(), micros(&plan.generated_at)) else { continue };
        match places.get(plan.schedule_id.as_str()) {
            Some(&i) => healthy[i].1 = healthy[i].1.max(at),
            None => {
                places.insert(plan.schedule_id.clone(), healthy.len());
                healthy.push((schedule(&plan.schedule_id), at));
            }
        }
    }
}

/// Decides the state of every notification of `history` at `at`.
pub fn derive(packs: &PackSource, history: &History, at: i64, options: &Options) -> Result<Lifecycle, AppError> {
    let mut entries: Vec<Entry> = Vec::with_capacity(history.routes.len());
    decide_each(packs, &HistoryView::of(history), at, options, |decision| {
        let Decision { route, alert_level, decided, delivered_at, minutes, escalation_owner, ack, last, problem } = decision;
        let decided = Rc::unwrap_or_clone(decided);
        entries.push(Entry {
            route: route.clone(),
            alert_level,
            state: decided.state,
            recommended_action: decided.action,
            reason: decided.reason,
            outstanding: decided.outstanding,
            breached: decided.breached,
            delivered_at,
            acknowledgement_minutes: minutes,
            escalation_owner: escalation_owner.into_owned(),
            acknowledgement_state: ack.map(|a| a.acknowledgement_state.clone()),
            last_attempt: last.cloned(),
            problem,
        });
    })?;
    Ok(Lifecycle { at, entries })
}

/// The state of every notification of `history` at `at`, as [`derive`]
/// decides it, without making its entry: `each` gets the route (the newest
/// decision about the notification) and the state. Counting a batch's open
/// notifications needs no more, and copies nothing.
pub fn states<'h>(packs: &PackSource, history: &HistoryView<'h>, at: i64, mut each: impl FnMut(&'h RouteRecord, &str)) -> Result<(), AppError> {
    decide_each(packs, history, at, &Options::default(), |decision| each(decision.route, &decision.decided.state))
}

/// One notification as decided, before [`derive`] makes its entry.
struct Decision<'h> {
    route: &'h RouteRecord,
    alert_level: AlertLevel,
    /// Shared with the decider's memo: a batch's notifications repeat a few outcomes.
    decided: Rc<Decided>,
    delivered_at: Option<i64>,
    minutes: f64,
    escalation_owner: Cow<'h, str>,
    ack: Option<&'h Acknowledgement>,
    last: Option<&'h DeliveryAttempt>,
    problem: Option<String>,
}

/// Decides every notification of `history` at `at` in a stable order
/// (schedule, episode, owner, provider; escalations after the rest), each
/// handed to `each` as it is decided.
fn decide_each<'h>(packs: &PackSource, history: &HistoryView<'h>, at: i64, options: &Options, mut each: impl FnMut(Decision<'h>)) -> Result<(), AppError> {
    let pack = packs.bind(ESCALATION_PACK)?;
    let mut decider = Decider::new(&pack, at)?;
    let routes = lifecycle_order(&history.routes);
    let mut attempts: FxHashMap<&str, Vec<&DeliveryAttempt>> = FxHashMap::default();
    for &attempt in &history.attempts {
        attempts.entry(attempt.notification_id.as_str()).or_default().push(attempt);
    }
    let first_success = |id: &str| attempts.get(id).and_then(|list| list.iter().find(|a| a.record.is_delivered()).copied());
    let acks = Answers::new(&history.acknowledgements);
    let healthy: FxHashMap<&str, i64> = history.healthy_plans.iter().copied().collect();
    // The notifications to the same owner on the same provider of a schedule
    // that were delivered: a successor is among them (one never delivered
    // supersedes nothing, and a fresh batch has no deliveries at all).
    let mut siblings: FxHashMap<(&str, &str, &str), Vec<&RouteRecord>> = FxHashMap::default();
    for &route in history.routes.iter().filter(|r| r.escalates.is_none() && first_success(&r.notification_id).is_some()) {
        siblings.entry((&route.schedule_id, &route.owner, &route.provider)).or_default().push(route);
    }

    // Whether each notification decided so far is open (an escalation of a
    // closed one is closed too); kept only when an escalation will ask.
    let escalations = routes.iter().any(|r| r.escalates.is_some());
    let mut open: FxHashMap<&str, bool> = FxHashMap::with_capacity_and_hasher(if escalations { routes.len() } else { 0 }, Default::default());
    let (mut planned_at, mut suppressed_until) = (LastTime::default(), LastTime::default());
    for route in routes {
        let id = route.notification_id.as_str();
        let alert_level = route.alert_level.unwrap_or(AlertLevel::Warning);
        let first = first_success(id);
        let delivered_at = first.and_then(|a| micros(&a.at));
        let last = attempts.get(id).and_then(|list| list.last().copied());
        let mut minutes = first.and_then(|a| a.acknowledgement_minutes).or(route.acknowledgement_minutes).map_or(DEFAULT_MINUTES, |m| m.0);
        let mut escalation_owner: Cow<'h, str> = match first.and_then(|a| a.escalation_owner.as_deref()) {
            Some(owner) => Cow::Borrowed(owner),
            None => Cow::Borrowed(route.escalation_owner_or_owner()),
        };
        if let Some(resolve) = options.resolve {
            let (m, e) = resolve(route)?;
            minutes = m.unwrap_or(minutes);
            escalation_owner = e.map_or(escalation_owner, Cow::Owned);
        }
        if let Some(m) = options.acknowledgement_minutes {
            minutes = m;
        }
        // A stored value this build would refuse (written before it checked
        // them, or by hand) is reported on its entry, never fails the whole read.
        let mut problem = crate::policy::acknowledgement_minutes_problem(minutes).map(|p| {
            minutes = DEFAULT_MINUTES;
            format!("stored acknowledgement_minutes: {p}; {DEFAULT_MINUTES} used")
        });
        let ack = delivered_at.and_then(|delivered| acks.answering(route, first, delivered));
        let planned_at = planned_at.parse(&route.created_at).unwrap_or(i64::MIN);
        let facts = Facts {
            kind: route.kind(),
            latest_action: &route.action,
            suppressed_until: route.suppressed_until.as_deref().and_then(|t| suppressed_until.parse(t)),
            delivered_at,
            last_attempt_failed: last.is_some_and(|a| a.failed_for_good()),
            acknowledgement: ack.map(|a| (a.acknowledgement_state.as_str(), micros(&a.created_at).unwrap_or(at))),
            closed_by_healthy_plan: healthy.get(route.schedule_id.as_str()).is_some_and(|&t| t > planned_at),
            superseded: siblings
                .get(&(route.schedule_id.as_str(), route.owner.as_str(), route.provider.as_str()))
                .is_some_and(|others| others.iter().any(|other| succeeds(other, route))),
            escalated_notification_closed: route.escalates.as_ref().is_some_and(|parent| open.get(parent.as_str()).is_none_or(|open| !open)),
            minutes,
            owner: &route.owner,
            escalation_owner: &escalation_owner,
        };
        let decided = decider.decide(&facts).unwrap_or_else(|e| {
            problem = Some(e.to_string());
            Rc::new(Decided {
                state: UNKNOWN_STATE.into(),
                action: "no_action".into(),
                reason: Some("its stored facts could not be decided".into()),
                outstanding: false,
                breached: false,
            })
        });
        if escalations {
            open.insert(id, is_open(&decided.state));
        }
        each(Decision { route, alert_level, decided, delivered_at, minutes, escalation_owner, ack, last, problem });
    }
    Ok(())
}

/// `routes` in the lifecycle's order: escalations after the rest, then by
/// schedule, episode, owner, provider and id (a stable sort by those keys).
/// The routes are first put in buckets by escalation and schedule, in one
/// pass, and each bucket (one schedule's few notifications) is sorted on
/// its own: a batch of 90,000 routes sorted whole compared a million pairs
/// of texts, about a quarter of deriving its lifecycle.
fn lifecycle_order<'h>(routes: &[&'h RouteRecord]) -> Vec<&'h RouteRecord> {
    let mut schedules: Vec<&str> = routes.iter().map(|r| r.schedule_id.as_str()).collect();
    // Neighbours first: a plan's routes are side by side.
    schedules.dedup();
    schedules.sort_unstable();
    schedules.dedup();
    let rank: FxHashMap<&str, usize> = schedules.iter().enumerate().map(|(i, &s)| (s, i)).collect();
    let buckets: Vec<usize> = routes.iter().map(|r| usize::from(r.escalates.is_some()) * schedules.len() + rank[r.schedule_id.as_str()]).collect();
    // Where each bucket starts, then a counting sort into them (stable).
    let mut starts = vec![0; 2 * schedules.len() + 1];
    for &bucket in &buckets {
        starts[bucket + 1] += 1;
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut next = starts.clone();
    let mut ordered = routes.to_vec();
    for (&route, &bucket) in routes.iter().zip(&buckets) {
        let place = &mut next[bucket];
        ordered[*place] = route;
        *place += 1;
    }
    for bucket in starts.windows(2) {
        ordered[bucket[0]..bucket[1]]
            .sort_by(|a, b| (&a.episode, &a.owner, &a.provider, &a.notification_id).cmp(&(&b.episode, &b.owner, &b.provider, &b.notification_id)));
    }
    ordered
}

/// A history's acknowledgements found by what they answer, each with its
/// place in the history (newest first): those that name notifications under
/// each id they name, the older ones that name none under their schedule and
/// provider. A batch decides tens of thousands of notifications against
/// every acknowledgement of its schedules; each looks up its own.
struct Answers<'h> {
    named: FxHashMap<&'h str, Vec<(usize, &'h Acknowledgement)>>,
    unnamed: FxHashMap<(&'h str, &'h str), Vec<(usize, &'h Acknowledgement)>>,
}

impl<'h> Answers<'h> {
    fn new(acks: &[&'h Acknowledgement]) -> Answers<'h> {
        let mut answers = Answers { named: FxHashMap::default(), unnamed: FxHashMap::default() };
        for (place, &ack) in acks.iter().enumerate() {
            match &ack.notification_ids {
                Some(ids) => ids.iter().for_each(|id| answers.named.entry(id.as_str()).or_default().push((place, ack))),
                None => answers.unnamed.entry((ack.schedule_id.as_str(), ack.provider.as_str())).or_default().push((place, ack)),
            }
        }
        answers
    }

    /// The newest acknowledgement that answers the notification, made at or
    /// after its first successful delivery. Acknowledgements name the
    /// notifications they answer; older ones, made before notifications had
    /// ids, answer every notification of their schedule and provider (and
    /// their plan, when they name one).
    fn answering(&self, route: &RouteRecord, first: Option<&DeliveryAttempt>, delivered: i64) -> Option<&'h Acknowledgement> {
        let named = self.named.get(route.notification_id.as_str()).into_iter().flatten();
        let unnamed = self
            .unnamed
            .get(&(route.schedule_id.as_str(), route.provider.as_str()))
            .into_iter()
            .flatten()
            .filter(|(_, a)| a.plan_id.as_ref().is_none_or(|p| first.is_some_and(|f| f.record.plan_id == *p)));
        named.chain(unnamed).filter(|(_, a)| micros(&a.created_at).is_some_and(|t| t >= delivered)).min_by_key(|(place, _)| *place).map(|(_, a)| *a)
    }
}

/// Whether `later` succeeds `earlier`, a notification to the same owner on
/// the same provider of the same schedule: a later episode, or the same
/// episode at a higher alert level. Escalations have no successors.
pub(crate) fn succeeds(later: &RouteRecord, earlier: &RouteRecord) -> bool {
    if later.notification_id == earlier.notification_id || later.escalates.is_some() || earlier.escalates.is_some() {
        return false;
    }
    let level = |r: &RouteRecord| rank(r.alert_level.unwrap_or(AlertLevel::Warning));
    match (later.episode.as_deref().and_then(micros), earlier.episode.as_deref().and_then(micros)) {
        (Some(theirs), Some(ours)) => theirs > ours || (theirs == ours && level(later) > level(earlier)),
        (None, None) => level(later) > level(earlier),
        _ => false,
    }
}

fn rank(level: AlertLevel) -> u8 {
    match level {
        AlertLevel::Healthy => 0,
        AlertLevel::Warning => 1,
        AlertLevel::Critical => 2,
    }
}

pub(crate) fn micros(text: &str) -> Option<i64> {
    cavra_engine::time::parse_time(text).ok()
}

/// The last time text read and its value: once sorted, a plan's routes
/// are side by side and share their `created_at` (and often their
/// `suppressed_until`), so most reads repeat the one before.
#[derive(Default)]
struct LastTime<'h> {
    text: &'h str,
    at: Option<i64>,
}

impl<'h> LastTime<'h> {
    fn parse(&mut self, text: &'h str) -> Option<i64> {
        if text != self.text {
            *self = LastTime { text, at: micros(text) };
        }
        self.at
    }
}

/// The raw facts of one notification, as the escalation pack takes them.
struct Facts<'a> {
    kind: NotificationKind,
    latest_action: &'a str,
    suppressed_until: Option<i64>,
    delivered_at: Option<i64>,
    last_attempt_failed: bool,
    acknowledgement: Option<(&'a str, i64)>,
    closed_by_healthy_plan: bool,
    superseded: bool,
    escalated_notification_closed: bool,
    minutes: f64,
    owner: &'a str,
    escalation_owner: &'a str,
}

impl Facts<'_> {
    /// Every fact in bytes, each text after its length, each optional value
    /// after whether it is there: two notifications with the same key are
    /// decided alike.
    fn key(&self, key: &mut Vec<u8>) {
        // Named one by one (no `..`): a fact added to `Facts` must be added here.
        let Facts {
            kind,
            latest_action,
            suppressed_until,
            delivered_at,
            last_attempt_failed,
            acknowledgement,
            closed_by_healthy_plan,
            superseded,
            escalated_notification_closed,
            minutes,
            owner,
            escalation_owner,
        } = *self;
        let time = |key: &mut Vec<u8>, t: Option<i64>| {
            key.push(u8::from(t.is_some()));
            key.extend_from_slice(&t.unwrap_or_default().to_le_bytes());
        };
        for text in [kind.as_str(), latest_action, acknowledgement.map_or("", |(state, _)| state), owner, escalation_owner] {
            key.extend_from_slice(&text.len().to_le_bytes());
            key.extend_from_slice(text.as_bytes());
        }
        time(key, suppressed_until);
        time(key, delivered_at);
        time(key, acknowledgement.map(|(_, at)| at));
        key.extend([last_attempt_failed, closed_by_healthy_plan, superseded, escalated_notification_closed].map(u8::from));
        key.extend_from_slice(&minutes.to_bits().to_le_bytes());
    }
}

#[derive(Clone)]
struct Decided {
    state: String,
    action: String,
    reason: Option<String>,
    outstanding: bool,
    breached: bool,
}

/// The escalation pack with its input slots resolved once, and what it
/// decided for each set of facts: the notifications of a batch repeat a
/// few sets (a fresh plan's are undelivered, unacknowledged, due alike),
/// and a decision is a function of its inputs.
struct Decider<'p> {
    pack: &'p BoundPack,
    slots: [InputSlot; 14],
    at: i64,
    decided: FxHashMap<Vec<u8>, Rc<Decided>>,
    /// Scratch for the key of the facts being decided.
    key: Vec<u8>,
}

/// The inputs the lifecycle sets on the escalation pack, per notification.
pub(crate) const ESCALATION_INPUTS: [&str; 14] = [
    "now",
    "kind",
    "latest_action",
    "suppressed_until",
    "delivered_at",
    "last_attempt_failed",
    "acknowledgement_state",
    "acknowledged_at",
    "closed_by_healthy_plan",
    "superseded",
    "escalated_notification_closed",
    "acknowledgement_minutes",
    "owner",
    "escalation_owner",
];

impl<'p> Decider<'p> {
    fn new(pack: &'p BoundPack, at: i64) -> Result<Decider<'p>, AppError> {
        Ok(Decider { pack, slots: pack.slots(ESCALATION_INPUTS)?, at, decided: FxHashMap::default(), key: Vec::new() })
    }

    fn decide(&mut self, facts: &Facts) -> Result<Rc<Decided>, AppError> {
        self.key.clear();
        facts.key(&mut self.key);
        if let Some(decided) = self.decided.get(self.key.as_slice()) {
            return Ok(decided.clone());
        }
        let decided = Rc::new(self.decide_now(facts)?);
        self.decided.insert(self.key.clone(), decided.clone());
        Ok(decided)
    }

    fn decide_now(&self, facts: &Facts) -> Result<Decided, AppError> {
        let time = |t: Option<i64>| t.map(Value::Time).unwrap_or_default();
        let values = [
            Value::Time(self.at),
            Value::text(facts.kind.as_str()),
            Value::text(facts.latest_action),
            time(facts.suppressed_until),
            time(facts.delivered_at),
            Value::Bool(facts.last_attempt_failed),
            facts.acknowledgement.map(|(state, _)| Value::text(state)).unwrap_or_default(),
            time(facts.acknowledgement.map(|(_, t)| t)),
            Value::Bool(facts.closed_by_healthy_plan),
            Value::Bool(facts.superseded),
            Value::Bool(facts.escalated_notification_closed),
            Value::Number(facts.minutes),
            Value::text(facts.owner),
            Value::text(facts.escalation_owner),
        ];
        let mut inputs = self.pack.inputs();
        for (slot, value) in self.slots.iter().zip(values) {
            inputs.set(*slot, value);
        }
        let outcome = self.pack.decide(ESCALATION_DECISION, &inputs)?;
        let flag = |name: &str| matches!(outcome.field(name), Some(Value::Bool(true)));
        Ok(Decided {
            state: outcome.category.to_string(),
            action: outcome.action.to_string(),
            reason: outcome.reason().and_then(Value::as_text).map(String::from),
            outstanding: flag("outstanding"),
            breached: flag("breached"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(id: &str, episode: &str, level: AlertLevel) -> RouteRecord {
        serde_json::from_value(serde_json::json!({
            "schedule_id": "s", "owner": "o", "escalation_owner": null, "provider": "teams", "action": "deliver", "category": "deliver",
            "acknowledgement_minutes": 30, "reason": null, "maintenance_window_id": null, "owner_availability": null,
            "created_at": "2026-05-21T19:00:00Z", "episode": episode, "notification_id": id, "alert_level": level,
        }))
        .unwrap()
    }

    #[test]
    fn the_lifecycle_order_is_a_stable_sort_by_escalation_schedule_episode_owner_provider_and_id() {
        // Routes in a scrambled order (a step coprime with the count), with
        // escalations, routes without an episode, and pairs that tie on
        // every key (told apart by their place, which a stable sort keeps).
        let mut records: Vec<RouteRecord> = (0..120)
            .map(|i| {
                let mut r = route(&format!("ntf_{}", i % 37), ["2026-05-21T00:00:00Z", "2026-05-28T00:00:00Z"][i % 2], AlertLevel::Warning);
                r.schedule_id = format!("s{}", (i * 7) % 11).into();
                r.owner = format!("o{}", i % 3).into();
                r.provider = ["teams", "slack", "email"][i % 5 % 3].into();
                r.episode = (i % 13 != 0).then(|| r.episode.clone().unwrap_or_default());
                r.escalates = (i % 9 == 0).then(|| "ntf_0".into());
                r
            })
            .collect();
        records.extend(records.clone());
        let routes: Vec<&RouteRecord> = (0..records.len()).map(|i| &records[(i * 101) % records.len()]).collect();
        let mut expected = routes.clone();
        expected.sort_by(|a, b| {
            (a.escalates.is_some(), &a.schedule_id, &a.episode, &a.owner, &a.provider, &a.notification_id).cmp(&(
                b.escalates.is_some(),
                &b.schedule_id,
                &b.episode,
                &b.owner,
                &b.provider,
                &b.notification_id,
            ))
        });
        let ordered = lifecycle_order(&routes);
        assert!(ordered.iter().zip(&expected).all(|(a, b)| std::ptr::eq(*a, *b)), "the same routes in the same places");
        assert_eq!(ordered.len(), expected.len());
        assert!(lifecycle_order(&[]).is_empty());
    }

    #[test]
    fn the_answering_acknowledgement_is_the_newest_match_after_delivery_as_a_scan_of_all_finds_it() {
        // Acknowledgements newest first, as the store lists them: named ones
        // (of one notification or several), older unnamed ones (some scoped
        // to a plan), for two providers, before and after the delivery.
        let acks: Vec<Acknowledgement> = (0..48)
            .map(|i| {
                let ids = match i % 4 {
                    0 => Some(vec![format!("ntf_{}", i % 3)]),
                    1 => Some(vec!["ntf_0".to_string(), format!("ntf_{}", 1 + i % 2)]),
                    _ => None,
                };
                serde_json::from_value(serde_json::json!({
                    "schema_version": "v1", "schedule_id": if i % 7 == 0 { "other" } else { "s" },
                    "provider": if i % 5 == 0 { "slack" } else { "teams" }, "acknowledged_by": "lead",
                    "acknowledgement_state": format!("state_{i}"), "plan_id": if i % 6 == 3 { Some("plan_x") } else { None },
                    "external_ref": null, "notes": null, "created_at": format!("2026-05-21T{:02}:00:00Z", 23 - i / 2),
                    "notification_ids": ids,
                }))
                .unwrap()
            })
            .collect();
        let scan = |route: &RouteRecord, delivered: i64| {
            acks.iter()
                .filter(|a| match &a.notification_ids {
                    Some(ids) => ids.iter().any(|id| *id == route.notification_id),
                    None => a.schedule_id == route.schedule_id && a.provider == route.provider && a.plan_id.is_none(),
                })
                .find(|a| micros(&a.created_at).is_some_and(|t| t >= delivered))
        };
        let listed: Vec<&Acknowledgement> = acks.iter().collect();
        let answers = Answers::new(&listed);
        let mut found = 0;
        for id in ["ntf_0", "ntf_1", "ntf_2", "ntf_9"] {
            for provider in ["teams", "slack"] {
                for hour in [0, 5, 12, 20, 23] {
                    let route = RouteRecord { provider: provider.into(), ..route(id, "2026-05-30T15:40:00Z", AlertLevel::Warning) };
                    let delivered = micros(&format!("2026-05-21T{hour:02}:30:00Z")).unwrap();
                    let expected = scan(&route, delivered).map(|a| &a.acknowledgement_state);
                    assert_eq!(answers.answering(&route, None, delivered).map(|a| &a.acknowledgement_state), expected, "{id} {provider} {hour}");
                    found += usize::from(expected.is_some());
                }
            }
        }
        assert!(found > 10, "most notifications have an answer: {found}");
    }

    #[test]
    fn a_successor_has_a_later_episode_or_the_same_one_at_a_higher_level() {
        let warning = route("ntf_a", "2026-05-30T15:40:00Z", AlertLevel::Warning);
        let critical = route("ntf_b", "2026-05-30T15:40:00Z", AlertLevel::Critical);
        let next_month = route("ntf_c", "2026-06-29T15:40:00+00:00", AlertLevel::Warning);
        assert!(succeeds(&critical, &warning) && !succeeds(&warning, &critical));
        assert!(succeeds(&next_month, &critical), "a later episode, whatever its level");
        assert!(!succeeds(&warning, &warning), "not itself");
        let escalation = RouteRecord { escalates: Some("ntf_a".into()), ..next_month.clone() };
        assert!(!succeeds(&escalation, &warning), "escalations succeed nothing");
    }
}
