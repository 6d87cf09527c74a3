//! Hardening (the hostile-test findings): each test is named after the
//! finding it shows fixed. Deliveries go to a provider on 127.0.0.1 that the
//! test starts and that records every request it receives.

use cavra_app::records::notification_id;
use cavra_app::store::{Claim, SqliteStore, Store};
use cavra_tests::http::sample_server_in;
use cavra_tests::provider::Provider;
use cavra_tests::{cavra_binary, crate_dir};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const AT: &str = "2026-05-21T19:00:00Z";
const NOTIFY: &str = "/runtime/go-pilot/rollback-drill-notifications";

fn fresh_dir(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hardening").join(name))
}

fn example(name: &str) -> String {
    crate_dir().join("../examples").join(name).display().to_string()
}

/// `cavra runtime go-rollback-drill-notifications-deliver` on the samples, not yet started.
fn delivery(dir: &Path, config: &Path, at: &str, lease: &str) -> Command {
    let mut command = Command::new(cavra_binary());
    command.current_dir(dir);
    for var in ["CAVRA_STORE", "CAVRA_PLUGIN_PATH", "CAVRA_GO_BACKEND_MODE", "CAVRA_CLAIM_LEASE_SECS"] {
        command.env_remove(var);
    }
    command.env("CAVRA_CONNECTOR_CONFIG", config);
    command.args(["runtime", "go-rollback-drill-notifications-deliver", "--mode", "promoted", "--json", "--at", at]);
    command.args(["--rollback-drill-schedule-path", &example("rollback-drill-schedule.json")]);
    command.args(["--rollback-drill-history-path", &example("rollback-drills.json")]);
    command.args(["--routing-policy", &example("routing-policy.json")]);
    command.args(["--store", &dir.join("cavra.db").display().to_string(), "--backoff-ms", "1", "--claim-lease-secs", lease]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// How often each idempotency key reached the provider.
fn arrivals(provider: &Provider) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for key in provider.keys() {
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Successful deliveries recorded per notification.
fn delivered_rows(store: &Path, plan_ids: &[String]) -> BTreeMap<String, usize> {
    let store = SqliteStore::open(store).expect("open the store");
    let mut counts = BTreeMap::new();
    for plan in plan_ids {
        for attempt in store.deliveries(plan).expect("deliveries") {
            if attempt.record.is_delivered() {
                *counts.entry(attempt.notification_id).or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn finding_1_two_concurrent_cli_deliveries_send_each_notification_once() {
    for round in 0..20 {
        let dir = fresh_dir(&format!("concurrent-cli-{round}"));
        let provider = Provider::start(200);
        let config = provider.connector_config(&dir);
        let children: Vec<_> = (0..2).map(|_| delivery(&dir, &config, AT, "2").spawn().expect("start cavra")).collect();
        let mut plans = Vec::new();
        for child in children {
            let output = child.wait_with_output().expect("wait for cavra");
            assert_eq!(output.status.code(), Some(0), "round {round}: {}", String::from_utf8_lossy(&output.stderr));
            let result: Json = serde_json::from_slice(&output.stdout).expect("delivery JSON");
            plans.push(result["plan_id"].as_str().unwrap_or_default().to_string());
        }
        let arrived = arrivals(&provider);
        assert_eq!(arrived.len(), 2, "round {round}: both teams notifications arrived: {arrived:?}");
        assert!(arrived.values().all(|&n| n == 1), "round {round}: a key arrived twice: {arrived:?}");
        plans.dedup();
        let rows = delivered_rows(&dir.join("cavra.db"), &plans);
        assert!(rows.values().all(|&n| n == 1) && rows.len() == 2, "round {round}: one success recorded per notification: {rows:?}");
    }
}

#[test]
fn finding_1_two_concurrent_api_deliveries_send_each_notification_once() {
    for round in 0..10 {
        let dir = fresh_dir(&format!("concurrent-api-{round}"));
        let provider = Provider::start(200);
        let config = provider.connector_config(&dir).display().to_string();
        let server = sample_server_in(&dir, &["--claim-lease-secs", "2"], &[("CAVRA_CONNECTOR_CONFIG", &config)]);
        let body = json!({"provider": "all", "at": AT}).to_string();
        let answers: Vec<u16> = std::thread::scope(|scope| {
            let calls: Vec<_> = (0..2).map(|_| scope.spawn(|| server.post(&format!("{NOTIFY}/deliver"), &body).status)).collect();
            calls.into_iter().map(|c| c.join().expect("request")).collect()
        });
        assert_eq!(answers, [200, 200], "round {round}");
        let arrived = arrivals(&provider);
        assert!(arrived.len() == 2 && arrived.values().all(|&n| n == 1), "round {round}: {arrived:?}");
    }
}

#[test]
fn finding_1_a_dead_runs_claim_holds_until_its_lease_ends_then_is_taken_over() {
    let dir = fresh_dir("takeover");
    let provider = Provider::start(200);
    let config = provider.connector_config(&dir);
    // A plan first (nothing sent), then a claim by a run that "died" holding
    // release-governance's teams notification, for two seconds.
    let run = delivery(&dir, &config, AT, "2").args(["--provider", "slack"]).output().expect("run cavra");
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let id = claimed_by_a_dead_run(&dir, 2_000_000);

    let held = delivery(&dir, &config, AT, "2").output().expect("run cavra");
    let held: Json = serde_json::from_slice(&held.stdout).expect("JSON");
    assert_eq!(provider.keys().iter().filter(|k| **k == id).count(), 0, "a live claim of another run is not taken: {held}");
    let skipped = held["skipped"].as_array().unwrap().iter().find(|s| s["notification_key"] == id.as_str()).expect("listed");
    assert_eq!(skipped["reason"], "another delivery run holds it, or sent it since this run looked");

    std::thread::sleep(std::time::Duration::from_millis(2_200));
    let taken = delivery(&dir, &config, AT, "2").output().expect("run cavra");
    assert_eq!(taken.status.code(), Some(0), "{}", String::from_utf8_lossy(&taken.stderr));
    assert_eq!(provider.keys().iter().filter(|k| **k == id).count(), 1, "the expired claim was taken over");
    assert!(SqliteStore::open(dir.join("cavra.db")).unwrap().expired_claims(i64::MAX).unwrap().is_empty(), "every claim was given up");
}

#[test]
fn finding_1_a_lease_shorter_than_twice_the_heartbeat_is_refused() {
    let dir = fresh_dir("short-lease");
    let config = Provider::start(200).connector_config(&dir);
    let run = delivery(&dir, &config, AT, "0.5").output().expect("run cavra");
    assert_eq!(run.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("--claim-lease-secs: expected 1 to 86400 seconds (at least twice the 500 ms heartbeat), got 0.5"), "{stderr}");
}

/// `cavra runtime ARGS` as a child process in `dir`, with the sample documents' flags appended when `samples`.
fn cavra_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(cavra_binary());
    command.current_dir(dir);
    for var in ["CAVRA_STORE", "CAVRA_PLUGIN_PATH", "CAVRA_CONNECTOR_CONFIG", "CAVRA_GO_BACKEND_MODE", "CAVRA_MAX_DOCUMENT_BYTES", "CAVRA_MAX_ROUTES_PER_PLAN"]
    {
        command.env_remove(var);
    }
    command.args(args).output().expect("run cavra")
}

/// Claims release-governance's teams notification in `dir`'s store for a
/// run that "died" holding it, for `lease_micros`; its id.
fn claimed_by_a_dead_run(dir: &Path, lease_micros: i64) -> String {
    let id = notification_id(
        "go_backend_python_fallback_monthly",
        Some("2026-05-30T15:40:00Z"),
        cavra_app::records::AlertLevel::Warning,
        "release-governance",
        "teams",
    );
    let now = cavra_app::store::wall_micros();
    let dead = Claim {
        notification_id: id.to_string(),
        schedule_id: "go_backend_python_fallback_monthly".into(),
        holder: "dead".into(),
        claimed_at: now,
        expires_at: now + lease_micros,
    };
    assert!(SqliteStore::open(dir.join("cavra.db")).unwrap().claim(&dead, None).unwrap());
    id.to_string()
}

fn plan_args<'a>(dir: &'a Path, schedule: &'a str, policy: &'a str) -> Vec<String> {
    let store = dir.join("cavra.db").display().to_string();
    [
        "runtime",
        "go-rollback-drill-notification-plan",
        "--mode",
        "promoted",
        "--rollback-drill-schedule-path",
        schedule,
        "--rollback-drill-history-path",
        &example("rollback-drills.json"),
        "--routing-policy",
        policy,
        "--at",
        AT,
        "--store",
        &store,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run_plan(dir: &Path, schedule: &str, policy: &str, extra: &[&str]) -> std::process::Output {
    let mut args = plan_args(dir, schedule, policy);
    args.extend(extra.iter().map(|s| s.to_string()));
    cavra_in(dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn finding_2_acknowledgement_minutes_are_whole_minutes_up_to_a_week() {
    let dir = fresh_dir("minutes");
    for (minutes, shown) in [("1e15", "1000000000000000"), ("-5", "-5"), ("0", "0"), ("7.5", "7.5")] {
        let mut policy: Json = serde_json::from_str(&std::fs::read_to_string(example("routing-policy.json")).unwrap()).unwrap();
        policy["owner_routes"]["release-governance"]["acknowledgement_minutes"] = serde_json::from_str(minutes).unwrap();
        let path = dir.join("policy.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        let run = run_plan(&dir, &example("rollback-drill-schedule.json"), &path.display().to_string(), &[]);
        assert_eq!(run.status.code(), Some(2), "{minutes}");
        let expected =
            format!("$.owner_routes[\"release-governance\"].acknowledgement_minutes: expected a whole number of minutes from 1 to 10080 (a week), got {shown}");
        assert!(stderr(&run).contains(&expected), "{minutes}: {}", stderr(&run));
        assert!(!dir.join("cavra.db").exists(), "nothing stored");
    }
}

#[test]
fn finding_2_a_stored_value_out_of_range_never_breaks_the_escalation_plan() {
    // A route stored before the range was checked, with 1e15 minutes.
    let dir = fresh_dir("stored-minutes");
    let run = run_plan(&dir, &example("rollback-drill-schedule.json"), &example("routing-policy.json"), &["--no-store", "--json"]);
    let mut plan: Json = serde_json::from_slice(&run.stdout).expect("plan JSON");
    plan["route_decisions"][1]["acknowledgement_minutes"] = json!(1e15);
    plan["plan_id"] = json!("plan_old0000000000000");
    for route in plan["route_decisions"].as_array_mut().unwrap() {
        route["plan_id"] = json!("plan_old0000000000000");
    }
    SqliteStore::open(dir.join("cavra.db")).unwrap().save_plan(&serde_json::from_value(plan).unwrap()).unwrap();
    let run = cavra_in(&dir, &["runtime", "go-rollback-drill-escalation-plan", "--store", "cavra.db", "--at", "2026-05-21T21:00:00Z", "--json"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let doc: Json = serde_json::from_slice(&run.stdout).unwrap();
    let entries = doc["routes"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "the rest is still computed: {doc}");
    let bad: Vec<&Json> = entries.iter().filter(|e| e["problem"].is_string()).collect();
    assert_eq!(bad.len(), 1, "{doc}");
    assert!(bad[0]["problem"].as_str().unwrap().starts_with("stored acknowledgement_minutes: expected a whole number of minutes from 1 to 10080"), "{doc}");
}

#[test]
fn finding_6_documents_over_the_byte_limit_and_plans_over_the_route_limit_are_refused() {
    let dir = fresh_dir("limits");
    let schedule = example("rollback-drill-schedule.json");
    let run = run_plan(&dir, &schedule, &example("routing-policy.json"), &["--max-document-bytes", "100"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("bytes is over the limit of 100 bytes (--max-document-bytes, CAVRA_MAX_DOCUMENT_BYTES)"), "{}", stderr(&run));
    let run = run_plan(&dir, &schedule, &example("routing-policy.json"), &["--max-routes-per-plan", "2"]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("the plan would have 3 routes, over the limit of 2 (--max-routes-per-plan, CAVRA_MAX_ROUTES_PER_PLAN)"), "{}", stderr(&run));
    assert!(!dir.join("cavra.db").exists(), "nothing stored");
    // A readiness report gets a failing file check for the oversized document (exit 3).
    let run = cavra_in(
        &dir,
        &["runtime", "go-rollback-drill-schedule", "--rollback-drill-schedule-path", &schedule, "--max-document-bytes", "100", "--json", "--at", AT],
    );
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    assert!(String::from_utf8_lossy(&run.stdout).contains("over the limit of 100 bytes"));
    // A FIFO is never opened for reading.
    let fifo = dir.join("schedule.fifo");
    if Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
        let run = run_plan(&dir, &fifo.display().to_string(), &example("routing-policy.json"), &[]);
        assert_eq!(run.status.code(), Some(2));
        assert!(stderr(&run).contains("not a regular file"), "{}", stderr(&run));
    }
}

#[test]
fn finding_7_an_unusable_schedule_is_an_input_error_and_stores_nothing() {
    let dir = fresh_dir("unusable-schedule");
    for (document, says) in [
        ("null", "expected a schedule object, got null"),
        ("42", "expected a schedule object, got a number"),
        ("[]", "expected a schedule object, got a list"),
        (r#"{"schedule_id": "s1", "notification_providers": ["teams"]}"#, "$.owners: expected a non-empty list of owner names"),
        (r#"{"schedule_id": "bad id/../x", "owners": ["ops"]}"#, "$.schedule_id: expected an id of letters, digits"),
    ] {
        let path = dir.join("schedule.json");
        std::fs::write(&path, document).unwrap();
        let run = run_plan(&dir, &path.display().to_string(), &example("routing-policy.json"), &[]);
        assert_eq!(run.status.code(), Some(2), "{document}: {}", stderr(&run));
        assert!(stderr(&run).contains(says) && stderr(&run).contains("schedule.json"), "{document}: {}", stderr(&run));
        assert!(!dir.join("cavra.db").exists(), "{document}: nothing stored");
    }
}

#[test]
fn finding_13_plugins_list_reports_an_unreadable_connector_configuration() {
    let dir = fresh_dir("bad-config");
    let config = dir.join("connectors.json");
    std::fs::write(&config, r#"{"connectors": {"teams": {"url": "CANARY-SECRET-4411"#).unwrap();
    let output =
        Command::new(cavra_binary()).args(["plugins", "list"]).env("CAVRA_CONNECTOR_CONFIG", &config).env_remove("CAVRA_PLUGIN_PATH").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr(&output);
    assert!(stderr.contains("CAVRA_CONNECTOR_CONFIG") && stderr.contains("connectors.json"), "{stderr}");
    assert!(!stderr.contains("CANARY") && !String::from_utf8_lossy(&output.stdout).contains("CANARY"), "no value of it is shown");
}

#[test]
fn finding_8_a_plugin_that_aborts_fails_only_its_delivery_by_default() {
    // One owner, `abort`, on the fixture's provider: its connector calls abort().
    let dir = fresh_dir("aborting-plugin");
    let output = deliver_to_fixture(&dir, "abort", &["--max-attempts", "1", "--attempt-timeout-ms", "3000"]);
    assert_eq!(output.status.code(), Some(1), "the run reports the failed delivery and exits 1: {}", stderr(&output));
    let result: Json = serde_json::from_slice(&output.stdout).expect("--json output is intact");
    assert_eq!((result["delivered_count"].as_u64(), result["failed_count"].as_u64()), (Some(0), Some(1)), "{result}");
    let stored = SqliteStore::open(dir.join("cavra.db")).unwrap().deliveries(result["plan_id"].as_str().unwrap()).unwrap();
    assert_eq!(stored.len(), 1, "the failed attempt is recorded");
}

#[test]
fn finding_12_a_read_only_store_still_answers_reads() {
    let dir = fresh_dir("read-only-store");
    let run = run_plan(&dir, &example("rollback-drill-schedule.json"), &example("routing-policy.json"), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let store = dir.join("cavra.db");
    // Root ignores file permissions: the immutable attribute makes the file read-only for it too.
    let locked = Command::new("chattr").arg("+i").arg(&store).status().is_ok_and(|s| s.success());
    if !locked {
        eprintln!("skipped: chattr +i is not available here, so a read-only store cannot be made");
        return;
    }
    let reads: Vec<std::process::Output> = [
        vec!["runtime", "go-rollback-drill-routes", "--store", "cavra.db", "--json"],
        vec!["runtime", "go-rollback-drill-escalation-plan", "--store", "cavra.db", "--at", AT, "--json"],
        vec!["runtime", "go-rollback-drill-suppression-trends", "--store", "cavra.db", "--at", AT, "--json"],
    ]
    .iter()
    .map(|args| cavra_in(&dir, args))
    .collect();
    let write = run_plan(&dir, &example("rollback-drill-schedule.json"), &example("routing-policy.json"), &[]);
    let _ = Command::new("chattr").arg("-i").arg(&store).status();
    for read in &reads {
        assert_eq!(read.status.code(), Some(0), "{}", stderr(read));
    }
    let trend: Json = serde_json::from_slice(&reads[2].stdout).unwrap();
    assert_eq!(trend["stored"], false, "the trend could not be kept, and says so: {trend}");
    assert_eq!(write.status.code(), Some(2), "writes still fail, naming the store: {}", stderr(&write));
}

#[test]
fn finding_1_the_api_sweeper_takes_over_a_dead_runs_expired_claim() {
    let dir = fresh_dir("sweeper");
    let provider = Provider::start(200);
    let config = provider.connector_config(&dir);
    // Planned (not delivered), then claimed by a run that died a moment later.
    let run = run_plan(&dir, &example("rollback-drill-schedule.json"), &example("routing-policy.json"), &[]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let id = claimed_by_a_dead_run(&dir, 500_000);

    let server = sample_server_in(&dir, &["--claim-lease-secs", "1"], &[("CAVRA_CONNECTOR_CONFIG", &config.display().to_string())]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !provider.keys().contains(&id) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(provider.keys(), vec![id], "the sweeper sent exactly the notification whose claim expired");
    drop(server);
}

#[test]
fn finding_18_refusals_name_the_file_and_a_whole_number_out_of_range_gets_the_range() {
    let dir = fresh_dir("messages");
    let policy = dir.join("policy-list.json");
    std::fs::write(&policy, "[1, 2]").unwrap();
    let run = run_plan(&dir, &example("rollback-drill-schedule.json"), &policy.display().to_string(), &[]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains(&format!("{}: routing policy: expected a JSON object, got [1,2]", policy.display())), "{}", stderr(&run));

    let server = sample_server_in(&dir, &[], &[]);
    let answer = server.get(&format!("{NOTIFY}/routes?limit=1000000000000"));
    assert_eq!(answer.status, 422);
    assert_eq!(answer.error()["message"], "query.limit: expected 1 to 1000, got 1000000000000");
    let answer = server.get(&format!("{NOTIFY}/routes?limit=100000000000000000000000"));
    assert_eq!(answer.error()["message"], "query.limit: expected a smaller whole number, got \"100000000000000000000000\"");
}

#[test]
fn finding_8_a_plugin_that_prints_never_corrupts_the_json_output_even_in_process() {
    let dir = fresh_dir("printing-plugin");
    for isolation in ["in-process", "auto"] {
        let _ = std::fs::remove_file(dir.join("cavra.db"));
        let output = deliver_to_fixture(&dir, "print", &["--plugin-isolation", isolation]);
        assert_eq!(output.status.code(), Some(0), "{isolation}: {}", stderr(&output));
        let result: Json = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{isolation}: stdout is not only JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)));
        assert_eq!(result["delivered_count"], 1, "{isolation}");
        if isolation == "in-process" {
            assert!(stderr(&output).contains("PLUGIN-STDOUT-NOISE"), "the noise went to stderr: {}", stderr(&output));
        }
    }
}

/// Delivers, with `--json`, a schedule whose one owner is `owner` on the
/// misbehaving fixture connector's provider, loaded from a folder of its own.
fn deliver_to_fixture(dir: &Path, owner: &str, extra: &[&str]) -> std::process::Output {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let built = cavra_tests::aborting_fixture();
    std::fs::copy(&built, plugins.join(built.file_name().unwrap())).unwrap();
    let schedule = dir.join("schedule.json");
    let document = json!({"schema_version": "cavra.go-backend-rollback-drill-schedule.v1", "schedule_id": owner, "status": "active",
        "interval_days": 30, "next_due_at": "2026-05-30T15:40:00Z", "owners": [owner], "notification_providers": ["aborter"]});
    std::fs::write(&schedule, document.to_string()).unwrap();
    let policy = dir.join("policy.json");
    std::fs::write(&policy, "{}").unwrap();
    let config = dir.join("connectors.json");
    std::fs::write(&config, json!({"connectors": {"aborting": {"path": dir.join("calls.txt")}}}).to_string()).unwrap();
    let mut args = plan_args(dir, &schedule.display().to_string(), &policy.display().to_string());
    args[1] = "go-rollback-drill-notifications-deliver".into();
    args.extend(["--plugin-dir", &plugins.display().to_string(), "--json"].map(String::from));
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut command = Command::new(cavra_binary());
    command.current_dir(dir).env("CAVRA_CONNECTOR_CONFIG", &config).env_remove("CAVRA_PLUGIN_PATH").env_remove("CAVRA_STORE");
    command.args(&args).output().expect("run cavra")
}
