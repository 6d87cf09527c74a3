//! Deciding does not allocate: after binding and one warm-up decision (which
//! sizes the engine's thread-local scratch buffer), 10,000 `decide` calls
//! perform zero heap allocations.
//!
//! A counting global allocator wraps the system allocator; it counts only
//! while the current thread has switched counting on, and each thread counts
//! its own allocations, so neither the test harness's threads nor the other
//! tests (one of which allocates on purpose) can disturb the count.

use cavra_benches::{build_inputs, cavra_program, generate, WorkloadConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// This thread's counted allocations (a counter shared by all threads
    /// would add another test's allocations made in the same window).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-locals may already be gone while a thread exits.
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// A global allocator can only be written with `unsafe` (the trait is
// unsafe to implement, its methods unsafe to call), hence the allow here and
// in the bind_memory example, nowhere else in the crate.
// SAFETY: every method forwards its arguments unchanged to `System`, which
// upholds `GlobalAlloc`'s contract, and returns `System`'s result unchanged;
// the callers' obligations (a non-zero layout, a pointer `System` gave out
// with that layout) are passed on as they are. `note` neither allocates nor
// unwinds (a counter in const-initialised thread-locals), so it
// cannot re-enter the allocator or panic inside it.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's guarantees for `layout` are `System.alloc`'s requirements.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made meanwhile.
fn count_allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn the_allocator_counts() {
    let n = count_allocations(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert!(n >= 1);
}

#[test]
fn ten_thousand_decisions_do_not_allocate() {
    let workload = generate(&WorkloadConfig { requests: 10_000, ..WorkloadConfig::for_windows(500) });
    let program = cavra_program(&workload.policy);
    let inputs = build_inputs(&program, &workload);
    // Warm-up: the first decision on this thread sizes the scratch buffer.
    let warm = program.decide("route", &inputs[0]).expect("decides");
    drop(std::hint::black_box(warm));

    // Per category: not_on_route, maintenance_window, owner_calendar, deliver.
    let mut arms = [0usize; 4];
    let allocations = count_allocations(|| {
        for i in &inputs {
            let outcome = program.decide("route", std::hint::black_box(i)).expect("decides");
            arms[match outcome.category {
                "not_on_route" => 0,
                "maintenance_window" => 1,
                "owner_calendar" => 2,
                _ => 3,
            }] += 1;
            std::hint::black_box(&outcome);
        }
    });
    // All four arms ran, so every path was measured.
    assert!(arms.iter().all(|&n| n > 0), "{arms:?}");
    assert_eq!(allocations, 0, "{allocations} allocations in 10,000 decisions");
    // ... and they came from the decision table (filled at bind), not the evaluator.
    let size = program.table_size("route").expect("the route decision has a table");
    assert_eq!((size.filled, size.evaluated), (size.cells, 0), "{size:?}");
}

/// The cheap calls: keys resolved once per (owner, provider), the time given
/// per decision, the outcome read in place.
#[test]
fn ten_thousand_decisions_with_resolved_keys_do_not_allocate() {
    let workload = generate(&WorkloadConfig { requests: 10_000, ..WorkloadConfig::for_windows(500) });
    let program = cavra_program(&workload.policy);
    let keys = cavra_benches::build_keys(&program, &workload);
    let decider = program.decider("route").expect("a route decision");
    let mut arms = [0usize; 4];
    let allocations = count_allocations(|| {
        for r in &workload.requests {
            let category = decider.decide_at_with(&keys[cavra_benches::pair(r)], r.now, |o| o.category()).expect("decides");
            arms[match category {
                "not_on_route" => 0,
                "maintenance_window" => 1,
                "owner_calendar" => 2,
                _ => 3,
            }] += 1;
        }
    });
    assert!(arms.iter().all(|&n| n > 0), "{arms:?}");
    assert_eq!(allocations, 0, "{allocations} allocations in 10,000 decisions");
}

/// The counterpart: an interpolated reason builds a new text on every
/// decision, so it allocates (by design; constants and field reads do not).
#[test]
fn an_interpolated_reason_allocates() {
    let pack = cavra_engine::compile(
        "interpolated.cavra",
        "pack interpolated\ninput owner: text\ndecision route {\n  otherwise => deliver reason \"notify {owner}\"\n}\n",
    )
    .unwrap_or_else(|d| panic!("{}", d.render(false)));
    // Without a decision table, which would build the text once.
    let program = pack.bind_with(&Default::default(), cavra_engine::BindOptions { decision_tables: false, ..Default::default() }).expect("binds");
    let mut inputs = program.inputs();
    inputs.set(program.input_slot("owner").expect("owner"), cavra_engine::Value::text("team-001"));
    drop(program.decide("route", &inputs).expect("decides"));
    let allocations = count_allocations(|| {
        for _ in 0..100 {
            let outcome = program.decide("route", &inputs).expect("decides");
            assert_eq!(cavra_benches::reason_text(&outcome), "notify team-001");
        }
    });
    assert!(allocations >= 100, "{allocations} allocations");
}
