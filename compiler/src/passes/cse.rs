//! Common-subexpression elimination.

use super::rewrite::{is_used, replace};
use crate::graph::{Graph, NodeId, Operands};
use crate::op::Op;
use crate::types::Type;
use std::collections::HashMap;

/// Merges nodes that compute the same op on the same operands: every use of a later one
/// becomes a use of the first in [`Graph::topo_order`] (which gets the later one's name if it
/// has none). Inputs are never merged: each is a distinct value bound from outside. Returns
/// true if it merged anything.
///
/// Exact: every op is a pure function of its attributes and operands (`random` included: its
/// value is fixed by its seed operand and its stream, so two with different streams differ
/// as ops). Ops are compared exactly: constants and pad values by their bits, so `-0.0` and
/// `0.0` differ and a NaN equals only the same NaN.
pub fn cse(g: &mut Graph) -> bool {
    let mut seen: HashMap<(&'static str, Operands, Type), Vec<NodeId>> = HashMap::new();
    let mut changed = false;
    for id in g.topo_order() {
        let node = g.node(id);
        if node.op.as_input().is_some() || !is_used(g, id) {
            continue;
        }
        let key = (node.op.mnemonic(), g.operands(id), node.ty.clone());
        let candidates = seen.entry(key).or_default();
        match candidates
            .iter()
            .find(|&&c| same_op(&g.node(c).op, &g.node(id).op))
        {
            Some(&first) => {
                replace(g, id, first);
                changed = true;
            }
            None => candidates.push(id),
        }
    }
    changed
}

/// Op equality that is exact for the one float attribute: a pad value is compared by bits, so
/// padding with `-0.0` and with `0.0` differ, and a NaN value equals itself. Constants already
/// compare bitwise ([`crate::Array`]'s equality).
fn same_op(a: &Op, b: &Op) -> bool {
    match (a, b) {
        (
            Op::Pad {
                low,
                high,
                interior,
                value,
            },
            Op::Pad {
                low: low2,
                high: high2,
                interior: interior2,
                value: value2,
            },
        ) => {
            low == low2
                && high == high2
                && interior == interior2
                && value.to_bits() == value2.to_bits()
        }
        _ => a == b,
    }
}
