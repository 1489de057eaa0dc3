//! Trains the built-in MLP (784-128-10, ReLU, SGD) on the embedded MNIST-10k set with the
//! compiled training step: the first 8,000 digits train, the last 2,000 test.
//!
//! `cargo run --release --example mnist_mlp [EPOCHS] [LR] [BATCH] [SEED]`

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType};
use kiln::frontend::models::mlp;
use kiln::runtime::idx::read_idx;
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

const TRAIN: usize = 8000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (epochs, lr, batch, seed) = (
        arg(0, 5.0) as usize,
        arg(1, 0.1),
        arg(2, 64.0) as usize,
        arg(3, 0.0) as u64,
    );
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let images = read_idx(&data.join("mnist10k-images-idx3-ubyte.gz"))?;
    let labels = read_idx(&data.join("mnist10k-labels-idx1-ubyte.gz"))?;
    let pixels: Vec<f32> = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    let digits: Vec<i32> = labels.data.iter().map(|&l| l as i32).collect();
    let test = digits.len() - TRAIN;

    let start = Instant::now();
    let model = mlp(batch, &[784, 128, 10])?;
    let step = train_step(&model.graph, "loss", &Optimizer::sgd(lr))?;
    let mut trainer = Executable::compile(&step, &Options::default())?;
    for (name, value) in model.initial_values(&step, seed) {
        trainer.set_state(&name, &value)?;
    }
    let eval_model = mlp(test, &[784, 128, 10])?;
    let mut evaluator = Executable::compile(&eval_model.graph, &Options::default())?;
    let s = trainer.stats();
    println!(
        "mlp 784-128-10, batch {batch}, sgd lr {lr}: {} loop kernels + {} GEMMs, arena {} KiB, compiled in {:.1} ms",
        s.loops,
        s.dots,
        s.arena_bytes / 1024,
        start.elapsed().as_secs_f64() * 1e3
    );

    let mut order: Vec<usize> = (0..TRAIN).collect();
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let x_test = Array::from_f32([test, 784], pixels[TRAIN * 784..].to_vec())?;
    let y_test = Array::from_i32([test], digits[TRAIN..].to_vec())?;
    for epoch in 1..=epochs {
        let t = Instant::now();
        // Fisher-Yates with xorshift: a fresh order every epoch, the same for the same seed.
        for i in (1..TRAIN).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let (mut loss, mut steps) = (0.0, 0);
        for chunk in order.chunks_exact(batch) {
            let mut x = Vec::with_capacity(batch * 784);
            for &i in chunk {
                x.extend_from_slice(&pixels[i * 784..(i + 1) * 784]);
            }
            let y: Vec<i32> = chunk.iter().map(|&i| digits[i]).collect();
            let inputs = HashMap::from([
                ("x".to_string(), Array::from_f32([batch, 784], x)?),
                ("labels".to_string(), Array::from_i32([batch], y)?),
                ("lr".to_string(), Array::scalar(DType::F32, lr)),
            ]);
            trainer.execute(&inputs)?;
            loss += trainer
                .output("loss")
                .expect("the step outputs its loss")
                .to_f64_vec()[0];
            steps += 1;
        }
        for (name, _) in evaluator.state_names() {
            let value = trainer
                .state(&name)
                .expect("the trainer has every parameter");
            evaluator.set_state(&name, &value)?;
        }
        let eval = HashMap::from([
            ("x".to_string(), x_test.clone()),
            ("labels".to_string(), y_test.clone()),
        ]);
        let out = evaluator.run(&eval)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "epoch {epoch}: train loss {:.4}, test loss {:.4}, test accuracy {:.2}%, {:.0} samples/s",
            loss / steps as f64,
            out[0].1.to_f64_vec()[0],
            100.0 * out[1].1.to_f64_vec()[0],
            (steps * batch) as f64 / secs
        );
    }
    println!("total {:.2} s", start.elapsed().as_secs_f64());
    if let Some(times) = trainer.profile() {
        println!("time per kernel of the training step (KILN_PROFILE):");
        for (i, t) in times.iter().enumerate() {
            println!(
                "  k{i}: {:.1} us per step",
                t.as_secs_f64() * 1e6 / (epochs * (TRAIN / batch)) as f64
            );
        }
    }
    Ok(())
}
