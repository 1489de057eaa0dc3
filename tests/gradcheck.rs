//! Gradient checks: every primitive's VJP rule, and every frontend op and loss, against central
//! finite differences in f64 through the reference interpreter.
//!
//! For a graph `y = f(x1, .., xk)` the check differentiates `L = sum(r * y)` with fixed random
//! weights `r` (so every output element's gradient counts differently), and compares each
//! analytic `dL/dx_ij` with `(L(x + h e_ij) - L(x - h e_ij)) / 2h`, `h = 1e-5`. The error measure
//! is `|analytic - numeric| / max(1, |analytic|, |numeric|)` and must stay below 1e-6: relative
//! for gradients above 1, absolute below (where a relative error of two near-zero numbers says
//! nothing). In f64 the central difference's truncation error is about `h^2 |f'''| / 6 ~ 1e-10`
//! and its rounding error about `1e-16 |L| / h ~ 1e-11 |L|`, far below the bound. Inputs are
//! drawn away from kinks (0 for abs/relu, ties for max/min, non-positive values for log/sqrt).

mod common;

use common::Rng;
use kiln::compiler::autodiff::grad;
use kiln::compiler::op::MNEMONICS;
use kiln::compiler::{
    Array, BinaryOp, CmpOp, DType, Graph, InputKind, NodeId, Op, ReduceOp, Type, UnaryOp,
};
use kiln::frontend::layers::{Conv2d, Layers, Lowering, Mode};
use kiln::frontend::losses::{self, Reduction};
use kiln::frontend::{GraphBuilder, Tensor};
use smallvec::smallvec;
use std::collections::BTreeSet;

const H: f64 = 1e-5;
const TOLERANCE: f64 = 1e-6;

/// One gradient check: a graph `out = f(inputs)` and the inputs' values.
struct Case {
    name: &'static str,
    /// Mnemonics whose rules the case exercises.
    covers: &'static [&'static str],
    graph: Graph,
    out: NodeId,
    inputs: Vec<(String, Array)>,
}

/// The error measure of the module docs.
fn error(a: f64, n: f64) -> f64 {
    (a - n).abs() / 1f64.max(a.abs()).max(n.abs())
}

/// Checks one case; returns the largest error seen.
fn check(case: &Case) -> f64 {
    let mut g = case.graph.clone();
    let out_ty = g.node(case.out).ty.clone();
    let mut rng = Rng::new(99);
    let weights = Array::from_f64(&out_ty.shape, rng.vec(out_ty.numel(), 0.5, 1.5)).unwrap();
    let r = g.add(Op::Constant(weights), &[], None).unwrap();
    let prod = g
        .add(Op::Binary(BinaryOp::Mul), &[case.out, r], None)
        .unwrap();
    let axes = (0..out_ty.rank()).collect();
    let loss = g
        .add(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes,
            },
            &[prod],
            None,
        )
        .unwrap();
    g.set_output("loss", loss).unwrap();
    let float_inputs: Vec<usize> = (0..case.inputs.len())
        .filter(|&i| case.inputs[i].1.dtype() == DType::F64)
        .collect();
    let wrt: Vec<NodeId> = float_inputs
        .iter()
        .map(|&i| g.input(&case.inputs[i].0).unwrap())
        .collect();
    let grads = grad(&mut g, loss, &wrt).unwrap();
    for (k, d) in grads.iter().enumerate() {
        g.set_output(format!("d{k}"), *d).unwrap();
    }
    kiln::compiler::verify(&g).unwrap();
    let analytic = common::run(&g, &case.inputs);
    let loss_at = |inputs: &[(String, Array)]| {
        common::output(&common::run(&g, inputs), "loss").to_f64_vec()[0]
    };
    let mut worst: f64 = 0.0;
    for (k, &i) in float_inputs.iter().enumerate() {
        let a = common::output(&analytic, &format!("d{k}")).to_f64_vec();
        let base = case.inputs[i].1.to_f64_vec();
        for j in 0..base.len() {
            let at = |delta: f64| {
                let mut v = base.clone();
                v[j] += delta;
                let mut inputs = case.inputs.clone();
                inputs[i].1 = Array::from_f64(case.inputs[i].1.shape(), v).unwrap();
                loss_at(&inputs)
            };
            let numeric = (at(H) - at(-H)) / (2.0 * H);
            let e = error(a[j], numeric);
            assert!(
                e < TOLERANCE,
                "{}: d/d{}[{j}]: analytic {} vs numeric {numeric} (error {e:e})",
                case.name,
                case.inputs[i].0,
                a[j]
            );
            worst = worst.max(e);
        }
    }
    worst
}

/// Builds raw-IR cases: inputs declared by shape and value range, then primitives applied.
struct Raw {
    g: Graph,
    inputs: Vec<(String, Array)>,
    rng: Rng,
}

impl Raw {
    fn new(seed: u64) -> Raw {
        Raw {
            g: Graph::new("case"),
            inputs: vec![],
            rng: Rng::new(seed),
        }
    }

    fn input(&mut self, shape: &[usize], values: Vec<f64>) -> NodeId {
        self.bind("x", Array::from_f64(shape, values).unwrap())
    }

    /// Declares a data input holding `value`, named `prefix` and its position.
    fn bind(&mut self, prefix: &str, value: Array) -> NodeId {
        let name = format!("{prefix}{}", self.inputs.len());
        let ty = value.ty();
        let id = self
            .g
            .add(
                Op::Input {
                    kind: InputKind::Data,
                    name: name.clone(),
                    ty,
                },
                &[],
                None,
            )
            .unwrap();
        self.inputs.push((name, value));
        id
    }

    fn uniform(&mut self, shape: &[usize], lo: f64, hi: f64) -> NodeId {
        let n = shape.iter().product();
        let v = self.rng.vec(n, lo, hi);
        self.input(shape, v)
    }

    fn signed(&mut self, shape: &[usize]) -> NodeId {
        let n = shape.iter().product();
        let v = self.rng.away_from_zero(n, 0.1, 1.5);
        self.input(shape, v)
    }

    fn int_input(&mut self, shape: &[usize], values: Vec<i32>) -> NodeId {
        self.bind("i", Array::from_i32(shape, values).unwrap())
    }

    fn op(&mut self, op: Op, operands: &[NodeId]) -> NodeId {
        self.g.add(op, operands, None).unwrap()
    }

    fn case(self, name: &'static str, covers: &'static [&'static str], out: NodeId) -> Case {
        Case {
            name,
            covers,
            graph: self.g,
            out,
            inputs: self.inputs,
        }
    }
}

fn unary_case(u: UnaryOp) -> Case {
    let mut r = Raw::new(1);
    let x = match u {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => r.uniform(&[3, 4], 0.3, 2.0),
        _ => r.signed(&[3, 4]),
    };
    let y = r.op(Op::Unary(u), &[x]);
    let covers: &'static [&'static str] = match u {
        UnaryOp::Neg => &["neg"],
        UnaryOp::Abs => &["abs"],
        UnaryOp::Exp => &["exp"],
        UnaryOp::Log => &["log"],
        UnaryOp::Sqrt => &["sqrt"],
        UnaryOp::Recip => &["recip"],
        UnaryOp::Tanh => &["tanh"],
    };
    r.case("unary", covers, y)
}

fn binary_case(b: BinaryOp) -> Case {
    let mut r = Raw::new(2);
    let (x, y) = match b {
        BinaryOp::Pow => (r.uniform(&[2, 3], 0.5, 2.0), r.uniform(&[2, 3], -1.5, 2.5)),
        BinaryOp::Div => (r.signed(&[2, 3]), r.uniform(&[2, 3], 0.5, 2.0)),
        BinaryOp::Max | BinaryOp::Min => {
            // Pairs at least 0.1 apart, so no tie is within h.
            let a = r.rng.vec(6, -1.0, 1.0);
            let d = r.rng.away_from_zero(6, 0.1, 1.0);
            let c: Vec<f64> = a.iter().zip(&d).map(|(a, d)| a + d).collect();
            (r.input(&[2, 3], a), r.input(&[2, 3], c))
        }
        _ => (r.signed(&[2, 3]), r.signed(&[2, 3])),
    };
    let z = r.op(Op::Binary(b), &[x, y]);
    let covers: &'static [&'static str] = match b {
        BinaryOp::Add => &["add"],
        BinaryOp::Sub => &["sub"],
        BinaryOp::Mul => &["mul"],
        BinaryOp::Div => &["div"],
        BinaryOp::Max => &["max"],
        BinaryOp::Min => &["min"],
        BinaryOp::Pow => &["pow"],
    };
    r.case("binary", covers, z)
}

fn primitive_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = UnaryOp::ALL.into_iter().map(unary_case).collect();
    cases.extend(BinaryOp::ALL.into_iter().map(binary_case));

    // Leaves and non-differentiable ops feeding a product: their rules pass no gradient.
    let mut r = Raw::new(3);
    let x = r.signed(&[2, 3]);
    let seed = r.int_input(&[], vec![7]);
    let rand = r.op(
        Op::Random {
            stream: 1,
            ty: Type::new(DType::F64, [2, 3]),
        },
        &[seed],
    );
    let iota = r.op(
        Op::Iota {
            axis: 1,
            ty: Type::new(DType::F64, [2, 3]),
        },
        &[],
    );
    let c = r.op(Op::Constant(Array::full(DType::F64, [2, 3], 0.5)), &[]);
    let p = r.op(Op::Binary(BinaryOp::Mul), &[x, rand]);
    let q = r.op(Op::Binary(BinaryOp::Mul), &[p, iota]);
    let s = r.op(Op::Binary(BinaryOp::Add), &[q, c]);
    cases.push(r.case("leaves", &["input", "random", "iota", "constant"], s));

    let mut r = Raw::new(4);
    let x = r.signed(&[2, 3]);
    let y = r.signed(&[2, 3]);
    let zero = r.op(Op::Constant(Array::full(DType::F64, [2, 3], 0.0)), &[]);
    let mut out = r.op(Op::Compare(CmpOp::Gt), &[x, zero]);
    out = r.op(Op::Select, &[out, x, y]);
    for cmp in CmpOp::ALL {
        let c = r.op(Op::Compare(cmp), &[x, y]);
        let f = r.op(Op::Cast(DType::F64), &[c]);
        let m = r.op(Op::Binary(BinaryOp::Mul), &[f, x]);
        out = r.op(Op::Binary(BinaryOp::Add), &[out, m]);
    }
    cases.push(r.case(
        "compare-select",
        &["eq", "ne", "lt", "le", "gt", "ge", "select"],
        out,
    ));

    let mut r = Raw::new(5);
    let x = r.signed(&[2, 3]);
    // A float-to-float cast passes the gradient through (f64 to f64 here: through f32 the
    // value rounds to 1e-7, too coarse for a finite difference with h = 1e-5); an integer
    // cast passes none.
    let same = r.op(Op::Cast(DType::F64), &[x]);
    let i = r.op(Op::Cast(DType::I32), &[x]);
    let fi = r.op(Op::Cast(DType::F64), &[i]);
    let m = r.op(Op::Binary(BinaryOp::Mul), &[same, fi]);
    let out = r.op(Op::Binary(BinaryOp::Add), &[m, same]);
    cases.push(r.case("cast", &["cast"], out));

    let mut r = Raw::new(6);
    let x = r.signed(&[2, 3, 4]);
    let s = r.op(
        Op::Reduce {
            op: ReduceOp::Sum,
            axes: smallvec![0, 2],
        },
        &[x],
    );
    cases.push(r.case("reduce_sum", &["reduce_sum"], s));

    let mut r = Raw::new(7);
    let v: Vec<f64> = (0..24).map(|i| ((i * 7) % 24) as f64 * 0.1 - 1.0).collect();
    let x = r.input(&[2, 3, 4], v);
    let m = r.op(
        Op::Reduce {
            op: ReduceOp::Max,
            axes: smallvec![1, 2],
        },
        &[x],
    );
    cases.push(r.case("reduce_max", &["reduce_max"], m));

    let mut r = Raw::new(8);
    let x = r.signed(&[2, 3, 4]);
    let a = r.op(Op::Reshape(smallvec![4, 6]), &[x]);
    let b = r.op(Op::Permute(smallvec![1, 0]), &[a]);
    let c = r.op(Op::Reshape(smallvec![6, 1, 4]), &[b]);
    let d = r.op(Op::Broadcast(smallvec![6, 3, 4]), &[c]);
    cases.push(r.case(
        "reshape-permute-broadcast",
        &["reshape", "permute", "broadcast"],
        d,
    ));

    let mut r = Raw::new(9);
    let x = r.signed(&[5, 7]);
    let s = r.op(
        Op::Slice {
            start: smallvec![1, 0],
            end: smallvec![5, 7],
            step: smallvec![2, 3],
        },
        &[x],
    );
    let p = r.op(
        Op::Pad {
            low: smallvec![1, 0],
            high: smallvec![0, 2],
            interior: smallvec![1, 2],
            value: 3.0,
        },
        &[s],
    );
    cases.push(r.case("slice-pad", &["slice", "pad"], p));

    let mut r = Raw::new(10);
    let x = r.signed(&[2, 1, 7, 6]);
    let w = r.op(
        Op::Windows {
            window: smallvec![3, 2],
            stride: smallvec![2, 1],
            dilation: smallvec![1, 2],
        },
        &[x],
    );
    cases.push(r.case("windows", &["windows"], w));

    // Windows that are whole multiples of their stride take the tiled rule (see
    // `autodiff::tiled_windows_vjp`), here with uncovered elements at the ends (9 = 3 x 2 + 3).
    let mut r = Raw::new(15);
    let x = r.signed(&[2, 1, 9, 8]);
    let w = r.op(
        Op::Windows {
            window: smallvec![4, 2],
            stride: smallvec![2, 2],
            dilation: smallvec![1, 1],
        },
        &[x],
    );
    cases.push(r.case("windows-tiled", &["windows"], w));

    let mut r = Raw::new(11);
    let a = r.signed(&[2, 3]);
    let b = r.signed(&[2, 1]);
    let c = r.signed(&[2, 2]);
    let cat = r.op(Op::Concat { axis: 1 }, &[a, b, c]);
    cases.push(r.case("concat", &["concat"], cat));

    let mut r = Raw::new(12);
    let a = r.signed(&[2, 3, 4]);
    let b = r.signed(&[2, 4, 5]);
    let d = r.op(Op::Dot, &[a, b]);
    cases.push(r.case("dot", &["dot"], d));

    let mut r = Raw::new(13);
    let x = r.signed(&[4, 3]);
    let idx = r.int_input(&[5], vec![2, 0, 2, 3, 9]);
    let g = r.op(Op::Gather { axis: 0 }, &[x, idx]);
    let u = r.signed(&[5, 3]);
    let sum = r.op(Op::Binary(BinaryOp::Add), &[g, u]);
    let s = r.op(Op::ScatterAdd { axis: 0, size: 6 }, &[idx, sum]);
    cases.push(r.case("gather-scatter_add", &["gather", "scatter_add"], s));

    // On one rank; over several, `all_reduce_over_ranks_matches_finite_differences`.
    let mut r = Raw::new(14);
    let x = r.signed(&[2, 3]);
    let sq = r.op(Op::Binary(BinaryOp::Mul), &[x, x]);
    let s = r.op(Op::AllReduce, &[sq]);
    cases.push(r.case("all_reduce", &["all_reduce"], s));

    cases
}

/// `all_reduce` over three ranks (threads): each rank `r` computes
/// `L_r = sum(w_r * all_reduce(x_r * x_r))`, and the gradient each rank takes of its own
/// `L_r` with respect to its `x_r`, summed as autodiff's rule sums it over the ranks, must be
/// the finite-difference derivative of the job's total `L_0 + L_1 + L_2` with respect to `x_r`.
#[test]
fn all_reduce_over_ranks_matches_finite_differences() {
    use kiln::compiler::collective::Threads;
    use kiln::compiler::interp::run_with;
    use std::collections::HashMap;
    const RANKS: usize = 3;
    let mut g = Graph::new("ranks");
    let ty = Type::new(DType::F64, [2, 3]);
    let input = |g: &mut Graph, name: &str| {
        let op = Op::Input {
            kind: InputKind::Data,
            name: name.into(),
            ty: ty.clone(),
        };
        g.add(op, &[], None).unwrap()
    };
    let (x, w) = (input(&mut g, "x"), input(&mut g, "w"));
    let sq = g.add(Op::Binary(BinaryOp::Mul), &[x, x], None).unwrap();
    let s = g.add(Op::AllReduce, &[sq], None).unwrap();
    let p = g.add(Op::Binary(BinaryOp::Mul), &[w, s], None).unwrap();
    let sum = Op::Reduce {
        op: ReduceOp::Sum,
        axes: smallvec![0, 1],
    };
    let loss = g.add(sum, &[p], None).unwrap();
    g.set_output("loss", loss).unwrap();
    let dx = grad(&mut g, loss, &[x]).unwrap()[0];
    g.set_output("dx", dx).unwrap();
    let mut rng = Rng::new(5);
    let values = |rng: &mut Rng, lo, hi| {
        (0..RANKS)
            .map(|_| Array::from_f64([2, 3], rng.vec(6, lo, hi)).unwrap())
            .collect::<Vec<_>>()
    };
    let (xs, ws) = (values(&mut rng, -1.0, 1.0), values(&mut rng, 0.5, 1.5));
    // Every rank's loss and gradient, run as a job of `RANKS` threads.
    let job = |xs: &[Array]| -> Vec<(f64, Vec<f64>)> {
        let handles: Vec<_> = (Threads::group(RANKS).into_iter().enumerate())
            .map(|(r, c)| {
                let (g, x, w) = (g.clone(), xs[r].clone(), ws[r].clone());
                std::thread::spawn(move || {
                    let inputs = HashMap::from([("x".to_string(), x), ("w".to_string(), w)]);
                    let e = run_with(&g, &inputs, &c).unwrap();
                    let loss = e.output("loss").unwrap().to_f64_vec()[0];
                    (loss, e.output("dx").unwrap().to_f64_vec())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    };
    let total = |xs: &[Array]| job(xs).iter().map(|(l, _)| l).sum::<f64>();
    let analytic = job(&xs);
    for r in 0..RANKS {
        for i in 0..6 {
            let at = |delta: f64| {
                let mut v = xs[r].to_f64_vec();
                v[i] += delta;
                let mut moved = xs.clone();
                moved[r] = Array::from_f64([2, 3], v).unwrap();
                total(&moved)
            };
            let numeric = (at(H) - at(-H)) / (2.0 * H);
            let e = error(analytic[r].1[i], numeric);
            assert!(e < TOLERANCE, "rank {r} element {i}: error {e}");
        }
    }
}

#[test]
fn every_primitive_rule_matches_finite_differences() {
    for case in primitive_cases() {
        check(&case);
    }
}

#[test]
fn every_primitive_has_a_gradient_check() {
    let covered: BTreeSet<&str> = primitive_cases()
        .iter()
        .flat_map(|c| c.covers.iter().copied())
        .chain(["param", "state"]) // the same leaf rule as `input`
        // Its gradient differs from the derivative by design: checked exactly below.
        .chain(["stop_gradient"])
        .collect();
    let all: BTreeSet<&str> = MNEMONICS.iter().copied().collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "primitives without a gradient check: {missing:?}"
    );
}

/// A frontend case: `f` builds the output from f64 inputs of the given shapes and ranges.
fn frontend_case(
    name: &'static str,
    shapes: &[(&[usize], f64, f64)],
    f: impl Fn(&GraphBuilder, &[Tensor]) -> Tensor,
) -> Case {
    layer_case(name, Mode::Train, shapes, |nn, x| f(nn.builder(), x))
}

/// A layer case: `f` builds the output in `mode` from f64 data inputs of the given shapes and
/// ranges (drawn away from 0 when the range spans it), declaring parameters and state as it
/// goes. Parameters are drawn with magnitude in [0.1, 1) and random sign, state (batch norm's
/// running statistics) in [0.5, 1.5) so a running variance is positive, and an `i32` input
/// (dropout's seed) is 7, so the function is deterministic.
fn layer_case(
    name: &'static str,
    mode: Mode,
    shapes: &[(&[usize], f64, f64)],
    f: impl Fn(&Layers, &[Tensor]) -> Tensor,
) -> Case {
    let b = GraphBuilder::new(name);
    let mut rng = Rng::new(name.len() as u64 * 31 + 5);
    let mut inputs = vec![];
    let tensors: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, &(shape, lo, hi))| {
            let n = shape.iter().product();
            let v = if lo < 0.0 && hi > 0.0 {
                rng.away_from_zero(n, 0.1, hi)
            } else {
                rng.vec(n, lo, hi)
            };
            let name = format!("x{i}");
            inputs.push((name.clone(), Array::from_f64(shape, v).unwrap()));
            b.input(&name, DType::F64, shape)
        })
        .collect();
    let out = f(&Layers::new(&b, mode), &tensors);
    b.output("out", &out);
    let graph = b.finish().unwrap();
    for id in graph.inputs() {
        let node = graph.node(id);
        let (kind, name) = node.op.as_input().unwrap();
        if inputs.iter().any(|(n, _)| n == name) {
            continue;
        }
        let (shape, n) = (&node.ty.shape, node.ty.numel());
        let value = match (kind, node.ty.dtype) {
            (_, DType::I32) => Array::from_i32(shape, vec![7; n]),
            (InputKind::State, _) => Array::from_f64(shape, rng.vec(n, 0.5, 1.5)),
            _ => Array::from_f64(shape, rng.away_from_zero(n, 0.1, 1.0)),
        };
        inputs.push((name.to_string(), value.unwrap()));
    }
    let out = graph.output("out").unwrap();
    Case {
        name,
        covers: &[],
        graph,
        out,
        inputs,
    }
}

fn labels(b: &GraphBuilder) -> Tensor {
    b.constant(Array::from_i32([4], vec![2, 0, 4, 1]).unwrap())
}

#[test]
fn frontend_ops_and_losses_match_finite_differences() {
    let m = |v: f64, lo: f64| -> (&'static [usize], f64, f64) { (&[4, 5], lo, v) };
    let cases = vec![
        frontend_case("sigmoid", &[m(3.0, -3.0)], |_, x| x[0].sigmoid()),
        frontend_case("tanh", &[m(3.0, -3.0)], |_, x| x[0].tanh()),
        frontend_case("relu", &[m(2.0, -2.0)], |_, x| x[0].relu()),
        frontend_case("leaky_relu", &[m(2.0, -2.0)], |_, x| x[0].leaky_relu(0.01)),
        frontend_case("prelu", &[m(2.0, -2.0), (&[5], 0.1, 0.5)], |_, x| {
            x[0].prelu(&x[1])
        }),
        frontend_case("elu", &[m(2.0, -2.0)], |_, x| x[0].elu(1.0)),
        frontend_case("softmax", &[m(3.0, -3.0)], |_, x| x[0].softmax(-1)),
        frontend_case("log_softmax", &[m(3.0, -3.0)], |_, x| x[0].log_softmax(1)),
        frontend_case("logsumexp", &[m(3.0, -3.0)], |_, x| x[0].logsumexp(0)),
        frontend_case("mean", &[m(3.0, -3.0)], |_, x| x[0].mean(&[0])),
        frontend_case(
            "matmul-bias",
            &[m(2.0, -2.0), (&[5, 3], -1.0, 1.0), (&[3], -1.0, 1.0)],
            |_, x| x[0].matmul(&x[1]) + &x[2],
        ),
        frontend_case("mse", &[m(2.0, -2.0), m(2.0, -2.0)], |_, x| {
            losses::mse(&x[0], &x[1], Reduction::Mean)
        }),
        frontend_case("l1", &[m(2.0, -2.0), (&[4, 5], 3.0, 4.0)], |_, x| {
            losses::l1(&x[0], &x[1], Reduction::Sum)
        }),
        frontend_case(
            "bce",
            &[(&[4, 5], 0.05, 0.95), (&[4, 5], 0.0, 1.0)],
            |_, x| losses::bce(&x[0], &x[1], Reduction::Mean),
        ),
        frontend_case(
            "bce_with_logits",
            &[m(4.0, -4.0), (&[4, 5], 0.0, 1.0)],
            |_, x| losses::bce_with_logits(&x[0], &x[1], Reduction::None),
        ),
        frontend_case("cross_entropy", &[m(3.0, -3.0)], |b, x| {
            losses::cross_entropy(&x[0], &labels(b), Reduction::Mean)
        }),
        frontend_case("nll", &[(&[4, 5], -3.0, -0.1)], |b, x| {
            losses::nll(&x[0], &labels(b), Reduction::Sum)
        }),
        frontend_case(
            "kl_div",
            &[(&[4, 5], -3.0, -0.1), (&[4, 5], 0.0, 1.0)],
            |_, x| losses::kl_div(&x[0], &x[1], Reduction::Mean),
        ),
    ];
    for case in cases {
        check(&case);
    }
}

/// Every layer, on small shapes (the interpreter evaluates each case twice per input element).
/// Convolutions cover stride, padding, 1x1 kernels and no bias; poolings overlapping windows
/// and padding (-inf for max, zeros for the average); batch norm its training mode, where the
/// batch's statistics depend on the input, and its evaluation mode; dropout a fixed seed, so
/// its mask is fixed; the recurrent layers three steps, so the state passes through two cells;
/// the embedding repeated, unused and out-of-range ids ([`token_ids`]), alone and into an LSTM.
/// The max pooling's inputs are random, so no two elements of a window are within `h` of a
/// tie.
#[test]
fn layers_match_finite_differences() {
    let img = |shape: &'static [usize]| -> (&'static [usize], f64, f64) { (shape, -1.5, 1.5) };
    let cases = vec![
        layer_case("linear", Mode::Train, &[img(&[3, 4])], |nn, x| {
            nn.linear("fc", &x[0], 2)
        }),
        layer_case("conv2d", Mode::Train, &[img(&[2, 3, 5, 5])], |nn, x| {
            nn.conv2d("c", &x[0], Conv2d::new(2, 3).stride(2).padding(1))
        }),
        layer_case("conv2d-1x1", Mode::Train, &[img(&[2, 2, 3, 3])], |nn, x| {
            nn.conv2d("c", &x[0], Conv2d::new(3, 1))
        }),
        layer_case(
            "conv2d-winograd",
            Mode::Train,
            &[img(&[2, 2, 5, 4])],
            |nn, x| {
                let conv = Conv2d::new(2, 3).padding(1).lowering(Lowering::Winograd);
                nn.conv2d("c", &x[0], conv)
            },
        ),
        layer_case(
            "conv2d-no-bias",
            Mode::Train,
            &[img(&[1, 2, 4, 4])],
            |nn, x| nn.conv2d("c", &x[0], Conv2d::new(2, 2).bias(false)),
        ),
        layer_case("max_pool2d", Mode::Train, &[img(&[2, 2, 5, 5])], |_, x| {
            x[0].max_pool2d(3, 2, 1)
        }),
        layer_case(
            "max_pool2d-2x2",
            Mode::Train,
            &[img(&[1, 2, 4, 4])],
            |_, x| x[0].max_pool2d(2, 2, 0),
        ),
        layer_case("avg_pool2d", Mode::Train, &[img(&[1, 2, 4, 4])], |_, x| {
            x[0].avg_pool2d(2, 1, 1)
        }),
        layer_case(
            "flatten-concat",
            Mode::Train,
            &[img(&[2, 1, 2, 3]), img(&[2, 2, 2, 3])],
            |_, x| x[0].concat(&[&x[1]], 1).flatten_from(1),
        ),
        layer_case(
            "batch_norm2d",
            Mode::Train,
            &[img(&[3, 2, 3, 3])],
            |nn, x| nn.batch_norm2d("bn", &x[0]),
        ),
        layer_case("batch_norm1d", Mode::Train, &[img(&[5, 3])], |nn, x| {
            nn.batch_norm1d("bn", &x[0])
        }),
        layer_case(
            "batch_norm2d-eval",
            Mode::Eval,
            &[img(&[2, 2, 2, 2])],
            |nn, x| nn.batch_norm2d("bn", &x[0]),
        ),
        layer_case("dropout", Mode::Train, &[img(&[4, 5])], |nn, x| {
            nn.dropout(&x[0], 0.3)
        }),
        layer_case("rnn", Mode::Train, &[img(&[2, 3, 3])], |nn, x| {
            nn.rnn("rnn", &x[0], 2).hidden
        }),
        layer_case("lstm", Mode::Train, &[img(&[2, 3, 3])], |nn, x| {
            let out = nn.lstm("lstm", &x[0], 2);
            out.hidden.concat(&[&out.cell.unwrap()], 1)
        }),
        layer_case("embedding", Mode::Train, &[], |nn, _| {
            nn.embedding_typed("emb", &token_ids(nn.builder()), 4, 3, DType::F64)
        }),
        layer_case("embedding-lstm", Mode::Train, &[], |nn, _| {
            let xs = nn.embedding_typed("emb", &token_ids(nn.builder()), 4, 3, DType::F64);
            nn.lstm("lstm", &xs, 2).hidden
        }),
    ];
    for case in cases {
        check(&case);
    }
}

/// Ids for the embedding's checks, `[2, 3]` into a table of 4 rows: row 1 looked up twice
/// (its gradient is a sum), row 2 never (its gradient is zero), and -1 and 7 outside the
/// table, clamped by the gather to rows 0 and 3 (their gradients go there too).
fn token_ids(b: &GraphBuilder) -> Tensor {
    b.constant(Array::from_i32([2, 3], vec![1, 3, 1, 0, -1, 7]).unwrap())
}

/// The second derivative of `f` at each element of `x`, analytic (grad of grad) and checked by
/// central differences of the analytic first derivative.
fn second_derivative(f: impl Fn(&Tensor) -> Tensor, x: Vec<f64>, expected: impl Fn(f64) -> f64) {
    let b = GraphBuilder::new("second");
    let n = x.len();
    let t = b.input("x", DType::F64, [n]);
    b.output("y", &f(&t).sum_all());
    let mut g = b.finish().unwrap();
    let (xi, y) = (g.input("x").unwrap(), g.output("y").unwrap());
    let d1 = grad(&mut g, y, &[xi]).unwrap()[0];
    let d2 = grad(&mut g, d1, &[xi]).unwrap()[0];
    g.set_output("d1", d1).unwrap();
    g.set_output("d2", d2).unwrap();
    let inputs = [("x".to_string(), Array::from_f64([n], x.clone()).unwrap())];
    let out = common::run(&g, &inputs);
    let d2v = common::output(&out, "d2").to_f64_vec();
    for (i, &xv) in x.iter().enumerate() {
        assert!(
            error(d2v[i], expected(xv)) < TOLERANCE,
            "at {xv}: {} vs {}",
            d2v[i],
            expected(xv)
        );
        let d1_at = |delta: f64| {
            let mut v = x.clone();
            v[i] += delta;
            let inputs = [("x".to_string(), Array::from_f64([n], v).unwrap())];
            common::output(&common::run(&g, &inputs), "d1").to_f64_vec()[i]
        };
        let numeric = (d1_at(H) - d1_at(-H)) / (2.0 * H);
        assert!(
            error(d2v[i], numeric) < TOLERANCE,
            "at {xv}: {} vs {numeric}",
            d2v[i]
        );
    }
}

#[test]
fn second_derivatives_of_tanh_and_cube() {
    let x = vec![-1.5, -0.3, 0.2, 0.9, 2.0];
    second_derivative(
        |t| t.tanh(),
        x.clone(),
        |v| {
            let th = v.tanh();
            -2.0 * th * (1.0 - th * th)
        },
    );
    second_derivative(|t| t.powf(3.0), vec![0.3, 0.9, 1.7], |v| 6.0 * v);
    second_derivative(|t| t * t * t, x, |v| 6.0 * v);
}

#[test]
fn hessian_vector_product_of_a_small_mlp() {
    // L(w) = mean((tanh(x w1) w2 - y)^2); Hv = d/dw (dL/dw . v), checked against
    // (grad L(w + h v) - grad L(w - h v)) / 2h.
    let b = GraphBuilder::new("hvp");
    let mut rng = Rng::new(42);
    let x = b.constant(Array::from_f64([5, 3], rng.vec(15, -1.0, 1.0)).unwrap());
    let y = b.constant(Array::from_f64([5, 2], rng.vec(10, -1.0, 1.0)).unwrap());
    let w1 = b.input("w1", DType::F64, [3, 4]);
    let w2 = b.input("w2", DType::F64, [4, 2]);
    b.input("v1", DType::F64, [3, 4]);
    b.input("v2", DType::F64, [4, 2]);
    let loss = losses::mse(&x.matmul(&w1).tanh().matmul(&w2), &y, Reduction::Mean);
    b.output("loss", &loss);
    let mut g = b.finish().unwrap();
    let ids: Vec<NodeId> = ["w1", "w2", "v1", "v2"]
        .iter()
        .map(|n| g.input(n).unwrap())
        .collect();
    let l = g.output("loss").unwrap();
    let d = grad(&mut g, l, &ids[..2]).unwrap();
    // gv = sum(d1 * v1) + sum(d2 * v2)
    let mut gv = None;
    for k in 0..2 {
        let p = g
            .add(Op::Binary(BinaryOp::Mul), &[d[k], ids[k + 2]], None)
            .unwrap();
        let rank = g.node(p).ty.rank();
        let s = g
            .add(
                Op::Reduce {
                    op: ReduceOp::Sum,
                    axes: (0..rank).collect(),
                },
                &[p],
                None,
            )
            .unwrap();
        gv = Some(match gv {
            None => s,
            Some(prev) => g.add(Op::Binary(BinaryOp::Add), &[prev, s], None).unwrap(),
        });
    }
    let hv = grad(&mut g, gv.unwrap(), &ids[..2]).unwrap();
    for (k, name) in ["d1", "d2", "hv1", "hv2"].iter().enumerate() {
        let node = if k < 2 { d[k] } else { hv[k - 2] };
        g.set_output(*name, node).unwrap();
    }
    let w = [rng.vec(12, -1.0, 1.0), rng.vec(8, -1.0, 1.0)];
    let v = [rng.vec(12, -1.0, 1.0), rng.vec(8, -1.0, 1.0)];
    let inputs_at = |t: f64| {
        let shapes: [&[usize]; 2] = [&[3, 4], &[4, 2]];
        let mut inputs = vec![];
        for k in 0..2 {
            let wk: Vec<f64> = w[k].iter().zip(&v[k]).map(|(a, b)| a + t * b).collect();
            inputs.push((
                format!("w{}", k + 1),
                Array::from_f64(shapes[k], wk).unwrap(),
            ));
            inputs.push((
                format!("v{}", k + 1),
                Array::from_f64(shapes[k], v[k].clone()).unwrap(),
            ));
        }
        inputs
    };
    let at = common::run(&g, &inputs_at(0.0));
    let plus = common::run(&g, &inputs_at(H));
    let minus = common::run(&g, &inputs_at(-H));
    for k in 0..2 {
        let hv = common::output(&at, &format!("hv{}", k + 1)).to_f64_vec();
        let gp = common::output(&plus, &format!("d{}", k + 1)).to_f64_vec();
        let gm = common::output(&minus, &format!("d{}", k + 1)).to_f64_vec();
        for j in 0..hv.len() {
            let numeric = (gp[j] - gm[j]) / (2.0 * H);
            assert!(
                error(hv[j], numeric) < TOLERANCE,
                "hv{k}[{j}]: {} vs {numeric}",
                hv[j]
            );
        }
    }
}

/// `stop_gradient` passes its value and no gradient, which finite differences cannot see (the
/// numeric derivative of `x * stop(x)` is `2x`): the gradient must be exactly `stop(x) = x`.
#[test]
fn stop_gradient_passes_no_gradient() {
    let mut r = Raw::new(14);
    let x = r.signed(&[2, 3]);
    let s = r.op(Op::StopGradient, &[x]);
    let p = r.op(Op::Binary(BinaryOp::Mul), &[x, s]);
    let mut g = r.g;
    let d = grad(&mut g, p, &[x]).unwrap()[0];
    g.set_output("d", d).unwrap();
    let out = common::run(&g, &r.inputs);
    assert_eq!(common::output(&out, "d"), &r.inputs[0].1);
}
