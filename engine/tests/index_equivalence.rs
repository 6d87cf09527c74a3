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
    (0i64..40, 0i64..20, subset(OWNERS), subset(PROVIDERS), prop::bool::weighted(0.2), 0u32..1000).prop_map(
        |(start, len, owners, providers, skip, id)| {
            json!({"window_id": format!("w{id}"), "start_at": time(start), "end_at": time(start + len),
                   "owners": owners, "providers": providers, "reason": if skip { "skip" } else { "freeze" }})
        },
    )
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
        let scanned = pack.bind_with(&docs, BindOptions { index_scans: false }).unwrap();
        prop_assert_eq!(decide_all(&indexed, &requests), decide_all(&scanned, &requests));
    }
}

#[test]
fn the_routing_shape_is_indexed() {
    // Not a timing test: the debug form of the program shows which scans became indexes.
    let pack = compile("equivalence.cavra", PACK).unwrap_or_else(|d| panic!("{}", d.render(false)));
    let docs = HashMap::from([("policy".to_string(), json!({"windows": [], "calendars": {}}))]);
    let program = format!("{:?}", pack.bind(&docs).unwrap());
    assert_eq!(program.matches("Indexed(").count(), 5, "every scan of this pack should be indexed");
}
