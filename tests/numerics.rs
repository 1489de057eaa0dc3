//! The executable's numerics check: NaN and infinities are reported where they first appear,
//! an input's apart from a kernel's, with the kernel, the node and the user's source line.

use kiln::compiler::interp::{NonFinite, RunError};
use kiln::compiler::kernel::{Expr, Kernel};
use kiln::compiler::{Array, DType, Graph, InputKind, Op, UnaryOp};
use kiln::frontend::GraphBuilder;
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;

/// `y = log(x - 1)` named `y`, scaled by 3 as output `z`; gives the graph and the line of the
/// `log`.
fn log_graph() -> (Graph, u32) {
    let b = GraphBuilder::new("logs");
    let x = b.input("x", DType::F32, [4]);
    let (y, line) = ((&x - 1.0).log().named("y"), line!());
    b.output("z", &(y * 3.0));
    (b.finish().unwrap(), line)
}

/// `g` compiled (fused or not) with the numerics check on.
fn checked(g: &Graph, fuse: bool) -> Executable {
    let options = Options {
        fuse,
        threads: 1,
        ..Options::default()
    };
    let mut exe = Executable::compile(g, &options).unwrap();
    exe.set_check_numerics(true);
    exe
}

/// The input `x`, of four elements.
fn inputs(values: [f32; 4]) -> HashMap<String, Array> {
    [(
        "x".to_string(),
        Array::from_f32([4], values.to_vec()).unwrap(),
    )]
    .into()
}

#[test]
fn a_nan_a_kernel_makes_is_reported_with_the_kernel_the_node_and_its_line() {
    let (g, line) = log_graph();
    // Unfused, the log is a kernel of its own.
    let mut exe = checked(&g, false);
    let err = exe.run(&inputs([2.0, 3.0, 0.5, 4.0])).unwrap_err();
    let RunError::NonFiniteResult {
        kernel,
        op,
        name,
        origin,
        value,
        index,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((*op, name.as_deref()), ("log", Some("y")));
    assert_eq!((*value, index.as_slice()), (NonFinite::NaN, &[2][..]));
    let origin = origin.as_ref().expect("built by the frontend");
    assert_eq!((&*origin.file, origin.line), (file!(), line));
    let Kernel::Loop(k) = &exe.program().kernels[*kernel] else {
        panic!("k{kernel} is a loop kernel");
    };
    let log = Op::Unary(UnaryOp::Log);
    assert!(
        (k.exprs.iter()).any(|(e, _)| matches!(e, Expr::Apply { op, .. } if *op == log)),
        "k{kernel} computes the log"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "kernel k{kernel} produced NaN in `log` %y at element [2] ({}:{line}:{})",
            file!(),
            origin.column
        )
    );
}

#[test]
fn fused_the_kernel_is_named_by_the_value_it_stores() {
    let (g, _) = log_graph();
    let err = checked(&g, true)
        .run(&inputs([2.0, 3.0, 0.5, 4.0]))
        .unwrap_err();
    // Fused, one kernel computes the log and the product and stores only the product.
    match err {
        RunError::NonFiniteResult {
            kernel: 0,
            op: "mul",
            value: NonFinite::NaN,
            ref index,
            ..
        } if index == &[2] => {}
        e => panic!("{e}"),
    }
}

#[test]
fn a_nan_in_an_input_is_reported_as_the_input_s() {
    let (g, _) = log_graph();
    let err = checked(&g, true)
        .run(&inputs([2.0, f32::NAN, 3.0, 4.0]))
        .unwrap_err();
    assert_eq!(
        err,
        RunError::NonFiniteInput {
            name: "x".into(),
            kind: InputKind::Data,
            value: NonFinite::NaN,
            index: vec![1],
        }
    );
    assert_eq!(err.to_string(), "input `x` holds NaN at element [1]");
}

#[test]
fn an_infinite_param_is_reported_before_any_kernel_runs() {
    let b = GraphBuilder::new("scale");
    let x = b.input("x", DType::F32, [4]);
    let w = b.param("w", DType::F64, []);
    b.output("y", &(x.cast(DType::F64) * w));
    let mut exe = checked(&b.finish().unwrap(), true);
    exe.set_state("w", &Array::scalar(DType::F64, f64::NEG_INFINITY))
        .unwrap();
    let err = exe.run(&inputs([1.0, 2.0, 3.0, 4.0])).unwrap_err();
    assert_eq!(err.to_string(), "param `w` holds -infinity");
}

#[test]
fn an_infinity_a_kernel_makes_is_reported() {
    let b = GraphBuilder::new("recip");
    let x = b.input("x", DType::F32, [4]);
    b.output("y", &x.recip());
    let err = checked(&b.finish().unwrap(), true)
        .run(&inputs([1.0, 2.0, 4.0, 0.0]))
        .unwrap_err();
    match err {
        RunError::NonFiniteResult {
            op: "recip",
            value: NonFinite::Infinity,
            ref index,
            ..
        } if index == &[3] => {}
        e => panic!("{e}"),
    }
}

#[test]
fn infinities_the_graph_asks_for_pass_but_nan_does_not() {
    let b = GraphBuilder::new("pads");
    let x = b.input("x", DType::F32, [4]);
    b.output("padded", &x.pad(&[1], &[1], f64::NEG_INFINITY));
    let mut exe = checked(&b.finish().unwrap(), true);
    let out = exe.run(&inputs([1.0, 2.0, 3.0, 4.0])).unwrap();
    assert_eq!(out[0].1.to_f64_vec()[0], f64::NEG_INFINITY);
    let b = GraphBuilder::new("pads");
    let x = b.input("x", DType::F32, [4]);
    b.output("padded", &x.log().pad(&[1], &[1], f64::NEG_INFINITY));
    let err = checked(&b.finish().unwrap(), true)
        .run(&inputs([1.0, -2.0, 3.0, 4.0]))
        .unwrap_err();
    assert!(
        matches!(err, RunError::NonFiniteResult { value: NonFinite::NaN, ref index, .. } if index == &[2]),
        "{err}"
    );
}

#[test]
fn with_the_check_off_nan_flows_through_and_on_a_clean_run_changes_nothing() {
    let (g, _) = log_graph();
    let mut exe = checked(&g, true);
    exe.set_check_numerics(false);
    assert!(!exe.check_numerics());
    let out = exe.run(&inputs([2.0, 3.0, 0.5, 4.0])).unwrap();
    assert!(out[0].1.to_f64_vec()[2].is_nan());
    let clean = inputs([2.0, 3.0, 1.5, 4.0]);
    let off = exe.run(&clean).unwrap();
    exe.set_check_numerics(true);
    assert_eq!(exe.run(&clean).unwrap(), off);
}
