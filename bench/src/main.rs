//! `kiln-bench`: runs the benchmark report, or (internally) one memory measurement.
//!
//! ```text
//! cargo run --release -p kiln-bench [--features peers] -- report [--samples N] [--only ID]
//! ```

use clap::{Parser, Subcommand};
use kiln_bench::harness::Config;
use kiln_bench::report::{self, Settings};
use kiln_bench::{memory, workloads};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// kiln's benchmarks against its peers.
#[derive(Parser)]
#[command(name = "kiln-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs every available workload and engine and writes BENCHMARKS.md and docs/bench/*.svg.
    Report {
        /// Samples per engine and workload.
        #[arg(long, default_value_t = 30)]
        samples: usize,
        /// Warm-up per engine and workload, in seconds.
        #[arg(long, default_value_t = 0.5)]
        warm_up: f64,
        /// Each sample lasts at least this many milliseconds.
        #[arg(long, default_value_t = 10.0)]
        min_sample_ms: f64,
        /// Only the workloads whose id contains this (see `list`).
        #[arg(long)]
        only: Option<String>,
        /// The Python interpreter that runs the JAX and PyTorch peers.
        #[arg(long, default_value = "python3")]
        python: String,
        /// Skip the Python peers.
        #[arg(long)]
        no_python: bool,
        /// Skip the memory measurements.
        #[arg(long)]
        no_memory: bool,
        /// Where BENCHMARKS.md and docs/bench/ go (default: the repository's root).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Lists the workloads' ids and titles.
    List,
    /// Measures the peak memory of one engine's training run and prints it as JSON (the
    /// report runs this in a child process per engine).
    Memory {
        /// `baseline`, `kiln fused`, `kiln unfused`, `candle` or `burn`.
        engine: String,
    },
}

/// A duration from seconds given on the command line, refusing what is not one.
fn seconds(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| format!("--{what} must be a non-negative number of seconds, not {s}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Report {
            samples,
            warm_up,
            min_sample_ms,
            only,
            python,
            no_python,
            no_memory,
            out,
        } => (|| {
            let config = Config {
                warm_up: seconds(warm_up, "warm-up")?,
                samples: samples.max(1),
                min_sample: seconds(min_sample_ms / 1e3, "min-sample-ms")?,
            };
            let release = if cfg!(debug_assertions) {
                ""
            } else {
                " --release"
            };
            let features = if cfg!(feature = "peers") {
                " --features peers"
            } else {
                ""
            };
            let args: Vec<String> = std::env::args().skip(1).collect();
            let settings = Settings {
                config,
                only,
                python: (!no_python).then_some(python),
                memory: !no_memory,
                out: out.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")),
                command: format!(
                    "cargo run{release} -p kiln-bench{features} -- {}",
                    args.join(" ")
                ),
            };
            let report = report::run(settings).map_err(|e| e.to_string())?;
            report.write().map_err(|e| e.to_string())?;
            eprintln!(
                "wrote {}",
                report.settings.out.join("BENCHMARKS.md").display()
            );
            Ok(())
        })(),
        Cmd::List => {
            for w in workloads::all() {
                println!("{:<40} {}", w.id(), w.title());
            }
            Ok(())
        }
        Cmd::Memory { engine } => memory::child(&engine)
            .map(|line| println!("{line}"))
            .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
