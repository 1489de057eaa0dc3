//! Limits on the size of what a graph computes, checked before anything is allocated for it.
//!
//! A graph's text form can claim any shape (`f32[1000000,1000000]` is a few bytes of text), and
//! so can a graph built in code. The interpreter allocates every value it computes and the
//! compiled program one arena for its buffers; without a limit such a graph would abort the
//! process when the allocation fails. [`check_graph`] refuses it first, with an error naming the
//! node, and the runtime refuses an arena over [`MAX_BYTES`] after memory planning.

use crate::graph::Graph;
use crate::types::Type;
use std::fmt;

/// The most elements one value of a graph may have (2^31, the limit the tensor file readers
/// apply too). Index arithmetic in generated code never comes near overflowing below it.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The most bytes all the values of a graph may take together, and the largest arena a compiled
/// program may need (2^32, 4 GiB). The interpreter holds every value it computes, so the sum
/// bounds its memory; fused programs need far less.
pub const MAX_BYTES: usize = 1 << 32;

/// A graph, or the program compiled from it, that exceeds a limit of this module.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// One value has more than [`MAX_ELEMENTS`] elements.
    #[error(
        "node {node} ({op}{at}) computes {ty}, more than the {MAX_ELEMENTS} elements a value may have"
    )]
    Value {
        /// The node's position in the graph (as [`crate::NodeId::index`] gives it).
        node: usize,
        /// Its op's mnemonic.
        op: String,
        /// Its type.
        ty: Box<Type>,
        /// ` at file:line:col` when the node has a source location, else empty.
        at: At,
    },
    /// The graph's values take more than [`MAX_BYTES`] together.
    #[error("the graph's values take {bytes} bytes together, more than the limit of {MAX_BYTES}")]
    Total {
        /// Their bytes (saturated).
        bytes: usize,
    },
    /// The compiled program's arena would exceed [`MAX_BYTES`].
    #[error("the program needs an arena of {bytes} bytes, more than the limit of {MAX_BYTES}")]
    Arena {
        /// The arena's size.
        bytes: usize,
    },
}

/// The source location of a node in a [`SizeError`], displayed as ` at file:line:col`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct At(pub Option<String>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(origin) => write!(f, " at {origin}"),
            None => Ok(()),
        }
    }
}

/// Checks that every value of `g` has at most [`MAX_ELEMENTS`] elements and that all of them
/// take at most [`MAX_BYTES`] together. Looks at types only; allocates nothing.
pub fn check_graph(g: &Graph) -> Result<(), SizeError> {
    let mut total = 0usize;
    for id in g.node_ids() {
        let node = g.node(id);
        let n = node.ty.numel();
        if n > MAX_ELEMENTS {
            return Err(SizeError::Value {
                node: id.index(),
                op: node.op.mnemonic().to_string(),
                ty: Box::new(node.ty.clone()),
                at: At(node.origin.as_ref().map(ToString::to_string)),
            });
        }
        total = total.saturating_add(n * node.ty.dtype.size_bytes());
    }
    if total > MAX_BYTES {
        return Err(SizeError::Total { bytes: total });
    }
    Ok(())
}

/// Checks that an arena of `bytes` is within [`MAX_BYTES`].
pub fn check_arena(bytes: usize) -> Result<(), SizeError> {
    if bytes > MAX_BYTES {
        return Err(SizeError::Arena { bytes });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;

    fn graph(text: &str) -> Graph {
        parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_value_of_a_trillion_elements_is_refused_naming_the_node() {
        let g = graph(
            "graph g {\n  %c = constant 1.0 : f32[1,1]\n  \
             %y = broadcast %c : f32[1000000,1000000]\n  output y = %y\n}\n",
        );
        let e = check_graph(&g).unwrap_err();
        assert_eq!(
            e.to_string(),
            "node 1 (broadcast) computes f32[1000000,1000000], more than the 2147483648 \
             elements a value may have"
        );
    }

    #[test]
    fn values_within_the_element_limit_can_exceed_the_byte_limit() {
        let g = graph("graph g {\n  %x = input \"x\" : f64[1073741824]\n  output x = %x\n}\n");
        assert_eq!(check_graph(&g), Err(SizeError::Total { bytes: 1 << 33 }));
    }

    #[test]
    fn the_arena_limit_is_inclusive() {
        assert_eq!(check_arena(MAX_BYTES), Ok(()));
        assert_eq!(
            check_arena(MAX_BYTES + 1),
            Err(SizeError::Arena {
                bytes: MAX_BYTES + 1
            })
        );
    }
}
