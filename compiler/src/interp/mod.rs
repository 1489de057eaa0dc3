//! The reference interpreter: the definition of what a graph computes.
//!
//! Every later stage (the JIT, each optimization pass, each fusion) is tested against it, and
//! gradients are checked through it with finite differences in `f64`. It is kept simple and
//! unoptimized on purpose: plain loops over row-major elements, no unsafe code, and no panic on
//! a well-typed graph (one [`crate::verify::verify`] accepts) whatever the input values.
//!
//! # Semantics
//!
//! - Arithmetic on `f32` is done in `f32` (`f32::exp`, `f32::tanh`, ...) and on `f64` in `f64`,
//!   except sums: `reduce_sum`, `dot` and `scatter_add` on `f32` accumulate in `f64` and round
//!   once at the end. A sum takes its first term as it is (so summing one `-0.0` gives `-0.0`)
//!   and adds the others in row-major order; a sum of no terms is `0`.
//! - `recip` is `1/x`, `pow` is `powf`, `log` the natural logarithm.
//! - Float `max` and `min` (and `reduce_max`) are IEEE 754-2019 `maximum` and `minimum`: NaN if
//!   either operand is NaN, and `-0.0 < 0.0`. `reduce_max` of no elements is `-inf`.
//! - `i32`: `add`, `sub`, `mul`, `neg` and `abs` wrap; `div` truncates toward zero, gives 0 for
//!   a zero divisor and wraps for `i32::MIN / -1`; `max`, `min` are the usual ones;
//!   `reduce_max` of no elements is `i32::MIN`.
//! - Comparisons are IEEE on floats (every comparison with NaN is false except `ne`), and
//!   `false < true` on `bool`.
//! - `cast` follows Rust's `as`: floats to `i32` truncate toward zero and saturate, NaN gives 0;
//!   anything to `bool` is `x != 0` (so NaN gives `true`); `bool` to numbers is 0 or 1.
//! - Views are index maps (see [`crate::op::Op`]); `pad` fills with `value` converted as `cast`
//!   converts. `gather` clamps each index into `[0, n-1]`, and gives 0 everywhere when `n` is 0;
//!   `scatter_add` clamps each index into `[0, size-1]`.
//! - `random` is [`random_uniform`] of the seed operand, the op's stream and the element's
//!   row-major position; an `f64` result is the same `f32` value widened.

#[macro_use]
mod scalar;
mod elementwise;
mod reduce;
mod view;

#[cfg(test)]
mod tests;

use crate::array::{Array, Data};
use crate::collective::{Communicator, Single};
use crate::graph::{Graph, NodeId, Origin};
use crate::limits::{SizeError, check_graph};
use crate::op::{InputKind, Op};
use crate::types::Type;
use std::collections::HashMap;

use scalar::Elem;

/// Values computed by one [`run`].
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Each output of the graph with its value, in the graph's order.
    pub outputs: Vec<(String, Array)>,
    /// Each updated param or state with its new value, in the graph's order.
    pub updates: Vec<(String, Array)>,
}

impl Evaluation {
    /// The value of the output called `name`.
    pub fn output(&self, name: &str) -> Option<&Array> {
        self.outputs.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// The new value of the param or state called `name`, if the graph updates it.
    pub fn update(&self, name: &str) -> Option<&Array> {
        self.updates.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }
}

/// Why a graph cannot run on the inputs given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// An input of the graph has no value.
    #[error("missing {} `{name}` ({ty})", kind.mnemonic())]
    MissingInput {
        /// The input's name.
        name: String,
        /// Data, parameter or state.
        kind: InputKind,
        /// The type the graph expects.
        ty: Box<Type>,
    },
    /// Inputs given by position are too few or too many.
    #[error("the program takes {expected} data inputs, {found} were given")]
    InputCount {
        /// Data inputs the program has.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A value names no input of the graph.
    #[error("unexpected input `{0}`: the graph has no input of that name")]
    UnexpectedInput(String),
    /// A value's type differs from its input's.
    #[error("input `{name}` has type {found}, the graph expects {expected}")]
    InputType {
        /// The input's name.
        name: String,
        /// The type the graph expects.
        expected: Box<Type>,
        /// The type of the value given.
        found: Box<Type>,
    },
    /// The graph computes more than the interpreter may allocate ([`crate::limits`]).
    #[error(transparent)]
    TooLarge(#[from] SizeError),
    /// The numerics check (an executable's, opt-in) found NaN or an infinity in a data input,
    /// param or state before the first kernel ran.
    #[error("{} `{name}` holds {value}{}", kind.mnemonic(), at_element(index))]
    NonFiniteInput {
        /// The input's name.
        name: String,
        /// Data, parameter or state.
        kind: InputKind,
        /// The first such value.
        value: NonFinite,
        /// Its position (row-major first).
        index: Vec<usize>,
    },
    /// The numerics check (an executable's, opt-in) found NaN or an infinity that a kernel
    /// wrote, every value the kernel read having passed the check.
    #[error(
        "kernel k{kernel} produced {value} in `{op}`{}{} ({})",
        name.as_ref().map_or(String::new(), |n| format!(" %{n}")),
        at_element(index),
        origin.as_ref().map_or("no source location".into(), |o| o.to_string())
    )]
    NonFiniteResult {
        /// The kernel, numbered as `kiln dump --stage kernels` numbers them.
        kernel: usize,
        /// The mnemonic of the graph node whose value the kernel wrote.
        op: &'static str,
        /// The node's name, if it has one.
        name: Option<String>,
        /// Where the user's code asked for the node.
        origin: Option<Origin>,
        /// The first such value.
        value: NonFinite,
        /// Its position in the node's value (row-major first).
        index: Vec<usize>,
    },
}

/// `" at element [i, j]"` for an element of a tensor; nothing for a scalar's one element.
fn at_element(index: &[usize]) -> String {
    match index {
        [] => String::new(),
        _ => format!(" at element {index:?}"),
    }
}

/// A float value that is not a finite number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonFinite {
    /// Not a number.
    NaN,
    /// Positive infinity.
    Infinity,
    /// Negative infinity.
    NegInfinity,
}

impl NonFinite {
    /// What `v` is, if it is not finite.
    pub fn of(v: f64) -> Option<NonFinite> {
        match v {
            _ if v.is_nan() => Some(NonFinite::NaN),
            f64::INFINITY => Some(NonFinite::Infinity),
            f64::NEG_INFINITY => Some(NonFinite::NegInfinity),
            _ => None,
        }
    }
}

impl std::fmt::Display for NonFinite {
    /// `NaN`, `infinity` or `-infinity`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NonFinite::NaN => "NaN",
            NonFinite::Infinity => "infinity",
            NonFinite::NegInfinity => "-infinity",
        })
    }
}

/// Evaluates `g` (which must pass [`crate::verify::verify`]) on `inputs`, one value for each of
/// its data, param and state inputs, by name.
///
/// Only the nodes the outputs and updates depend on are evaluated, operands first, in
/// [`Graph::topo_order`]. Every input must be bound, needed or not. Fails before evaluating
/// anything, with the first problem found: a graph over the limits of [`crate::limits`] is
/// refused, then the graph's inputs are checked in creation order
/// (missing, then mistyped), then the names that match no input, alphabetically.
pub fn run(g: &Graph, inputs: &HashMap<String, Array>) -> Result<Evaluation, RunError> {
    run_with(g, inputs, &Single)
}

/// [`run`] as one rank of a data-parallel job: `all_reduce` sums over the ranks of `comm`
/// (every rank must run the same graph).
pub fn run_with(
    g: &Graph,
    inputs: &HashMap<String, Array>,
    comm: &dyn Communicator,
) -> Result<Evaluation, RunError> {
    check_graph(g)?;
    check_inputs(g, inputs)?;
    let values = evaluate(g, inputs, comm);
    let collect = |named: &[(String, NodeId)]| {
        named
            .iter()
            .map(|(name, id)| (name.clone(), values[id].clone()))
            .collect()
    };
    Ok(Evaluation {
        outputs: collect(g.outputs()),
        updates: collect(g.updates()),
    })
}

/// Checks that `inputs` binds exactly the inputs of `g`, each with its type.
fn check_inputs(g: &Graph, inputs: &HashMap<String, Array>) -> Result<(), RunError> {
    for id in g.inputs() {
        let (kind, name) = g
            .node(id)
            .op
            .as_input()
            .expect("Graph::inputs gives inputs");
        let expected = &g.node(id).ty;
        let Some(value) = inputs.get(name) else {
            return Err(RunError::MissingInput {
                name: name.into(),
                kind,
                ty: Box::new(expected.clone()),
            });
        };
        if value.ty() != *expected {
            return Err(RunError::InputType {
                name: name.into(),
                expected: Box::new(expected.clone()),
                found: Box::new(value.ty()),
            });
        }
    }
    let mut unexpected: Vec<&String> = inputs.keys().filter(|n| g.input(n).is_none()).collect();
    unexpected.sort();
    match unexpected.first() {
        Some(name) => Err(RunError::UnexpectedInput(name.to_string())),
        None => Ok(()),
    }
}

/// The value of every node in [`Graph::live_nodes`], given checked `inputs`.
fn evaluate(
    g: &Graph,
    inputs: &HashMap<String, Array>,
    comm: &dyn Communicator,
) -> HashMap<NodeId, Array> {
    let needed = g.live_nodes();
    let mut values = HashMap::new();
    for id in g.topo_order().into_iter().filter(|id| needed.contains(id)) {
        let node = g.node(id);
        let value = match node.op.as_input() {
            Some((_, name)) => inputs[name].clone(),
            None => {
                let operands = g.operands(id);
                let args: Vec<&Array> = operands.iter().map(|o| &values[o]).collect();
                match node.op {
                    Op::AllReduce => all_reduce(args[0], comm),
                    _ => eval_op(&node.op, &node.ty, &args),
                }
            }
        };
        values.insert(id, value);
    }
    values
}

/// The value of one primitive applied to concrete operands; `ty` is the result type
/// [`crate::infer::infer`] gives for these operands. The semantics are those of the module
/// documentation.
///
/// Panics if `op` is an input (inputs have no value of their own: [`run`] binds them) or
/// `all_reduce` (which needs the ranks of a job: [`run_with`], [`all_reduce`]), or if the
/// operands are not of types `infer` accepts for `op`.
pub fn eval_op(op: &Op, ty: &Type, args: &[&Array]) -> Array {
    let out = &ty.shape;
    let data = match op {
        Op::Input { kind, name, .. } => {
            panic!(
                "{} `{name}` has no value of its own: `run` binds it",
                kind.mnemonic()
            )
        }
        Op::Constant(a) => a.data().clone(),
        Op::Iota { axis, .. } => {
            Data::from_f64(ty.dtype, view::positions(out).map(|i| i[*axis] as f64))
        }
        Op::Random { stream, .. } => {
            let seed = i32::of(args[0])[0];
            let values = (0..ty.numel()).map(|i| random_uniform(seed, *stream, i as u32));
            Data::from_f64(ty.dtype, values.map(f64::from))
        }
        Op::Unary(u) => elementwise::unary(*u, args[0]),
        Op::Binary(b) => elementwise::binary(*b, args[0], args[1]),
        Op::Compare(c) => elementwise::compare(*c, args[0], args[1]),
        Op::Select => elementwise::select(args[0], args[1], args[2]),
        Op::StopGradient => args[0].data().clone(),
        Op::Cast(to) => elementwise::cast(args[0], *to),
        Op::Reduce { op, axes } => {
            with_num!(ty.dtype, T => T::data(reduce::reduce::<T>(*op, args[0], axes, out)))
        }
        Op::Reshape(_) => args[0].data().clone(),
        Op::Permute(perm) => view::permute(args[0], perm, out),
        Op::Broadcast(_) => view::broadcast(args[0], out),
        Op::Slice { start, step, .. } => view::slice(args[0], start, step, out),
        Op::Pad {
            low,
            interior,
            value,
            ..
        } => view::pad(args[0], low, interior, *value, out),
        Op::Windows {
            stride, dilation, ..
        } => view::windows(args[0], stride, dilation, out),
        Op::Concat { axis } => {
            with_elem!(ty.dtype, T => T::data(view::concat::<T>(args, *axis, out)))
        }
        Op::Dot => with_num!(ty.dtype, T => T::data(reduce::dot::<T>(args[0], args[1], out))),
        Op::Gather { axis } => view::gather(args[0], args[1], *axis, out),
        Op::ScatterAdd { axis, .. } => with_num!(
            ty.dtype,
            T => T::data(reduce::scatter_add::<T>(args[0], args[1], *axis, out))
        ),
        Op::AllReduce => panic!("all_reduce needs the ranks of a job: `run_with` evaluates it"),
    };
    Array::new(out, data).expect("every op computes one element per position of its result type")
}

/// The value of `all_reduce(x)` on this rank of `comm`: the sum of every rank's `x`.
pub fn all_reduce(x: &Array, comm: &dyn Communicator) -> Array {
    let mut sum = x.clone();
    match sum.data_mut() {
        Data::F32(v) => comm.all_reduce_f32(v),
        Data::F64(v) => comm.all_reduce_f64(v),
        _ => panic!("all_reduce of {}: `infer` takes floats only", x.dtype()),
    }
    sum
}

/// The counter-based uniform generator behind `random`: a value in `[0, 1)` that is a pure
/// function of `seed`, `stream` and `index` (an element's row-major position, as `u32`: it
/// wraps beyond `2^32` elements).
///
/// With `mix` the 32-bit integer hash below, `key = mix(seed ^ mix(stream + 0x9e3779b9))`,
/// `bits = mix(index * 0x9e3779b9 ^ key)` (wrapping arithmetic on `u32`), and the value is the
/// top 24 bits of `bits` times `2^-24`, exact in `f32`. The JIT computes the same bits with
/// 32-bit integer vector operations.
pub fn random_uniform(seed: i32, stream: u32, index: u32) -> f32 {
    let key = mix((seed as u32) ^ mix(stream.wrapping_add(0x9e37_79b9)));
    let bits = mix(index.wrapping_mul(0x9e37_79b9) ^ key);
    (bits >> 8) as f32 * (1.0 / (1u32 << 24) as f32)
}

/// A 32-bit integer hash with good avalanche: Chris Wellons' `lowbias32` (xor-shifts and two
/// odd multipliers).
pub(crate) fn mix(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}
