//! The built-in models, by name: what `kiln dump mlp` and the tests build.

use crate::losses::{Reduction, accuracy, cross_entropy};
use crate::{BuildError, GraphBuilder, Init, Model, Tensor};
use kiln_compiler::DType;

/// The names [`builtin`] knows.
pub const BUILTINS: &[&str] = &["mlp"];

/// The built-in model called `name`, at its default sizes.
pub fn builtin(name: &str) -> Option<Model> {
    let m = match name {
        "mlp" => mlp(64, &[784, 128, 10]),
        _ => return None,
    };
    Some(m.expect("built-in models are well typed"))
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
/// `labels: i32[batch]`; outputs `loss` (mean cross-entropy) and `accuracy`.
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
    b.finish_model()
}
