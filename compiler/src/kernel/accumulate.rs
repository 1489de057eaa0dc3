//! Sums of matrix products computed by adding each product into one buffer.
//!
//! A weight shared by the steps of an unrolled sequence gets one gradient product per step,
//! summed: `dW = h_0^T dz_1 + h_1^T dz_2 + ...`, an addition chain of 31 `[128, 512]` products
//! for the LSTM benchmark. Computed as written, every product gets a buffer and a kernel adds
//! them all, reading 31 buffers: a third of a millisecond per step, longer than the products'
//! own adds would take. Instead, the first product writes the sum's buffer and every later one
//! adds to it (`gemm` reads its destination), so the sum costs no pass of its own.
//!
//! A *sum of products* is an addition whose two operands are each a matrix product or another
//! such sum, where each of those is used by that addition alone and is not an output. Its
//! products are added in the order the program runs them, which rounds differently from the
//! graph's order of additions, as any reassociation does; the interpreter agrees within the
//! tolerance of a matrix product.

use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, Op};
use std::collections::{HashMap, HashSet};

/// Maps each matrix product of a sum of products among the `live` nodes of `g` (see the module
/// docs) to the largest sum it belongs to: the node whose buffer it adds to.
pub(super) fn sums_of_products(g: &Graph, live: &HashSet<NodeId>) -> HashMap<NodeId, NodeId> {
    let outputs: HashSet<NodeId> = (g.outputs().iter().chain(g.updates()))
        .map(|&(_, id)| id)
        .collect();
    // Used by one addition alone, which names it once.
    let single_use = |id: NodeId| {
        !outputs.contains(&id) && matches!(g.users(id).as_slice(), [u] if live.contains(u))
    };
    let mut sums: HashSet<NodeId> = HashSet::new();
    for id in g.topo_order().into_iter().filter(|id| live.contains(id)) {
        let ops = g.operands(id);
        let summed =
            |&o: &NodeId| single_use(o) && (matches!(g.node(o).op, Op::Dot) || sums.contains(&o));
        if g.node(id).op == Op::Binary(BinaryOp::Add) && ops[0] != ops[1] && ops.iter().all(summed)
        {
            sums.insert(id);
        }
    }
    let mut into = HashMap::new();
    for &root in &sums {
        let absorbed = |id: NodeId| g.users(id).first().is_some_and(|u| sums.contains(u));
        if single_use(root) && absorbed(root) {
            continue;
        }
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            for o in g.operands(id) {
                if sums.contains(&o) {
                    stack.push(o);
                } else {
                    into.insert(o, root);
                }
            }
        }
    }
    into
}
