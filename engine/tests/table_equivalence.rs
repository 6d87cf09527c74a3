//! Decision tables must never change a result: for random policies (one-off
//! and recurring windows across daylight-saving changes, owner routes,
//! calendars, schedule-scoped windows) and random requests (owners,
//! providers and schedules the policy names and ones it never names, times
//! inside and outside the horizon), a program with tables decides exactly as
//! the plain scan does: action, category, reason and every field. The
//! bundled routing pack and a pack written differently both get tables.

use cavra_engine::{compile, BindOptions, Inputs, Pack, Program, Value};
use proptest::prelude::*;
use serde_json::{json, Value as Json};
use std::collections::HashMap;
use std::sync::Arc;

/// The bundled routing pack, as the plan command runs it.
const ROUTING: &str = include_str!("../../rules/routing.cavra");
const ROUTING_POLICY: &str = include_str!("../../rules/common/routing_policy.cavra");

/// The bundled routing pack, with the module it imports.
fn routing_pack() -> cavra_engine::Pack {
    let modules = cavra_engine::MemoryModules::new([("rules/common/routing_policy.cavra", ROUTING_POLICY)]);
    cavra_engine::compile_with("rules/routing.cavra", ROUTING, &modules).unwrap_or_else(|d| panic!("{}", d.render(false)))
}

/// The same domain written differently: other names, the arms in another
/// order, the calendar checked before the windows, a status key compared
/// with two texts, and the schedule as a map key rather than a list member.
const REWRITTEN: &str = r#"
pack rewritten
type Slot { id: text, start_at: time?, end_at: time?, recurrence: recurrence?, teams: list<text> = [], channels: list<text> = [], why: text = "quiet" }
type Leave { start_at: time?, end_at: time?, recurrence: recurrence?, why: text = "away" }
type Person { leave: list<Leave> = [] }
type Route { channels: list<text>?, backup: text? }
type Rules { slots: list<Slot> = [], people: map<Person> = {}, routes: map<Route> = {}, quiet_services: map<text> = {} }
static input rules: Rules
input at: time
input team: text
input channel: text
input service: text
input state: text

let route = rules.routes[team]
let slot = first s in rules.slots where active(s, at)
  and (s.teams is empty or team in s.teams) and (s.channels is empty or channel in s.channels)
let leave = first l in rules.people[team].leave where active(l, at)

decision route {
  when route.channels exists and channel not in route.channels => skip not_on_route reason "{channel} is not on {team}'s route"
  when leave exists => suppress owner_calendar reason leave.why with { until: active_until(leave, at) }
  when state == "green" or state == "paused" => suppress healthy_schedule reason "{service} needs nothing ({state})"
  when service in rules.quiet_services => suppress quiet_service reason rules.quiet_services[service]
  when slot exists => suppress maintenance_window reason slot.why with { slot: slot.id, backup: route.backup ?? team }
  otherwise => deliver reason "notify {team} on {channel}" with { backup: route.backup ?? team }
}
"#;

const OWNERS: &[&str] = &["release-governance", "platform", "payments", "search"];
/// Owners the generated policies never name.
const STRANGERS: &[&str] = &["nobody", "release-governance "];
const PROVIDERS: &[&str] = &["slack", "teams", "email", "webhook"];
const SCHEDULES: &[&str] = &["drill-a", "drill-b", "drill-c"];
const STATUSES: &[&str] = &["needs_attention", "due_soon", "healthy", "paused", "green"];
const ZONES: &[&str] = &["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"];
const DAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
/// 2026-03-27T00:00:00Z: two weeks around Europe's spring-forward weekend.
const SPRING: i64 = 1_774_569_600;
const SPAN_MINUTES: i64 = 24 * 14 * 60;

fn at(minutes: i64) -> String {
    chrono::DateTime::from_timestamp(SPRING + minutes * 60, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn micros(minutes: i64) -> i64 {
    (SPRING + minutes * 60) * 1_000_000
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(items, 0..=items.len())
}

/// A one-off or recurring window, as `(start_at, end_at, recurrence)` JSON fields.
fn timing() -> impl Strategy<Value = serde_json::Map<String, Json>> {
    let hhmm = (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45])).prop_map(|(h, m)| format!("{h:02}:{m:02}"));
    let recurrence = (subset(DAYS), hhmm.clone(), hhmm, prop::sample::select(ZONES.to_vec()), prop::option::of(0i64..SPAN_MINUTES)).prop_map(
        |(days, start, end, zone, until)| {
            let mut r = json!({"weekdays": days, "start_time": start, "end_time": end, "time_zone": zone});
            if let Some(u) = until {
                r["until"] = json!(at(u));
            }
            r
        },
    );
    (prop::option::of(recurrence), 0i64..SPAN_MINUTES, 1i64..3000).prop_map(|(recurrence, start, len)| {
        let mut fields = serde_json::Map::new();
        match recurrence {
            Some(r) => {
                fields.insert("recurrence".into(), r);
            }
            None => {
                fields.insert("start_at".into(), json!(at(start)));
                fields.insert("end_at".into(), json!(at(start + len)));
            }
        }
        fields
    })
}

fn routing_policy() -> impl Strategy<Value = Json> {
    let window = (timing(), subset(OWNERS), subset(PROVIDERS), subset(SCHEDULES), 0u32..100, prop::bool::ANY);
    let windows = prop::collection::vec(window, 0..10);
    let routes = prop::collection::vec((0..OWNERS.len(), subset(PROVIDERS), prop::option::of(0u32..90), prop::option::of(0..OWNERS.len())), 0..4);
    let absences = prop::collection::vec((0..OWNERS.len(), timing()), 0..5);
    (windows, routes, absences, prop::option::of(5u32..120)).prop_map(|(windows, routes, absences, minutes)| {
        let windows: Vec<Json> = windows
            .into_iter()
            .map(|(mut w, owners, providers, schedules, id, reason)| {
                w.insert("window_id".into(), json!(format!("mw-{id}")));
                w.insert("owners".into(), json!(owners));
                w.insert("providers".into(), json!(providers));
                w.insert("schedule_ids".into(), json!(schedules));
                if reason {
                    w.insert("reason".into(), json!(format!("freeze {id}")));
                }
                Json::Object(w)
            })
            .collect();
        let mut owner_routes = serde_json::Map::new();
        for (owner, providers, ack, escalation) in routes {
            let mut route = json!({"providers": providers});
            if let Some(ack) = ack {
                route["acknowledgement_minutes"] = json!(ack);
            }
            if let Some(e) = escalation {
                route["escalation_owner"] = json!(OWNERS[e]);
            }
            owner_routes.insert(OWNERS[owner].into(), route);
        }
        let mut calendars = serde_json::Map::new();
        for (owner, mut absence) in absences {
            absence.insert("reason".into(), json!("on leave"));
            let entry = calendars.entry(OWNERS[owner]).or_insert_with(|| json!({"unavailable_windows": []}));
            entry["unavailable_windows"].as_array_mut().unwrap().push(Json::Object(absence));
        }
        let mut policy = json!({"maintenance_windows": windows, "owner_routes": owner_routes, "owner_calendars": calendars});
        if let Some(m) = minutes {
            policy["acknowledgement_minutes"] = json!(m);
        }
        policy
    })
}

/// One request: indexes into the owner (then stranger), provider, schedule
/// (one past the end: a schedule no window names) and status lists, and a minute.
type Request = (usize, usize, usize, usize, i64);

fn request() -> impl Strategy<Value = Request> {
    (0..OWNERS.len() + STRANGERS.len(), 0..PROVIDERS.len(), 0..=SCHEDULES.len(), 0..STATUSES.len(), -600i64..SPAN_MINUTES + 600)
}

fn owner(i: usize) -> &'static str {
    OWNERS.get(i).copied().unwrap_or_else(|| STRANGERS[i - OWNERS.len()])
}

fn schedule(i: usize) -> &'static str {
    SCHEDULES.get(i).copied().unwrap_or("drill-unscheduled")
}

fn routing_inputs(program: &Program, (o, p, s, st, m): Request) -> Inputs {
    let mut inputs = program.inputs();
    program.set_input(&mut inputs, "owner", &json!(owner(o))).unwrap();
    program.set_input(&mut inputs, "provider", &json!(PROVIDERS[p])).unwrap();
    program.set_input(&mut inputs, "schedule_id", &json!(schedule(s))).unwrap();
    program.set_input(&mut inputs, "schedule_status", &json!(STATUSES[st])).unwrap();
    program.set_input(&mut inputs, "now", &json!(at(m))).unwrap();
    inputs
}

fn outcome_json(result: Result<cavra_engine::Outcome<'_>, cavra_engine::EvalError>) -> Json {
    result.map(|o| o.to_json()).unwrap_or_else(|e| json!({"error": e.message}))
}

/// Every request four ways: `Program::decide`, a `Decider` with the keys
/// resolved ahead and the time given per decision, one session in order,
/// and that session's outcomes kept (`OutcomeRef::keep`) and read only
/// after every request was decided (a kept outcome outlives the session's
/// memory of it). Fifth, one session in order asks `Session::decide_each`
/// for every provider (and one no policy names) in place of the request's
/// `each` input: per request, the outcomes of all of them.
fn decide_five_ways(program: &Program, decision: &str, requests: &[Inputs], each: &str) -> [Vec<Json>; 5] {
    let decided = requests.iter().map(|inputs| outcome_json(program.decide(decision, inputs))).collect();
    let decider = program.decider(decision).unwrap();
    let time = program.clock_slot().or_else(|| program.input_slot("at")).unwrap();
    let keyed = requests
        .iter()
        .map(|inputs| {
            let keys = decider.keys(inputs);
            let Value::Time(now) = inputs.get(time) else { panic!("every request has a time") };
            decider.decide_at_with(&keys, *now, |o| o.to_outcome().to_json()).unwrap_or_else(|e| json!({"error": e.message}))
        })
        .collect();
    let mut session = program.session().share_texts().memoize_outcomes();
    let slots: Vec<_> = program.pack().inputs().iter().filter_map(|info| program.input_slot(&info.name)).collect();
    let in_session = requests
        .iter()
        .map(|inputs| {
            for slot in &slots {
                session.set(*slot, inputs.get(*slot).clone());
            }
            outcome_json(session.decide(decision))
        })
        .collect();
    let mut session = program.session().share_texts().memoize_outcomes();
    let kept: Vec<_> = requests
        .iter()
        .map(|inputs| {
            for slot in &slots {
                session.set(*slot, inputs.get(*slot).clone());
            }
            session.decide_with(decision, |o| o.keep())
        })
        .collect();
    drop(session);
    let kept = kept.into_iter().map(|k| k.map(|k| k.to_outcome().to_json()).unwrap_or_else(|e| json!({"error": e.message}))).collect();
    // The same texts for every request, as a plan shares its providers.
    let texts: Vec<Arc<str>> = PROVIDERS.iter().chain(["pager-nobody-names"].iter()).map(|&p| Arc::from(p)).collect();
    let each = program.input_slot(each).expect("the varying input");
    let mut session = program.session().share_texts().memoize_outcomes();
    let each_provider = requests
        .iter()
        .map(|inputs| {
            for slot in slots.iter().filter(|&&slot| slot != each) {
                session.set(*slot, inputs.get(*slot).clone());
            }
            let mut outcomes = vec![Json::Null; texts.len()];
            match session.decide_each(decision, each, &texts, |i, o| outcomes[i] = o.to_outcome().to_json()) {
                // Those decided before the error, then the error.
                Err(e) => Json::Array(outcomes.into_iter().take_while(|o| !o.is_null()).chain([json!({"error": e.message})]).collect()),
                Ok(()) => Json::Array(outcomes),
            }
        })
        .collect();
    [decided, keyed, in_session, kept, each_provider]
}

/// Ways 0-3 of [`decide_five_ways`] on `program` against `Program::decide` on
/// `plain`, and the fifth way against the fifth on `plain`, whose every
/// provider's outcome is `Program::decide`'s (checked on the request's own).
fn same_five_ways(program: &Program, plain: &Program, requests: &[Inputs], each: &str, provider_of: impl Fn(usize) -> usize) -> Result<(), TestCaseError> {
    let expected = decide_five_ways(plain, "route", requests, each);
    for (r, outcomes) in expected[4].iter().enumerate() {
        prop_assert_eq!(&outcomes[provider_of(r)], &expected[0][r], "request {}: decide_each on the plain scan", r);
    }
    for (way, got) in decide_five_ways(program, "route", requests, each).iter().enumerate() {
        prop_assert_eq!(got, &expected[if way == 4 { 4 } else { 0 }], "way {}", way);
    }
    Ok(())
}

fn reference(pack: &Pack, docs: &HashMap<String, Json>) -> Program {
    pack.bind_with(docs, BindOptions { index_scans: false, decision_tables: false, ..BindOptions::default() }).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn the_routing_table_decides_like_the_plain_scan(
        policy in routing_policy(),
        requests in prop::collection::vec(request(), 1..60),
        horizon in (0i64..SPAN_MINUTES, 0i64..SPAN_MINUTES),
    ) {
        let pack = routing_pack();
        let docs = HashMap::from([("policy".to_string(), policy)]);
        // The horizon covers only part of the requests: inside it the table answers, outside the evaluator.
        let (from, to) = (horizon.0.min(horizon.1), horizon.0.max(horizon.1));
        let tabled = pack.bind_with(&docs, BindOptions { recurrence_horizon: Some((micros(from), micros(to))), ..BindOptions::default() }).unwrap();
        let size = tabled.table_size("route");
        prop_assert!(size.is_some_and(|s| s.evaluated == 0), "the routing decision should get a table: {:?}", size);
        let plain = reference(&pack, &docs);
        let inputs: Vec<Inputs> = requests.iter().map(|r| routing_inputs(&tabled, *r)).collect();
        same_five_ways(&tabled, &plain, &inputs, "provider", |r| requests[r].1)?;
        // With the clock pinned (the plan command), at the first request's instant.
        let first = requests[0].4;
        let same_time: Vec<Inputs> = requests.iter().map(|&(o, p, s, st, _)| routing_inputs(&tabled, (o, p, s, st, first))).collect();
        let pinned = pack.bind_with(&docs, BindOptions::at(micros(first))).unwrap();
        prop_assert!(pinned.table_size("route").is_some(), "the pinned routing decision should get a table");
        same_five_ways(&pinned, &plain, &same_time, "provider", |r| requests[r].1)?;
    }

    #[test]
    fn a_pack_written_differently_gets_a_table_too(
        policy in routing_policy(),
        quiet in subset(SCHEDULES),
        requests in prop::collection::vec(request(), 1..60),
    ) {
        let pack = compile("rewritten.cavra", REWRITTEN).unwrap_or_else(|d| panic!("{}", d.render(false)));
        let rules = rewrite(&policy, &quiet);
        let docs = HashMap::from([("rules".to_string(), rules)]);
        let tabled = pack.bind_with(&docs, BindOptions::horizon_days(micros(0), 30)).unwrap();
        prop_assert!(tabled.table_size("route").is_some(), "the rewritten decision should get a table");
        let plain = reference(&pack, &docs);
        let inputs: Vec<Inputs> = requests
            .iter()
            .map(|&(o, p, s, st, m)| {
                let mut inputs = tabled.inputs();
                tabled.set_input(&mut inputs, "team", &json!(owner(o))).unwrap();
                tabled.set_input(&mut inputs, "channel", &json!(PROVIDERS[p])).unwrap();
                tabled.set_input(&mut inputs, "service", &json!(schedule(s))).unwrap();
                tabled.set_input(&mut inputs, "state", &json!(STATUSES[st])).unwrap();
                tabled.set_input(&mut inputs, "at", &json!(at(m))).unwrap();
                inputs
            })
            .collect();
        same_five_ways(&tabled, &plain, &inputs, "channel", |r| requests[r].1)?;
    }
}

/// The routing policy in the rewritten pack's names.
fn rewrite(policy: &Json, quiet: &[&str]) -> Json {
    let rename = |w: &Json, pairs: &[(&str, &str)]| {
        let mut out = serde_json::Map::new();
        for (from, to) in pairs {
            if let Some(v) = w.get(*from) {
                out.insert(to.to_string(), v.clone());
            }
        }
        Json::Object(out)
    };
    let slots: Vec<Json> = policy["maintenance_windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            rename(
                w,
                &[
                    ("window_id", "id"),
                    ("start_at", "start_at"),
                    ("end_at", "end_at"),
                    ("recurrence", "recurrence"),
                    ("owners", "teams"),
                    ("providers", "channels"),
                    ("reason", "why"),
                ],
            )
        })
        .collect();
    let people: serde_json::Map<String, Json> = policy["owner_calendars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(owner, c)| {
            let leave: Vec<Json> = c["unavailable_windows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| rename(a, &[("start_at", "start_at"), ("end_at", "end_at"), ("recurrence", "recurrence"), ("reason", "why")]))
                .collect();
            (owner.clone(), json!({"leave": leave}))
        })
        .collect();
    let routes: serde_json::Map<String, Json> = policy["owner_routes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(owner, r)| (owner.clone(), rename(r, &[("providers", "channels"), ("escalation_owner", "backup")])))
        .collect();
    let quiet: serde_json::Map<String, Json> = quiet.iter().map(|s| (s.to_string(), json!(format!("{s} is quiet this week")))).collect();
    json!({"slots": slots, "people": people, "routes": routes, "quiet_services": quiet})
}

#[test]
fn the_bundled_routing_pack_gets_a_table_filled_at_bind() {
    let pack = routing_pack();
    let policy = json!({
        "owner_routes": {"release-governance": {"providers": ["slack", "teams"], "escalation_owner": "platform-lead"}},
        "maintenance_windows": [
            {"window_id": "mw-1", "start_at": "2026-03-27T10:00:00Z", "end_at": "2026-03-27T12:00:00Z", "providers": ["slack"], "reason": "freeze"},
            {"window_id": "mw-2", "recurrence": {"weekdays": ["friday"], "start_time": "18:00", "end_time": "20:00", "time_zone": "Europe/Berlin"},
             "schedule_ids": ["drill-a"]}
        ],
        "owner_calendars": {"release-governance": {"unavailable_windows": [{"start_at": "2026-03-30T00:00:00Z", "end_at": "2026-03-31T00:00:00Z"}]}}
    });
    let docs = HashMap::from([("policy".to_string(), policy)]);
    let program = pack.bind_with(&docs, BindOptions::horizon_days(micros(0), 14)).unwrap();
    let size = program.table_size("route").expect("a table");
    // Owners, providers (as a window names them), schedules and statuses: one named each, and "other".
    assert_eq!((size.cells, size.filled, size.evaluated), (16, 16, 0), "{size:?}");
    assert!(size.segments > size.cells && size.labels < size.segments, "{size:?}");
    let decide = |owner: &str, provider: &str, schedule: &str, now: &str| {
        let mut inputs = program.inputs();
        program.set_input(&mut inputs, "owner", &json!(owner)).unwrap();
        program.set_input(&mut inputs, "provider", &json!(provider)).unwrap();
        program.set_input(&mut inputs, "schedule_id", &json!(schedule)).unwrap();
        program.set_input(&mut inputs, "schedule_status", &json!("due_soon")).unwrap();
        program.set_input(&mut inputs, "now", &json!(now)).unwrap();
        program.decide("route", &inputs).unwrap().to_json()
    };
    let freeze = decide("release-governance", "slack", "drill-b", "2026-03-27T11:00:00Z");
    assert_eq!((freeze["category"].as_str(), freeze["fields"]["suppressed_until"].as_str()), (Some("maintenance_window"), Some("2026-03-27T12:00:00Z")));
    assert_eq!(freeze["fields"]["escalation_owner"], "platform-lead");
    // Friday 18:30 in Berlin (CET) is 17:30Z; the next Friday (CEST) 16:30Z.
    assert_eq!(decide("search", "email", "drill-a", "2026-03-27T17:30:00Z")["fields"]["maintenance_window_id"], "mw-2");
    assert_eq!(decide("search", "email", "drill-a", "2026-04-03T16:30:00Z")["fields"]["suppressed_until"], "2026-04-03T18:00:00Z");
    // An owner the policy never names: the reason and escalation owner are theirs.
    let stranger = decide("new-team", "webhook", "drill-z", "2026-03-28T09:00:00Z");
    assert_eq!((stranger["reason"].as_str(), stranger["fields"]["escalation_owner"].as_str()), (Some("notify new-team on webhook"), Some("new-team")));
    // Outside the horizon the evaluator answers, the same way.
    assert_eq!(decide("release-governance", "slack", "drill-b", "2027-06-01T11:00:00Z")["action"], "deliver");
}

#[test]
fn a_decision_that_reads_time_otherwise_gets_no_table_and_still_decides() {
    let source = r#"
pack shifted
type Window { start_at: time, end_at: time }
type Policy { windows: list<Window> = [] }
static input policy: Policy
input now: time
input owner: text
let window = first w in policy.windows where w.start_at <= now + 1h < w.end_at
decision route {
  when window exists => suppress soon reason "{owner} soon"
  otherwise => deliver
}
"#;
    let pack = compile("shifted.cavra", source).unwrap();
    let docs = HashMap::from([("policy".to_string(), json!({"windows": [{"start_at": "2026-03-27T10:00:00Z", "end_at": "2026-03-27T12:00:00Z"}]}))]);
    let program = pack.bind(&docs).unwrap();
    assert_eq!(program.table_size("route"), None, "`now + 1h` has no known breakpoints");
    let mut inputs = program.inputs();
    program.set_input(&mut inputs, "owner", &json!("ops")).unwrap();
    program.set_input(&mut inputs, "now", &json!("2026-03-27T09:30:00Z")).unwrap();
    assert_eq!(program.decide("route", &inputs).unwrap().reason(), Some(&Value::text("ops soon")));
}
