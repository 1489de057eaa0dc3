//! The graph verifier: checks the invariants written at the top of [`crate::graph`]. It runs
//! after parsing, and after every pass in debug builds and tests.

use crate::graph::{Graph, NodeId};
use crate::infer::infer;
use crate::types::Type;
use smallvec::SmallVec;
use std::collections::HashSet;
use std::fmt;

/// A broken invariant, naming the node (by its position in [`Graph::topo_order`]) and what is
/// wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    /// The offending node, if the problem is one node's.
    pub node: Option<NodeId>,
    /// What is wrong.
    pub message: String,
}

impl std::error::Error for VerifyError {}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.node {
            Some(n) => write!(f, "invalid graph at node {}: {}", n.index(), self.message),
            None => write!(f, "invalid graph: {}", self.message),
        }
    }
}

/// Checks that `g` is well formed: acyclic, operand positions dense, every type equal to the
/// inferred one, names unique, updates typed like their state.
pub fn verify(g: &Graph) -> Result<(), VerifyError> {
    let fail = |node, message: String| Err(VerifyError { node, message });
    if !g.is_acyclic() {
        return fail(None, "the graph has a cycle".into());
    }
    let mut input_names = HashSet::new();
    for id in g.node_ids() {
        let node = g.node(id);
        let positions: SmallVec<[u32; 4]> = g
            .petgraph()
            .edges_directed(id, petgraph::Direction::Incoming)
            .map(|e| *e.weight())
            .collect();
        let mut sorted = positions.clone();
        sorted.sort_unstable();
        if sorted.iter().copied().ne(0..positions.len() as u32) {
            return fail(
                Some(id),
                format!("operand positions {sorted:?} are not 0..n"),
            );
        }
        let operands = g.operands(id);
        let types: SmallVec<[&Type; 4]> = operands.iter().map(|&o| &g.node(o).ty).collect();
        match infer(&node.op, &types) {
            Ok(ty) if ty == node.ty => {}
            Ok(ty) => {
                return fail(
                    Some(id),
                    format!(
                        "{} is typed {} but computes {}",
                        node.op.mnemonic(),
                        node.ty,
                        ty
                    ),
                );
            }
            Err(kind) => {
                let e = crate::infer::TypeError {
                    op: node.op.mnemonic().into(),
                    kind,
                    origin: node.origin.clone(),
                };
                return fail(Some(id), e.to_string());
            }
        }
        if let Some((_, name)) = node.op.as_input()
            && !input_names.insert(name)
        {
            return fail(Some(id), format!("two inputs are named `{name}`"));
        }
    }
    let mut seen = HashSet::new();
    for (name, id) in g.outputs() {
        if !g.contains(*id) {
            return fail(None, format!("output `{name}` names a removed node"));
        }
        if !seen.insert(name) {
            return fail(None, format!("two outputs are named `{name}`"));
        }
    }
    let mut seen = HashSet::new();
    for (name, id) in g.updates() {
        if !g.contains(*id) {
            return fail(None, format!("the update of `{name}` names a removed node"));
        }
        if !seen.insert(name) {
            return fail(None, format!("`{name}` is updated twice"));
        }
        let state = g
            .input(name)
            .filter(|&s| matches!(g.node(s).op.as_input(), Some((k, _)) if k.is_persistent()));
        match state {
            None => {
                return fail(
                    None,
                    format!("`{name}` is updated but is no param or state"),
                );
            }
            Some(s) if g.node(s).ty != g.node(*id).ty => {
                return fail(
                    Some(*id),
                    format!(
                        "the update of `{name}` has type {}, the state {}",
                        g.node(*id).ty,
                        g.node(s).ty
                    ),
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{InputKind, Op, UnaryOp};
    use crate::types::DType;

    /// A graph of `exp(x)` for a `[3]` input `x` of `kind`, with `exp(x)` output as `y`.
    fn exp_of_input(kind: InputKind) -> (Graph, crate::graph::NodeId) {
        let mut g = Graph::new("t");
        let ty = Type::new(DType::F32, [3]);
        let x = g
            .add(
                Op::Input {
                    kind,
                    name: "x".into(),
                    ty,
                },
                &[],
                None,
            )
            .unwrap();
        let y = g.add(Op::Unary(UnaryOp::Exp), &[x], None).unwrap();
        g.set_output("y", y).unwrap();
        (g, y)
    }

    #[test]
    fn a_well_built_graph_verifies() {
        let (mut g, y) = exp_of_input(InputKind::Param);
        g.set_update("x", y).unwrap();
        assert_eq!(verify(&g), Ok(()));
    }

    #[test]
    fn an_output_of_a_removed_node_is_caught() {
        let (mut g, y) = exp_of_input(InputKind::Data);
        g.remove(y);
        let err = verify(&g).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid graph: output `y` names a removed node"
        );
    }
}
