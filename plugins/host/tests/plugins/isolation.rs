//! Process isolation: a plugin that aborts or hangs only fails its own
//! deliveries, and its child process is restarted on the next call; a child
//! never outlives its host, even one stuck in a connector call for good.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

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

/// How long a test waits for a child to load its library and start a call.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long an orphaned child may take to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// A child process this test started, killed and reaped on drop (so a
/// failing assertion leaves nothing running).
struct Started(Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The pid from the first `looping pid=PID` line of the fixture's log,
/// waiting up to `deadline` for it.
fn looping_pid(log: &Path, deadline: Duration) -> Option<u32> {
    let until = Instant::now() + deadline;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(pid) = text.lines().find_map(|l| l.strip_prefix("looping pid=")).and_then(|p| p.trim().parse().ok()) {
            return Some(pid);
        }
        if Instant::now() >= until {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` has ended: gone, or a zombie that nobody reaped
/// (a container's init may never reap orphans).
#[cfg(target_os = "linux")]
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `PID (COMM) STATE ...`: the state follows the last `)`.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// An orphan the test could not end by killing its host: killed by pid on
/// drop so that a failing test leaves nothing running.
#[cfg(target_os = "linux")]
struct Orphan(u32);

#[cfg(target_os = "linux")]
impl Drop for Orphan {
    fn drop(&mut self) {
        if !ended(self.0) {
            let _ = Command::new("kill").arg("-KILL").arg(self.0.to_string()).status();
        }
    }
}

#[test]
fn finding_4_a_child_stuck_in_a_connector_call_exits_when_its_stdin_closes() {
    let a = artifacts();
    let tmp = TempDir::new("orphan-stdin");
    let log = tmp.path().join("aborter.log");
    let child = Command::new(env!("CARGO_BIN_EXE_cavra-plugin-child"))
        .arg(&a.aborting)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the plugin child");
    let mut child = Started(child);
    let mut stdin = child.0.stdin.take().expect("child stdin");
    // The wire format the host speaks: a delivery whose call never returns.
    let request = json!({"op": "deliver", "request": {
        "notification": notification("stuck", "aborter", "loop"), "config": {"path": log}, "attempt": 1, "timeout_ms": 1000}});
    writeln!(stdin, "{request}").and_then(|()| stdin.flush()).expect("send the request");
    assert!(looping_pid(&log, START_DEADLINE).is_some(), "the connector call did not start");

    // What the host's death looks like from the child: its stdin closes.
    drop(stdin);
    let until = Instant::now() + EXIT_DEADLINE;
    let mut status = None;
    while status.is_none() && Instant::now() < until {
        status = child.0.try_wait().expect("poll the child");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(status.is_some(), "a child stuck in a connector call kept running after its stdin closed");
}

/// Where [`finding_4_a_plugin_child_dies_with_its_host_killed_mid_delivery`]
/// tells its host process which plugin folder and log to use.
const HOST_DIR_ENV: &str = "CAVRA_TEST_ORPHAN_HOST_PLUGIN_DIR";
const HOST_LOG_ENV: &str = "CAVRA_TEST_ORPHAN_HOST_LOG";

/// Not a test of its own: with the variables above set (by the test below,
/// which runs this test binary again with only this test), it is a host
/// that starts a delivery through a plugin child whose call never returns,
/// and waits to be killed. Without them it does nothing.
#[test]
fn finding_4_host_process_helper() {
    let (Some(dir), Some(log)) = (std::env::var_os(HOST_DIR_ENV), std::env::var_os(HOST_LOG_ENV)) else {
        return;
    };
    let registry = Registry::load(&[PathBuf::from(dir)], &process_isolation());
    assert_eq!(registry.report().loaded.len(), 1, "{}", registry.report());
    let config = config(json!({"connectors": {"aborter": {"path": PathBuf::from(log)}}}), &[]);
    let options = DeliveryOptions { max_attempts: 1, attempt_timeout: Duration::from_secs(3600), ..fast_options() };
    let records = registry.deliver_all(vec![notification("orphan", "aborter", "loop")], &config, &options, |_| {});
    panic!("the looping delivery returned: {records:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn finding_4_a_plugin_child_dies_with_its_host_killed_mid_delivery() {
    let a = artifacts();
    let tmp = TempDir::new("orphan-host");
    let dir = tmp.plugin_dir(&[&a.aborting]);
    let log = tmp.path().join("aborter.log");
    let host = Command::new(std::env::current_exe().expect("test executable"))
        .args(["--exact", "isolation::finding_4_host_process_helper", "--test-threads", "1", "--nocapture"])
        .env(HOST_DIR_ENV, &dir)
        .env(HOST_LOG_ENV, &log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the host process");
    let mut host = Started(host);
    let pid = looping_pid(&log, START_DEADLINE).expect("the host started no looping delivery");
    let orphan = Orphan(pid);
    assert_ne!(pid, host.0.id(), "the connector ran in a child process");

    // `kill -9` of the host, in the middle of the delivery.
    host.0.kill().expect("kill the host");
    host.0.wait().expect("reap the host");
    let until = Instant::now() + EXIT_DEADLINE;
    while !ended(pid) && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    assert!(ended(orphan.0), "the plugin child {pid} outlived its host (killed with SIGKILL during a delivery)");
}

#[test]
fn finding_4_children_outlive_the_threads_that_restart_them() {
    // Children ask to die with their parent, and the kernel's "parent" is
    // the thread that forked them: a child restarted by a delivery worker
    // must not die when that worker (gone once `deliver_all` returns) does.
    let a = artifacts();
    let tmp = TempDir::new("restart-thread");
    let registry = Registry::load(&[tmp.plugin_dir(&[&a.aborting])], &process_isolation());
    let written = tmp.path().join("aborter.log");
    let config = config(json!({"connectors": {"aborter": {"path": written}}}), &[]);
    let options = fast_options();
    let crash = registry.deliver_all(vec![notification("t0", "aborter", "abort")], &config, &options, |_| {});
    assert_eq!(crash[0].outcome, AttemptOutcome::Failed);
    // Restarted on this call's worker thread.
    let first = registry.deliver_all(vec![notification("t1", "aborter", "ops")], &config, &options, |_| {});
    assert_eq!(first[0].outcome, AttemptOutcome::Delivered, "{first:#?}");
    // Time for a parent-death signal, were one coming, to land.
    thread::sleep(Duration::from_millis(300));
    let second = registry.deliver_all(vec![notification("t2", "aborter", "ops")], &config, &options, |_| {});
    assert_eq!(second[0].outcome, AttemptOutcome::Delivered, "the restarted child died with the thread that started it: {second:#?}");
    let log = std::fs::read_to_string(&written).expect("aborter log");
    let pids: Vec<&str> = log.lines().filter_map(|l| l.split("pid=").nth(1)).collect();
    assert_eq!(pids.len(), 2, "{log}");
    assert_eq!(pids[0], pids[1], "one child served both calls");
}
