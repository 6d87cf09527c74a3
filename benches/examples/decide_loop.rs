//! Runs the decision loop repeatedly with cavra, the plain loops and the
//! segment tables (500 windows unless given another count), for profiling
//! (`perf record`) and quick timings outside criterion. A second argument
//! (`cavra`, `decider`, `keys`, `plain` or `segments`) runs only that implementation,
//! so that `perf stat` counts one of them.
fn main() {
    let mut args = std::env::args().skip(1);
    let windows = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let only = args.next();
    let p = cavra_benches::Prepared::new(windows);
    let table = p.segment_table();
    let passes = 20;
    // Nanoseconds per decision over `passes` passes of `pass`, and what the last pass counted.
    let time = |name: &str, pass: &dyn Fn() -> cavra_benches::Tally| {
        if only.as_deref().is_some_and(|o| o != name) {
            return None;
        }
        let t = std::time::Instant::now();
        let mut tally = cavra_benches::Tally::default();
        for _ in 0..passes {
            tally = std::hint::black_box(pass());
        }
        Some((t.elapsed().as_nanos() as f64 / (passes as f64 * p.inputs.len() as f64), tally))
    };
    let results = [
        ("cavra", time("cavra", &|| p.run_cavra())),
        ("cavra decider", time("decider", &|| p.run_cavra_decider())),
        ("cavra with keys", time("keys", &|| p.run_cavra_keys())),
        ("plain", time("plain", &|| p.run_plain())),
        ("segments", time("segments", &|| p.run_segments(&table))),
    ];
    let tallies: Vec<_> = results.iter().filter_map(|(_, r)| r.map(|(_, tally)| tally)).collect();
    assert!(tallies.windows(2).all(|w| w[0] == w[1]), "the implementations disagree: {results:?}");
    let times: Vec<String> = results.iter().filter_map(|(name, r)| r.map(|(ns, _)| format!("{name} {ns:.0} ns"))).collect();
    println!("{windows} windows, per decision: {} ({:?})", times.join(", "), tallies.first());
}
