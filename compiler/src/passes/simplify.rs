//! Algebraic simplification: identities of arithmetic, selects and casts, views that do
//! nothing or compose into one, and elementwise ops moved inside broadcasts.
//!
//! Each rule is exact under the interpreter's semantics for every value of `x`, including
//! `-0.0`, the infinities and NaN (up to NaN payloads, which the interpreter does not define),
//! and for `i32`'s wrapping arithmetic; the justification is with each rule. A "splat `c`" is
//! an operand every element of which is the constant `c`, bit for bit ([`splat_value`]: a
//! constant seen through reshapes and broadcasts); the rules compare signed zeros by sign.
//!
//! Deliberately not rewritten:
//! - `x * 0 -> 0` on floats: `NaN * 0` and `inf * 0` are NaN, and `-3 * 0` is `-0.0`. (On
//!   `i32` it is exact and done.)
//! - `x + 0.0 -> x` on floats: `-0.0 + 0.0` is `0.0`, so only `x + (-0.0)` is the identity.
//!   Likewise `x - (-0.0)` is `x + 0.0`, not `x`.
//! - `x - x -> 0` on floats: `inf - inf` and `NaN - NaN` are NaN. (On `i32` it is done.)
//! - `x / x -> 1` on any type: `0 / 0` is NaN on floats and 0 on `i32`.
//! - Commuted operands (`a + b` vs `b + a`) are not put in one order: the graph rarely has
//!   both, and a NaN's payload may depend on the order.
//! - Transposes around `dot` (`dot(bᵀ, aᵀ)ᵀ -> dot(a, b)` is exact: the same products, summed
//!   in the same order): autodiff never builds that pattern, and a transposed operand is free
//!   for the GEMM call codegen makes (a layout flag), so there is nothing to gain here.

use super::rewrite::{Rewrite, apply, rewrite_used};
use super::splat::splat_value;
use crate::array::Array;
use crate::graph::{Graph, NodeId, Operands};
use crate::op::{BinaryOp, Op, OpGroup, UnaryOp};
use crate::types::{Axes, DType};
use smallvec::smallvec;

/// Applies the algebraic identities of this module to every used node, in topological order,
/// so chains (a reshape of a reshape of a reshape) collapse in one run. Returns true if it
/// changed anything. A replacement keeps the replaced node's exact type.
pub fn simplify(g: &mut Graph) -> bool {
    rewrite_used(g, |g, id| {
        let Some(rewrite) = rule(g, id) else {
            return false;
        };
        apply(g, id, rewrite);
        true
    })
}

/// The first rule that applies to node `id`, if any.
fn rule(g: &Graph, id: NodeId) -> Option<Rewrite> {
    let node = g.node(id);
    let x = g.operands(id);
    let identity = match &node.op {
        Op::Unary(UnaryOp::Neg) => neg(g, x[0]),
        Op::Binary(b) => binary(g, *b, x[0], x[1], node.ty.dtype),
        Op::Select => select(g, x[0], x[1], x[2], node.ty.dtype),
        Op::Cast(to) => (g.node(x[0]).ty.dtype == *to).then_some(Rewrite::Use(x[0])),
        Op::Reduce { axes, .. } => reduce(g, id, x[0], axes),
        Op::Reshape(_) | Op::Broadcast(_) | Op::Permute(_) => view_chain(g, id, x[0]),
        Op::Slice { start, .. } => {
            // Starting at 0 with the operand's extents, a slice takes every element: on an
            // axis of extent d >= 2 a step of 2 or more would give at most ceil(d/2) < d.
            let all = start.iter().all(|&s| s == 0) && g.node(x[0]).ty == node.ty;
            all.then_some(Rewrite::Use(x[0]))
        }
        // Padding that leaves the extents as they are adds no element (interior padding on an
        // axis of extent 0 or 1 has no neighbours to go between).
        Op::Pad { .. } => (g.node(x[0]).ty == node.ty).then_some(Rewrite::Use(x[0])),
        // A concat of the result's type is that operand: the others are empty on the axis.
        Op::Concat { .. } => x
            .iter()
            .find(|&&o| g.node(o).ty == node.ty)
            .map(|&o| Rewrite::Use(o)),
        _ => None,
    };
    match identity {
        None if node.op.group() == OpGroup::Elementwise => hoist_broadcasts(g, &node.op, &x),
        identity => identity,
    }
}

/// `f(broadcast(a), broadcast(b), ..) -> broadcast(f(a, b, ..))` for an elementwise `f` whose
/// operands are all broadcasts from operands of one shape: each result element is `f` of the
/// operands' elements at one position of that shape, so `f` is computed once per element of
/// `a` instead of once per repeat (Adam's bias corrections, computed on scalars instead of on
/// every parameter). Exact: the same values go through the same op. Tried after the
/// identities, so `broadcast(x) * 1` is still `broadcast(x)`.
fn hoist_broadcasts(g: &Graph, op: &Op, x: &[NodeId]) -> Option<Rewrite> {
    let inner = x
        .iter()
        .map(|&o| matches!(g.node(o).op, Op::Broadcast(_)).then(|| g.operands(o)[0]))
        .collect::<Option<Operands>>()?;
    let shape = &g.node(inner[0]).ty.shape;
    let same = inner.iter().all(|&i| g.node(i).ty.shape == *shape);
    same.then(|| Rewrite::Broadcast(op.clone(), inner))
}

/// True when node `id` is a splat whose element is `value`, bit for bit (so `0.0` is not
/// `-0.0`; `i32` and `bool` elements compare as their exact `f64` values).
fn is(g: &Graph, id: NodeId, value: f64) -> bool {
    splat_value(g, id).is_some_and(|v| v.to_bits() == value.to_bits())
}

/// `neg(neg(y)) -> y`: negation flips the sign bit of a float, and wrapping negation on `i32`
/// is its own inverse (`i32::MIN` included).
fn neg(g: &Graph, x: NodeId) -> Option<Rewrite> {
    match g.node(x).op {
        Op::Unary(UnaryOp::Neg) => Some(Rewrite::Use(g.operands(x)[0])),
        _ => None,
    }
}

/// Identities of a binary op on `a` and `b` (of element type `dtype`):
///
/// - `x * 1`, `1 * x -> x`: exact in IEEE arithmetic for every `x` (`-0.0 * 1` is `-0.0`,
///   infinities and NaN pass through), and on `i32`.
/// - `x * -1`, `-1 * x -> neg(x)`: multiplying by -1 only flips the sign, exactly; on `i32`
///   wrapping `x * -1` is wrapping `-x`.
/// - `x * 0`, `0 * x -> 0` on `i32` only (see the module documentation for floats).
/// - `x + (-0.0)`, `(-0.0) + x -> x` on floats (`-0.0 + -0.0` is `-0.0`, `0.0 + -0.0` is
///   `0.0`, every other sum is exact); `x + 0`, `0 + x -> x` on `i32`.
/// - `x - 0.0 -> x` (it is `x + (-0.0)`); `x - 0 -> x` on `i32`.
/// - `(-0.0) - x -> neg(x)` on floats (it is `-0.0 + (-x)`, exact as above, and gives `0.0`
///   for `x = -0.0` just as `neg` does); `0 - x -> neg(x)` on `i32` (both wrap).
/// - `x - x -> 0` on `i32` only.
/// - `x / 1 -> x`: exact on floats; on `i32` truncating division by 1 is `x`.
/// - `max(x, x)`, `min(x, x) -> x`: the interpreter returns one of two equal operands (and a
///   NaN for a NaN).
fn binary(g: &Graph, op: BinaryOp, a: NodeId, b: NodeId, dtype: DType) -> Option<Rewrite> {
    let int = dtype == DType::I32;
    // The identity of addition: -0.0 for floats, 0 for i32 (whose 0 reads as +0.0).
    let zero = if int { 0.0 } else { -0.0 };
    let negate = |x: NodeId| Rewrite::Node(Op::Unary(UnaryOp::Neg), smallvec![x]);
    let rewrite = match op {
        BinaryOp::Mul if is(g, b, 1.0) => Rewrite::Use(a),
        BinaryOp::Mul if is(g, a, 1.0) => Rewrite::Use(b),
        BinaryOp::Mul if is(g, b, -1.0) => negate(a),
        BinaryOp::Mul if is(g, a, -1.0) => negate(b),
        BinaryOp::Mul if int && is(g, b, 0.0) => Rewrite::Use(b),
        BinaryOp::Mul if int && is(g, a, 0.0) => Rewrite::Use(a),
        BinaryOp::Add if is(g, b, zero) => Rewrite::Use(a),
        BinaryOp::Add if is(g, a, zero) => Rewrite::Use(b),
        BinaryOp::Sub if is(g, b, 0.0) => Rewrite::Use(a),
        BinaryOp::Sub if is(g, a, zero) => negate(b),
        BinaryOp::Sub if int && a == b => Rewrite::Splat(Array::scalar(DType::I32, 0.0)),
        BinaryOp::Div if is(g, b, 1.0) => Rewrite::Use(a),
        BinaryOp::Max | BinaryOp::Min if a == b => Rewrite::Use(a),
        _ => return None,
    };
    Some(rewrite)
}

/// Identities of `select(c, a, b)` (of element type `dtype`):
///
/// - `select(c, x, x) -> x`: both branches are the same value.
/// - `select(true, a, b) -> a`, `select(false, a, b) -> b` for a splat condition.
/// - `select(c, 1, 0) -> cast(c)` for splats 1 and `+0` (not `-0.0`): the interpreter casts
///   `true` to exactly 1 and `false` to `+0` in every type (a one-hot mask, as cross-entropy
///   builds it, becomes a cast that fuses as well).
fn select(g: &Graph, c: NodeId, a: NodeId, b: NodeId, dtype: DType) -> Option<Rewrite> {
    if a == b {
        return Some(Rewrite::Use(a));
    }
    if let Some(v) = splat_value(g, c) {
        return Some(Rewrite::Use(if v != 0.0 { a } else { b }));
    }
    (is(g, a, 1.0) && is(g, b, 0.0)).then(|| Rewrite::Node(Op::Cast(dtype), smallvec![c]))
}

/// A reduction of `x` over `axes` that combines one element per result element is that
/// element: `reduce(x, [])  -> x`, and over axes of extent 1, `-> reshape(x)`. The interpreter
/// takes a sum's or a maximum's first term as it is (`f32` sums widen to `f64` and round back,
/// exactly), so `-0.0` and NaN survive.
fn reduce(g: &Graph, id: NodeId, x: NodeId, axes: &Axes) -> Option<Rewrite> {
    let extents = &g.node(x).ty.shape;
    if axes.is_empty() {
        Some(Rewrite::Use(x))
    } else if axes.iter().all(|&a| extents[a] == 1) {
        let shape = g.node(id).ty.shape.clone();
        Some(Rewrite::Node(Op::Reshape(shape), smallvec![x]))
    } else {
        None
    }
}

/// Views that do nothing, and chains of two views of one kind that are one view:
///
/// - `reshape` to the operand's shape, `broadcast` to the operand's shape and `permute` by the
///   identity are the operand.
/// - `reshape(reshape(y)) -> reshape(y)`: a reshape keeps the row-major order of elements.
/// - `broadcast(broadcast(y)) -> broadcast(y)`: an axis of `y` of extent 1 is repeated to the
///   final extent either way; any other axis keeps its extent throughout.
/// - Either of those is `y` itself when it has `y`'s type.
/// - `permute(permute(y, q), p) -> permute(y, r)` with `r[i] = q[p[i]]` (result axis `i` is
///   the inner result's axis `p[i]`, which is `y`'s axis `q[p[i]]`), or `y` itself when `r` is
///   the identity.
///
/// Views of splat constants are folded to a canonical splat by [`super::fold()`], not here.
fn view_chain(g: &Graph, id: NodeId, x: NodeId) -> Option<Rewrite> {
    let (op, inner) = (&g.node(id).op, &g.node(x).op);
    if let Op::Permute(p) = op {
        let identity = |perm: &[usize]| perm.iter().copied().eq(0..perm.len());
        return match inner {
            _ if identity(p) => Some(Rewrite::Use(x)),
            Op::Permute(q) => {
                let y = g.operands(x)[0];
                let r: Axes = p.iter().map(|&i| q[i]).collect();
                Some(if identity(&r) {
                    Rewrite::Use(y)
                } else {
                    Rewrite::Node(Op::Permute(r), smallvec![y])
                })
            }
            _ => None,
        };
    }
    let ty = &g.node(id).ty;
    if g.node(x).ty == *ty {
        return Some(Rewrite::Use(x));
    }
    if std::mem::discriminant(op) != std::mem::discriminant(inner) {
        return None;
    }
    let y = g.operands(x)[0];
    Some(if g.node(y).ty == *ty {
        Rewrite::Use(y)
    } else {
        Rewrite::Node(op.clone(), smallvec![y])
    })
}
