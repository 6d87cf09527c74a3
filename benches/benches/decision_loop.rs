//! The decision-loop benchmark: one pass over 100,000 routing requests, cavra
//! (compiled, indexed pack) against hand-written plain loops, with 500 and
//! 5,000 maintenance windows; and the cost of compiling a large pack and of
//! binding a policy (building the indexes).
//!
//! Run: `cargo bench -j2 -p cavra-benches --bench decision_loop`, then
//! `cargo run -j2 --release -p cavra-benches --bin bench-report`.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cavra_benches::{cavra_decide, decision_loop_pack, generate, plain_decide, Prepared, WorkloadConfig, LARGE_PACK, REQUESTS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

fn decision_loop(c: &mut Criterion, windows: usize) {
    let p = Prepared::new(windows);
    // Both sides agree before anything is timed (the full check is tests/equivalence.rs).
    assert_eq!(p.run_cavra(), p.run_plain());

    let mut group = c.benchmark_group(format!("decision_loop_{windows}"));
    group.throughput(Throughput::Elements(REQUESTS as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(2));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("cavra", |b| {
        b.iter(|| {
            for inputs in &p.inputs {
                black_box(cavra_decide(&p.program, black_box(inputs)));
            }
        })
    });
    group.bench_function("plain_loops", |b| {
        b.iter(|| {
            for r in &p.workload.requests {
                let (owner, provider, now) = black_box((p.workload.owner(r), p.workload.provider(r), r.now));
                black_box(plain_decide(&p.plain, owner, provider, now));
            }
        })
    });
    group.finish();
}

fn decision_loop_500(c: &mut Criterion) {
    decision_loop(c, 500);
}

fn decision_loop_5000(c: &mut Criterion) {
    decision_loop(c, 5_000);
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("parse_check_compile_large", |b| {
        b.iter(|| black_box(cavra_engine::compile("large.cavra", black_box(LARGE_PACK)).expect("large.cavra checks")))
    });
    // Binding converts the policy document to typed values and builds both indexes.
    let policy = generate(&WorkloadConfig { requests: 0, ..WorkloadConfig::for_windows(500) }).policy;
    let documents = HashMap::from([("policy".to_string(), policy)]);
    let pack = decision_loop_pack();
    group.bench_function("bind_500", |b| b.iter(|| black_box(pack.bind(black_box(&documents)).expect("the policy binds"))));
    group.finish();
}

criterion_group!(benches, decision_loop_500, decision_loop_5000, compile);
criterion_main!(benches);
