//! Graphviz output of a graph.

use crate::graph::Graph;

/// The graph in Graphviz DOT syntax.
pub fn to_dot(g: &Graph) -> String {
    let _ = g;
    todo!("dot")
}
