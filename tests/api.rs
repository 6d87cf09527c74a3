//! `cavra api` end to end: the real binary on an ephemeral loopback port,
//! driven over HTTP. Every endpoint answers with the CLI's JSON; every error
//! is a JSON body with the right 4xx status; tokens, reload, concurrency,
//! metrics and graceful shutdown behave as documented.

use cavra_tests::http::{request, sample_document_flags, sample_server_in, Server};
use serde_json::{json, Value as Json};
use std::path::PathBuf;

const AT: &str = "2026-05-21T19:00:00Z";
const NOTIFY: &str = "/runtime/go-pilot/rollback-drill-notifications";
const SCHEDULE: &str = "go_backend_python_fallback_monthly";

fn repo() -> PathBuf {
    cavra_tests::crate_dir().join("..")
}

fn temp(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(std::env::temp_dir().join(format!("cavra-api-{name}-{}", std::process::id())))
}

/// A server on the sample documents with its own store.
fn sample_server(name: &str, extra: &[&str], env: &[(&str, &str)]) -> (Server, PathBuf) {
    let dir = temp(name);
    (sample_server_in(&dir, extra, env), dir)
}

fn cli_json(args: &[&str]) -> Json {
    let output = std::process::Command::new(cavra_tests::cavra_binary()).args(args).output().expect("run cavra");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn readiness_reports_are_the_cli_reports() {
    let (server, _) = sample_server("readiness", &[], &[]);
    let flags = sample_document_flags(&repo());
    let documents: Vec<&str> = flags.iter().take(12).map(String::as_str).collect();
    for (path, command, schema) in [
        ("/runtime/go-pilot/rollback-readiness", "go-rollback-readiness", "cavra.go-backend-pilot.rollback-readiness.v1"),
        ("/runtime/go-pilot/promotion-readiness", "go-promotion-readiness", "cavra.go-backend-pilot.promotion-readiness.v1"),
        ("/runtime/go-pilot/rollback-rehearsal", "go-rollback-rehearsal", "cavra.go-backend-pilot.rollback-rehearsal.v1"),
        ("/runtime/go-pilot/rollback-drills", "go-rollback-drills", "cavra.go-backend-pilot.rollback-drill-history.v1"),
        ("/runtime/go-pilot/rollback-drill-schedule", "go-rollback-drill-schedule", "cavra.go-backend-pilot.rollback-drill-schedule.v1"),
        ("/deployment/production-readiness", "production-readiness", "cavra.deployment.production_readiness.v1"),
    ] {
        let response = server.get(&format!("{path}?at={AT}"));
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        let doc = response.json();
        assert_eq!(doc["schema_version"], schema, "{path}");
        let mut argv = vec!["runtime", command, "--at", AT, "--json"];
        argv.extend(&documents);
        assert_eq!(doc, cli_json(&argv), "{path} differs from `cavra runtime {command}`");
    }
    let schedule = server.get(&format!("/runtime/go-pilot/rollback-drill-schedule?at={AT}")).json();
    assert_eq!(schedule["status"], "due_soon");
    let bad = server.get("/runtime/go-pilot/rollback-readiness?at=yesterday");
    assert_eq!((bad.status, bad.error()["path"].clone()), (422, json!("query.at")));
    let bad = server.get("/runtime/go-pilot/rollback-readiness?mode=turbo");
    assert_eq!((bad.status, bad.error()["path"].clone()), (422, json!("query.mode")));
}

#[test]
fn plans_are_stored_and_queried_through_routes_trends_and_latest_plans() {
    let (server, _) = sample_server("plan", &[], &[]);
    let plan = server.post(&format!("{NOTIFY}/plan"), &json!({"provider": "all", "at": AT}).to_string());
    assert_eq!(plan.status, 200, "{}", plan.body);
    let plan = plan.json();
    assert_eq!(plan["schema_version"], "cavra.go-backend-pilot.rollback-drill-notification-plan.v1");
    assert_eq!(plan["generated_by"], "api");
    assert_eq!((plan["deliverable_route_count"].clone(), plan["maintenance_suppressed_count"].clone()), (json!(2), json!(1)));

    let routes = server.get(&format!("{NOTIFY}/routes?category=maintenance_window")).json();
    assert_eq!(routes["count"], 1);
    assert_eq!(routes["routes"][0]["maintenance_window_id"], "production-change-freeze");
    let routes = server.get(&format!("{NOTIFY}/routes?owner=platform-lead&limit=10")).json();
    assert_eq!(routes["count"], 2, "owner matches the escalation owner too");
    let bad = server.get(&format!("{NOTIFY}/routes?limit=many"));
    assert_eq!((bad.status, bad.error()["path"].clone()), (422, json!("query.limit")));
    // Errors from the application name the query parameter, not the CLI flag.
    let bad = server.get(&format!("{NOTIFY}/routes?limit=5000"));
    assert_eq!((bad.status, bad.error()["path"].clone()), (422, json!("query.limit")));
    let message = bad.error()["message"].as_str().unwrap_or_default().to_string();
    assert_eq!(message, "query.limit: expected 1 to 1000, got 5000");
    let bad = server.get(&format!("{NOTIFY}/routes?colour=red"));
    assert_eq!((bad.status, bad.error()["path"].clone()), (422, json!("query.colour")));

    let trends = server.get(&format!("{NOTIFY}/suppression-trends?owner=release-governance")).json();
    assert_eq!(trends["by_category"], json!({"maintenance_window": 1}));
    assert_eq!(trends["kind"], "go-backend-rollback-drill-routing-suppression-trend");

    let latest = server.get(&format!("{NOTIFY}/latest-plans")).json();
    assert_eq!(latest["plans"][0]["plan_id"], plan["plan_id"]);

    // A policy in the body is merged over the server's key by key: its
    // maintenance_windows replace the server's whole, so no slack route is suppressed.
    let body = json!({"at": AT, "routing_policy": {"maintenance_windows": []}, "provider": ["slack"]});
    let plan = server.post(&format!("{NOTIFY}/plan"), &body.to_string()).json();
    // The server's owner_routes stay: only release-governance routes to slack.
    assert_eq!((plan["deliverable_route_count"].clone(), plan["suppressed_route_count"].clone()), (json!(1), json!(0)), "{plan}");
    assert_eq!(plan["selected_providers"], json!(["slack"]));
    assert_eq!(plan["policy_sources"], json!(["server", "request"]));
    assert_eq!(plan["stored"], true);

    let sim = server.post(&format!("{NOTIFY}/simulate"), &json!({"from": "2026-05-21T00:00:00Z", "to": "2026-05-23T00:00:00Z"}).to_string());
    assert_eq!(sim.status, 200, "{}", sim.body);
    assert_eq!(sim.json()["schema_version"], "cavra.go-backend-pilot.rollback-drill-routing-simulation.v1");
}

#[test]
fn acknowledgements_feed_the_escalation_plan() {
    let (server, _) = sample_server("acks", &[], &[]);
    let plan = server.post(&format!("{NOTIFY}/plan"), &json!({"at": AT}).to_string()).json();
    let ack = json!({"provider": "teams", "acknowledged_by": "release-governance", "plan_id": plan["plan_id"], "at": "2026-05-21T19:10:00Z"});
    let response = server.post(&format!("{NOTIFY}/{SCHEDULE}/acknowledgements"), &ack.to_string());
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.json()["acknowledgement_state"], "acknowledged");

    let listed = server.get(&format!("{NOTIFY}/{SCHEDULE}/acknowledgements")).json();
    assert_eq!(listed["count"], 1);

    // Planned is not delivered: the acknowledgement answers nothing, and every
    // notification (the slack one too, its freeze over at 20:00) is still to deliver.
    assert_eq!(listed["acknowledgements"][0]["notification_ids"], json!([]));
    let escalation = server.post(&format!("{NOTIFY}/escalation-plan"), &json!({"at": "2026-05-21T21:00:00Z"}).to_string()).json();
    assert_eq!(escalation["schema_version"], "cavra.go-backend-pilot.rollback-drill-escalation-plan.v1");
    let actions: Vec<&str> = escalation["routes"].as_array().into_iter().flatten().filter_map(|r| r["recommended_action"].as_str()).collect();
    assert_eq!(actions, ["deliver_notification"; 3], "nothing was delivered: {escalation}");
    assert!(escalation["routes"].as_array().into_iter().flatten().all(|r| r["delivered_at"].is_null() && r["state"] == "pending_delivery"));

    // The public-safety check and field validation answer 422 with the path; nothing is stored.
    let unsafe_ack = json!({"provider": "teams", "acknowledged_by": "release-governance", "notes": "call 10.1.2.3"});
    let refused = server.post(&format!("{NOTIFY}/{SCHEDULE}/acknowledgements"), &unsafe_ack.to_string());
    assert_eq!((refused.status, refused.error()["code"].clone(), refused.error()["path"].clone()), (422, json!("not_public_safe"), json!("$.notes")));
    let refused = server.post(
        &format!("{NOTIFY}/{SCHEDULE}/acknowledgements"),
        &json!({"provider": "teams", "acknowledged_by": "x", "acknowledgement_state": "snoozed"}).to_string(),
    );
    assert_eq!((refused.status, refused.error()["path"].clone()), (422, json!("$.acknowledgement_state")));
    assert_eq!(server.get(&format!("{NOTIFY}/{SCHEDULE}/acknowledgements")).json()["count"], 1);
}

#[test]
fn deliver_sends_through_the_bundled_plugins_and_counts_metrics() {
    let dir = temp("deliver-config");
    let outbox = dir.join("outbox.jsonl");
    let config = dir.join("connectors.json");
    std::fs::write(&config, json!({"connectors": {"outbox": {"path": outbox.display().to_string()}}}).to_string()).expect("config");
    let config_env = config.display().to_string();
    let (server, _) = sample_server("deliver", &[], &[("CAVRA_CONNECTOR_CONFIG", &config_env)]);
    let policy = json!({"owner_routes": {"release-governance": {"providers": ["outbox"]}, "platform-operations": {"providers": ["outbox"]}}});
    // The issue's curl example: `curl -X POST .../deliver -d '{"provider": ..., "routing_policy": ..., "force": ..., "at": ...}'`.
    let body = json!({"provider": "all", "routing_policy": policy, "force": true, "at": AT}).to_string();
    let response = server.request("POST", &format!("{NOTIFY}/deliver"), &[("Content-Type", "application/x-www-form-urlencoded")], &body);
    assert_eq!(response.status, 200, "{}", response.body);
    let result = response.json();
    assert_eq!((result["delivered_count"].clone(), result["failed_count"].clone()), (json!(2), json!(0)), "{result}");
    let lines = std::fs::read_to_string(&outbox).expect("outbox written");
    assert_eq!(lines.lines().count(), 2);

    // Re-running delivers nothing twice.
    let again = server.post(&format!("{NOTIFY}/deliver"), &body).json();
    assert_eq!((again["delivered_count"].clone(), again["skipped_count"].clone()), (json!(0), json!(2)));

    let metrics = server.get("/metrics");
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    let text = metrics.body;
    assert!(text.contains("cavra_deliveries_total{provider=\"outbox\",outcome=\"delivered\"} 2"), "{text}");
    assert!(text.contains("cavra_decisions_total{action=\"deliver\",category=\"deliver\"} 4"), "two runs of two routes: {text}");
    assert!(
        text.contains("cavra_http_requests_total{route=\"/runtime/go-pilot/rollback-drill-notifications/deliver\",method=\"POST\",status=\"200\"} 2"),
        "{text}"
    );
    assert!(text.contains("cavra_http_request_duration_seconds_count{route=\"/runtime/go-pilot/rollback-drill-notifications/deliver\"} 2"), "{text}");
}

#[test]
fn bad_requests_get_json_errors_with_the_right_status() {
    let (server, dir) = sample_server("errors", &["--max-body-bytes", "2048"], &[]);
    let plan = format!("{NOTIFY}/plan");

    let big = json!({"at": AT, "routing_policy": {"maintenance_windows": [], "padding": "x".repeat(4096)}}).to_string();
    let r = server.post(&plan, &big);
    assert_eq!((r.status, r.error()["code"].clone()), (413, json!("body_too_large")));

    let r = server.post(&plan, "{\"at\": \n  \"2026-05-21T19:00:00Z\",, }");
    assert_eq!((r.status, r.error()["code"].clone()), (400, json!("malformed_json")));
    assert!(r.error()["message"].as_str().unwrap_or_default().contains("line 2 column"), "{}", r.body);

    let r = server.request("POST", &plan, &[("Content-Type", "text/plain")], "{}");
    assert_eq!(r.status, 415);

    let r = server.get("/runtime/go-pilot/no-such-report");
    assert_eq!((r.status, r.error()["code"].clone()), (404, json!("not_found")));

    let r = server.get(&plan);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    let r = server.post(&plan, &json!({"at": AT, "forse": true}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.forse")));
    let r = server.post(&plan, &json!({"force": "yes"}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.force")));
    let r = server.post(&plan, "[1, 2]");
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$")));

    // An unsafe policy is refused with its JSON path, and nothing is stored.
    let unsafe_policy = json!({"at": AT, "routing_policy": {"maintenance_windows": [
        {"window_id": "w", "start_at": AT, "end_at": "2026-05-22T00:00:00Z", "reason": "see https://status.example.com/freeze"}]}});
    let r = server.post(&plan, &unsafe_policy.to_string());
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(r.error()["code"], "not_public_safe");
    assert_eq!(r.error()["path"], "$.routing_policy.maintenance_windows[0].reason");
    assert!(!r.body.contains("status.example.com"), "the refused value is never echoed: {}", r.body);
    assert_eq!(server.get(&format!("{NOTIFY}/routes")).json()["count"], 0);
    assert!(!std::fs::read(dir.join("cavra.db")).unwrap_or_default().windows(18).any(|w| w == b"status.example.com"));

    // Every answer above was JSON; none was a 500.
    let metrics = server.get("/metrics").body;
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
}

#[test]
fn packs_evaluate_any_loaded_pack_with_paths_in_errors() {
    let (server, _) = sample_server("packs", &[], &[]);
    let packs = server.get("/v1/packs").json();
    let names: Vec<&str> = packs["packs"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"routing") && names.contains(&"go_pilot_actions"), "{names:?}");
    // The bundled modules (rules/common/) are checked at start-up but are not packs to run.
    assert_eq!(names.len(), 10, "packs only, no modules: {names:?}");
    assert!(!names.contains(&"routing_policy") && !names.contains(&"approval"), "{names:?}");
    let r = server.post("/v1/packs/routing_policy/evaluate", &json!({"inputs": {}}).to_string());
    assert_eq!(r.status, 404, "a module is not a pack: {}", r.body);

    let policy: Json = serde_json::from_str(&std::fs::read_to_string(repo().join("examples/routing-policy.json")).expect("policy")).expect("json");
    let inputs =
        |provider: &str| json!({"policy": policy, "schedule_id": SCHEDULE, "schedule_status": "due_soon", "owner": "release-governance", "provider": provider});
    let slack = server.post("/v1/packs/routing/evaluate", &json!({"inputs": inputs("slack"), "at": AT}).to_string()).json();
    assert_eq!(slack["decisions"]["route"]["category"], "maintenance_window");
    let teams = server.post("/v1/packs/routing/evaluate", &json!({"inputs": inputs("teams"), "at": AT, "explain": true}).to_string()).json();
    assert_eq!(teams["decisions"]["route"]["outcome"]["action"], "deliver");
    assert!(teams["decisions"]["route"]["explain"]["arms"].is_array());

    let r = server.post("/v1/packs/routing/evaluate", &json!({"inputs": {"ownr": "x"}}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.inputs.ownr")));
    assert!(r.error()["message"].as_str().unwrap_or_default().contains("did you mean `owner`"));
    let mut broken = inputs("slack");
    broken["policy"]["maintenance_windows"][0]["start_at"] = json!("tomorrow");
    let r = server.post("/v1/packs/routing/evaluate", &json!({"inputs": broken}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.inputs.policy.maintenance_windows[0].start_at")));
    let r = server.post("/v1/packs/routng/evaluate", "{}");
    assert_eq!(r.status, 404);
    assert!(r.error()["message"].as_str().unwrap_or_default().contains("did you mean `routing`"));

    let action = server.post("/runtime/go-pilot/evaluate", &json!({"action_type": "execute_command", "target": "rm -rf /"}).to_string());
    assert_eq!(action.status, 200, "{}", action.body);
    assert_eq!(action.json()["schema_version"], "cavra.go-backend-pilot.evaluation.v1");
    let r = server.post("/runtime/go-pilot/evaluate", &json!({"target": "ls"}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.action_type")));
}

#[test]
fn concurrent_requests_all_succeed() {
    let (server, _) = sample_server("concurrent", &[], &[]);
    let policy: Json = serde_json::from_str(&std::fs::read_to_string(repo().join("examples/routing-policy.json")).expect("policy")).expect("json");
    let body = json!({"inputs": {"policy": policy, "schedule_id": SCHEDULE, "schedule_status": "due_soon", "owner": "platform-operations", "provider": "teams"}, "at": AT}).to_string();
    let addr = server.addr.clone();
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (addr, body) = (addr.clone(), body.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for n in 0..25 {
                    let r = if n % 5 == 0 && i % 2 == 0 {
                        request(&addr, "POST", &format!("{NOTIFY}/plan"), &[], json!({"at": AT}).to_string().as_bytes())
                    } else {
                        request(&addr, "POST", "/v1/packs/routing/evaluate", &[], body.as_bytes())
                    };
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let statuses: Vec<u16> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    assert_eq!(statuses.len(), 200);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // The same plan (same time, same documents) is stored once.
    assert_eq!(server.get(&format!("{NOTIFY}/latest-plans")).json()["count"], 1);
}

#[test]
fn packs_diff_serves_the_cli_report_with_paths_in_errors() {
    let (server, _) = sample_server("diff", &[], &[]);
    let read = |path: &str| -> Json { serde_json::from_str(&std::fs::read_to_string(repo().join(path)).expect("document")).expect("json") };
    let (policy, later) = (read("examples/routing-policy.json"), read("tests/corpus/diff/routing-policy-freeze-until-21.json"));
    let (from, to) = ("2026-05-21T00:00:00Z", "2026-05-23T00:00:00Z");
    let body = json!({"inputs": {"policy": policy}, "against": {"policy": later}, "from": from, "to": to});
    let r = server.post("/v1/packs/routing/diff", &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let cli = cli_json(&[
        "diff",
        &repo().join("rules/routing.cavra").display().to_string(),
        "--input",
        &format!("policy={}", repo().join("examples/routing-policy.json").display()),
        "--against",
        &format!("policy={}", repo().join("tests/corpus/diff/routing-policy-freeze-until-21.json").display()),
        "--from",
        from,
        "--to",
        to,
        "--json",
    ]);
    assert_eq!(r.json(), cli, "the API's report is the CLI's");
    assert_eq!(r.json()["change_count"], 1);

    // Values to examine: a list is each of its values.
    let body = json!({"inputs": {"policy": policy}, "against": {"policy": later}, "set": {"schedule_status": ["due_soon", "healthy"], "owner": "platform-operations"}, "from": from, "to": to});
    let r = server.post("/v1/packs/routing/diff", &body.to_string());
    assert_eq!((r.status, r.json()["change_count"].clone()), (200, json!(0)), "the freeze is not platform-operations': {}", r.body);
    // A rule-test case, at its instant.
    let case = json!({"name": "slack at the old end", "at": "2026-05-21T20:30:00Z", "inputs": {"owner": "release-governance", "provider": "slack", "schedule_id": SCHEDULE, "schedule_status": "due_soon"}});
    let r = server.post("/v1/packs/routing/diff", &json!({"inputs": {"policy": policy}, "against": {"policy": later}, "cases": [case]}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["changes"][0]["key"]["case"], "slack at the old end");

    let mut broken = later.clone();
    broken["maintenance_windows"][0]["end_at"] = json!("tomorrow");
    let r = server.post("/v1/packs/routing/diff", &json!({"inputs": {"policy": policy}, "against": {"policy": broken}, "from": from}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.against.policy.maintenance_windows[0].end_at")), "{}", r.body);
    let r = server.post("/v1/packs/routing/diff", &json!({"inputs": {"polcy": policy}}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.inputs.polcy")), "{}", r.body);
    let r = server.post("/v1/packs/routing/diff", &json!({"against_pack": "routng"}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.against_pack")), "{}", r.body);
    let r = server.post("/v1/packs/routing/diff", &json!({"form": from}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.form")), "unknown fields are refused");
    assert_eq!(server.post("/v1/packs/routng/diff", "{}").status, 404);
    assert_eq!(server.get("/v1/packs/routing/diff").status, 405);
}

#[test]
fn tokens_gate_reads_and_changes_and_never_leak() {
    const READER: &str = "CANARY-reader-token-0a1b2c3d4e";
    const OPERATOR: &str = "CANARY-operator-token-9f8e7d6c5b";
    let dir = temp("tokens-file");
    let line = |token: &str, role: &str, who: &str| {
        let output = std::process::Command::new(cavra_tests::cavra_binary())
            .args(["api", "--hash-token", "--role", role, "--identity", who])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().expect("stdin").write_all(token.as_bytes())?;
                child.wait_with_output()
            })
            .expect("hash a token");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let file = dir.join("tokens");
    std::fs::write(&file, format!("# cavra API tokens\n{}{}", line(READER, "reader", "dashboard"), line(OPERATOR, "operator", "release-lead")))
        .expect("tokens");
    assert!(!std::fs::read_to_string(&file).unwrap_or_default().contains("CANARY"), "the file holds hashes only");
    let tokens = file.display().to_string();
    let (server, store_dir) = sample_server("tokens", &[], &[("CAVRA_API_TOKENS", &tokens)]);
    let bearer = |t: &str| format!("Bearer {t}");
    let report = format!("/runtime/go-pilot/rollback-readiness?at={AT}");

    let r = server.get(&report);
    assert_eq!((r.status, r.error()["code"].clone()), (401, json!("missing_token")));
    assert!(r.header("www-authenticate").is_some());
    let r = server.request("GET", &report, &[("Authorization", "Bearer not-a-token")], "");
    assert_eq!((r.status, r.error()["code"].clone()), (401, json!("invalid_token")));
    assert_eq!(server.request("GET", &report, &[("Authorization", &bearer(READER))], "").status, 200);
    assert_eq!(server.get("/healthz").status, 200, "health checks need no token");
    let diff = json!({"inputs": {"policy": {}}, "against": {"policy": {}}, "from": "2026-05-21T00:00:00Z", "to": "2026-05-22T00:00:00Z"}).to_string();
    let r = server.request("POST", "/v1/packs/routing/diff", &[("Authorization", &bearer(READER))], &diff);
    assert_eq!((r.status, r.json()["change_count"].clone()), (200, json!(0)), "a reader may ask what a change would do: {}", r.body);

    let plan = server.request("POST", &format!("{NOTIFY}/plan"), &[("Authorization", &bearer(READER))], &json!({"at": AT}).to_string());
    assert_eq!(plan.status, 200, "a plan is a dry run: readers may make one");
    assert_eq!(plan.json()["stored"], false, "a reader's plan is not stored");
    let plan = server.request("POST", &format!("{NOTIFY}/plan"), &[("Authorization", &bearer(OPERATOR))], &json!({"at": AT}).to_string());
    assert_eq!(plan.json()["stored"], true, "an operator's plan is stored");
    // An approved retry: operators only, and the approver is the token's identity.
    let retries = format!("{NOTIFY}/retries");
    let body = json!({"approval_id": "apr_rollback_drill_retry", "approved_by": "someone-else"}).to_string();
    let r = server.request("POST", &retries, &[("Authorization", &bearer(READER))], &body);
    assert_eq!(r.status, 403);
    let r = server.request("POST", &retries, &[("Authorization", &bearer(OPERATOR))], &body);
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.approved_by")), "{}", r.body);
    let r = server.request("POST", &retries, &[("Authorization", &bearer(OPERATOR))], &json!({"approval_id": "apr_rollback_drill_retry"}).to_string());
    assert_eq!((r.status, r.json()["retried"].clone()), (200, json!(false)), "nothing failed, nothing to retry: {}", r.body);
    assert_eq!(server.request("GET", &retries, &[("Authorization", &bearer(READER))], "").json()["count"], 0);
    let ack = json!({"provider": "teams", "acknowledged_by": "someone-else"}).to_string();
    let path = format!("{NOTIFY}/{SCHEDULE}/acknowledgements");
    let r = server.request("POST", &path, &[("Authorization", &bearer(READER))], &ack);
    assert_eq!((r.status, r.error()["code"].clone()), (403, json!("forbidden")));
    let r = server.request("POST", &path, &[("Authorization", &bearer(OPERATOR))], &ack);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["acknowledged_by"], "release-lead", "the actor is the token's identity");
    let r = server.request("POST", "/v1/packs/reload", &[("Authorization", &bearer(READER))], "");
    assert_eq!(r.status, 403);

    let (_, log) = server.terminate();
    let store = std::fs::read(store_dir.join("cavra.db")).unwrap_or_default();
    assert!(!log.contains("CANARY"), "tokens are never logged: {log}");
    assert!(!store.windows(6).any(|w| w == b"CANARY"), "tokens are never stored");
}

#[test]
fn without_tokens_only_loopback_is_served() {
    let output = std::process::Command::new(cavra_tests::cavra_binary())
        .args(["api", "--listen", "0.0.0.0:0"])
        .env_remove("CAVRA_API_TOKENS")
        .output()
        .expect("run cavra api");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only binds to loopback"), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn reload_keeps_the_running_packs_when_a_pack_does_not_check() {
    let rules = temp("reload-rules");
    for file in cavra_tests_rule_files() {
        let target = rules.join(&file);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("dirs");
        std::fs::copy(repo().join("rules").join(&file), &target).expect("copy rule pack");
    }
    let rules_arg = rules.display().to_string();
    let (server, _) = sample_server("reload", &["--rules", &rules_arg], &[]);
    let decide = || server.post("/v1/packs/go_pilot_actions/evaluate", &json!({"inputs": {"action_type": "read_file", "target": "README.md"}}).to_string());
    assert_eq!(decide().status, 200);

    let routing = rules.join("routing.cavra");
    let good = std::fs::read_to_string(&routing).expect("routing pack");
    std::fs::write(&routing, good.replacen("decision route {", "decision route {\n    when owner == then deliver", 1)).expect("break it");
    let r = server.post("/v1/packs/reload", "");
    assert_eq!((r.status, r.error()["code"].clone()), (422, json!("pack_check_failed")), "{}", r.body);
    let message = r.error()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("routing.cavra:") && message.contains('^'), "diagnostics with file:line:col and a caret: {message}");
    assert_eq!(decide().status, 200, "the old packs keep serving");
    assert_eq!(server.get(&format!("/runtime/go-pilot/rollback-drill-schedule?at={AT}")).status, 200);

    std::fs::write(&routing, good).expect("fix it");
    let r = server.post("/v1/packs/reload", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["packs"].as_array().is_some_and(|p| p.contains(&json!("routing"))));
}

/// The bundled rule packs, relative to `rules/`.
fn cavra_tests_rule_files() -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.extension().is_some_and(|e| e == "cavra") {
                out.push(path.strip_prefix(base).expect("below rules").to_path_buf());
            }
        }
    }
    let base = repo().join("rules");
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out
}

#[test]
fn the_console_is_one_self_contained_page() {
    let (server, _) = sample_server("console", &[], &[]);
    let page = server.get("/console");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(page.body.contains("data-testid=\"readiness-panel\"") || page.body.contains("readiness-panel"));
    for external in ["<script src=", "<link rel=\"stylesheet\" href=", "cdn.", "@import"] {
        assert!(!page.body.contains(external), "the console loads nothing from elsewhere ({external})");
    }
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let (server, _) = sample_server("shutdown", &[], &[]);
    let addr = server.addr.clone();
    // A plan request takes milliseconds; start several and signal while they run.
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || request(&addr, "POST", &format!("{NOTIFY}/plan"), &[], json!({"at": AT}).to_string().as_bytes()).status)
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let (code, log) = server.terminate();
    let statuses: Vec<u16> = workers.into_iter().map(|w| w.join().expect("worker")).collect();
    assert_eq!(code, Some(0), "a clean exit: {log}");
    assert!(log.contains("event=shutdown signal=SIGTERM"), "{log}");
    // A request either completed or was never accepted; none was cut off mid-way.
    assert!(statuses.iter().all(|s| *s == 200 || *s == 0), "{statuses:?}");
}

/// A store that cannot be opened (a folder, or a file that is not SQLite, at
/// its path) does not stop the server: what needs the store answers 503
/// `store_unavailable`, `/readyz` says why, and `/healthz` stays 200.
#[test]
fn a_store_that_cannot_be_opened_is_503_on_every_endpoint_and_readyz_says_so() {
    for (case, make) in [("folder", true), ("corrupt", false)] {
        let dir = temp(&format!("unavailable-{case}"));
        let store = dir.join("cavra.db");
        if make {
            std::fs::create_dir_all(&store).expect("a folder where the store should be");
        } else {
            std::fs::write(&store, vec![0x5a_u8; 8192]).expect("a file that is not a database");
        }
        let mut args = sample_document_flags(&repo());
        args.extend(["--store".to_string(), store.display().to_string()]);
        let server = Server::start(&args, &[]);
        assert_eq!(server.get("/healthz").status, 200, "{case}: liveness does not need the store");
        let ready = server.get("/readyz");
        assert_eq!(ready.status, 503, "{case}: {}", ready.body);
        assert_eq!(ready.json()["store"]["status"], "unavailable", "{case}");
        let ack = json!({"provider": "teams", "acknowledged_by": "release-governance"}).to_string();
        for (method, path, body) in [
            ("POST", format!("{NOTIFY}/plan"), format!(r#"{{"at": "{AT}"}}"#)),
            ("POST", format!("{NOTIFY}/deliver"), format!(r#"{{"at": "{AT}"}}"#)),
            ("POST", format!("{NOTIFY}/{SCHEDULE}/acknowledgements"), ack.clone()),
            ("GET", format!("{NOTIFY}/routes"), String::new()),
        ] {
            let r = server.request(method, &path, &[("content-type", "application/json")], &body);
            assert_eq!((r.status, r.error()["code"].clone()), (503, json!("store_unavailable")), "{case}: {method} {path}: {}", r.body);
        }
        // Readiness reports need no store and keep working.
        assert_eq!(server.get("/runtime/go-pilot/rollback-drill-schedule").status, 200, "{case}");
    }
}

/// A store that comes back is used without a restart: the handle is opened lazily.
#[test]
fn the_store_is_opened_once_it_can_be() {
    let dir = temp("recovers");
    let store = dir.join("cavra.db");
    std::fs::create_dir_all(&store).expect("a folder where the store should be");
    let mut args = sample_document_flags(&repo());
    args.extend(["--store".to_string(), store.display().to_string()]);
    let server = Server::start(&args, &[]);
    assert_eq!(server.get("/readyz").status, 503);
    std::fs::remove_dir_all(&store).expect("the folder goes");
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.json()["status"].clone()), (200, json!("ready")), "{}", ready.body);
    let plan = server.post(&format!("{NOTIFY}/plan"), &format!(r#"{{"at": "{AT}"}}"#));
    assert_eq!(plan.status, 200, "{}", plan.body);
    assert_eq!(server.get(&format!("{NOTIFY}/routes")).json()["count"], 3);
}

/// The lifecycle over HTTP: the provider filter, the merged policy of a
/// delivery body, retries without an approval, and the stored policy.
#[test]
fn deliveries_merge_policies_and_refuse_unknown_providers() {
    let provider = cavra_tests::provider::Provider::start(200);
    let dir = temp("lifecycle-config");
    let config = provider.connector_config(&dir).display().to_string();
    let (server, _) = sample_server("lifecycle", &[], &[("CAVRA_CONNECTOR_CONFIG", &config)]);

    // Problem 2: an unknown provider is a 422 that lists the schedule's; nothing is stored.
    let r = server.post(&format!("{NOTIFY}/deliver"), &json!({"provider": "pager", "at": AT}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.provider")), "{}", r.body);
    assert!(r.error()["message"].as_str().unwrap_or_default().contains("its providers are slack, teams"), "{}", r.body);
    assert_eq!(server.get(&format!("{NOTIFY}/latest-plans")).json()["count"], 0, "nothing was stored");
    assert!(provider.requests().is_empty());

    // Problem 5: the documented deliver body with owner_routes keeps the
    // server's maintenance windows and calendars: the change freeze still holds.
    let body = json!({"provider": "all", "at": AT, "routing_policy": {"owner_routes": {"release-governance": {"providers": ["slack", "teams"], "acknowledgement_minutes": 15}}}});
    let r = server.post(&format!("{NOTIFY}/deliver"), &body.to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    let delivered = r.json();
    // The body's owner_routes replace the server's whole (top-level keys merge):
    // platform-operations, not in it, takes the schedule's providers.
    assert_eq!((delivered["delivered_count"].as_u64(), delivered["suppressed_route_count"].as_u64()), (Some(3), Some(1)), "{delivered}");
    assert_eq!(delivered["skipped"][0]["reason"], "suppressed until 2026-05-21T20:00:00Z; delivered when the suppression ends");
    let latest = server.get(&format!("{NOTIFY}/latest-plans?at={AT}")).json();
    let plan = &latest["plans"][0];
    assert_eq!(plan["policy_sources"], json!(["server", "request"]));
    assert_eq!(plan["owner_routes"]["release-governance"]["acknowledgement_minutes"], 15, "the request's owner_routes win");
    let policy_id = plan["policy_id"].as_str().expect("policy id");
    let stored = server.get(&format!("{NOTIFY}/policies/{policy_id}"));
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.json()["policy"]["maintenance_windows"][0]["window_id"], "production-change-freeze");
    assert_eq!(server.get(&format!("{NOTIFY}/policies/pol_0000000000000000")).status, 404);
    // Views as of an instant before the plan see nothing.
    assert_eq!(server.get(&format!("{NOTIFY}/latest-plans?at=2026-05-21T18:00:00Z")).json()["count"], 0);

    // A retry without an approval is refused and sends nothing.
    let r = server.post(&format!("{NOTIFY}/retries"), &json!({"approved_by": "release-lead"}).to_string());
    assert_eq!((r.status, r.error()["path"].clone()), (422, json!("$.approval_id")), "{}", r.body);
    assert_eq!(provider.requests().len(), 3);
    let escalation = server.post(&format!("{NOTIFY}/escalation-plan"), &json!({"at": "2026-05-21T19:20:00Z"}).to_string()).json();
    assert_eq!(escalation["outstanding_count"], 3, "{escalation}");
    assert_eq!(server.get(&format!("{NOTIFY}/connector-recovery")).json()["count"], 0);
}
