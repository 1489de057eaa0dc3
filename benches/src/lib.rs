//! kiln-bench: kiln's benchmarks, defined once.
//!
//! [`workloads`] holds every workload (the elementwise chain, softmax with cross-entropy, the
//! training steps, GEMMs, compile times) and builds each as kiln runs it, fused or unfused.
//! The criterion benches (`cargo bench -p kiln-bench`) and the report binary
//! (`cargo run --release -p kiln-bench -- report`) both take their workloads from here.
//!
//! [`harness`] times [`Engine`]s round-robin (warm-up, samples, median); `peers` (feature
//! `peers`) runs the same workloads in candle and Burn; [`python`] runs the optional JAX and
//! PyTorch scripts of `benches/peers/` as long-lived processes whose engines are sampled with
//! the others; [`memory`] measures peak resident memory in a child process; [`report`] puts it
//! all into BENCHMARKS.md and [`chart`] draws a bar chart per workload and the scaling figure.
//! [`distributed`] measures data-parallel training in jobs of their own: kiln's ranks under
//! `mpirun` (feature `mpi`), PyTorch's DistributedDataParallel.

pub mod chart;
pub mod data;
pub mod distributed;
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
use std::time::{Duration, Instant};

/// Something timed: one call of [`Engine::run`] is one iteration of a workload.
pub trait Engine {
    /// Runs one iteration; a training step gives its loss (computed before its update),
    /// other workloads `None`.
    fn run(&mut self) -> Result<Option<f64>, BenchError>;

    /// The kiln executable behind this engine, if it has one (to profile it).
    fn kiln_executable(&mut self) -> Option<&mut kiln_runtime::Executable> {
        None
    }

    /// Runs at least one iteration and for at least `duration`; the seconds per iteration
    /// they took. An engine in another process does it there, in one request.
    fn warm_up(&mut self, duration: Duration) -> Result<f64, BenchError> {
        let start = Instant::now();
        let mut runs = 0u32;
        while runs == 0 || start.elapsed() < duration {
            self.run()?;
            runs += 1;
        }
        Ok(start.elapsed().as_secs_f64() / f64::from(runs))
    }

    /// One sample: runs `iterations` iterations back to back; the seconds per iteration. An
    /// engine in another process times them there, so the request's round trip is not
    /// counted.
    fn sample(&mut self, iterations: usize) -> Result<f64, BenchError> {
        let t = Instant::now();
        for _ in 0..iterations {
            self.run()?;
        }
        Ok(t.elapsed().as_secs_f64() / iterations.max(1) as f64)
    }

    /// At most how many samples to take of it (`None`: as many as the rounds); an engine
    /// whose iteration takes seconds (a Python peer compiling a model) sits out the later
    /// rounds.
    fn max_samples(&self) -> Option<usize> {
        None
    }

    /// Whether it runs in another process (a Python peer), whose threads may go on using
    /// the cores after a sample returns ([`crate::harness::Config::settle`]).
    fn in_other_process(&self) -> bool {
        false
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
