//! Snapshots of the built-in models at each stage the compiler has so far: every model's
//! source graph, and for the small models the gradient graph and the training step for each
//! optimizer. A diff of one of these files is a diff of what kiln builds. Locations are left
//! out so that editing the model's source file moves no snapshot.
//!
//! The gradient graphs of the CNNs and the LSTM run to thousands of nodes, more than a review
//! reads; their gradients are checked against finite differences (tests/gradcheck.rs) and their
//! training steps against the interpreter (tests/models.rs) instead.

use kiln::compiler::optim::Optimizer;
use kiln::compiler::text::{PrintOptions, parse, print_with};
use kiln::compiler::train::{grad_graph, train_step};
use kiln::compiler::{Graph, verify};
use kiln::frontend::models::{BUILTINS, builtin};

/// The built-ins whose gradient and training graphs are snapshot.
const SMALL: &[&str] = &["linreg", "logreg", "mlp"];

fn text(g: &Graph) -> String {
    verify(g).unwrap();
    let s = print_with(g, PrintOptions { locations: false });
    assert_eq!(
        print_with(&parse(&s).unwrap(), PrintOptions { locations: false }),
        s
    );
    s
}

#[test]
fn builtin_source_graphs() {
    for name in BUILTINS {
        let m = builtin(name, &Default::default()).unwrap().unwrap();
        insta::assert_snapshot!(format!("{name}_source"), text(&m.graph));
    }
}

#[test]
fn builtin_grad_graphs() {
    for name in SMALL {
        let m = builtin(name, &Default::default()).unwrap().unwrap();
        insta::assert_snapshot!(
            format!("{name}_grad"),
            text(&grad_graph(&m.graph, "loss").unwrap())
        );
    }
}

#[test]
fn builtin_train_graphs() {
    let optimizers = [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.1, true),
        Optimizer::adam(1e-3),
        Optimizer::adamw(1e-3),
    ];
    for name in SMALL {
        let m = builtin(name, &Default::default()).unwrap().unwrap();
        for opt in &optimizers {
            let g = train_step(&m.graph, "loss", opt).unwrap();
            insta::assert_snapshot!(format!("{name}_train_{}", opt.name()), text(&g));
        }
    }
}
