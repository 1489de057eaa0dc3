//! kiln-runtime: tensor files, executables, data and training.

pub mod arena;
pub mod atomic;
pub mod checkpoint;
pub mod data;
pub mod executable;
pub mod history;
pub mod idx;
mod matmul;
pub mod npy;
mod numerics;
pub mod plot;
mod pool;
mod scatter;
/// The differential check of compiled code against the interpreter (feature `testing`).
#[cfg(feature = "testing")]
pub mod testing;
pub mod train;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use executable::{CompileError, Executable, Options, StateError, Stats};
pub use history::EpochRecord;
