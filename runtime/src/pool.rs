//! The worker threads: created once per executable, used for the parallel loop of large
//! kernels and for large matrix products. Small kernels run on the caller's thread, where a
//! hand-off would cost more than it saves.

/// Work (elements times expression nodes) below which a kernel runs on one thread.
const PARALLEL_WORK: usize = 1 << 16;

/// A fixed set of worker threads (rayon's pool: well kept, and the GEMM crate uses it too).
pub struct Pool {
    pool: Option<rayon::ThreadPool>,
    threads: usize,
}

impl Pool {
    /// A pool of `threads` workers; with 1 (or if threads cannot be started) everything runs
    /// on the caller's thread.
    pub fn new(threads: usize) -> Pool {
        let threads = threads.max(1);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .ok()
            })
            .flatten();
        let threads = if pool.is_some() { threads } else { 1 };
        Pool { pool, threads }
    }

    /// The number of threads work is split across.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` inside the pool (so rayon-based libraries use its threads). Only for work that
    /// is split across threads: the hand-off to a worker costs microseconds.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(p) => p.install(f),
            None => f(),
        }
    }

    /// Calls `f(lo, hi)` over `0..extent`, split into one contiguous range per thread when
    /// `extent * work_per_unit` is large enough to pay for the hand-off.
    pub fn run(&self, extent: usize, work_per_unit: usize, f: &(dyn Fn(usize, usize) + Sync)) {
        let total = extent.saturating_mul(work_per_unit);
        match &self.pool {
            Some(p) if total >= PARALLEL_WORK && extent >= 2 => {
                let chunks = self.threads.min(extent);
                // Boundaries on multiples of 16 keep vector loops aligned in each range.
                let step = extent.div_ceil(chunks).next_multiple_of(16).min(extent);
                // The caller takes the first range itself: one hand-off fewer, and no thread
                // beyond the pool's wants a core.
                p.in_place_scope(|s| {
                    let mut lo = step;
                    while lo < extent {
                        let hi = (lo + step).min(extent);
                        s.spawn(move |_| f(lo, hi));
                        lo = hi;
                    }
                    f(0, step);
                });
            }
            _ => f(0, extent),
        }
    }
}
