//! The notification lifecycle end to end (README, "Notification lifecycle"):
//! the real `cavra` binary delivers the sample schedule to a provider on
//! 127.0.0.1 that these tests start, and the escalation plan, acknowledgements,
//! approved retries and connector recovery are read back through the CLI.
//! Each test names the problem of the lifecycle issue it shows fixed.
//!
//! The sample at 19:00Z: the schedule is due soon; release-governance gets
//! teams (30 minutes to acknowledge, escalating to platform-lead) and slack
//! (suppressed by the change freeze until 20:00); platform-operations gets
//! teams (60 minutes, escalating to itself).

use cavra_app::store::{SqliteStore, Store};
use cavra_tests::provider::{cavra_process, Provider};
use cavra_tests::{cavra, check_golden, crate_dir};
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

const SCHEDULE: &str = "go_backend_python_fallback_monthly";

/// A test's folder, its store and its provider.
struct Scene {
    dir: PathBuf,
    store: String,
    provider: Provider,
    config: PathBuf,
}

impl Scene {
    fn new(name: &str, status: u16) -> Scene {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lifecycle").join(name);
        let dir = cavra_tests::fresh_dir(dir);
        let provider = Provider::start(status);
        let config = provider.connector_config(&dir);
        Scene { store: dir.join("cavra.db").display().to_string(), dir, provider, config }
    }

    /// `cavra runtime ARGS --store STORE` as a child process with the connector configuration.
    fn run(&self, args: &[&str]) -> cavra_tests::Run {
        let mut argv = vec!["runtime"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["--store", &self.store]);
        cavra_process(&self.dir, &argv, &[("CAVRA_CONNECTOR_CONFIG", &self.config)])
    }

    /// The sample documents and flags of a plan or a delivery.
    fn plan_args(command: &'static str, at: &str, schedule: &str, policy: &str, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = [
            command,
            "--mode",
            "promoted",
            "--rollback-drill-schedule-path",
            schedule,
            "--rollback-drill-history-path",
            &example("rollback-drills.json"),
            "--routing-policy",
            policy,
            "--at",
            at,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    fn deliver_with(&self, at: &str, schedule: &str, policy: &str, extra: &[&str]) -> (i32, Json) {
        let mut args = Scene::plan_args("go-rollback-drill-notifications-deliver", at, schedule, policy, extra);
        args.extend(["--backoff-ms", "1", "--max-attempts", "2", "--attempt-timeout-ms", "5000"].map(String::from));
        let run = self.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let doc = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("delivery JSON (exit {}): {}", run.code, run.stderr));
        (run.code, doc)
    }

    fn deliver(&self, at: &str, extra: &[&str]) -> (i32, Json) {
        self.deliver_with(at, &example("rollback-drill-schedule.json"), &example("routing-policy.json"), extra)
    }

    fn plan_with(&self, at: &str, policy: &str, extra: &[&str]) -> cavra_tests::Run {
        let args = Scene::plan_args("go-rollback-drill-notification-plan", at, &example("rollback-drill-schedule.json"), policy, extra);
        let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
        argv.extend_from_slice(&["--store", &self.store]);
        let mut full = vec!["runtime"];
        full.extend(argv);
        cavra(&full)
    }

    fn plan(&self, at: &str, extra: &[&str]) -> cavra_tests::Run {
        self.plan_with(at, &example("routing-policy.json"), extra)
    }

    /// The escalation plan at `at`; its exit status is 3 exactly when it is critical.
    fn escalation(&self, at: &str) -> Json {
        let run = cavra(&["runtime", "go-rollback-drill-escalation-plan", "--store", &self.store, "--at", at, "--json"]);
        let doc: Json = serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("escalation JSON: {}", run.stderr));
        assert_eq!(run.code, if doc["alert_level"] == "critical" { 3 } else { 0 }, "{}", run.stderr);
        doc
    }

    fn ack(&self, at: &str, extra: &[&str]) -> Json {
        let mut argv = vec!["runtime", "go-rollback-drill-notification-ack", SCHEDULE, "--store", &self.store, "--at", at, "--json"];
        argv.extend_from_slice(extra);
        let run = cavra(&argv);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str(&run.stdout).expect("ack JSON")
    }

    /// How many plans and route decisions the store holds.
    fn stored_rows(&self) -> usize {
        let store = SqliteStore::open(&self.store).expect("open the store");
        store.latest_plans(None).map(|p| p.len()).unwrap_or(0) + store.routes(&Default::default()).map(|r| r.len()).unwrap_or(0)
    }
}

fn example(name: &str) -> String {
    crate_dir().join("../examples").join(name).display().to_string()
}

/// The open notifications of an escalation plan as `(owner, provider, state)`, sorted.
fn states(plan: &Json) -> Vec<(String, String, String)> {
    let mut all: Vec<(String, String, String)> = plan["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["owner"].as_str().unwrap().to_string(), r["provider"].as_str().unwrap().to_string(), r["state"].as_str().unwrap().to_string()))
        .collect();
    all.sort();
    all
}

fn triple(owner: &str, provider: &str, state: &str) -> (String, String, String) {
    (owner.to_string(), provider.to_string(), state.to_string())
}

fn entry<'a>(plan: &'a Json, owner: &str, provider: &str) -> &'a Json {
    plan["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["owner"] == owner && r["provider"] == provider)
        .unwrap_or_else(|| panic!("no {owner}/{provider}: {plan}"))
}

/// A copy of the sample policy with one more maintenance window (every owner and provider).
fn policy_with_window(dir: &Path, id: &str, start: &str, end: &str) -> String {
    let mut policy: Json = serde_json::from_str(&std::fs::read_to_string(example("routing-policy.json")).unwrap()).unwrap();
    policy["maintenance_windows"].as_array_mut().unwrap().push(json!({"window_id": id, "start_at": start, "end_at": end, "reason": "late freeze"}));
    let path = dir.join(format!("policy-{id}.json"));
    std::fs::write(&path, policy.to_string()).unwrap();
    path.display().to_string()
}

#[test]
fn later_plans_and_typos_hide_nothing_and_breached_notifications_are_escalated_once() {
    let scene = Scene::new("escalated", 200);
    let (code, delivered) = scene.deliver("2026-05-21T19:00:00Z", &[]);
    assert_eq!((code, delivered["delivered_count"].as_u64()), (0, Some(2)), "{delivered}");
    let originals = scene.provider.keys();
    assert!(originals.iter().all(|k| k.starts_with("ntf_")), "the idempotency key is the notification id: {originals:?}");

    let at_20 = scene.escalation("2026-05-21T19:20:00Z");
    assert_eq!(
        states(&at_20),
        [
            triple("platform-operations", "teams", "outstanding"),
            triple("release-governance", "slack", "suppressed"),
            triple("release-governance", "teams", "outstanding")
        ]
    );
    assert_eq!(at_20["alert_level"], "warning");
    let at_45 = scene.escalation("2026-05-21T19:45:00Z");
    assert_eq!(entry(&at_45, "release-governance", "teams")["state"], "breached");
    assert_eq!(entry(&at_45, "platform-operations", "teams")["state"], "outstanding");
    assert_eq!(at_45["alert_level"], "critical");

    // Problem 1: a later plan (one provider; one in a new maintenance window) changes nothing of it.
    let run = scene.plan("2026-05-21T19:46:00Z", &["--provider", "teams"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let frozen = policy_with_window(&scene.dir, "evening-freeze", "2026-05-21T19:45:30Z", "2026-05-21T23:00:00Z");
    let run = scene.plan_with("2026-05-21T19:46:00Z", &frozen, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let suppressed: Json = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(suppressed["deliverable_route_count"], 0, "every route is in the new window: {suppressed}");
    // Problem 2: a typo is a usage error that lists the providers, and stores nothing.
    let stored = scene.stored_rows();
    let typo = scene.plan("2026-05-21T19:46:00Z", &["--provider", "slak"]);
    assert_eq!(typo.code, 2);
    assert!(typo.stderr.contains("its providers are slack, teams"), "{}", typo.stderr);
    assert_eq!(scene.stored_rows(), stored, "a refused plan stores nothing");
    // A store holding an empty plan (as 0.1 stored for a typo) changes nothing either.
    let mut empty: Json = serde_json::from_str(&scene.plan("2026-05-21T19:46:00Z", &["--provider", "slack", "--no-store"]).stdout).unwrap();
    empty["route_decisions"] = json!([]);
    empty["plan_id"] = json!("plan_empty0000000000");
    SqliteStore::open(&scene.store).unwrap().save_plan(&serde_json::from_value(empty).unwrap()).unwrap();
    let at_46 = scene.escalation("2026-05-21T19:46:00Z");
    assert_eq!(
        states(&at_46),
        [
            triple("platform-operations", "teams", "outstanding"),
            triple("release-governance", "slack", "suppressed"),
            triple("release-governance", "teams", "breached")
        ],
        "{at_46}"
    );

    // Problem 7: the delivery run sends the escalations, one per provider of
    // the schedule (platform-lead has no route of its own); a second run sends none.
    let (code, run) = scene.deliver("2026-05-21T19:46:00Z", &[]);
    assert_eq!((code, run["escalation_count"].as_u64()), (0, Some(2)), "{run}");
    let requests = scene.provider.requests();
    let escalations: Vec<_> = requests[2..].iter().collect();
    assert_eq!(escalations.len(), 2, "{requests:?}");
    assert!(escalations.iter().all(|r| r.body.contains("platform-lead") && !originals.contains(&r.key().to_string())));
    let mut paths: Vec<&str> = escalations.iter().map(|r| r.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, ["/slack", "/teams"]);
    let (code, again) = scene.deliver("2026-05-21T19:47:00Z", &[]);
    assert_eq!((code, again["attempt_count"].as_u64(), again["escalation_count"].as_u64()), (0, Some(0), Some(0)), "{again}");
    assert_eq!(scene.provider.requests().len(), 4, "nothing is sent twice");
    let at_48 = scene.escalation("2026-05-21T19:48:00Z");
    let sent: Vec<&Json> = at_48["routes"].as_array().unwrap().iter().filter(|r| r["kind"] == "escalation").collect();
    assert_eq!(sent.len(), 2);
    let breached_id = entry(&at_48, "release-governance", "teams")["notification_id"].clone();
    assert!(sent.iter().all(|e| e["escalates"] == breached_id && e["owner"] == "platform-lead" && e["state"] == "outstanding"));

    // Problem 6: attempts carry the run's logical instant, not the wall clock.
    let store = SqliteStore::open(&scene.store).unwrap();
    let attempts = store.deliveries(delivered["plan_id"].as_str().unwrap()).unwrap();
    assert!(attempts.iter().all(|a| a.at == "2026-05-21T19:00:00Z" && a.recorded_at.is_some()), "{attempts:?}");

    // Acknowledging the breached notification closes its escalations.
    let ack = scene.ack("2026-05-21T19:50:00Z", &["--provider", "teams", "--owner", "release-governance", "--acknowledged-by", "release-governance"]);
    assert_eq!(ack["notification_ids"], json!([breached_id]));
    let at_51 = scene.escalation("2026-05-21T19:51:00Z");
    assert_eq!(states(&at_51), [triple("platform-operations", "teams", "outstanding"), triple("release-governance", "slack", "suppressed")], "{at_51}");
    // Views as of an earlier instant ignore the acknowledgement and the escalations.
    assert_eq!(states(&scene.escalation("2026-05-21T19:45:00Z")), states(&at_45));
}

#[test]
fn acknowledgement_minutes_given_to_a_delivery_decide_what_is_breached() {
    let scene = Scene::new("minutes", 200);
    scene.deliver("2026-05-21T19:00:00Z", &[]);
    // At 19:10 nothing is breached under the frozen minutes (30 and 60) ...
    let (_, run) = scene.deliver("2026-05-21T19:10:00Z", &[]);
    assert_eq!(run["escalation_count"], 0, "{run}");
    // ... but both are under 5 minutes: platform-lead gets slack and teams, and
    // platform-operations (its own escalation owner) its route's teams.
    let (code, run) = scene.deliver("2026-05-21T19:11:00Z", &["--acknowledgement-minutes", "5"]);
    assert_eq!((code, run["escalation_count"].as_u64()), (0, Some(3)), "{run}");
    let bad = scene.run(&["go-rollback-drill-escalation-plan", "--acknowledgement-minutes", "0"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--acknowledgement-minutes: expected a whole number of minutes from 1 to 10080 (a week), got 0"), "{}", bad.stderr);
}

#[test]
fn an_acknowledgement_answers_only_the_owner_it_names() {
    // Problem 4: both owners get teams; release-governance's answer leaves platform-operations outstanding.
    let scene = Scene::new("two_owners", 200);
    scene.deliver("2026-05-21T19:00:00Z", &[]);
    let ack = scene.ack("2026-05-21T19:10:00Z", &["--provider", "teams", "--owner", "release-governance", "--acknowledged-by", "release-governance"]);
    assert_eq!(ack["notification_ids"].as_array().map(Vec::len), Some(1), "{ack}");
    let plan = scene.escalation("2026-05-21T19:20:00Z");
    assert_eq!(states(&plan), [triple("platform-operations", "teams", "outstanding"), triple("release-governance", "slack", "suppressed")]);
    // By notification id, exactly that one; an id the schedule does not have is an input error.
    let id = entry(&plan, "platform-operations", "teams")["notification_id"].as_str().unwrap().to_string();
    let ack = scene.ack(
        "2026-05-21T19:25:00Z",
        &["--provider", "teams", "--notification-id", &id, "--acknowledged-by", "ops-lead", "--acknowledgement-state", "resolved"],
    );
    assert_eq!(ack["notification_ids"], json!([id]));
    assert_eq!(states(&scene.escalation("2026-05-21T19:30:00Z")), [triple("release-governance", "slack", "suppressed")]);
    let unknown = cavra(&[
        "runtime",
        "go-rollback-drill-notification-ack",
        SCHEDULE,
        "--store",
        &scene.store,
        "--provider",
        "teams",
        "--notification-id",
        "ntf_0000000000000000",
        "--acknowledged-by",
        "ops",
    ]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("--notification-id: schedule go_backend_python_fallback_monthly has no notification ntf_0000000000000000"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn planned_is_not_delivered() {
    // Problem 3: a plan without a delivery runs no acknowledgement timer.
    let scene = Scene::new("planned", 200);
    assert_eq!(scene.plan("2026-05-21T19:00:00Z", &[]).code, 0);
    let plan = scene.escalation("2026-05-21T21:00:00Z");
    assert_eq!(plan["alert_level"], "warning", "pending, not breached: {plan}");
    for entry in plan["routes"].as_array().unwrap() {
        assert_eq!((entry["state"].as_str(), entry["recommended_action"].as_str()), (Some("pending_delivery"), Some("deliver_notification")), "{entry}");
        assert!(entry["delivered_at"].is_null() && entry["last_attempt"].is_null());
    }
    // The freeze ended at 20:00: the slack notification is pending again; before, it was suppressed.
    assert_eq!(entry(&scene.escalation("2026-05-21T19:30:00Z"), "release-governance", "slack")["state"], "suppressed");
}

#[test]
fn failed_deliveries_wait_for_an_approved_retry_which_leaves_evidence_of_the_recovery() {
    let scene = Scene::new("retry", 500);
    // The private connector URL carries canaries that must reach no record.
    let url = scene.provider.url(&format!("hooks/{CANARY_PATH}?token={CANARY_TOKEN}"));
    std::fs::write(&scene.config, json!({"connectors": {"teams": {"url": url}, "slack": {"url": url}}}).to_string()).unwrap();
    let (code, failed) = scene.deliver("2026-05-21T19:00:00Z", &[]);
    assert_eq!((code, failed["failed_count"].as_u64()), (1, Some(2)), "{failed}");
    let sent = scene.provider.requests().len();
    assert_eq!(sent, 4, "two attempts each");
    let plan = scene.escalation("2026-05-21T19:45:00Z");
    let rg = entry(&plan, "release-governance", "teams");
    assert_eq!((rg["state"].as_str(), rg["recommended_action"].as_str()), (Some("delivery_failed"), Some("retry_failed_delivery")));
    assert_eq!((rg["last_attempt"]["outcome"].as_str(), rg["last_attempt"]["status_code"].as_u64()), (Some("failed"), Some(500)));
    assert_eq!((plan["alert_level"].as_str(), plan["failed_count"].as_u64()), (Some("critical"), Some(2)));

    // A plain re-run sends nothing to it, lists the failures and exits 0.
    let (code, rerun) = scene.deliver("2026-05-21T19:46:00Z", &[]);
    assert_eq!((code, rerun["attempt_count"].as_u64(), rerun["earlier_failed_count"].as_u64()), (0, Some(0), Some(2)), "{rerun}");
    assert_eq!(scene.provider.requests().len(), sent);

    // Without an approval: refused, nothing sent or stored.
    let refused = scene.run(&["go-rollback-drill-delivery-retry", "--approved-by", "release-lead", "--at", "2026-05-21T20:00:00Z"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--approval-id: a retry needs an approval"), "{}", refused.stderr);
    assert_eq!(scene.provider.requests().len(), sent);

    // With an approval while the provider still fails: exit 1, the record keeps the failures.
    let run = scene.run(&[
        "go-rollback-drill-delivery-retry",
        "--approval-id",
        "CHG-2291",
        "--approved-by",
        "release-lead",
        "--at",
        "2026-05-21T19:50:00Z",
        "--backoff-ms",
        "1",
        "--max-attempts",
        "1",
        "--json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed_again: Json = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((failed_again["delivered_count"].as_u64(), failed_again["failed_count"].as_u64()), (Some(0), Some(2)), "{failed_again}");
    assert_eq!(failed_again["recoveries"], json!([]));
    let sent = sent + 2;

    // With an approval, and the provider answering again.
    scene.provider.set_status(200);
    let run = scene.run(&[
        "go-rollback-drill-delivery-retry",
        "--approval-id",
        "apr_rollback_drill_retry",
        "--approved-by",
        "release-lead",
        "--provider",
        "teams",
        "--at",
        "2026-05-21T20:00:00Z",
        "--backoff-ms",
        "1",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let retry: Json = serde_json::from_str(&run.stdout).unwrap();
    assert!(retry["retry_id"].as_str().is_some_and(|id| id.starts_with("rtr_")), "{retry}");
    assert_eq!((retry["delivered_count"].as_u64(), retry["failed_count"].as_u64()), (Some(2), Some(0)));
    assert_eq!(retry["notifications"][0]["outcome"], "delivered");
    let recovery = &retry["recoveries"][0];
    assert_eq!((recovery["provider"].as_str(), recovery["approval_id"].as_str()), (Some("teams"), Some("apr_rollback_drill_retry")));
    assert_eq!((recovery["first_failure_at"].as_str(), recovery["recovered_at"].as_str()), (Some("2026-05-21T19:00:00Z"), Some("2026-05-21T20:00:00Z")));
    assert_eq!(recovery["last_failure_at"], "2026-05-21T19:50:00Z");
    assert_eq!(recovery["time_to_recovery_seconds"], 3600);
    assert_eq!(recovery["notifications"].as_array().map(Vec::len), Some(2));
    assert_eq!(scene.provider.requests().len(), sent + 2);
    // Delivered now: outstanding from the retry's instant.
    let after = scene.escalation("2026-05-21T20:10:00Z");
    assert_eq!(entry(&after, "release-governance", "teams")["delivered_at"], "2026-05-21T20:00:00Z");

    // A second retry finds nothing to do: exit 0, no record.
    let again = scene.run(&["go-rollback-drill-delivery-retry", "--approval-id", "apr_rollback_drill_retry", "--approved-by", "release-lead", "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(serde_json::from_str::<Json>(&again.stdout).unwrap()["retried"], false);
    let listed: Json = serde_json::from_str(&scene.run(&["go-rollback-drill-delivery-retries", "--json"]).stdout).unwrap();
    assert_eq!(listed["count"], 2, "the failed retry is kept too");
    assert!(listed["retries"][0]["recorded_at"].is_string());
    assert_eq!(listed["retries"][0]["approval_id"], "apr_rollback_drill_retry", "newest first");
    let recoveries: Json = serde_json::from_str(&scene.run(&["go-rollback-drill-connector-recovery", "--provider", "teams", "--json"]).stdout).unwrap();
    assert_eq!(recoveries["count"], 1, "recorded once: {recoveries}");
    assert_eq!(recoveries["recoveries"][0]["kind"], "go-backend-rollback-drill-connector-recovery");
    // No connector URL, token or configuration value anywhere in the evidence or the store.
    for canary in [CANARY_PATH, CANARY_TOKEN] {
        assert!(!recoveries.to_string().contains(canary) && !listed.to_string().contains(canary) && !run.stdout.contains(canary));
        assert!(!everything_in(&scene.dir).contains(canary), "the store holds {canary}");
    }
}

const CANARY_PATH: &str = "CANARY-PATH-3e9d71";
const CANARY_TOKEN: &str = "CANARY-TOKEN-8b24c0";

/// Every file of a folder but the connector configuration, as text.
fn everything_in(dir: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_file() && path.file_name().is_some_and(|n| n != "connectors.json") {
            all.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()));
        }
    }
    all
}

#[test]
fn a_rise_to_critical_is_a_new_notification_and_a_healthy_plan_closes_everything() {
    let scene = Scene::new("episode", 200);
    let schedule = example("rollback-drill-schedule.json");
    scene.deliver("2026-05-21T19:00:00Z", &[]);
    // The drill is overdue on 5 June (critical), during a freeze until 18:00.
    let frozen = policy_with_window(&scene.dir, "june-freeze", "2026-06-05T00:00:00Z", "2026-06-05T18:00:00Z");
    let (code, stale) = scene.deliver_with("2026-06-05T12:00:00Z", &schedule, &frozen, &[]);
    assert_eq!((code, stale["alert_level"].as_str(), stale["attempt_count"].as_u64()), (0, Some("critical"), Some(0)), "{stale}");
    let during = scene.escalation("2026-06-05T12:01:00Z");
    let critical: Vec<&Json> = during["routes"].as_array().unwrap().iter().filter(|r| r["alert_level"] == "critical" && r["kind"] == "notification").collect();
    assert_eq!(critical.len(), 3, "a rise to critical is a new notification, held by the freeze: {during}");
    assert!(critical.iter().all(|r| r["state"] == "suppressed" && r["suppressed_until"] == "2026-06-05T18:00:00Z"));
    assert_eq!(entry(&during, "release-governance", "teams")["state"], "breached", "the warning stays open while its successor waits");
    assert_eq!(scene.provider.requests().len(), 2, "nothing went out during the freeze");

    // After the freeze the critical notifications go out, and close the warnings (and their escalations).
    let (code, after) = scene.deliver_with("2026-06-05T18:30:00Z", &schedule, &frozen, &[]);
    assert_eq!((code, after["delivered_count"].as_u64()), (0, Some(3)), "{after}");
    let plan = scene.escalation("2026-06-05T18:31:00Z");
    assert!(plan["routes"].as_array().unwrap().iter().all(|r| r["alert_level"] == "critical" && r["state"] == "outstanding"), "{plan}");
    assert_eq!(plan["routes"].as_array().unwrap().len(), 3);

    // The drill was run: a healthy plan closes everything open for the schedule.
    let mut done: Json = serde_json::from_str(&std::fs::read_to_string(&schedule).unwrap()).unwrap();
    done["next_due_at"] = json!("2026-07-05T15:40:00Z");
    let done_path = scene.dir.join("schedule-after-drill.json");
    std::fs::write(&done_path, done.to_string()).unwrap();
    let args =
        Scene::plan_args("go-rollback-drill-notification-plan", "2026-06-06T09:00:00Z", &done_path.display().to_string(), &example("routing-policy.json"), &[]);
    let mut argv: Vec<&str> = vec!["runtime"];
    argv.extend(args.iter().map(String::as_str));
    argv.extend(["--store", scene.store.as_str()]);
    let healthy = cavra(&argv);
    assert_eq!(healthy.code, 0, "{}", healthy.stderr);
    assert_eq!(serde_json::from_str::<Json>(&healthy.stdout).unwrap()["alert_level"], "healthy");
    let closed = scene.escalation("2026-06-06T09:01:00Z");
    assert_eq!((closed["alert_level"].as_str(), closed["routes"].as_array().map(Vec::len)), (Some("healthy"), Some(0)), "{closed}");
}

#[test]
fn routes_and_latest_plans_are_pinned_to_an_instant() {
    let scene = Scene::new("pinned", 200);
    assert_eq!(scene.plan("2026-05-21T19:00:00Z", &[]).code, 0);
    assert_eq!(scene.plan("2026-05-21T20:30:00Z", &[]).code, 0);
    let routes = |at: &str| -> Json {
        serde_json::from_str(&cavra(&["runtime", "go-rollback-drill-routes", "--store", &scene.store, "--at", at, "--json"]).stdout).unwrap()
    };
    assert_eq!(routes("2026-05-21T19:30:00Z")["count"], 3, "the 20:30 plan is after the view");
    assert_eq!(routes("2026-05-21T20:30:00Z")["count"], 6, "at the instant itself it is in");
    let trends: Json = serde_json::from_str(
        &cavra(&["runtime", "go-rollback-drill-suppression-trends", "--store", &scene.store, "--at", "2026-05-21T19:30:00Z", "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(trends["suppressed_route_count"], 1, "{trends}");
}

#[test]
fn a_store_written_by_v0_1_upgrades_in_place() {
    // tests/fixtures/store-v0.1.sqlite (tests/fixtures/store-v0.1.md): a
    // delivery at 19:00 and a slack-only plan at 19:01, written by v0.1,
    // whose escalation plan said `healthy` at 19:45 (it read only the 19:01 plan).
    let scene = Scene::new("upgrade", 200);
    std::fs::copy(crate_dir().join("fixtures/store-v0.1.sqlite"), &scene.store).expect("copy the fixture");
    let plan = scene.escalation("2026-05-21T19:45:00Z");
    let golden = crate_dir().join("fixtures/store-v0.1.escalation-plan.json");
    check_golden(&golden, &format!("{}\n", serde_json::to_string_pretty(&plan).unwrap())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(entry(&plan, "release-governance", "teams")["state"], "breached");
    // The first delivery after the upgrade escalates what was already breached.
    let (code, run) = scene.deliver("2026-05-21T19:46:00Z", &[]);
    assert_eq!((code, run["escalation_count"].as_u64()), (0, Some(2)), "{run}");
}
