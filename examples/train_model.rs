//! Trains a built-in model on the embedded MNIST-10k with the library API: a
//! `kiln::fit::Learner` of the model (built for a batch size and a mode, training or
//! evaluation) and an optimizer, its `Session` (the training step derived and compiled, the
//! parameters drawn from the seed, an evaluator of the evaluation graph), and a loop of epochs
//! that evaluates on the test split after each. `Learner::fit` runs the same loop itself, and
//! `kiln train` adds checkpoints, schedules, augmentation, progress bars and plots.
//!
//! `cargo run --release --example train_model [MODEL] [EPOCHS] [LR] [SEED]` (defaults: the
//! MLP 784-128-10 with SGD at lr 0.1, batch 64, 5 epochs, seed 0: the reference
//! configuration; the CNNs and the LSTM train with Adam at lr 0.002).

use kiln::compiler::optim::Optimizer;
use kiln::fit::{Learner, Session};
use kiln::frontend::models::{BUILTINS, Settings, builtin};
use kiln::runtime::data::Mnist;
use kiln::runtime::train::Metrics;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("mlp", String::as_str).to_string();
    let number =
        |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let dense = matches!(name.as_str(), "mlp" | "linreg" | "logreg");
    let (epochs, lr, seed) = (
        number(1, 5.0) as usize,
        number(2, if dense { 0.1 } else { 2e-3 }),
        number(3, 0.0) as u64,
    );
    if !BUILTINS.contains(&name.as_str()) {
        return Err(format!(
            "no built-in model `{name}` (known: {})",
            BUILTINS.join(", ")
        )
        .into());
    }
    // `x: f32[n, 1, 28, 28]` (pixels / 255) and `labels: i32[n]`: the built-ins' inputs, which
    // the trainer binds to these columns by name.
    let data = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data"))?;
    let optimizer = if dense {
        Optimizer::sgd(lr)
    } else {
        Optimizer::adam(lr)
    };
    let model = move |batch, mode| {
        let settings = Settings {
            batch,
            mode,
            ..Settings::default()
        };
        builtin(&name, &settings).expect("a built-in model, checked above")
    };
    // Batches of 64 for training; the test split in batches of 500 through the evaluation
    // graph (running statistics, no dropout).
    let learner = Learner::new(model, optimizer)
        .batch(64)
        .seed(seed)
        .eval_batch(500);

    let mut session = Session::new(&learner)?;
    session.trainer.check(&data.train)?;
    let s = session.trainer.executable().stats();
    println!(
        "{}: {} loop kernels and {} matrix products, arena {} KiB, compiled in {:.1} ms",
        session.model.graph.name(),
        s.loops,
        s.dots,
        s.arena_bytes / 1024,
        s.compile_time.as_secs_f64() * 1e3
    );
    let metric = |m: &Metrics, name| m.get(name).unwrap_or(f64::NAN);
    for epoch in 1..=epochs {
        let train = session.trainer.epoch(&data.train, epoch, &mut |_| {})?;
        let test = session.evaluate(&data.test)?;
        println!(
            "epoch {epoch}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}% of {}",
            metric(&train, "loss"),
            metric(&test, "loss"),
            100.0 * metric(&test, "accuracy"),
            data.test.len()
        );
    }
    Ok(())
}
