//! `Router::plan_all` (one reused session per thread, shared interpolated
//! texts, thread-local copies of the request's texts) decides every route of
//! the 10,000-schedule plan workload exactly as a fresh `Router::plan` per
//! schedule does, and as the stateless `Program::decide` does route by route.

use cavra_app::routing::{PlanView, Router};
use cavra_benches::PlanWorkload;
use cavra_engine::Value;

/// Every field of every route, owners and providers included.
fn views(p: PlanView) -> String {
    format!("{:?} {:?}", p.routes, p.owners)
}

#[test]
fn plan_all_decides_like_plan_and_like_decide() {
    let w = PlanWorkload::new();
    let router = Router::new(&w.program).expect("the routing inputs");
    let all = router.plan_all(w.now, &w.schedules);
    assert_eq!(all.len(), w.schedules.len());
    assert_eq!(all.route_count(), w.schedules.iter().map(|s| s.route_count()).sum::<usize>());

    let program = &w.program;
    let slot = |name: &str| program.input_slot(name).expect("a routing input");
    let (mut delivered, mut windows, mut calendars, mut healthy) = (0, 0, 0, 0);
    for (i, (schedule, batched)) in w.schedules.iter().zip(all.iter()).enumerate() {
        let batched = batched.expect("decides");
        let single = router.plan(w.now, schedule).expect("decides");
        assert_eq!(views(batched), views(single.view()), "schedule {i}");
        // Spot-check one schedule in 25 (of every status) against stateless decisions.
        if i % 25 != 0 && i % 25 != 7 {
            continue;
        }
        let mut routes = batched.routes.iter();
        for owner in &schedule.owners {
            for provider in &owner.providers {
                let mut inputs = program.inputs();
                inputs.set(slot("now"), Value::Time(w.now));
                inputs.set(slot("schedule_id"), Value::Text(schedule.schedule_id.clone()));
                inputs.set(slot("schedule_status"), Value::Text(schedule.status.clone()));
                inputs.set(slot("owner"), Value::Text(owner.owner.clone()));
                inputs.set(slot("provider"), Value::Text(provider.clone()));
                let outcome = program.decide("route", &inputs).expect("decides");
                let route = routes.next().expect("one route per owner and provider");
                assert_eq!((route.action(), route.category()), (outcome.action, outcome.category), "schedule {i}");
                assert_eq!(route.reason(), outcome.reason().unwrap_or(&Value::Null), "schedule {i}");
                for (name, value) in outcome.fields() {
                    assert_eq!(route.field(name), value, "schedule {i}, field {name}");
                }
                match route.category() {
                    "deliver" => delivered += 1,
                    "maintenance_window" => windows += 1,
                    "owner_calendar" => calendars += 1,
                    _ => healthy += 1,
                }
            }
        }
    }
    // The workload exercises every arm.
    assert!(delivered > 0 && windows > 0 && calendars > 0 && healthy > 0, "{delivered} {windows} {calendars} {healthy}");
}

/// The plan command's counts for a whole batch (`count_open_all`: the
/// history split by schedule across the cores, each notification's state
/// decided without making its lifecycle entry) are what the lifecycle
/// derived in full says of each plan's schedule. 1,200 of the workload's
/// plans: enough to be split across the cores (from 512 schedules on).
#[test]
fn a_batchs_counts_are_what_the_full_lifecycle_says() {
    use cavra_app::lifecycle;
    use cavra_app::store::History;
    use cavra_benches::plan_store::{fresh_sqlite, PlanStore};
    use std::collections::HashMap;
    let w = PlanWorkload::new();
    let router = Router::new(&w.program).expect("the routing inputs");
    let mut plans = w.documents(&router.plan_all(w.now, &w.schedules[..1200]));
    let saving = PlanStore::new(&w);
    let dir = std::env::temp_dir().join(format!("cavra-batch-counts-{}", std::process::id()));
    let store = fresh_sqlite(&dir, &mut 0);
    saving.lifecycle_counts(&store, &mut plans);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);

    let mut history = History::default();
    lifecycle::with_plans(&mut history, &plans);
    let full = lifecycle::derive(&saving.packs, &history, w.now, &lifecycle::Options::default()).expect("derives");
    let mut derived: HashMap<&str, (usize, usize)> = HashMap::new();
    for entry in &full.entries {
        let counts = derived.entry(entry.route.schedule_id.as_str()).or_default();
        match entry.state.as_str() {
            "pending_delivery" => counts.0 += 1,
            "delivery_failed" => counts.1 += 1,
            _ => {}
        }
    }
    let mut pending = 0;
    for plan in &plans {
        let (p, f) = derived.get(plan.schedule_id.as_str()).copied().unwrap_or_default();
        assert_eq!((plan.pending_count, plan.failed_count), (Some(p), Some(f)), "{}", plan.schedule_id);
        pending += p;
    }
    assert!(pending > 0, "the batch has pending notifications to count");
}
