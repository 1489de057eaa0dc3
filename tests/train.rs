//! The training runtime: determinism, exact continuation, evaluation over every example, and
//! the errors of a run that diverges or a program whose inputs the data does not have.

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType};
use kiln::frontend::models::mlp;
use kiln::runtime::data::{Dataset, Mnist};
use kiln::runtime::train::{Evaluator, GraphSource, TrainError, Trainer};
use kiln::runtime::{Executable, Options};
use std::path::Path;

/// The embedded MNIST with each image as a row of 784 pixels, as [`mlp`] takes it.
fn mnist() -> Mnist {
    let m = Mnist::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("data")).unwrap();
    let rows = |d: Dataset| {
        let x = d.column("x").unwrap().clone();
        let n = d.len();
        d.with_column("x", x.reshape([n, 784]).unwrap()).unwrap()
    };
    Mnist {
        train: rows(m.train),
        test: rows(m.test),
    }
}

/// The first `n` examples of `d`.
fn first(d: &Dataset, n: usize) -> Dataset {
    d.select(&(0..n).collect::<Vec<_>>())
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
fn losses(t: &mut Trainer, data: &Dataset, epochs: std::ops::RangeInclusive<usize>) -> Vec<f64> {
    let mut out = Vec::new();
    for epoch in epochs {
        t.epoch(data, epoch, &mut |r| {
            out.push(r.metrics.get("loss").unwrap())
        })
        .unwrap();
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
    let data = first(&mnist().train, 2048);
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
    let data = first(&mnist().train, 1024);
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

/// An evaluator of the MLP's graph in batches of up to `batch` rows, counting the programs
/// it builds.
fn evaluator(batch: usize, built: std::rc::Rc<std::cell::RefCell<Vec<usize>>>) -> Evaluator {
    let graphs: GraphSource = Box::new(move |rows| {
        built.borrow_mut().push(rows);
        Ok(Some(mlp(rows, &[784, 32, 10])?.graph))
    });
    Evaluator::new(batch, graphs, Options::default())
}

#[test]
fn evaluation_covers_every_example_with_a_program_per_batch_size() {
    let test = first(&mnist().test, 1234);
    let t = trainer(64, 0.05, 1);
    let built = std::rc::Rc::default();
    let mut parts = evaluator(500, std::rc::Rc::clone(&built));
    parts.load_state(t.executable()).unwrap();
    let mut whole = evaluator(1234, std::rc::Rc::default());
    whole.load_state(t.executable()).unwrap();
    let (a, b) = (
        parts.evaluate(&test).unwrap(),
        whole.evaluate(&test).unwrap(),
    );
    assert_eq!(
        *built.borrow(),
        [500, 234],
        "the remainder's program, compiled once"
    );
    parts.evaluate(&first(&test, 1000)).unwrap();
    assert_eq!(*built.borrow(), [500, 234], "cached");
    // Same per-example values; the means differ only by f32 summation order.
    let (la, lb) = (a.get("loss").unwrap(), b.get("loss").unwrap());
    let (aa, ab) = (a.get("accuracy").unwrap(), b.get("accuracy").unwrap());
    assert!((la - lb).abs() <= 1e-5 * lb, "{a:?} {b:?}");
    assert!((aa - ab).abs() < 1e-6, "{a:?} {b:?}");
    assert!(aa > 0.0 && aa < 0.5, "untrained: {a:?}");
    // Batches of one row where a graph of the remainder's size cannot be had.
    let graphs: GraphSource = Box::new(move |rows| match rows {
        500 | 1 => Ok(Some(mlp(rows, &[784, 32, 10])?.graph)),
        _ => Ok(None),
    });
    let mut ones = Evaluator::new(500, graphs, Options::default());
    ones.load_state(t.executable()).unwrap();
    let c = ones.evaluate(&test).unwrap();
    assert!(
        (c.get("loss").unwrap() - lb).abs() <= 1e-5 * lb,
        "{c:?} {b:?}"
    );
    assert!(
        (c.get("accuracy").unwrap() - ab).abs() < 1e-6,
        "{c:?} {b:?}"
    );
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_the_learning_rate() {
    let data = first(&mnist().train, 640);
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
    let data = first(&mnist().train, 640);
    let mut t = trainer(64, 1e6, 0);
    t.set_hyperparameter("lr", 0.05).unwrap();
    t.epoch(&data, 1, &mut |_| {}).unwrap();
    let e = t.set_hyperparameter("beta1", 0.9).unwrap_err();
    assert_eq!(e.to_string(), "the program has no hyperparameter `beta1`");
}

#[test]
fn an_input_the_data_lacks_is_refused_naming_both_sides_before_any_step() {
    let model = mlp(8, &[784, 4, 10]).unwrap();
    let step = train_step(&model.graph, "loss", &Optimizer::adam(1e-3)).unwrap();
    let exe = Executable::compile(&step, &Options::default()).unwrap();
    // Adam's betas are inputs the trainer was not told about: they must be columns then.
    let mut t = Trainer::new(exe, &[("lr", 0.1)], 0).unwrap();
    let data = first(&mnist().train, 64);
    let e = t
        .epoch(&data, 1, &mut |_| panic!("no step runs"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the program's input `beta1` takes a scalar f32[], but it is not a column of the data \
         (its columns: x, labels), nor step_seed, nor a hyperparameter (the optimizer's: lr)"
    );

    let b = kiln::frontend::GraphBuilder::new("no_loss");
    let x = b.input("x", DType::F32, [8, 784]);
    b.output("total", &x.sum_all());
    let exe = Executable::compile(&b.finish().unwrap(), &Options::default()).unwrap();
    let e = Trainer::new(exe, &[], 0).err().unwrap();
    assert_eq!(
        e.to_string(),
        "the program's output `loss` is missing, expected a float scalar"
    );
}

#[test]
fn a_column_of_another_type_is_refused_naming_both() {
    let model = mlp(8, &[100, 4, 10]).unwrap();
    let step = train_step(&model.graph, "loss", &Optimizer::sgd(0.1)).unwrap();
    let exe = Executable::compile(&step, &Options::default()).unwrap();
    let mut t = Trainer::new(exe, &[("lr", 0.1)], 0).unwrap();
    let data = mnist().test;
    let e = t.epoch(&data, 1, &mut |_| {}).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the program's input `x` takes examples of type f32[100], but column `x` of the data \
         holds f32[784]"
    );
    let labels = Array::full(DType::F32, [data.len()], 0.0);
    let data = data.with_column("labels", labels).unwrap();
    let e = t.check(&data).unwrap_err();
    assert!(
        e.to_string().contains("takes examples of type f32[100]"),
        "{e}"
    );
}

#[test]
fn a_batch_larger_than_the_data_is_refused() {
    let mut t = trainer(64, 0.05, 0);
    let e = t
        .epoch(&first(&mnist().train, 10), 1, &mut |_| {})
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "the data has 10 examples, fewer than one batch of 64"
    );
}
