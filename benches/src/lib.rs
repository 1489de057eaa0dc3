//! kiln-bench: kiln's benchmarks, defined once.
//!
//! [`workloads`] holds every workload (the elementwise chain, softmax with cross-entropy, the
//! training steps, GEMMs, compile times) and builds each as kiln runs it, fused or unfused.
//! The criterion benches (`cargo bench -p kiln-bench`) and the report binary
//! (`cargo run --release -p kiln-bench -- report`) both take their workloads from here.
//!
//! [`harness`] times [`Engine`]s round-robin (warm-up, samples, median); `peers` (feature
//! `peers`) runs the same workloads in candle and Burn; [`python`] runs the optional JAX and
//! PyTorch scripts of `benches/peers/`; [`memory`] measures peak resident memory in a child
//! process; [`report`] puts it all into BENCHMARKS.md and [`chart`] draws a bar chart per workload.

pub mod chart;
pub mod data;
pub mod harness;
pub mod machine;
pub mod memory;
#[cfg(feature = "peers")]
pub mod peers;
pub mod python;
pub mod report;
pub mod trajectory;
pub mod workloads;

use std::path::PathBuf;

/// Something timed: one call of [`Engine::run`] is one iteration of a workload.
pub trait Engine {
    /// Runs one iteration; a training step gives its loss (computed before its update),
    /// other workloads `None`.
    fn run(&mut self) -> Result<Option<f64>, BenchError>;

    /// The kiln executable behind this engine, if it has one (to profile it).
    fn kiln_executable(&mut self) -> Option<&mut kiln_runtime::Executable> {
        None
    }
}

/// Why a benchmark could not run. Each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A model or workload graph could not be built.
    #[error("cannot build {what}: {reason}")]
    Build {
        /// The graph.
        what: String,
        /// The builder's, autodiff's or the compiler's error.
        reason: String,
    },
    /// The MNIST data could not be loaded.
    #[error(transparent)]
    Data(#[from] kiln_runtime::data::DataError),
    /// A compiled program refused to run.
    #[error(transparent)]
    Run(#[from] kiln_compiler::interp::RunError),
    /// A peer framework failed.
    #[error("{engine}: {reason}")]
    Peer {
        /// The framework.
        engine: String,
        /// Its error.
        reason: String,
    },
    /// A file could not be read or written, or a child process started.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or program.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A child process's output could not be understood.
    #[error("{0}")]
    Protocol(String),
}

impl BenchError {
    /// A build error for `what`.
    pub fn build(what: impl Into<String>, reason: impl std::fmt::Display) -> BenchError {
        BenchError::Build {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
