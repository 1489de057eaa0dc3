//! Differential testing of the JIT against the interpreter on random graphs covering every
//! primitive, optimized and fused, fused without optimization, and unfused.
//!
//! Graphs without approximated arithmetic must match bit for bit (any NaN equals any NaN), on
//! hostile inputs (NaN, infinities, signed zeros, subnormals, huge magnitudes, i32 extremes):
//! every other operation is exact in both, so a single differing bit is a bug. Approximated
//! arithmetic is exp, log and tanh (inline polynomials, a few ulp) and float sums and matrix
//! products (the JIT accumulates f32 in f32, in vector lanes; the interpreter in f64). Graphs
//! with them get moderate inputs (floats in [-2, 2]) and a tolerance of
//! `1e-4 (1 + |y|) + 100 s` per element, where `s` is how far the interpreter's own result moves
//! when every float input is perturbed by a relative 1e-6: a few ulp of error in each of up to
//! 40 operations perturbs intermediate values by less than 1e-5, so a hundred times the
//! sensitivity to 1e-6 bounds what the approximations can change, while a wrong kernel is off
//! by far more.

use kiln::compiler::testing::{config, random_graph, random_inputs};
use kiln::compiler::{
    Array, BinaryOp, DType, Data, Graph, InputKind, Op, ReduceOp, UnaryOp, interp,
};
use kiln::runtime::{Executable, Options};
use proptest::prelude::*;
use std::collections::HashMap;

/// True if `g` has an operation whose JIT result may differ from the interpreter's by rounding.
fn approximated(g: &Graph) -> bool {
    g.node_ids().any(|id| {
        let n = g.node(id);
        match &n.op {
            Op::Unary(UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh) => true,
            Op::Reduce {
                op: ReduceOp::Sum, ..
            }
            | Op::Dot => n.ty.dtype.is_float(),
            _ => false,
        }
    })
}

/// Outputs, then updated states, by name.
type Results = Vec<(String, Array)>;

fn interpret(g: &Graph, inputs: &HashMap<String, Array>) -> Results {
    let e = interp::run(g, inputs).unwrap();
    e.outputs.into_iter().chain(e.updates).collect()
}

fn jit(g: &Graph, inputs: &HashMap<String, Array>, options: &Options) -> Results {
    let mut exe = Executable::compile(g, options).unwrap();
    let mut data = HashMap::new();
    for id in g.inputs() {
        let (kind, name) = g.node(id).op.as_input().unwrap();
        if kind == InputKind::Data {
            data.insert(name.to_string(), inputs[name].clone());
        } else {
            exe.set_state(name, &inputs[name]).unwrap();
        }
    }
    let mut out = exe.run(&data).unwrap();
    out.extend(
        g.updates()
            .iter()
            .map(|(n, _)| (n.clone(), exe.state(n).unwrap())),
    );
    out
}

/// Moderate values: floats in [-2, 2], i32 in -3..=3, random bools, any seed.
fn moderate_inputs(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    g.inputs()
        .into_iter()
        .map(|id| {
            let n = g.node(id);
            let (_, name) = n.op.as_input().unwrap();
            let k = n.ty.numel();
            let data = match n.ty.dtype {
                DType::F32 => Data::F32((0..k).map(|_| (next() * 4.0 - 2.0) as f32).collect()),
                DType::F64 => Data::F64((0..k).map(|_| next() * 4.0 - 2.0).collect()),
                DType::I32 => Data::I32((0..k).map(|_| (next() * 7.0) as i32 - 3).collect()),
                DType::Bool => Data::Bool((0..k).map(|_| next() < 0.5).collect()),
            };
            (name.to_string(), Array::new(&n.ty.shape, data).unwrap())
        })
        .collect()
}

/// `inputs` with every float element scaled by `1 + 1e-6 r`, `r` in [-1, 1].
fn perturbed(inputs: &HashMap<String, Array>, seed: u64) -> HashMap<String, Array> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    inputs
        .iter()
        .map(|(n, a)| {
            let data = match a.data() {
                Data::F32(v) => {
                    Data::F32(v.iter().map(|x| x * (1.0 + 1e-6 * next()) as f32).collect())
                }
                Data::F64(v) => Data::F64(v.iter().map(|x| x * (1.0 + 1e-6 * next())).collect()),
                other => other.clone(),
            };
            (n.clone(), Array::new(a.shape(), data).unwrap())
        })
        .collect()
}

fn bitwise_equal(a: &Array, b: &Array) -> bool {
    a.ty() == b.ty()
        && a.to_f64_vec()
            .iter()
            .zip(b.to_f64_vec())
            .all(|(x, y)| (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits())
}

fn configurations() -> [Options; 3] {
    let base = Options {
        optimize: true,
        fuse: true,
        threads: 1,
        keep_clif: false,
    };
    [
        base.clone(),
        Options {
            optimize: false,
            ..base.clone()
        },
        Options {
            optimize: false,
            fuse: false,
            threads: 2,
            ..base
        },
    ]
}

fn check(seed: u64, steps: usize) -> Result<(), TestCaseError> {
    let g = random_graph(seed, steps);
    if !approximated(&g) {
        let inputs = random_inputs(&g, seed);
        let want = interpret(&g, &inputs);
        for options in configurations() {
            let got = jit(&g, &inputs, &options);
            for ((name, a), (_, b)) in got.iter().zip(&want) {
                prop_assert!(
                    bitwise_equal(a, b),
                    "{name} differs ({options:?}):\n jit {a}\nwant {b}\n{}",
                    kiln::compiler::text::print(&g)
                );
            }
        }
        return Ok(());
    }
    let inputs = moderate_inputs(&g, seed);
    let want = interpret(&g, &inputs);
    let probes: Vec<Results> = (0..3)
        .map(|k| interpret(&g, &perturbed(&inputs, seed + k)))
        .collect();
    for options in configurations() {
        let got = jit(&g, &inputs, &options);
        for (i, ((name, a), (_, b))) in got.iter().zip(&want).enumerate() {
            prop_assert_eq!(a.ty(), b.ty());
            let (av, bv) = (a.to_f64_vec(), b.to_f64_vec());
            for j in 0..av.len() {
                let (x, y) = (av[j], bv[j]);
                // Overflow is overflow: summed in another order, inf - inf may meet as NaN in
                // one and not the other.
                if (!x.is_finite() && !y.is_finite()) || x == y {
                    continue;
                }
                let s = probes
                    .iter()
                    .map(|p| (p[i].1.to_f64_vec()[j] - y).abs())
                    .fold(0.0, f64::max);
                let tol = 1e-4 * (1.0 + y.abs()) + 100.0 * s;
                prop_assert!(
                    (x - y).abs() <= tol || s.is_nan() || s.is_infinite(),
                    "{name}[{j}]: jit {x} vs {y} (tolerance {tol:e}, {options:?})\n{}",
                    kiln::compiler::text::print(&g)
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn jit_matches_the_interpreter_on_random_graphs(seed in any::<u64>(), steps in 0usize..40) {
        check(seed, steps)?;
    }
}

#[test]
fn both_kinds_of_graph_are_generated() {
    let approx = (0..200)
        .filter(|&s| approximated(&random_graph(s, 30)))
        .count();
    assert!(
        approx > 20 && approx < 180,
        "{approx} of 200 graphs are approximated"
    );
    let _ = (BinaryOp::Add, DType::F32);
}
