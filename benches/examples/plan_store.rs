//! The plan-assembly batch (10,000 plans, 90,000 routes) through the plan
//! command's save path once per pass, each part timed on its own, for
//! profilers (`perf record`): the documents and ids, the lifecycle counts,
//! the plan rows with their routes (one transaction), closing the store,
//! dropping the plans (as the benchmark's iteration does).
//!
//! `cargo run -j2 --release -p cavra-benches --example plan_store [PASSES]`

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cavra_app::store::Store;
use cavra_benches::plan_store::{fresh_sqlite, PlanStore};
use cavra_benches::PlanWorkload;
use std::time::Instant;

fn main() {
    let passes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let w = PlanWorkload::new();
    let router = cavra_app::routing::Router::new(&w.program).expect("the routing inputs");
    let planned = router.plan_all(w.now, &w.schedules);
    let saving = PlanStore::new(&w);
    let dir = std::env::temp_dir().join(format!("cavra-plan-store-{}", std::process::id()));
    let mut run = 0;
    let ms = |since: Instant| since.elapsed().as_secs_f64() * 1000.0;
    for pass in 0..passes {
        let store = fresh_sqlite(&dir, &mut run);
        let start = Instant::now();
        let mut plans = w.documents(&planned);
        let documents = ms(start);
        let start = Instant::now();
        saving.lifecycle_counts(&store, &mut plans);
        let lifecycle = ms(start);
        for plan in &mut plans {
            plan.stored = Some(true);
        }
        let start = Instant::now();
        let outcomes = store.save_plans(&plans, std::slice::from_ref(&saving.policy)).expect("stored");
        let rows = ms(start);
        let start = Instant::now();
        drop(store);
        let close = ms(start);
        let count = outcomes.len();
        let start = Instant::now();
        drop(plans);
        let freed = ms(start);
        println!(
            "pass {pass}: documents and ids {documents:.0} ms, lifecycle counts {lifecycle:.0} ms, plan rows and routes {rows:.0} ms, close {close:.0} ms, plans dropped {freed:.0} ms ({count} plans)"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
