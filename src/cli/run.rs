//! `kiln run`: evaluate a graph on `.npy` inputs and write its results as `.npy` files.

use super::train::parse_bytes;
use super::{CliError, load_kir, output, print_stdout};
use clap::Args;
use kiln_compiler::interp::Evaluation;
use kiln_compiler::limits::DEFAULT_MAX_MEMORY;
use kiln_compiler::train::gradients;
use kiln_compiler::{Array, Graph, InputKind, interp};
use kiln_runtime::npy::read_npy;
use kiln_runtime::{Executable, Options};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Arguments of `kiln run`.
#[derive(Args)]
#[command(after_help = "\
Each output of the graph is written to DIR/<output>.npy and the new value of each updated \
param or state to DIR/<state>.next.npy. Everything is computed before anything is written; \
each file is written atomically, and if any file cannot be written, every file and directory \
this run created is removed.")]
pub struct RunArgs {
    /// The graph, in kiln's text form.
    #[arg(value_name = "FILE.kir")]
    graph: PathBuf,
    /// Binds an input, param or state of the graph to an .npy file; every one needs a binding.
    #[arg(long = "input", short, value_name = "NAME=PATH.npy", value_parser = parse_binding)]
    inputs: Vec<(String, PathBuf)>,
    /// The directory the results are written to; created if missing.
    #[arg(long, short, value_name = "DIR")]
    output_dir: PathBuf,
    /// Also compute the gradient of the sum of this output, written as DIR/grad_<NAME>.npy for
    /// each input named by --wrt.
    #[arg(long, value_name = "OUTPUT", requires = "wrt")]
    grad: Option<String>,
    /// The inputs (data, param or state) to differentiate with respect to.
    #[arg(
        long,
        value_name = "NAME[,NAME]",
        value_delimiter = ',',
        requires = "grad"
    )]
    wrt: Vec<String>,
    /// Evaluate with the reference interpreter instead of compiling to native code.
    #[arg(long)]
    interpret: bool,
    /// Compile one kernel per primitive instead of fusing.
    #[arg(long, conflicts_with = "interpret")]
    no_fuse: bool,
    /// Stop at the first NaN or infinity in an input or a kernel's result, naming the kernel,
    /// the graph node and its source line (with --no-fuse, every primitive is checked).
    #[arg(long, conflicts_with = "interpret")]
    check_numerics: bool,
    /// The most memory the compiled program may allocate (its arena and scratch), in bytes or
    /// with a suffix K, M, G or T (powers of 1024): `8G` (default 4G). The interpreter holds
    /// every value and keeps its own limit, 4 GiB for all of them.
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, conflicts_with = "interpret")]
    max_memory: Option<usize>,
}

/// `NAME=PATH` as given to `--input`.
fn parse_binding(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(format!("expected NAME=PATH.npy, found `{s}`")),
    }
}

/// Runs the graph `args` names and writes its results.
pub fn run(args: &RunArgs) -> Result<(), CliError> {
    let mut g = load_kir(&args.graph)?;
    if let Some(of) = &args.grad {
        let wrt: Vec<&str> = args.wrt.iter().map(String::as_str).collect();
        g = gradients(&g, of, &wrt)?;
    }
    let inputs = read_inputs(&g, &args.inputs)?;
    let evaluation = if args.interpret {
        interp::run(&g, &inputs)?
    } else {
        let options = Options {
            fuse: !args.no_fuse,
            max_memory: args.max_memory.unwrap_or(DEFAULT_MAX_MEMORY),
            ..Options::default()
        };
        compiled_run(&g, &inputs, &options, args.check_numerics)?
    };
    let dir = &args.output_dir;
    let files: Vec<(PathBuf, &Array)> = (evaluation.outputs.iter())
        .map(|(name, a)| (dir.join(format!("{name}.npy")), a))
        .chain(
            (evaluation.updates.iter()).map(|(name, a)| (dir.join(format!("{name}.next.npy")), a)),
        )
        .collect();
    let mut seen = HashSet::new();
    if let Some((clash, _)) = files.iter().find(|(path, _)| !seen.insert(path)) {
        return Err(CliError::FileClash(clash.clone()));
    }
    output::write_all(dir, &files)?;
    let summary: String = files
        .iter()
        .map(|(path, a)| format!("wrote {} ({})\n", path.display(), a.ty()))
        .collect();
    print_stdout(&summary)
}

/// Runs `g` compiled to native code with `options`, with the same results as [`interp::run`];
/// with `check_numerics`, the first NaN or infinity found stops it.
fn compiled_run(
    g: &Graph,
    inputs: &HashMap<String, Array>,
    options: &Options,
    check_numerics: bool,
) -> Result<Evaluation, CliError> {
    let mut exe = Executable::compile(g, options)?;
    exe.set_check_numerics(check_numerics);
    let mut data = HashMap::new();
    for (name, value) in inputs {
        match g.input(name).and_then(|id| g.node(id).op.as_input()) {
            Some((InputKind::Data, _)) => {
                data.insert(name.clone(), value.clone());
            }
            _ => exe.set_state(name, value)?,
        }
    }
    let outputs = exe.run(&data)?;
    let updates = g
        .updates()
        .iter()
        .map(|(n, _)| (n.clone(), exe.state(n).expect("updated states exist")))
        .collect();
    Ok(Evaluation { outputs, updates })
}

/// Reads the array bound to each input of `g`, after checking that `bindings` names every
/// input once and nothing else; each array must have its input's type.
fn read_inputs(
    g: &Graph,
    bindings: &[(String, PathBuf)],
) -> Result<HashMap<String, Array>, CliError> {
    let mut files: HashMap<&str, &Path> = HashMap::new();
    for (name, path) in bindings {
        if g.input(name).is_none() {
            return Err(unknown_input(g, name));
        }
        if files.insert(name, path).is_some() {
            return Err(CliError::DuplicateInput(name.clone()));
        }
    }
    let mut values = HashMap::new();
    for id in g.inputs() {
        let node = g.node(id);
        let Some((kind, name)) = node.op.as_input() else {
            continue;
        };
        let Some(&path) = files.get(name) else {
            return Err(CliError::MissingInput {
                name: name.to_string(),
                kind: kind.mnemonic(),
                ty: Box::new(node.ty.clone()),
            });
        };
        let a = read_npy(path)?;
        if a.ty() != node.ty {
            return Err(CliError::InputType {
                name: name.to_string(),
                path: path.to_path_buf(),
                expected: Box::new(node.ty.clone()),
                found: Box::new(a.ty()),
            });
        }
        values.insert(name.to_string(), a);
    }
    Ok(values)
}

fn unknown_input(g: &Graph, name: &str) -> CliError {
    let inputs: Vec<&str> = (g.inputs().into_iter())
        .filter_map(|id| g.node(id).op.as_input().map(|(_, n)| n))
        .collect();
    CliError::UnknownInput {
        name: name.to_string(),
        graph: g.name().to_string(),
        inputs: inputs.join(", "),
    }
}
