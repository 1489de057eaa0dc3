//! kiln-runtime: tensor files, executables, data and training.

pub mod data;
pub mod executable;
pub mod idx;
pub mod npy;
mod pool;
pub mod train;

pub use executable::{CompileError, Executable, Options, StateError, Stats};
