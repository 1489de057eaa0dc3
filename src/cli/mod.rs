//! The `kiln` command line: argument parsing, dispatch and error reporting.
//!
//! Every user error (a malformed graph, a missing or malformed file, inputs that do not fit the
//! graph) is a [`CliError`], printed on stderr as `error: ...`, and the exit status is 2, the
//! status clap gives malformed arguments. Nothing a user gives reaches a panic.

mod dump;
mod error;
mod job;
mod optimizer;
mod output;
mod predict;
mod problem;
mod run;
mod sweep;
mod train;

use clap::{Parser, Subcommand};
use error::CliError;
use kiln_compiler::collective::Single;
use kiln_compiler::{Graph, text};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

/// kiln: a static computation-graph compiler for deep learning.
#[derive(Parser)]
#[command(name = "kiln", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a graph (a .kir file or a built-in model) as text or as Graphviz.
    Dump(dump::DumpArgs),
    /// Evaluate a .kir graph on .npy inputs and write its results as .npy files.
    Run(run::RunArgs),
    /// Train a built-in model on MNIST (the embedded MNIST-10k by default).
    Train(train::TrainArgs),
    /// Measure a checkpoint's model on the test images.
    Eval(predict::EvalArgs),
    /// Print the digit a checkpoint's model sees in an image (.png or .npy).
    Predict(predict::PredictArgs),
    /// Search learning rates, batch sizes, optimizers and widths; print and save a ranked table.
    Sweep(sweep::SweepArgs),
}

/// The exit status of every user error.
const USER_ERROR: u8 = 2;

/// Runs the command line and gives the process's exit status.
pub fn main() -> ExitCode {
    let command = Cli::parse().command;
    if let Command::Train(args) = &command {
        // Dropped (MPI finalized) after the run, on this thread.
        let comm = match job::join() {
            Ok(comm) => comm,
            Err(e) => return ExitCode::from(job::fail(&e, &Single, USER_ERROR)),
        };
        return match train::train(args, comm.clone()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => ExitCode::from(job::fail(&e, &*comm, USER_ERROR)),
        };
    }
    let result = match command {
        Command::Dump(args) => dump::dump(&args),
        Command::Run(args) => run::run(&args),
        Command::Train(_) => unreachable!("run above"),
        Command::Sweep(args) => sweep::sweep(&args),
        Command::Eval(args) => predict::eval(&args),
        Command::Predict(args) => predict::predict(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.report());
            ExitCode::from(USER_ERROR)
        }
    }
}

/// Reads and parses the `.kir` file at `path`; a parse error is rendered with `path` as the
/// file name.
fn load_kir(path: &Path) -> Result<Graph, CliError> {
    let src = fs::read_to_string(path).map_err(|source| CliError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text::parse(&src).map_err(|e| CliError::Parse(e.render(&src, &path.display().to_string())))
}

/// Writes `s` to stdout. A reader that closes the pipe early (`kiln dump mlp | head`) is not
/// an error.
fn print_stdout(s: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Stdout(e)),
        _ => Ok(()),
    }
}
