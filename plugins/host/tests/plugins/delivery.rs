//! Delivery through the HTTP connectors to recording servers: bodies,
//! headers, retries, timeouts; and panicking plugins.

use std::time::Duration;

use cavra_plugin_host::{AttemptOutcome, DeliveryOptions, DeliveryRecord, Isolation, Registry};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::{artifacts, config, fast_options, notification, Reply, Server, TempDir};

fn http_registry(tmp: &TempDir) -> Registry {
    let a = artifacts();
    Registry::load(&[tmp.plugin_dir(&[&a.slack, &a.teams, &a.webhook])], &Isolation::InProcess)
}

#[test]
fn slack_teams_and_webhook_post_their_formats_with_idempotency_keys() {
    let tmp = TempDir::new("http-formats");
    let registry = http_registry(&tmp);
    let (slack, teams, hook) = (Server::start(&[Reply::Status(200)]), Server::start(&[Reply::Status(202)]), Server::start(&[Reply::Status(204)]));
    let config = config(
        json!({"connectors": {
            "slack": {"url_env": "SLACK_URL"},
            "teams": {"url": teams.url("/workflows/abc?sig=xyz"), "format": "message_card"},
            "webhook": {"url": hook.url("/cavra"), "secret_env": "HOOK_SECRET", "token": "bearer-token-1"}
        }}),
        &[("SLACK_URL", &slack.url("/services/T0/B0/XYZ")), ("HOOK_SECRET", "signing-key-1")],
    );
    assert!(registry.validate_config(&config).is_empty(), "{:?}", registry.validate_config(&config));
    let routes = vec![
        notification("s1", "slack", "release-governance"),
        notification("t1", "teams", "release-governance"),
        notification("w1", "webhook", "release-governance"),
    ];
    let mut seen = Vec::new();
    let records = registry.deliver_all(routes.clone(), &config, &fast_options(), |r| seen.push(r.clone()));
    assert_eq!(seen.len(), 3, "every attempt reaches the callback");
    let statuses: Vec<_> = records.iter().map(|r| (r.provider.as_str(), r.outcome, r.status_code, r.attempt)).collect();
    assert_eq!(
        statuses,
        [
            ("slack", AttemptOutcome::Delivered, Some(200), 1),
            ("teams", AttemptOutcome::Delivered, Some(202), 1),
            ("webhook", AttemptOutcome::Delivered, Some(204), 1)
        ]
    );
    assert!(records.iter().all(|r| r.target == "http://127.0.0.1/…"), "{records:#?}");

    let [s] = &slack.requests()[..] else { panic!("one Slack request") };
    assert_eq!((s.method.as_str(), s.path.as_str()), ("POST", "/services/T0/B0/XYZ"));
    assert_eq!(s.header("content-type"), Some("application/json"));
    assert_eq!(s.header("idempotency-key"), Some(routes[0].idempotency_key.as_str()));
    let body = s.json();
    assert!(body["text"].as_str().is_some_and(|t| t.contains("[WARNING] rollback drill go_backend_python_fallback_monthly is due soon")));
    assert_eq!(body["blocks"][0]["type"], "header");
    assert!(body.to_string().contains("docs/go-backend-rollback-drill-scheduling.md"));

    let [t] = &teams.requests()[..] else { panic!("one Teams request") };
    assert_eq!(t.path, "/workflows/abc?sig=xyz");
    assert_eq!(t.json()["@type"], "MessageCard");
    assert_eq!(t.header("idempotency-key"), Some(routes[1].idempotency_key.as_str()));

    let [w] = &hook.requests()[..] else { panic!("one webhook request") };
    let body = w.json();
    assert_eq!(body["schema_version"], "cavra.connector-webhook.v1");
    assert_eq!(body["notification"]["route_id"], "route_w1");
    assert_eq!(body["notification"]["idempotency_key"], routes[2].idempotency_key);
    assert_eq!(w.header("authorization"), Some("Bearer bearer-token-1"));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"signing-key-1").expect("hmac key");
    mac.update(&w.body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(w.header("x-cavra-signature"), Some(format!("sha256={expected}").as_str()));
}

fn one_route(provider_server: &Server, script_label: &str, options: &DeliveryOptions) -> (Vec<DeliveryRecord>, Vec<crate::support::Recorded>) {
    let tmp = TempDir::new(script_label);
    let registry = http_registry(&tmp);
    let config = config(json!({"connectors": {"webhook": {"url": provider_server.url("/hook")}}}), &[]);
    let records = registry.deliver_all(vec![notification(script_label, "webhook", "ops")], &config, options, |_| {});
    (records, provider_server.requests())
}

#[test]
fn a_server_error_then_success_is_retried_once_with_the_same_idempotency_key() {
    let server = Server::start(&[Reply::Status(500), Reply::Status(200)]);
    let (records, requests) = one_route(&server, "retry", &fast_options());
    let outcomes: Vec<_> = records.iter().map(|r| (r.attempt, r.outcome, r.status_code, r.is_final)).collect();
    assert_eq!(outcomes, [(1, AttemptOutcome::RetryableFailure, Some(500), false), (2, AttemptOutcome::Delivered, Some(200), true)]);
    assert_eq!(records[0].message, "provider answered HTTP 500");
    assert_eq!(requests.len(), 2);
    let keys: Vec<_> = requests.iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    assert!(keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
    assert_eq!(requests[0].body, requests[1].body);
}

#[test]
fn a_route_stops_before_the_attempt_its_gate_refuses() {
    // The gate allows one attempt, as a run's lease that another run took over during the backoff.
    let server = Server::start(&[Reply::Status(500), Reply::Status(200)]);
    let tmp = TempDir::new("gated");
    let registry = http_registry(&tmp);
    let config = config(json!({"connectors": {"webhook": {"url": server.url("/hook")}}}), &[]);
    let asked = std::sync::atomic::AtomicU32::new(0);
    let gate = |_: &cavra_plugin_host::Notification| asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
    let records = registry.deliver_all_gated(vec![notification("gated", "webhook", "ops")], &config, &fast_options(), &gate, |_| {});
    let outcomes: Vec<_> = records.iter().map(|r| (r.attempt, r.outcome, r.is_final)).collect();
    assert_eq!(outcomes, [(1, AttemptOutcome::RetryableFailure, false)], "the refused retry is neither made nor recorded");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2, "asked before each attempt");
}

#[test]
fn rate_limiting_is_retried_until_max_attempts_then_failed() {
    let server = Server::start(&[Reply::Status(429)]);
    let options = DeliveryOptions { max_attempts: 3, ..fast_options() };
    let (records, requests) = one_route(&server, "429", &options);
    let outcomes: Vec<_> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::RetryableFailure, AttemptOutcome::RetryableFailure, AttemptOutcome::Failed]);
    assert_eq!(requests.len(), 3);
    assert!(records[2].is_final && records[2].message.ends_with("giving up after 3 attempt(s)"), "{}", records[2].message);
}

#[test]
fn a_client_error_is_not_retried() {
    let server = Server::start(&[Reply::Status(400), Reply::Status(200)]);
    let (records, requests) = one_route(&server, "400", &fast_options());
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!((records[0].outcome, records[0].status_code, records[0].is_final), (AttemptOutcome::PermanentFailure, Some(400), true));
    assert_eq!(requests.len(), 1);
}

#[test]
fn a_hanging_server_times_out_each_attempt_then_fails() {
    let server = Server::start(&[Reply::Hang]);
    let options = DeliveryOptions { max_attempts: 2, attempt_timeout: Duration::from_millis(300), ..fast_options() };
    let (records, requests) = one_route(&server, "hang", &options);
    let outcomes: Vec<_> = records.iter().map(|r| (r.outcome, r.status_code)).collect();
    assert_eq!(outcomes, [(AttemptOutcome::RetryableFailure, None), (AttemptOutcome::Failed, None)]);
    assert!(records[0].message.contains("timed out"), "{}", records[0].message);
    // On a loaded machine an attempt may time out before its request arrives.
    assert!(requests.len() <= 2);
}

#[test]
fn a_refused_connection_is_retryable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let tmp = TempDir::new("refused");
    let registry = http_registry(&tmp);
    let config = config(json!({"connectors": {"slack": {"url": format!("http://127.0.0.1:{port}/services/x")}}}), &[]);
    let options = DeliveryOptions { max_attempts: 2, ..fast_options() };
    let records = registry.deliver_all(vec![notification("refused", "slack", "ops")], &config, &options, |_| {});
    assert_eq!(records.iter().map(|r| r.outcome).collect::<Vec<_>>(), [AttemptOutcome::RetryableFailure, AttemptOutcome::Failed]);
}

#[test]
fn providers_are_delivered_in_parallel_and_routes_keep_their_order() {
    let tmp = TempDir::new("parallel");
    let registry = http_registry(&tmp);
    let (slack, hook) = (Server::start(&[Reply::Status(200)]), Server::start(&[Reply::Status(200)]));
    let config = config(json!({"connectors": {"slack": {"url": slack.url("/s")}, "webhook": {"url": hook.url("/w")}}}), &[]);
    let routes: Vec<_> = (0..6).map(|i| notification(&format!("p{i}"), if i % 2 == 0 { "slack" } else { "webhook" }, "ops")).collect();
    let mut calls = 0;
    let records = registry.deliver_all(routes.clone(), &config, &fast_options(), |_| calls += 1);
    assert_eq!(calls, 6);
    assert_eq!(records.iter().map(|r| r.route_id.clone()).collect::<Vec<_>>(), routes.iter().map(|r| r.route_id.clone()).collect::<Vec<_>>());
    assert_eq!((slack.requests().len(), hook.requests().len()), (3, 3));
}

#[test]
fn unknown_providers_fail_without_stopping_the_rest() {
    let tmp = TempDir::new("unknown");
    let registry = http_registry(&tmp);
    let hook = Server::start(&[Reply::Status(200)]);
    let config = config(json!({"connectors": {"webhook": {"url": hook.url("/w")}}}), &[]);
    let routes = vec![notification("u1", "carrier-pigeon", "ops"), notification("u2", "webhook", "ops")];
    let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    assert_eq!((records[0].outcome, records[0].message.as_str()), (AttemptOutcome::Failed, "no loaded connector serves provider `carrier-pigeon`"));
    assert_eq!(records[1].outcome, AttemptOutcome::Delivered);
}

#[test]
fn a_panicking_plugin_fails_permanently_while_the_others_keep_working() {
    let a = artifacts();
    let tmp = TempDir::new("panic");
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.panicking, &a.outbox])], &Isolation::InProcess);
    assert_eq!(registry.report().loaded.len(), 2);
    let outbox = tmp.path().join("outbox.jsonl");
    let config = config(json!({"connectors": {"panicky": {"token": "CANARY-SECRET-7f3a9c"}, "outbox": {"path": outbox}}}), &[]);
    for round in 0..2 {
        let routes = vec![notification(&format!("pa{round}"), "panicky", "ops"), notification(&format!("ob{round}"), "outbox", "ops")];
        let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
        assert_eq!(records.len(), 2, "a panic is not retried: {records:#?}");
        assert_eq!((records[0].outcome, records[0].message.as_str()), (AttemptOutcome::PermanentFailure, "connector panicked"));
        assert_eq!(records[1].outcome, AttemptOutcome::Delivered);
    }
    assert_eq!(std::fs::read_to_string(&outbox).expect("outbox").lines().count(), 2);
}

#[test]
fn an_in_process_plugin_that_ignores_its_timeout_is_abandoned_at_the_deadline() {
    let a = artifacts();
    let tmp = TempDir::new("hang-in-process");
    // The aborting fixture is safe in process as long as no route asks it to abort.
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.aborting])], &Isolation::InProcess);
    let config = config(json!({"connectors": {"aborter": {"path": tmp.path().join("log")}}}), &[]);
    let options = DeliveryOptions { max_attempts: 2, attempt_timeout: Duration::from_millis(100), ..fast_options() };
    let hang = vec![notification("ih1", "aborter", "hang")];
    let records = registry.deliver_all(hang, &config, &options, |_| {});
    let outcomes: Vec<_> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::RetryableFailure, AttemptOutcome::Failed]);
    assert!(records[0].message.contains("no outcome within 100 ms"), "{}", records[0].message);
    // The abandoned calls do not block the plugin for the next delivery.
    let next = vec![notification("ih2", "aborter", "ops")];
    let after = registry.deliver_all(next, &config, &fast_options(), |_| {});
    assert_eq!(after[0].outcome, AttemptOutcome::Delivered, "{after:#?}");
}

#[test]
fn the_registry_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Registry>();
    assert_send_sync::<cavra_plugin_host::ConnectorConfig>();
}
