//! [`Model`]: a graph together with the initializers of its parameters.

use crate::init::Init;
use kiln_compiler::{Array, Graph, InputKind};

/// A model as the frontend builds it: its graph (forward pass, loss and metrics as outputs)
/// and how to draw each parameter's first value.
#[derive(Clone, Debug)]
pub struct Model {
    /// The graph.
    pub graph: Graph,
    /// The initializer of each parameter or state declared with one, by name.
    pub init: Vec<(String, Init)>,
}

impl Model {
    /// The first value of every `param` and `state` input of `graph`, by name, drawn with
    /// `seed` from its initializer (zeros without one: optimizer state and parameters declared
    /// without one). `graph` may be this model's graph or one derived from it (a training step
    /// adds optimizer state).
    pub fn initial_values(&self, graph: &Graph, seed: u64) -> Vec<(String, Array)> {
        graph
            .inputs()
            .into_iter()
            .filter_map(|id| {
                let node = graph.node(id);
                let (kind, name) = node.op.as_input()?;
                if kind == InputKind::Data {
                    return None;
                }
                let init = self
                    .init
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(Init::Zeros, |&(_, i)| i);
                let value = init.sample(name, node.ty.dtype, &node.ty.shape, seed);
                Some((name.to_string(), value))
            })
            .collect()
    }
}
