//! Builds a built-in model (LeNet unless another is named), prints what its graph and its
//! compiled training step hold, and trains it a few epochs on the embedded MNIST-10k set (the
//! first 8,000 digits train, the last 2,000 test), scoring the test set with the model's
//! evaluation graph (batch norm's running statistics, no dropout) after each epoch.
//!
//! `cargo run --release --example lenet [MODEL] [EPOCHS] [LR] [adam|momentum|sgd] [SEED]`
//! (defaults: lenet, 3 epochs, learning rate 0.002, Adam, seed 0). With `KILN_PROFILE=1` it
//! ends with the kernels that took the most time per training step.

use kiln::compiler::kernel::{Kernel, Program};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, InputKind};
use kiln::frontend::models::{Mode, Settings, builtin};
use kiln::runtime::idx::read_idx;
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

const TRAIN: usize = 8000;
const BATCH: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("lenet", String::as_str);
    let number =
        |i: usize, default: f64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (epochs, lr, seed) = (
        number(1, 3.0) as usize,
        number(2, 2e-3),
        number(4, 0.0) as u64,
    );
    let opt = match args.get(3).map_or("adam", String::as_str) {
        "adam" => Optimizer::adam(lr),
        "momentum" => Optimizer::momentum(lr, false),
        "sgd" => Optimizer::sgd(lr),
        other => return Err(format!("no optimizer `{other}` (adam, momentum, sgd)").into()),
    };

    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let images = read_idx(&data.join("mnist10k-images-idx3-ubyte.gz"))?;
    let labels = read_idx(&data.join("mnist10k-labels-idx1-ubyte.gz"))?;
    let pixels: Vec<f32> = images.data.iter().map(|&p| p as f32 / 255.0).collect();
    let digits: Vec<i32> = labels.data.iter().map(|&l| l as i32).collect();
    let test = digits.len() - TRAIN;

    let settings = |batch, mode| Settings {
        batch,
        mode,
        width: None,
    };
    let Some(model) = builtin(name, &settings(BATCH, Mode::Train)) else {
        return Err(format!("no built-in model `{name}`").into());
    };
    let model = model?;
    let g = &model.graph;
    let count = |kind| {
        let ids = g.inputs_of(kind);
        let elements: usize = ids.iter().map(|&id| g.node(id).ty.numel()).sum();
        (ids.len(), elements)
    };
    let ((params, weights), (states, _)) = (count(InputKind::Param), count(InputKind::State));
    println!(
        "{name}: {} nodes, {params} parameters ({weights} weights), {states} running statistics",
        g.len()
    );

    let start = Instant::now();
    let step = train_step(g, "loss", &opt)?;
    let mut trainer = Executable::compile(&step, &Options::default())?;
    for (n, v) in model.initial_values(&step, seed) {
        trainer.set_state(&n, &v)?;
    }
    let eval_model = builtin(name, &settings(test, Mode::Eval)).expect("known")?;
    let mut evaluator = Executable::compile(&eval_model.graph, &Options::default())?;
    let s = trainer.stats();
    println!(
        "training step: {} loop kernels + {} GEMMs, arena {} KiB, compiled in {:.0} ms",
        s.loops,
        s.dots,
        s.arena_bytes / 1024,
        start.elapsed().as_secs_f64() * 1e3
    );

    let mut inputs: HashMap<String, Array> = opt
        .hyperparameters()
        .into_iter()
        .map(|(n, v)| (n.to_string(), Array::scalar(DType::F32, v)))
        .collect();
    let seeded = step.input("step_seed").is_some();
    let x_test = Array::from_f32([test, 784], pixels[TRAIN * 784..].to_vec())?;
    let y_test = Array::from_i32([test], digits[TRAIN..].to_vec())?;
    let mut order: Vec<usize> = (0..TRAIN).collect();
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut steps = 0;
    for epoch in 1..=epochs {
        let t = Instant::now();
        // Fisher-Yates with xorshift: a fresh order every epoch, the same for the same seed.
        for i in (1..TRAIN).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        let mut loss = 0.0;
        for chunk in order.chunks_exact(BATCH) {
            let mut x = Vec::with_capacity(BATCH * 784);
            for &i in chunk {
                x.extend_from_slice(&pixels[i * 784..(i + 1) * 784]);
            }
            let y: Vec<i32> = chunk.iter().map(|&i| digits[i]).collect();
            inputs.insert("x".into(), Array::from_f32([BATCH, 784], x)?);
            inputs.insert("labels".into(), Array::from_i32([BATCH], y)?);
            if seeded {
                inputs.insert("step_seed".into(), Array::scalar(DType::I32, steps as f64));
            }
            trainer.execute(&inputs)?;
            loss += trainer.output("loss").expect("an output").to_f64_vec()[0];
            steps += 1;
        }
        let train_secs = t.elapsed().as_secs_f64();
        for (n, _) in evaluator.state_names() {
            evaluator.set_state(&n, &trainer.state(&n).expect("the trainer has it"))?;
        }
        let scored = HashMap::from([
            ("x".to_string(), x_test.clone()),
            ("labels".to_string(), y_test.clone()),
        ]);
        let out = evaluator.run(&scored)?;
        let batches = TRAIN / BATCH;
        println!(
            "epoch {epoch}: train loss {:.4}, test accuracy {:.2}%, {:.2} ms per step",
            loss / batches as f64,
            100.0 * out[1].1.to_f64_vec()[0],
            train_secs * 1e3 / batches as f64
        );
    }
    if let Some(times) = trainer.profile() {
        print_profile(trainer.program(), times, steps);
    }
    Ok(())
}

/// The kernels that took the most time per training step (when `KILN_PROFILE` is set), with
/// what each is: a matrix product's shape, or a loop kernel's loops and expression count.
fn print_profile(program: &Program, times: &[Duration], steps: usize) {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(times[i]));
    let per_step = |t: Duration| t.as_secs_f64() * 1e6 / steps.max(1) as f64;
    let total: f64 = times.iter().map(|&t| per_step(t)).sum();
    println!("kernel time per training step: {total:.0} us; the 12 longest:");
    for &i in order.iter().take(12) {
        let what = match &program.kernels[i] {
            Kernel::Dot(d) => format!("matrix product {:?} {}x{}x{}", d.batch, d.m, d.k, d.n),
            Kernel::Loop(l) => {
                let loops: Vec<i64> = l.outer.iter().map(|&v| l.extents[v as usize]).collect();
                let stages: Vec<Vec<i64>> = (l.stages.iter())
                    .map(|s| s.vars.iter().map(|&v| l.extents[v as usize]).collect())
                    .collect();
                let exprs = l.exprs.len();
                format!("loops {loops:?} around stages {stages:?}, {exprs} expressions")
            }
            Kernel::Scatter(_) => "scatter".to_string(),
        };
        println!("  k{i}: {:7.1} us  {what}", per_step(times[i]));
    }
}
