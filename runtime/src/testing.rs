//! The differential check of compiled code against the interpreter, shared by the property test
//! (tests/jit_random.rs) and the `graphs` fuzz target (fuzz/harness.rs).
//!
//! Graphs without approximated arithmetic must match bit for bit (any NaN equals any NaN), on
//! hostile inputs (NaN, infinities, signed zeros, subnormals, huge magnitudes, i32 extremes):
//! every other operation is exact in both, so a single differing bit is a bug. Approximated
//! arithmetic is exp, log and tanh (inline approximations, up to 7 ulp) and float sums and matrix
//! products (the JIT accumulates f32 in f32, in vector lanes; the interpreter in f64). Graphs
//! with them get moderate inputs (floats in [-2, 2]) and a tolerance of
//! `1e-4 (1 + |y|) + 100 s` per element, where `s` is how far the interpreter's own result moves
//! when every float input is perturbed by a relative 1e-6: up to 7 ulp (4.2e-7 relative) of
//! error in each of up to 40 operations perturbs intermediate values by less than 2e-5, so a
//! hundred times the sensitivity to 1e-6 (that of a 1e-4 perturbation) bounds what the approximations can change, while a wrong kernel is off
//! by far more.

use crate::{CompileError, Executable, Options, StateError};
use kiln_compiler::interp::{self, RunError};
use kiln_compiler::testing::random_inputs;
use kiln_compiler::text::print;
use kiln_compiler::{Array, DType, Data, Graph, InputKind, Op, ReduceOp, UnaryOp};
use std::collections::HashMap;

/// Why compiled code and the interpreter disagree on a graph, or could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum Discrepancy {
    /// The interpreter refused the graph or its inputs.
    #[error("the interpreter refused the graph: {0}")]
    Interpreter(RunError),
    /// Compilation failed.
    #[error("compiling with {options:?} failed: {source}")]
    Compile {
        /// The options compiled with.
        options: Options,
        /// Why (boxed: with the options, the error would make every `Discrepancy` large).
        source: Box<CompileError>,
    },
    /// The compiled program refused a state value.
    #[error("setting state with {options:?} failed: {source}")]
    State {
        /// The options compiled with.
        options: Options,
        /// Why.
        source: StateError,
    },
    /// The compiled program refused its inputs.
    #[error("running with {options:?} failed: {source}")]
    Run {
        /// The options compiled with.
        options: Options,
        /// Why (boxed, as a compile error is).
        source: Box<RunError>,
    },
    /// A result differs beyond the tolerance.
    #[error("{what} ({options:?})\n{graph}")]
    Differs {
        /// The options compiled with.
        options: Options,
        /// Which result and element differ, and by how much.
        what: String,
        /// The graph, in text form.
        graph: String,
    },
}

/// True if `g` has an operation whose JIT result may differ from the interpreter's by rounding.
pub fn approximated(g: &Graph) -> bool {
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

/// The option sets every graph is compiled with: optimized and fused, fused without
/// optimization, and unfused on two threads.
pub fn configurations() -> [Options; 3] {
    let base = Options {
        optimize: true,
        fuse: true,
        threads: 1,
        keep_text: false,
        ..Options::default()
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

/// Compiles `g` with every one of [`configurations`], runs it on inputs picked by `seed`, and
/// compares outputs and updated states with the interpreter's under the rule of this module.
pub fn check_against_interpreter(g: &Graph, seed: u64) -> Result<(), Discrepancy> {
    if !approximated(g) {
        let inputs = random_inputs(g, seed);
        let want = interpret(g, &inputs)?;
        for options in configurations() {
            let got = jit(g, &inputs, &options)?;
            same_names(g, &options, &got, &want)?;
            for ((name, a), (_, b)) in got.iter().zip(&want) {
                if !bitwise_equal(a, b) {
                    return Err(differs(
                        g,
                        options,
                        format!("{name} differs: jit {a}, want {b}"),
                    ));
                }
            }
        }
        return Ok(());
    }
    let inputs = moderate_inputs(g, seed);
    let want = interpret(g, &inputs)?;
    let probes = (0..3)
        .map(|k| interpret(g, &perturbed(&inputs, seed.wrapping_add(k))))
        .collect::<Result<Vec<_>, _>>()?;
    for options in configurations() {
        let got = jit(g, &inputs, &options)?;
        same_names(g, &options, &got, &want)?;
        for (i, ((name, a), (_, b))) in got.iter().zip(&want).enumerate() {
            if a.ty() != b.ty() {
                let what = format!("{name} is {}, want {}", a.ty(), b.ty());
                return Err(differs(g, options, what));
            }
            let (av, bv) = (a.to_f64_vec(), b.to_f64_vec());
            // Each probe's values once per output, not once per element that differs: with
            // approximated arithmetic most elements may differ by an ulp, and a large output
            // would otherwise cost its size squared.
            let pv: Vec<Vec<f64>> = probes.iter().map(|p| p[i].1.to_f64_vec()).collect();
            for j in 0..av.len() {
                let (x, y) = (av[j], bv[j]);
                // Overflow is overflow: summed in another order, inf - inf may meet as NaN in
                // one and not the other.
                if (!x.is_finite() && !y.is_finite()) || x == y {
                    continue;
                }
                let s = pv.iter().map(|p| (p[j] - y).abs()).fold(0.0, f64::max);
                let tol = 1e-4 * (1.0 + y.abs()) + 100.0 * s;
                if !((x - y).abs() <= tol || s.is_nan() || s.is_infinite()) {
                    let what = format!("{name}[{j}]: jit {x} vs {y} (tolerance {tol:e})");
                    return Err(differs(g, options, what));
                }
            }
        }
    }
    Ok(())
}

/// Checks that `got` and `want` name the same results in the same order.
fn same_names(
    g: &Graph,
    options: &Options,
    got: &Results,
    want: &Results,
) -> Result<(), Discrepancy> {
    let names = |r: &Results| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(got) != names(want) {
        let what = format!("results {:?}, want {:?}", names(got), names(want));
        return Err(differs(g, options.clone(), what));
    }
    Ok(())
}

fn differs(g: &Graph, options: Options, what: String) -> Discrepancy {
    Discrepancy::Differs {
        options,
        what,
        graph: print(g),
    }
}

/// Outputs, then updated states, by name.
type Results = Vec<(String, Array)>;

fn interpret(g: &Graph, inputs: &HashMap<String, Array>) -> Result<Results, Discrepancy> {
    let e = interp::run(g, inputs).map_err(Discrepancy::Interpreter)?;
    Ok(e.outputs.into_iter().chain(e.updates).collect())
}

fn jit(
    g: &Graph,
    inputs: &HashMap<String, Array>,
    options: &Options,
) -> Result<Results, Discrepancy> {
    let mut exe = Executable::compile(g, options).map_err(|source| Discrepancy::Compile {
        options: options.clone(),
        source: Box::new(source),
    })?;
    let data = bind(&mut exe, g, inputs).map_err(|source| Discrepancy::State {
        options: options.clone(),
        source,
    })?;
    let mut out = exe.run(&data).map_err(|source| Discrepancy::Run {
        options: options.clone(),
        source: Box::new(source),
    })?;
    for (name, _) in g.updates() {
        let Some(a) = exe.state(name) else {
            let what = format!("the program has no state `{name}` to update");
            return Err(differs(g, options.clone(), what));
        };
        out.push((name.clone(), a));
    }
    Ok(out)
}

/// Sets the params and states of `exe`, compiled from `g`, to their values in `inputs`, and
/// gives the data inputs, to run it with.
fn bind(
    exe: &mut Executable,
    g: &Graph,
    inputs: &HashMap<String, Array>,
) -> Result<HashMap<String, Array>, StateError> {
    let mut data = HashMap::new();
    for id in g.inputs() {
        let Some((kind, name)) = g.node(id).op.as_input() else {
            continue;
        };
        if kind == InputKind::Data {
            data.insert(name.to_string(), inputs[name].clone());
        } else {
            exe.set_state(name, &inputs[name])?;
        }
    }
    Ok(data)
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
        .filter_map(|id| {
            let n = g.node(id);
            let (_, name) = n.op.as_input()?;
            let k = n.ty.numel();
            let data = match n.ty.dtype {
                DType::F32 => Data::F32((0..k).map(|_| (next() * 4.0 - 2.0) as f32).collect()),
                DType::F64 => Data::F64((0..k).map(|_| next() * 4.0 - 2.0).collect()),
                DType::I32 => Data::I32((0..k).map(|_| (next() * 7.0) as i32 - 3).collect()),
                DType::Bool => Data::Bool((0..k).map(|_| next() < 0.5).collect()),
            };
            Some((name.to_string(), Array::new(&n.ty.shape, data).ok()?))
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
            let perturbed = Array::new(a.shape(), data).unwrap_or_else(|_| a.clone());
            (n.clone(), perturbed)
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
