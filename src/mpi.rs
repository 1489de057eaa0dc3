//! The MPI [`Communicator`]: the ranks of a data-parallel job are processes started by an MPI
//! launcher, on one machine or many, and the collectives go through the MPI library.
//!
//! Built only with the `mpi` feature (`cargo build --release --features mpi`), which links the
//! system's MPI library (Open MPI or MPICH; building needs its headers and libclang). A job is
//! launched with the MPI launcher, which starts `N` copies of the same command, each one rank:
//!
//! ```text
//! mpirun -np 4 kiln train ...
//! mpirun --hostfile hosts -np 16 kiln train ...
//! ```
//!
//! Each process calls [`Mpi::init`] once, from its main thread, and makes every collective call
//! from that same thread: MPI is asked for the *funneled* threading level (other threads may
//! exist, say a kernel's worker threads, but only the thread that initialized MPI calls it),
//! which every MPI library with thread support provides. A collective called from any other
//! thread panics rather than break that promise. Dropping the [`Mpi`] finalizes MPI.
//!
//! Sums are MPI's built-in `MPI_SUM` on the element type. With two ranks that is the exact sum
//! rounded once, the same bits as [`kiln_compiler::collective::Threads`]; with more, the order
//! in which the library adds is its own, but every rank gets the same bits.

use std::mem::ManuallyDrop;
use std::thread::{self, ThreadId};

use kiln_compiler::collective::Communicator;
use mpi::Threading;
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator as _, CommunicatorCollectives, Root};

/// Why [`Mpi::init`] could not give a communicator.
#[derive(Debug, thiserror::Error)]
pub enum MpiError {
    /// MPI was initialized before, by an earlier [`Mpi::init`] or by other code in the process;
    /// there is one communicator per process.
    #[error("MPI is already initialized in this process (kiln::mpi::Mpi::init is called once)")]
    AlreadyInitialized,

    /// MPI was finalized (an earlier [`Mpi`] was dropped): the MPI standard does not allow it to
    /// start again in the same process.
    #[error("MPI was already finalized in this process and cannot be initialized again")]
    Finalized,

    /// The MPI library gives no threading level at which a multi-threaded process may call it
    /// from its main thread.
    #[error(
        "the MPI library provides the threading level {provided:?}, but kiln needs at least \
         Funneled (it runs worker threads); use an MPI library built with thread support"
    )]
    Threading {
        /// The level the library provides.
        provided: Threading,
    },
}

/// This process's rank of an MPI job: [`Communicator`] over `MPI_COMM_WORLD`. Holds MPI's
/// universe, so dropping it (on the thread that initialized MPI) finalizes MPI.
pub struct Mpi {
    /// Finalizes MPI when dropped; dropped by `Mpi`'s own `Drop`, on the initializing thread.
    universe: ManuallyDrop<Universe>,
    /// `MPI_COMM_WORLD`: every process of the job.
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// The level the library provides, funneled or more.
    threading: Threading,
    /// The thread that initialized MPI, the only one that may call it.
    thread: ThreadId,
}

// SAFETY: `SimpleCommunicator` is not `Send`/`Sync` only because it may hold a raw handle; the
// world communicator's is the constant `MPI_COMM_WORLD`, valid from any thread until MPI is
// finalized. Every MPI call but `abort` checks first that it runs on the thread that initialized
// MPI (the funneled threading level), and MPI_Abort may be called from any thread.
unsafe impl Send for Mpi {}
// SAFETY: as for `Send`: the methods that call MPI run only on the initializing thread.
unsafe impl Sync for Mpi {}

impl Mpi {
    /// Initializes MPI (at the funneled threading level) and gives this process's rank of the
    /// job. A process started without a launcher is a job of one rank. Call it once, from the
    /// thread that will make the collective calls (the main thread).
    pub fn init() -> Result<Mpi, MpiError> {
        if mpi::is_finalized() {
            return Err(MpiError::Finalized);
        }
        let (universe, provided) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or(MpiError::AlreadyInitialized)?;
        if provided < Threading::Funneled {
            // Dropping `universe` finalizes MPI again.
            return Err(MpiError::Threading { provided });
        }
        let world = universe.world();
        // MPI gives a rank in 0..size and a size of at least one.
        let rank = usize::try_from(world.rank()).unwrap_or(0);
        let size = usize::try_from(world.size()).unwrap_or(1);
        Ok(Mpi {
            universe: ManuallyDrop::new(universe),
            world,
            rank,
            size,
            threading: provided,
            thread: thread::current().id(),
        })
    }

    /// The threading level the MPI library provides: funneled or more (Open MPI 4.1 gives
    /// exactly the funneled level asked for).
    pub fn threading(&self) -> Threading {
        self.threading
    }

    /// The world communicator, once this thread is known to be the one allowed to call MPI.
    fn world(&self) -> &SimpleCommunicator {
        assert!(
            thread::current().id() == self.thread,
            "kiln::mpi: a collective was called from a thread other than the one that \
             initialized MPI (MPI runs at the funneled threading level)"
        );
        &self.world
    }
}

impl Communicator for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    /// `MPI_Allreduce` with `MPI_SUM` on `MPI_FLOAT`, from a copy of `data` (rsmpi 0.8 has no
    /// in-place all-reduce).
    fn all_reduce_f32(&self, data: &mut [f32]) {
        let world = self.world();
        if self.size > 1 {
            let send = data.to_vec();
            world.all_reduce_into(&send[..], data, SystemOperation::sum());
        }
    }

    /// `MPI_Allreduce` with `MPI_SUM` on `MPI_DOUBLE`, from a copy of `data`.
    fn all_reduce_f64(&self, data: &mut [f64]) {
        let world = self.world();
        if self.size > 1 {
            let send = data.to_vec();
            world.all_reduce_into(&send[..], data, SystemOperation::sum());
        }
    }

    /// `MPI_Bcast` from rank 0.
    fn broadcast(&self, data: &mut [u8]) {
        self.world().process_at_rank(0).broadcast_into(data);
    }

    /// `MPI_Allgather` of one `u64` from each rank.
    fn all_gather(&self, value: u64) -> Vec<u64> {
        let mut all = vec![0; self.size];
        self.world().all_gather_into(&value, &mut all[..]);
        all
    }

    /// `MPI_Abort` on the world communicator: the launcher ends every rank's process, and its
    /// own exit status is non-zero (Open MPI's `mpirun` exits with `code`). Allowed from any
    /// thread.
    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi {{ rank: {}, size: {} }}", self.rank, self.size)
    }
}

impl Drop for Mpi {
    /// Finalizes MPI, which the MPI standard allows only on the thread that initialized it;
    /// dropped on any other thread, MPI is left as it is (and the launcher reports that this
    /// rank ended without finalizing).
    fn drop(&mut self) {
        if thread::current().id() == self.thread {
            // SAFETY: `universe` is not used again; `self` is being dropped.
            unsafe { ManuallyDrop::drop(&mut self.universe) };
        }
    }
}
