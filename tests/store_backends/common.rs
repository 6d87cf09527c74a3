//! The sample schedule, its plans and the CLI calls the suite makes.

use cavra_app::records::Plan;
use cavra_tests::provider::{cavra_process, Provider};
use cavra_tests::{cavra, crate_dir, Run};
use serde_json::Value as Json;
use std::path::Path;

/// Healthy: three `healthy_schedule` suppressions.
pub const T1: &str = "2026-05-10T03:00:00Z";
/// Due soon: release-governance/slack in a maintenance window, two deliveries.
pub const T2: &str = "2026-05-21T19:00:00Z";
/// Due soon: release-governance on holiday (two `owner_calendar`), one delivery.
pub const T3: &str = "2026-05-22T03:00:00Z";
pub const SCHEDULE: &str = "go_backend_python_fallback_monthly";
/// An approved retry while the provider still fails.
pub const FIRST_RETRY: &str = "2026-05-21T19:50:00Z";
/// An approved retry once the provider answers again.
pub const SECOND_RETRY: &str = "2026-05-21T20:00:00Z";
/// release-governance acknowledges its teams notification.
pub const FIRST_ACK: &str = "2026-05-21T20:10:00Z";
/// platform-operations resolves its teams notification (in the fixture).
pub const SECOND_ACK: &str = "2026-05-21T20:20:00Z";

pub fn example(name: &str) -> String {
    crate_dir().join("../examples").join(name).to_string_lossy().into_owned()
}

/// `cavra runtime COMMAND` on the sample schedule, history and policy at `at`, with `--json`.
pub fn sample_args(command: &str, schedule: &str, at: &str) -> Vec<String> {
    let (history, policy) = (example("rollback-drills.json"), example("routing-policy.json"));
    let args = ["runtime", command, "--mode", "promoted", "--rollback-drill-schedule-path", schedule, "--rollback-drill-history-path", &history];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--routing-policy", &policy, "--at", at, "--json"].map(String::from));
    args
}

pub fn plan_args(at: &str) -> Vec<String> {
    sample_args("go-rollback-drill-notification-plan", &example("rollback-drill-schedule.json"), at)
}

/// A plan document as the store takes it.
pub fn typed(plan: &Json) -> Plan {
    serde_json::from_value(plan.clone()).expect("a plan document")
}

/// Runs `args` in-process; exit 0 and JSON on stdout.
pub fn json_of(args: &[String]) -> Json {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", run.stdout))
}

/// Builds and stores the plan at `at`; returns the plan document.
pub fn store_plan(store: &str, at: &str) -> Json {
    let mut args = plan_args(at);
    args.extend(["--store".to_string(), store.to_string()]);
    json_of(&args)
}

/// The plan at `at` (with `extra` flags), built without storing it.
pub fn dry_plan_with(schedule: &str, at: &str, extra: &[&str]) -> Json {
    let mut args = sample_args("go-rollback-drill-notification-plan", schedule, at);
    args.push("--no-store".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    json_of(&args)
}

pub fn dry_plan(at: &str) -> Json {
    dry_plan_with(&example("rollback-drill-schedule.json"), at, &[])
}

/// Stores the three example plans (T1, T2, T3).
pub fn three_plans(store: &str) -> Vec<Json> {
    [T1, T2, T3].iter().map(|at| store_plan(store, at)).collect()
}

/// `go-rollback-drill-routes --json` with `filters`; returns the routes.
pub fn routes(store: &str, filters: &[&str]) -> Vec<Json> {
    let mut argv = vec!["runtime", "go-rollback-drill-routes", "--store", store, "--json"];
    argv.extend_from_slice(filters);
    let run = cavra(&argv);
    assert_eq!(run.code, 0, "{filters:?}: {}", run.stderr);
    let doc: Json = serde_json::from_str(&run.stdout).expect("routes JSON");
    let list = doc["routes"].as_array().expect("routes").clone();
    assert_eq!(doc["count"], list.len(), "count");
    list
}

pub fn ids(routes: &[Json]) -> Vec<String> {
    routes.iter().map(|r| r["route_id"].as_str().unwrap().to_string()).collect()
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// Microseconds since the epoch of an RFC 3339 time.
pub fn micros(text: &str) -> i64 {
    cavra_engine::time::parse_time(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// Records as JSON without what the store adds when it writes them (`recorded_at`, wall clock).
macro_rules! as_written {
    ($records:expr) => {{
        let mut json = serde_json::to_value($records).expect("records serialize");
        $crate::common::strip(&mut json, &["recorded_at"]);
        json
    }};
}

/// Removes the `keys` from every object in `json`, however deep.
pub fn strip(json: &mut Json, keys: &[&str]) {
    match json {
        Json::Object(map) => {
            map.retain(|key, _| !keys.contains(&key.as_str()));
            map.values_mut().for_each(|v| strip(v, keys));
        }
        Json::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
        _ => {}
    }
}

/// `cavra runtime go-rollback-drill-notifications-deliver` of the sample at `at` as a child
/// process in `dir`, sending through the connectors of `config`; a second failed attempt is the last.
pub fn deliver(dir: &Path, config: &Path, store: &str, at: &str) -> Run {
    let mut args = sample_args("go-rollback-drill-notifications-deliver", &example("rollback-drill-schedule.json"), at);
    args.extend(["--store", store, "--backoff-ms", "1", "--max-attempts", "2", "--attempt-timeout-ms", "5000"].map(String::from));
    in_child(dir, config, &args)
}

/// An approved `go-rollback-drill-delivery-retry` at `at` of every failed notification, as a child process.
pub fn retry(dir: &Path, config: &Path, store: &str, approval_id: &str, at: &str) -> Run {
    let args = ["runtime", "go-rollback-drill-delivery-retry", "--approval-id", approval_id, "--approved-by", "release-lead", "--at", at];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--store", store, "--backoff-ms", "1", "--max-attempts", "1", "--json"].map(String::from));
    in_child(dir, config, &args)
}

/// The sample's deliveries failing and recovering, as child processes against `store` in `dir`: a
/// delivery at T2 while `provider` answers 500 (two attempts each), an approved retry at
/// FIRST_RETRY that fails too, and one at SECOND_RETRY once it answers 200. Each run, named.
pub fn fail_then_recover(dir: &Path, provider: &Provider, store: &str) -> [(&'static str, Run); 3] {
    let config = provider.connector_config(dir);
    provider.set_status(500);
    let failed = deliver(dir, &config, store, T2);
    let failed_again = retry(dir, &config, store, "CHG-2291", FIRST_RETRY);
    provider.set_status(200);
    let delivered = retry(dir, &config, store, "apr_rollback_drill_retry", SECOND_RETRY);
    [("delivery at T2", failed), ("first retry", failed_again), ("second retry", delivered)]
}

fn in_child(dir: &Path, config: &Path, args: &[String]) -> Run {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    cavra_process(dir, &argv, &[("CAVRA_CONNECTOR_CONFIG", config)])
}

/// `cavra runtime go-rollback-drill-notification-ack SCHEDULE --provider teams --owner OWNER` at `at`, in-process.
pub fn ack(store: &str, owner: &str, at: &str, extra: &[&str]) -> Json {
    let args = ["runtime", "go-rollback-drill-notification-ack", SCHEDULE, "--provider", "teams", "--owner", owner, "--acknowledged-by", owner];
    let mut args: Vec<String> = args.map(String::from).to_vec();
    args.extend(["--store", store, "--at", at, "--json"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    json_of(&args)
}
