//! The printer of the text form.

use crate::graph::Graph;

/// What the printer includes beyond the graph itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrintOptions {
    /// Print each node's source location as `loc("file":line:col)`.
    pub locations: bool,
}

impl Default for PrintOptions {
    fn default() -> PrintOptions {
        PrintOptions { locations: true }
    }
}

/// The text form of `g`, with source locations.
pub fn print(g: &Graph) -> String {
    print_with(g, PrintOptions::default())
}

/// The text form of `g` with `options`.
pub fn print_with(g: &Graph, options: PrintOptions) -> String {
    let _ = (g, options);
    todo!("text printer")
}
