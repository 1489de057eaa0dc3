//! Constant folding.

use super::rewrite::{Rewrite, apply, is_canonical_splat, rewrite_used};
use super::splat::{fill, splat, uniform};
use crate::array::Array;
use crate::graph::{Graph, NodeId};
use crate::interp::eval_op;
use crate::op::{Op, OpGroup};
use crate::types::Type;

/// The most elements [`fold`] materializes: a computed constant, or a splat expanded to be an
/// operand of a computation. A larger constant would be memory traffic where the computation
/// it replaces may well fuse into its users.
pub const FOLD_LIMIT: usize = 4096;

/// Computes at compile time what only depends on constants, with the interpreter's own
/// [`eval_op`], so the values are exactly those a run would compute. Returns true if it
/// changed anything. Splats (every element equal, see [`super::splat_value`]) are kept in one
/// canonical form, a one-element constant broadcast to the full shape, which costs nothing
/// inside a fused kernel, rather than as materialized elements:
///
/// - A constant of more than one element, all of the same bits, becomes the canonical splat.
/// - An elementwise op whose operands are all splats is the splat of the op applied to their
///   elements, computed once, whatever the size of the result (each result element is the op
///   of the operands' elements at its position, all equal).
/// - A view that takes every result element from its operand (reshape, permute, broadcast,
///   slice, windows) of a splat is the splat of the same element, whatever its size.
/// - Any other node whose operands are all constants (or splats of at most [`FOLD_LIMIT`]
///   elements) and whose result has at most [`FOLD_LIMIT`] elements becomes a constant (the
///   canonical splat if all its elements are equal).
///
/// Leaves are not folded: inputs have no value yet, `iota` is an index computed for free in a
/// kernel, and `random` stays a generator (its seed is normally an input anyway).
pub fn fold(g: &mut Graph) -> bool {
    rewrite_used(g, |g, id| {
        let Some(rewrite) = fold_node(g, id) else {
            return false;
        };
        apply(g, id, rewrite);
        true
    })
}

/// The constant node `id` computes, if it is one and is not in canonical form yet.
fn fold_node(g: &Graph, id: NodeId) -> Option<Rewrite> {
    let node = g.node(id);
    match &node.op {
        Op::Input { .. } | Op::Iota { .. } | Op::Random { .. } | Op::AllReduce => return None,
        Op::Constant(a) if a.numel() > 1 => return uniform(a).map(Rewrite::Splat),
        _ if is_canonical_splat(g, id) => return None,
        _ => {}
    }
    let operands = g.operands(id);
    if spreads_splats(&node.op)
        && let Some(elements) = operands
            .iter()
            .map(|&o| splat(g, o))
            .collect::<Option<Vec<Array>>>()
    {
        let element = if node.op.group() == OpGroup::Elementwise {
            let args: Vec<&Array> = elements.iter().collect();
            eval_op(&node.op, &Type::scalar(node.ty.dtype), &args)
        } else {
            elements.into_iter().next().expect("a view has an operand")
        };
        return Some(Rewrite::Splat(element));
    }
    if node.ty.numel() > FOLD_LIMIT {
        return None;
    }
    let values = operands
        .iter()
        .map(|&o| value(g, o))
        .collect::<Option<Vec<Array>>>()?;
    let args: Vec<&Array> = values.iter().collect();
    Some(Rewrite::Value(eval_op(&node.op, &node.ty, &args)))
}

/// True for the ops whose result is a splat whenever all their operands are: elementwise ops,
/// and the views whose every result element is an element of the operand.
fn spreads_splats(op: &Op) -> bool {
    op.group() == OpGroup::Elementwise
        || matches!(
            op,
            Op::Reshape(_)
                | Op::Permute(_)
                | Op::Broadcast(_)
                | Op::Slice { .. }
                | Op::Windows { .. }
        )
}

/// The value of node `id` if it is a constant, or a splat of at most [`FOLD_LIMIT`] elements.
fn value(g: &Graph, id: NodeId) -> Option<Array> {
    let node = g.node(id);
    match &node.op {
        Op::Constant(a) => Some(a.clone()),
        _ if node.ty.numel() <= FOLD_LIMIT => splat(g, id).map(|s| fill(&s, &node.ty.shape)),
        _ => None,
    }
}
