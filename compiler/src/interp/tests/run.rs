//! `run`: binding inputs by name, evaluating what outputs and updates need.

use super::{arr, scalar};
use crate::array::Array;
use crate::graph::{Graph, NodeId};
use crate::interp::{Evaluation, RunError, evaluate, run};
use crate::op::{BinaryOp, InputKind, Op, UnaryOp};
use crate::types::{DType, Type};
use DType::{F32, F64, I32};
use std::collections::HashMap;

fn input(g: &mut Graph, kind: InputKind, name: &str, ty: Type) -> NodeId {
    g.add(
        Op::Input {
            kind,
            name: name.into(),
            ty,
        },
        &[],
        None,
    )
    .unwrap()
}

fn add(g: &mut Graph, op: Op, operands: &[NodeId]) -> NodeId {
    g.add(op, operands, None).unwrap()
}

fn bind(values: &[(&str, Array)]) -> HashMap<String, Array> {
    values
        .iter()
        .map(|(n, a)| (n.to_string(), a.clone()))
        .collect()
}

/// A training-step-shaped graph: `y = x * w`, `w <- w - x`, `step <- step + 1`, and a node
/// (`exp(x)`) nothing needs. Returns it with that node.
fn step_graph() -> (Graph, NodeId) {
    let mut g = Graph::new("step");
    let x = input(&mut g, InputKind::Data, "x", Type::new(F32, [2]));
    let w = input(&mut g, InputKind::Param, "w", Type::new(F32, [2]));
    let step = input(&mut g, InputKind::State, "step", Type::scalar(I32));
    let unused = add(&mut g, Op::Unary(UnaryOp::Exp), &[x]);
    let y = add(&mut g, Op::Binary(BinaryOp::Mul), &[x, w]);
    let w2 = add(&mut g, Op::Binary(BinaryOp::Sub), &[w, x]);
    let one = add(&mut g, Op::Constant(scalar(I32, 1.0)), &[]);
    let step2 = add(&mut g, Op::Binary(BinaryOp::Add), &[step, one]);
    g.set_output("y", y).unwrap();
    g.set_update("w", w2).unwrap();
    g.set_update("step", step2).unwrap();
    (g, unused)
}

fn step_inputs() -> HashMap<String, Array> {
    bind(&[
        ("x", arr(F32, &[2], &[1.0, 2.0])),
        ("w", arr(F32, &[2], &[3.0, -4.0])),
        ("step", scalar(I32, 41.0)),
    ])
}

/// A graph with an input of every kind at every element type, each an output of its own.
/// Returns it with values for its inputs.
pub(super) fn every_kind_and_dtype() -> (Graph, HashMap<String, Array>) {
    let mut g = Graph::new("inputs");
    let mut values = HashMap::new();
    for kind in [InputKind::Data, InputKind::Param, InputKind::State] {
        for d in DType::ALL {
            let name = format!("{}_{d}", kind.mnemonic());
            let id = input(&mut g, kind, &name, Type::new(d, [2]));
            g.set_output(format!("out_{name}"), id).unwrap();
            values.insert(name, arr(d, &[2], &[0.0, 1.0]));
        }
    }
    (g, values)
}

#[test]
fn inputs_of_every_kind_and_dtype_are_bound() {
    let (g, values) = every_kind_and_dtype();
    let eval = run(&g, &values).unwrap();
    assert_eq!(eval.outputs.len(), values.len());
    for (name, value) in &eval.outputs {
        assert_eq!(value, &values[name.strip_prefix("out_").unwrap()]);
    }
}

#[test]
fn outputs_and_updates_are_computed_in_graph_order() {
    let (g, _) = step_graph();
    let eval = run(&g, &step_inputs()).unwrap();
    let expected = Evaluation {
        outputs: vec![("y".into(), arr(F32, &[2], &[3.0, -8.0]))],
        updates: vec![
            ("w".into(), arr(F32, &[2], &[2.0, -6.0])),
            ("step".into(), scalar(I32, 42.0)),
        ],
    };
    assert_eq!(eval, expected);
    assert_eq!(eval.output("y"), Some(&expected.outputs[0].1));
    assert_eq!(eval.update("step"), Some(&scalar(I32, 42.0)));
    assert_eq!(eval.update("x"), None);
}

#[test]
fn only_needed_nodes_are_evaluated() {
    let (g, unused) = step_graph();
    let needed = g.live_nodes();
    assert_eq!(needed.len(), g.len() - 1);
    assert!(!needed.contains(&unused));
    let values = evaluate(&g, &step_inputs(), &crate::collective::Single);
    assert!(!values.contains_key(&unused));
    assert_eq!(values.len(), g.len() - 1);
}

#[test]
fn a_missing_input_is_named_with_its_kind_and_type() {
    let (g, _) = step_graph();
    let mut inputs = step_inputs();
    inputs.remove("w");
    let err = run(&g, &inputs).unwrap_err();
    assert_eq!(
        err,
        RunError::MissingInput {
            name: "w".into(),
            kind: InputKind::Param,
            ty: Box::new(Type::new(F32, [2]))
        }
    );
    assert_eq!(err.to_string(), "missing param `w` (f32[2])");
    inputs.remove("x");
    assert_eq!(
        run(&g, &inputs).unwrap_err().to_string(),
        "missing input `x` (f32[2])"
    );
}

#[test]
fn an_unexpected_input_is_refused() {
    let (g, _) = step_graph();
    let mut inputs = step_inputs();
    inputs.insert("z".into(), scalar(F32, 0.0));
    inputs.insert("a".into(), scalar(F32, 0.0));
    let err = run(&g, &inputs).unwrap_err();
    assert_eq!(err, RunError::UnexpectedInput("a".into()));
    assert_eq!(
        err.to_string(),
        "unexpected input `a`: the graph has no input of that name"
    );
}

#[test]
fn a_mistyped_input_is_refused() {
    let (g, _) = step_graph();
    let mut inputs = step_inputs();
    inputs.insert("x".into(), arr(F64, &[2], &[1.0, 2.0]));
    let err = run(&g, &inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input `x` has type f64[2], the graph expects f32[2]"
    );
    inputs.insert("x".into(), arr(F32, &[1, 2], &[1.0, 2.0]));
    let err = run(&g, &inputs).unwrap_err();
    assert_eq!(
        err.to_string(),
        "input `x` has type f32[1,2], the graph expects f32[2]"
    );
}

#[test]
fn a_graph_with_no_outputs_evaluates_nothing() {
    let mut g = Graph::new("empty");
    let x = input(&mut g, InputKind::Data, "x", Type::new(F32, [0, 3]));
    add(&mut g, Op::Unary(UnaryOp::Log), &[x]);
    let eval = run(&g, &bind(&[("x", arr(F32, &[0, 3], &[]))])).unwrap();
    assert_eq!(
        eval,
        Evaluation {
            outputs: vec![],
            updates: vec![]
        }
    );
}

#[test]
fn one_node_may_be_several_outputs_and_random_depends_on_the_seed() {
    let mut g = Graph::new("noise");
    let seed = input(&mut g, InputKind::Data, "seed", Type::scalar(I32));
    let r = add(
        &mut g,
        Op::Random {
            stream: 0,
            ty: Type::new(F64, [2]),
        },
        &[seed],
    );
    g.set_output("a", r).unwrap();
    g.set_output("b", r).unwrap();
    let eval = run(&g, &bind(&[("seed", scalar(I32, 0.0))])).unwrap();
    assert_eq!(eval.output("a"), eval.output("b"));
    let first = [random_at(0, 0), random_at(0, 1)];
    assert_eq!(eval.output("a").unwrap().as_f64(), Some(&first[..]));
    let other = run(&g, &bind(&[("seed", scalar(I32, 1.0))])).unwrap();
    assert_ne!(other.output("a"), eval.output("a"));
}

fn random_at(seed: i32, index: u32) -> f64 {
    crate::interp::random_uniform(seed, 0, index).into()
}

#[test]
fn all_reduce_sums_over_the_ranks_of_the_job() {
    use crate::collective::{Communicator, Threads};
    let mut g = Graph::new("sum");
    let x = input(&mut g, InputKind::Data, "x", Type::new(F32, [3]));
    let s = add(&mut g, Op::AllReduce, &[x]);
    g.set_output("s", s).unwrap();
    let handles: Vec<_> = (Threads::group(3).into_iter())
        .map(|c| {
            let g = g.clone();
            std::thread::spawn(move || {
                let r = c.rank() as f64;
                let x = arr(F32, &[3], &[r, -r, 0.25]);
                crate::interp::run_with(&g, &bind(&[("x", x)]), &c).unwrap()
            })
        })
        .collect();
    for h in handles {
        let e = h.join().unwrap();
        assert_eq!(e.output("s").unwrap(), &arr(F32, &[3], &[3.0, -3.0, 0.75]));
    }
}
