//! Trains an MLP on the embedded MNIST-10k with the library API: build the model, derive its
//! training step, compile it, and run epochs with the runtime's `Trainer` and `Evaluator`.
//! `kiln train` does the same with checkpoints, progress bars and plots.
//!
//! `cargo run --release --example mnist_mlp [EPOCHS] [LR] [BATCH] [SEED]` (defaults: the
//! reference configuration, 784-128-10 with SGD lr 0.1, batch 64, 5 epochs, seed 0).

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::frontend::models::mlp;
use kiln::runtime::data::{Dataset, Mnist};
use kiln::runtime::train::{Evaluator, Trainer};
use kiln::runtime::{Executable, Options};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (epochs, lr, batch, seed) = (
        arg(0, 5.0) as usize,
        arg(1, 0.1),
        arg(2, 64.0) as usize,
        arg(3, 0.0) as u64,
    );
    let data = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))?;

    let model = mlp(batch, &[784, 128, 10])?;
    let optimizer = Optimizer::sgd(lr);
    let step = train_step(&model.graph, "loss", &optimizer)?;
    let mut exe = Executable::compile(&step, &Options::default())?;
    for (name, value) in model.initial_values(&step, seed) {
        exe.set_state(&name, &value)?;
    }
    let mut trainer = Trainer::new(exe, &optimizer.hyperparameters(), seed)?;
    // The whole test split in one batch: the forward graph at that batch size.
    let eval = mlp(data.test.len(), &[784, 128, 10])?;
    let mut evaluator =
        Evaluator::new(Executable::compile(&eval.graph, &Options::default())?, None)?;

    for epoch in 1..=epochs {
        let train = trainer.epoch(&data.train, epoch, &mut |_| {})?;
        evaluator.load_state(trainer.executable())?;
        let test = evaluator.evaluate(&data.test)?;
        println!(
            "epoch {epoch}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}%",
            train.loss,
            test.loss,
            100.0 * test.accuracy
        );
    }
    Ok(())
}
