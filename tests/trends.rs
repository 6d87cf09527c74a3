//! Suppression trends over stored plans: counts by category, owner, provider
//! and schedule, the latest suppressed events, filters, and the metadata row.

use cavra_tests::cavra;
use serde_json::Value as Json;
use std::path::PathBuf;

fn store(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trends").join(name);
    let dir = cavra_tests::fresh_dir(dir);
    dir.join("cavra.db").display().to_string()
}

fn plan(store: &str, at: &str) {
    let run = cavra(&[
        "runtime",
        "go-rollback-drill-notification-plan",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        "../examples/rollback-drill-schedule.json",
        "--rollback-drill-history-path",
        "../examples/rollback-drills.json",
        "--routing-policy",
        "../examples/routing-policy.json",
        "--store",
        store,
        "--at",
        at,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

fn trends(store: &str, extra: &[&str]) -> Json {
    let mut args = vec!["runtime", "go-rollback-drill-suppression-trends", "--store", store, "--at", "2026-06-01T00:00:00Z", "--json"];
    args.extend_from_slice(extra);
    let run = cavra(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn suppressed_routes_are_counted_per_category_owner_provider_and_schedule() {
    let store = store("counts");
    // Healthy (3 suppressed), change freeze (1), regional holiday (2).
    for at in ["2026-05-10T03:00:00Z", "2026-05-21T19:00:00Z", "2026-05-22T03:00:00Z"] {
        plan(&store, at);
    }
    let all = trends(&store, &[]);
    assert_eq!(all["kind"], "go-backend-rollback-drill-routing-suppression-trend");
    assert_eq!(all["suppressed_route_count"], 6);
    assert_eq!(all["by_category"], serde_json::json!({"healthy_schedule": 3, "maintenance_window": 1, "owner_calendar": 2}));
    assert_eq!(all["by_owner"], serde_json::json!({"platform-operations": 1, "release-governance": 5}));
    assert_eq!(all["by_provider"], serde_json::json!({"slack": 3, "teams": 3}));
    assert_eq!(all["by_schedule"]["go_backend_python_fallback_monthly"], 6);
    let latest = all["latest_suppressed"].as_array().unwrap();
    assert_eq!(latest.len(), 6);
    assert_eq!(latest[0]["created_at"], "2026-05-22T03:00:00Z", "newest first");
    assert!(latest.iter().all(|r| r["action"] == "suppress"));
    assert_eq!(all["stored"], true);

    // The escalation owner matches too; filters combine.
    let lead_on_slack = trends(&store, &["--owner", "platform-lead", "--provider", "slack"]);
    assert_eq!(lead_on_slack["suppressed_route_count"], 3);
    assert_eq!(lead_on_slack["by_owner"], serde_json::json!({"release-governance": 3}));
    let other = trends(&store, &["--schedule-id", "another_schedule"]);
    assert_eq!(other["suppressed_route_count"], 0);
}

#[test]
fn a_missing_store_reports_nothing_and_creates_nothing() {
    let store = store("missing");
    let doc = trends(&store, &[]);
    assert_eq!(doc["suppressed_route_count"], 0);
    assert_eq!(doc["stored"], false);
    assert!(!std::path::Path::new(&store).exists());
}
