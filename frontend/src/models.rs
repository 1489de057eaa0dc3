//! The built-in models, by name: what `kiln dump mlp` and the tests build.

use crate::BuildError;
use kiln_compiler::Graph;

/// The names [`builtin`] knows.
pub const BUILTINS: &[&str] = &["mlp"];

/// The built-in model called `name`, at its default sizes.
pub fn builtin(name: &str) -> Option<Graph> {
    let g = match name {
        "mlp" => mlp(64, 784, 128, 10),
        _ => return None,
    };
    Some(g.expect("built-in models are well typed"))
}

/// A two-layer perceptron's forward pass: `logits = relu(x w1 + b1) w2 + b2` for a batch of
/// `batch` rows of `inputs` features, `hidden` hidden units and `classes` outputs.
pub fn mlp(
    batch: usize,
    inputs: usize,
    hidden: usize,
    classes: usize,
) -> Result<Graph, BuildError> {
    crate::graph! {
        fn mlp(
            x: input f32[batch, inputs],
            w1: param f32[inputs, hidden],
            b1: param f32[hidden],
            w2: param f32[hidden, classes],
            b2: param f32[classes],
        ) -> logits {
            let h = (x.matmul(&w1) + &b1).relu();
            h.matmul(&w2) + &b2
        }
    }
}
