//! The training runtime: determinism, exact continuation, evaluation over every example, and
//! the errors of a run that diverges or a program that breaks the models' interface.

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::frontend::models::mlp;
use kiln::runtime::data::{Dataset, Images, Mnist};
use kiln::runtime::train::{Evaluator, Metrics, TrainError, Trainer};
use kiln::runtime::{Executable, Options};
use std::path::Path;

fn mnist() -> Mnist {
    Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap()
}

/// A small MLP's SGD step compiled, at its initial parameters for `seed`.
fn trainer(batch: usize, lr: f64, seed: u64) -> Trainer {
    let model = mlp(batch, &[784, 32, 10]).unwrap();
    let opt = Optimizer::momentum(lr, false);
    let step = train_step(&model.graph, "loss", &opt).unwrap();
    let mut exe = Executable::compile(&step, &Options::default()).unwrap();
    for (name, value) in model.initial_values(&step, seed) {
        exe.set_state(&name, &value).unwrap();
    }
    Trainer::new(exe, &opt.hyperparameters(), seed).unwrap()
}

/// Every step's loss over `epochs` epochs of `data`.
fn losses(t: &mut Trainer, data: &Images, epochs: std::ops::RangeInclusive<usize>) -> Vec<f64> {
    let mut out = Vec::new();
    for epoch in epochs {
        t.epoch(data, epoch, &mut |r| out.push(r.loss)).unwrap();
    }
    out
}

fn state(t: &Trainer) -> Vec<(String, Vec<u64>)> {
    let exe = t.executable();
    (exe.state_names().into_iter())
        .map(|(n, _)| {
            let bits = exe.state(&n).unwrap().to_f64_vec();
            (n, bits.iter().map(|v| v.to_bits()).collect())
        })
        .collect()
}

#[test]
fn the_same_seed_trains_the_same_losses() {
    let data = mnist().train.split(2048).0;
    let a = losses(&mut trainer(64, 0.05, 3), &data, 1..=2);
    let b = losses(&mut trainer(64, 0.05, 3), &data, 1..=2);
    assert_eq!(a.len(), 64);
    assert_eq!(a, b, "bit-identical losses for the same seed");
    let c = losses(&mut trainer(64, 0.05, 4), &data, 1..=2);
    assert_ne!(a, c, "another seed draws other parameters and orders");
    assert!(a[60..].iter().sum::<f64>() < a[..4].iter().sum::<f64>());
}

#[test]
fn a_run_moved_to_a_fresh_trainer_continues_exactly() {
    let data = mnist().train.split(1024).0;
    let mut straight = trainer(32, 0.05, 9);
    losses(&mut straight, &data, 1..=2);

    let mut first = trainer(32, 0.05, 9);
    losses(&mut first, &data, 1..=1);
    // What a checkpoint carries: every param and state, and the step count; a resumed run
    // builds its trainer with the run's seed (which orders the batches) and overwrites the state.
    let mut resumed = trainer(32, 0.05, 9);
    for (name, _) in first.executable().state_names() {
        let value = first.executable().state(&name).unwrap();
        resumed.executable_mut().set_state(&name, &value).unwrap();
    }
    resumed.set_steps(first.steps());
    losses(&mut resumed, &data, 2..=2);
    assert_eq!(state(&straight), state(&resumed));
    assert_eq!(straight.steps(), resumed.steps());
}

#[test]
fn evaluation_covers_every_example_with_a_remainder_program() {
    let test = mnist().test.split(1234).0;
    let t = trainer(64, 0.05, 1);
    let compile = |batch| {
        let g = mlp(batch, &[784, 32, 10]).unwrap().graph;
        Executable::compile(&g, &Options::default()).unwrap()
    };
    let mut parts = Evaluator::new(compile(500), Some(compile(234))).unwrap();
    parts.load_state(t.executable()).unwrap();
    let mut whole = Evaluator::new(compile(1234), None).unwrap();
    whole.load_state(t.executable()).unwrap();
    let (a, b): (Metrics, Metrics) = (
        parts.evaluate(&test).unwrap(),
        whole.evaluate(&test).unwrap(),
    );
    // Same per-example values; the means differ only by f32 summation order.
    assert!((a.loss - b.loss).abs() <= 1e-5 * b.loss, "{a:?} {b:?}");
    assert!((a.accuracy - b.accuracy).abs() < 1e-6, "{a:?} {b:?}");
    assert!(a.accuracy > 0.0 && a.accuracy < 0.5, "untrained: {a:?}");
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_the_learning_rate() {
    let data = mnist().train.split(640).0;
    let mut t = trainer(64, 1e30, 0);
    let e = t.epoch(&data, 1, &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, TrainError::NonFinite { step, .. } if step >= 1),
        "{msg}"
    );
    assert!(
        msg.contains("try a lower learning rate (--lr is now 1e30)"),
        "{msg}"
    );
}

#[test]
fn a_learning_rate_changes_without_recompiling() {
    let data = mnist().train.split(640).0;
    let mut t = trainer(64, 1e6, 0);
    t.set_hyperparameter("lr", 0.05).unwrap();
    t.epoch(&data, 1, &mut |_| {}).unwrap();
    let e = t.set_hyperparameter("beta1", 0.9).unwrap_err();
    assert_eq!(e.to_string(), "the program has no hyperparameter `beta1`");
}

#[test]
fn a_program_outside_the_interface_is_refused() {
    let model = mlp(8, &[784, 4, 10]).unwrap();
    let step = train_step(&model.graph, "loss", &Optimizer::adam(1e-3)).unwrap();
    let exe = Executable::compile(&step, &Options::default()).unwrap();
    // Adam's betas are inputs the trainer was not told about.
    let e = Trainer::new(exe, &[("lr", 0.1)], 0).err().unwrap();
    assert!(
        e.to_string()
            .starts_with("the program's input `beta1` is none of"),
        "{e}"
    );

    let b = kiln::frontend::GraphBuilder::new("no_labels");
    let x = b.input("x", kiln::compiler::DType::F32, [8, 784]);
    b.output("loss", &x.sum_all());
    let exe = Executable::compile(&b.finish().unwrap(), &Options::default()).unwrap();
    let e = Evaluator::new(exe, None).err().unwrap();
    assert_eq!(
        e.to_string(),
        "the program's input `labels` is missing, expected i32[rows]"
    );
}

#[test]
fn data_of_the_wrong_width_is_refused() {
    let model = mlp(8, &[100, 4, 10]).unwrap();
    let step = train_step(&model.graph, "loss", &Optimizer::sgd(0.1)).unwrap();
    let exe = Executable::compile(&step, &Options::default()).unwrap();
    let mut t = Trainer::new(exe, &[("lr", 0.1)], 0).unwrap();
    let data = mnist().test;
    assert_eq!(data.features(), 784);
    let e = t.epoch(&data, 1, &mut |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the data has 784 features per example, the model takes 100"
    );
}
