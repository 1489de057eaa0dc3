//! The job a `kiln train` process belongs to: one process, or one rank of an MPI job when
//! started by `mpirun` (or a cluster's launcher) with the `mpi` feature built in.

use super::CliError;
use kiln::compiler::collective::{Communicator, Single};
use std::sync::Arc;

/// Environment variables MPI launchers set in every rank: Open MPI's, then PMI's (MPICH,
/// Slurm's `srun`).
const LAUNCHER_SIZES: [&str; 2] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"];

/// The ranks the launcher started, if an MPI launcher started this process.
fn launched_ranks() -> Option<usize> {
    (LAUNCHER_SIZES.iter()).find_map(|v| std::env::var(v).ok()?.parse().ok())
}

/// This process's job: MPI's when a launcher started it with more than one rank, else one
/// process. A launcher's job in a kiln built without the `mpi` feature is refused: its ranks
/// would each train alone and write the same files.
pub fn join() -> Result<Arc<dyn Communicator>, CliError> {
    match launched_ranks() {
        Some(n) if n > 1 => mpi(n),
        _ => Ok(Arc::new(Single)),
    }
}

#[cfg(feature = "mpi")]
fn mpi(_: usize) -> Result<Arc<dyn Communicator>, CliError> {
    let mpi = kiln::mpi::Mpi::init().map_err(|e| CliError::Job(e.to_string()))?;
    Ok(Arc::new(mpi))
}

#[cfg(not(feature = "mpi"))]
fn mpi(ranks: usize) -> Result<Arc<dyn Communicator>, CliError> {
    Err(CliError::Job(format!(
        "an MPI launcher started {ranks} ranks, but this kiln was built without MPI: build it \
         with `cargo build --release --features mpi`"
    )))
}

/// Reports `e`, a rank's error, and ends the process: on one rank, the exit status `code`.
/// On several, an error every rank meets alike at the same point (ranks that disagree, or a
/// loss that is not finite: the loss is averaged over the ranks) is printed by rank 0 and
/// every rank exits; any other error is printed naming the rank, which then aborts the whole
/// job, so that no rank waits for it forever.
pub fn fail(e: &CliError, comm: &dyn Communicator, code: u8) -> u8 {
    if comm.size() == 1 {
        eprintln!("{}", e.report());
        return code;
    }
    use kiln::fit::FitError::{Ranks, Train};
    use kiln::runtime::train::TrainError::NonFinite;
    let alike = matches!(e, CliError::Fit(Ranks(_) | Train(NonFinite { .. })));
    if !alike {
        eprintln!("rank {} of {}: {}", comm.rank(), comm.size(), e.report());
        comm.abort(i32::from(code));
    }
    if comm.rank() == 0 {
        eprintln!("{}", e.report());
    }
    code
}
