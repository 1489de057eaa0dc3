//! Dead-code elimination.

use crate::graph::{Graph, NodeId};

/// Removes every node that no output or update needs, directly or through other nodes.
/// Inputs (data, param, state) are never removed: they are the graph's interface, bound at
/// every run whether used or not. Returns true if it removed anything.
///
/// Exact: the interpreter evaluates only the nodes outputs and updates depend on, so nothing
/// it computes changes.
pub fn dce(g: &mut Graph) -> bool {
    let live = g.live_nodes();
    let dead: Vec<NodeId> = g
        .node_ids()
        .filter(|&id| !live.contains(&id) && g.node(id).op.as_input().is_none())
        .collect();
    for &id in &dead {
        g.remove(id);
    }
    !dead.is_empty()
}
