//! Delivery end to end: the real `cavra` binary builds and stores the sample
//! plan and delivers through its built-in connectors to a recording HTTP
//! server on 127.0.0.1. Checks retries, idempotency keys,
//! re-runs, process isolation, and that canary secrets from the private
//! connector config reach no output, store or outbox.

use cavra_tests::cavra_binary;
use cavra_tests::provider::Provider as Recorder;
use serde_json::{json, Value as Json};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::Command;

const CANARY_PATH: &str = "CANARY-PATH-7f3a9c";
const CANARY_TOKEN: &str = "CANARY-TOKEN-51d2e8";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn deliver(dir: &Path, server: &Recorder, extra: &[&str]) -> Run {
    let config = dir.join("connectors.json");
    let teams_url = format!("http://127.0.0.1:{}/webhook/{CANARY_PATH}?token={CANARY_TOKEN}", server.port);
    let document = json!({"connectors": {"teams": {"url_env": "CAVRA_TEST_TEAMS_URL"}, "slack": {"url": teams_url.replace("webhook", "services")}}});
    std::fs::write(&config, document.to_string()).expect("write config");
    let examples = cavra_tests::crate_dir().join("../examples");
    let output = Command::new(cavra_binary())
        .current_dir(dir)
        .env("CAVRA_CONNECTOR_CONFIG", &config)
        .env("CAVRA_TEST_TEAMS_URL", &teams_url)
        .env_remove("CAVRA_PLUGIN_PATH")
        .env_remove("CAVRA_STORE")
        .args(["runtime", "go-rollback-drill-notifications-deliver", "--mode", "promoted"])
        .arg("--rollback-drill-schedule-path")
        .arg(examples.join("rollback-drill-schedule.json"))
        .arg("--rollback-drill-history-path")
        .arg(examples.join("rollback-drills.json"))
        .arg("--routing-policy")
        .arg(examples.join("routing-policy.json"))
        .args(["--at", "2026-05-21T19:00:00Z", "--backoff-ms", "1", "--attempt-timeout-ms", "5000", "--json"])
        .args(extra)
        .output()
        .expect("run cavra");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("deliver-{name}")))
}

/// Every file under `dir` as text (the store, its WAL, the outbox), for canary checks.
fn everything_written(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            all.push_str(&everything_written(&path));
        } else if path.file_name().is_some_and(|n| n != "connectors.json") {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()));
        }
    }
    all
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in [CANARY_PATH, CANARY_TOKEN] {
        assert!(!text.contains(canary), "{what} contains the canary {canary}");
    }
}

#[test]
fn delivers_retries_skips_on_rerun_and_keeps_secrets_out() {
    let dir = fresh_dir("retry");
    // The sample plan at 19:00 delivers on teams to two owners (slack is frozen):
    // the first request gets a 500 and is retried.
    let server = Recorder::scripted(&[500, 200]);
    let run = deliver(&dir, &server, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let result: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!((result["delivered_count"].as_u64(), result["failed_count"].as_u64(), result["attempt_count"].as_u64()), (Some(2), Some(0), Some(3)));
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.path.contains(CANARY_PATH)), "the plugin used the private URL");
    let keys: Vec<&str> = requests.iter().map(|r| r.key()).collect();
    assert_eq!(keys[0], keys[1], "a retry resends the same idempotency key");
    assert_ne!(keys[1], keys[2], "each route has its own key");
    // The key is the notification id (README, "Notification lifecycle"): `ntf_` and 16 hex
    // digits of SHA-256 over the canonical JSON of the schedule, episode (the
    // due time), alert level, owner and provider (sorted keys, no spaces).
    let documented = |owner: &str| {
        let canonical = format!(
            r#"{{"alert_level":"warning","episode":"2026-05-30T15:40:00Z","owner":"{owner}","provider":"teams","schedule_id":"go_backend_python_fallback_monthly"}}"#
        );
        let digest = sha2::Sha256::digest(canonical.as_bytes());
        format!("ntf_{}", digest.iter().take(8).map(|b| format!("{b:02x}")).collect::<String>())
    };
    let mut received: Vec<&str> = keys.clone();
    received.dedup();
    received.sort();
    let mut expected = vec![documented("release-governance"), documented("platform-operations")];
    expected.sort();
    assert_eq!(received, expected, "providers receive the documented notification key");
    assert!(requests.iter().all(|r| r.body.contains("go_backend_python_fallback_monthly")));
    let retried = result["deliveries"].as_array().unwrap().iter().find(|d| d["attempt"] == 2).expect("a second attempt");
    assert_eq!(retried["outcome"], "delivered");
    assert!(retried["target"].as_str().unwrap().starts_with("http://127.0.0.1"), "the redacted target keeps scheme and host");

    // A re-run sends nothing delivered before: the server sees nothing new.
    let again = deliver(&dir, &server, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again: Json = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!(again["attempt_count"].as_u64(), Some(0));
    let outstanding = again["skipped"].as_array().unwrap().iter().filter(|s| s["state"] == "outstanding").count();
    assert_eq!(outstanding, 2, "both are listed as delivered and waiting: {again}");
    assert_eq!(server.requests().len(), 3);

    assert_no_canary("stdout", &run.stdout);
    assert_no_canary("stderr", &run.stderr);
    assert_no_canary("the store and outbox", &everything_written(&dir));
}

#[test]
fn a_400_is_not_retried_and_fails_the_run() {
    let dir = fresh_dir("permanent");
    let server = Recorder::scripted(&[400]);
    let run = deliver(&dir, &server, &[]);
    assert_eq!(run.code, 1, "a failed delivery exits 1: {}", run.stderr);
    let result: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!((result["failed_count"].as_u64(), result["attempt_count"].as_u64()), (Some(2), Some(2)), "one attempt per route");
    assert!(result["deliveries"].as_array().unwrap().iter().all(|d| d["outcome"] == "permanent_failure" && d["status_code"] == 400));
    assert_no_canary("stdout", &run.stdout);
    assert_no_canary("stderr", &run.stderr);
    // The failures are stored; a plain re-run does not send them again (only
    // an approved retry does), lists them, and exits 0: nothing failed in it.
    let again = deliver(&dir, &server, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let again: Json = serde_json::from_str(&again.stdout).expect("JSON");
    assert_eq!((again["attempt_count"].as_u64(), again["earlier_failed_count"].as_u64()), (Some(0), Some(2)));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn process_isolation_delivers_through_child_processes() {
    let dir = fresh_dir("isolated");
    let server = Recorder::scripted(&[200]);
    let run = deliver(&dir, &server, &["--plugin-isolation", "process"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let result: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(result["delivered_count"].as_u64(), Some(2));
    assert_eq!(server.requests().len(), 2);
    assert_no_canary("stdout", &run.stdout);
}

#[test]
fn plugins_list_shows_the_built_in_connectors() {
    let output = Command::new(cavra_binary()).args(["plugins", "list", "--json"]).env_remove("CAVRA_PLUGIN_PATH").output().expect("run cavra");
    assert!(output.status.success());
    let report: Json = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut providers: Vec<&str> =
        report["loaded"].as_array().unwrap().iter().flat_map(|p| p["providers"].as_array().unwrap().iter().filter_map(Json::as_str)).collect();
    providers.sort();
    assert_eq!(providers, ["email", "outbox", "slack", "teams", "webhook"]);
    assert!(report["loaded"].as_array().unwrap().iter().all(|p| p["origin"] == "builtin" && p["path"].is_null()), "{report:#}");
}
