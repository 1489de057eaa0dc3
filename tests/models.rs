//! The built-in models: each keeps the interface the trainer relies on, its compiled training
//! step computes what the interpreter computes, fused and unfused, and it learns.

mod common;

use common::Mnist;
use kiln::compiler::kernel::{eval, lower};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph, InputKind, Type, interp};
use kiln::frontend::Model;
use kiln::frontend::models::{BUILTINS, Mode, Settings, builtin};
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;

/// The built-in `name` at batch `batch` in `mode`, with a width of 16 where it has one (the
/// models' own shapes otherwise).
fn model(name: &str, batch: usize, mode: Mode) -> Model {
    let settings = Settings {
        batch,
        mode,
        width: Some(16),
        ..Settings::default()
    };
    builtin(name, &settings).unwrap().unwrap()
}

/// The built-ins made for larger images than MNIST's digits (and sized for them: ResNet-18
/// has 11 million parameters): the interpreter would take minutes on their MNIST steps, so
/// the tests on digits skip them and `medium_builtins_compile_to_what_the_interpreter_computes`
/// checks each on small images instead.
const MEDIUM: &[&str] = &["vgg", "resnet18"];

/// The built-ins the tests on MNIST digits run (all but [`MEDIUM`]).
fn small_builtins() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().copied().filter(|n| !MEDIUM.contains(n))
}

/// Inputs of `name`, kind and type, sorted by name.
fn inputs(g: &Graph) -> Vec<(String, InputKind, Type)> {
    let mut v: Vec<_> = g
        .inputs()
        .into_iter()
        .map(|id| {
            let n = g.node(id);
            let (kind, name) = n.op.as_input().unwrap();
            (name.to_string(), kind, n.ty.clone())
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The interface of the models module docs: data inputs `x`, `labels` and (in training, for a
/// model with dropout) `step_seed`; outputs `loss`, `accuracy`, `logits`, and in evaluation
/// `prediction` and `probability`; the same parameters and state in both modes, state updated
/// in training only.
#[test]
fn every_builtin_keeps_the_trainer_interface() {
    let batch = 5;
    for name in BUILTINS {
        let train = model(name, batch, Mode::Train).graph;
        let eval = model(name, batch, Mode::Eval).graph;
        for (g, mode) in [(&train, Mode::Train), (&eval, Mode::Eval)] {
            let outputs: Vec<(&str, Type)> = g
                .outputs()
                .iter()
                .map(|(n, id)| (n.as_str(), g.node(*id).ty.clone()))
                .collect();
            let mut want = vec![
                ("loss", Type::scalar(DType::F32)),
                ("accuracy", Type::scalar(DType::F32)),
                ("logits", Type::new(DType::F32, [batch, 10])),
            ];
            if mode == Mode::Eval {
                want.push(("prediction", Type::new(DType::I32, [batch])));
                want.push(("probability", Type::new(DType::F32, [batch])));
            }
            assert_eq!(outputs, want, "{name} {mode:?}");
            let data: Vec<(String, Type)> = inputs(g)
                .into_iter()
                .filter(|(_, kind, _)| *kind == InputKind::Data)
                .map(|(n, _, t)| (n, t))
                .collect();
            let mut want = vec![
                ("labels".to_string(), Type::new(DType::I32, [batch])),
                ("x".to_string(), Type::new(DType::F32, [batch, 1, 28, 28])),
            ];
            if *name == "inception" && mode == Mode::Train {
                want.push(("step_seed".to_string(), Type::scalar(DType::I32)));
                want.sort_by(|a, b| a.0.cmp(&b.0));
            }
            assert_eq!(data, want, "{name} {mode:?}");
        }
        let persistent = |g: &Graph| -> Vec<_> {
            inputs(g)
                .into_iter()
                .filter(|(_, kind, _)| kind.is_persistent())
                .collect()
        };
        assert_eq!(persistent(&train), persistent(&eval), "{name}");
        let state: Vec<String> = persistent(&train)
            .into_iter()
            .filter(|(_, kind, _)| *kind == InputKind::State)
            .map(|(n, _, _)| n)
            .collect();
        let mut updated: Vec<String> = train.updates().iter().map(|(n, _)| n.clone()).collect();
        updated.sort();
        assert_eq!(updated, state, "{name}: training updates every state");
        assert!(
            eval.updates().is_empty(),
            "{name}: evaluation updates nothing"
        );
        assert_eq!(
            state.is_empty(),
            !["resnet", "resnet18"].contains(name),
            "{name}: only the ResNets have state"
        );
    }
}

/// Values for every input of the training step `g` of `m`: a batch of MNIST digits from
/// `start`, parameters as the model draws them, learning rate 0.05, seed 3.
fn step_inputs(
    m: &Model,
    g: &Graph,
    mnist: &Mnist,
    start: usize,
    batch: usize,
) -> HashMap<String, Array> {
    let mut values = mnist.batch(start, batch);
    values.extend(m.initial_values(g, 1));
    values.insert("lr".to_string(), Array::scalar(DType::F32, 0.05));
    values.insert("step_seed".to_string(), Array::scalar(DType::I32, 3.0));
    values.retain(|name, _| g.input(name).is_some());
    values
}

/// Every built-in's SGD training step on 8 digits, compiled fused and unfused, against the
/// interpreter; and its evaluation graph likewise. With the models' own initial parameters the
/// activations stay of magnitude about 1, so the f32 sums (at most 784 terms in a first
/// layer, 8 x 784 in a first weight gradient) move results by about (n / 16) * 6e-8 of the
/// terms' magnitudes, under 1e-5 of max(1, |expected|) except where batch norm's statistics
/// enter sums that cancel (see tests/layers.rs), which the 5e-5 bound covers.
#[test]
fn every_builtin_step_compiles_to_what_the_interpreter_computes() {
    let mnist = Mnist::load();
    let batch = 8;
    for name in small_builtins() {
        let tolerance = if name == "resnet" { 5e-5 } else { 1e-5 };
        for mode in [Mode::Train, Mode::Eval] {
            let m = model(name, batch, mode);
            let g = match mode {
                Mode::Train => train_step(&m.graph, "loss", &Optimizer::sgd(0.05)).unwrap(),
                Mode::Eval => m.graph.clone(),
            };
            let values = step_inputs(&m, &g, &mnist, 100, batch);
            for fuse in [true, false] {
                let d = common::jit_error(&g, &values, fuse, 2);
                assert!(d < tolerance, "{name} {mode:?} fuse={fuse}: {d:e}");
            }
        }
    }
}

/// Fusion computes every built-in's training step exactly as the interpreter does (the kernel
/// program run element by element through the interpreter's primitives), at batch 2.
#[test]
fn fusing_every_builtin_step_is_exact() {
    let mnist = Mnist::load();
    for name in small_builtins() {
        let m = model(name, 2, Mode::Train);
        let g = train_step(&m.graph, "loss", &Optimizer::sgd(0.05)).unwrap();
        let values = step_inputs(&m, &g, &mnist, 0, 2);
        let want = interp::run(&g, &values).unwrap();
        let got = eval(&lower(&g, true), &values);
        assert_eq!(got.outputs, want.outputs, "{name}");
        assert_eq!(got.updates, want.updates, "{name}");
    }
}

/// Every built-in, compiled, takes 30 steps of Adam on one batch of 32 digits (a new dropout
/// seed each step): its loss falls under 60% of the first step's (about log 10 = 2.3 for the
/// classifiers), which only steps along the gradient do; the slowest, the LSTM (through 28
/// steps of gates), ends near 46%, the others under 8%.
#[test]
fn every_builtin_learns_a_batch() {
    let mnist = Mnist::load();
    let batch = 32;
    for name in small_builtins() {
        let m = model(name, batch, Mode::Train);
        // The recurrent model's gradients pass through 28 sigmoid and tanh gates: it takes a
        // larger step to move as far in as many steps.
        let opt = Optimizer::adam(if name == "lstm" { 1e-2 } else { 3e-3 });
        let g = train_step(&m.graph, "loss", &opt).unwrap();
        let mut exe = Executable::compile(&g, &Options::default()).unwrap();
        for (n, v) in m.initial_values(&g, 1) {
            exe.set_state(&n, &v).unwrap();
        }
        let mut data = mnist.batch(200, batch);
        for (n, v) in opt.hyperparameters() {
            data.insert(n.to_string(), Array::scalar(DType::F32, v));
        }
        let mut losses = vec![];
        for step in 0..30 {
            if g.input("step_seed").is_some() {
                data.insert("step_seed".into(), Array::scalar(DType::I32, step as f64));
            }
            exe.execute(&data).unwrap();
            losses.push(exe.output("loss").unwrap().to_f64_vec()[0]);
        }
        assert!(
            losses[29] < 0.6 * losses[0],
            "{name} does not learn: {losses:?}"
        );
    }
}

/// The larger image models, scaled down: the same layers on 3x8x8 images (the Keras CNN, whose
/// three unpadded convolutions and pools need more, on 3x30x30) at batch 4 (at batch 2,
/// ResNet-18's last batch norms would normalize 2 values per channel, whose variance is
/// mostly cancellation). Their SGD training
/// steps and evaluation graphs compile, fused and unfused, to what the interpreter computes,
/// within the bound of `every_builtin_step_compiles_to_what_the_interpreter_computes`: f32 sums
/// of at most 1152 terms (a 3x3 convolution of 128 channels), and batch norm's statistics.
/// Fusion alone is exact. Their 3x3 convolutions of 64 channels or more go through Winograd's
/// algorithm, so this checks it inside whole models too.
#[test]
fn medium_builtins_compile_to_what_the_interpreter_computes() {
    let batch = 4;
    for (name, side) in [("cnn", 30), ("vgg", 8), ("resnet18", 8)] {
        for mode in [Mode::Train, Mode::Eval] {
            let settings = Settings {
                batch,
                mode,
                input: vec![3, side, side],
                ..Settings::default()
            };
            let m = builtin(name, &settings).unwrap().unwrap();
            let g = match mode {
                Mode::Train => train_step(&m.graph, "loss", &Optimizer::sgd(0.05)).unwrap(),
                Mode::Eval => m.graph.clone(),
            };
            let mut rng = common::Rng::new(side as u64);
            let pixels = rng.vec(batch * 3 * side * side, 0.0, 1.0);
            let pixels = pixels.into_iter().map(|v| v as f32).collect();
            let mut values: HashMap<String, Array> = m.initial_values(&g, 1).into_iter().collect();
            values.insert(
                "x".into(),
                Array::from_f32([batch, 3, side, side], pixels).unwrap(),
            );
            values.insert(
                "labels".into(),
                Array::from_i32([batch], vec![3, 7, 0, 9]).unwrap(),
            );
            values.insert("lr".into(), Array::scalar(DType::F32, 0.05));
            values.retain(|n, _| g.input(n).is_some());
            for fuse in [true, false] {
                let d = common::jit_error(&g, &values, fuse, 2);
                assert!(d < 5e-5, "{name} {mode:?} fuse={fuse}: {d:e}");
            }
            // The kernel-IR evaluator takes half a minute on ResNet-18's step; its layers are
            // those of `resnet`, whose fusion `fusing_every_builtin_step_is_exact` checks.
            if mode == Mode::Train && name != "resnet18" {
                let want = interp::run(&g, &values).unwrap();
                let got = eval(&lower(&g, true), &values);
                assert_eq!(got.outputs, want.outputs, "{name}");
                assert_eq!(got.updates, want.updates, "{name}");
            }
        }
    }
}
