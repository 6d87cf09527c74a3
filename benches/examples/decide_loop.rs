//! Runs the 500-window decision loop repeatedly, for profiling (`perf record`).
fn main() {
    let windows = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500);
    let p = cavra_benches::Prepared::new(windows);
    let t = std::time::Instant::now();
    let mut suppressed = 0usize;
    for _ in 0..20 {
        for inputs in &p.inputs {
            suppressed += usize::from(cavra_benches::cavra_decide(&p.program, inputs).action == "suppress");
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (20.0 * p.inputs.len() as f64);
    let t = std::time::Instant::now();
    let mut plain = 0usize;
    for _ in 0..20 {
        for r in &p.workload.requests {
            plain += usize::from(cavra_benches::plain_decide(&p.plain, p.workload.owner(r), p.workload.provider(r), r.now).is_suppressed());
        }
    }
    let per_plain = t.elapsed().as_nanos() as f64 / (20.0 * p.inputs.len() as f64);
    println!("{windows} windows: cavra {per:.0} ns/decision, plain {per_plain:.0} ns ({suppressed} {plain})");
}
