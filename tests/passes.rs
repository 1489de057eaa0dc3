//! The optimization passes on the built-in MLP's training step (SGD and Adam): the optimized
//! graph verifies, has fewer nodes, and computes the same loss, metrics and updates over
//! several steps, bit for bit.
//!
//! Bitwise, not within an ulp, because every rewrite is exact under the interpreter's
//! semantics: folding computes with the interpreter's own `eval_op`, CSE and DCE only remove
//! repeated or unused work, and no simplification reassociates arithmetic or touches a signed
//! zero or a NaN. Any difference at all is a bug.

mod common;

use common::Rng;
use kiln::compiler::optim::Optimizer;
use kiln::compiler::passes::{OptimizeStats, optimize};
use kiln::compiler::text::{PrintOptions, print_with};
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph, interp, verify};
use kiln::frontend::Model;
use std::collections::HashMap;

/// The MLP, its training step under `opt`, and that step optimized.
fn optimized_step(opt: &Optimizer) -> (Model, Graph, Graph, OptimizeStats) {
    let model = kiln::frontend::models::builtin("mlp", &Default::default())
        .expect("mlp is built in")
        .expect("mlp is well typed");
    let g = train_step(&model.graph, "loss", opt).expect("the mlp trains");
    let mut optimized = g.clone();
    let stats = optimize(&mut optimized);
    (model, g, optimized, stats)
}

/// Random data for `g`'s `x` (pixels in [0, 1)) and `labels` (classes 0..10), and the
/// optimizer's hyperparameters.
fn data(g: &Graph, opt: &Optimizer, rng: &mut Rng) -> HashMap<String, Array> {
    let shape = |name: &str| {
        g.node(g.input(name).expect("an mlp input"))
            .ty
            .shape
            .clone()
    };
    let (xs, ls) = (shape("x"), shape("labels"));
    let pixels = rng.vec(xs.iter().product(), 0.0, 1.0);
    let labels = (0..ls[0]).map(|_| (rng.uniform() * 10.0) as i32).collect();
    let mut data = HashMap::from([
        (
            "x".to_string(),
            Array::from_f32(&xs, pixels.into_iter().map(|p| p as f32).collect()).unwrap(),
        ),
        ("labels".to_string(), Array::from_i32(&ls, labels).unwrap()),
    ]);
    for (name, value) in opt.hyperparameters() {
        data.insert(name.to_string(), Array::scalar(DType::F32, value));
    }
    data
}

/// Checks the optimized step of `opt` and returns it with its stats.
fn check(opt: &Optimizer) -> (Graph, OptimizeStats) {
    let (model, g, optimized, stats) = optimized_step(opt);
    assert_eq!(verify(&optimized), Ok(()));
    assert!(stats.converged, "{stats:?}");
    assert!(
        stats.nodes_after < stats.nodes_before,
        "{} nodes became {}",
        stats.nodes_before,
        stats.nodes_after
    );
    let mut state: HashMap<String, Array> = model.initial_values(&g, 0).into_iter().collect();
    let mut rng = Rng::new(7);
    for step in 0..3 {
        let mut inputs = data(&g, opt, &mut rng);
        inputs.extend(state.clone());
        let expected = interp::run(&g, &inputs).unwrap();
        let got = interp::run(&optimized, &inputs).unwrap();
        assert!(expected == got, "step {step}: the optimized graph differs");
        state.extend(expected.updates);
    }
    (optimized, stats)
}

fn text(g: &Graph) -> String {
    print_with(g, PrintOptions { locations: false })
}

#[test]
fn the_optimized_sgd_step_computes_the_same_values() {
    let (g, stats) = check(&Optimizer::sgd(0.1));
    eprintln!("mlp SGD step: {stats:?}");
    insta::assert_snapshot!(text(&g));
}

#[test]
fn the_optimized_adam_step_computes_the_same_values() {
    let (g, stats) = check(&Optimizer::adam(1e-3));
    eprintln!("mlp Adam step: {stats:?}");
    insta::assert_snapshot!(text(&g));
}
