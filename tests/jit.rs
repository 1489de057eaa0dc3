//! The JIT computes what the interpreter computes: training steps and random graphs, fused and
//! unfused.

mod common;

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph, InputKind, interp};
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;

/// Random values for every input of `g`: labels in 0..10, scalars 0.05, others in [-0.5, 0.5).
fn inputs(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut rng = common::Rng::new(seed);
    g.inputs()
        .into_iter()
        .map(|id| {
            let n = g.node(id);
            let (_, name) = n.op.as_input().unwrap();
            let count = n.ty.numel();
            let a = match n.ty.dtype {
                DType::I32 => Array::from_i32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(0.0, 10.0) as i32).collect(),
                ),
                DType::F32 if n.ty.rank() == 0 => Array::from_f32([], vec![0.05]),
                DType::F32 => Array::from_f32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(-0.5, 0.5) as f32).collect(),
                ),
                d => panic!("no generator for {d}"),
            };
            (name.to_string(), a.unwrap())
        })
        .collect()
}

/// Runs `g` once in the interpreter and once compiled; returns the largest difference
/// relative to `max(1, |expected|)` over outputs and updated state.
fn compare(g: &Graph, fuse: bool, threads: usize) -> f64 {
    let values = inputs(g, 5);
    let want = interp::run(g, &values).unwrap();
    let options = Options {
        optimize: true,
        fuse,
        threads,
        keep_clif: false,
    };
    let mut exe = Executable::compile(g, &options).unwrap();
    let mut data = HashMap::new();
    for id in g.inputs() {
        let (kind, name) = g.node(id).op.as_input().unwrap();
        if kind == InputKind::Data {
            data.insert(name.to_string(), values[name].clone());
        } else {
            exe.set_state(name, &values[name]).unwrap();
        }
    }
    let got = exe.run(&data).unwrap();
    let mut worst: f64 = 0.0;
    let mut diff = |name: &str, a: &Array, b: &Array| {
        assert_eq!(a.ty(), b.ty(), "{name}");
        for (x, y) in a.to_f64_vec().iter().zip(b.to_f64_vec()) {
            let d = (x - y).abs() / y.abs().max(1.0);
            assert!(
                d.is_finite() || (x.is_nan() && y.is_nan()),
                "{name}: {x} vs {y}"
            );
            worst = worst.max(if d.is_nan() { 0.0 } else { d });
        }
    };
    for ((n, a), (_, b)) in got.iter().zip(&want.outputs) {
        diff(n, a, b);
    }
    for (n, b) in &want.updates {
        diff(n, &exe.state(n).unwrap(), b);
    }
    worst
}

#[test]
fn mlp_train_steps_match_the_interpreter() {
    let m = kiln::frontend::models::mlp(16, &[20, 12, 10]).unwrap();
    for opt in [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.1, true),
        Optimizer::adam(1e-3),
    ] {
        let g = train_step(&m.graph, "loss", &opt).unwrap();
        for fuse in [true, false] {
            for threads in [1, 2] {
                let d = compare(&g, fuse, threads);
                assert!(
                    d < 1e-5,
                    "{} fuse={fuse} threads={threads}: {d:e}",
                    opt.name()
                );
            }
        }
    }
}
