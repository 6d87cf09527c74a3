//! Several `cavra api` instances on one PostgreSQL database (README,
//! "Running several instances"): concurrent deliveries through three
//! instances send each notification once; a killed instance's claims are
//! taken over by another after their lease; concurrent acknowledgements are
//! all kept; a database that goes away makes the store endpoints 503 until it
//! comes back, without restarting the instance; instances starting together
//! migrate once; a schema newer than this build is reported and left alone.
//!
//! How it runs: the instances are the real binary on loopback ports, sending
//! to a recording provider (`cavra_tests::provider`); the databases come from
//! `cavra_tests::postgres` (a throwaway cluster shared by the tests, or one of
//! a test's own when it stops the server). Without PostgreSQL's server
//! binaries each test says it was skipped and passes; with
//! `CAVRA_REQUIRE_POSTGRES=1` (set by `.ci/run`) that is a failure instead.
//! Every wait is bounded; leases are short, so takeovers come quickly.

use cavra_app::store::{wall_micros, Store, StoreLocation, POSTGRES_SCHEMA_VERSION};
use cavra_tests::http::{request, sample_server_with_store, Response, Server};
use cavra_tests::postgres::{Cluster, ClusterOptions};
use cavra_tests::provider::{cavra_process, Provider, STALL};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const AT: &str = "2026-05-21T19:00:00Z";
const SCHEDULE: &str = "go_backend_python_fallback_monthly";
const DELIVER: &str = "/runtime/go-pilot/rollback-drill-notifications/deliver";
const PLAN: &str = "/runtime/go-pilot/rollback-drill-notifications/plan";
/// A store endpoint that needs nothing stored.
const LATEST_PLANS: &str = "/runtime/go-pilot/rollback-drill-notifications/latest-plans";
/// The claim lease of every instance; their sweepers run every half lease.
const LEASE: Duration = Duration::from_secs(2);
/// Client threads sending requests at once (see [`fan_out`]).
const CLIENTS: usize = 8;
/// The longest any wait of these tests may take.
const DEADLINE: Duration = Duration::from_secs(60);

/// Where a test keeps its files (the connector configuration).
fn test_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("postgres_instances").join(name)
}

/// An instance on the sample documents with its store at `url`, and `env`.
fn instance(url: &str, env: &[(&str, &str)]) -> Server {
    sample_server_with_store(url, &["--claim-lease-secs", &LEASE.as_secs().to_string(), "--quiet"], env)
}

/// `count` instances on `url`, started at the same moment, once all are
/// ready (as a load balancer would send them requests).
fn instances(count: usize, url: &str, env: &[(&str, &str)]) -> Vec<Server> {
    let servers: Vec<Server> = thread::scope(|scope| {
        let starting: Vec<_> = (0..count).map(|_| scope.spawn(|| instance(url, env))).collect();
        starting.into_iter().map(|s| s.join().expect("an instance started")).collect()
    });
    for server in &servers {
        wait_ready(server);
    }
    servers
}

/// `count` requests sent by [`CLIENTS`] threads at once, spread round-robin
/// over the instances: client c sends requests c, c + CLIENTS, c + 2 * CLIENTS, ...,
/// request i as `send(instance i % instances, i)`.
fn fan_out(servers: &[Server], count: usize, send: impl Fn(&Server, usize) -> Response + Sync) -> Vec<Response> {
    let responses: Vec<Response> = thread::scope(|scope| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let send = &send;
                scope.spawn(move || (client..count).step_by(CLIENTS).map(|i| send(&servers[i % servers.len()], i)).collect::<Vec<_>>())
            })
            .collect();
        clients.into_iter().flat_map(|c| c.join().expect("a client thread")).collect()
    });
    assert_eq!(responses.len(), count);
    responses
}

/// A provider answering `status`, and the environment that points the connectors at it.
fn provider(name: &str, status: u16) -> (Provider, String) {
    let provider = Provider::start(status);
    let config = provider.connector_config(&test_dir(name)).display().to_string();
    (provider, config)
}

/// Waits (at most [`DEADLINE`]) until `done`; panics with `what` otherwise.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        thread::sleep(Duration::from_millis(100));
    }
}

fn wait_ready(server: &Server) {
    eventually(&format!("{} answers /readyz 200", server.addr), || server.get("/readyz").status == 200);
}

fn deliver_body() -> String {
    json!({"provider": "all", "at": AT}).to_string()
}

fn open(url: &str) -> Arc<dyn Store> {
    StoreLocation::or_default(Some(Path::new(url))).open().expect("open the store")
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).expect("connect to the database")
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

/// The notifications due for delivery at [`AT`]: the schedule's delivering routes (not escalations).
fn deliverable(store: &dyn Store) -> BTreeSet<String> {
    let at = cavra_engine::time::parse_time(AT).expect("a time");
    let routes = store.history(Some(SCHEDULE), at).expect("history").routes;
    let due: BTreeSet<String> = routes.into_iter().filter(|r| r.delivers() && r.escalates.is_none()).map(|r| r.notification_id.to_string()).collect();
    assert!(!due.is_empty(), "notifications are due at {AT}");
    due
}

/// How often each name occurs.
fn tally(names: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    names.into_iter().fold(BTreeMap::new(), |mut counts, name| {
        *counts.entry(name).or_insert(0) += 1;
        counts
    })
}

/// Successful deliveries recorded per notification, whenever they were made.
fn successes(store: &dyn Store) -> BTreeMap<String, usize> {
    let attempts = store.history(Some(SCHEDULE), i64::MAX).expect("history").attempts;
    tally(attempts.into_iter().filter(|a| a.record.is_delivered()).map(|a| a.notification_id))
}

/// How often each idempotency key reached the provider; every one of `expected` did, and no other.
fn arrivals(provider: &Provider, expected: &BTreeSet<String>) -> BTreeMap<String, usize> {
    let counts = tally(provider.keys());
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), *expected, "the keys that reached the provider: {counts:?}");
    counts
}

/// Every notification of `expected` has exactly one recorded success, and nothing else has one.
fn assert_delivered_once(store: &dyn Store, expected: &BTreeSet<String>) {
    let recorded = successes(store);
    assert!(recorded.values().all(|&n| n == 1), "one success recorded per notification: {recorded:?}");
    assert_eq!(recorded.keys().cloned().collect::<BTreeSet<_>>(), *expected, "the notifications delivered");
}

/// Nothing private about the database in `text`: not its password, not its address.
fn assert_private(text: &str, cluster: &Cluster) {
    assert!(!text.contains(cluster.password()), "the password leaked: {text}");
    assert!(!text.contains(&format!("127.0.0.1:{}", cluster.port())), "the database's address leaked: {text}");
}

/// Every response has a status `ok` accepts.
fn assert_all(responses: &[Response], ok: impl Fn(u16) -> bool, what: &str) {
    let failed: Vec<&Response> = responses.iter().filter(|r| !ok(r.status)).collect();
    assert!(failed.is_empty(), "{} of {} {what} failed; the first: {:?}", failed.len(), responses.len(), failed.first());
}

/// The rows of `cavra_schema`.
fn schema_versions(client: &mut postgres::Client) -> Vec<i32> {
    client.query("SELECT version FROM cavra_schema", &[]).expect("cavra_schema").iter().map(|r| r.get(0)).collect()
}

/// The status and the JSON error code of a response.
fn status_and_code(response: &Response) -> (u16, Json) {
    (response.status, response.error()["code"].clone())
}

#[test]
fn three_instances_deliver_each_notification_once() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("three_deliver");
    let (provider, config) = provider("three-deliver", 200);
    let servers = instances(3, &url, &[("CAVRA_CONNECTOR_CONFIG", &config)]);
    let body = deliver_body();
    let responses = fan_out(&servers, 200, |server, _| server.post(DELIVER, &body));
    assert_all(&responses, |status| status == 200, "deliveries");

    let store = open(&url);
    let expected = deliverable(&*store);
    let arrived = arrivals(&provider, &expected);
    assert!(arrived.values().all(|&n| n == 1), "no idempotency key arrived twice: {arrived:?}");
    assert_delivered_once(&*store, &expected);
    let reported: u64 = responses.iter().map(|r| r.json()["delivered_count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(reported, expected.len() as u64, "the responses report each delivery once");
}

#[test]
fn a_killed_instance_claims_are_taken_over_by_another() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("killed_instance");
    let (provider, config) = provider("killed-instance", STALL);
    let mut started = instances(2, &url, &[("CAVRA_CONNECTOR_CONFIG", &config)]).into_iter();
    let (a, b) = (started.next().expect("instance A"), started.next().expect("instance B"));

    // A claims the due notifications and sends the first; the provider never answers.
    let (addr, body) = (a.addr.clone(), deliver_body());
    let hung = thread::spawn(move || request(&addr, "POST", DELIVER, &[("Content-Type", "application/json")], body.as_bytes()).status);
    eventually("the provider received A's request", || !provider.requests().is_empty());
    a.kill();
    provider.set_status(200);
    let in_flight: BTreeSet<String> = provider.keys().into_iter().collect();
    assert_eq!(hung.join().expect("the request to A"), 0, "the killed instance never answered");

    // After the lease, B's sweeper or a delivery through B sends what A held.
    thread::sleep(LEASE);
    let through_b = b.post(DELIVER, &deliver_body());
    assert_eq!(through_b.status, 200, "{}", through_b.body);
    let store = open(&url);
    let expected = deliverable(&*store);
    eventually("each due notification has a recorded success", || successes(&*store).len() == expected.len());
    assert_delivered_once(&*store, &expected);
    let arrived = arrivals(&provider, &expected);
    let repeated: BTreeMap<&String, &usize> = arrived.iter().filter(|(_, &n)| n > 1).collect();
    assert!(
        repeated.iter().all(|(key, &&n)| n == 2 && in_flight.contains(*key)),
        "only A's in-flight keys arrived again, once: {repeated:?} (A had {in_flight:?})"
    );
    assert!(store.expired_claims(wall_micros() + 1_000_000_000).expect("claims").is_empty(), "every claim was given up");
}

#[test]
fn concurrent_acknowledgements_through_three_instances_are_all_kept() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("concurrent_acks");
    let servers = instances(3, &url, &[]);
    const ACKS: usize = 60;
    let path = format!("/runtime/go-pilot/rollback-drill-notifications/{SCHEDULE}/acknowledgements");
    // Distinct notes make distinct acknowledgements (their ids are content hashes).
    let answers = fan_out(&servers, ACKS, |server, i| {
        let ack = json!({"provider": "teams", "acknowledged_by": "release-governance", "notes": format!("drill reviewed, note {i}"), "at": AT});
        server.post(&path, &ack.to_string())
    });
    assert_all(&answers, |status| (200..300).contains(&status), "acknowledgements");
    let answered: BTreeSet<String> = answers.iter().map(|r| r.json()["ack_id"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(answered.len(), ACKS, "each acknowledgement has an id of its own");
    let stored: BTreeSet<String> = open(&url).acknowledgements(SCHEDULE).expect("acknowledgements").into_iter().map(|a| a.ack_id).collect();
    assert_eq!(stored, answered, "every acknowledgement was stored, none lost");
}

#[test]
fn a_database_that_goes_away_is_503_and_comes_back() {
    let Some(cluster) = Cluster::start(ClusterOptions::default()) else { return };
    let database = cluster.database("goes_away");
    // A down database fails each connection attempt within a second.
    let url = format!("{database}?connect_timeout=1");
    let mut server = instance(&url, &[]);
    wait_ready(&server);
    assert_eq!(server.get(LATEST_PLANS).status, 200);

    cluster.stop();
    let down = server.get(LATEST_PLANS);
    assert_eq!(status_and_code(&down), (503, json!("store_unavailable")), "{}", down.body);
    assert_eq!(server.get("/healthz").status, 200, "the process is alive");
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.json()["store"]["status"].clone()), (503, json!("unavailable")), "{}", ready.body);
    assert!(server.wait_for_log("event=store_unavailable", DEADLINE), "the log says the store went away: {}", server.log());
    assert!(server.is_running(), "a lost database does not end the instance");
    for text in [&down.body, &ready.body] {
        assert_private(text, &cluster);
    }

    // The CLI names the store it cannot reach, and nothing private.
    let cli =
        cavra_process(Path::new(env!("CARGO_TARGET_TMPDIR")), &["runtime", "go-rollback-drill-escalation-plan", "--store", &url, "--at", AT, "--json"], &[]);
    assert_eq!(cli.code, 2, "{}", cli.stderr);
    assert!(cli.stderr.contains(&format!("cannot reach the store postgres://…/{}", database_name(&database))), "{}", cli.stderr);
    assert_private(&format!("{}{}", cli.stdout, cli.stderr), &cluster);

    cluster.restart();
    eventually("the same instance answers /readyz 200 again", || server.get("/readyz").status == 200);
    assert_eq!(server.get(LATEST_PLANS).status, 200, "the store endpoints work again");
    assert!(server.wait_for_log("event=store_ready", DEADLINE), "the log says the store is back: {}", server.log());
    let (_, log) = server.terminate();
    let (gone, back) = (log.find("event=store_unavailable"), log.rfind("event=store_ready"));
    assert!(gone.is_some() && gone < back, "store_unavailable, then store_ready: {log}");
    assert!(!log.contains("panicked"), "{log}");
    assert_private(&log, &cluster);
}

#[test]
fn instances_starting_together_migrate_once() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("migrate_once");
    // Each sweeper opens (and migrates) the store at once: the three race, then all are ready.
    let _servers = instances(3, &url, &[]);
    assert_eq!(schema_versions(&mut connect(&url)), [POSTGRES_SCHEMA_VERSION as i32], "one schema row, at this build's version");
}

#[test]
fn a_newer_schema_is_left_alone_and_reported() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("newer_schema");
    drop(open(&url));
    let mut client = connect(&url);
    client.batch_execute("UPDATE cavra_schema SET version = 99").expect("a newer schema version");
    let tables = |client: &mut postgres::Client| -> Vec<String> {
        let rows = client.query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[]).expect("tables");
        rows.iter().map(|r| r.get(0)).collect()
    };
    let before = tables(&mut client);

    let server = instance(&url, &[]);
    let ready = server.get("/readyz");
    assert_eq!((ready.status, ready.json()["store"]["code"].clone()), (503, json!("store_schema_newer")), "{}", ready.body);
    // Neither a read nor a write touches it.
    for refused in [server.get(LATEST_PLANS), server.post(PLAN, &json!({"at": AT}).to_string())] {
        assert_eq!(status_and_code(&refused), (503, json!("store_schema_newer")), "{}", refused.body);
    }
    assert!(server.wait_for_log("event=store_schema_newer", DEADLINE), "the log says why: {}", server.log());
    let (_, log) = server.terminate();
    assert_private(&log, cluster);

    assert_eq!(schema_versions(&mut client), [99], "the version is left as it was");
    assert_eq!(tables(&mut client), before, "no table was added or dropped");
}

#[test]
fn a_burst_on_a_cold_small_pool_waits_for_a_connection_rather_than_failing() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("cold_burst");
    // Two connections, no request made yet: every connection is made during the burst.
    let server = sample_server_with_store(&url, &["--store-pool-size", "2", "--quiet"], &[]);
    let answers = fan_out(std::slice::from_ref(&server), 40, |server, _| server.get(LATEST_PLANS));
    assert_all(&answers, |status| status == 200, "a burst on two connections");
}
