//! Hardening of `cavra api` against hostile clients and crashes, each test
//! named after the finding it guards: bounded metrics labels (3), a 413 that
//! reaches a client still sending its body (15), plugin children that die
//! with a `cavra api` killed mid-delivery (4), and a SIGTERM that interrupts
//! a stuck delivery at the end of the shutdown grace (5). Every test that
//! waits on a process or a socket has its own deadline.

use cavra_tests::http::{request, sample_server_in, Server};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AT: &str = "2026-05-21T19:00:00Z";
const NOTIFY: &str = "/runtime/go-pilot/rollback-drill-notifications";
/// Socket reads and writes give up after this, so a test never hangs.
const IO_DEADLINE: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    cavra_tests::crate_dir().join("..")
}

fn temp(name: &str) -> PathBuf {
    cavra_tests::fresh_dir(std::env::temp_dir().join(format!("cavra-hardening-api-{name}-{}", std::process::id())))
}

/// A server on the sample documents with its own store.
fn sample_server(name: &str, extra: &[&str], env: &[(&str, &str)]) -> (Server, PathBuf) {
    let dir = temp(name);
    (sample_server_in(&dir, extra, env), dir)
}

/// A random number without a dependency: std's hasher keys are random.
fn random(n: u64) -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(n);
    h.finish()
}

#[test]
fn finding_3_random_methods_and_paths_do_not_grow_metrics() {
    let (server, _) = sample_server("metrics-labels", &[], &[]);
    let before = server.get("/metrics").body;
    let mut methods = Vec::new();
    for i in 0..300u64 {
        // An extension method is any token: hyper accepts it and so must the metrics.
        let method = format!("X{:016X}{:016X}", random(i), random(i + 1));
        let path = match i % 3 {
            0 => format!("/{:x}/{:x}", random(i), random(i + 2)),
            1 => "/healthz".to_string(),
            _ => format!("{NOTIFY}/{:x}/acknowledgements", random(i)),
        };
        let r = request(&server.addr, &method, &path, &[], b"");
        assert!(r.status == 404 || r.status == 405, "{method} {path}: {} {}", r.status, r.body);
        methods.push(method);
    }
    let after = server.get("/metrics").body;
    // New series and histograms for three routes, whatever the number of requests.
    assert!(after.len() < before.len() + 16 * 1024, "/metrics grew from {} to {} bytes:\n{after}", before.len(), after.len());
    assert!(methods.iter().all(|m| !after.contains(m.as_str())), "a request method became a label:\n{after}");
    assert!(after.contains("cavra_http_requests_total{route=\"other\",method=\"other\",status=\"404\"} 100"), "{after}");
    assert!(after.contains("cavra_http_requests_total{route=\"/healthz\",method=\"other\",status=\"405\"} 100"), "{after}");
    let series = after.lines().filter(|l| l.starts_with("cavra_http_requests_total")).count();
    assert!(series <= 5, "{series} request series:\n{after}");
}

/// Sends `head`, then `body` in chunks of 64 KiB with a pause after each,
/// as a slow client would; every write must go through (a server that
/// closed early makes them fail with a reset).
fn send_slowly(stream: &mut TcpStream, head: &str, chunks: &[Vec<u8>]) {
    stream.write_all(head.as_bytes()).expect("send the head");
    for (i, chunk) in chunks.iter().enumerate() {
        if let Err(e) = stream.write_all(chunk) {
            panic!("the server cut the connection while the body was being sent (chunk {i} of {}): {e}", chunks.len());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    stream.flush().expect("flush");
}

/// Reads one response (head and `Content-Length` body) within [`IO_DEADLINE`].
fn read_response(stream: &mut TcpStream) -> (u16, String, String) {
    let until = Instant::now() + IO_DEADLINE;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let body = String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).to_string();
                return (status, head, body);
            }
        }
        assert!(Instant::now() < until, "no complete response within {IO_DEADLINE:?}: {:?}", String::from_utf8_lossy(&raw));
        match stream.read(&mut buffer) {
            Ok(0) => panic!("the connection closed before a complete response: {:?}", String::from_utf8_lossy(&raw)),
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("reading the response failed ({e}) after {:?}", String::from_utf8_lossy(&raw)),
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the API");
    stream.set_read_timeout(Some(IO_DEADLINE)).expect("read timeout");
    stream.set_write_timeout(Some(IO_DEADLINE)).expect("write timeout");
    stream
}

/// 3 MiB of JSON-ish bytes, in 48 chunks of 64 KiB.
fn three_mib() -> Vec<Vec<u8>> {
    (0..48).map(|_| vec![b' '; 64 * 1024]).collect()
}

#[test]
fn finding_15_a_slow_client_sending_a_declared_3_mib_body_reads_its_413() {
    let (server, _) = sample_server("slow-413", &[], &[]);
    let chunks = three_mib();
    let total: usize = chunks.iter().map(Vec::len).sum();
    let mut stream = connect(&server.addr);
    let head = format!("POST {NOTIFY}/plan HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {total}\r\n\r\n", server.addr);
    send_slowly(&mut stream, &head, &chunks);
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 413, "{head}\n{body}");
    assert!(body.contains("body_too_large"), "{body}");
    // The body was read to its end, so the connection is still good.
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).as_bytes()).expect("send a second request");
    let (status, _, body) = read_response(&mut stream);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn finding_15_a_slow_client_sending_a_chunked_3_mib_body_reads_its_413() {
    let (server, _) = sample_server("slow-413-chunked", &[], &[]);
    let mut chunks: Vec<Vec<u8>> = three_mib()
        .into_iter()
        .map(|data| {
            let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
            framed.extend_from_slice(&data);
            framed.extend_from_slice(b"\r\n");
            framed
        })
        .collect();
    chunks.push(b"0\r\n\r\n".to_vec());
    let mut stream = connect(&server.addr);
    let head = format!("POST {NOTIFY}/plan HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n", server.addr);
    send_slowly(&mut stream, &head, &chunks);
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 413, "{head}\n{body}");
    assert!(body.contains("body_too_large"), "{body}");
}

#[test]
fn finding_15_an_unknown_route_with_a_slow_body_still_answers_404() {
    // Any answer given before the body was read, not only 413.
    let (server, _) = sample_server("slow-404", &[], &[]);
    let chunks: Vec<Vec<u8>> = (0..8).map(|_| vec![b' '; 64 * 1024]).collect();
    let mut stream = connect(&server.addr);
    let head = format!("POST /no/such/endpoint HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", server.addr, 8 * 64 * 1024);
    send_slowly(&mut stream, &head, &chunks);
    let (status, head, body) = read_response(&mut stream);
    assert_eq!(status, 404, "{head}\n{body}");
}

/// The pid of the first `looping pid=PID` line the fixture wrote to `log`.
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
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` has ended: gone, or a zombie nobody reaped (a
/// container's init may never reap orphans).
#[cfg(target_os = "linux")]
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// A test folder with the aborting fixture plugin, configured to loop in
/// its call (it never returns).
#[cfg(target_os = "linux")]
struct LoopingAborter {
    dir: PathBuf,
    /// Where the fixture writes `looping pid=PID`.
    log: PathBuf,
    /// The connector configuration (`CAVRA_CONNECTOR_CONFIG`).
    config: PathBuf,
    /// `--plugin-dir`.
    plugin_dir: String,
}

#[cfg(target_os = "linux")]
fn looping_aborter(name: &str) -> LoopingAborter {
    let library = cavra_tests::aborting_fixture();
    let dir = temp(name);
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugin dir");
    std::os::unix::fs::symlink(&library, plugins.join(library.file_name().expect("file name"))).expect("link the plugin");
    let (log, config) = (dir.join("aborter.log"), dir.join("connectors.json"));
    let looping = serde_json::json!({"connectors": {"aborter": {"path": log.display().to_string(), "loop": true}}});
    std::fs::write(&config, looping.to_string()).expect("config");
    LoopingAborter { plugin_dir: plugins.display().to_string(), dir, log, config }
}

#[cfg(target_os = "linux")]
#[test]
fn finding_4_a_plugin_child_dies_with_cavra_api_killed_mid_delivery() {
    let LoopingAborter { log, config, plugin_dir, .. } = looping_aborter("orphan");
    let config_env = config.display().to_string();
    let (mut server, _) =
        sample_server("orphan-api", &["--plugin-dir", &plugin_dir, "--plugin-isolation", "process"], &[("CAVRA_CONNECTOR_CONFIG", config_env.as_str())]);

    // The delivery never returns: send it from a thread and let it go.
    let policy = serde_json::json!({"owner_routes": {"release-governance": {"providers": ["aborter"]}, "platform-operations": {"providers": ["aborter"]}}});
    let body = serde_json::json!({"provider": "all", "routing_policy": policy, "force": true, "at": AT}).to_string();
    let addr = server.addr.clone();
    std::thread::spawn(move || request(&addr, "POST", &format!("{NOTIFY}/deliver"), &[("Content-Type", "application/json")], body.as_bytes()));
    let pid = looping_pid(&log, Duration::from_secs(60)).expect("no delivery reached the looping connector");
    assert_ne!(pid, server.child.id(), "the connector ran in a plugin child");

    // `kill -9` of cavra api, mid-delivery.
    server.child.kill().expect("kill cavra api");
    server.child.wait().expect("reap cavra api");
    let until = Instant::now() + Duration::from_secs(10);
    while !ended(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = !ended(pid);
    if survived {
        // Leave nothing running behind a failed test.
        let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
    }
    assert!(!survived, "the cavra plugin-child {pid} outlived cavra api (killed with SIGKILL during a delivery)");
}

/// The processes whose parent is `parent` (`/proc/PID/stat`: the parent
/// follows the state, after the last `)`).
#[cfg(target_os = "linux")]
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

/// How long `cavra api` may take to exit after SIGTERM with a 1 s grace
/// (the looping connector would never return).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

#[cfg(target_os = "linux")]
#[test]
fn finding_5_sigterm_interrupts_a_stuck_delivery_answers_its_client_and_exits() {
    let LoopingAborter { dir, log, config, plugin_dir } = looping_aborter("sigterm");
    let config_env = config.display().to_string();
    // The default isolation (`auto`): the plugin runs in a child.
    let (mut server, server_dir) =
        sample_server("sigterm-api", &["--plugin-dir", &plugin_dir, "--shutdown-grace-secs", "1"], &[("CAVRA_CONNECTOR_CONFIG", config_env.as_str())]);
    let store = server_dir.join("cavra.db");

    // The delivery never finishes on its own: send it from a thread.
    let policy = serde_json::json!({"owner_routes": {"release-governance": {"providers": ["aborter"]}, "platform-operations": {"providers": ["aborter"]}}});
    let body = serde_json::json!({"provider": "all", "routing_policy": policy, "force": true, "at": AT}).to_string();
    let addr = server.addr.clone();
    let (answered, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = answered.send(request(&addr, "POST", &format!("{NOTIFY}/deliver"), &[("Content-Type", "application/json")], body.as_bytes()));
    });
    let pid = looping_pid(&log, Duration::from_secs(60)).expect("no delivery reached the looping connector");
    let children = children_of(server.child.id());
    assert!(children.contains(&pid), "the connector runs in a plugin child of cavra api: {pid} not in {children:?}");

    let signalled = Instant::now();
    let kill = std::process::Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status().expect("run kill");
    assert!(kill.success(), "kill -TERM failed");
    let mut status = None;
    while status.is_none() && signalled.elapsed() < SHUTDOWN_DEADLINE {
        status = server.child.try_wait().expect("poll cavra api");
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = children.iter().copied().filter(|&c| !ended(c)).collect();
    for &child in &left {
        // Leave nothing running behind a failed test.
        let _ = std::process::Command::new("kill").arg("-KILL").arg(child.to_string()).status();
    }
    let status = status.unwrap_or_else(|| panic!("cavra api still ran {SHUTDOWN_DEADLINE:?} after SIGTERM with a 1 s grace"));
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(left.is_empty(), "plugin children of cavra api left running: {left:?}");

    // The client got its delivery result, with the stuck attempt interrupted.
    let response = answer.recv_timeout(IO_DEADLINE).expect("the client waiting for the delivery got no answer");
    assert_eq!(response.status, 200, "{}", response.body);
    let result = response.json();
    let deliveries = result["deliveries"].as_array().expect("deliveries");
    assert!(!deliveries.is_empty(), "{result}");
    assert!(deliveries.iter().all(|d| d["outcome"] == "interrupted" && d["final"] == true), "{result}");
    assert!(deliveries.iter().any(|d| d["message"].as_str().is_some_and(|m| m.contains("during the connector call"))), "{result}");
    let interrupted: std::collections::BTreeSet<&str> = deliveries.iter().filter_map(|d| d["notification_id"].as_str()).collect();

    // Not failed: each notification still waits for delivery, no approval needed.
    let store_flag = store.display().to_string();
    let plan = cavra_tests::cavra(&["runtime", "go-rollback-drill-escalation-plan", "--store", &store_flag, "--at", AT, "--json"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).expect("escalation plan JSON");
    let routes = plan["routes"].as_array().expect("routes");
    for id in &interrupted {
        let route = routes.iter().find(|r| r["notification_id"] == *id).unwrap_or_else(|| panic!("{id} not in the escalation plan: {plan}"));
        assert_eq!(route["state"], "pending_delivery", "{route}");
    }

    // No claim is left behind: the next delivery run, through a connector
    // that works, sends each of them at once.
    let working = serde_json::json!({"connectors": {"aborter": {"path": log.display().to_string()}}});
    std::fs::write(&config, working.to_string()).expect("config");
    let mut routing = cavra_app::documents::read_json(&repo().join("examples/routing-policy.json")).expect("sample routing policy");
    routing["owner_routes"] = policy;
    let routing_path = dir.join("routing-policy.json");
    std::fs::write(&routing_path, routing.to_string()).expect("routing policy");
    let example = |f: &str| repo().join("examples").join(f).display().to_string();
    let run = std::process::Command::new(cavra_tests::cavra_binary())
        .env_remove("CAVRA_PLUGIN_PATH")
        .env("CAVRA_CONNECTOR_CONFIG", &config)
        .args(["runtime", "go-rollback-drill-notifications-deliver", "--mode", "promoted", "--json", "--force", "--at", AT])
        .args(["--rollback-drill-schedule-path", &example("rollback-drill-schedule.json")])
        .args(["--rollback-drill-history-path", &example("rollback-drills.json")])
        .args(["--routing-policy", &routing_path.display().to_string(), "--plugin-dir", &plugin_dir, "--store", &store_flag])
        .output()
        .expect("run cavra");
    let stdout = String::from_utf8_lossy(&run.stdout);
    // 1: escalations to the schedule's own providers (slack, teams) find no plugin here.
    assert!(matches!(run.status.code(), Some(0 | 1)), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let next: serde_json::Value = serde_json::from_str(&stdout).expect("delivery JSON");
    let delivered: std::collections::BTreeSet<&str> = next["deliveries"]
        .as_array()
        .expect("deliveries")
        .iter()
        .filter(|d| d["outcome"] == "delivered")
        .filter_map(|d| d["notification_id"].as_str())
        .collect();
    assert!(interrupted.is_subset(&delivered), "interrupted {interrupted:?}, delivered by the next run {delivered:?}: {next}");
}
