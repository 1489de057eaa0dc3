//! `kiln dump`: print a graph at a stage of the pipeline, as text or as Graphviz.

use super::optimizer::OptimizerArg;
use super::{CliError, load_kir, print_stdout};
use clap::{Args, ValueEnum};
use kiln_compiler::codegen::{self, describe_loops};
use kiln_compiler::kernel::lower;
use kiln_compiler::limits::check_lowerable;
use kiln_compiler::passes::optimize;
use kiln_compiler::text::{PrintOptions, print_with};
use kiln_compiler::train::{grad_graph, train_step};
use kiln_compiler::{Graph, dot::to_dot};
use kiln_frontend::models::{Settings, builtin};
use kiln_runtime::CompileError;
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
    /// One kernel per primitive (kernels, loops and clif stages), to compare with fusion.
    #[arg(long)]
    no_fuse: bool,
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
    /// After the optimization passes (simplify, fold, CSE, DCE).
    Optimized,
    /// The fused kernels: buffers, loop kernels with their expressions, matrix products.
    Kernels,
    /// The loop nests code generation makes of each kernel, with vector widths and the loop
    /// split across threads.
    Loops,
    /// The Cranelift IR of each loop kernel.
    Clif,
    /// The machine code of each loop kernel, as Cranelift disassembles it.
    Asm,
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
    let train = || train_step(&source, &args.loss, &args.optimizer.optimizer());
    let g = match args.stage {
        Stage::Source => source.clone(),
        Stage::Grad => grad_graph(&source, &args.loss)?,
        Stage::Train => train()?,
        _ => {
            // Compiled stages start from the training step when the graph has the loss output,
            // else from the graph itself.
            let mut g = if source.output(&args.loss).is_some() {
                train()?
            } else {
                source.clone()
            };
            optimize(&mut g);
            g
        }
    };
    let compiled = |g: &Graph| {
        // Lowering does index arithmetic on the extents: a graph over the limits is refused
        // as compiling it would be (nothing is allocated, so the memory limit does not apply).
        check_lowerable(g).map_err(CompileError::TooLarge)?;
        let program = lower(g, !args.no_fuse);
        match args.stage {
            Stage::Kernels => Ok(program.to_string()),
            Stage::Loops => Ok(describe_loops(&program)),
            _ => {
                let code = codegen::compile(&program, true)?;
                let text = if matches!(args.stage, Stage::Asm) {
                    &code.asm
                } else {
                    &code.clif
                };
                Ok::<String, CliError>(
                    text.iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            }
        }
    };
    let mut out = match (args.stage, args.format) {
        (Stage::Kernels | Stage::Loops | Stage::Clif | Stage::Asm, _) => compiled(&g)?,
        (_, format) => match format {
            Format::Text => print_with(
                &g,
                PrintOptions {
                    locations: !args.no_locations,
                },
            ),
            Format::Dot => to_dot(&g),
        },
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
    let model = builtin(target, &Settings::default())
        .ok_or_else(|| CliError::UnknownModel(target.to_string()))?
        .expect("built-in models are well typed");
    Ok(model.graph)
}
