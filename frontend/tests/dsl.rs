//! The DSL builds the graphs it says it builds, and reports mistakes at the user's line.

use kiln_compiler::{DType, Op, OpGroup};
use kiln_frontend::{BuildError, GraphBuilder, broadcast_shapes, graph};

fn ops(g: &kiln_compiler::Graph) -> Vec<&'static str> {
    g.topo_order()
        .into_iter()
        .map(|id| g.node(id).op.mnemonic())
        .collect()
}

#[test]
fn operators_broadcast_like_numpy() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [4, 3]);
    let bias = b.param("bias", DType::F32, [3]);
    let y = &x + &bias;
    assert_eq!(y.shape(), &[4, 3]);
    let z = 2.0 * &y - 1.0;
    assert_eq!(z.shape(), &[4, 3]);
    b.output("z", &z);
    let g = b.finish().unwrap();
    assert_eq!(
        ops(&g),
        [
            "input",
            "param",
            "reshape",
            "broadcast",
            "add",
            "constant",
            "reshape",
            "broadcast",
            "mul",
            "constant",
            "reshape",
            "broadcast",
            "sub"
        ]
    );
    kiln_compiler::verify(&g).unwrap();
}

#[test]
fn broadcast_shapes_follow_numpy() {
    assert_eq!(
        broadcast_shapes(&[4, 1, 3], &[5, 1]).unwrap().as_slice(),
        &[4, 5, 3]
    );
    assert_eq!(broadcast_shapes(&[], &[2]).unwrap().as_slice(), &[2]);
    assert!(broadcast_shapes(&[4, 3], &[4]).is_none());
}

#[test]
fn a_shape_mismatch_points_at_the_users_line() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [64, 784]);
    let w = b.param("w", DType::F32, [128, 10]);
    let line = line!() + 1;
    let y = x.matmul(&w);
    let z = y.relu() + 1.0;
    b.output("z", &z);
    let err = b.finish().unwrap_err();
    let BuildError::Type(e) = &err else {
        panic!("expected a type error, got {err}")
    };
    let origin = e.origin.as_ref().unwrap();
    assert_eq!(origin.file.as_ref(), file!());
    assert_eq!(origin.line, line);
    assert_eq!(
        err.to_string(),
        format!(
            "shape mismatch in dot at {}:{line}:15: [64,784] x [128,10]",
            file!()
        )
    );
}

#[test]
fn the_first_mistake_is_reported_and_later_ones_are_skipped() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2, 3]);
    let y = b.input("y", DType::F32, [4]);
    let bad = &x + &y;
    assert!(bad.node().is_none());
    let worse = bad.matmul(&x).sum(&[7]);
    assert!(worse.node().is_none());
    let err = b.finish().unwrap_err().to_string();
    assert!(err.starts_with("shape mismatch in add at "), "{err}");
    assert!(err.ends_with(": [2,3] vs [4]"), "{err}");
}

#[test]
fn dtype_mismatches_and_bad_axes_are_errors() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2, 3]);
    let y = b.input("y", DType::F64, [2, 3]);
    let _ = &x * &y;
    let err = b.finish().unwrap_err().to_string();
    assert!(err.starts_with("dtype mismatch in mul at "), "{err}");
    assert!(err.ends_with(": f32 vs f64"), "{err}");

    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2, 3]);
    let _ = x.sum(&[2]);
    let err = b.finish().unwrap_err().to_string();
    assert!(
        err.ends_with("axis 2 is out of range for a tensor of rank 2"),
        "{err}"
    );
}

#[test]
fn reductions_accept_negative_axes_and_keep_dims() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2, 3, 4]);
    assert_eq!(x.sum(&[-1]).shape(), &[2, 3]);
    assert_eq!(x.max_keepdims(&[0, -1]).shape(), &[1, 3, 1]);
    assert_eq!(x.mean(&[1]).shape(), &[2, 4]);
    assert_eq!(x.sum_all().shape(), &[] as &[usize]);
    assert_eq!(x.argmax(-1).shape(), &[2, 3]);
    assert_eq!(x.argmax(-1).dtype(), DType::I32);
    b.finish().unwrap();
}

#[test]
fn views_reshape_permute_and_window() {
    let b = GraphBuilder::new("t");
    let img = b.input("img", DType::F32, [8, 1, 28, 28]);
    let p = img.pad(&[0, 0, 2, 2], &[0, 0, 2, 2], 0.0);
    assert_eq!(p.shape(), &[8, 1, 32, 32]);
    let w = p.windows(&[5, 5], &[1, 1], &[1, 1]);
    assert_eq!(w.shape(), &[8, 1, 28, 28, 5, 5]);
    assert_eq!(img.reshape(&[8, -1]).shape(), &[8, 784]);
    assert_eq!(img.flatten().shape(), &[8 * 784]);
    assert_eq!(img.permute(&[0, 2, 3, 1]).shape(), &[8, 28, 28, 1]);
    assert_eq!(img.narrow(2, 3, 10).shape(), &[8, 1, 10, 28]);
    let cat = img.concat(&[&img], 1);
    assert_eq!(cat.shape(), &[8, 2, 28, 28]);
    let g = b.finish().unwrap();
    let views = g
        .node_ids()
        .filter(|&id| g.node(id).op.group() == OpGroup::View)
        .count();
    assert_eq!(views, 6);
}

#[test]
fn matmul_broadcasts_batch_axes() {
    let b = GraphBuilder::new("t");
    let a = b.input("a", DType::F32, [5, 4, 3]);
    let w = b.param("w", DType::F32, [3, 2]);
    assert_eq!(a.matmul(&w).shape(), &[5, 4, 2]);
    assert_eq!(a.t().shape(), &[5, 3, 4]);
    b.finish().unwrap();
}

#[test]
fn the_graph_macro_declares_leaves_and_outputs() {
    let g = graph! {
        fn two(x: input f32[4, 3], w: param f32[3, 2], s: state i32[]) -> (y, n) {
            let y = x.matmul(&w).tanh();
            (y, s.clone() + 1.0)
        }
    }
    .unwrap();
    assert_eq!(g.name(), "two");
    let names: Vec<&str> = g.outputs().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["y", "n"]);
    let s = g.input("s").unwrap();
    assert!(matches!(g.node(s).op, Op::Input { .. }));
    assert_eq!(g.node(g.output("n").unwrap()).ty.dtype, DType::I32);
}

#[test]
fn the_graph_macro_returns_mistakes_with_their_line() {
    let line = line!() + 3;
    let err = graph! {
        fn bad(x: input f32[4, 3], w: param f32[4, 2]) -> y {
            x.matmul(&w)
        }
    }
    .unwrap_err();
    let expected = format!(
        "shape mismatch in dot at {}:{line}:15: [4,3] x [4,2]",
        file!()
    );
    assert_eq!(err.to_string(), expected);
}

#[test]
fn outputs_and_updates_are_checked() {
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2]);
    let w = b.param("w", DType::F32, [3]);
    b.update("w", &x);
    let err = b.finish().unwrap_err().to_string();
    assert!(
        err.starts_with("the update of `w` has type f32[2], the state has type f32[3] at "),
        "{err}"
    );
    let b = GraphBuilder::new("t");
    let x = b.input("x", DType::F32, [2]);
    b.output("y", &x);
    b.output("y", &x);
    assert!(
        b.finish()
            .unwrap_err()
            .to_string()
            .starts_with("an output named `y` already exists")
    );
    drop(w);
}

#[test]
fn tensors_of_two_builders_do_not_mix() {
    let a = GraphBuilder::new("a");
    let b = GraphBuilder::new("b");
    let x = a.input("x", DType::F32, [2]);
    let y = b.input("y", DType::F32, [2]);
    let _ = &x + &y;
    assert!(
        a.finish()
            .unwrap_err()
            .to_string()
            .starts_with("tensors of two different graphs")
    );
}

#[test]
fn the_builtin_mlp_is_well_typed() {
    let g = kiln_frontend::models::builtin("mlp", &Default::default())
        .unwrap()
        .unwrap()
        .graph;
    kiln_compiler::verify(&g).unwrap();
    let loss = g.output("loss").unwrap();
    assert_eq!(g.node(loss).ty, kiln_compiler::Type::scalar(DType::F32));
    let logits = g
        .node_ids()
        .find(|&id| g.node(id).name.as_deref() == Some("logits"));
    assert_eq!(g.node(logits.unwrap()).ty.shape.as_slice(), &[64, 10]);
    assert!(kiln_frontend::models::builtin("nope", &Default::default()).is_none());
}
