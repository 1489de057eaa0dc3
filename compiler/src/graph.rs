//! The graph IR: typed nodes on a petgraph `StableDiGraph`, named inputs, outputs and state
//! updates.
//!
//! Invariants (checked by [`crate::verify::verify`]):
//! - every node's type is what [`crate::infer::infer`] computes from its op and operands;
//! - a node's incoming edges are its operands, weighted by operand position `0..n`;
//! - the graph is acyclic; input names, output names and update targets are unique;
//! - an update names a `param` or `state` input and has exactly its type.

use crate::infer::{TypeError, TypeErrorKind, infer};
use crate::op::{InputKind, Op};
use crate::types::Type;
use petgraph::Direction;
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, NodeIndexable};
use smallvec::SmallVec;
use std::fmt;
use std::panic::Location;
use std::sync::Arc;

/// A node's handle in its graph. Handles stay valid when other nodes are removed.
pub type NodeId = NodeIndex<u32>;

/// The operands of a node, in order.
pub type Operands = SmallVec<[NodeId; 4]>;

/// A place in the user's source: the line that asked for a node.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Source file, as the compiler spelled it (relative to the workspace).
    pub file: Arc<str>,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl Origin {
    /// The location of the caller of the `#[track_caller]` chain this is called from.
    #[track_caller]
    pub fn caller() -> Origin {
        Origin::from(Location::caller())
    }
}

impl From<&Location<'_>> for Origin {
    fn from(l: &Location<'_>) -> Origin {
        Origin {
            file: l.file().into(),
            line: l.line(),
            column: l.column(),
        }
    }
}

impl fmt::Display for Origin {
    /// `examples/mlp.rs:21:13`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One operation of a graph and its static type.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// Its element type and shape.
    pub ty: Type,
    /// A name for people (printed as the node's `%name`); a valid identifier, not all digits.
    pub name: Option<String>,
    /// Where the user asked for it.
    pub origin: Option<Origin>,
}

/// A graph-level naming problem: outputs, updates and node names.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two outputs share a name.
    #[error("an output named `{0}` already exists")]
    DuplicateOutput(String),
    /// A state input is updated twice.
    #[error("`{0}` is already updated")]
    DuplicateUpdate(String),
    /// An update names no `param` or `state` input.
    #[error("cannot update `{0}`: no param or state has that name")]
    UnknownState(String),
    /// An update's type differs from its state's.
    #[error("the update of `{name}` has type {found}, the state has type {expected}")]
    UpdateType {
        /// The state updated.
        name: String,
        /// The state's type.
        expected: Box<Type>,
        /// The update's type.
        found: Box<Type>,
    },
    /// A name is not an identifier (`[A-Za-z_][A-Za-z0-9_.]*`).
    #[error("`{0}` is not a valid name (letters, digits, `_` and `.`, not starting with a digit)")]
    InvalidName(String),
}

/// Points the entry `name` of `named` (which must exist) at `id`; gives the node it named.
fn redirect(named: &mut [(String, NodeId)], name: &str, id: NodeId) -> NodeId {
    let entry = named.iter_mut().find(|(n, _)| n == name);
    let entry = entry.unwrap_or_else(|| panic!("no `{name}`"));
    std::mem::replace(&mut entry.1, id)
}

/// True for names the text form can spell bare: `[A-Za-z_][A-Za-z0-9_.]*`.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// A static computation graph.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    name: String,
    nodes: StableDiGraph<Node, u32>,
    outputs: Vec<(String, NodeId)>,
    updates: Vec<(String, NodeId)>,
}

impl Graph {
    /// An empty graph called `name`.
    pub fn new(name: impl Into<String>) -> Graph {
        Graph {
            name: name.into(),
            ..Graph::default()
        }
    }

    /// The graph's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the graph.
    pub fn set_name(&mut self, name: impl Into<String>) {
        self.name = name.into();
    }

    /// Appends a node computing `op` on `operands`, with its type inferred. An input node is
    /// named after its input; other nodes start unnamed.
    ///
    /// Fails, naming the op and `origin`, when the op does not apply to the operands' types, or
    /// when an input's name is invalid or already taken. Panics if an operand is not a node of
    /// this graph (handles never cross graphs).
    pub fn add(
        &mut self,
        op: Op,
        operands: &[NodeId],
        origin: Option<Origin>,
    ) -> Result<NodeId, TypeError> {
        let error = |kind| TypeError {
            op: op.mnemonic().to_string(),
            kind,
            origin: origin.clone(),
        };
        if let Op::Input { name, .. } = &op {
            if !is_identifier(name) {
                return Err(error(TypeErrorKind::BadAttribute(
                    GraphError::InvalidName(name.clone()).to_string(),
                )));
            }
            if self.input(name).is_some() {
                return Err(error(TypeErrorKind::BadAttribute(format!(
                    "an input named `{name}` already exists"
                ))));
            }
        }
        let ty = {
            let types: SmallVec<[&Type; 4]> = operands.iter().map(|&o| &self.nodes[o].ty).collect();
            infer(&op, &types).map_err(error)?
        };
        let name = op.as_input().map(|(_, n)| n.to_string());
        let id = self.nodes.add_node(Node {
            op,
            ty,
            name,
            origin,
        });
        for (pos, &o) in operands.iter().enumerate() {
            self.nodes.add_edge(o, id, pos as u32);
        }
        Ok(id)
    }

    /// The node behind `id`. Panics if `id` is not in the graph.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// True if `id` is a node of this graph.
    pub fn contains(&self, id: NodeId) -> bool {
        self.nodes.contains_node(id)
    }

    /// Gives node `id` a name for people, or removes it (`None`).
    pub fn set_node_name(&mut self, id: NodeId, name: Option<String>) -> Result<(), GraphError> {
        if let Some(n) = &name
            && !is_identifier(n)
        {
            return Err(GraphError::InvalidName(n.clone()));
        }
        self.nodes[id].name = name;
        Ok(())
    }

    /// The operands of `id`, in order.
    pub fn operands(&self, id: NodeId) -> Operands {
        let mut edges: SmallVec<[(u32, NodeId); 4]> = self
            .nodes
            .edges_directed(id, Direction::Incoming)
            .map(|e| (*e.weight(), e.source()))
            .collect();
        edges.sort_unstable();
        edges.into_iter().map(|(_, n)| n).collect()
    }

    /// The nodes that use `id` as an operand, each once, in id order.
    pub fn users(&self, id: NodeId) -> Vec<NodeId> {
        let mut users: Vec<NodeId> = self
            .nodes
            .neighbors_directed(id, Direction::Outgoing)
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.node_count() == 0
    }

    /// Every node id, in index order: creation order, except that a node added after a
    /// removal may take the removed node's index.
    pub fn node_ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes.node_indices()
    }

    /// Every node, operands before users: a depth-first post-order from the nodes in index
    /// order, so the order is deterministic and equals index order when that is topological.
    pub fn topo_order(&self) -> Vec<NodeId> {
        let bound = self.nodes.node_bound();
        let mut state = vec![0u8; bound]; // 0 new, 1 on the stack, 2 done
        let mut order = Vec::with_capacity(self.len());
        for root in self.nodes.node_indices() {
            if state[root.index()] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            state[root.index()] = 1;
            while let Some((id, next)) = stack.pop() {
                let ops = self.operands(id);
                match ops[next..].iter().position(|o| state[o.index()] == 0) {
                    Some(k) => {
                        let o = ops[next + k];
                        stack.push((id, next + k + 1));
                        state[o.index()] = 1;
                        stack.push((o, 0));
                    }
                    None => {
                        state[id.index()] = 2;
                        order.push(id);
                    }
                }
            }
        }
        order
    }

    /// True when no node reaches itself through its operands.
    pub fn is_acyclic(&self) -> bool {
        !petgraph::algo::is_cyclic_directed(&self.nodes)
    }

    /// The input (data, param or state) called `name`.
    pub fn input(&self, name: &str) -> Option<NodeId> {
        self.nodes
            .node_indices()
            .find(|&id| matches!(self.nodes[id].op.as_input(), Some((_, n)) if n == name))
    }

    /// Every input (data, param and state), in index order.
    pub fn inputs(&self) -> Vec<NodeId> {
        self.nodes
            .node_indices()
            .filter(|&id| self.nodes[id].op.as_input().is_some())
            .collect()
    }

    /// Every input of `kind`, in index order.
    pub fn inputs_of(&self, kind: InputKind) -> Vec<NodeId> {
        self.nodes
            .node_indices()
            .filter(|&id| matches!(self.nodes[id].op.as_input(), Some((k, _)) if k == kind))
            .collect()
    }

    /// Names node `id` as the output `name`.
    pub fn set_output(&mut self, name: impl Into<String>, id: NodeId) -> Result<(), GraphError> {
        let name = name.into();
        if !is_identifier(&name) {
            return Err(GraphError::InvalidName(name));
        }
        if self.output(&name).is_some() {
            return Err(GraphError::DuplicateOutput(name));
        }
        assert!(
            self.contains(id),
            "output `{name}` names a node of another graph"
        );
        self.outputs.push((name, id));
        Ok(())
    }

    /// Makes the output `name` (which must exist) name node `id` instead.
    pub fn redirect_output(&mut self, name: &str, id: NodeId) {
        assert!(
            self.contains(id),
            "output `{name}` names a node of another graph"
        );
        redirect(&mut self.outputs, name, id);
    }

    /// Makes the update of `name` (which must exist) take the value of node `id` instead, of
    /// the same type.
    pub fn redirect_update(&mut self, name: &str, id: NodeId) {
        assert!(
            self.contains(id),
            "update `{name}` names a node of another graph"
        );
        let old = redirect(&mut self.updates, name, id);
        assert_eq!(self.nodes[old].ty, self.nodes[id].ty, "update `{name}`");
    }

    /// The node of the output called `name`.
    pub fn output(&self, name: &str) -> Option<NodeId> {
        self.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, id)| id)
    }

    /// The outputs, in the order they were named.
    pub fn outputs(&self) -> &[(String, NodeId)] {
        &self.outputs
    }

    /// Declares that after a run the state input `name` takes the value of node `id`.
    pub fn set_update(&mut self, name: impl Into<String>, id: NodeId) -> Result<(), GraphError> {
        let name = name.into();
        let Some(state) = self.input(&name) else {
            return Err(GraphError::UnknownState(name));
        };
        if !matches!(self.nodes[state].op.as_input(), Some((k, _)) if k.is_persistent()) {
            return Err(GraphError::UnknownState(name));
        }
        if self.updates.iter().any(|(n, _)| *n == name) {
            return Err(GraphError::DuplicateUpdate(name));
        }
        let (expected, found) = (&self.nodes[state].ty, &self.nodes[id].ty);
        if expected != found {
            return Err(GraphError::UpdateType {
                name,
                expected: Box::new(expected.clone()),
                found: Box::new(found.clone()),
            });
        }
        self.updates.push((name, id));
        Ok(())
    }

    /// The state updates, in the order they were declared.
    pub fn updates(&self) -> &[(String, NodeId)] {
        &self.updates
    }

    /// The nodes the outputs and updates depend on, themselves included.
    pub fn live_nodes(&self) -> std::collections::HashSet<NodeId> {
        let mut seen = std::collections::HashSet::new();
        let mut stack: Vec<NodeId> = self
            .outputs
            .iter()
            .chain(&self.updates)
            .map(|&(_, id)| id)
            .collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.operands(id));
            }
        }
        seen
    }

    /// Makes every user of `old` (and every output or update naming it) use `new` instead.
    /// The caller keeps the graph acyclic and the types equal.
    pub fn replace_uses(&mut self, old: NodeId, new: NodeId) {
        let edges: Vec<_> = self
            .nodes
            .edges_directed(old, Direction::Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (e, target, pos) in edges {
            self.nodes.remove_edge(e);
            self.nodes.add_edge(new, target, pos);
        }
        for (_, id) in self.outputs.iter_mut().chain(self.updates.iter_mut()) {
            if *id == old {
                *id = new;
            }
        }
    }

    /// Removes node `id` and its edges. The caller makes sure nothing still uses it.
    pub fn remove(&mut self, id: NodeId) -> Option<Node> {
        self.nodes.remove_node(id)
    }

    /// The petgraph graph underneath, for algorithms (edge weights are operand positions).
    pub fn petgraph(&self) -> &StableDiGraph<Node, u32> {
        &self.nodes
    }
}

impl PartialEq for Graph {
    /// The same name, and node for node in [`Graph::topo_order`] the same op, type, name,
    /// origin and operands, and the same outputs and updates.
    fn eq(&self, other: &Graph) -> bool {
        let (a, b) = (self.topo_order(), other.topo_order());
        if self.name != other.name || a.len() != b.len() {
            return false;
        }
        let mut pos_a = vec![usize::MAX; self.nodes.node_bound()];
        let mut pos_b = vec![usize::MAX; other.nodes.node_bound()];
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            pos_a[x.index()] = i;
            pos_b[y.index()] = i;
        }
        let same_nodes = a.iter().zip(&b).all(|(&x, &y)| {
            let ops_a = self
                .operands(x)
                .iter()
                .map(|o| pos_a[o.index()])
                .collect::<Vec<_>>();
            let ops_b = other
                .operands(y)
                .iter()
                .map(|o| pos_b[o.index()])
                .collect::<Vec<_>>();
            self.nodes[x] == other.nodes[y] && ops_a == ops_b
        });
        let named = |list: &[(String, NodeId)], pos: &[usize]| {
            list.iter()
                .map(|(n, id)| (n.clone(), pos[id.index()]))
                .collect::<Vec<_>>()
        };
        same_nodes
            && named(&self.outputs, &pos_a) == named(&other.outputs, &pos_b)
            && named(&self.updates, &pos_a) == named(&other.updates, &pos_b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, UnaryOp};
    use crate::types::DType;

    fn input(g: &mut Graph, name: &str, shape: &[usize]) -> NodeId {
        let op = Op::Input {
            kind: InputKind::Data,
            name: name.into(),
            ty: Type::new(DType::F32, shape),
        };
        g.add(op, &[], None).unwrap()
    }

    #[test]
    fn operands_keep_their_positions() {
        let mut g = Graph::new("t");
        let x = input(&mut g, "x", &[2]);
        let y = input(&mut g, "y", &[2]);
        let d = g.add(Op::Binary(BinaryOp::Sub), &[y, x], None).unwrap();
        assert_eq!(g.operands(d).as_slice(), &[y, x]);
        assert_eq!(g.users(x), vec![d]);
    }

    #[test]
    fn duplicate_inputs_are_refused() {
        let mut g = Graph::new("t");
        input(&mut g, "x", &[2]);
        let op = Op::Input {
            kind: InputKind::Data,
            name: "x".into(),
            ty: Type::new(DType::F32, [2]),
        };
        let err = g.add(op, &[], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid attribute in input: an input named `x` already exists"
        );
    }

    #[test]
    fn topo_order_puts_operands_first_after_rewiring() {
        let mut g = Graph::new("t");
        let x = input(&mut g, "x", &[2]);
        let a = g.add(Op::Unary(UnaryOp::Exp), &[x], None).unwrap();
        let b = g.add(Op::Unary(UnaryOp::Neg), &[a], None).unwrap();
        let c = g.add(Op::Unary(UnaryOp::Tanh), &[x], None).unwrap();
        g.replace_uses(a, c);
        g.remove(a);
        assert_eq!(g.topo_order(), vec![x, c, b]);
    }

    #[test]
    fn updates_must_match_their_state() {
        let mut g = Graph::new("t");
        let w = g
            .add(
                Op::Input {
                    kind: InputKind::Param,
                    name: "w".into(),
                    ty: Type::new(DType::F32, [2]),
                },
                &[],
                None,
            )
            .unwrap();
        let x = input(&mut g, "x", &[3]);
        assert_eq!(
            g.set_update("x", x),
            Err(GraphError::UnknownState("x".into()))
        );
        assert!(matches!(
            g.set_update("w", x),
            Err(GraphError::UpdateType { .. })
        ));
        let n = g.add(Op::Unary(UnaryOp::Neg), &[w], None).unwrap();
        assert_eq!(g.set_update("w", n), Ok(()));
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("w1.m"));
        assert!(is_identifier("_x"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier(""));
    }
}
