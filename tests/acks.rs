//! Acknowledgements and the escalation plan: a delivery run at 19:00Z sends
//! release-governance/teams (30 minutes, escalating to platform-lead) and
//! platform-operations/teams (60 minutes) to a local provider; the
//! escalation plan is computed from the store at later times, before and
//! after an acknowledgement.

use cavra_app::store::{SqliteStore, Store};
use cavra_tests::provider::{cavra_process, Provider};
use cavra_tests::{cavra, crate_dir};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

const PLANNED: &str = "2026-05-21T19:00:00Z";
const SCHEDULE: &str = "go_backend_python_fallback_monthly";

fn fresh_store(test: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("acks-tests").join(test);
    let dir = cavra_tests::fresh_dir(dir);
    dir.join("cavra.db").to_string_lossy().into_owned()
}

fn example(name: &str) -> String {
    crate_dir().join("../examples").join(name).to_string_lossy().into_owned()
}

/// Delivers the sample plan at 19:00Z through a provider that accepts everything.
fn store_plan(store: &str) -> Json {
    let provider = Provider::start(200);
    let dir = Path::new(store).parent().expect("store folder").to_path_buf();
    let config = provider.connector_config(&dir);
    let (schedule, history, policy) = (example("rollback-drill-schedule.json"), example("rollback-drills.json"), example("routing-policy.json"));
    let args = [
        "runtime",
        "go-rollback-drill-notifications-deliver",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        &schedule,
        "--rollback-drill-history-path",
        &history,
        "--routing-policy",
        &policy,
        "--at",
        PLANNED,
        "--store",
        store,
        "--json",
    ];
    let run = cavra_process(&dir, &args, &[("CAVRA_CONNECTOR_CONFIG", &config)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let delivered: Json = serde_json::from_str(&run.stdout).expect("delivery JSON");
    assert_eq!(delivered["delivered_count"], 2, "{delivered}");
    delivered
}

fn escalation(store: &str, at: &str, extra: &[&str]) -> Json {
    let mut argv = vec!["runtime", "go-rollback-drill-escalation-plan", "--store", store, "--at", at, "--json"];
    argv.extend_from_slice(extra);
    let run = cavra(&argv);
    let doc: Json = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("escalation JSON: {}", run.stderr));
    // Exit 3 when critical, so a cron or CI job can act on it.
    assert_eq!(run.code, if doc["alert_level"] == "critical" { 3 } else { 0 }, "{}", run.stderr);
    assert_eq!(doc["schema_version"], "cavra.go-backend-pilot.rollback-drill-escalation-plan.v1");
    doc
}

fn route<'a>(doc: &'a Json, owner: &str) -> &'a Json {
    doc["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner"] == owner && r["provider"] == "teams")
        .unwrap_or_else(|| panic!("no teams route of {owner}: {doc}"))
}

fn ack(store: &str, extra: &[&str]) -> cavra_tests::Run {
    let mut argv = vec!["runtime", "go-rollback-drill-notification-ack", SCHEDULE, "--provider", "teams", "--store", store, "--json"];
    argv.extend_from_slice(extra);
    cavra(&argv)
}

#[test]
fn at_twenty_minutes_both_delivered_routes_are_outstanding() {
    let store = fresh_store("twenty");
    let plan = store_plan(&store);
    let doc = escalation(&store, "2026-05-21T19:20:00Z", &[]);
    // Both teams notifications, and release-governance on slack, suppressed by the freeze until 20:00.
    assert_eq!(doc["routes"].as_array().unwrap().len(), 3, "{doc}");
    assert_eq!((doc["outstanding_count"].as_u64(), doc["breached_count"].as_u64()), (Some(2), Some(0)));
    assert_eq!(doc["alert_level"], "warning");
    let rg = route(&doc, "release-governance");
    assert_eq!(rg["provider"], "teams");
    let frozen = doc["routes"].as_array().unwrap().iter().find(|r| r["provider"] == "slack").expect("the slack notification");
    assert_eq!((frozen["state"].as_str(), frozen["suppressed_until"].as_str()), (Some("suppressed"), Some("2026-05-21T20:00:00Z")));
    assert_eq!(rg["plan_id"], plan["plan_id"]);
    assert_eq!((rg["state"].as_str(), rg["delivered_at"].as_str()), (Some("outstanding"), Some(PLANNED)));
    assert!(rg["notification_id"].as_str().is_some_and(|id| id.starts_with("ntf_")));
    assert_eq!(rg["acknowledgement_minutes"], 30);
    assert_eq!(rg["recommended_action"], "wait_for_acknowledgement");
    assert_eq!(rg["reason"], "waiting for release-governance to acknowledge; 10 minutes left before escalation to platform-lead");
    assert_eq!(rg["acknowledgement_state"], Json::Null);
    let po = route(&doc, "platform-operations");
    assert_eq!((po["acknowledgement_minutes"].as_u64(), po["breached"].as_bool()), (Some(60), Some(false)));
}

#[test]
fn at_forty_five_minutes_release_governance_is_escalated_to_platform_lead() {
    let store = fresh_store("forty_five");
    store_plan(&store);
    let doc = escalation(&store, "2026-05-21T19:45:00Z", &[]);
    assert_eq!((doc["outstanding_count"].as_u64(), doc["breached_count"].as_u64()), (Some(2), Some(1)));
    assert_eq!(doc["alert_level"], "critical");
    let rg = route(&doc, "release-governance");
    assert_eq!(rg["recommended_action"], "escalate_missed_drill_notification");
    assert_eq!(rg["escalation_owner"], "platform-lead");
    assert_eq!((rg["outstanding"].as_bool(), rg["breached"].as_bool()), (Some(true), Some(true)));
    assert_eq!(rg["reason"], "release-governance did not acknowledge within 30 minutes; escalate to platform-lead (15 minutes late)");
    let po = route(&doc, "platform-operations");
    assert_eq!(po["recommended_action"], "wait_for_acknowledgement");
    assert_eq!((po["outstanding"].as_bool(), po["breached"].as_bool()), (Some(true), Some(false)));
    // --acknowledgement-minutes overrides the stored per-route minutes.
    let strict = escalation(&store, "2026-05-21T19:45:00Z", &["--acknowledgement-minutes", "10"]);
    assert_eq!(strict["breached_count"], 2);
}

#[test]
fn an_acknowledgement_stops_the_escalation() {
    let store = fresh_store("acknowledged");
    store_plan(&store);
    let run = ack(&store, &["--acknowledged-by", "release-governance", "--at", "2026-05-21T19:40:00Z", "--notes", "drill booked for Friday"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let record: Json = serde_json::from_str(&run.stdout).unwrap();
    let id = record["ack_id"].as_str().unwrap();
    assert!(id.starts_with("ack_") && id.len() == 20, "{id}");
    assert_eq!(record["acknowledgement_state"], "acknowledged");
    // With neither a notification id nor an owner, it answers every open
    // notification of the schedule on teams delivered before it: both owners.
    assert_eq!(record["notification_ids"].as_array().map(Vec::len), Some(2), "{record}");
    let stored = SqliteStore::open(&store).unwrap().acknowledgements(SCHEDULE).unwrap();
    let mut listed = serde_json::to_value(&stored).unwrap();
    assert!(listed[0]["recorded_at"].is_string(), "a listed record says when it was written");
    listed[0].as_object_mut().unwrap().remove("recorded_at");
    assert_eq!(listed, serde_json::json!([record.clone()]));

    // Answered notifications are no longer open: the plan lists neither.
    let doc = escalation(&store, "2026-05-21T19:45:00Z", &[]);
    assert!(doc["routes"].as_array().unwrap().iter().all(|r| r["provider"] != "teams"), "{doc}");
    assert_eq!((doc["breached_count"].as_u64(), doc["outstanding_count"].as_u64()), (Some(0), Some(0)));
    // Before the acknowledgement was made, the route was still breached.
    let before = escalation(&store, "2026-05-21T19:35:00Z", &[]);
    assert_eq!(route(&before, "release-governance")["recommended_action"], "escalate_missed_drill_notification");
}

#[test]
fn an_invalid_acknowledgement_state_is_a_usage_error() {
    let store = fresh_store("invalid_state");
    let run = ack(&store, &["--acknowledged-by", "release-governance", "--acknowledgement-state", "seen"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("expected one of acknowledged, dismissed, escalated, resolved"), "{}", run.stderr);
    let empty = ack(&store, &["--acknowledged-by", "  "]);
    assert_eq!(empty.code, 2, "{}", empty.stderr);
    assert!(empty.stderr.contains("--acknowledged-by"), "{}", empty.stderr);
}

#[test]
fn unsafe_notes_are_refused_and_not_stored() {
    let store = fresh_store("unsafe");
    store_plan(&store);
    let run = ack(&store, &["--acknowledged-by", "release-governance", "--notes", "see https://example.com/ticket/1"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("$.notes"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
    assert!(SqliteStore::open(&store).unwrap().acknowledgements(SCHEDULE).unwrap().is_empty());
}
