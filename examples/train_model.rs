//! Trains a built-in model on the embedded MNIST-10k with the library API: build the model in
//! training and evaluation mode, derive the training step, compile both, and run epochs with
//! the runtime's `Trainer` and `Evaluator`. `kiln train` does the same with checkpoints,
//! schedules, augmentation, progress bars and plots.
//!
//! `cargo run --release --example train_model [MODEL] [EPOCHS] [LR] [SEED]` (defaults: the
//! MLP 784-128-10 with SGD at lr 0.1, batch 64, 5 epochs, seed 0: the reference
//! configuration; the CNNs and the LSTM train with Adam at lr 0.002).

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::frontend::models::{Mode, Settings, builtin};
use kiln::runtime::data::{Dataset, Mnist};
use kiln::runtime::train::{Evaluator, Trainer};
use kiln::runtime::{Executable, Options};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("mlp", String::as_str);
    let number =
        |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let dense = matches!(name, "mlp" | "linreg" | "logreg");
    let (epochs, lr, seed) = (
        number(1, 5.0) as usize,
        number(2, if dense { 0.1 } else { 2e-3 }),
        number(3, 0.0) as u64,
    );
    let data = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))?;
    let build = |batch, mode| {
        builtin(
            name,
            &Settings {
                batch,
                mode,
                width: None,
            },
        )
        .ok_or_else(|| format!("no built-in model `{name}`"))
    };

    let model = build(64, Mode::Train)??;
    let optimizer = if dense {
        Optimizer::sgd(lr)
    } else {
        Optimizer::adam(lr)
    };
    let step = train_step(&model.graph, "loss", &optimizer)?;
    let mut exe = Executable::compile(&step, &Options::default())?;
    for (name, value) in model.initial_values(&step, seed) {
        exe.set_state(&name, &value)?;
    }
    let s = exe.stats();
    println!(
        "{name}: {} loop kernels and {} matrix products, arena {} KiB, compiled in {:.1} ms",
        s.loops,
        s.dots,
        s.arena_bytes / 1024,
        s.compile_time.as_secs_f64() * 1e3
    );
    let mut trainer = Trainer::new(exe, &optimizer.hyperparameters(), seed)?;
    // The test split in batches of 500, through the evaluation graph (running statistics, no
    // dropout).
    let eval = build(500, Mode::Eval)??;
    let mut evaluator =
        Evaluator::new(Executable::compile(&eval.graph, &Options::default())?, None)?;

    for epoch in 1..=epochs {
        let train = trainer.epoch(&data.train, epoch, &mut |_| {})?;
        evaluator.load_state(trainer.executable())?;
        let test = evaluator.evaluate(&data.test)?;
        println!(
            "epoch {epoch}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}% of {}",
            train.loss,
            test.loss,
            100.0 * test.accuracy,
            data.test.len()
        );
    }
    Ok(())
}
