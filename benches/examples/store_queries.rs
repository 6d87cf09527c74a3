//! Route-history queries on a store holding 1,000,000 route decisions, in
//! SQLite and in PostgreSQL, side by side.
//!
//! `cargo run --release -j2 -p cavra-benches --example store_queries -- [ROUTES] [--explain] [--sqlite-only]`
//! fills a fresh SQLite store under target/store-queries/ and a fresh
//! PostgreSQL database (`CAVRA_BENCH_POSTGRES_URL`, else a throwaway local
//! cluster with fsync off: see `support/postgres.rs`) with the same plans
//! (10,000 plans of 100 routes each by default), through the batched
//! `Store::save_plans` path, 1,000 plans (one transaction) per call; then
//! times one more plan write (one transaction, median of 25), each kind of
//! filtered query and one schedule's history (`Store::history`, what each
//! delivery, acknowledgement and retry of a schedule reads) (medians of 25
//! runs) on both. The PostgreSQL database gets
//! `VACUUM (ANALYZE)` after the fill (autovacuum would soon do the same after
//! a bulk load; done first, it stays out of the timings). The PostgreSQL plan
//! of each query is checked with EXPLAIN (the SQL rebuilt here as
//! `app/src/store/postgres.rs` builds it): the indexes it reads are printed,
//! and with `--explain` the whole `EXPLAIN (ANALYZE, BUFFERS)` output.

#[path = "../support/postgres.rs"]
mod pg;

use cavra_app::records::Plan;
use cavra_app::store::{PostgresOptions, PostgresStore, PostgresUrl, RouteFilter, SqliteStore, Store};
use postgres::types::ToSql;
use serde_json::{json, Value as Json};
use std::time::{Duration, Instant};

const ROUTES_PER_PLAN: usize = 100;
/// Plans per `save_plans` call (one transaction) while filling.
const BATCH_PLANS: usize = 1_000;
const RUNS: usize = 25;
/// The schedule whose history (`Store::history`: latest route per
/// notification, attempts, acknowledgements) is read, as a delivery or an
/// acknowledgement for one schedule reads it.
const HISTORY_SCHEDULE: &str = "schedule-123";

fn plan(i: usize) -> Json {
    let at = chrono::DateTime::from_timestamp(1_780_000_000 + i as i64 * 600, 0).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plan_id = format!("plan_{i:016x}");
    let routes: Vec<Json> = (0..ROUTES_PER_PLAN)
        .map(|r| {
            let suppressed = r % 4 == 0;
            let provider = ["slack", "teams", "email", "webhook", "outbox"][r % 5];
            let category = if suppressed { ["maintenance_window", "owner_calendar", "healthy_schedule"][r % 3] } else { "deliver" };
            json!({
                "route_id": format!("route_{i:010x}{r:06x}"), "plan_id": plan_id, "schedule_id": format!("schedule-{}", i % 500),
                "owner": format!("owner-{}", (i * 7 + r) % 200), "escalation_owner": format!("lead-{}", r % 20),
                "provider": provider,
                "action": if suppressed { "suppress" } else { "deliver" },
                "category": category,
                "reason": "benchmark route", "created_at": at,
                // The notification of (schedule, owner, provider): each plan
                // of a schedule decides its notifications again.
                "notification_id": format!("ntf_{:08x}{:08x}", i % 500, ((i * 7 + r) % 200) * 5 + r % 5),
            })
        })
        .collect();
    json!({"schema_version": "bench", "plan_id": plan_id, "schedule_id": format!("schedule-{}", i % 500), "generated_at": at,
           "generated_by": "bench", "mode": "promoted", "status": "due_soon", "alert_level": "warning", "owner_routes": {},
           "deliverable_route_count": 0, "suppressed_route_count": 0, "maintenance_suppressed_count": 0, "calendar_suppressed_count": 0,
           "healthy_suppressed_count": 0, "selected_providers": [], "acknowledgement_required_providers": [], "suppressed_providers": [],
           "reason": "benchmark plan", "route_decisions": routes})
}

fn typed_plan(i: usize) -> Plan {
    serde_json::from_value(plan(i)).expect("a plan")
}

fn median_ms(mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut rows = 0;
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            rows = f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[RUNS / 2], rows)
}

/// Stores plans `0..plans` through `save_plans`, [`BATCH_PLANS`] per call;
/// returns the time spent in `save_plans` (making the plans is not counted),
/// and the CPU time of this process and of the server (see [`measure`]) in those calls.
fn fill(store: &dyn Store, plans: usize, server_cpu: &impl Fn() -> Option<f64>) -> (Duration, f64, Option<f64>) {
    let (mut spent, mut own, mut server) = (Duration::ZERO, 0.0, None);
    for start in (0..plans).step_by(BATCH_PLANS) {
        let batch: Vec<Plan> = (start..(start + BATCH_PLANS).min(plans)).map(typed_plan).collect();
        let (own_before, server_before) = (pg::process_cpu("self"), server_cpu());
        let t = Instant::now();
        let outcomes = store.save_plans(&batch, &[]).expect("save");
        spent += t.elapsed();
        own += pg::process_cpu("self") - own_before;
        if let (Some(after), Some(before)) = (server_cpu(), server_before) {
            server = Some(server.unwrap_or(0.0) + after - before);
        }
        assert_eq!(outcomes.len(), batch.len());
    }
    (spent, own, server)
}

/// The measured figures of one store.
struct Figures {
    fill: Duration,
    write_ms: f64,
    /// One schedule's history (`Store::history`): median milliseconds and routes.
    history: (f64, usize),
    /// Per case: median milliseconds and rows returned.
    queries: Vec<(f64, usize)>,
}

fn cases(plans: usize) -> Vec<(&'static str, RouteFilter)> {
    let last = chrono::DateTime::from_timestamp(1_780_000_000 + plans as i64 * 600, 0).unwrap();
    let day_before = (last - chrono::Duration::days(1)).timestamp_micros();
    vec![
        ("newest 100, no filter", RouteFilter::default()),
        ("owner (or escalation owner)", RouteFilter { owner: Some("owner-42".into()), ..Default::default() }),
        ("escalation owner", RouteFilter { owner: Some("lead-7".into()), ..Default::default() }),
        ("action + category", RouteFilter { action: Some("suppress".into()), category: Some("owner_calendar".into()), ..Default::default() }),
        ("provider", RouteFilter { provider: Some("teams".into()), ..Default::default() }),
        ("schedule", RouteFilter { schedule_id: Some("schedule-123".into()), ..Default::default() }),
        ("since the last day", RouteFilter { since: Some(day_before), ..Default::default() }),
        ("owner, page 50", RouteFilter { owner: Some("owner-42".into()), offset: 5_000, ..Default::default() }),
    ]
}

/// Fills the store, then times one more plan write and every query.
/// `server_cpu` is the CPU time of the database server's processes serving
/// this store so far, when there are such (PostgreSQL).
fn measure(name: &str, store: &dyn Store, plans: usize, server_cpu: impl Fn() -> Option<f64>, after_fill: impl FnOnce()) -> Figures {
    let (fill, own, server) = fill(store, plans, &server_cpu);
    let server = server.map_or_else(String::new, |server| format!(", the PostgreSQL backend {server:.1} s"));
    println!(
        "{name}: stored {} routes in {plans} plans ({} save_plans calls of up to {BATCH_PLANS} plans, one transaction each): {:.1} s \
         (CPU time: this process {own:.1} s{server})",
        plans * ROUTES_PER_PLAN,
        plans.div_ceil(BATCH_PLANS),
        fill.as_secs_f64()
    );
    after_fill();
    let (write_ms, _) = median_ms({
        let mut next = plans;
        move || {
            next += 1;
            store.save_plan(&typed_plan(next)).expect("save");
            ROUTES_PER_PLAN
        }
    });
    println!("{name}: one more plan of {ROUTES_PER_PLAN} routes (one transaction): {write_ms:.2} ms median");
    let queries = cases(plans)
        .iter()
        .map(|(case, filter)| {
            let (ms, rows) = median_ms(|| store.routes(filter).expect("query").len());
            println!("{name}: {case:32} {rows:4} rows  {ms:8.3} ms median");
            (ms, rows)
        })
        .collect();
    let history = median_ms(|| store.history(Some(HISTORY_SCHEDULE), i64::MAX).expect("history").routes.len());
    println!("{name}: {:32} {:4} rows  {:8.3} ms median", "history of one schedule", history.1, history.0);
    Figures { fill, write_ms, history, queries }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let explain = args.iter().any(|a| a == "--explain");
    let sqlite_only = args.iter().any(|a| a == "--sqlite-only");
    let plans = total / ROUTES_PER_PLAN;

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/store-queries");
    let _ = std::fs::remove_dir_all(&dir);
    let sqlite = {
        let store = SqliteStore::open(dir.join("cavra.db")).expect("store");
        measure("sqlite", &store, plans, || None, || {})
    };
    let sqlite_size = std::fs::read_dir(&dir).map(|files| files.flatten().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum::<u64>()).unwrap_or(0);
    println!("sqlite: {} ({:.0} MB with its WAL)", dir.join("cavra.db").display(), sqlite_size as f64 / 1e6);

    let server = if sqlite_only { None } else { pg::Server::start("postgres") };
    let postgres = server.as_ref().map(|server| {
        println!("postgres: {}", server.description);
        let url = server.database("cavra_store_queries");
        let store = PostgresStore::open(&PostgresUrl::new(&url), &PostgresOptions::default()).expect("store");
        let mut client = pg::connect(&url);
        let database = url.rsplit('/').next().unwrap_or_default().to_string();
        let figures = measure(
            "postgres",
            &store,
            plans,
            || Some(pg::backend_cpu(&database)),
            || {
                let t = Instant::now();
                client.batch_execute("VACUUM (ANALYZE) plans, route_decisions").expect("vacuum");
                println!("postgres: VACUUM (ANALYZE) after the fill: {:.1} s", t.elapsed().as_secs_f64());
            },
        );
        let size: i64 = client.query_one("SELECT pg_database_size(current_database())", &[]).expect("size").get(0);
        println!("postgres: database size {:.0} MB", size as f64 / 1e6);
        let plans_used: Vec<String> = cases(plans).iter().map(|(case, filter)| explain_query(&mut client, case, filter, explain)).collect();
        let (case, filter) = &cases(plans)[5];
        let breakdown = breakdown(&mut client, &store, filter);
        println!("postgres: where the time of `{case}` goes: {breakdown}");
        drop(store);
        drop(client);
        server.drop_database(&url);
        (figures, plans_used, format!("{case}: {breakdown}"))
    });

    println!();
    println!("{} routes; medians of {RUNS} runs, in ms", plans * ROUTES_PER_PLAN);
    println!("{:34} {:>5}  {:>9}  {:>10}", "query (newest first, page of 100)", "rows", "SQLite", "PostgreSQL");
    for (i, (case, _)) in cases(plans).iter().enumerate() {
        let (ms, rows) = sqlite.queries[i];
        let other = postgres.as_ref().map(|(p, ..)| p.queries[i]);
        let shown = other.map_or_else(|| "skipped".to_string(), |(ms, _)| format!("{ms:.3}"));
        let differs = other.filter(|(_, r)| *r != rows).map_or_else(String::new, |(_, r)| format!("  (PostgreSQL returned {r} rows!)"));
        println!("{case:34} {rows:>5}  {ms:>9.3}  {shown:>10}{differs}");
    }
    let shown = postgres.as_ref().map_or_else(|| "skipped".to_string(), |(p, ..)| format!("{:.3}", p.history.0));
    println!("{:34} {:>5}  {:>9.3}  {shown:>10}", "history of one schedule", sqlite.history.1, sqlite.history.0);
    let shown = postgres.as_ref().map_or_else(|| "skipped".to_string(), |(p, ..)| format!("{:.2}", p.write_ms));
    println!("{:34} {:>5}  {:>9.2}  {shown:>10}", "one more plan (100 routes, 1 tx)", "", sqlite.write_ms);
    let shown = postgres.as_ref().map_or_else(|| "skipped".to_string(), |(p, ..)| format!("{:.1} s", p.fill.as_secs_f64()));
    println!("{:34} {:>5}  {:>9}  {shown:>10}", "fill (save_plans, 1,000 plans/tx)", "", format!("{:.1} s", sqlite.fill.as_secs_f64()));
    if let Some((_, used, breakdown)) = &postgres {
        println!();
        println!("PostgreSQL plans (EXPLAIN ANALYZE of the same SQL):");
        for ((case, _), used) in cases(plans).iter().zip(used) {
            println!("  {case:32} {used}");
        }
        println!("Where a PostgreSQL query's time goes (medians of {RUNS}), {breakdown}");
        if let Some(server) = &server {
            println!();
            println!("PostgreSQL: {}.", server.description);
            println!(
                "With fsync off a commit never waits for the disk; SQLite (WAL, synchronous=NORMAL) does not wait on commit either, but syncs at checkpoints."
            );
        }
    }
}

/// EXPLAIN (ANALYZE, BUFFERS) of the query: the indexes it reads, whether it
/// scans the table or sorts, and its execution time (all of it with `full`).
fn explain_query(client: &mut postgres::Client, case: &str, filter: &RouteFilter, full: bool) -> String {
    let (sql, values) = cavra_app::store::postgres_routes_query(filter);
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
    let lines: Vec<String> =
        client.query(&format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"), &params).expect("EXPLAIN").iter().map(|row| row.get::<_, String>(0)).collect();
    if full {
        println!("\nEXPLAIN (ANALYZE, BUFFERS): {case}\n{sql}\n{}", lines.join("\n"));
    }
    let mut indexes: Vec<&str> = Vec::new();
    for line in &lines {
        // `Index Scan using X`, `Index Only Scan using X`, `Bitmap Index Scan on X`.
        let named =
            line.split_once("Index Scan using ").or_else(|| line.split_once("Index Only Scan using ")).or_else(|| line.split_once("Bitmap Index Scan on "));
        if let Some((_, rest)) = named {
            let index = rest.split_whitespace().next().unwrap_or_default();
            if !indexes.contains(&index) {
                indexes.push(index);
            }
        }
    }
    // Plan nodes: `Name  (cost=...`, after `->  ` below the top.
    let nodes: Vec<&str> = lines.iter().filter_map(|l| l.trim_start().trim_start_matches("->").trim_start().split_once("  (").map(|(node, _)| node)).collect();
    let seq_scan = nodes.iter().any(|n| n.starts_with("Seq Scan") || n.starts_with("Parallel Seq Scan"));
    let sort = nodes.iter().any(|n| *n == "Sort" || *n == "Incremental Sort");
    let time = lines.iter().find_map(|l| l.trim().strip_prefix("Execution Time: ")).unwrap_or("?");
    format!(
        "{}{}{}; execution {time}",
        if indexes.is_empty() { "no index".to_string() } else { indexes.join(" + ") },
        if seq_scan { "; SEQ SCAN" } else { "" },
        if sort { "; sorts" } else { "" }
    )
}

/// The store's query beside the same SQL on a plain connection: parsed by
/// the server each time (as the store sends it), prepared once, an empty
/// round trip (what the pool's check of a connection on checkout costs), and
/// the server's own execution time. The plain connection's rows are only
/// fetched; the store also builds each route from its row's columns.
fn breakdown(client: &mut postgres::Client, store: &PostgresStore, filter: &RouteFilter) -> String {
    let (sql, values) = cavra_app::store::postgres_routes_query(filter);
    let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref()).collect();
    let parse = |rows: Vec<postgres::Row>| rows.len();
    let (store_ms, _) = median_ms(|| store.routes(filter).expect("query").len());
    let (text_ms, _) = median_ms(|| parse(client.query(sql.as_str(), &params).expect("query")));
    let statement = client.prepare(&sql).expect("prepare");
    let (prepared_ms, _) = median_ms(|| parse(client.query(&statement, &params).expect("query")));
    let (empty_ms, _) = median_ms(|| client.simple_query("").map(|m| m.len()).expect("empty query"));
    let mut executions: Vec<f64> = (0..RUNS)
        .map(|_| {
            let lines = client.query(&format!("EXPLAIN (ANALYZE) {sql}"), &params).expect("EXPLAIN");
            lines
                .iter()
                .find_map(|row| row.get::<_, String>(0).trim().strip_prefix("Execution Time: ").and_then(|t| t.trim_end_matches(" ms").parse().ok()))
                .unwrap_or(0.0)
        })
        .collect();
    executions.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "Store::routes {store_ms:.3} ms; the same SQL on a plain connection, parsed each time {text_ms:.3} ms, prepared once {prepared_ms:.3} ms; \
         an empty round trip (the pool checks each connection it lends with one) {empty_ms:.3} ms; server execution {:.3} ms",
        executions[RUNS / 2]
    )
}
