//! kiln-runtime: tensor files, executables, data and training.

pub mod npy;
