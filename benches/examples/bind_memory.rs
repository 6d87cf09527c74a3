//! The memory a bound decision-loop program holds (the converted policy, its
//! indexes and, unless disabled, its decision table), at 500 and 5,000
//! windows: bytes allocated and not freed while binding, counted by a
//! wrapping allocator.
//!
//! Run: `cargo run -j2 --release -p cavra-benches --example bind_memory`.

use cavra_benches::{decision_loop_pack, generate, WorkloadConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live heap bytes.
struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is kept.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Live = Live;

fn main() {
    let pack = decision_loop_pack();
    for windows in [500, 5_000] {
        let policy = generate(&WorkloadConfig { requests: 0, ..WorkloadConfig::for_windows(windows) }).policy;
        let documents = HashMap::from([("policy".to_string(), policy)]);
        for tables in [false, true] {
            let options = cavra_engine::BindOptions { decision_tables: tables, ..Default::default() };
            let before = LIVE.load(Ordering::Relaxed);
            let started = std::time::Instant::now();
            let program = pack.bind_with(&documents, options).expect("the policy binds");
            let took = started.elapsed();
            let bytes = LIVE.load(Ordering::Relaxed) - before;
            let size = program.table_size("route");
            println!(
                "{windows} windows, decision table {}: {:.1} MiB held, bound in {took:.1?}{}",
                if tables { "on " } else { "off" },
                bytes as f64 / (1024.0 * 1024.0),
                size.map(|s| format!(" ({} cells, {} segments, {} distinct outcomes)", s.cells, s.segments, s.labels)).unwrap_or_default()
            );
            drop(program);
        }
    }
}
