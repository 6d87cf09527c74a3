//! Plan assembly: 10,000 schedules x 3 owners x 3 providers (90,000 route
//! decisions) against 500 maintenance windows, with the bundled routing pack;
//! then the plan documents (JSON, content-hash ids) and storing them all in
//! one transaction: in a fresh SQLite file (`store_10000_plans`) and in a
//! fresh PostgreSQL database (`store_10000_plans_postgres`; see
//! `support/postgres.rs` for the server: `CAVRA_BENCH_POSTGRES_URL`, else a
//! throwaway local cluster with fsync off; skipped without either).
//!
//! Run: `cargo bench -j2 -p cavra-benches --bench plan_assembly`
//! (`-- store_10000` for both store groups only).

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../support/postgres.rs"]
mod pg;

use cavra_app::store::{PostgresOptions, PostgresStore, PostgresUrl, SqliteStore, Store};
use cavra_benches::{PlanWorkload, PLAN_SCHEDULES};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::cell::OnceCell;
use std::hint::black_box;
use std::time::Duration;

fn plan_assembly(c: &mut Criterion) {
    let w = PlanWorkload::new();
    let router = cavra_app::routing::Router::new(&w.program).expect("the routing inputs");
    let planned = router.plan_all(w.now, &w.schedules);
    assert!(planned.iter().all(|p| p.is_ok()), "every schedule decides");
    let routes = planned.route_count();
    assert_eq!(routes, PLAN_SCHEDULES * 9);

    let mut group = c.benchmark_group("plan_10000_schedules");
    group.throughput(Throughput::Elements(routes as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(6));
    group.bench_function("routes_all_cores", |b| b.iter(|| black_box(router.plan_all(black_box(w.now), &w.schedules))));
    // The clock is pinned at bind time, so a plan at a new instant binds again: measured together.
    group.bench_function("bind_and_routes_all_cores", |b| {
        b.iter(|| {
            let program = w.pack.bind_with(&w.documents, cavra_engine::BindOptions::at(black_box(w.now))).expect("binds");
            let router = cavra_app::routing::Router::new(&program).expect("the routing inputs");
            black_box(router.plan_all(w.now, &w.schedules).route_count())
        })
    });
    group.bench_function("routes_one_thread", |b| b.iter(|| w.schedules.iter().map(|s| router.plan(black_box(w.now), s).is_ok() as usize).sum::<usize>()));
    group.bench_function("routes_and_documents", |b| {
        b.iter(|| {
            let planned = router.plan_all(w.now, &w.schedules);
            black_box(w.documents(&planned))
        })
    });
    group.finish();

    let documents = w.documents(&planned);
    let dir = std::env::temp_dir().join(format!("cavra-plan-bench-{}", std::process::id()));
    let mut group = c.benchmark_group("store_10000_plans");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut run = 0;
    group.bench_function("one_transaction", |b| {
        b.iter_batched(
            || {
                run += 1;
                SqliteStore::open(dir.join(format!("store-{run}.db"))).expect("a fresh store")
            },
            |store| black_box(store.save_plans(&documents, &[]).expect("stored")),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);

    // The same batch through the same `Store::save_plans`, into a fresh
    // PostgreSQL database per iteration (created, migrated and, afterwards,
    // dropped outside the timing, as the SQLite file is created outside it).
    if !pg::Server::available() {
        pg::Server::start("store_10000_plans_postgres");
        return;
    }
    // Started on first use, so that a filter that leaves this group out starts no cluster.
    let server: OnceCell<pg::Server> = OnceCell::new();
    let mut previous: Option<String> = None;
    let mut group = c.benchmark_group("store_10000_plans_postgres");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("one_transaction", |b| {
        let server = server.get_or_init(|| {
            let server = pg::Server::start("store_10000_plans_postgres").expect("PostgreSQL was found");
            println!("store_10000_plans_postgres: {}", server.description);
            server
        });
        b.iter_batched(
            || {
                if let Some(url) = previous.take() {
                    server.drop_database(&url);
                }
                let url = server.database("cavra_bench_store");
                previous = Some(url.clone());
                PostgresStore::open(&PostgresUrl::new(&url), &PostgresOptions::default()).expect("a fresh store")
            },
            |store| black_box(store.save_plans(&documents, &[]).expect("stored")),
            BatchSize::PerIteration,
        )
    });
    group.finish();
    if let (Some(server), Some(url)) = (server.get(), previous) {
        server.drop_database(&url);
    }
}

criterion_group!(benches, plan_assembly);
criterion_main!(benches);
