//! Tests against real PostgreSQL servers, started by `cavra_tests::postgres`
//! (throwaway clusters on loopback ports). Without PostgreSQL's server
//! binaries each test says it was skipped and passes; with
//! `CAVRA_REQUIRE_POSTGRES=1` (set by `.ci/run`) that is a failure instead.

use cavra_tests::postgres::{Cluster, ClusterOptions};
use std::time::Duration;

fn connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse().expect("a valid URL");
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls)
}

// The test cluster

#[test]
fn cluster_starts_and_serves_databases() {
    let Some(cluster) = Cluster::shared() else { return };
    let (first, second) = (cluster.database("serves"), cluster.database("serves"));
    assert_ne!(first, second, "each call gives a database of its own");
    let mut one = connect(&first).expect("connect to the first database");
    let mut two = connect(&second).expect("connect to the second database");
    one.batch_execute("CREATE TABLE only_here (id integer PRIMARY KEY); INSERT INTO only_here VALUES (1)").expect("create a table");
    let count = |client: &mut postgres::Client| -> i64 {
        client.query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'", &[]).expect("query the catalog").get(0)
    };
    assert_eq!(count(&mut one), 1);
    assert_eq!(count(&mut two), 0, "the table of one database is absent from the other");
    let user: String = two.query_one("SELECT current_user::text", &[]).expect("current_user").get(0);
    assert_eq!(user, cluster.user());
}

#[test]
fn a_cluster_of_its_own_stops_and_restarts() {
    let Some(cluster) = Cluster::start(ClusterOptions::default()) else { return };
    let url = cluster.database("restarts");
    connect(&url).expect("connect to the running server").batch_execute("CREATE TABLE kept (id integer)").expect("create a table");
    cluster.stop();
    assert!(connect(&url).is_err(), "a stopped server refuses connections");
    cluster.restart();
    let mut client = connect(&url).expect("connect after the restart");
    let count: i64 = client.query_one("SELECT count(*) FROM kept", &[]).expect("the table survived the restart").get(0);
    assert_eq!(count, 0);
}

#[test]
fn tls_cluster_serves_encrypted_connections() {
    let Some(cluster) = Cluster::start(ClusterOptions { tls: true, ..ClusterOptions::default() }) else { return };
    // Plain connections stay allowed, which lets the test ask the server without a TLS client.
    let mut client = connect(&cluster.url("postgres")).expect("connect without TLS");
    let ssl: String = client.query_one("SHOW ssl", &[]).expect("SHOW ssl").get(0);
    assert_eq!(ssl, "on");
    let ca = std::fs::read_to_string(cluster.ca_pem().expect("a CA with tls")).expect("read the CA");
    let other = std::fs::read_to_string(cluster.other_ca_pem().expect("another CA with tls")).expect("read the other CA");
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----") && other.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_ne!(ca, other);
}

// TLS: sslmode as libpq means it, through rustls

/// The sample plan stored through `--store URL` (in-process CLI).
fn plan_with_store(store: &str) -> cavra_tests::Run {
    plan_run(store, "2026-05-21T19:00:00Z", &[])
}

/// The sample plan at `at`, with more flags (in-process CLI).
fn plan_run(store: &str, at: &str, extra: &[&str]) -> cavra_tests::Run {
    let repo = cavra_tests::crate_dir().join("..");
    let mut args: Vec<String> =
        ["runtime", "go-rollback-drill-notification-plan", "--at", at, "--json", "--store", store].iter().chain(extra).map(|s| s.to_string()).collect();
    let documents = cavra_tests::http::sample_document_flags(&repo);
    // The plan takes the schedule and the policy; the readiness documents belong to other reports.
    for pair in documents.chunks(2) {
        if matches!(pair[0].as_str(), "--mode" | "--rollback-drill-schedule-path" | "--routing-policy") {
            args.extend(pair.iter().cloned());
        }
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cavra_tests::cavra(&args)
}

/// How many of `database`'s connections are encrypted, asked over a plain connection.
fn encrypted_connections(cluster: &Cluster, database: &str) -> i64 {
    let mut admin = connect(&cluster.url("postgres")).expect("connect to ask");
    admin
        .query_one("SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1 AND s.ssl", &[&database])
        .expect("pg_stat_ssl")
        .get(0)
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or_default()
}

#[test]
fn sslmode_require_and_verify_full_encrypt_the_store() {
    let Some(cluster) = Cluster::start(ClusterOptions { tls: true, ..ClusterOptions::default() }) else { return };
    let ca = cluster.ca_pem().expect("a CA").display().to_string();
    for (prefix, query) in [("require", "sslmode=require".to_string()), ("verify_full", format!("sslmode=verify-full&sslrootcert={ca}"))] {
        let url = cluster.database(prefix);
        let store = cavra_app::store::StoreLocation::or_default(Some(std::path::Path::new(&format!("{url}?{query}")))).open().expect("open over TLS");
        store.ping().expect("the store answers");
        assert!(encrypted_connections(&cluster, database_name(&url)) >= 1, "{query}: the store's connection is encrypted");
        let run = plan_with_store(&format!("{url}?{query}"));
        assert_eq!(run.code, 0, "{query}: {}", run.stderr);
    }
    // The certificate names localhost too.
    let url = cluster.database("localhost").replace("127.0.0.1", "localhost");
    assert_eq!(plan_with_store(&format!("{url}?sslmode=verify-full&sslrootcert={ca}")).code, 0);
}

#[test]
fn verify_full_refuses_a_server_the_authority_did_not_sign() {
    let Some(cluster) = Cluster::start(ClusterOptions { tls: true, ..ClusterOptions::default() }) else { return };
    let url = cluster.database("untrusted");
    let other = cluster.other_ca_pem().expect("another CA").display().to_string();
    // A refused connection is retried until the connect timeout: keep it short.
    let run = plan_with_store(&format!("{url}?sslmode=verify-full&sslrootcert={other}&connect_timeout=1"));
    assert_eq!(run.code, 2, "{}", run.stdout);
    let shown = format!("postgres://…/{}", database_name(&url));
    assert!(run.stderr.contains(&format!("cannot reach the store {shown}")) && run.stderr.contains("TLS"), "{}", run.stderr);
    assert!(!run.stderr.contains(cluster.password()) && !run.stderr.contains(&cluster.port().to_string()), "{}", run.stderr);
    // verify-ca accepts the right authority whatever the name; without sslrootcert it says what is missing.
    let ca = cluster.ca_pem().expect("a CA").display().to_string();
    assert_eq!(plan_with_store(&format!("{url}?sslmode=verify-ca&sslrootcert={ca}")).code, 0);
    let missing = plan_with_store(&format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/root.crt&connect_timeout=1"));
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("sslmode=verify-full needs the certificate authority's PEM file"), "{}", missing.stderr);
}

#[test]
fn sslmode_require_refuses_a_server_without_tls() {
    let Some(cluster) = Cluster::shared() else { return };
    let run = plan_with_store(&format!("{}?sslmode=require&connect_timeout=1", cluster.database("plain")));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("server does not support TLS"), "{}", run.stderr);
}

// Secrets: the URL's user, password and host never leave the store

const CANARY_USER: &str = "canary_user_5e81d0";
const CANARY_PASSWORD: &str = "canary-pass-b7c2f9";

/// Every place the test looked must be free of the URL's private words.
fn assert_no_secrets(what: &str, text: &str, port: u16) {
    for secret in [CANARY_USER, CANARY_PASSWORD, "127.0.0.1:", &format!(":{port}"), "localhost"] {
        assert!(!text.contains(secret), "{what} shows {secret:?}:\n{text}");
    }
}

#[test]
fn the_connection_url_never_appears_in_output_logs_metrics_or_records() {
    let options = ClusterOptions { user: CANARY_USER.into(), password: CANARY_PASSWORD.into(), tls: false };
    let Some(cluster) = Cluster::start(options) else { return };
    let url = cluster.database("canary");
    let port = cluster.port();
    // The CLI: a stored plan, the routes, the escalation plan, and help with CAVRA_STORE set.
    let plan = plan_with_store(&url);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let routes = cavra_tests::cavra(&["runtime", "go-rollback-drill-routes", "--json", "--store", &url]);
    let escalation = cavra_tests::cavra(&["runtime", "go-rollback-drill-escalation-plan", "--at", "2026-05-22T03:00:00Z", "--json", "--store", &url]);
    for (what, run) in [("plan", &plan), ("routes", &routes), ("escalation plan", &escalation)] {
        assert_no_secrets(what, &format!("{}{}", run.stdout, run.stderr), port);
    }
    let dir = std::env::temp_dir().join(format!("cavra-canary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let help = cavra_tests::provider::cavra_process(&dir, &["runtime", "go-rollback-drill-routes", "--help"], &[("CAVRA_STORE", std::path::Path::new(&url))]);
    assert_no_secrets("--help", &help.stdout, port);
    // Wrong credentials: the error names the database only.
    // A refused login is retried until the connect timeout: keep it short.
    let wrong = format!("{}?connect_timeout=1", url.replace(CANARY_PASSWORD, "canary-wrong-a91f3e"));
    let refused = cavra_tests::cavra(&["runtime", "go-rollback-drill-routes", "--store", &wrong]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains(&format!("postgres://…/{}", database_name(&url))), "{}", refused.stderr);
    assert_no_secrets("a refused login", &refused.stderr, port);
    assert!(!refused.stderr.contains("canary-wrong-a91f3e"));
    // The API, working and refused: responses, /metrics and the log.
    let repo = cavra_tests::crate_dir().join("..");
    for (store, expect_ready) in [(&url, 200), (&wrong, 503)] {
        let server = cavra_tests::http::Server::start(&cavra_tests::http::sample_document_flags(&repo), &[("CAVRA_STORE", store.as_str())]);
        let ready = server.get("/readyz");
        assert_eq!(ready.status, expect_ready, "{}", ready.body);
        let plan = server.post("/runtime/go-pilot/rollback-drill-notifications/plan", r#"{"at": "2026-05-21T20:30:00Z"}"#);
        let listed = server.get("/runtime/go-pilot/rollback-drill-notifications/routes?limit=5");
        let metrics = server.get("/metrics");
        let (_, log) = server.terminate();
        for (what, text) in [("/readyz", &ready.body), ("plan", &plan.body), ("routes", &listed.body), ("/metrics", &metrics.body), ("the log", &log)] {
            assert_no_secrets(what, text, port);
            assert!(!text.contains("canary-wrong-a91f3e"), "{what}: {text}");
        }
    }
    // The stored records.
    let mut admin = connect(&url).expect("connect as the owner");
    let tables = ["plans", "route_decisions", "acknowledgements", "metadata", "deliveries", "policies", "retries", "claims"];
    for table in tables {
        let text: Option<String> = admin.query_one(&format!("SELECT string_agg(t::text, '\n') FROM {table} t"), &[]).expect("dump a table").get(0);
        assert_no_secrets(table, &text.unwrap_or_default(), port);
    }
    let _ = std::fs::remove_dir_all(dir);
}

// Two instances, one plan

#[test]
fn two_instances_planning_one_schedule_at_one_instant_store_one_plan() {
    let Some(cluster) = Cluster::shared() else { return };
    let url = cluster.database("one_plan");
    let dry = plan_run(&url, "2026-05-21T19:30:00Z", &["--no-store"]);
    let plan: cavra_app::records::Plan = serde_json::from_str(&dry.stdout).expect("a plan");
    // Four "instances" (stores with pools of their own) store the same plan at once.
    let location = cavra_app::store::StoreLocation::or_default(Some(std::path::Path::new(&url)));
    let stores: Vec<_> = (0..4).map(|_| location.open().expect("open")).collect();
    let barrier = std::sync::Barrier::new(stores.len());
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let runs: Vec<_> = stores
            .iter()
            .map(|store| {
                scope.spawn(|| {
                    barrier.wait();
                    store.save_plan(&plan).expect("save")
                })
            })
            .collect();
        runs.into_iter().map(|run| run.join().expect("a run")).collect()
    });
    let stored = outcomes.iter().filter(|o| matches!(o, cavra_app::store::SaveOutcome::Stored { .. })).count();
    assert_eq!(stored, 1, "{outcomes:?}");
    let mut admin = connect(&url).expect("connect");
    let plans: i64 = admin.query_one("SELECT count(*) FROM plans", &[]).expect("count").get(0);
    let routes: i64 = admin.query_one("SELECT count(*) FROM route_decisions", &[]).expect("count").get(0);
    assert_eq!((plans, routes), (1, plan.route_decisions.len() as i64));
}
