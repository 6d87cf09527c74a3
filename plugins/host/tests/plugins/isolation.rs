//! Process isolation: a plugin that aborts or hangs only fails its own
//! deliveries, and its child process is restarted on the next call; a child
//! never outlives its host, even one stuck in a connector call for good; and
//! a host that must stop interrupts every delivery at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use cavra_plugin_host::{AttemptOutcome, DeliveryOptions, DeliveryRecord, Isolation, Notification, RefusalKind, Registry, PROCESS_EXITED};
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

/// Where [`finding_5_interrupt_helper`] works (set by the test below).
const INTERRUPT_DIR_ENV: &str = "CAVRA_TEST_INTERRUPT_DIR";
/// What the helper prints when every check passed.
const INTERRUPT_DONE: &str = "finding_5 interrupt helper: all checks passed";
/// How long the helper may take in all.
const HELPER_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `deliver_all` on a thread of its own, forwarding each record as it
/// happens and then the whole list.
fn deliver_in_background(
    registry: &'static Registry,
    routes: Vec<Notification>,
    config: cavra_plugin_host::ConnectorConfig,
    options: DeliveryOptions,
) -> (std::sync::mpsc::Receiver<DeliveryRecord>, std::sync::mpsc::Receiver<Vec<DeliveryRecord>>) {
    let (each, attempts) = std::sync::mpsc::channel();
    let (all, done) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let records = registry.deliver_all(routes, &config, &options, |record| {
            let _ = each.send(record.clone());
        });
        let _ = all.send(records);
    });
    (attempts, done)
}

/// Not a test of its own: with [`INTERRUPT_DIR_ENV`] set (by the test below,
/// which runs this test binary again with only this test, since an
/// interrupt holds for the whole process), it starts a connector call that
/// never returns in a child and in process, a route queued behind the first
/// one, and a retry backing off for a minute; then interrupts, and checks
/// that every route ends at once with a final `interrupted` attempt and that
/// nothing is started afterwards. Without the variable it does nothing.
#[test]
fn finding_5_interrupt_helper() {
    let Some(dir) = std::env::var_os(INTERRUPT_DIR_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let a = artifacts();
    let (isolated_dir, in_process_dir) = (TempDir::new("interrupt-isolated"), TempDir::new("interrupt-in-process"));
    let isolated_plugins = isolated_dir.plugin_dir(&[&a.aborting, &a.slack]);
    // Shared with the deliveries' threads, which outlive nothing but this process.
    let isolated: &'static Registry = Box::leak(Box::new(Registry::load(std::slice::from_ref(&isolated_plugins), &process_isolation())));
    let in_process: &'static Registry = Box::leak(Box::new(Registry::load(&[in_process_dir.plugin_dir(&[&a.aborting])], &Isolation::InProcess)));
    assert_eq!(isolated.report().loaded.len(), 2, "{}", isolated.report());

    let provider = Server::start(&[Reply::Status(503)]);
    let (child_log, own_log) = (dir.join("child.log"), dir.join("own.log"));
    let child_config = config(json!({"connectors": {"aborter": {"path": child_log}, "slack": {"url": provider.url("/services/T/B/K")}}}), &[]);
    let own_config = config(json!({"connectors": {"aborter": {"path": own_log}}}), &[]);
    // Nothing ends on its own within the test: no timeout, a backoff of a minute.
    let patient = DeliveryOptions {
        max_attempts: 3,
        backoff_base: Duration::from_secs(60),
        backoff_max: Duration::from_secs(120),
        attempt_timeout: Duration::from_secs(3600),
    };
    let routes = vec![notification("stuck", "aborter", "loop"), notification("queued", "aborter", "ops"), notification("backoff", "slack", "ops")];
    let (child_attempts, child_done) = deliver_in_background(isolated, routes, child_config.clone(), patient.clone());
    let (_, own_done) = deliver_in_background(in_process, vec![notification("stuck_here", "aborter", "loop")], own_config, patient.clone());

    let stuck_child = looping_pid(&child_log, START_DEADLINE).expect("the call in a child did not start");
    assert!(looping_pid(&own_log, START_DEADLINE).is_some(), "the call in process did not start");
    // The slack route failed once and is backing off.
    let first = child_attempts.recv_timeout(START_DEADLINE).expect("the slack route made no attempt");
    assert_eq!((first.route_id.as_str(), first.outcome), ("route_backoff", AttemptOutcome::RetryableFailure), "{first:?}");

    let interrupted_at = Instant::now();
    assert_eq!(cavra_plugin_host::interrupt_all(), 2, "the aborter and slack children were running");
    assert!(cavra_plugin_host::interrupted());
    let mut records = child_done.recv_timeout(EXIT_DEADLINE).expect("the deliveries in children did not end after the interrupt");
    records.extend(own_done.recv_timeout(EXIT_DEADLINE).expect("the delivery in process did not end after the interrupt"));
    assert!(interrupted_at.elapsed() < EXIT_DEADLINE);
    let summary: Vec<_> = records.iter().map(|r| (r.route_id.as_str(), r.attempt, r.outcome, r.is_final)).collect();
    assert_eq!(
        summary,
        [
            ("route_stuck", 1, AttemptOutcome::Interrupted, true),
            ("route_queued", 1, AttemptOutcome::Interrupted, true),
            ("route_backoff", 1, AttemptOutcome::RetryableFailure, false),
            ("route_backoff", 2, AttemptOutcome::Interrupted, true),
            ("route_stuck_here", 1, AttemptOutcome::Interrupted, true),
        ],
        "{records:#?}"
    );
    assert!(records[0].message.contains("during the connector call"), "{}", records[0].message);
    assert!(records[1].message.contains("not sent"), "{}", records[1].message);
    assert!(records[3].message.contains("not sent"), "{}", records[3].message);
    assert!(records[4].message.contains("during the connector call"), "{}", records[4].message);
    assert_eq!(serde_json::to_value(&records[0]).expect("json")["outcome"], "interrupted");
    assert!(records.iter().all(|r| r.is_interrupted() || r.outcome == AttemptOutcome::RetryableFailure));
    assert_eq!(provider.requests().len(), 1, "the retry was not made");
    #[cfg(target_os = "linux")]
    assert!(ended(stuck_child), "the child stuck in a connector call was not killed");
    #[cfg(not(target_os = "linux"))]
    let _ = stuck_child;

    // Nothing starts any more: no call, no child, no plugin load.
    let after = isolated.deliver_all(vec![notification("after", "aborter", "ops")], &child_config, &patient, |_| {});
    assert_eq!(after.iter().map(|r| (r.attempt, r.outcome)).collect::<Vec<_>>(), [(1, AttemptOutcome::Interrupted)], "{after:#?}");
    let log = std::fs::read_to_string(&child_log).unwrap_or_default();
    assert!(!log.contains("cavra-test-after"), "a connector call was made after the interrupt:\n{log}");
    let reloaded = Registry::load(&[isolated_plugins], &process_isolation());
    assert!(reloaded.report().loaded.is_empty(), "{}", reloaded.report());
    assert!(reloaded.report().refused.iter().all(|r| r.reason.contains("shutting down")), "{}", reloaded.report());
    // Refused for the interrupt, the plugin's routes are interrupted, not failed.
    let unserved = reloaded.deliver_all(vec![notification("unserved", "aborter", "ops")], &child_config, &patient, |_| {});
    assert_eq!(unserved.iter().map(|r| r.outcome).collect::<Vec<_>>(), [AttemptOutcome::Interrupted], "{unserved:#?}");
    println!("{INTERRUPT_DONE}");
}

#[test]
fn finding_5_interrupt_all_ends_calls_retries_and_queued_routes_with_interrupted_attempts() {
    // Built here, once, rather than by the helper under its deadline.
    let _ = artifacts();
    let tmp = TempDir::new("interrupt");
    let output = tmp.path().join("helper.out");
    let helper = Command::new(std::env::current_exe().expect("test executable"))
        .args(["--exact", "isolation::finding_5_interrupt_helper", "--test-threads", "1", "--nocapture"])
        .env(INTERRUPT_DIR_ENV, tmp.path())
        .stdin(Stdio::null())
        // A file, not a pipe: a full pipe would stall the helper.
        .stdout(std::fs::File::create(&output).expect("helper output"))
        .stderr(Stdio::from(std::fs::File::options().append(true).open(&output).expect("helper output")))
        .spawn()
        .expect("start the helper");
    let mut helper = Started(helper);
    let until = Instant::now() + HELPER_DEADLINE;
    let mut status = None;
    while status.is_none() && Instant::now() < until {
        status = helper.0.try_wait().expect("poll the helper");
        thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("the helper did not finish within {HELPER_DEADLINE:?}:\n{text}"));
    assert!(status.success() && text.contains(INTERRUPT_DONE), "{status}:\n{text}");
}

#[cfg(unix)]
#[test]
fn finding_5_a_child_stopped_by_sigterm_interrupts_its_call_and_is_restarted() {
    // A service manager stopping the whole service (systemd signals every
    // process of its control group), or Ctrl-C in a terminal, reaches the
    // plugin children too: their calls are interrupted, not failed.
    let a = artifacts();
    let tmp = TempDir::new("sigterm-child");
    // Shared with the delivery's thread, which a failed test leaves stuck.
    let registry: &'static Registry = Box::leak(Box::new(Registry::load(&[tmp.plugin_dir(&[&a.aborting])], &process_isolation())));
    let log = tmp.path().join("aborter.log");
    let config = config(json!({"connectors": {"aborter": {"path": log}}}), &[]);
    let options = DeliveryOptions { attempt_timeout: Duration::from_secs(3600), ..fast_options() };
    let (_, done) = deliver_in_background(registry, vec![notification("stopped", "aborter", "loop")], config.clone(), options.clone());
    let pid = looping_pid(&log, START_DEADLINE).expect("the looping call did not start");
    let signalled = Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("run kill");
    assert!(signalled.success(), "kill -TERM {pid} failed");
    let records = done.recv_timeout(EXIT_DEADLINE).expect("the delivery did not end when its child was stopped");
    // Restarted at once (no crash backoff), the next call goes through.
    let next = registry.deliver_all(vec![notification("after_sigterm", "aborter", "ops")], &config, &options, |_| {});
    let summary: Vec<_> = records.iter().map(|r| (r.attempt, r.outcome, r.is_final)).collect();
    assert_eq!(summary, [(1, AttemptOutcome::Interrupted, true)], "{records:#?}");
    assert!(records[0].message.contains("stopped by SIGTERM"), "{}", records[0].message);
    assert_eq!(next[0].outcome, AttemptOutcome::Delivered, "{next:#?}");
}
