//! The decision-loop benchmark: one pass over 100,000 routing requests, cavra
//! (compiled, indexed pack) against two hand-written baselines, plain loops
//! and per-(owner, provider) segment tables (the practical limit), with 500
//! and 5,000 maintenance windows; and the cost of compiling a large pack and
//! of binding a policy (building the indexes).
//!
//! Run: `cargo bench -j2 -p cavra-benches --bench decision_loop`, then
//! `cargo run -j2 --release -p cavra-benches --bin bench-report`.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cavra_benches::{cavra_decide, decision_loop_pack, generate, pair, plain_decide, Prepared, WorkloadConfig, LARGE_PACK, REQUESTS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

fn decision_loop(c: &mut Criterion, windows: usize) {
    let p = Prepared::new(windows);
    let table = p.segment_table();
    // All three agree before anything is timed (the full check, decision by
    // decision, is tests/equivalence.rs).
    let plain = p.run_plain();
    assert_eq!(p.run_cavra(), plain);
    assert_eq!(p.run_cavra_decider(), plain);
    assert_eq!(p.run_cavra_keys(), plain);
    assert_eq!(p.run_segments(&table), plain);

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
    let decider = p.program.decider("route").expect("a route decision");
    // Like the segment tables: the owner and provider texts hashed per
    // request, the outcome read where it lies.
    group.bench_function("cavra_decider", |b| {
        b.iter(|| {
            for inputs in &p.inputs {
                black_box(decider.decide_with(black_box(inputs), |o| o.arm_index()).expect("decides"));
            }
        })
    });
    group.bench_function("cavra_keys", |b| {
        b.iter(|| {
            for r in &p.workload.requests {
                let keys = &p.keys[pair(black_box(r))];
                black_box(decider.decide_at_with(keys, r.now, |o| o.arm_index()).expect("decides"));
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
    group.bench_function("segments", |b| {
        b.iter(|| {
            for r in &p.workload.requests {
                let (owner, provider, now) = black_box((p.workload.owner(r), p.workload.provider(r), r.now));
                black_box(table.decide(owner, provider, now));
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
    // The bundled routing pack imports its document types from a module
    // (rules/common/routing_policy.cavra); the baseline is the same text with
    // the module's types written into the pack, as packs were before modules.
    let modules = cavra_app::modules::RuleFiles::bundled();
    group.bench_function("routing_with_module", |b| {
        b.iter(|| black_box(cavra_engine::compile_with("rules/routing.cavra", black_box(cavra_benches::ROUTING_PACK), &modules).expect("routing checks")))
    });
    let inlined = inline_routing_module();
    group
        .bench_function("routing_types_inline", |b| b.iter(|| black_box(cavra_engine::compile("routing.cavra", black_box(&inlined)).expect("routing checks"))));
    // Binding converts the policy document to typed values, builds both
    // indexes and fills the decision table.
    let pack = decision_loop_pack();
    for windows in [500, 5_000] {
        let policy = generate(&WorkloadConfig { requests: 0, ..WorkloadConfig::for_windows(windows) }).policy;
        let documents = HashMap::from([("policy".to_string(), policy)]);
        group.bench_function(format!("bind_{windows}"), |b| b.iter(|| black_box(pack.bind(black_box(&documents)).expect("the policy binds"))));
    }
    group.finish();
}

/// The routing pack with its `use` line replaced by the module's types.
fn inline_routing_module() -> String {
    let module = cavra_app::bundled::get("rules/common/routing_policy.cavra").expect("the module is bundled");
    let types = module.split_once("module routing_policy\n").map_or(module, |(_, rest)| rest);
    cavra_benches::ROUTING_PACK.replacen("use \"common/routing_policy.cavra\"\n", types, 1)
}

criterion_group!(benches, decision_loop_500, decision_loop_5000, compile);
criterion_main!(benches);
