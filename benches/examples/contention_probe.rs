//! Why route decisions scale poorly across cores: plans the 10,000-schedule
//! workload on one thread, with `Router::plan_all` (both cores, one shared
//! program), and on two threads that each have their own bound program and
//! their own copies of the schedules' texts. When the last is much faster
//! than the second, the threads are contending on shared reference counts
//! (the `Arc`s of policy texts and values cloned per route), not on work.
//!
//! Run: `cargo run -j2 --release -p cavra-benches --example contention_probe`.

/// The allocator the `cavra` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use cavra_benches::PlanWorkload;
use std::sync::Arc;
use std::time::Instant;

fn deep(s: &cavra::routing::ScheduleRoutes) -> cavra::routing::ScheduleRoutes {
    let a = |x: &Arc<str>| Arc::<str>::from(x.as_ref());
    cavra::routing::ScheduleRoutes {
        schedule_id: a(&s.schedule_id),
        status: a(&s.status),
        owners: s
            .owners
            .iter()
            .map(|o| cavra::routing::OwnerProviders {
                owner: a(&o.owner),
                configured: o.configured.iter().map(a).collect(),
                providers: o.providers.iter().map(a).collect(),
            })
            .collect(),
    }
}

fn median(mut v: Vec<std::time::Duration>) -> std::time::Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let w = PlanWorkload::new();
    let router = cavra::routing::Router::new(&w.program).expect("router");
    let mut one = Vec::new();
    let mut shared = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let _: Vec<_> = w.schedules.iter().map(|s| router.plan(w.now, s)).collect();
        one.push(t.elapsed());
        let t = Instant::now();
        let _ = router.plan_all(w.now, &w.schedules);
        shared.push(t.elapsed());
    }
    // Separate programs and separate Arcs per thread.
    let half = w.schedules.len() / 2;
    let second_program = w
        .pack
        .bind_with(&w.documents, cavra_engine::BindOptions::at(w.now))
        .expect("bind");
    let second: Vec<_> = w.schedules[half..].iter().map(deep).collect();
    let router2 = cavra::routing::Router::new(&second_program).expect("router");
    let first: Vec<_> = w.schedules[..half].iter().map(deep).collect();
    let mut separate = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        std::thread::scope(|scope| {
            let a = scope.spawn(|| {
                first
                    .iter()
                    .map(|s| router.plan(w.now, s).map(|p| p.routes.len()).unwrap_or(0))
                    .sum::<usize>()
            });
            let b = scope.spawn(|| {
                second
                    .iter()
                    .map(|s| router2.plan(w.now, s).map(|p| p.routes.len()).unwrap_or(0))
                    .sum::<usize>()
            });
            let _ = (a.join(), b.join());
        });
        separate.push(t.elapsed());
    }
    println!(
        "one thread {:?}; plan_all shared {:?}; two threads, separate programs+arcs {:?}",
        median(one),
        median(shared),
        median(separate)
    );
}
