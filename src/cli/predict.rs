//! `kiln eval` and `kiln predict`: a trained checkpoint measured on the test images, or asked
//! for the digit in one image.

use super::CliError;
use super::session::{evaluator, model, restore};
use super::train::MachineArgs;
use clap::Args;
use kiln_compiler::{Array, DType};
use kiln_frontend::models::{Mode, Settings};
use kiln_runtime::checkpoint::{self, Checkpoint};
use kiln_runtime::data::Dataset;
use kiln_runtime::npy::read_npy;
use kiln_runtime::{Executable, Options};
use std::path::{Path, PathBuf};

/// Arguments of `kiln eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The checkpoint `kiln train` wrote.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Stop at the first NaN or infinity in an input, a parameter or a kernel's result, naming
    /// the kernel, the graph node and its source line.
    #[arg(long)]
    check_numerics: bool,
    #[command(flatten)]
    machine: MachineArgs,
}

/// Runs `kiln eval`.
pub fn eval(args: &EvalArgs) -> Result<(), CliError> {
    let ck = checkpoint::load(&args.checkpoint)?;
    let data = args.machine.load()?;
    let m = &ck.meta;
    let mut ev = evaluator(&m.model, m.width, data.test.len(), &args.machine.options())?;
    for exe in ev.executables_mut() {
        restore(exe, &ck, &args.checkpoint)?;
    }
    ev.set_check_numerics(args.check_numerics);
    let r = ev.evaluate(&data.test)?;
    println!(
        "{} after {} epochs ({} steps): test loss {:.4}, accuracy {:.2}% on {} images",
        m.model,
        m.epoch,
        m.step,
        r.loss,
        100.0 * r.accuracy,
        data.test.len()
    );
    Ok(())
}

/// Arguments of `kiln predict`.
#[derive(Args)]
pub struct PredictArgs {
    /// The checkpoint `kiln train` wrote.
    #[arg(long)]
    checkpoint: PathBuf,
    /// A 28x28 image: a PNG (grayscale or color, 8 or 16 bits) or an `.npy` array of 784
    /// pixels in [0, 1] (shape [784], [28, 28] or [1, 28, 28]).
    #[arg(long)]
    input: PathBuf,
    /// The image is a dark digit on a light background (MNIST's digits are light on dark).
    #[arg(long)]
    invert: bool,
}

/// Runs `kiln predict`: prints the most probable digit and its probability, then the others
/// above 1%.
pub fn predict(args: &PredictArgs) -> Result<(), CliError> {
    let ck = checkpoint::load(&args.checkpoint)?;
    let mut pixels = read_image(&args.input)?;
    if args.invert {
        pixels.iter_mut().for_each(|p| *p = 1.0 - *p);
    }
    let logits = classify(&ck, &args.checkpoint, pixels)?;
    let mut probs = softmax(&logits);
    probs.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (digit, p) = probs[0];
    println!("{digit} (probability {p:.4})");
    for &(d, p) in probs[1..].iter().filter(|(_, p)| *p >= 0.01) {
        println!("  {d}: {p:.4}");
    }
    Ok(())
}

/// The logits of `ck`'s model for one image.
fn classify(ck: &Checkpoint, path: &Path, pixels: Vec<f32>) -> Result<Vec<f64>, CliError> {
    let settings = Settings {
        batch: 1,
        mode: Mode::Eval,
        width: ck.meta.width,
    };
    let graph = model(&ck.meta.model, &settings)?.graph;
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    let mut exe = Executable::compile(&graph, &options)?;
    restore(&mut exe, ck, path)?;
    let x = Array::from_f32([1, pixels.len()], pixels).expect("784 pixels");
    let labels = Array::full(DType::I32, [1], 0.0);
    let inputs = [("x".to_string(), x), ("labels".to_string(), labels)];
    exe.execute(&inputs.into_iter().collect())?;
    let logits = exe
        .output("logits")
        .expect("every built-in outputs its logits");
    Ok(logits.to_f64_vec())
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

/// An image's 784 pixels in [0, 1], row-major.
fn read_image(path: &Path) -> Result<Vec<f32>, CliError> {
    let bad = |reason: String| CliError::Image {
        path: path.to_path_buf(),
        reason,
    };
    let is_png = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    let (shape, pixels) = if is_png {
        read_png(path).map_err(bad)?
    } else {
        let a = read_npy(path)?;
        let pixels = match a.dtype() {
            DType::F32 | DType::F64 => a.to_f64_vec().into_iter().map(|p| p as f32).collect(),
            d => {
                return Err(bad(format!(
                    "holds {d} values; pixels are f32 or f64 in [0, 1]"
                )));
            }
        };
        (a.shape().to_vec(), pixels)
    };
    if !matches!(shape.as_slice(), [784] | [28, 28] | [1, 28, 28] | [1, 784]) {
        return Err(bad(format!(
            "is an image of shape {shape:?}; kiln's models read 28x28 digits"
        )));
    }
    if let Some(p) = pixels.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(bad(format!(
            "holds the pixel value {p}; pixels lie in [0, 1] (divide 8-bit values by 255)"
        )));
    }
    Ok(pixels)
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
        return Err(format!(
            "is a {width}x{height} image; kiln's models read 28x28 digits"
        ));
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
