//! Process isolation: a plugin that aborts or hangs only fails its own
//! deliveries, and its child process is restarted on the next call.

use std::path::PathBuf;
use std::time::Duration;

use cavra_plugin_host::{AttemptOutcome, DeliveryOptions, Isolation, RefusalKind, Registry, PROCESS_EXITED};
use serde_json::json;

use crate::support::{artifacts, config, fast_options, notification, Reply, Server, TempDir};

fn process_isolation() -> Isolation {
    Isolation::Process { program: PathBuf::from(env!("CARGO_BIN_EXE_cavra-plugin-child")), args: Vec::new() }
}

#[test]
fn an_aborting_plugin_fails_only_its_own_deliveries_and_is_restarted() {
    let a = artifacts();
    let tmp = TempDir::new("abort");
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.aborting, &a.outbox])], &process_isolation());
    let report = registry.report();
    assert_eq!(report.loaded.len(), 2, "{report}");
    assert_eq!(serde_json::to_value(report).expect("json")["isolation"]["mode"], "process");

    let written = tmp.path().join("aborter.log");
    let outbox = tmp.path().join("outbox.jsonl");
    let config = config(json!({"connectors": {"aborter": {"path": written}, "outbox": {"path": outbox}}}), &[]);
    let routes = vec![
        notification("a1", "aborter", "abort"),
        notification("a2", "aborter", "release-governance"),
        notification("a3", "aborter", "abort"),
        notification("a4", "aborter", "platform-operations"),
        notification("o1", "outbox", "release-governance"),
    ];
    let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    let summary: Vec<_> = records.iter().map(|r| (r.route_id.as_str(), r.attempt, r.outcome)).collect();
    assert_eq!(
        summary,
        [
            ("route_a1", 1, AttemptOutcome::Failed),
            ("route_a2", 1, AttemptOutcome::Delivered),
            ("route_a3", 1, AttemptOutcome::Failed),
            ("route_a4", 1, AttemptOutcome::Delivered),
            ("route_o1", 1, AttemptOutcome::Delivered),
        ]
    );
    assert_eq!(records[0].message, PROCESS_EXITED);
    // Each delivery after an abort ran in a fresh child process.
    let log = std::fs::read_to_string(&written).expect("aborter log");
    let pids: Vec<&str> = log.lines().filter_map(|l| l.split("pid=").nth(1)).collect();
    assert_eq!(pids.len(), 2, "{log}");
    assert_ne!(pids[0], pids[1], "the child was restarted between aborts");
    assert_ne!(pids[0], std::process::id().to_string());
    assert_eq!(std::fs::read_to_string(&outbox).expect("outbox").lines().count(), 1);
}

#[test]
fn a_hanging_plugin_is_killed_at_the_deadline_and_restarted() {
    let a = artifacts();
    let tmp = TempDir::new("hang-child");
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.aborting])], &process_isolation());
    let written = tmp.path().join("aborter.log");
    let config = config(json!({"connectors": {"aborter": {"path": written}}}), &[]);
    let options = DeliveryOptions { max_attempts: 2, attempt_timeout: Duration::from_millis(200), ..fast_options() };
    let hang = vec![notification("h1", "aborter", "hang")];
    let records = registry.deliver_all(hang, &config, &options, |_| {});
    let outcomes: Vec<_> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::RetryableFailure, AttemptOutcome::Failed]);
    // The killed child is replaced on the next call (generous timeout: the
    // point is the restart, not the speed).
    let next = vec![notification("h2", "aborter", "ops")];
    let after = registry.deliver_all(next, &config, &fast_options(), |_| {});
    assert_eq!(after[0].outcome, AttemptOutcome::Delivered, "{after:#?}");
    assert!(records[0].message.contains("no outcome within 200 ms"), "{}", records[0].message);
}

#[test]
fn refusals_and_http_delivery_work_the_same_out_of_process() {
    let a = artifacts();
    let tmp = TempDir::new("child-mixed");
    let dir = tmp.plugin_dir(&[&a.slack, &a.panicking, &a.wrong_abi, &a.not_a_plugin]);
    std::fs::write(dir.join("garbage.so"), b"not a library").expect("write");
    let registry = Registry::load(&[dir], &process_isolation());
    let report = registry.report();
    let mut loaded: Vec<_> = report.loaded.iter().map(|p| p.name.as_str()).collect();
    loaded.sort_unstable();
    assert_eq!(loaded, ["panicking", "slack"], "{report}");
    let mut kinds: Vec<_> = report.refused.iter().map(|r| r.kind).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(kinds, [RefusalKind::IncompatibleAbi, RefusalKind::NotAPlugin, RefusalKind::NotAPlugin], "{report}");

    let server = Server::start(&[Reply::Status(503), Reply::Status(200)]);
    let config = config(json!({"connectors": {"slack": {"url": server.url("/services/T/B/K")}}}), &[]);
    let routes = vec![notification("cs", "slack", "ops"), notification("cp", "panicky", "ops")];
    let records = registry.deliver_all(routes, &config, &fast_options(), |_| {});
    let summary: Vec<_> = records.iter().map(|r| (r.provider.as_str(), r.outcome, r.status_code)).collect();
    assert_eq!(
        summary,
        [
            ("slack", AttemptOutcome::RetryableFailure, Some(503)),
            ("slack", AttemptOutcome::Delivered, Some(200)),
            ("panicky", AttemptOutcome::PermanentFailure, None)
        ]
    );
    let keys: Vec<_> = server.requests().iter().map(|r| r.header("idempotency-key").map(str::to_owned)).collect();
    assert!(keys.len() == 2 && keys[0].is_some() && keys[0] == keys[1], "{keys:?}");
}
