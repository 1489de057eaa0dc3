//! Graph optimization passes: algebraic simplification, constant folding, picking one element
//! instead of summing a masked axis, stacking matrix products of slices, common-subexpression
//! elimination and dead-code elimination, and [`optimize`], which runs them to a fixed point.
//!
//! Every pass is a function `fn(&mut Graph) -> bool` that returns whether it changed the graph
//! and leaves it valid ([`crate::verify::verify`] accepts it). Every rewrite is exactly
//! value-preserving under the reference interpreter's semantics ([`crate::interp`]), bit for bit
//! (NaN payloads aside, which the interpreter does not define): no reassociation, no rule that
//! changes the sign of a zero or loses a NaN or an infinity. A rewrite keeps the result type of
//! the node it replaces; a new node takes the replaced node's origin (and name), so errors and
//! dumps still point at the user's source.
//!
//! The rewriting passes leave the nodes they replace in place, unused; [`dce()`] removes them.

mod cse;
mod dce;
mod fold;
mod pick;
mod rewrite;
mod simplify;
mod splat;
mod stack;

#[cfg(test)]
mod semantics;
#[cfg(test)]
mod tests;

pub use cse::cse;
pub use dce::dce;
pub use fold::{FOLD_LIMIT, fold};
pub use pick::pick_sums;
pub use simplify::simplify;
pub use splat::splat_value;
pub use stack::stack_products;

use crate::graph::Graph;
use crate::verify::verify;

/// A pass: rewrites a graph in place, keeps it valid, and returns true if it changed anything.
pub type Pass = fn(&mut Graph) -> bool;

/// The passes [`optimize`] runs, in the order of one round, with their names. Dead-code
/// elimination comes last, so that a round leaves no dead node behind.
pub const PASSES: [(&str, Pass); 6] = [
    ("simplify", simplify),
    ("fold", fold),
    ("pick", pick_sums),
    ("stack", stack_products),
    ("cse", cse),
    ("dce", dce),
];

/// The most rounds [`optimize`] runs. Every rewrite removes work or puts a value in a
/// canonical form, so the passes converge in a few rounds; the bound only guards against a
/// kiln bug making two rules undo each other forever.
pub const MAX_ROUNDS: usize = 32;

/// What [`optimize`] did to a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptimizeStats {
    /// Rounds run; each runs every pass of [`PASSES`] once.
    pub rounds: usize,
    /// True when the last round changed nothing (a fixed point); false when [`MAX_ROUNDS`] was
    /// reached first.
    pub converged: bool,
    /// Nodes in the graph before.
    pub nodes_before: usize,
    /// Nodes in the graph after.
    pub nodes_after: usize,
    /// For each pass, in [`PASSES`] order: its name and how many of its runs changed the graph.
    pub changes: Vec<(&'static str, usize)>,
}

impl OptimizeStats {
    /// How many runs of the pass called `name` changed the graph (0 for an unknown name).
    pub fn changes(&self, name: &str) -> usize {
        self.changes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |&(_, c)| c)
    }
}

/// Runs [`PASSES`] in rounds until a round changes nothing, at most [`MAX_ROUNDS`] rounds.
/// The graph computes the same outputs and updates as before, bit for bit, and has no dead
/// nodes once converged.
///
/// In debug builds the graph is verified after every pass; a pass that breaks it is a kiln bug,
/// and this panics naming the pass.
pub fn optimize(g: &mut Graph) -> OptimizeStats {
    run_to_fixed_point(g, &PASSES)
}

/// [`optimize`] with the passes `passes`.
fn run_to_fixed_point(g: &mut Graph, passes: &[(&'static str, Pass)]) -> OptimizeStats {
    let mut stats = OptimizeStats {
        rounds: 0,
        converged: false,
        nodes_before: g.len(),
        nodes_after: g.len(),
        changes: passes.iter().map(|&(name, _)| (name, 0)).collect(),
    };
    while stats.rounds < MAX_ROUNDS && !stats.converged {
        stats.rounds += 1;
        stats.converged = true;
        for ((name, pass), (_, count)) in passes.iter().zip(&mut stats.changes) {
            if pass(g) {
                *count += 1;
                stats.converged = false;
            }
            if cfg!(debug_assertions)
                && let Err(e) = verify(g)
            {
                panic!("kiln bug: the pass `{name}` left an invalid graph: {e}");
            }
        }
    }
    stats.nodes_after = g.len();
    stats
}
