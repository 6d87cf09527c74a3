//! Plan assembly: 10,000 schedules x 3 owners x 3 providers (90,000 route
//! decisions) against 500 maintenance windows, with the bundled routing pack;
//! then the plan documents (typed records, content-hash ids) and storing the
//! batch as the plan command stores a plan (`cavra_app::plan::store_plans`:
//! the lifecycle's pending and failed counts, then the plans, their routes
//! and the policy in one transaction), each part on its own and all
//! together: in a fresh SQLite file (`store_10000_plans`) and in a fresh
//! PostgreSQL database (`store_10000_plans_postgres`; see
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

use cavra_app::store::{PostgresOptions, PostgresStore, PostgresUrl, Store};
use cavra_benches::plan_store::{fresh_sqlite, PlanStore};
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
    let saving = PlanStore::new(&w);
    // The plans as the save path writes them (counts and `stored` set), for the rows alone.
    let written = saving.as_written(&documents, &dir.join("scratch.db"));
    let mut group = c.benchmark_group("store_10000_plans");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // The plan records with their content-hash ids, from the decided routes (all cores).
    group.bench_function("documents_and_ids", |b| b.iter(|| black_box(w.documents(&planned))));
    // Each store is made outside the timing, and closed (a WAL checkpoint) inside it.
    let mut run = 0;
    group.bench_function("plan_rows_and_routes", |b| {
        b.iter_batched(
            || fresh_sqlite(&dir, &mut run),
            |store| black_box(store.save_plans(&written, std::slice::from_ref(&saving.policy)).expect("stored")),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("lifecycle_counts", |b| {
        b.iter_batched(
            || (fresh_sqlite(&dir, &mut run), documents.clone()),
            |(store, mut plans)| {
                saving.lifecycle_counts(&store, &mut plans);
                black_box(plans)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("save_path", |b| {
        b.iter_batched(
            || (fresh_sqlite(&dir, &mut run), documents.clone()),
            |(store, mut plans)| black_box(saving.save_path(&store, &mut plans)),
            BatchSize::PerIteration,
        )
    });
    // The figure: documents, ids and the save path together.
    group.bench_function("documents_ids_and_save_path", |b| {
        b.iter_batched(
            || fresh_sqlite(&dir, &mut run),
            |store| {
                let mut plans = w.documents(&planned);
                black_box(saving.save_path(&store, &mut plans))
            },
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
    let mut fresh = || {
        let server = server.get_or_init(|| {
            let server = pg::Server::start("store_10000_plans_postgres").expect("PostgreSQL was found");
            println!("store_10000_plans_postgres: {}", server.description);
            server
        });
        if let Some(url) = previous.take() {
            server.drop_database(&url);
        }
        let url = server.database("cavra_bench_store");
        previous = Some(url.clone());
        PostgresStore::open(&PostgresUrl::new(&url), &PostgresOptions::default()).expect("a fresh store")
    };
    group.bench_function("plan_rows_and_routes", |b| {
        b.iter_batched(
            &mut fresh,
            |store| black_box(store.save_plans(&written, std::slice::from_ref(&saving.policy)).expect("stored")),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("save_path", |b| {
        b.iter_batched(|| (fresh(), documents.clone()), |(store, mut plans)| black_box(saving.save_path(&store, &mut plans)), BatchSize::PerIteration)
    });
    group.finish();
    if let (Some(server), Some(url)) = (server.get(), previous) {
        server.drop_database(&url);
    }
}

criterion_group!(benches, plan_assembly);
criterion_main!(benches);
