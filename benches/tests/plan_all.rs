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
                assert_eq!((route.action, route.category), (outcome.action, outcome.category), "schedule {i}");
                assert_eq!(Some(&*route.reason), outcome.reason(), "schedule {i}");
                match route.category {
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
