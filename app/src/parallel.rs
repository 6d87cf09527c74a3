//! Work spread over every core: the plan's schedules, plan documents,
//! lifecycle counts and the store's encoding of a batch. Scoped threads, the
//! calling thread one of them; results in the order of the input.

/// `items.iter().map(f)` on all cores; results keep the order of `items`.
pub fn parallel_map<'a, T: Sync, R: Send>(items: &'a [T], f: impl Fn(&'a T) -> R + Sync) -> Vec<R> {
    let blocks = parallel_blocks(items, || (), |_, block| block.iter().map(&f).collect::<Vec<_>>());
    // Sized once: grown by doubling, 10,000 plan records were copied twice over.
    let mut all = Vec::with_capacity(items.len());
    blocks.into_iter().for_each(|block| all.extend(block));
    all
}

/// `f` on consecutive blocks of `items`, on one thread per core, each with
/// its own state made by `init`; results in the order of the blocks. The
/// threads take the next block as they finish one, so a core that runs
/// slower (a busy neighbour on a shared machine) does less of the work
/// instead of holding up the end.
pub(crate) fn parallel_blocks<'a, T: Sync, S, R: Send>(items: &'a [T], init: impl Fn() -> S + Sync, f: impl Fn(&mut S, &'a [T]) -> R + Sync) -> Vec<R> {
    const BLOCKS_PER_THREAD: usize = 16;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(items.len().max(1));
    if threads <= 1 {
        return vec![f(&mut init(), items)];
    }
    let size = items.len().div_ceil(threads * BLOCKS_PER_THREAD).max(1);
    let blocks: Vec<&'a [T]> = items.chunks(size).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (init, f, blocks, next) = (&init, &f, &blocks, &next);
    let run = move || {
        let mut state = init();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(block) = blocks.get(i) else { return done };
            done.push((i, f(&mut state, block)));
        }
    };
    // The calling thread is one of the workers: one thread fewer to start,
    // and its allocator keeps the memory it freed in the call before.
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(run)).collect();
        let mut done = run();
        for worker in workers {
            done.extend(worker.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        done
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}
