//! Softmax regression on Fisher's iris data (150 flowers, 4 measurements, 3 species), with the
//! library: read the CSV table, shape it into `x: f32[n, 4]` and `labels: i32[n]` (0, 1, 2),
//! split off a seeded fifth for testing, standardize the features with the training rows'
//! statistics, write the model with the builder API (one linear layer to three logits,
//! softmax cross-entropy), train it with `kiln::fit::Learner`, and print the test accuracy.
//!
//! `cargo run --release --example iris_classification [--seed N]` (seed 0 by default; the
//! seed draws the split, the initial weights and the batch order).

use kiln::compiler::optim::Optimizer;
use kiln::compiler::{Array, DType};
use kiln::fit::Learner;
use kiln::frontend::layers::{Layers, Mode};
use kiln::frontend::losses::{Reduction, accuracy, cross_entropy};
use kiln::frontend::{BuildError, GraphBuilder, Model};
use kiln::runtime::data::{Dataset, Standardization, read_csv};
use std::error::Error;
use std::path::Path;

/// Softmax regression of `features` inputs onto `classes` classes. Data inputs
/// `x: f32[batch, features]` and `labels: i32[batch]`; outputs `loss` and `accuracy`.
fn softmax_regression(
    batch: usize,
    mode: Mode,
    features: usize,
    classes: usize,
) -> Result<Model, BuildError> {
    let b = GraphBuilder::new("softmax_regression");
    let nn = Layers::new(&b, mode);
    let x = b.input("x", DType::F32, [batch, features]);
    let labels = b.input("labels", DType::I32, [batch]);
    let logits = nn.linear("fc", &x, classes);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    b.output("accuracy", &accuracy(&logits, &labels));
    b.finish_model()
}

/// Trains with `seed` and gives the test accuracy (0 to 1).
pub fn run(seed: u64) -> Result<f64, Box<dyn Error>> {
    // The table: one f64 column per CSV column, named by the header.
    let table = read_csv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv"))?;
    let target = "species";
    let features: Vec<&str> = table.names().into_iter().filter(|n| *n != target).collect();

    // The columns the model reads: `x`, the features side by side, and `labels`, the classes
    // (whole numbers from 0 in the file).
    let labels: Vec<i32> = (table.column(target).ok_or("no target column")?.to_f64_vec())
        .into_iter()
        .map(|v| v as i32)
        .collect();
    let classes = labels.iter().max().map_or(0, |&c| c as usize + 1);
    let data = Dataset::new(vec![
        ("x".into(), table.stack(&features, DType::F32)?),
        ("labels".into(), Array::from_i32([table.len()], labels)?),
    ])?;

    // 80/20 split; each feature scaled to mean 0 and deviation 1 over the training rows.
    let (train, test) = data.split(0.2, seed);
    let scale = Standardization::fit(&train, &["x"])?;
    let (train, test) = (scale.apply(train)?, scale.apply(test)?);

    let inputs = features.len();
    let model = move |batch, mode| softmax_regression(batch, mode, inputs, classes);
    let fitted = Learner::new(model, Optimizer::adam(0.05))
        .batch(16)
        .epochs(100)
        .seed(seed)
        .fit(&train, &test)?;
    let last = fitted.history.last().ok_or("no epoch trained")?;
    let accuracy = last.test("accuracy");
    println!(
        "iris, seed {seed}: test accuracy {:.2}% ({} train, {} test rows, {classes} classes)",
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
