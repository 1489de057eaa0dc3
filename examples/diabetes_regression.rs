//! Linear regression on the diabetes data (442 patients, 10 features, the disease's
//! progression after a year as the target), with the library: read the CSV table, shape it
//! into `x: f32[n, 10]` and `y: f32[n]`, split off a seeded fifth for testing, standardize
//! the features with the training rows' statistics, train kiln's built-in `linear` model
//! (mean squared error) with `kiln::fit::Learner`, and print the test MSE and R².
//!
//! `cargo run --release --example diabetes_regression [--seed N]` (seed 0 by default; the
//! seed draws the split, the initial weights and the batch order).

use kiln::compiler::DType;
use kiln::compiler::optim::Optimizer;
use kiln::fit::{Learner, Schedule};
use kiln::frontend::models::{Settings, Task, builtin};
use kiln::runtime::data::{Dataset, Standardization, read_csv};
use std::error::Error;
use std::path::Path;

/// Trains with `seed` and gives the test R².
pub fn run(seed: u64) -> Result<f64, Box<dyn Error>> {
    // The table: one f64 column per CSV column, named by the header.
    let table = read_csv(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data/diabetes.csv"))?;
    let target = "progression";
    let features: Vec<&str> = table.names().into_iter().filter(|n| *n != target).collect();

    // The columns the model reads: `x`, the features side by side, and `y`, the target.
    let n = table.len();
    let data = Dataset::new(vec![
        ("x".into(), table.stack(&features, DType::F32)?),
        (
            "y".into(),
            table.stack(&[target], DType::F32)?.reshape([n])?,
        ),
    ])?;

    // 80/20 split; each feature scaled to mean 0 and deviation 1 over the training rows.
    let (train, test) = data.split(0.2, seed);
    let scale = Standardization::fit(&train, &["x"])?;
    let (train, test) = (scale.apply(train)?, scale.apply(test)?);

    // The built-in linear model fits the target standardized by its training mean and
    // deviation (given here), and reports `mse` in the target's own units.
    let y = train.column("y").ok_or("no y")?.to_f64_vec();
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let std = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / y.len() as f64).sqrt();
    let inputs = features.len();
    let model = move |batch, mode| {
        let task = Task::Regress { mean, std };
        let settings = Settings {
            batch,
            mode,
            width: None,
            input: vec![inputs],
            task,
        };
        builtin("linear", &settings).expect("`linear` is a built-in")
    };

    let fitted = Learner::new(model, Optimizer::sgd(0.05))
        .batch(16)
        .epochs(30)
        .seed(seed)
        .schedule(Schedule::Cosine) // small last steps settle near the least-squares fit
        .r_squared("y") // adds `r2` = 1 - mse / variance of the test targets
        .fit(&train, &test)?;
    let last = fitted.history.last().ok_or("no epoch trained")?;
    println!(
        "diabetes, seed {seed}: test MSE {:.1}, R² {:.3} ({} train, {} test rows)",
        last.test("mse"),
        last.test("r2"),
        train.len(),
        test.len()
    );
    Ok(last.test("r2"))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--seed").collect();
    let seed = args.first().map_or(Ok(0), |s| s.parse())?;
    run(seed)?;
    Ok(())
}
