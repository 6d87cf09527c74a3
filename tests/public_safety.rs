//! Public-safety screening end to end: documents holding a webhook URL, a
//! token, an e-mail address or an IP address are refused with the JSON path
//! of each offending value, nothing is stored, and no canary value reaches
//! any output or the store.

use cavra_tests::cavra;
use std::path::PathBuf;

const CANARIES: &[&str] =
    &["https://hooks.slack.com/services/T0CANARY/B0CANARY/CANARYcanary1234", "xoxb-123456789012-CANARYcanaryCANARY", "canary.owner@example.com", "10.11.12.13"];

fn scratch(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("public-safety").join(name))
}

fn examples(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(cavra_tests::crate_dir().join("../examples").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in CANARIES {
        assert!(!text.contains(canary), "{what} contains the canary {canary}:\n{text}");
    }
}

#[test]
fn an_unsafe_routing_policy_is_refused_and_nothing_is_stored() {
    let dir = scratch("policy");
    let mut policy = examples("routing-policy.json");
    policy["owner_routes"]["release-governance"]["webhook"] = CANARIES[0].into();
    policy["maintenance_windows"][0]["reason"] = format!("ask {}", CANARIES[2]).into();
    policy["owner_calendars"]["release-governance"]["unavailable_windows"][0]["reason"] = CANARIES[3].into();
    policy["slack_token"] = CANARIES[1].into();
    let policy_path = dir.join("policy.json");
    std::fs::write(&policy_path, serde_json::to_string_pretty(&policy).unwrap()).unwrap();
    let store = dir.join("store.db");
    let (policy_arg, store_arg) = (policy_path.display().to_string(), store.display().to_string());
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
        &policy_arg,
        "--store",
        &store_arg,
        "--at",
        "2026-05-21T19:00:00Z",
        "--json",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing is printed as planned: {}", run.stdout);
    for path in [
        "$.owner_routes[\"release-governance\"].webhook: looks like a URL",
        "$.maintenance_windows[0].reason: looks like an e-mail address",
        "$.owner_calendars[\"release-governance\"].unavailable_windows[0].reason: looks like an IP address",
        "$.slack_token: looks like a credential",
    ] {
        assert!(run.stderr.contains(path), "missing {path:?} in:\n{}", run.stderr);
    }
    assert!(run.stderr.contains("nothing was planned or stored"), "{}", run.stderr);
    assert_no_canary("stderr", &run.stderr);
    assert!(!store.exists(), "no store is written for a refused plan");
}

#[test]
fn an_unsafe_evidence_document_fails_its_file_check_without_echoing_values() {
    let dir = scratch("evidence");
    let mut rehearsal = examples("rollback-rehearsal.json");
    rehearsal["runbook_ref"] = CANARIES[0].into();
    rehearsal["evidence_refs"] = serde_json::json!(["go-rollback-rehearsal://ci/fallback-restored", CANARIES[1]]);
    let path = dir.join("rehearsal.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rehearsal).unwrap()).unwrap();
    let path_arg = path.display().to_string();
    let run =
        cavra(&["runtime", "go-rollback-rehearsal", "--mode", "promoted", "--rollback-rehearsal-path", &path_arg, "--at", "2026-05-21T19:00:00Z", "--json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let evidence = report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "go_rollback_rehearsal_evidence").unwrap();
    assert_eq!(evidence["status"], "fail");
    let message = evidence["message"].as_str().unwrap();
    assert!(message.contains("is not public-safe") && message.contains("$.runbook_ref: looks like a URL"), "{message}");
    assert!(message.contains("$.evidence_refs[1]: looks like a credential"), "{message}");
    assert_no_canary("the report", &run.stdout);
    assert_no_canary("stderr", &run.stderr);
}

#[test]
fn a_secret_named_key_is_refused_whatever_it_holds_and_unsafe_keys_are_not_spelled_out() {
    let dir = scratch("keys");
    let mut schedule = examples("rollback-drill-schedule.json");
    schedule["password"] = serde_json::json!(1234);
    schedule["owner_routes"] = serde_json::json!({ CANARIES[0]: { "providers": ["slack"] } });
    let path = dir.join("schedule.json");
    std::fs::write(&path, serde_json::to_string_pretty(&schedule).unwrap()).unwrap();
    let path_arg = path.display().to_string();
    let run = cavra(&[
        "runtime",
        "go-rollback-drill-notification-plan",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        &path_arg,
        "--at",
        "2026-05-21T19:00:00Z",
        "--no-store",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("$.password:"), "{}", run.stderr);
    assert!(run.stderr.contains("$.owner_routes (an object key): looks like a URL"), "{}", run.stderr);
    assert_no_canary("stderr", &run.stderr);
}

#[test]
fn the_public_safe_samples_pass() {
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
        "--at",
        "2026-05-21T19:00:00Z",
        "--no-store",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
