//! The errors a user can cause, one variant each, with the message printed for it.

use kiln_compiler::Type;
use kiln_compiler::interp::RunError;
use kiln_compiler::train::TrainError;
use kiln_frontend::models::BUILTINS;
use kiln_runtime::npy::NpyError;
use std::io;
use std::path::PathBuf;

/// A user error: what `kiln` prints on stderr before exiting with status 2.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A `.kir` text is malformed; holds the rendered report, with its source snippet.
    #[error("{0}")]
    Parse(String),
    /// `kiln dump` was given a name that is neither a file nor a built-in model.
    #[error(
        "`{0}` is neither a file nor a built-in model (built-in models: {models})",
        models = BUILTINS.join(", ")
    )]
    UnknownModel(String),
    /// An `.npy` file could not be read or written.
    #[error(transparent)]
    Npy(#[from] NpyError),
    /// `--input` names something the graph has no input for.
    #[error("`{name}` is not an input of graph `{graph}` (its inputs: {inputs})")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The graph's name.
        graph: String,
        /// The graph's inputs, comma-separated.
        inputs: String,
    },
    /// `--input` binds the same name twice.
    #[error("input `{0}` is given twice")]
    DuplicateInput(String),
    /// An input of the graph has no `--input`.
    #[error("missing {kind} `{name}` ({ty}): give it with --input {name}=FILE.npy")]
    MissingInput {
        /// The input's name.
        name: String,
        /// `input`, `param` or `state`.
        kind: &'static str,
        /// The type the graph expects.
        ty: Box<Type>,
    },
    /// An `.npy` file's type differs from its input's.
    #[error("input `{name}` is {expected}, but `{}` holds {found}", path.display())]
    InputType {
        /// The input's name.
        name: String,
        /// The file given for it.
        path: PathBuf,
        /// The type the graph expects.
        expected: Box<Type>,
        /// The type of the file's array.
        found: Box<Type>,
    },
    /// A gradient or training step cannot be built from the graph.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The graph could not be compiled.
    #[error(transparent)]
    Compile(#[from] kiln_runtime::CompileError),
    /// Code generation failed (a bug in kiln, reported rather than hidden).
    #[error(transparent)]
    Codegen(#[from] kiln_compiler::codegen::CodegenError),
    /// A param or state value does not fit the compiled program.
    #[error(transparent)]
    State(#[from] kiln_runtime::StateError),
    /// The interpreter or a compiled program refused the inputs, or the numerics check
    /// stopped a run.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Two results would be written to the same file.
    #[error("two results would both be written to `{}`", .0.display())]
    FileClash(PathBuf),
    /// The output directory could not be created.
    #[error("cannot create directory `{}`: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A built-in model could not be built with the settings given.
    #[error(transparent)]
    Build(#[from] kiln_frontend::BuildError),
    /// The data set could not be loaded.
    #[error(transparent)]
    Data(#[from] kiln_runtime::data::DataError),
    /// Training or evaluation stopped.
    #[error(transparent)]
    Training(#[from] kiln_runtime::train::TrainError),
    /// An image for `kiln predict` cannot be read or does not fit the model.
    #[error("`{}` {reason}", path.display())]
    Image {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint could not be saved, loaded or used.
    #[error(transparent)]
    Checkpoint(#[from] kiln_runtime::checkpoint::CheckpointError),
    /// The training curves could not be drawn.
    #[error(transparent)]
    Plot(#[from] kiln_runtime::plot::PlotError),
    /// A file could not be written.
    #[error("cannot write `{}`: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A setting is out of its range, or does not fit the data; names it.
    #[error("{0}")]
    Setting(String),
    /// A built-in model cannot take the data's examples.
    #[error("model `{model}` cannot take examples of shape {input:?}: {source}")]
    ModelInput {
        /// The model.
        model: String,
        /// One example's shape.
        input: Vec<usize>,
        /// What building it said.
        source: Box<kiln_frontend::BuildError>,
    },
    /// Training stopped.
    #[error(transparent)]
    Fit(#[from] kiln::fit::FitError),
    /// The process cannot join the job its launcher started.
    #[error("{0}")]
    Job(String),
    /// Standard output could not be written.
    #[error("cannot write to standard output: {0}")]
    Stdout(io::Error),
}

impl CliError {
    /// What is printed on stderr: `error: ` and the message on one line, or the report of a
    /// parse error, which shows the offending line.
    pub fn report(&self) -> String {
        match self {
            CliError::Parse(report) => report.clone(),
            e => format!("error: {e}"),
        }
    }
}
