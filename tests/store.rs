//! The plan store: plans built through the CLI (in-process) are stored
//! append-only in an SQLite file, and `go-rollback-drill-routes` lists their
//! route decisions with every filter.
//!
//! Each test uses its own store under `CARGO_TARGET_TMPDIR`. A failing write
//! is simulated in a way that also works for root (which ignores file
//! permissions): the store is opened with `SqliteStore::open_read_only`
//! (`SQLITE_OPEN_READ_ONLY`), and for the CLI the store path is a directory.

use cavra_app::store::{RouteFilter, SaveOutcome, SqliteStore, Store};
use cavra_tests::{cavra, crate_dir};
use serde_json::Value as Json;
use std::path::PathBuf;

/// Healthy: three `healthy_schedule` suppressions.
const T1: &str = "2026-05-10T03:00:00Z";
/// Due soon: release-governance/slack in a maintenance window, two deliveries.
const T2: &str = "2026-05-21T19:00:00Z";
/// Due soon: release-governance on holiday (two `owner_calendar`), one delivery.
const T3: &str = "2026-05-22T03:00:00Z";
const SCHEDULE: &str = "go_backend_python_fallback_monthly";

/// A fresh store path, unique to the test.
fn fresh_store(test: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("store-tests").join(test);
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("cavra.db").to_string_lossy().into_owned()
}

fn example(name: &str) -> String {
    crate_dir().join("../examples").join(name).to_string_lossy().into_owned()
}

fn plan_args(at: &str) -> Vec<String> {
    [
        "runtime",
        "go-rollback-drill-notification-plan",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        &example("rollback-drill-schedule.json"),
        "--rollback-drill-history-path",
        &example("rollback-drills.json"),
        "--routing-policy",
        &example("routing-policy.json"),
        "--at",
        at,
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

/// Builds and stores the plan at `at`; returns the plan document.
/// A plan document as the store takes it.
fn typed(plan: &Json) -> cavra_app::records::Plan {
    serde_json::from_value(plan.clone()).expect("a plan document")
}

fn store_plan(store: &str, at: &str) -> Json {
    let mut args = plan_args(at);
    args.extend(["--store".to_string(), store.to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "plan at {at}: {}", run.stderr);
    serde_json::from_str(&run.stdout).expect("plan JSON")
}

/// The plan at `at`, built without storing it.
fn dry_plan(at: &str) -> Json {
    let mut args = plan_args(at);
    args.push("--no-store".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).expect("plan JSON")
}

/// Stores the three example plans (T1, T2, T3).
fn three_plans(store: &str) -> Vec<Json> {
    [T1, T2, T3].iter().map(|at| store_plan(store, at)).collect()
}

/// `go-rollback-drill-routes --json` with `filters`; returns the routes.
fn routes(store: &str, filters: &[&str]) -> Vec<Json> {
    let mut argv = vec!["runtime", "go-rollback-drill-routes", "--store", store, "--json"];
    argv.extend_from_slice(filters);
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "{filters:?}: {}", run.stderr);
    let doc: Json = serde_json::from_str(&run.stdout).expect("routes JSON");
    let list = doc["routes"].as_array().expect("routes").clone();
    assert_eq!(doc["count"], list.len(), "count");
    list
}

fn ids(routes: &[Json]) -> Vec<String> {
    routes.iter().map(|r| r["route_id"].as_str().unwrap().to_string()).collect()
}

fn route_ids_of(plan: &Json) -> Vec<String> {
    let mut out = ids(plan["route_decisions"].as_array().unwrap());
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn assert_newest_first(routes: &[Json]) {
    for pair in routes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let (ta, tb) = (a["created_at"].as_str().unwrap(), b["created_at"].as_str().unwrap());
        assert!(ta > tb || (ta == tb && a["route_id"].as_str() < b["route_id"].as_str()), "not newest first: {a} then {b}");
    }
}

#[test]
fn stored_routes_are_listed_newest_first_with_their_documents() {
    let store = fresh_store("newest_first");
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

#[test]
fn the_owner_filter_matches_the_escalation_owner_too() {
    let store = fresh_store("owner");
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

#[test]
fn action_category_provider_and_schedule_filters() {
    let store = fresh_store("filters");
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

#[test]
fn since_and_until_are_half_open_and_compare_instants() {
    let store = fresh_store("since_until");
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

#[test]
fn limit_and_offset_page_through_newest_first() {
    let store = fresh_store("paging");
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

#[test]
fn the_same_plan_again_stores_nothing_new() {
    let store = fresh_store("append_only");
    let first = store_plan(&store, T2);
    let before = routes(&store, &[]);
    let again = store_plan(&store, T2);
    assert_eq!(first, again, "same inputs and time, same plan and ids");
    let after = routes(&store, &[]);
    assert_eq!(after, before);
    assert_eq!(after.len(), 3);
    let opened = SqliteStore::open(&store).unwrap();
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

#[test]
fn a_failed_write_names_the_store_and_keeps_the_earlier_plans() {
    let store = fresh_store("failed_write");
    store_plan(&store, T1);
    store_plan(&store, T2);
    let before = routes(&store, &[]);
    assert_eq!(before.len(), 6);

    // A read-only connection: root cannot write through it either.
    let read_only = SqliteStore::open_read_only(&store).unwrap();
    assert_eq!(read_only.routes(&RouteFilter::default()).unwrap().len(), 6, "reading still works");
    let error = read_only.save_plan(&typed(&dry_plan(T3))).unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot write the store {store}: ")), "{error}");
    assert!(error.contains("readonly"), "{error}");
    drop(read_only);
    assert_eq!(routes(&store, &[]), before, "the earlier plans are intact and nothing of T3 was written");
    assert!(routes(&store, &["--since", T3]).is_empty());

    // Through the CLI: a store path that is a folder cannot be opened. The
    // plan is not printed and the exit status is 2.
    let folder = fresh_store("failed_write_folder");
    std::fs::create_dir_all(&folder).unwrap();
    let mut args = plan_args(T3);
    args.extend(["--store".to_string(), folder.clone()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cavra(&argv);
    assert_eq!(run.code, 2);
    assert_eq!(run.stdout, "");
    assert!(run.stderr.starts_with(&format!("error: cannot open the store {folder}: ")), "{}", run.stderr);
    // The listing reports the same store error.
    let run = cavra(&["runtime", "go-rollback-drill-routes", "--store", &folder]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(&format!("cannot open the store {folder}")), "{}", run.stderr);
    assert_eq!(routes(&store, &[]), before);
}

#[test]
fn a_plan_and_its_routes_are_written_in_one_transaction() {
    let store = fresh_store("transaction");
    store_plan(&store, T1);
    let before = routes(&store, &[]);
    let plan = dry_plan(T2);
    // The second route repeats the first route's id: its insert fails after
    // the plan row and the first route were written.
    let mut broken = plan.clone();
    let first_id = broken["route_decisions"][0]["route_id"].clone();
    broken["route_decisions"][1]["route_id"] = first_id;
    let opened = SqliteStore::open(&store).unwrap();
    let error = opened.save_plan(&typed(&broken)).unwrap_err().to_string();
    assert!(error.starts_with(&format!("cannot write the store {store}: ")), "{error}");
    assert_eq!(routes(&store, &[]), before, "nothing of the failed plan is kept");
    // The plan row was rolled back too: the intact plan is stored in full.
    assert_eq!(opened.save_plan(&typed(&plan)).unwrap(), SaveOutcome::Stored { routes: 3 });
    assert_eq!(routes(&store, &[]).len(), 6);

    // A plan document without its id is refused before anything is written.
    let mut no_id = dry_plan(T3);
    no_id.as_object_mut().unwrap().remove("plan_id");
    let error = opened.save_plan(&typed(&no_id)).unwrap_err().to_string();
    assert_eq!(error, format!("cannot store the record in {store}: plan: `plan_id` is missing"));
}

#[test]
fn no_store_is_a_dry_run_and_a_missing_store_has_no_routes() {
    let store = fresh_store("dry_run");
    let mut args = plan_args(T2);
    args.extend(["--no-store".to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(cavra(&argv).code, 0);
    assert!(!std::path::Path::new(&store).exists());
    assert!(routes(&store, &[]).is_empty());
    assert!(!std::path::Path::new(&store).exists(), "listing does not create the store");
}

#[test]
fn the_routes_table() {
    let store = fresh_store("table");
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

#[test]
fn reopening_a_store_keeps_its_plans() {
    let store = fresh_store("reopen");
    store_plan(&store, T1);
    for _ in 0..2 {
        let opened = SqliteStore::open(&store).unwrap();
        assert_eq!(opened.routes(&RouteFilter::default()).unwrap().len(), 3);
    }
    let filter = RouteFilter { limit: 2, offset: 1, ..RouteFilter::default() };
    assert_eq!(SqliteStore::open(&store).unwrap().routes(&filter).unwrap().len(), 2);
}
