//! Logistic regression on the breast cancer data (569 tumours, 30 cell-nucleus measurements,
//! malignant or benign), with the library: read the CSV table, shape it into `x: f32[n, 30]`
//! and `benign: f32[n]` (0 or 1), split off a seeded fifth for testing, standardize the
//! features with the training rows' statistics, write the model with the builder API (one
//! linear layer to a logit, binary cross-entropy), train it with `kiln::fit::Learner`, and
//! print the test accuracy.
//!
//! `cargo run --release --example breast_cancer_logistic [--seed N]` (seed 0 by default; the
//! seed draws the split, the initial weights and the batch order).

use kiln::compiler::DType;
use kiln::compiler::optim::Optimizer;
use kiln::fit::Learner;
use kiln::frontend::layers::{Layers, Mode};
use kiln::frontend::losses::{Reduction, bce_with_logits};
use kiln::frontend::{BuildError, GraphBuilder, Model};
use kiln::runtime::data::{Dataset, Standardization, read_csv};
use std::error::Error;
use std::path::Path;

/// Logistic regression over `features` inputs: `p(benign) = sigmoid(x w + b)`. Data inputs
/// `x: f32[batch, features]` and `benign: f32[batch]`; outputs `loss` and `accuracy`.
fn logistic(batch: usize, mode: Mode, features: usize) -> Result<Model, BuildError> {
    let b = GraphBuilder::new("logistic");
    let nn = Layers::new(&b, mode);
    let x = b.input("x", DType::F32, [batch, features]);
    let benign = b.input("benign", DType::F32, [batch]);
    let logit = nn.linear("fc", &x, 1).reshape(&[-1]);
    b.output("loss", &bce_with_logits(&logit, &benign, Reduction::Mean));
    // Predicted benign when the logit is positive (p > 0.5).
    let predicted = logit.gt(&logit.scalar_like(0.0)).cast(DType::F32);
    b.output(
        "accuracy",
        &predicted.eq(&benign).cast(DType::F32).mean_all(),
    );
    b.finish_model()
}

/// Trains with `seed` and gives the test accuracy (0 to 1).
pub fn run(seed: u64) -> Result<f64, Box<dyn Error>> {
    // The table: one f64 column per CSV column, named by the header.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/breast_cancer.csv");
    let table = read_csv(&path)?;
    let target = "malignant_0_benign_1";
    let features: Vec<&str> = table.names().into_iter().filter(|n| *n != target).collect();

    // The columns the model reads: `x`, the features side by side, and `benign`, the target.
    let n = table.len();
    let data = Dataset::new(vec![
        ("x".into(), table.stack(&features, DType::F32)?),
        (
            "benign".into(),
            table.stack(&[target], DType::F32)?.reshape([n])?,
        ),
    ])?;

    // 80/20 split; each feature scaled to mean 0 and deviation 1 over the training rows.
    let (train, test) = data.split(0.2, seed);
    let scale = Standardization::fit(&train, &["x"])?;
    let (train, test) = (scale.apply(train)?, scale.apply(test)?);

    let inputs = features.len();
    let model = move |batch, mode| logistic(batch, mode, inputs);
    let fitted = Learner::new(model, Optimizer::sgd(0.05))
        .batch(16)
        .epochs(30)
        .seed(seed)
        .fit(&train, &test)?;
    let last = fitted.history.last().ok_or("no epoch trained")?;
    let accuracy = last.test("accuracy");
    println!(
        "breast cancer, seed {seed}: test accuracy {:.2}% ({} train, {} test rows)",
        100.0 * accuracy,
        train.len(),
        test.len()
    );
    Ok(accuracy)
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--seed").collect();
    let seed = args.first().map_or(Ok(0), |s| s.parse())?;
    run(seed)?;
    Ok(())
}
