//! Fusion computes what the graph computes: programs lowered from the built-in training steps,
//! fused and unfused, evaluated by the kernel-IR evaluator, equal the interpreter's results.

mod common;

use kiln::compiler::kernel::{eval, lower};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph, InputKind, interp};
use std::collections::HashMap;

/// Random values for every input of `g`: data in [-1, 1) (labels in 0..10), params small.
fn inputs(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut rng = common::Rng::new(seed);
    g.inputs()
        .into_iter()
        .map(|id| {
            let n = g.node(id);
            let (kind, name) = n.op.as_input().unwrap();
            let count = n.ty.numel();
            let a = match (n.ty.dtype, kind) {
                (DType::I32, _) => Array::from_i32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(0.0, 10.0) as i32).collect(),
                ),
                (DType::F32, InputKind::Data) if n.ty.rank() == 0 => {
                    Array::from_f32([], vec![0.05])
                }
                (DType::F32, _) => Array::from_f32(
                    &n.ty.shape,
                    (0..count).map(|_| rng.range(-0.5, 0.5) as f32).collect(),
                ),
                (d, _) => panic!("no generator for {d}"),
            };
            (name.to_string(), a.unwrap())
        })
        .collect()
}

fn check(g: &Graph, fuse: bool) -> String {
    let p = lower(g, fuse);
    let values = inputs(g, 3);
    let want = interp::run(g, &values).unwrap();
    let got = eval(&p, &values);
    assert_eq!(
        got.outputs, want.outputs,
        "outputs differ (fuse: {fuse})\n{p}"
    );
    assert_eq!(
        got.updates, want.updates,
        "updates differ (fuse: {fuse})\n{p}"
    );
    p.to_string()
}

#[test]
fn mlp_train_steps_lower_to_programs_that_compute_the_same() {
    let m = kiln::frontend::models::mlp(8, &[12, 6, 4]).unwrap();
    for opt in [Optimizer::sgd(0.1), Optimizer::adam(1e-3)] {
        let g = train_step(&m.graph, "loss", &opt).unwrap();
        let fused = check(&g, true);
        let unfused = check(&g, false);
        if opt.name() == "sgd" {
            println!("{fused}");
        }
        assert!(fused.matches("  k").count() < unfused.matches("  k").count());
    }
}
