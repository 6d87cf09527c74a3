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
//! Then `POST /runtime/go-pilot/rollback-drill-notifications/deliver` against
//! `cavra api` processes (the `cavra` binary of this profile, built with the
//! bundled connector plugins when needed), each sending to a recording
//! provider on 127.0.0.1: one instance on SQLite, then one and three instances
//! sharing one PostgreSQL database (`CAVRA_BENCH_POSTGRES_URL`, else a
//! throwaway local cluster with fsync off: see `support/postgres.rs`; skipped
//! without either). Each run starts from a fresh store and sends the same
//! requests, two kinds: `a new instant each` (request n at 19:00:00Z + n s:
//! each is a new delivery run that plans, stores the plan (3 routes), reads
//! the schedule's history and sends what is pending, so the store grows by a
//! plan per request) and `one instant` (all at 19:00:00Z: the same plan,
//! nothing left to send after the first). Client threads take the next
//! request and send it to the next instance in turn (round-robin), on
//! keep-alive connections. Afterwards the provider must have received each
//! notification exactly once; the CPU time per request of the instances, the
//! PostgreSQL backends and the client, and the time of the schedule's
//! history read (as each request does it) are printed.
//!
//! Run: `cargo bench -p cavra-benches --bench api_load [-- evaluate|plan|deliver]`
//! (env CAVRA_LOAD_SECONDS, CAVRA_LOAD_CONNECTIONS, CAVRA_LOAD_CLIENT_THREADS
//! change the first two; CAVRA_LOAD_DELIVERIES, CAVRA_LOAD_DELIVER_CLIENTS the
//! deliver runs). The client shares the machine with the servers, so figures
//! are a floor for the servers alone.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../support/postgres.rs"]
mod pg;

use bytes::Bytes;
use cavra_app::store::{PostgresOptions, PostgresStore, PostgresUrl, SqliteStore, Store};
use cavra_tests::http::Server;
use cavra_tests::provider::Provider;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
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

/// One line of figures; `clients` counted in `unit` (keep-alive connections, or client threads).
fn report(name: &str, clients: usize, unit: &str, o: &Outcome) {
    let pct = |p: f64| o.latencies.get(((o.latencies.len() as f64 * p) as usize).min(o.latencies.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{name:<40} {clients:>4} {unit:<7} {:>9.0} req/s  p50 {:>7.3} ms  p99 {:>7.3} ms  ({} requests, {} errors)",
        o.requests as f64 / o.elapsed.as_secs_f64(),
        pct(0.50) as f64 / 1000.0,
        pct(0.99) as f64 / 1000.0,
        o.requests,
        o.errors
    );
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks it starts.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = !args.iter().any(|a| a == "--bench");
    // Other arguments choose sections by name, as criterion's filters do.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |section: &str| filters.is_empty() || filters.iter().any(|f| section.contains(f.as_str()));
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(format!("cavra-api-load-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let seconds = if quick { 1 } else { env_number("CAVRA_LOAD_SECONDS", 10) };
    let connections = env_number("CAVRA_LOAD_CONNECTIONS", 64) as usize;
    let threads = env_number("CAVRA_LOAD_CLIENT_THREADS", 1) as usize;
    let duration = Duration::from_secs(seconds);

    if wanted("evaluate") || wanted("plan") {
        let addr = start_server(&repo, &dir.join("cavra.db"));
        println!("cavra api load test on {addr}: {seconds} s per endpoint, client on {threads} thread(s)");
        if wanted("evaluate") {
            let policy = std::fs::read_to_string(repo.join("examples/routing-policy.json")).expect("sample policy");
            let decision = format!(
                r#"{{"inputs": {{"policy": {policy}, "schedule_id": "go_backend_python_fallback_monthly", "schedule_status": "due_soon", "owner": "release-governance", "provider": "teams"}}, "at": "{AT}"}}"#
            );
            let o = drive(&addr, "/v1/packs/routing/evaluate", Bytes::from(decision), connections, threads, duration);
            report("POST /v1/packs/routing/evaluate", connections, "conns", &o);
            assert_eq!(o.errors, 0, "decision requests failed");
        }
        if wanted("plan") {
            let plan = format!(r#"{{"at": "{AT}", "provider": "all"}}"#);
            let plan_connections = connections.min(16);
            let o = drive(&addr, "/runtime/go-pilot/rollback-drill-notifications/plan", Bytes::from(plan), plan_connections, threads, duration);
            report("POST .../plan", plan_connections, "conns", &o);
            assert_eq!(o.errors, 0, "plan requests failed");
        }
    }
    if wanted("deliver") {
        deliver_load(&repo, &dir, quick);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- deliver: `cavra api` processes sharing a store --------------------------

const DELIVER: &str = "/runtime/go-pilot/rollback-drill-notifications/deliver";
const SCHEDULE: &str = "go_backend_python_fallback_monthly";
/// Requests each instance gets before the timing starts (they continue the same `at` sequence).
const DELIVER_WARMUP_PER_INSTANCE: u64 = 10;

/// What the requests of a deliver run ask for.
#[derive(Clone, Copy, PartialEq)]
enum Instants {
    /// Request n at AT + n seconds: each is a new delivery run that stores a new plan.
    Advancing,
    /// Every request at AT: the same plan (stored once), nothing left to send after the first.
    Same,
}

impl Instants {
    fn name(self) -> &'static str {
        match self {
            Instants::Advancing => "a new instant each",
            Instants::Same => "one instant",
        }
    }

    fn at(self, n: u64) -> String {
        let base = chrono::DateTime::parse_from_rfc3339(AT).expect("AT").timestamp();
        let offset = if self == Instants::Advancing { n as i64 } else { 0 };
        chrono::DateTime::from_timestamp(base + offset, 0).expect("a time").to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// `cavra api` processes on the sample documents, sharing `store`, sending to the provider of `config`.
fn start_instances(repo: &Path, store: &str, count: usize, config: &Path) -> Vec<Server> {
    let e = |f: &str| repo.join("examples").join(f).display().to_string();
    let args: Vec<String> = ["--quiet", "--mode", "promoted", "--store", store]
        .iter()
        .map(|s| s.to_string())
        .chain(["--routing-policy".into(), e("routing-policy.json")])
        .chain(["--rollback-drill-history-path".into(), e("rollback-drills.json")])
        .chain(["--rollback-drill-schedule-path".into(), e("rollback-drill-schedule.json")])
        .collect();
    let config = config.display().to_string();
    (0..count).map(|_| Server::start(&args, &[("CAVRA_CONNECTOR_CONFIG", &config)])).collect()
}

/// One keep-alive HTTP/1.1 connection, blocking.
struct Connection {
    addr: String,
    reader: BufReader<TcpStream>,
    /// Whether it already carried a request (the server may have closed it since).
    used: bool,
}

impl Connection {
    fn open(addr: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Connection { addr: addr.to_string(), reader: BufReader::new(stream), used: false })
    }

    /// POSTs a JSON body; the status and the body of the answer. `Ok(None)`:
    /// a used connection was closed before any answer (the server closes
    /// idle keep-alive connections), so the request was not taken.
    fn post(&mut self, path: &str, body: &str) -> std::io::Result<Option<(u16, String)>> {
        let head = format!("POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", self.addr, body.len());
        let reused = std::mem::replace(&mut self.used, true);
        let stream = self.reader.get_mut();
        let mut line = String::new();
        let sent = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body.as_bytes()));
        match sent.and_then(|()| self.reader.read_line(&mut line)) {
            Ok(0) | Err(_) if reused => return Ok(None),
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed before an answer")),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = None;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let length = length.ok_or_else(|| std::io::Error::other("an answer without Content-Length"))?;
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(Some((status, String::from_utf8_lossy(&body).into_owned())))
    }
}

/// Sends one request on the thread's connection to `addr`, opening it (again) when needed.
fn send(connection: &mut Option<Connection>, addr: &str, body: &str) -> std::io::Result<(u16, String)> {
    for _ in 0..2 {
        let mut open = match connection.take() {
            Some(open) => open,
            None => Connection::open(addr)?,
        };
        if let Some(answer) = open.post(DELIVER, body)? {
            *connection = Some(open);
            return Ok(answer);
        }
    }
    Err(std::io::Error::other("the connection closed twice before an answer"))
}

/// What a run of deliver requests did.
struct Deliveries {
    outcome: Outcome,
    /// When each request completed, from the start, sorted.
    completions: Vec<Duration>,
    /// Sum of the answers' `delivered_count`.
    delivered: u64,
    first_error: Option<String>,
}

impl Deliveries {
    /// Requests per second in each quarter of the run (by completion order).
    fn quarters(&self) -> String {
        let n = self.completions.len();
        let mut rates = Vec::new();
        let mut start = Duration::ZERO;
        for q in 1..=4 {
            let end = self.completions.get(n * q / 4 - 1).copied().unwrap_or(start);
            let count = n * q / 4 - n * (q - 1) / 4;
            rates.push(format!("{:.0}", count as f64 / (end - start).as_secs_f64().max(1e-9)));
            start = end;
        }
        rates.join(" / ")
    }
}

/// Deliver requests `first..first + count`, sent by `clients` threads; each
/// thread takes the next request and sends it to the next instance in turn
/// (round-robin), on one keep-alive connection per instance.
fn deliver_requests(addrs: &[String], instants: Instants, clients: usize, first: u64, count: u64) -> Deliveries {
    let next = AtomicU64::new(first);
    let end = first + count;
    let start = Instant::now();
    let empty = || Deliveries {
        outcome: Outcome { requests: 0, errors: 0, elapsed: Duration::ZERO, latencies: Vec::new() },
        completions: Vec::new(),
        delivered: 0,
        first_error: None,
    };
    let results: Vec<Deliveries> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..clients)
            .map(|thread| {
                let next = &next;
                scope.spawn(move || {
                    let mut connections: Vec<Option<Connection>> = addrs.iter().map(|_| None).collect();
                    let mut mine = empty();
                    for turn in thread.. {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= end {
                            break;
                        }
                        let instance = turn % addrs.len();
                        let body = format!(r#"{{"provider": "all", "at": "{}"}}"#, instants.at(n));
                        let sent = Instant::now();
                        let answer = send(&mut connections[instance], &addrs[instance], &body);
                        mine.outcome.latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        mine.completions.push(start.elapsed());
                        match answer {
                            Ok((200, text)) => {
                                let result: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                                mine.delivered += result["delivered_count"].as_u64().unwrap_or(0);
                            }
                            Ok((status, text)) => {
                                mine.outcome.errors += 1;
                                mine.first_error.get_or_insert_with(|| format!("{status}: {text}"));
                            }
                            Err(e) => {
                                mine.outcome.errors += 1;
                                mine.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    mine
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("client thread")).collect()
    });
    let mut run = empty();
    run.outcome.elapsed = start.elapsed();
    for mine in results {
        run.outcome.requests += mine.outcome.latencies.len();
        run.outcome.errors += mine.outcome.errors;
        run.outcome.latencies.extend(mine.outcome.latencies);
        run.completions.extend(mine.completions);
        run.delivered += mine.delivered;
        run.first_error = run.first_error.or(mine.first_error);
    }
    run.outcome.latencies.sort_unstable();
    run.completions.sort_unstable();
    run
}

/// Where a configuration keeps its store.
enum StoreKind<'a> {
    Sqlite(PathBuf),
    Postgres(&'a pg::Server),
}

/// One configuration and kind of request: `instances` processes on a fresh
/// store, the warm-up, then the timed requests; then the schedule's history
/// read through the store, as each request reads it (three times).
/// Returns whether every notification reached the provider exactly once and every request succeeded.
fn deliver_configuration(repo: &Path, dir: &Path, kind: &StoreKind, instances: usize, instants: Instants, clients: usize, count: u64) -> bool {
    let (backend, store) = match kind {
        StoreKind::Sqlite(folder) => {
            let _ = std::fs::remove_dir_all(folder);
            ("sqlite", folder.join("cavra.db").display().to_string())
        }
        StoreKind::Postgres(server) => ("postgres", server.database("cavra_bench_deliver")),
    };
    let name = format!("{backend}, {instances} instance{}, {}", if instances == 1 { "" } else { "s" }, instants.name());
    let provider = Provider::start(200);
    let config = provider.connector_config(&dir.join(name.replace([' ', ','], "-")));
    let servers = start_instances(repo, &store, instances, &config);
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.clone()).collect();
    // Warm-up: the stores open (and migrate), the connectors load, the first notifications go out.
    let warmup = DELIVER_WARMUP_PER_INSTANCE * instances as u64;
    let warm = deliver_requests(&addrs, instants, instances, 0, warmup);
    // CPU time during the run: the instances, the PostgreSQL backends serving them, this process (the clients).
    let database = store.rsplit('/').next().unwrap_or_default().to_string();
    let cpu = || {
        let instances: f64 = servers.iter().map(|s| pg::process_cpu(&s.child.id().to_string())).sum();
        let backends = if matches!(kind, StoreKind::Postgres(server) if server.is_local()) { pg::backend_cpu(&database) } else { f64::NAN };
        [instances, backends, pg::process_cpu("self")]
    };
    let before = cpu();
    let run = deliver_requests(&addrs, instants, clients, warmup, count);
    let after = cpu();
    report(&format!("POST .../deliver, {name}"), clients, "threads", &run.outcome);
    drop(servers);
    let pad = "";
    println!("{pad:<40} requests/s by quarter of the run: {}", run.quarters());
    let per_request = |i: usize| (after[i] - before[i]) * 1e3 / count as f64;
    let backends = if per_request(1).is_nan() { String::new() } else { format!(", PostgreSQL backends {:.2} ms", per_request(1)) };
    println!("{pad:<40} CPU per request: cavra api {:.2} ms{backends}, client threads {:.2} ms", per_request(0), per_request(2));

    // The schedule's history as of the last request, as each deliver request reads it.
    let last = instants.at(warmup + count - 1);
    let as_of = cavra_engine::time::parse_time(&last).expect("a time");
    let opened: Arc<dyn Store> = match kind {
        StoreKind::Sqlite(_) => Arc::new(SqliteStore::open(&store).expect("the store")),
        StoreKind::Postgres(_) => Arc::new(PostgresStore::open(&PostgresUrl::new(&store), &PostgresOptions::default()).expect("the store")),
    };
    let mut times: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            opened.history(Some(SCHEDULE), as_of).expect("history");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).expect("a time"));
    let routes = match kind {
        StoreKind::Sqlite(_) => None,
        StoreKind::Postgres(_) => Some(explain_history(&store, as_of)),
    };
    println!(
        "{pad:<40} Store::history of the schedule afterwards: {:.2} ms median{}",
        times[4],
        routes.map_or_else(String::new, |r| format!("; its routes query: {r}"))
    );
    drop(opened);
    if let StoreKind::Postgres(server) = kind {
        server.drop_database(&store);
    }

    // Each notification exactly once at the provider, and as many as the answers say were delivered.
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for key in provider.keys() {
        *arrivals.entry(key).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = arrivals.iter().filter(|(_, n)| **n > 1).collect();
    let delivered = warm.delivered + run.delivered;
    let received: usize = arrivals.values().sum();
    println!("{pad:<40} the provider received {received} notifications ({} distinct), the answers report {delivered} delivered", arrivals.len());
    let mut ok = true;
    if !twice.is_empty() || received as u64 != delivered {
        println!("{pad:<40} NOT EXACTLY ONCE: {twice:?}");
        ok = false;
    }
    for (what, d) in [("warm-up", &warm), ("run", &run)] {
        if let Some(error) = &d.first_error {
            println!("{pad:<40} {what}: {} failed requests, the first: {}", d.outcome.errors, error.chars().take(300).collect::<String>());
            ok = false;
        }
    }
    ok
}

/// EXPLAIN ANALYZE of the routes part of `PostgresStore::history` for the
/// schedule (the SQL copied from `app/src/store/postgres.rs`): rows read, plan shape, time.
fn explain_history(url: &str, as_of: i64) -> String {
    let mut client = pg::connect(url);
    let sql = "EXPLAIN (ANALYZE) SELECT DISTINCT ON (notification_id) document FROM route_decisions
               WHERE notification_id IS NOT NULL AND created_at <= $1 AND ($2::text IS NULL OR schedule_id = $2)
               ORDER BY notification_id, created_at DESC, route_id DESC";
    let lines: Vec<String> = match client.query(sql, &[&as_of, &SCHEDULE]) {
        Ok(rows) => rows.iter().map(|r| r.get::<_, String>(0)).collect(),
        Err(e) => return format!("EXPLAIN failed: {e}"),
    };
    let nodes: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            let (node, rest) = l.trim_start().trim_start_matches("->").trim_start().split_once("  (")?;
            let rows = rest.split("rows=").nth(2).and_then(|r| r.split_whitespace().next()).unwrap_or("?");
            Some(format!("{node} ({rows} rows)"))
        })
        .collect();
    let time = lines.iter().find_map(|l| l.trim().strip_prefix("Execution Time: ")).unwrap_or("?");
    format!("{} in {time}", nodes.join(" <- "))
}

fn deliver_load(repo: &Path, dir: &Path, quick: bool) {
    let count = if quick { 12 } else { env_number("CAVRA_LOAD_DELIVERIES", 1000) };
    let clients = if quick { 2 } else { env_number("CAVRA_LOAD_DELIVER_CLIENTS", 6) as usize };
    // Built (with the bundled connectors) when needed.
    let binary = cavra_tests::cavra_binary();
    println!(
        "deliver: {} (plugins beside it), {count} timed requests per run after {DELIVER_WARMUP_PER_INSTANCE} per instance of warm-up, from {clients} client threads; \
         a fresh store per run",
        binary.display()
    );
    let server = pg::Server::start("deliver on postgres");
    let mut ok = true;
    for instants in [Instants::Advancing, Instants::Same] {
        ok &= deliver_configuration(repo, dir, &StoreKind::Sqlite(dir.join("deliver-sqlite")), 1, instants, clients, count);
        if let Some(server) = &server {
            for instances in [1, 3] {
                ok &= deliver_configuration(repo, dir, &StoreKind::Postgres(server), instances, instants, clients, count);
            }
        }
    }
    if let Some(server) = &server {
        println!("deliver on postgres: {}.", server.description);
        println!(
            "  fsync off: a commit never waits for the disk (SQLite, WAL with synchronous=NORMAL, does not wait on commit either, but syncs at checkpoints)."
        );
    }
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "  All instances, PostgreSQL and the client threads share this machine's {cores} cores: more instances here show contention for them, not scale-out."
    );
    assert!(ok, "deliver runs failed or a notification did not arrive exactly once (see above)");
}
