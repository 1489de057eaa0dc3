//! `kiln eval` and `kiln predict`: a checkpoint's model measured on data, or asked for its
//! predictions. A checkpoint holds its evaluation graph, so both work on any model's
//! checkpoint, one defined in a user's own code included; older checkpoints of built-in
//! models are rebuilt from the model's name.

use super::CliError;
use super::problem::{EMBEDDED_DATA, Problem};
use super::train::MachineArgs;
use clap::Args;
use kiln::fit::add_r_squared;
use kiln::fit::session::stored_evaluator;
use kiln_compiler::{Array, DType, Type};
use kiln_frontend::models::{Mode, Settings, builtin};
use kiln_runtime::Options;
use kiln_runtime::checkpoint::{self, Checkpoint};
use kiln_runtime::data::{Dataset, Mnist};
use kiln_runtime::npy::read_npy;
use kiln_runtime::train::{Evaluator, GraphSource};
use std::path::{Path, PathBuf};

/// Arguments of `kiln eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The checkpoint `kiln train` (or a `Learner`) wrote.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The data to measure on, as `kiln train --data` takes it; a table's rows need the
    /// checkpoint's feature and target columns (default: the embedded MNIST's test images).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Stop at the first NaN or infinity in an input, a parameter or a kernel's result, naming
    /// the kernel, the graph node and its source line.
    #[arg(long)]
    check_numerics: bool,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Runs `kiln eval`: prints every metric of the model over every example of the data.
pub fn eval(args: &EvalArgs) -> Result<(), CliError> {
    let ck = checkpoint::load(&args.checkpoint)?;
    let mut ev = evaluator(&ck, &args.machine.options()?)?;
    ev.set_check_numerics(args.check_numerics);
    let path = args
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from(EMBEDDED_DATA));
    let data = match path.is_dir() && Mnist::load(&path).is_ok() {
        true => Mnist::load(&path)?.test,
        false => Problem::for_checkpoint(&ck, &path)?,
    };
    let mut metrics = ev.evaluate(&data)?;
    if ck.meta.task == "regress" {
        add_r_squared(&mut metrics, &data, "y");
    }
    let shown: Vec<String> = (metrics.iter())
        .map(|(name, v)| match name {
            "accuracy" => format!("accuracy {:.2}%", 100.0 * v),
            "r2" => format!("R² {v:.4}"),
            _ => format!("{name} {v:.4}"),
        })
        .collect();
    let m = &ck.meta;
    println!(
        "{} after {} epochs ({} steps) on {} examples of `{}`: {}",
        model_name(&ck),
        m.epoch,
        m.step,
        data.len(),
        path.display(),
        shown.join(", ")
    );
    Ok(())
}

/// Arguments of `kiln predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The checkpoint `kiln train` (or a `Learner`) wrote.
    #[arg(long)]
    checkpoint: PathBuf,
    /// What to predict: a table's rows (.csv, with the feature columns by name; the target
    /// column may be absent), examples of `x` in an .npy (one example, or many along a first
    /// axis), an image (.png, grayscale or color) for an image model, or columns as
    /// `kiln train --data` reads them (.npz, .safetensors, a directory of .npy).
    #[arg(long)]
    input: PathBuf,
    /// The image is dark on a light background (MNIST's digits are light on dark).
    #[arg(long)]
    invert: bool,
}

/// Runs `kiln predict`: prints a line per example, the class and its probability, or the
/// value; for a single image, the other classes above 1% too.
pub fn predict(args: &PredictArgs) -> Result<(), CliError> {
    let ck = checkpoint::load(&args.checkpoint)?;
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    let mut ev = evaluator(&ck, &options)?;
    let data = inputs(&ck, &args.input, args.invert)?;
    let prediction = ev.predict(&data, "prediction")?;
    let probability = ev.predict(&data, "probability").ok();
    for i in 0..data.len() {
        let value = prediction.data().get_f64(i);
        match (&probability, prediction.dtype()) {
            (Some(p), DType::I32) => {
                println!("{value} (probability {:.4})", p.data().get_f64(i))
            }
            _ => println!("{value}"),
        }
    }
    if data.len() == 1
        && let Ok(logits) = ev.predict(&data, "logits")
    {
        let mut probs = softmax(&logits.to_f64_vec());
        probs.sort_by(|a, b| b.1.total_cmp(&a.1));
        for &(c, p) in probs[1..].iter().filter(|(_, p)| *p >= 0.01) {
            println!("  {c}: {p:.4}");
        }
    }
    Ok(())
}

/// The name a checkpoint's model goes by: the built-in's, or its graph's.
fn model_name(ck: &Checkpoint) -> String {
    match (ck.meta.model.as_str(), ck.meta.graphs.first()) {
        ("", Some((_, g))) => g.name().to_string(),
        (m, _) => m.to_string(),
    }
}

/// The evaluator of `ck`'s model: from the graphs it holds, or, for a checkpoint written
/// before kiln stored them, the built-in model it names at MNIST's input, with its tensors.
fn evaluator(ck: &Checkpoint, options: &Options) -> Result<Evaluator, CliError> {
    if let Some(ev) = stored_evaluator(ck, options)? {
        return Ok(ev);
    }
    let (name, width) = (ck.meta.model.clone(), ck.meta.width);
    if builtin(&name, &Settings::default()).is_none() {
        return Err(CliError::UnknownModel(name));
    }
    let graphs: GraphSource = Box::new(move |batch| {
        let settings = Settings {
            batch,
            mode: Mode::Eval,
            width,
            ..Settings::default()
        };
        let model = builtin(&name, &settings).expect("a built-in, checked above")?;
        Ok(Some(model.graph))
    });
    let mut ev = Evaluator::new(500, graphs, options.clone());
    ev.set_state(ck.tensors.clone())?;
    Ok(ev)
}

/// One example of the input `x` of `ck`'s model.
fn example_type(ck: &Checkpoint) -> Result<Type, CliError> {
    let Some((_, g)) = ck.meta.graphs.first() else {
        return Ok(Type::new(DType::F32, [1, 28, 28]));
    };
    let x = (g.inputs().into_iter())
        .map(|id| g.node(id))
        .find(|n| n.op.as_input().is_some_and(|(_, name)| name == "x"));
    match x {
        Some(n) if n.ty.rank() > 0 => Ok(Type::new(n.ty.dtype, &n.ty.shape[1..])),
        _ => Err(CliError::Setting(format!(
            "the model of `{}` has no input `x` to predict from",
            model_name(ck)
        ))),
    }
}

/// The examples of `path` as the model takes them: a table's rows shaped and standardized
/// as in training, or the examples of an image or an array.
fn inputs(ck: &Checkpoint, path: &Path, invert: bool) -> Result<Dataset, CliError> {
    let is = |ext: &str| {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
    };
    if !is("png") && !is("npy") {
        return Problem::for_checkpoint(ck, path);
    }
    let example = &example_type(ck)?;
    let bad = |reason: String| CliError::Image {
        path: path.to_path_buf(),
        reason,
    };
    let (shape, mut values) = if is("png") {
        read_png(path).map_err(bad)?
    } else {
        let a = read_npy(path)?;
        if !a.dtype().is_float() {
            return Err(bad(format!(
                "holds {} values; the model reads floats",
                a.dtype()
            )));
        }
        (
            a.shape().to_vec(),
            a.to_f64_vec().into_iter().map(|v| v as f32).collect(),
        )
    };
    if invert {
        values.iter_mut().for_each(|p| *p = 1.0 - *p);
    }
    let per_example: usize = example.shape.iter().product();
    let n = match shape.as_slice() {
        [n, rest @ ..] if rest == example.shape.as_slice() => *n,
        _ if values.len() == per_example => 1,
        _ => {
            return Err(bad(format!(
                "holds an array of shape {shape:?}; the model reads examples of shape {:?}",
                example.shape.as_slice()
            )));
        }
    };
    if example.rank() == 3
        && let Some(p) = values.iter().find(|p| !(0.0..=1.0).contains(*p))
    {
        return Err(bad(format!(
            "holds the pixel value {p}; pixels lie in [0, 1] (divide 8-bit values by 255)"
        )));
    }
    let mut full = vec![n];
    full.extend(example.shape.iter());
    let x = Array::from_f32(&full, values).expect("n examples of the model's shape");
    let data = Dataset::new(vec![("x".into(), x)])?;
    Ok(ck.standardization.apply(data)?)
}

/// `(class, probability)` for each logit.
fn softmax(logits: &[f64]) -> Vec<(usize, f64)> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter()
        .enumerate()
        .map(|(i, e)| (i, e / sum))
        .collect()
}

/// A PNG's shape `[height, width]` and its luma in [0, 1], row-major.
fn read_png(path: &Path) -> Result<(Vec<usize>, Vec<f32>), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("is not a readable PNG: {e}"))?;
    let (width, height) = (reader.info().width as usize, reader.info().height as usize);
    if width * height > 1 << 24 {
        return Err(format!("is a {width}x{height} image, over 2^24 pixels"));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "is too large to decode".to_string())?;
    let mut buf = vec![0; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("is not a readable PNG: {e}"))?;
    let bytes = &buf[..frame.buffer_size()];
    let channels = frame.color_type.samples();
    let luma = bytes
        .chunks_exact(channels)
        .map(|px| match px {
            [g] | [g, _] => f32::from(*g) / 255.0,
            [r, g, b] | [r, g, b, _] => {
                (0.299 * f32::from(*r) + 0.587 * f32::from(*g) + 0.114 * f32::from(*b)) / 255.0
            }
            _ => 0.0,
        })
        .collect();
    Ok((vec![height, width], luma))
}
