//! cavra, the plain-loop baseline and the segment tables decide every request
//! of both workloads the same way (action, category, reason and every outcome
//! field, so the same window or absence), and the workloads keep their
//! documented shares: about 60% skipped, and 20–40% of the rest suppressed.

use cavra_benches::{cavra_decide, cavra_program, plain_decide, said_by_cavra, Decision, PlainPolicy, Prepared, SegmentTable, Tally, REQUESTS};
use cavra_engine::Value;
use serde_json::json;

fn check(windows: usize) {
    let p = Prepared::new(windows);
    let table = p.segment_table();
    assert_eq!(p.workload.requests.len(), REQUESTS);
    assert_eq!(p.inputs.len(), REQUESTS);
    let decider = p.program.decider("route").expect("a route decision");
    let mut tally = Tally::default();
    for (i, (r, inputs)) in p.workload.requests.iter().zip(&p.inputs).enumerate() {
        let (owner, provider) = (p.workload.owner(r), p.workload.provider(r));
        let context = || format!("request {i} ({owner} via {provider} at {})", cavra_benches::rfc3339(r.now));
        let expected = plain_decide(&p.plain, owner, provider, r.now);
        assert_eq!(table.decide(owner, provider, r.now), expected, "{}: segments against plain", context());
        let got = cavra_decide(&p.program, inputs);
        assert_eq!(said_by_cavra(&got), expected.said(), "{}: cavra against plain", context());
        let lent = decider.decide_with(inputs, |o| o.to_outcome()).expect("decides");
        assert_eq!(said_by_cavra(&lent), expected.said(), "{}: cavra's decider against plain", context());
        tally.add(expected.category());
    }
    let share = |n: usize, of: usize| n as f64 * 100.0 / of as f64;
    eprintln!(
        "{windows} windows: {:.1}% skipped, {:.1}% suppressed ({:.1}% maintenance window, {:.1}% owner calendar), {:.1}% delivered; \
         {:.1}% of the routed requests suppressed; {} segments for {} routed pairs",
        share(tally.not_on_route, REQUESTS),
        share(tally.suppressed(), REQUESTS),
        share(tally.maintenance_window, REQUESTS),
        share(tally.owner_calendar, REQUESTS),
        share(tally.deliver, REQUESTS),
        share(tally.suppressed(), tally.routed()),
        table.segments(),
        table.routed_pairs(),
    );
    // Every owner is routed to 1–3 of the 5 providers (2 on average) and the
    // provider is drawn from all 5: about 60% are skipped.
    let skipped = share(tally.not_on_route, REQUESTS);
    assert!((50.0..=70.0).contains(&skipped), "{windows} windows: {skipped:.1}% skipped");
    // Of the routed requests, the windows and absences suppress 20–40%, as
    // the workload's scopes are tuned for.
    let suppressed = share(tally.suppressed(), tally.routed());
    assert!((20.0..=40.0).contains(&suppressed), "{windows} windows: {suppressed:.1}% of the routed requests suppressed");
    assert!(tally.maintenance_window > 0 && tally.owner_calendar > 0 && tally.deliver > 0);
    assert_eq!(p.run_plain(), tally);
    assert_eq!(p.run_segments(&table), tally);
    assert_eq!(p.run_cavra(), tally);
    assert_eq!(p.run_cavra_decider(), tally);
}

#[test]
fn same_decisions_with_500_windows() {
    check(500);
}

#[test]
fn same_decisions_with_5000_windows() {
    check(5_000);
}

/// The random instants almost never fall on a bound, so every window's and
/// absence's start and end (and the microsecond before each) is tried for
/// every routed (owner, provider) pair: a window holds from its start up to,
/// not including, its end, in all three implementations.
#[test]
fn same_decisions_at_every_bound_with_500_windows() {
    let p = Prepared::new(500);
    let table = p.segment_table();
    let windows = p.plain.maintenance_windows.iter().flat_map(|w| [w.start_at, w.end_at]);
    let absences = p.plain.owner_calendars.values().flatten().flat_map(|u| [u.start_at, u.end_at]);
    let mut instants: Vec<i64> = windows.chain(absences).flat_map(|b| [b - 1, b]).collect();
    instants.sort_unstable();
    instants.dedup();
    let slot = |name: &str| p.program.input_slot(name).expect("the pack's input");
    let (now_slot, owner_slot, provider_slot) = (slot("now"), slot("owner"), slot("provider"));
    let mut inputs = p.program.inputs();
    let mut changes = 0usize;
    for (owner, providers) in &p.plain.owner_routes {
        inputs.set(owner_slot, Value::text(owner));
        for provider in providers {
            inputs.set(provider_slot, Value::text(provider));
            let mut previous = None;
            for &now in &instants {
                let expected = plain_decide(&p.plain, owner, provider, now);
                assert_eq!(table.decide(owner, provider, now), expected, "{owner} via {provider} at {now}: segments against plain");
                inputs.set(now_slot, Value::Time(now));
                assert_eq!(said_by_cavra(&cavra_decide(&p.program, &inputs)), expected.said(), "{owner} via {provider} at {now}: cavra against plain");
                changes += usize::from(previous.is_some_and(|d| d != expected));
                previous = Some(expected);
            }
        }
    }
    // The bounds do change decisions (so the probes are where it matters).
    assert!(changes > 1_000, "{changes} changes of decision at the bounds");
}

/// The skip step's edge cases, which the generated workload does not have
/// (every owner there has a route of 1–3 providers): an owner without a route
/// entry and an owner with an empty route are skipped for every provider, in
/// all three implementations, even inside a window that applies to everyone.
#[test]
fn an_owner_without_a_route_is_skipped_everywhere() {
    let policy = json!({
        "owner_routes": {"routed": {"providers": ["slack"]}, "empty": {"providers": []}, "defaulted": {}},
        "maintenance_windows": [{"window_id": "mw-all", "start_at": "2026-05-01T00:00:00Z", "end_at": "2026-05-02T00:00:00Z"}],
        "owner_calendars": {"unrouted": {"unavailable_windows": [{"start_at": "2026-05-03T00:00:00Z", "end_at": "2026-05-04T00:00:00Z"}]}},
    });
    let plain = PlainPolicy::from_json(&policy);
    let table = SegmentTable::new(&plain);
    let program = cavra_program(&policy);
    let slot = |name: &str| program.input_slot(name).expect("the pack's input");
    let (now_slot, owner_slot, provider_slot) = (slot("now"), slot("owner"), slot("provider"));
    let inside = cavra_benches::SPAN_START + 3_600_000_000; // 2026-05-01T01:00:00Z, inside mw-all
    let later = cavra_benches::SPAN_START + 2 * 86_400_000_000 + 3_600_000_000; // inside the absence of `unrouted`
    for owner in ["routed", "empty", "defaulted", "unrouted"] {
        for provider in ["slack", "email"] {
            for now in [inside, later] {
                let expected = plain_decide(&plain, owner, provider, now);
                let on_route = owner == "routed" && provider == "slack";
                assert_eq!(expected == Decision::NotOnRoute, !on_route, "{owner} via {provider}: {expected:?}");
                assert_eq!(table.decide(owner, provider, now), expected, "{owner} via {provider}");
                let mut inputs = program.inputs();
                inputs.set(now_slot, Value::Time(now));
                inputs.set(owner_slot, Value::text(owner));
                inputs.set(provider_slot, Value::text(provider));
                assert_eq!(said_by_cavra(&cavra_decide(&program, &inputs)), expected.said(), "{owner} via {provider}");
            }
        }
    }
    // The routed pair sees the window, then nothing (the absence belongs to another owner).
    assert_eq!(plain_decide(&plain, "routed", "slack", inside).category(), "maintenance_window");
    assert_eq!(plain_decide(&plain, "routed", "slack", later), Decision::Deliver);
}
