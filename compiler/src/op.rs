//! The primitive operations. Every higher-level operation (relu, softmax, cross-entropy, an LSTM
//! cell) is a composition of these, so autodiff needs one rule per primitive and fusion sees
//! through everything.
//!
//! Ops fall into groups ([`OpGroup`]): leaves, elementwise, reductions, views (which only change
//! how memory is indexed) and the rest. The spelling of each op in the text form is its
//! [`Op::mnemonic`]; docs/ir.md lists the semantics of each.

use crate::array::Array;
use crate::types::{Axes, DType, Shape, Type};

/// What a graph leaf fed from outside is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// Data bound at every run (a batch, labels, a learning rate). Text: `input`.
    Data,
    /// A trainable parameter, kept between runs. Text: `param`.
    Param,
    /// Other state kept between runs (optimizer moments, step counters, running statistics).
    /// Text: `state`.
    State,
}

impl InputKind {
    /// The spelling in the text form.
    pub fn mnemonic(self) -> &'static str {
        match self {
            InputKind::Data => "input",
            InputKind::Param => "param",
            InputKind::State => "state",
        }
    }

    /// True for parameters and state: inputs that persist between runs and may be updated.
    pub fn is_persistent(self) -> bool {
        self != InputKind::Data
    }
}

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `e^x` (floats).
    Exp,
    /// Natural logarithm (floats).
    Log,
    /// Square root (floats).
    Sqrt,
    /// `1/x` (floats).
    Recip,
    /// Hyperbolic tangent (floats).
    Tanh,
}

impl UnaryOp {
    /// Every unary op.
    pub const ALL: [UnaryOp; 7] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Recip,
        UnaryOp::Tanh,
    ];

    /// The spelling in the text form.
    pub fn mnemonic(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Recip => "recip",
            UnaryOp::Tanh => "tanh",
        }
    }

    /// True when the op is defined on floats only.
    pub fn float_only(self) -> bool {
        !matches!(self, UnaryOp::Neg | UnaryOp::Abs)
    }
}

/// Elementwise functions of two operands of equal type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b` (for `i32`: truncating, and 0 where `b` is 0).
    Div,
    /// The larger of `a` and `b` (NaN if either is NaN).
    Max,
    /// The smaller of `a` and `b` (NaN if either is NaN).
    Min,
    /// `a` to the power `b` (floats).
    Pow,
}

impl BinaryOp {
    /// Every binary op.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Max,
        BinaryOp::Min,
        BinaryOp::Pow,
    ];

    /// The spelling in the text form.
    pub fn mnemonic(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Pow => "pow",
        }
    }
}

/// Elementwise comparisons; the result is `bool`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CmpOp {
    /// Every comparison.
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ];

    /// The spelling in the text form.
    pub fn mnemonic(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
        }
    }
}

/// How a reduction combines elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum (0 over no elements).
    Sum,
    /// Maximum (the lowest value of the type over no elements; NaN if any element is NaN).
    Max,
}

impl ReduceOp {
    /// The spelling in the text form.
    pub fn mnemonic(self) -> &'static str {
        match self {
            ReduceOp::Sum => "reduce_sum",
            ReduceOp::Max => "reduce_max",
        }
    }
}

/// The family an op belongs to; later stages (fusion, codegen) dispatch on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpGroup {
    /// No operands computed in the graph: inputs, constants, iota, random.
    Leaf,
    /// One output element from the same position of each operand.
    Elementwise,
    /// Combines elements along axes.
    Reduce,
    /// Changes only how elements are indexed; computes nothing.
    View,
    /// Everything else (concat, dot, gather, scatter_add).
    Other,
}

/// A primitive operation with its static attributes.
///
/// Ops whose result type cannot be computed from their operands (inputs, iota, random, reshape,
/// broadcast, cast) carry that type or shape; [`crate::infer::infer`] derives every other result
/// type.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A value fed from outside: data, a parameter or state. No operands.
    Input {
        /// Data, parameter or state.
        kind: InputKind,
        /// The name it is bound by (unique among a graph's inputs).
        name: String,
        /// Its type.
        ty: Type,
    },
    /// A constant tensor. No operands.
    Constant(Array),
    /// Each element is its index along `axis`. No operands.
    Iota {
        /// The axis whose index is the value.
        axis: usize,
        /// Result type (numeric).
        ty: Type,
    },
    /// Counter-based uniform random numbers in `[0, 1)`, a pure function of the seed operand
    /// (an `i32[]`), the `stream` and the element's position (see `interp::random_uniform`).
    Random {
        /// Distinguishes independent streams under the same seed.
        stream: u32,
        /// Result type (float).
        ty: Type,
    },
    /// Elementwise function of one operand.
    Unary(UnaryOp),
    /// Elementwise function of two operands of equal type.
    Binary(BinaryOp),
    /// Elementwise comparison of two operands of equal type; the result is `bool`.
    Compare(CmpOp),
    /// `select(c, a, b)`: `a` where `c` (a `bool` tensor) is true, else `b`; all of equal shape.
    Select,
    /// The operand unchanged, but a constant to autodiff: no gradient flows through it (JAX's
    /// `stop_gradient`). Kept as a primitive because a value's gradient being zero is a fact
    /// about the model (the max subtracted in a stable softmax), not something arithmetic can
    /// express.
    StopGradient,
    /// Elementwise conversion to another element type: floats to `i32` truncate toward zero and
    /// saturate (NaN becomes 0); anything to `bool` is `x != 0`; `bool` to numbers is 0 or 1.
    Cast(DType),
    /// Combines elements over `axes` (sorted, distinct); those axes disappear from the shape.
    Reduce {
        /// Sum or max.
        op: ReduceOp,
        /// Axes reduced over.
        axes: Axes,
    },
    /// The same elements, row-major, under another shape of equal element count. View.
    Reshape(Shape),
    /// Axes reordered: result axis `i` is operand axis `perm[i]`. View.
    Permute(Axes),
    /// Axes of extent 1 repeated to a larger extent; the rank is unchanged. View.
    Broadcast(Shape),
    /// `x[start:end:step]` on every axis (`step >= 1`). View.
    Slice {
        /// First index per axis.
        start: Shape,
        /// One past the last index per axis.
        end: Shape,
        /// Stride per axis.
        step: Shape,
    },
    /// `low` and `high` elements of `value` added before and after each axis, and `interior`
    /// between neighbouring elements. View.
    Pad {
        /// Elements added before, per axis.
        low: Shape,
        /// Elements added after, per axis.
        high: Shape,
        /// Elements added between neighbours, per axis.
        interior: Shape,
        /// The value of the added elements.
        value: f64,
    },
    /// Sliding windows over the trailing `window.len()` axes: `[.., H, W]` becomes
    /// `[.., OH, OW, KH, KW]` with element `[.., i, j, p, q] = x[.., i*sh + p*dh, j*sw + q*dw]`.
    /// View; convolution and pooling are a window view followed by a dot or a reduction.
    Windows {
        /// Window extent per spatial axis.
        window: Shape,
        /// Step between window origins per spatial axis.
        stride: Shape,
        /// Step between elements of a window per spatial axis.
        dilation: Shape,
    },
    /// Operands joined along `axis`; every other extent equal. One or more operands.
    Concat {
        /// The axis joined along.
        axis: usize,
    },
    /// Batched matrix product: `[.., M, K] x [.., K, N] -> [.., M, N]`, equal batch extents.
    Dot,
    /// `gather(x, idx)`: NumPy's `take(x, idx, axis)`; the result shape is
    /// `x[..axis] ++ idx ++ x[axis+1..]`. Indices (`i32`) are clamped into range.
    Gather {
        /// The axis indexed.
        axis: usize,
    },
    /// `scatter_add(idx, u)`: zeros of extent `size` on `axis`, with `u`'s slices added at the
    /// (clamped) positions `idx` names; the adjoint of [`Op::Gather`]. The result shape is
    /// `u[..axis] ++ [size] ++ u[axis+idx.rank..]`.
    ScatterAdd {
        /// The axis scattered along.
        axis: usize,
        /// Its extent in the result.
        size: usize,
    },
    /// The elementwise sum of its operand over every rank of a data-parallel job (floats),
    /// through the [`crate::collective::Communicator`] the graph runs with; the identity on
    /// one rank.
    AllReduce,
}

/// Every mnemonic of the text form, one per primitive (inputs count once per kind).
pub const MNEMONICS: &[&str] = &[
    "input",
    "param",
    "state",
    "constant",
    "iota",
    "random",
    "neg",
    "abs",
    "exp",
    "log",
    "sqrt",
    "recip",
    "tanh",
    "add",
    "sub",
    "mul",
    "div",
    "max",
    "min",
    "pow",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "select",
    "stop_gradient",
    "cast",
    "reduce_sum",
    "reduce_max",
    "reshape",
    "permute",
    "broadcast",
    "slice",
    "pad",
    "windows",
    "concat",
    "dot",
    "gather",
    "scatter_add",
    "all_reduce",
];

impl Op {
    /// The spelling of the op in the text form.
    pub fn mnemonic(&self) -> &'static str {
        match self {
            Op::Input { kind, .. } => kind.mnemonic(),
            Op::Constant(_) => "constant",
            Op::Iota { .. } => "iota",
            Op::Random { .. } => "random",
            Op::Unary(u) => u.mnemonic(),
            Op::Binary(b) => b.mnemonic(),
            Op::Compare(c) => c.mnemonic(),
            Op::Select => "select",
            Op::StopGradient => "stop_gradient",
            Op::Cast(_) => "cast",
            Op::Reduce { op, .. } => op.mnemonic(),
            Op::Reshape(_) => "reshape",
            Op::Permute(_) => "permute",
            Op::Broadcast(_) => "broadcast",
            Op::Slice { .. } => "slice",
            Op::Pad { .. } => "pad",
            Op::Windows { .. } => "windows",
            Op::Concat { .. } => "concat",
            Op::Dot => "dot",
            Op::Gather { .. } => "gather",
            Op::ScatterAdd { .. } => "scatter_add",
            Op::AllReduce => "all_reduce",
        }
    }

    /// The family of the op.
    pub fn group(&self) -> OpGroup {
        match self {
            Op::Input { .. } | Op::Constant(_) | Op::Iota { .. } | Op::Random { .. } => {
                OpGroup::Leaf
            }
            Op::Unary(_)
            | Op::Binary(_)
            | Op::Compare(_)
            | Op::Select
            | Op::StopGradient
            | Op::Cast(_) => OpGroup::Elementwise,
            Op::Reduce { .. } => OpGroup::Reduce,
            Op::Reshape(_)
            | Op::Permute(_)
            | Op::Broadcast(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Windows { .. } => OpGroup::View,
            Op::Concat { .. }
            | Op::Dot
            | Op::Gather { .. }
            | Op::ScatterAdd { .. }
            | Op::AllReduce => OpGroup::Other,
        }
    }

    /// How many operands the op takes: `Some(n)` exactly, `None` for one or more (concat).
    pub fn arity(&self) -> Option<usize> {
        match self {
            Op::Input { .. } | Op::Constant(_) | Op::Iota { .. } => Some(0),
            Op::Random { .. }
            | Op::Unary(_)
            | Op::StopGradient
            | Op::Cast(_)
            | Op::Reduce { .. }
            | Op::Reshape(_)
            | Op::Permute(_)
            | Op::Broadcast(_)
            | Op::Slice { .. }
            | Op::Pad { .. }
            | Op::Windows { .. }
            | Op::AllReduce => Some(1),
            Op::Binary(_)
            | Op::Compare(_)
            | Op::Dot
            | Op::Gather { .. }
            | Op::ScatterAdd { .. } => Some(2),
            Op::Select => Some(3),
            Op::Concat { .. } => None,
        }
    }

    /// The input's kind and name, if this op is an input.
    pub fn as_input(&self) -> Option<(InputKind, &str)> {
        match self {
            Op::Input { kind, name, .. } => Some((*kind, name)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnemonics_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for m in MNEMONICS {
            assert!(seen.insert(m), "{m} listed twice");
        }
    }

    #[test]
    fn every_elementwise_mnemonic_is_listed() {
        let all = UnaryOp::ALL
            .iter()
            .map(|u| u.mnemonic())
            .chain(BinaryOp::ALL.iter().map(|b| b.mnemonic()))
            .chain(CmpOp::ALL.iter().map(|c| c.mnemonic()));
        for m in all {
            assert!(MNEMONICS.contains(&m), "{m} missing from MNEMONICS");
        }
    }
}
