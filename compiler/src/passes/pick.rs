//! Picking one element: a sum over an axis of a value masked to the one position an index
//! names becomes a read of that position.
//!
//! A negative log-likelihood picks each row's log-probability at its label as
//! `sum(select(iota == label, log_probs, 0), axis)`, and its gradient sums the same mask over
//! the upstream gradient broadcast along the row. Computed as written, each is a pass over
//! every class of every row (for a softmax over 1000 classes, two of the six passes its fused
//! kernel makes). Rewritten, the sum is `select(0 <= label < n, x[label] + 0, 0)`: one read
//! per row, through a gather of the flattened value (or no read at all when the value is a
//! broadcast along the axis, as the gradient's is).
//!
//! Exact under the interpreter's semantics: its sum starts from the first element and adds
//! the others in order, so where the label is in range the sum is the picked element plus
//! zeros, which is the element itself except that `-0` becomes `+0` (hence `+ 0`, for axes of
//! two or more elements, in floats); the masked elements are never read, so a NaN or an
//! infinity among them changes nothing, as in the sum; and out of range every element is
//! masked and the sum is `+0`.

use super::rewrite::{add_like, replace, rewrite_used};
use super::splat::splat_value;
use crate::array::Array;
use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, CmpOp, Op, ReduceOp, UnaryOp};
use crate::types::{DType, Shape, Type};

/// Rewrites every sum that picks one element (see the module docs). Returns true if it
/// rewrote any.
pub fn pick_sums(g: &mut Graph) -> bool {
    rewrite_used(g, |g, id| {
        let Some(p) = picked_sum(g, id) else {
            return false;
        };
        let value = rewrite(g, id, &p);
        replace(g, id, value);
        true
    })
}

/// The parts of a sum that picks one element.
struct Pick {
    /// The axis summed.
    axis: usize,
    /// The index per position of the result (shape `[1]` at `axis` of the summed value's).
    index: NodeId,
    /// The value selected where the mask holds.
    value: NodeId,
    /// Whether the selection is negated before the sum.
    negate: bool,
    /// Whether the masked elements summed are `-0` (`+0` otherwise).
    negative_zero: bool,
}

/// `sum(s, axes=[axis])` at `id` where `s` is `select(iota(axis) == broadcast(index), value,
/// zero)` or its negation, the comparison in either order, `zero` a splat of `+0` or `-0`, and
/// `index` of extent 1 at `axis`.
fn picked_sum(g: &Graph, id: NodeId) -> Option<Pick> {
    let Op::Reduce {
        op: ReduceOp::Sum,
        axes,
    } = &g.node(id).op
    else {
        return None;
    };
    let &[axis] = axes.as_slice() else {
        return None;
    };
    let summed = g.operands(id)[0];
    let negate = g.node(summed).op == Op::Unary(UnaryOp::Neg);
    let select = if negate {
        g.operands(summed)[0]
    } else {
        summed
    };
    if g.node(select).op != Op::Select {
        return None;
    }
    let [mask, value, zero] = g.operands(select)[..] else {
        return None;
    };
    let zero = splat_value(g, zero).filter(|&v| v == 0.0)?;
    let negative_zero = zero.is_sign_negative() != negate;
    if g.node(mask).op != Op::Compare(CmpOp::Eq) {
        return None;
    }
    let [p, q] = g.operands(mask)[..] else {
        return None;
    };
    let iota = |n: NodeId| matches!(&g.node(n).op, Op::Iota { axis: a, ty } if *a == axis && ty.dtype == DType::I32);
    let spread = if iota(p) {
        q
    } else if iota(q) {
        p
    } else {
        return None;
    };
    let Op::Broadcast(_) = g.node(spread).op else {
        return None;
    };
    let index = g.operands(spread)[0];
    let shape = &g.node(select).ty.shape;
    let t = &g.node(index).ty;
    let fits = t.rank() == shape.len() && t.shape[axis] == 1;
    let small = shape.iter().product::<usize>() <= i32::MAX as usize;
    (fits && small && shape[axis] > 0).then_some(Pick {
        axis,
        index,
        value,
        negate,
        negative_zero,
    })
}

/// The nodes computing the sum `id` picks, as the module docs give them; returns the last.
fn rewrite(g: &mut Graph, id: NodeId, p: &Pick) -> NodeId {
    let out = g.node(id).ty.clone();
    let shape = g.node(p.value).ty.shape.clone();
    let n = shape[p.axis];
    let index = without_axis(g, id, p.index, p.axis);
    let mut picked = match along(g, p.value, p.axis) {
        Some(source) => without_axis(g, id, source, p.axis),
        None => gather(g, id, p, index),
    };
    if p.negate {
        picked = add_like(g, id, Op::Unary(UnaryOp::Neg), &[picked]);
    }
    // The sum's zero: `-0` where every element summed is `-0`, else `+0`, which turns a picked
    // `-0` into `+0` when it is added (an axis of one element adds nothing).
    let zero = if p.negative_zero { -0.0 } else { 0.0 };
    let zero = splat(g, id, &out, zero);
    if out.dtype.is_float() && !p.negative_zero && n >= 2 {
        picked = add_like(g, id, Op::Binary(BinaryOp::Add), &[picked, zero]);
    }
    let indices = Type::new(DType::I32, &out.shape);
    let first = splat(g, id, &indices, 0.0);
    let end = splat(g, id, &indices, n as f64);
    let above = add_like(g, id, Op::Compare(CmpOp::Ge), &[index, first]);
    let below = add_like(g, id, Op::Compare(CmpOp::Lt), &[index, end]);
    let inside = add_like(g, id, Op::Select, &[below, picked, zero]);
    add_like(g, id, Op::Select, &[above, inside, zero])
}

/// `x` (extent 1 at `axis`) with that axis removed, broadcast to the shape of the sum `id`.
fn without_axis(g: &mut Graph, id: NodeId, x: NodeId, axis: usize) -> NodeId {
    let out = g.node(id).ty.shape.clone();
    let mut kept = g.node(x).ty.shape.clone();
    kept.remove(axis);
    let kept_node = add_like(g, id, Op::Reshape(kept.clone()), &[x]);
    match kept == out {
        true => kept_node,
        false => add_like(g, id, Op::Broadcast(out), &[kept_node]),
    }
}

/// The source of `value` if it is a broadcast along `axis` (extent 1 there): its elements
/// are the same at every position of the axis.
fn along(g: &Graph, value: NodeId, axis: usize) -> Option<NodeId> {
    let Op::Broadcast(_) = g.node(value).op else {
        return None;
    };
    let source = g.operands(value)[0];
    let t = &g.node(source).ty;
    (t.rank() == g.node(value).ty.rank() && t.shape[axis] == 1).then_some(source)
}

/// `value` at position `index` (`i32`, the result's shape) of `p.axis`: a gather of the
/// flattened value at each position's row-major offset.
fn gather(g: &mut Graph, id: NodeId, p: &Pick, index: NodeId) -> NodeId {
    let out = g.node(id).ty.shape.clone();
    let shape = g.node(p.value).ty.shape.clone();
    let strides: Vec<usize> = (0..shape.len())
        .map(|i| shape[i + 1..].iter().product())
        .collect();
    let indices = Type::new(DType::I32, &out);
    let scaled = |g: &mut Graph, x: NodeId, stride: usize| match stride {
        1 => x,
        s => {
            let s = splat(g, id, &indices, s as f64);
            add_like(g, id, Op::Binary(BinaryOp::Mul), &[x, s])
        }
    };
    let mut offset = scaled(g, index, strides[p.axis]);
    for (i, &stride) in strides.iter().enumerate().filter(|&(i, _)| i != p.axis) {
        let axis = if i < p.axis { i } else { i - 1 };
        let ty = indices.clone();
        let at = add_like(g, id, Op::Iota { axis, ty }, &[]);
        let term = scaled(g, at, stride);
        offset = add_like(g, id, Op::Binary(BinaryOp::Add), &[offset, term]);
    }
    let numel = shape.iter().product::<usize>();
    let flat = add_like(g, id, Op::Reshape(Shape::from_slice(&[numel])), &[p.value]);
    add_like(g, id, Op::Gather { axis: 0 }, &[flat, offset])
}

/// `value` in every element of type `ty`: a one-element constant, broadcast.
fn splat(g: &mut Graph, like: NodeId, ty: &Type, value: f64) -> NodeId {
    let ones = Shape::from_elem(1, ty.rank());
    let c = add_like(
        g,
        like,
        Op::Constant(Array::full(ty.dtype, &ones, value)),
        &[],
    );
    match ty.rank() {
        0 => c,
        _ => add_like(g, like, Op::Broadcast(ty.shape.clone()), &[c]),
    }
}
