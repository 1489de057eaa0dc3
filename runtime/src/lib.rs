//! kiln-runtime: tensor files, executables, data and training.

pub mod idx;
pub mod npy;
