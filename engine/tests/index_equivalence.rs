//! The interval index must never change a result: for random policies and
//! requests, an indexed program and a plain-scan program decide the same.

use cavra_engine::{compile, BindOptions, Program};
use proptest::prelude::*;
use serde_json::{json, Value as Json};
use std::collections::HashMap;

const PACK: &str = r#"
pack equivalence
type Window {
  window_id: text
  start_at: time
  end_at: time
  owners: list<text> = []
  providers: list<text> = []
  reason: text
}
type Absence { start_at: time, end_at: time, reason: text }
type Calendar { unavailable_windows: list<Absence> = [] }
type Policy { windows: list<Window> = [], calendars: map<Calendar> = {} }
static input policy: Policy
input now: time
input owner: text
input provider: text

# the routing shape: interval + two scoped dimensions
let window = first w in policy.windows
  where w.start_at <= now < w.end_at
    and (w.owners is empty or owner in w.owners)
    and (w.providers is empty or provider in w.providers)
# reversed comparisons, inclusive end, a residual conjunct, a strict dimension
let closed = count w in policy.windows
  where now >= w.start_at and w.end_at >= now and provider in w.providers and w.reason != "skip"
let matching = filter w in policy.windows where w.start_at < now and now < w.end_at and (owner in w.owners or w.owners is empty)
let latest = max w in policy.windows where w.start_at <= now < w.end_at by w.end_at
let away = any u in policy.calendars[owner].unavailable_windows where u.start_at <= now < u.end_at

decision route {
  when window exists => suppress maintenance_window reason window.reason with { id: window.window_id, closed: closed, matching: len(matching), latest: latest.window_id ?? "none" }
  when away => suppress owner_calendar reason "away" with { closed: closed, matching: len(matching) }
  otherwise => deliver with { closed: closed, matching: len(matching), first: (first x in matching).window_id ?? "none" }
}
"#;

const OWNERS: &[&str] = &["a", "b", "c", "d"];
const PROVIDERS: &[&str] = &["slack", "teams", "email"];
const BASE: i64 = 1_780_000_000; // seconds; a fixed day in 2026

fn time(offset_minutes: i64) -> String {
    chrono::DateTime::from_timestamp(BASE + offset_minutes * 60, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn subset(items: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(items, 0..=items.len())
}

fn window() -> impl Strategy<Value = Json> {
    (0i64..40, 0i64..20, subset(OWNERS), subset(PROVIDERS), prop::bool::weighted(0.2), 0u32..1000).prop_map(|(start, len, owners, providers, skip, id)| {
        json!({"window_id": format!("w{id}"), "start_at": time(start), "end_at": time(start + len),
                   "owners": owners, "providers": providers, "reason": if skip { "skip" } else { "freeze" }})
    })
}

fn calendars() -> impl Strategy<Value = Json> {
    prop::collection::vec((0usize..OWNERS.len(), 0i64..40, 1i64..15), 0..6).prop_map(|absences| {
        let mut map = serde_json::Map::new();
        for (owner, start, len) in absences {
            let entry = map.entry(OWNERS[owner]).or_insert_with(|| json!({"unavailable_windows": []}));
            entry["unavailable_windows"].as_array_mut().unwrap().push(json!({"start_at": time(start), "end_at": time(start + len), "reason": "away"}));
        }
        Json::Object(map)
    })
}

fn decide_all(program: &Program, requests: &[(usize, usize, i64)]) -> Vec<Json> {
    requests
        .iter()
        .map(|(o, p, t)| {
            let mut inputs = program.inputs();
            program.set_input(&mut inputs, "owner", &json!(OWNERS[*o])).unwrap();
            program.set_input(&mut inputs, "provider", &json!(PROVIDERS[*p])).unwrap();
            program.set_input(&mut inputs, "now", &json!(time(*t))).unwrap();
            program.decide("route", &inputs).map(|o| o.to_json()).unwrap_or_else(|e| json!({"error": e.message}))
        })
        .collect()
}

/// The same requests through one [`cavra_engine::Session`], in order.
fn decide_in_session(program: &Program, requests: &[(usize, usize, i64)]) -> Vec<Json> {
    let slot = |name: &str| program.input_slot(name).unwrap();
    let mut session = program.session();
    requests
        .iter()
        .map(|(o, p, t)| {
            session.set(slot("owner"), cavra_engine::Value::text(OWNERS[*o]));
            session.set(slot("provider"), cavra_engine::Value::text(PROVIDERS[*p]));
            session.set(slot("now"), cavra_engine::Value::Time(cavra_engine::time::parse_time(&time(*t)).unwrap()));
            session.decide("route").map(|o| o.to_json()).unwrap_or_else(|e| json!({"error": e.message}))
        })
        .collect()
}

/// The same requests through a session that memoises outcomes, with each
/// owner, provider and instant one shared value (as a plan's are), so that
/// repeated requests find their outcomes remembered.
fn decide_memoized(program: &Program, requests: &[(usize, usize, i64)]) -> Vec<Json> {
    use cavra_engine::Value;
    let slot = |name: &str| program.input_slot(name).unwrap();
    let owners: Vec<Value> = OWNERS.iter().map(|o| Value::text(o)).collect();
    let providers: Vec<Value> = PROVIDERS.iter().map(|p| Value::text(p)).collect();
    let mut session = program.session().share_texts().memoize_outcomes();
    requests
        .iter()
        .map(|(o, p, t)| {
            session.set(slot("owner"), owners[*o].clone());
            session.set(slot("provider"), providers[*p].clone());
            session.set(slot("now"), Value::Time(cavra_engine::time::parse_time(&time(*t)).unwrap()));
            session.decide("route").map(|o| o.to_json()).unwrap_or_else(|e| json!({"error": e.message}))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn indexed_and_scanned_programs_agree(
        windows in prop::collection::vec(window(), 0..25),
        calendars in calendars(),
        requests in prop::collection::vec((0usize..OWNERS.len(), 0usize..PROVIDERS.len(), -2i64..62), 1..40),
    ) {
        let pack = compile("equivalence.cavra", PACK).unwrap_or_else(|d| panic!("{}", d.render(false)));
        let docs = HashMap::from([("policy".to_string(), json!({"windows": windows, "calendars": calendars}))]);
        let indexed = pack.bind(&docs).unwrap();
        let scanned = pack.bind_with(&docs, BindOptions { index_scans: false, decision_tables: false, ..BindOptions::default() }).unwrap();
        prop_assert_eq!(decide_all(&indexed, &requests), decide_all(&scanned, &requests));
        // A session reuses lets between requests; it must decide exactly the same.
        prop_assert_eq!(decide_all(&indexed, &requests), decide_in_session(&indexed, &requests));
        // So must one that remembers outcomes, asked everything twice.
        let twice: Vec<_> = requests.iter().chain(&requests).copied().collect();
        prop_assert_eq!(decide_all(&indexed, &twice), decide_memoized(&indexed, &twice));
        // A program with the clock pinned to one instant decides like the others at that instant.
        let at = requests[0].2;
        let same_time: Vec<_> = requests.iter().map(|&(o, p, _)| (o, p, at)).collect();
        let micros = cavra_engine::time::parse_time(&time(at)).unwrap();
        let pinned = pack.bind_with(&docs, BindOptions::at(micros)).unwrap();
        prop_assert_eq!(decide_all(&pinned, &same_time), decide_all(&scanned, &same_time));
    }

    #[test]
    fn recurring_windows_index_like_they_scan(
        windows in prop::collection::vec(any_window(), 0..12),
        requests in prop::collection::vec((0usize..OWNERS.len(), 0usize..PROVIDERS.len(), 0i64..SPAN_HOURS * 60), 1..60),
        horizon in (0i64..SPAN_HOURS * 60, 0i64..SPAN_HOURS * 60),
    ) {
        let pack = compile("recurring.cavra", RECURRING_PACK).unwrap_or_else(|d| panic!("{}", d.render(false)));
        let docs = HashMap::from([("policy".to_string(), json!({"windows": windows}))]);
        // The horizon covers only part of the requests: inside it the index answers, outside the scan.
        let (a, b) = (horizon.0.min(horizon.1), horizon.0.max(horizon.1));
        let micros = |m: i64| (SPRING + m * 60) * 1_000_000;
        let indexed = pack.bind_with(&docs, BindOptions { recurrence_horizon: Some((micros(a), micros(b))), ..BindOptions::default() }).unwrap();
        let scanned = pack.bind_with(&docs, BindOptions { index_scans: false, decision_tables: false, ..BindOptions::default() }).unwrap();
        prop_assert_eq!(decide_spring(&indexed, &requests), decide_spring(&scanned, &requests));
        let at = requests[0].2;
        let same_time: Vec<_> = requests.iter().map(|&(o, p, _)| (o, p, at)).collect();
        let pinned = pack.bind_with(&docs, BindOptions::at(micros(at))).unwrap();
        prop_assert_eq!(decide_spring(&pinned, &same_time), decide_spring(&scanned, &same_time));
    }
}

const RECURRING_PACK: &str = r#"
pack recurring
type Window {
  window_id: text
  start_at: time?
  end_at: time?
  recurrence: recurrence?
  owners: list<text> = []
  providers: list<text> = []
}
type Policy { windows: list<Window> = [] }
static input policy: Policy
input now: time
input owner: text
input provider: text
let window = first w in policy.windows
  where active(w, now) and (w.owners is empty or owner in w.owners) and (w.providers is empty or provider in w.providers)
let overlapping = count w in policy.windows where active(w, now)
decision route {
  when window exists => suppress maintenance_window reason window.window_id with { overlapping: overlapping }
  otherwise => deliver with { overlapping: overlapping }
}
"#;

/// 2026-03-27T00:00:00Z: the requests span the spring-forward weekend in
/// Europe (03-29) and two weeks around it.
const SPRING: i64 = 1_774_569_600;
const SPAN_HOURS: i64 = 24 * 14;
const ZONES: &[&str] = &["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"];
const DAYS: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

fn spring_time(minutes: i64) -> String {
    chrono::DateTime::from_timestamp(SPRING + minutes * 60, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn any_window() -> impl Strategy<Value = Json> {
    let hhmm = (0u32..24, prop::sample::select(vec![0u32, 15, 30, 45])).prop_map(|(h, m)| format!("{h:02}:{m:02}"));
    let recurrence = (subset(DAYS), hhmm.clone(), hhmm, prop::sample::select(ZONES.to_vec()), prop::option::of(0i64..SPAN_HOURS * 60)).prop_map(
        |(days, start, end, zone, until)| {
            let mut r = json!({"weekdays": days, "start_time": start, "end_time": end, "time_zone": zone});
            if let Some(u) = until {
                r["until"] = json!(spring_time(u));
            }
            r
        },
    );
    (prop::option::of(recurrence), 0i64..SPAN_HOURS * 60, 0i64..3000, subset(OWNERS), subset(PROVIDERS), 0u32..1000).prop_map(
        |(recurrence, start, len, owners, providers, id)| match recurrence {
            Some(r) => json!({"window_id": format!("r{id}"), "recurrence": r, "owners": owners, "providers": providers}),
            None => json!({"window_id": format!("w{id}"), "start_at": spring_time(start), "end_at": spring_time(start + len),
                           "owners": owners, "providers": providers}),
        },
    )
}

fn decide_spring(program: &Program, requests: &[(usize, usize, i64)]) -> Vec<Json> {
    requests
        .iter()
        .map(|(o, p, m)| {
            let mut inputs = program.inputs();
            program.set_input(&mut inputs, "owner", &json!(OWNERS[*o])).unwrap();
            program.set_input(&mut inputs, "provider", &json!(PROVIDERS[*p])).unwrap();
            program.set_input(&mut inputs, "now", &json!(spring_time(*m))).unwrap();
            program.decide("route", &inputs).map(|o| o.to_json()).unwrap_or_else(|e| json!({"error": e.message}))
        })
        .collect()
}

#[test]
fn active_windows_are_indexed() {
    let pack = compile("recurring.cavra", RECURRING_PACK).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let docs = HashMap::from([(
        "policy".to_string(),
        json!({"windows": [
            {"window_id": "friday", "recurrence": {"weekdays": ["friday"], "start_time": "18:00", "end_time": "20:00", "time_zone": "Europe/Berlin"}},
            {"window_id": "once", "start_at": "2026-03-27T00:00:00Z", "end_at": "2026-03-28T00:00:00Z"}
        ]}),
    )]);
    let program = pack.bind_with(&docs, BindOptions::around(SPRING * 1_000_000, (SPRING + 86_400 * 14) * 1_000_000)).unwrap();
    assert_eq!(format!("{program:?}").matches("Indexed(").count(), 2, "both scans should be indexed");
    // Friday 2026-03-27 18:30 CET is 17:30Z; the one-off window comes second in policy order.
    let at = |t: &str| {
        let mut inputs = program.inputs();
        program.set_input(&mut inputs, "owner", &json!("a")).unwrap();
        program.set_input(&mut inputs, "provider", &json!("slack")).unwrap();
        program.set_input(&mut inputs, "now", &json!(t)).unwrap();
        program.decide("route", &inputs).unwrap().to_json()
    };
    assert_eq!(at("2026-03-27T17:30:00Z")["reason"], "friday");
    assert_eq!(at("2026-03-27T17:30:00Z")["fields"]["overlapping"], 2);
    assert_eq!(at("2026-03-27T19:30:00Z")["reason"], "once");
    // The next Friday is CEST: 18:30 local is 16:30Z.
    assert_eq!(at("2026-04-03T16:30:00Z")["reason"], "friday");
    assert_eq!(at("2026-04-03T18:30:00Z")["action"], "deliver");
}

#[test]
fn the_routing_shape_is_indexed() {
    // Not a timing test: the debug form of the program shows which scans became indexes.
    let pack = compile("equivalence.cavra", PACK).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let docs = HashMap::from([("policy".to_string(), json!({"windows": [], "calendars": {}}))]);
    let program = format!("{:?}", pack.bind(&docs).unwrap());
    assert_eq!(program.matches("Indexed(").count(), 5, "every scan of this pack should be indexed");
}
