//! The worker threads: created once per executable, used for the parallel loop of large
//! kernels and for large matrix products. Small kernels run on the caller's thread.
//!
//! A training step is hundreds of kernels of a few microseconds each, so what matters is the
//! cost of one hand-off. A general-purpose pool (rayon's) parks idle workers at once and wakes
//! them through the kernel, which costs about as much as a small kernel takes. Here a job is
//! split into chunks that any thread may claim, the caller included: a worker that has just
//! run a job spins on the pool's state for a while ([`SPIN`]) before it sleeps, so the next
//! kernel reaches it in well under a microsecond; and when it is asleep or has lost its core
//! to another process, the caller claims the chunks itself instead of waiting for it. The
//! caller only ever waits for chunks a running thread has claimed.
//!
//! Protocol: `state` packs the job's epoch, its chunk count and the next unclaimed chunk. The
//! caller publishes the job (a pointer to a closure on its stack), then a new state with a new
//! epoch. A thread claims a chunk by a compare-and-swap on `state` that keeps the epoch, so a
//! claim succeeds only while the job is current; only a successful claim reads the job
//! pointer, and the caller returns only after `done` counts every chunk, so the closure
//! outlives every use of the pointer. Sleeping uses a mutex and a condition variable;
//! `sleepers` and `state` are written and read sequentially consistently on both sides, so a
//! worker going to sleep either sees the new job or is seen and woken.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work (elements times expression nodes) below which a kernel runs on one thread.
const PARALLEL_WORK: usize = 1 << 14;

/// How long an idle worker spins, waiting for the next job, before it sleeps.
const SPIN: Duration = Duration::from_micros(100);

/// Chunks a loop kernel's parallel loop is split into, per thread (more than one balances the
/// load when a thread starts late).
const CHUNKS_PER_THREAD: usize = 2;

/// The most chunks one job may have (the width of a chunk counter in `state`).
const MAX_CHUNKS: usize = 1 << 16;

/// A job: what a thread calls with each chunk it claims.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

/// A fixed set of threads: the caller and `threads - 1` workers.
pub struct Pool {
    shared: Arc<PoolState>,
    workers: Vec<JoinHandle<()>>,
}

/// What the caller and the workers share.
struct PoolState {
    /// `epoch << 32 | chunks << 16 | next`: the current job's number, its chunk count, and
    /// the next chunk to claim.
    state: AtomicU64,
    /// The current job: a `*const Job` pointing at the caller's stack, valid while a chunk of
    /// it is claimed and not done.
    job: AtomicPtr<()>,
    /// Chunks of the current job that have returned.
    done: AtomicUsize,
    /// Whether a worker's call of the current job panicked.
    panicked: AtomicBool,
    /// Workers asleep or about to sleep on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    shutdown: AtomicBool,
}

impl Pool {
    /// A pool of `threads` threads (the caller's included); with 1, or if no worker thread can
    /// be started, everything runs on the caller's thread.
    pub fn new(threads: usize) -> Pool {
        let shared = Arc::new(PoolState {
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let mut workers = Vec::new();
        for index in 1..threads.max(1) {
            let s = Arc::clone(&shared);
            match std::thread::Builder::new()
                .name(format!("kiln-worker-{index}"))
                .spawn(move || s.work())
            {
                Ok(h) => workers.push(h),
                Err(_) => break,
            }
        }
        Pool { shared, workers }
    }

    /// The number of threads work is split across.
    pub fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Calls `f(i)` once for every chunk `i` in `0..chunks`, each on whichever thread claims
    /// it first (the caller claims too), and returns when every call has returned. Re-raises
    /// a panic of any call.
    pub fn split(&self, chunks: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(chunks < MAX_CHUNKS, "at most {MAX_CHUNKS} chunks");
        if self.workers.is_empty() || chunks <= 1 {
            return (0..chunks).for_each(f);
        }
        let s = &*self.shared;
        let job: Job = f;
        s.job
            .store(&job as *const Job as *mut (), Ordering::Relaxed);
        s.done.store(0, Ordering::Relaxed);
        let epoch = (s.state.load(Ordering::Relaxed) >> 32).wrapping_add(1) & 0xffff_ffff;
        // SeqCst: a claim that sees this state sees the job and `done`; see the module doc
        // for `sleepers`.
        s.state
            .store(epoch << 32 | (chunks as u64) << 16, Ordering::SeqCst);
        if s.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        // A panic here must still wait for claimed chunks (they read `job` from this frame)
        // and give up the unclaimed ones.
        let mine = s.run_chunks(epoch);
        if mine.is_err() {
            while s.claim(epoch).is_some() {
                s.done.fetch_add(1, Ordering::Release);
            }
        }
        let mut spins = 0u32;
        while s.done.load(Ordering::Acquire) != chunks {
            spins = spins.saturating_add(1);
            if spins < 1 << 10 {
                std::hint::spin_loop();
            } else {
                // The thread running a chunk may have lost its core to another process.
                std::thread::yield_now();
            }
        }
        // Every chunk counted as done, so a worker's panic is recorded (see `run_chunks`).
        let panicked = s.panicked.swap(false, Ordering::Relaxed);
        if let Err(p) = mine {
            std::panic::resume_unwind(p);
        }
        if panicked {
            panic!("a kiln worker thread panicked");
        }
    }

    /// Calls `f(lo, hi)` over `0..extent`, split into contiguous ranges (multiples of
    /// `align` long unless one range covers everything) when `extent * work_per_unit` is large
    /// enough to pay for the hand-off.
    pub fn run(
        &self,
        extent: usize,
        work_per_unit: usize,
        align: usize,
        f: &(dyn Fn(usize, usize) + Sync),
    ) {
        let total = extent.saturating_mul(work_per_unit);
        if self.workers.is_empty() || total < PARALLEL_WORK || extent < 2 {
            return f(0, extent);
        }
        let step = split_step(extent, self.threads() * CHUNKS_PER_THREAD, align);
        self.split(extent.div_ceil(step), &|i| {
            f(i * step, ((i + 1) * step).min(extent));
        });
    }
}

/// The length of each range when `extent` is split into at most `parts` ranges: a multiple of
/// `align` unless one range covers everything.
pub(crate) fn split_step(extent: usize, parts: usize, align: usize) -> usize {
    extent
        .div_ceil(parts.max(1))
        .next_multiple_of(align.max(1))
        .min(extent)
        .max(1)
}

/// A pointer (or value holding pointers) handed to the pool's threads for one call; each use
/// says why that is sound.
#[derive(Clone, Copy)]
pub(crate) struct Shared<T>(pub(crate) T);
// SAFETY: see each use: the pointees outlive the call and threads touch disjoint elements.
unsafe impl<T> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T> Sync for Shared<T> {}

impl<T: Copy> Shared<T> {
    /// The value (a method, so closures capture the whole wrapper).
    pub(crate) fn get(&self) -> T {
        self.0
    }
}

impl PoolState {
    /// A worker's life: wait for each new job, claim its chunks, until shutdown.
    fn work(&self) {
        let mut seen = 0u64;
        while let Some(epoch) = self.next_epoch(seen) {
            seen = epoch;
            // A panic is recorded in `panicked` for the caller to raise.
            let _ = self.run_chunks(epoch);
        }
    }

    /// Claims and runs chunks of job `epoch` until none is left or one panics (its payload is
    /// returned). A panicking chunk sets `panicked`, then counts as done like any other: the
    /// caller stops waiting for it, and its acquiring load of the last count sees the flag.
    fn run_chunks(&self, epoch: u64) -> std::thread::Result<()> {
        while let Some(chunk) = self.claim(epoch) {
            let job = self.job.load(Ordering::Relaxed) as *const Job;
            // SAFETY: the claim succeeded, so job `epoch` is current and its caller waits for
            // this chunk before the closure behind `job` goes away.
            let f = unsafe { *job };
            let ran = catch_unwind(AssertUnwindSafe(|| f(chunk)));
            if ran.is_err() {
                self.panicked.store(true, Ordering::Relaxed);
            }
            self.done.fetch_add(1, Ordering::Release);
            ran?;
        }
        Ok(())
    }

    /// The next chunk of job `epoch`, if that job is current and has one left.
    fn claim(&self, epoch: u64) -> Option<usize> {
        let mut s = self.state.load(Ordering::Acquire);
        loop {
            let chunks = (s >> 16) & 0xffff;
            let next = s & 0xffff;
            if s >> 32 != epoch || next >= chunks {
                return None;
            }
            match self
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => return Some(next as usize),
                Err(now) => s = now,
            }
        }
    }

    /// Waits for a job after `seen`: spins for [`SPIN`], then sleeps. `None` on shutdown.
    fn next_epoch(&self, seen: u64) -> Option<u64> {
        let started = Instant::now();
        let mut spins = 0u32;
        let current = || self.state.load(Ordering::SeqCst) >> 32;
        loop {
            if self.shutdown.load(Ordering::Acquire) {
                return None;
            }
            let e = current();
            if e != seen {
                return Some(e);
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || started.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            let mut guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            while current() == seen && !self.shutdown.load(Ordering::SeqCst) {
                guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let s = &*self.shared;
        s.shutdown.store(true, Ordering::SeqCst);
        {
            let _guard = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(n: usize) -> Vec<AtomicUsize> {
        (0..n).map(|_| AtomicUsize::new(0)).collect()
    }

    #[test]
    fn every_chunk_runs_once() {
        let pool = Pool::new(3);
        assert_eq!(pool.threads(), 3);
        for chunks in (0..1000).map(|i| i % 9) {
            let hits = counters(chunks);
            pool.split(chunks, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn sleeping_workers_wake_for_the_next_job() {
        let pool = Pool::new(2);
        for _ in 0..3 {
            // Longer than the spin: the worker is asleep when the job comes.
            std::thread::sleep(SPIN * 3);
            // Each chunk waits until both have started (giving up after a second), so they
            // run on two threads if the worker wakes.
            let started = counters(1);
            let threads = Mutex::new(Vec::new());
            pool.split(2, &|_| {
                threads.lock().unwrap().push(std::thread::current().id());
                started[0].fetch_add(1, Ordering::AcqRel);
                let t = Instant::now();
                while started[0].load(Ordering::Acquire) < 2 && t.elapsed().as_secs() < 1 {
                    std::hint::spin_loop();
                }
            });
            let threads = threads.into_inner().unwrap();
            assert_ne!(threads[0], threads[1], "the worker did not wake");
        }
    }

    #[test]
    fn run_covers_the_extent_once_in_aligned_ranges() {
        let pool = Pool::new(2);
        for align in [1, 16] {
            for extent in [0, 1, 2, 5, 15, 16, 17, 100, 1000] {
                let seen = counters(extent);
                let ranges = counters(1);
                pool.run(extent, 1 << 20, align, &|lo, hi| {
                    assert!(lo % align == 0, "range {lo}..{hi}");
                    ranges[0].fetch_add(1, Ordering::Relaxed);
                    for s in &seen[lo..hi] {
                        s.fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(seen.iter().all(|s| s.load(Ordering::Relaxed) == 1));
                let ranges = ranges[0].load(Ordering::Relaxed);
                if extent >= 2 && extent >= 2 * align {
                    assert!(ranges >= 2, "{extent} by {align}: {ranges} range(s)");
                }
            }
        }
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_pool_still_works() {
        let pool = Pool::new(2);
        for failing in 0..4 {
            let r = catch_unwind(AssertUnwindSafe(|| {
                pool.split(4, &|i| assert!(i != failing, "chunk fails"));
            }));
            assert!(r.is_err());
        }
        let n = counters(1);
        pool.split(5, &|_| {
            n[0].fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n[0].load(Ordering::Relaxed), 5);
    }

    #[test]
    fn one_thread_runs_everything_on_the_caller() {
        let pool = Pool::new(1);
        let me = std::thread::current().id();
        let n = counters(1);
        pool.split(3, &|_| {
            assert_eq!(std::thread::current().id(), me);
            n[0].fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n[0].load(Ordering::Relaxed), 3);
    }
}
