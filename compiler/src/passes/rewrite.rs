//! Replacing a node by an equal value: the one way the rewriting passes change a graph.

use super::splat::{fill, uniform};
use crate::array::Array;
use crate::graph::{Graph, NodeId, Operands};
use crate::op::Op;
use crate::types::Shape;

/// What a node is replaced by. Every variant has the replaced node's exact type.
#[derive(Clone, Debug)]
pub(super) enum Rewrite {
    /// An existing node.
    Use(NodeId),
    /// A new node computing an op on existing operands.
    Node(Op, Operands),
    /// A new node computing an op on existing operands of a smaller shape, broadcast to the
    /// replaced node's shape.
    Broadcast(Op, Operands),
    /// A constant value. A splat of more than one element becomes a broadcast one-element
    /// constant (as [`Rewrite::Splat`]), anything else a constant node.
    Value(Array),
    /// The replaced node's type with every element equal to this scalar array's element: a
    /// one-element constant with extents of 1, broadcast; or, for a type of at most one
    /// element, a constant.
    Splat(Array),
}

/// Replaces node `id` by `rewrite` everywhere it is used (operands, outputs, updates); `id` is
/// left unused for dead-code elimination to remove. New nodes take `id`'s origin, and the one
/// that replaces it also its name.
pub(super) fn apply(g: &mut Graph, id: NodeId, rewrite: Rewrite) {
    let new = match rewrite {
        Rewrite::Use(x) => x,
        Rewrite::Node(op, operands) => add_like(g, id, op, &operands),
        Rewrite::Broadcast(op, operands) => {
            let small = add_like(g, id, op, &operands);
            let shape = g.node(id).ty.shape.clone();
            add_like(g, id, Op::Broadcast(shape), &[small])
        }
        Rewrite::Value(a) => match uniform(&a) {
            Some(s) if a.numel() > 1 => add_splat(g, id, &s),
            _ => add_like(g, id, Op::Constant(a), &[]),
        },
        Rewrite::Splat(s) => add_splat(g, id, &s),
    };
    replace(g, id, new);
}

/// True when the canonical form [`Rewrite::Splat`] builds is what node `id` already is: a
/// broadcast of a one-element constant, or a constant of at most one element.
pub(super) fn is_canonical_splat(g: &Graph, id: NodeId) -> bool {
    let one_element = |id| matches!(&g.node(id).op, Op::Constant(a) if a.numel() <= 1);
    match g.node(id).op {
        Op::Broadcast(_) => one_element(g.operands(id)[0]),
        _ => one_element(id),
    }
}

/// Offers every used node to `rewrite`, in topological order (so a chain of rewritable
/// nodes collapses in one run); `rewrite` returns true if it changed the graph. Returns true
/// if any call did.
pub(super) fn rewrite_used(
    g: &mut Graph,
    mut rewrite: impl FnMut(&mut Graph, NodeId) -> bool,
) -> bool {
    let mut changed = false;
    for id in g.topo_order() {
        if is_used(g, id) {
            changed |= rewrite(g, id);
        }
    }
    changed
}

/// True when something uses node `id`: another node, an output or an update. The rewriting
/// passes leave unused nodes alone; dead-code elimination removes them.
pub(super) fn is_used(g: &Graph, id: NodeId) -> bool {
    !g.users(id).is_empty()
        || g.outputs()
            .iter()
            .chain(g.updates())
            .any(|&(_, used)| used == id)
}

/// Makes every use of `old` a use of `new`, which gets `old`'s name if it has none.
///
/// Panics if their types differ: a rewrite that changes a type is a kiln bug, and the verifier
/// would not catch it at an output.
pub(super) fn replace(g: &mut Graph, old: NodeId, new: NodeId) {
    let (o, n) = (g.node(old), g.node(new));
    assert_eq!(n.ty, o.ty, "kiln bug: a rewrite changed the type of a node");
    if n.name.is_none() && o.name.is_some() {
        let name = o.name.clone();
        g.set_node_name(new, name)
            .expect("a node's name is a valid name");
    }
    g.replace_uses(old, new);
}

/// Adds a node computing `op` on `operands` with the origin of node `like`.
pub(super) fn add_like(g: &mut Graph, like: NodeId, op: Op, operands: &[NodeId]) -> NodeId {
    let origin = g.node(like).origin.clone();
    g.add(op, operands, origin)
        .expect("kiln bug: a rewrite built an ill-typed node")
}

/// Adds the canonical splat of node `like`'s type with the element of the scalar array `s`.
fn add_splat(g: &mut Graph, like: NodeId, s: &Array) -> NodeId {
    let ty = g.node(like).ty.clone();
    if ty.numel() <= 1 {
        return add_like(g, like, Op::Constant(fill(s, &ty.shape)), &[]);
    }
    let ones = Shape::from_elem(1, ty.rank());
    let c = add_like(g, like, Op::Constant(fill(s, &ones)), &[]);
    add_like(g, like, Op::Broadcast(ty.shape), &[c])
}
