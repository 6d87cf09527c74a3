//! Plans the 10,000-schedule workload repeatedly on one thread, for profilers
//! (`perf record`, `valgrind --tool=callgrind`). Prints the median pass time.
//!
//! Run: `cargo run -j2 --release -p cavra-benches --example plan_loop [PASSES]`.

use cavra_benches::PlanWorkload;
use std::time::Instant;

fn main() {
    let passes: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let w = PlanWorkload::new();
    let router = cavra::routing::Router::new(&w.program).expect("the routing inputs");
    let mut times = Vec::with_capacity(passes);
    for _ in 0..passes {
        let start = Instant::now();
        let routes: usize = w.schedules.iter().map(|s| router.plan(w.now, s).map_or(0, |p| p.routes.len())).sum();
        times.push(start.elapsed());
        assert_eq!(routes, w.schedules.len() * 9);
    }
    times.sort();
    println!("median of {passes} passes: {:?} for {} schedules", times[passes / 2], w.schedules.len());
}
