//! `kiln-bench`: runs the benchmark report, or (internally) one memory measurement.
//!
//! ```text
//! cargo run --release -p kiln-bench [--features peers,mpi] -- report [--samples N] [--only ID]
//! cargo run --release -p kiln-bench -- profile ID [--runs N] [--unfused]
//! cargo run --release -p kiln-bench -- graph ID > ID.kir   # then `kiln dump ID.kir --stage ...`
//! ```

use clap::{Parser, Subcommand};
use kiln_bench::harness::Config;
use kiln_bench::report::{self, Settings};
use kiln_bench::{distributed, memory, workloads};
use std::io::Write;
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
        /// Milliseconds of idle after each sample of a Python peer, before the next engine's
        /// (its OpenMP threads spin on after its step).
        #[arg(long, default_value_t = 300.0)]
        settle_ms: f64,
        /// Only the workloads whose id contains this, or one of these separated by commas
        /// (see `list`).
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
    /// Runs one workload under kiln with kernel timing on and prints the time per run of
    /// each kernel (numbered as `kiln dump --stage kernels` numbers them).
    Profile {
        /// The workload's id (see `list`).
        id: String,
        /// Runs timed, after as many untimed ones.
        #[arg(long, default_value_t = 100)]
        runs: u64,
        /// One kernel per primitive.
        #[arg(long)]
        unfused: bool,
    },
    /// Prints the graph kiln compiles for one workload in kiln's text form, for
    /// `kiln dump FILE.kir --stage kernels --loss none` and the other stages.
    Graph {
        /// The workload's id (see `list`).
        id: String,
    },
    /// Measures the peak memory of one engine's training run and prints it as JSON (the
    /// report runs this in a child process per engine).
    Memory {
        /// `baseline`, `kiln fused`, `kiln unfused`, `candle` or `burn`.
        engine: String,
        /// Run this workload (kiln's engines only) instead of the memory table's training run.
        #[arg(long)]
        workload: Option<String>,
        /// Iterations of `--workload` to run.
        #[arg(long, default_value_t = memory::PEAK_STEPS)]
        steps: usize,
    },
    /// One rank of a data-parallel job of the report (launched by it under `mpirun`): trains
    /// and times the model's step, and rank 0 prints one JSON line.
    #[command(hide = true)]
    RankWorker {
        /// `mlp` (784-1024-10) or `lenet`.
        #[arg(long)]
        net: String,
        /// Threads of this rank.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Untimed steps before the timed windows.
        #[arg(long, default_value_t = distributed::WARM_UP_STEPS)]
        warm_up_steps: usize,
        /// Timed windows.
        #[arg(long, default_value_t = distributed::WINDOWS)]
        windows: usize,
        /// Steps per window.
        #[arg(long, default_value_t = distributed::STEPS)]
        steps: usize,
    },
}

/// The workload whose id is `id`.
fn workload(id: &str) -> Result<workloads::Workload, String> {
    workloads::by_id(id).ok_or_else(|| format!("no workload `{id}` (see `kiln-bench list`)"))
}

/// Writes `out` to stdout; a reader that stopped early (`| head`) is not a failure.
fn print_stdout(out: &str) -> Result<(), String> {
    match std::io::stdout().write_all(out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.to_string()),
        _ => Ok(()),
    }
}

/// `kiln-bench profile`: `runs` timed runs of workload `id` after as many untimed ones.
fn profile(id: &str, runs: u64, fuse: bool) -> Result<(), String> {
    let w = workload(id)?;
    let data = kiln_bench::data::mnist_train().map_err(|e| e.to_string())?;
    let mut engine = w.kiln(fuse, &data).map_err(|e| e.to_string())?;
    for _ in 0..runs {
        engine.run().map_err(|e| e.to_string())?;
    }
    let exe = (engine.kiln_executable()).ok_or_else(|| format!("`{id}` runs no executable"))?;
    exe.start_profile();
    let started = std::time::Instant::now();
    for _ in 0..runs {
        engine.run().map_err(|e| e.to_string())?;
    }
    let wall = started.elapsed().as_secs_f64() * 1e6 / runs.max(1) as f64;
    let exe = engine.kiln_executable().expect("checked above");
    let report = exe.profile_report(runs).expect("profiling is on");
    print_stdout(&format!("wall time per run: {wall:.1} us\n{report}"))
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
            settle_ms,
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
                settle: seconds(settle_ms / 1e3, "settle-ms")?,
            };
            let release = if cfg!(debug_assertions) {
                ""
            } else {
                " --release"
            };
            let features: Vec<&str> = [
                ("peers", cfg!(feature = "peers")),
                ("mpi", cfg!(feature = "mpi")),
            ]
            .into_iter()
            .filter_map(|(f, on)| on.then_some(f))
            .collect();
            let features = match features.is_empty() {
                true => String::new(),
                false => format!(" --features {}", features.join(",")),
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
        Cmd::Profile { id, runs, unfused } => profile(&id, runs, !unfused),
        Cmd::Graph { id } => workload(&id).and_then(|w| {
            let g = w.graph().map_err(|e| e.to_string())?;
            print_stdout(&kiln_compiler::text::print(&g))
        }),
        Cmd::Memory {
            engine,
            workload,
            steps,
        } => match workload {
            Some(id) => memory::child_workload(&engine, &id, steps),
            None => memory::child(&engine),
        }
        .map(|line| println!("{line}"))
        .map_err(|e| e.to_string()),
        Cmd::RankWorker {
            net,
            threads,
            warm_up_steps,
            windows,
            steps,
        } => {
            let steps = distributed::Steps {
                warm_up: warm_up_steps,
                windows,
                steps,
            };
            distributed::rank_worker(&net, threads, steps)
                .map(|line| line.into_iter().for_each(|l| println!("{l}")))
                .map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
