//! Plans the 10,000-schedule workload repeatedly with `Router::plan_all`
//! (all cores; run it under `taskset -c 0` for one), for profilers (`perf
//! record`, `valgrind --tool=callgrind`). Prints the median time of a pass and
//! of dropping its result, which the criterion benchmark counts in the pass.
//!
//! Run: `cargo run -j2 --release -p cavra-benches --example plan_loop [PASSES]`.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cavra_benches::{PlanWorkload, PLAN_SCHEDULES};
use std::time::{Duration, Instant};

fn main() {
    let passes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(15).max(1);
    let w = PlanWorkload::new();
    let router = cavra_app::routing::Router::new(&w.program).expect("the routing inputs");
    let (mut plan, mut drop) = (Vec::with_capacity(passes), Vec::with_capacity(passes));
    for _ in 0..passes {
        let start = Instant::now();
        let planned = router.plan_all(w.now, &w.schedules);
        plan.push(start.elapsed());
        assert_eq!(planned.route_count(), PLAN_SCHEDULES * 9);
        let start = Instant::now();
        std::mem::drop(planned);
        drop.push(start.elapsed());
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    println!("decision table of `route`: {:?}", w.program.table_size("route"));
    println!("median of {passes} passes: plan_all {:?}, dropping the plans {:?} ({} schedules)", median(plan), median(drop), w.schedules.len());
}
