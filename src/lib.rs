//! kiln: a static computation-graph compiler for deep learning.
//!
//! This crate re-exports the three parts of the pipeline and holds the `kiln` command-line tool:
//! [`frontend`] builds graphs from Rust, [`compiler`] checks, transforms and evaluates them,
//! [`runtime`] runs them over data.

pub use kiln_compiler as compiler;
pub use kiln_frontend as frontend;
pub use kiln_runtime as runtime;
pub mod fit;
/// The MPI communicator, for data-parallel jobs launched with `mpirun` (the `mpi` feature).
#[cfg(feature = "mpi")]
pub mod mpi;
