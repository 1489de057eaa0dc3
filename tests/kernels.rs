//! Fusion computes what the graph computes: programs lowered from the built-in training steps,
//! fused and unfused, evaluated by the kernel-IR evaluator, equal the interpreter's results.

mod common;

use kiln::compiler::kernel::{eval, lower};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Graph, interp};

fn check(g: &Graph, fuse: bool) -> String {
    let p = lower(g, fuse);
    let values = common::training_inputs(g, 3);
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
