//! Runs the decision loop repeatedly with cavra, the plain loops and the
//! segment tables (500 windows unless given another count), for profiling
//! (`perf record`) and quick timings outside criterion.
fn main() {
    let windows = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let p = cavra_benches::Prepared::new(windows);
    let table = p.segment_table();
    let passes = 20;
    // Nanoseconds per decision over `passes` passes of `pass`, and what the last pass counted.
    let time = |pass: &dyn Fn() -> cavra_benches::Tally| {
        let t = std::time::Instant::now();
        let mut tally = cavra_benches::Tally::default();
        for _ in 0..passes {
            tally = std::hint::black_box(pass());
        }
        (t.elapsed().as_nanos() as f64 / (passes as f64 * p.inputs.len() as f64), tally)
    };
    let (cavra, tally) = time(&|| p.run_cavra());
    let (keys, keys_tally) = time(&|| p.run_cavra_keys());
    assert_eq!(keys_tally, tally, "cavra with keys resolved ahead disagrees");
    let (plain, plain_tally) = time(&|| p.run_plain());
    let (segments, segments_tally) = time(&|| p.run_segments(&table));
    assert_eq!((plain_tally, segments_tally), (tally, tally), "the three implementations disagree");
    println!("{windows} windows: cavra {cavra:.0} ns/decision, cavra with keys {keys:.0} ns, plain {plain:.0} ns, segments {segments:.0} ns ({tally:?})");
}
