//! Communication between the ranks of a data-parallel job: the [`Communicator`] that the
//! `all_reduce` primitive sums through, in the interpreter and in compiled programs alike.
//!
//! A job is `size` ranks, each a copy of the same program on its own share of the data. A
//! communicator is one rank's view of the job. [`Single`] is a job of one rank, where every
//! collective is the identity: single-process training goes through it unchanged and
//! bit-identical. [`Threads`] is a job whose ranks are threads of one process (tests and
//! experiments on one machine); an MPI communicator (the `kiln` package's `mpi` feature) is a
//! job of processes on any number of machines.
//!
//! Every rank must make the same collective calls in the same order with the same lengths;
//! a rank that does not leaves the others waiting, so the trainer compares a hash of what each
//! rank runs before the first call ([`Communicator::all_gather`]).

use std::sync::{Arc, Barrier, Mutex};

/// One rank's view of a data-parallel job. The collectives block until every rank has made
/// the same call.
pub trait Communicator: Send + Sync {
    /// This rank's number, `0..size()`.
    fn rank(&self) -> usize;

    /// How many ranks the job has.
    fn size(&self) -> usize;

    /// Replaces `data` on every rank with the elementwise sum of every rank's `data`; every
    /// rank gets the same bits.
    fn all_reduce_f32(&self, data: &mut [f32]);

    /// [`Communicator::all_reduce_f32`] for `f64`.
    fn all_reduce_f64(&self, data: &mut [f64]);

    /// Replaces `data` on every rank with rank 0's (every rank passes the same length).
    fn broadcast(&self, data: &mut [u8]);

    /// Every rank's `value`, in rank order.
    fn all_gather(&self, value: u64) -> Vec<u64>;

    /// Ends the whole job, every rank's process, with `code` (non-zero) as the exit status:
    /// what a rank does when it cannot go on, so that the others do not wait for it forever.
    fn abort(&self, code: i32) -> !;
}

/// The job of one rank: the collectives are the identity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Single;

impl Communicator for Single {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn all_reduce_f32(&self, _: &mut [f32]) {}

    fn all_reduce_f64(&self, _: &mut [f64]) {}

    fn broadcast(&self, _: &mut [u8]) {}

    fn all_gather(&self, value: u64) -> Vec<u64> {
        vec![value]
    }

    fn abort(&self, code: i32) -> ! {
        std::process::exit(code)
    }
}

/// What the ranks of a [`Threads`] job share: one slot per rank for the values of the
/// collective in progress.
struct Group {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<f64>>>,
}

/// One rank of a job whose ranks are threads of one process. Sums are taken in `f64` in rank
/// order and rounded once, as the interpreter sums, so every rank gets the same bits.
#[derive(Clone)]
pub struct Threads {
    rank: usize,
    group: Arc<Group>,
}

impl Threads {
    /// The `size` ranks of a new job, in rank order; hand each to its own thread.
    pub fn group(size: usize) -> Vec<Threads> {
        let group = Arc::new(Group {
            barrier: Barrier::new(size),
            slots: Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| Threads {
                rank,
                group: group.clone(),
            })
            .collect()
    }

    /// Puts `values` in this rank's slot and gives every rank's, in rank order, once every
    /// rank has put its own.
    fn exchange(&self, values: Vec<f64>) -> Vec<Vec<f64>> {
        self.group.slots.lock().expect("a rank panicked")[self.rank] = values;
        self.group.barrier.wait();
        let all = self.group.slots.lock().expect("a rank panicked").clone();
        // No rank may put its next values before every rank has read these.
        self.group.barrier.wait();
        all
    }

    /// The sum in rank order of every rank's `data`.
    fn sum(&self, data: impl Iterator<Item = f64>) -> Vec<f64> {
        let all = self.exchange(data.collect());
        let mut sum = all[0].clone();
        for other in &all[1..] {
            sum.iter_mut().zip(other).for_each(|(s, x)| *s += x);
        }
        sum
    }
}

impl Communicator for Threads {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.group.slots.lock().expect("a rank panicked").len()
    }

    fn all_reduce_f32(&self, data: &mut [f32]) {
        let sum = self.sum(data.iter().map(|&x| f64::from(x)));
        data.iter_mut().zip(sum).for_each(|(x, s)| *x = s as f32);
    }

    fn all_reduce_f64(&self, data: &mut [f64]) {
        let sum = self.sum(data.iter().copied());
        data.copy_from_slice(&sum);
    }

    fn broadcast(&self, data: &mut [u8]) {
        let all = self.exchange(data.iter().map(|&b| f64::from(b)).collect());
        data.iter_mut()
            .zip(&all[0])
            .for_each(|(b, &x)| *b = x as u8);
    }

    fn all_gather(&self, value: u64) -> Vec<u64> {
        // Two halves, each exact in an f64.
        let all = self.exchange(vec![(value >> 32) as f64, (value & 0xffff_ffff) as f64]);
        all.iter()
            .map(|v| ((v[0] as u64) << 32) | v[1] as u64)
            .collect()
    }

    /// Panics: the ranks are threads of the caller's process, which decides what a panic ends.
    fn abort(&self, code: i32) -> ! {
        panic!("rank {} aborted the job with code {code}", self.rank)
    }
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Threads {{ rank: {}, size: {} }}",
            self.rank,
            self.size()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on each rank of a job of `size` threads; their results in rank order.
    fn on_ranks<T: Send + 'static>(
        size: usize,
        f: impl Fn(Threads) -> T + Send + Sync + Clone + 'static,
    ) -> Vec<T> {
        let handles: Vec<_> = (Threads::group(size).into_iter())
            .map(|c| {
                let f = f.clone();
                std::thread::spawn(move || f(c))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn thread_ranks_sum_broadcast_and_gather() {
        let results = on_ranks(3, |c| {
            let r = c.rank() as f32;
            let mut x = vec![r, 10.0 * r, 0.1];
            c.all_reduce_f32(&mut x);
            let mut y = vec![r as f64 + 0.5];
            c.all_reduce_f64(&mut y);
            let mut b = vec![c.rank() as u8 + 7; 2];
            c.broadcast(&mut b);
            let gathered = c.all_gather(u64::MAX - c.rank() as u64);
            (x, y, b, gathered)
        });
        for (x, y, b, gathered) in results {
            // 0.1f32 three times, summed in f64 and rounded once.
            let tenth = (3.0 * f64::from(0.1f32)) as f32;
            assert_eq!(x, vec![3.0, 30.0, tenth]);
            assert_eq!(y, vec![4.5]);
            assert_eq!(b, vec![7, 7]);
            assert_eq!(gathered, vec![u64::MAX, u64::MAX - 1, u64::MAX - 2]);
        }
    }

    #[test]
    fn one_rank_is_the_identity() {
        let mut x = vec![1.5f32, -0.0];
        Single.all_reduce_f32(&mut x);
        assert_eq!(x, vec![1.5, -0.0]);
        assert_eq!((Single.rank(), Single.size()), (0, 1));
        assert_eq!(Single.all_gather(9), vec![9]);
    }
}
