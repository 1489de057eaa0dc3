//! `kiln dump`: print a graph at a stage of the pipeline, as text or as Graphviz.

use super::optimizer::OptimizerArg;
use super::{CliError, load_kir, print_stdout};
use clap::{Args, ValueEnum};
use kiln_compiler::text::{PrintOptions, print_with};
use kiln_compiler::train::{grad_graph, train_step};
use kiln_compiler::{Graph, dot::to_dot};
use kiln_frontend::models::builtin;
use std::path::Path;

/// Arguments of `kiln dump`.
#[derive(Args)]
pub struct DumpArgs {
    /// A graph in kiln's text form, or the name of a built-in model (e.g. `mlp`).
    #[arg(value_name = "FILE.kir|MODEL")]
    target: String,
    /// The stage of the pipeline to show.
    #[arg(long, value_enum, default_value_t = Stage::Source)]
    stage: Stage,
    /// How to print the graph.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Leave out each node's source location (text format).
    #[arg(long)]
    no_locations: bool,
    /// The output differentiated at the grad and train stages.
    #[arg(long, default_value = "loss", value_name = "OUTPUT")]
    loss: String,
    /// The optimizer the train stage appends.
    #[arg(long, value_enum, default_value_t = OptimizerArg::Sgd)]
    optimizer: OptimizerArg,
}

/// A point of the pipeline whose graph `kiln dump` can show.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Stage {
    /// The graph as parsed or built, before any transformation.
    Source,
    /// The source graph with the gradient of the loss with respect to every parameter added
    /// as outputs `grad_<param>`.
    Grad,
    /// The whole training step: forward pass, gradients and the optimizer's updates.
    Train,
}

/// An output format of `kiln dump`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// kiln's text form (.kir), which `kiln run` reads back.
    Text,
    /// Graphviz DOT (render with `dot -Tsvg`).
    Dot,
}

/// Prints the graph `args` names.
pub fn dump(args: &DumpArgs) -> Result<(), CliError> {
    let source = load(&args.target)?;
    let g = match args.stage {
        Stage::Source => source,
        Stage::Grad => grad_graph(&source, &args.loss)?,
        Stage::Train => train_step(&source, &args.loss, &args.optimizer.optimizer())?,
    };
    let mut out = match args.format {
        Format::Text => print_with(
            &g,
            PrintOptions {
                locations: !args.no_locations,
            },
        ),
        Format::Dot => to_dot(&g),
    };
    if !out.ends_with('\n') {
        out.push('\n');
    }
    print_stdout(&out)
}

/// The graph in the file `target` or, when no such file exists, the built-in model so named.
fn load(target: &str) -> Result<Graph, CliError> {
    let path = Path::new(target);
    if path.exists() {
        return load_kir(path);
    }
    builtin(target)
        .map(|m| m.graph)
        .ok_or_else(|| CliError::UnknownModel(target.to_string()))
}
