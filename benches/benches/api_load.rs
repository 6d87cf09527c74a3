//! Load test of `cavra api` on loopback: starts the server in this process
//! (the real `cavra api` command on an ephemeral port), then drives it from
//! many concurrent keep-alive connections and reports requests per second and
//! p50/p99 latency for two endpoints:
//!
//! - `POST /v1/packs/routing/evaluate`: one routing decision per request, the
//!   sample policy inline (bound once, then served from the bound-program cache);
//! - `POST /runtime/go-pilot/rollback-drill-notifications/plan`: a whole plan
//!   (schedule report, routing, store write) per request.
//!
//! Run: `cargo bench -p cavra-benches --bench api_load` (env CAVRA_LOAD_SECONDS,
//! CAVRA_LOAD_CONNECTIONS, CAVRA_LOAD_CLIENT_THREADS change the run). The client
//! shares the machine with the server, so figures are a floor for the server alone.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const AT: &str = "2026-05-21T19:00:00Z";

/// Captures the server's "listening on" line.
struct LineSink(mpsc::Sender<String>, Vec<u8>);

impl Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        while let Some(i) = self.1.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.1.drain(..=i).collect();
            let _ = self.0.send(String::from_utf8_lossy(&line).trim().to_string());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn start_server(repo: &Path, store: &Path) -> String {
    let e = |f: &str| repo.join("examples").join(f).display().to_string();
    let args: Vec<String> = ["cavra", "api", "--quiet", "--listen", "127.0.0.1:0", "--mode", "promoted", "--store"]
        .iter()
        .map(|s| s.to_string())
        .chain([store.display().to_string()])
        .chain(["--routing-policy".into(), e("routing-policy.json")])
        .chain(["--rollback-drill-history-path".into(), e("rollback-drills.json")])
        .chain(["--rollback-drill-schedule-path".into(), e("rollback-drill-schedule.json")])
        .collect();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = LineSink(tx, Vec::new());
        let mut err = std::io::stderr();
        cavra::run(args.iter().map(Into::into), &mut out, &mut err, false)
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).expect("the server starts");
    line.rsplit("http://").next().expect("an address").to_string()
}

struct Outcome {
    requests: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<u32>,
}

/// `connections` keep-alive connections, each sending `body` to `path` back
/// to back for `duration` (after a warm-up of a tenth of it).
fn drive(addr: &str, path: &'static str, body: Bytes, connections: usize, threads: usize, duration: Duration) -> Outcome {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("client runtime");
    runtime.block_on(async {
        let warmup = duration / 10;
        let start = Instant::now() + warmup;
        let end = start + duration;
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (addr, body) = (addr.to_string(), body.clone());
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                tokio::spawn(connection);
                let (mut latencies, mut errors) = (Vec::new(), 0usize);
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let request =
                        Request::post(path).header("host", &addr).header("content-type", "application/json").body(Full::new(body.clone())).expect("request");
                    let ok = match sender.send_request(request).await {
                        Ok(response) => {
                            let status = response.status();
                            response.into_body().collect().await.is_ok() && status.is_success()
                        }
                        Err(_) => false,
                    };
                    if sent >= start {
                        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        errors += usize::from(!ok);
                    }
                }
                (latencies, errors)
            }));
        }
        let mut outcome = Outcome { requests: 0, errors: 0, elapsed: duration, latencies: Vec::new() };
        for task in tasks {
            let (latencies, errors) = task.await.expect("connection task");
            outcome.requests += latencies.len();
            outcome.errors += errors;
            outcome.latencies.extend(latencies);
        }
        outcome.latencies.sort_unstable();
        outcome
    })
}

fn report(name: &str, connections: usize, o: &Outcome) {
    let pct = |p: f64| o.latencies.get(((o.latencies.len() as f64 * p) as usize).min(o.latencies.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{name:<28} {connections:>4} conns  {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests, {} errors)",
        o.requests as f64 / o.elapsed.as_secs_f64(),
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        o.requests,
        o.errors
    );
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks it starts.
    let quick = !std::env::args().any(|a| a == "--bench");
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("cavra-api-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let addr = start_server(&repo, &dir.join("cavra.db"));
    let seconds = if quick { 1 } else { env_number("CAVRA_LOAD_SECONDS", 10) };
    let connections = env_number("CAVRA_LOAD_CONNECTIONS", 64) as usize;
    let threads = env_number("CAVRA_LOAD_CLIENT_THREADS", 1) as usize;
    let duration = Duration::from_secs(seconds);

    let policy = std::fs::read_to_string(repo.join("examples/routing-policy.json")).expect("sample policy");
    let decision = format!(
        r#"{{"inputs": {{"policy": {policy}, "schedule_id": "go_backend_python_fallback_monthly", "schedule_status": "due_soon", "owner": "release-governance", "provider": "teams"}}, "at": "{AT}"}}"#
    );
    println!("cavra api load test on {addr}: {seconds} s per endpoint, client on {threads} thread(s)");
    let o = drive(&addr, "/v1/packs/routing/evaluate", Bytes::from(decision), connections, threads, duration);
    report("POST /v1/packs/routing/evaluate", connections, &o);
    assert_eq!(o.errors, 0, "decision requests failed");

    let plan = format!(r#"{{"at": "{AT}", "provider": "all"}}"#);
    let plan_connections = connections.min(16);
    let o = drive(&addr, "/runtime/go-pilot/rollback-drill-notifications/plan", Bytes::from(plan), plan_connections, threads, duration);
    report("POST .../plan", plan_connections, &o);
    assert_eq!(o.errors, 0, "plan requests failed");
    let _ = std::fs::remove_dir_all(&dir);
}
