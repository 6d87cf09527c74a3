//! Plans built through the CLI (in-process) are stored append-only, and
//! `go-rollback-drill-routes` lists their route decisions with every filter.

use crate::backend::Backend;
use crate::common::{dry_plan, ids, micros, plan_args, routes, sorted, store_plan, three_plans, typed, SCHEDULE, T1, T2, T3};
use crate::fixture::Fixture;
use cavra_app::store::{RouteFilter, SaveOutcome};
use cavra_tests::cavra;
use serde_json::Value as Json;

backend_tests!(
    stored_routes_are_listed_newest_first_with_their_documents,
    the_owner_filter_matches_the_escalation_owner_too,
    action_category_provider_and_schedule_filters,
    since_and_until_are_half_open_and_compare_instants,
    limit_and_offset_page_through_newest_first,
    the_same_plan_again_stores_nothing_new,
    a_plan_and_its_routes_are_written_in_one_transaction,
    a_batch_of_plans_is_stored_whole_or_not_at_all,
    a_batch_larger_than_one_statement_is_stored_whole_or_not_at_all,
    no_store_is_a_dry_run,
    the_routes_table,
    reopening_a_store_keeps_its_plans,
);

fn route_ids_of(plan: &Json) -> Vec<String> {
    sorted(ids(plan["route_decisions"].as_array().unwrap()))
}

fn assert_newest_first(routes: &[Json]) {
    for pair in routes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ta, tb) = (a["created_at"].as_str().unwrap(), b["created_at"].as_str().unwrap());
        assert!(ta > tb || (ta == tb && a["route_id"].as_str() < b["route_id"].as_str()), "not newest first: {a} then {b}");
    }
}

fn stored_routes_are_listed_newest_first_with_their_documents(backend: &Backend) {
    let store = backend.store();
    let plans = three_plans(&store);
    let all = routes(&store, &[]);
    assert_eq!(all.len(), 9);
    assert_newest_first(&all);
    assert_eq!(all[0]["created_at"], T3);
    assert_eq!(all[8]["created_at"], T1);
    let expected: Vec<String> = plans.iter().flat_map(route_ids_of).collect();
    assert_eq!(sorted(ids(&all)), sorted(expected));
    // The stored document is the route decision of the plan, field for field.
    let planned: Vec<&Json> = plans.iter().flat_map(|p| p["route_decisions"].as_array().unwrap()).collect();
    for route in &all {
        // A listed route also says when the store wrote it (wall clock, never hashed).
        let mut route = route.clone();
        assert!(route.as_object_mut().unwrap().remove("recorded_at").is_some_and(|t| t.is_string()), "{route}");
        let route = &route;
        assert!(planned.contains(&route), "stored route differs from the plan: {route}");
        for key in ["route_id", "plan_id", "schedule_id", "owner", "escalation_owner", "provider", "action", "category", "created_at"] {
            assert!(route.get(key).is_some(), "{key} missing");
        }
    }
}

fn the_owner_filter_matches_the_escalation_owner_too(backend: &Backend) {
    let store = backend.store();
    three_plans(&store);
    let lead = routes(&store, &["--owner", "platform-lead"]);
    assert_eq!(lead.len(), 6, "platform-lead escalates release-governance's six routes");
    assert!(lead.iter().all(|r| r["owner"] == "release-governance" && r["escalation_owner"] == "platform-lead"));
    assert_newest_first(&lead);
    let governance = routes(&store, &["--owner", "release-governance"]);
    assert_eq!(sorted(ids(&governance)), sorted(ids(&lead)));
    let operations = routes(&store, &["--owner", "platform-operations"]);
    assert_eq!(operations.len(), 3);
    assert!(operations.iter().all(|r| r["owner"] == "platform-operations"));
    assert!(routes(&store, &["--owner", "nobody"]).is_empty());
}

fn action_category_provider_and_schedule_filters(backend: &Backend) {
    let store = backend.store();
    three_plans(&store);
    let deliver = routes(&store, &["--action", "deliver"]);
    assert_eq!(deliver.len(), 3);
    assert!(deliver.iter().all(|r| r["action"] == "deliver" && r["category"] == "deliver"));
    assert_eq!(routes(&store, &["--action", "suppress"]).len(), 6);

    let maintenance = routes(&store, &["--category", "maintenance_window"]);
    assert_eq!(maintenance.len(), 1);
    assert_eq!(maintenance[0]["provider"], "slack");
    assert_eq!(maintenance[0]["created_at"], T2);
    assert_eq!(maintenance[0]["maintenance_window_id"], "production-change-freeze");
    let calendar = routes(&store, &["--category", "owner_calendar"]);
    assert_eq!(calendar.len(), 2);
    assert!(calendar.iter().all(|r| r["created_at"] == T3 && r["owner"] == "release-governance"));
    let healthy = routes(&store, &["--category", "healthy_schedule"]);
    assert_eq!(healthy.len(), 3);
    assert!(healthy.iter().all(|r| r["created_at"] == T1));

    let slack = routes(&store, &["--provider", "slack"]);
    assert_eq!(slack.len(), 3);
    assert!(slack.iter().all(|r| r["provider"] == "slack"));
    assert_eq!(routes(&store, &["--provider", "teams"]).len(), 6);

    assert_eq!(routes(&store, &["--schedule-id", SCHEDULE]).len(), 9);
    assert!(routes(&store, &["--schedule-id", "another_schedule"]).is_empty());

    // Filters combine.
    let combined = routes(&store, &["--action", "suppress", "--provider", "teams", "--owner", "platform-lead"]);
    assert_eq!(combined.len(), 2, "healthy at T1 and on holiday at T3");
    assert_eq!(combined[0]["created_at"], T3);
    assert_eq!(combined[1]["created_at"], T1);
}

fn since_and_until_are_half_open_and_compare_instants(backend: &Backend) {
    let store = backend.store();
    three_plans(&store);
    let at = |filters: &[&str]| -> Vec<String> {
        let mut times: Vec<String> = routes(&store, filters).iter().map(|r| r["created_at"].as_str().unwrap().to_string()).collect();
        times.dedup();
        times
    };
    assert_eq!(at(&["--since", T2]), [T3, T2], "since is inclusive");
    assert_eq!(at(&["--until", T2]), [T1], "until is exclusive");
    assert_eq!(at(&["--since", T2, "--until", T3]), [T2]);
    assert!(at(&["--since", T3, "--until", T3]).is_empty());
    assert_eq!(at(&["--since", "2026-05-21T19:00:00.000001Z"]), [T3]);
    // The same instant written with another offset.
    assert_eq!(at(&["--since", "2026-05-21T21:00:00+02:00"]), [T3, T2]);
    assert_eq!(at(&["--until", "2026-05-22T05:00:00+02:00"]), [T2, T1], "T3 is 05:00 at +02:00");
    assert_eq!(routes(&store, &["--since", T2]).len(), 6);

    for bad in [&["--since", "yesterday"][..], &["--until", "2026-05-22"], &["--since", T3, "--until", T1]] {
        let mut argv = vec!["runtime", "go-rollback-drill-routes", "--store", &store];
        argv.extend_from_slice(bad);
        let run = cavra(&argv);
        assert_eq!(run.code, 2, "{bad:?}");
        assert!(run.stderr.starts_with("error: --"), "{bad:?}: {}", run.stderr);
    }
}

fn limit_and_offset_page_through_newest_first(backend: &Backend) {
    let store = backend.store();
    three_plans(&store);
    let all = routes(&store, &[]);
    let mut paged = Vec::new();
    for offset in ["0", "4", "8"] {
        let page = routes(&store, &["--limit", "4", "--offset", offset]);
        assert!(page.len() <= 4);
        paged.extend(page);
    }
    assert_eq!(ids(&paged), ids(&all));
    assert_eq!(routes(&store, &["--limit", "1"]).len(), 1);
    assert!(routes(&store, &["--offset", "9"]).is_empty());
    assert_eq!(ids(&routes(&store, &["--owner", "platform-lead", "--limit", "2", "--offset", "2"])), ids(&routes(&store, &["--owner", "platform-lead"]))[2..4]);
    assert_eq!(routes(&store, &["--limit", "1000"]).len(), 9);
    for limit in ["0", "1001"] {
        let run = cavra(&["runtime", "go-rollback-drill-routes", "--store", &store, "--limit", limit]);
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("--limit: expected 1 to 1000"), "{}", run.stderr);
    }
    // The default limit is 100, checked through the API.
    assert_eq!(RouteFilter::default().limit, 100);
}

fn the_same_plan_again_stores_nothing_new(backend: &Backend) {
    let store = backend.store();
    let first = store_plan(&store, T2);
    let before = routes(&store, &[]);
    let again = store_plan(&store, T2);
    assert_eq!(first, again, "same inputs and time, same plan and ids");
    let after = routes(&store, &[]);
    assert_eq!(after, before);
    assert_eq!(after.len(), 3);
    let opened = backend.open();
    assert_eq!(opened.save_plan(&typed(&first)).unwrap(), SaveOutcome::AlreadyStored);
    // A different plan with the same id is not written over the stored one.
    let mut changed = first.clone();
    changed["reason"] = "rewritten".into();
    changed["route_decisions"][0]["reason"] = "rewritten".into();
    assert_eq!(opened.save_plan(&typed(&changed)).unwrap(), SaveOutcome::AlreadyStored);
    assert_eq!(routes(&store, &[]), before);
    // A new time is a new plan.
    store_plan(&store, T3);
    assert_eq!(routes(&store, &[]).len(), 6);
}

fn a_plan_and_its_routes_are_written_in_one_transaction(backend: &Backend) {
    let store = backend.store();
    store_plan(&store, T1);
    let before = routes(&store, &[]);
    let plan = dry_plan(T2);
    // The second route repeats the first route's id, and its time is
    // written another way (`+00:00`), so that SQLite, too, keeps the
    // routes a row each: the second route's insert fails after the plan
    // row and the first route were written.
    let mut broken = plan.clone();
    let first_id = broken["route_decisions"][0]["route_id"].clone();
    broken["route_decisions"][1]["route_id"] = first_id;
    broken["route_decisions"][1]["created_at"] = T2.replace('Z', "+00:00").into();
    let opened = backend.open();
    let error = opened.save_plan(&typed(&broken)).unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot write the store {}: ", backend.shown())), "{error}");
    assert_eq!(routes(&store, &[]), before, "nothing of the failed plan is kept");
    // Routes that share their plan's time repeat an id: refused too (in
    // SQLite, whose plan row keeps such routes, before anything is written).
    let mut repeated = plan.clone();
    repeated["route_decisions"][2]["route_id"] = repeated["route_decisions"][0]["route_id"].clone();
    assert!(opened.save_plan(&typed(&repeated)).is_err());
    assert_eq!(routes(&store, &[]), before, "nothing of the refused plan is kept");
    // The plan row was rolled back too: the intact plan is stored in full.
    assert_eq!(opened.save_plan(&typed(&plan)).unwrap(), SaveOutcome::Stored { routes: 3 });
    assert_eq!(routes(&store, &[]).len(), 6);

    // A plan document without its id is refused before anything is written.
    let mut no_id = dry_plan(T3);
    no_id.as_object_mut().unwrap().remove("plan_id");
    let error = opened.save_plan(&typed(&no_id)).unwrap_err().to_string();
    assert_eq!(error, format!("cannot store the record in {}: plan: `plan_id` is missing", backend.shown()));
}

fn a_batch_of_plans_is_stored_whole_or_not_at_all(backend: &Backend) {
    let [t1, t2, t3] = &Fixture::get().plans;
    let store = backend.open();
    // The last plan's second route repeats its first route's id (its time
    // written another way, so that both backends write a row per route).
    let mut broken = t3.clone();
    broken.route_decisions[1].route_id = broken.route_decisions[0].route_id.clone();
    broken.route_decisions[1].created_at = broken.route_decisions[1].created_at.replace('Z', "+00:00").into();
    let error = store.save_plans(&[t1.clone(), t2.clone(), broken], &[]).unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot write the store {}: ", backend.shown())), "{error}");
    assert!(store.latest_plans(None).unwrap().is_empty() && store.routes(&RouteFilter::default()).unwrap().is_empty(), "none of the batch is kept");
    // The first of a plan id in a batch is the one stored; a plan already stored is left as it is.
    let mut changed = t2.clone();
    changed.reason = "rewritten".into();
    let outcomes = store.save_plans(&[t1.clone(), t2.clone(), changed, t3.clone()], &[]).unwrap();
    let new = SaveOutcome::Stored { routes: 3 };
    assert_eq!(outcomes, [new.clone(), new.clone(), SaveOutcome::AlreadyStored, new]);
    assert_eq!(store.latest_plans(Some(micros(T2))).unwrap(), std::slice::from_ref(t2));
    assert_eq!(store.save_plans(&[t3.clone(), t1.clone()], &[]).unwrap(), [SaveOutcome::AlreadyStored, SaveOutcome::AlreadyStored]);
    assert_eq!(store.routes(&RouteFilter::default()).unwrap().len(), 9);
}

/// Copies of the T2 plan with its first route only, under new plan and route ids: more plans
/// (and routes) than one PostgreSQL statement inserts, so a batch spans several statements.
fn many_plans(count: usize) -> Vec<cavra_app::records::Plan> {
    let t2 = &Fixture::get().plans[1];
    (0..count)
        .map(|i| {
            let mut plan = t2.clone();
            plan.plan_id = format!("plan_{i:016x}");
            plan.route_decisions.truncate(1);
            let route = &mut plan.route_decisions[0];
            route.plan_id = plan.plan_id.clone().into();
            route.route_id = format!("{}_{i:05}", route.route_id).into();
            plan
        })
        .collect()
}

fn a_batch_larger_than_one_statement_is_stored_whole_or_not_at_all(backend: &Backend) {
    const PLANS: usize = 2_001;
    let store = backend.open();
    let mut plans = many_plans(PLANS);
    let first_route = plans[0].route_decisions[0].route_id.clone();
    plans.last_mut().unwrap().route_decisions[0].route_id = first_route;
    assert!(store.save_plans(&plans, &[]).is_err(), "the last plan's route repeats the first plan's route id");
    assert!(store.latest_plans(None).unwrap().is_empty(), "nothing of the batch is kept");
    // The last plan's route names another plan: found once every plan row of the batch is written.
    let mut plans = many_plans(PLANS);
    plans.last_mut().unwrap().route_decisions[0].plan_id = "plan_elsewhere".into();
    let error = store.save_plans(&plans, &[]).unwrap_err().to_string();
    assert!(error.contains("`plan_id` is plan_elsewhere"), "{error}");
    assert!(store.latest_plans(None).unwrap().is_empty(), "nothing of the batch is kept");
    let plans = many_plans(PLANS);
    let outcomes = store.save_plans(&plans, &[]).unwrap();
    assert!(outcomes.iter().all(|o| *o == SaveOutcome::Stored { routes: 1 }));
    let page = |offset: u64| store.routes(&RouteFilter { limit: 1000, offset, ..RouteFilter::default() }).unwrap().len();
    assert_eq!((page(0), page(PLANS as u64 - 1)), (1000, 1), "every route is stored");
    // Again, with one new plan at the end: only it is new.
    let mut again = plans;
    again.extend(many_plans(PLANS + 1).pop());
    let outcomes = store.save_plans(&again, &[]).unwrap();
    assert_eq!(outcomes.iter().filter(|o| **o == SaveOutcome::AlreadyStored).count(), PLANS);
    assert_eq!(outcomes.last(), Some(&SaveOutcome::Stored { routes: 1 }));
    assert_eq!(page(PLANS as u64), 1);
}

/// `--no-store` writes nothing (whether the store itself was created is
/// backend-specific: see `failures::listing_a_missing_sqlite_store_creates_nothing`).
fn no_store_is_a_dry_run(backend: &Backend) {
    let mut args = plan_args(T2);
    args.extend(["--no-store".to_string(), "--store".to_string(), backend.store()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(serde_json::from_str::<Json>(&run.stdout).unwrap()["stored"], false);
    assert!(routes(&backend.store(), &[]).is_empty());
    assert!(backend.open().latest_plans(None).unwrap().is_empty());
}

fn the_routes_table(backend: &Backend) {
    let store = backend.store();
    store_plan(&store, T2);
    let run = cavra(&["runtime", "go-rollback-drill-routes", "--store", &store, "--category", "maintenance_window"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[0].starts_with("CREATED_AT            SCHEDULE"), "{}", lines[0]);
    assert!(lines[0].ends_with("REASON"));
    for cell in [T2, SCHEDULE, "release-governance", "platform-lead", "slack", "suppress", "maintenance_window", "production change freeze"] {
        assert!(lines[1].contains(cell), "{cell} missing: {}", lines[1]);
    }
    assert_eq!(lines[2], "1 route");
}

fn reopening_a_store_keeps_its_plans(backend: &Backend) {
    store_plan(&backend.store(), T1);
    for _ in 0..2 {
        assert_eq!(backend.open().routes(&RouteFilter::default()).unwrap().len(), 3);
    }
    let filter = RouteFilter { limit: 2, offset: 1, ..RouteFilter::default() };
    assert_eq!(backend.open().routes(&filter).unwrap().len(), 2);
}
