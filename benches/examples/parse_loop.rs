//! Compiles packs/large.cavra repeatedly, for profiling (`perf record`).
fn main() {
    let s = include_str!("../packs/large.cavra");
    for _ in 0..400 {
        std::hint::black_box(cavra_engine::compile("large.cavra", s).unwrap());
    }
}
