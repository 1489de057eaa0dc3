//! The built-in models, by name: what `kiln train --model`, `kiln dump mlp` and the tests
//! build.
//!
//! Every built-in is an MNIST classifier with one interface, so the trainer needs to know
//! nothing of a model but its name:
//! - inputs `x: f32[batch, 784]` (pixels scaled to `[0, 1]`, row-major 28x28; a model that
//!   wants images reshapes them itself) and `labels: i32[batch]` (digits 0..10);
//! - in [`Mode::Train`], a model with random parts (dropout) also takes `step_seed: i32[]`, a new
//!   value each step;
//! - outputs `loss` (mean cross-entropy, `f32[]`), `accuracy` (`f32[]`) and `logits`
//!   (`f32[batch, 10]`);
//! - state a model keeps between steps (batch norm's running statistics) is `state` updated
//!   by the graph in training mode and read in evaluation mode, under the same names.

use crate::losses::{Reduction, accuracy, cross_entropy};
use crate::{BuildError, GraphBuilder, Init, Model, Tensor};
use kiln_compiler::DType;

/// The names [`builtin`] knows.
pub const BUILTINS: &[&str] = &["mlp"];

/// Whether a model is built to train or to evaluate. In training, batch norm normalizes with
/// the batch's statistics and updates its running statistics, and dropout drops; in
/// evaluation, batch norm uses the running statistics and dropout is the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The graph a training step differentiates.
    Train,
    /// The graph that evaluates and predicts.
    Eval,
}

/// How to build a built-in model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Rows per batch.
    pub batch: usize,
    /// Training or evaluation graph.
    pub mode: Mode,
    /// The hidden width (the MLP's hidden layer, the LSTM's state); `None` for the model's
    /// default.
    pub width: Option<usize>,
}

impl Default for Settings {
    /// Batch 64, training mode, default width.
    fn default() -> Settings {
        Settings {
            batch: 64,
            mode: Mode::Train,
            width: None,
        }
    }
}

/// The built-in model called `name` built with `settings`, or `None` for an unknown name.
pub fn builtin(name: &str, settings: &Settings) -> Option<Result<Model, BuildError>> {
    let batch = settings.batch;
    Some(match name {
        "mlp" => mlp(batch, &[784, settings.width.unwrap_or(128), 10]),
        _ => return None,
    })
}

/// A fully connected layer `x w + b` with `w: [inputs, outputs]`, both initialized as PyTorch's
/// `Linear` is: uniform in `±1/sqrt(inputs)`.
#[track_caller]
pub fn linear(b: &GraphBuilder, name: &str, x: &Tensor, outputs: usize) -> Tensor {
    let inputs = x.shape().last().copied().unwrap_or(0);
    let k = 1.0 / (inputs.max(1) as f64).sqrt();
    let init = Init::Uniform { low: -k, high: k };
    let w = b.param_init(&format!("{name}.w"), x.dtype(), [inputs, outputs], init);
    let bias = b.param_init(&format!("{name}.b"), x.dtype(), [outputs], init);
    x.matmul(&w) + &bias
}

/// A multilayer perceptron classifier over `batch` rows: `sizes` are the widths from the input
/// features to the classes, with ReLU between layers. Inputs `x: f32[batch, sizes[0]]` and
/// `labels: i32[batch]`; outputs `loss` (mean cross-entropy), `accuracy` and `logits`.
pub fn mlp(batch: usize, sizes: &[usize]) -> Result<Model, BuildError> {
    let b = GraphBuilder::new("mlp");
    let x = b.input("x", DType::F32, [batch, sizes[0]]);
    let labels = b.input("labels", DType::I32, [batch]);
    let layers = sizes.len() - 1;
    let mut h = x;
    for (i, &width) in sizes[1..].iter().enumerate() {
        h = linear(&b, &format!("fc{}", i + 1), &h, width);
        if i + 1 < layers {
            h = h.relu();
        }
    }
    let logits = h.named("logits");
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    b.output("accuracy", &accuracy(&logits, &labels));
    b.output("logits", &logits);
    b.finish_model()
}
