//! Limits on the size of what a graph computes, checked before anything is allocated for it.
//!
//! A graph's text form can claim any shape (`f32[1000000,1000000]` is a few bytes of text), and
//! so can a graph built in code. Without limits such a graph would abort the process when an
//! allocation fails, or overflow in index arithmetic. What is checked depends on what is done
//! with the graph:
//!
//! - every value has at most [`MAX_ELEMENTS`] elements, always (generated code and lowering
//!   compute offsets within a value in `i64` and rely on it);
//! - the interpreter holds every value it computes, so [`check_graph`] also bounds the sum of
//!   all of them by [`MAX_BYTES`];
//! - a compiled program holds only the buffers fusion materializes, sharing bytes between
//!   temporaries, so before lowering [`check_lowerable`] only bounds the sum of all values by
//!   the far larger [`MAX_LOWERED_BYTES`] (lowering and planning then add up sane sizes), and
//!   after planning [`check_memory`] judges what the program will allocate, its arena and its
//!   scratch ([`Footprint`]), against a limit the caller chooses ([`DEFAULT_MAX_MEMORY`]
//!   unless raised), naming the batch at which it would fit.

use crate::graph::Graph;
use crate::kernel::{Program, Role};
use crate::memory::MemoryPlan;
use crate::types::Type;
use std::fmt;

/// The most elements one value of a graph may have (2^31, the limit the tensor file readers
/// apply too). Index arithmetic in generated code never comes near overflowing below it.
pub const MAX_ELEMENTS: usize = 1 << 31;

/// The most bytes all the values of a graph may take together for the interpreter, which holds
/// every value it computes (2^32, 4 GiB).
pub const MAX_BYTES: usize = 1 << 32;

/// The most bytes all the values of a graph may take together for it to be lowered and planned
/// (2^40, 1 TiB). A compiled program allocates far less than this sum (views and fused values
/// take no memory, temporaries share it); the bound only keeps the sizes lowering and planning
/// add up far from overflowing, whatever the graph claims. What the program allocates is judged
/// by [`check_memory`].
pub const MAX_LOWERED_BYTES: usize = 1 << 40;

/// The default limit on what a compiled program allocates, its arena and scratch (2^32, 4 GiB;
/// `Options::max_memory` and `--max-memory` raise it). A sixth of a 24 GiB machine: a training
/// run compiles two programs (the step and the evaluation) and holds its data set in memory
/// beside them, so a program needing more is more likely a mistake (a batch size off by a
/// factor) than a plan, and is refused with the batch that would fit. The course's CNN on
/// 3x224x224 images needs well under it at batch 32.
pub const DEFAULT_MAX_MEMORY: usize = 1 << 32;

/// What a compiled program allocates for itself (data inputs are the caller's arrays), as
/// [`check_memory`] judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// The planned arena's bytes ([`MemoryPlan::arena_bytes`]).
    pub arena: usize,
    /// The bytes of the arena that params, state and constants take
    /// ([`MemoryPlan::fixed_bytes`]): what a smaller batch does not shrink.
    pub fixed: usize,
    /// The other buffers allocated once with the program: the scratch of matrix products that
    /// write a transposed result, the running sums of scatters.
    pub scratch: usize,
    /// The batch: the first extent that every data input of rank 1 or more has, when there
    /// is such an input and they agree.
    pub batch: Option<usize>,
}

impl Footprint {
    /// The footprint of `p` planned as `plan`, with `scratch` bytes allocated beside the arena.
    pub fn new(p: &Program, plan: &MemoryPlan, scratch: usize) -> Footprint {
        let mut firsts = (p.buffers.iter())
            .filter(|b| matches!(b.role, Role::Input(_)) && b.ty.rank() > 0)
            .map(|b| b.ty.shape[0]);
        let batch = firsts.next().filter(|&n| firsts.all(|m| m == n));
        Footprint {
            arena: plan.arena_bytes,
            fixed: plan.fixed_bytes,
            scratch,
            batch,
        }
    }

    /// Every byte the program allocates: its arena and its scratch.
    pub fn bytes(&self) -> usize {
        self.arena.saturating_add(self.scratch)
    }

    /// The largest batch at which the program would need at most `limit` bytes, estimated (0
    /// when not even one example fits); `None` when the program has no batch. The estimate
    /// keeps the params, state and constants and scales everything else in proportion to the
    /// batch, which is close for a training step (activations and their gradients grow with
    /// the batch), and optimistic by what does not grow (a weight's gradient, a per-step
    /// scalar), usually a small part.
    pub fn fitting_batch(&self, limit: usize) -> Option<usize> {
        let batch = self.batch?;
        let scaled = self.bytes().saturating_sub(self.fixed).max(1) as u128;
        let room = limit.saturating_sub(self.fixed) as u128;
        Some((room * batch as u128 / scaled).min(usize::MAX as u128) as usize)
    }
}

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
    /// The graph's values take more than `limit` bytes together ([`MAX_BYTES`] to interpret
    /// it, [`MAX_LOWERED_BYTES`] to compile it).
    #[error("the graph's values take {bytes} bytes together, more than the limit of {limit}")]
    Total {
        /// Their bytes (saturated).
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The compiled program would allocate more than `limit` bytes.
    #[error("{}", memory_message(footprint, *limit))]
    Memory {
        /// What it would allocate.
        footprint: Box<Footprint>,
        /// The limit (`Options::max_memory`).
        limit: usize,
    },
}

/// The refusal of a program whose footprint exceeds `limit`: the bytes, the limit, and the
/// batch that would fit.
fn memory_message(f: &Footprint, limit: usize) -> String {
    let mut s = format!(
        "the program needs {} bytes ({}: an arena of {} and {} of scratch), more than the \
         memory limit of {limit} bytes ({}; raise it with --max-memory or Options::max_memory)",
        f.bytes(),
        Human(f.bytes()),
        f.arena,
        f.scratch,
        Human(limit),
    );
    if let (Some(batch), Some(fits)) = (f.batch, f.fitting_batch(limit)) {
        let fit = match fits {
            0 => "it would not fit even at batch 1".to_string(),
            n => format!("it would fit at batch {n} or less"),
        };
        s += &format!(
            "; {fit} (an estimate: the {} bytes of params, state and constants stay, the other \
             {} shrink in proportion to the batch, {batch} now)",
            f.fixed,
            f.bytes().saturating_sub(f.fixed),
        );
    }
    s
}

/// Bytes in binary units, one decimal: `346.0 MiB`.
struct Human(usize);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        let mut v = self.0 as f64;
        let mut u = 0;
        while v >= 1024.0 && u + 1 < units.len() {
            v /= 1024.0;
            u += 1;
        }
        match u {
            0 => write!(f, "{} bytes", self.0),
            _ => write!(f, "{v:.1} {}", units[u]),
        }
    }
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

/// Checks, for the interpreter, that every value of `g` has at most [`MAX_ELEMENTS`] elements
/// and that all of them take at most [`MAX_BYTES`] together. Looks at types only; allocates
/// nothing.
pub fn check_graph(g: &Graph) -> Result<(), SizeError> {
    check_values(g, MAX_BYTES)
}

/// Checks, before a graph is optimized, lowered and planned, that every value of `g` has at
/// most [`MAX_ELEMENTS`] elements and that all of them take at most [`MAX_LOWERED_BYTES`]
/// together. Looks at types only; allocates nothing. What the program allocates is checked
/// after planning, by [`check_memory`].
pub fn check_lowerable(g: &Graph) -> Result<(), SizeError> {
    check_values(g, MAX_LOWERED_BYTES)
}

/// Every value of `g` within [`MAX_ELEMENTS`], all of them within `limit` bytes together.
fn check_values(g: &Graph, limit: usize) -> Result<(), SizeError> {
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
    if total > limit {
        return Err(SizeError::Total {
            bytes: total,
            limit,
        });
    }
    Ok(())
}

/// Checks that a program's footprint (its arena and scratch) is within `limit` bytes; the
/// limit is inclusive.
pub fn check_memory(footprint: &Footprint, limit: usize) -> Result<(), SizeError> {
    if footprint.bytes() > limit {
        return Err(SizeError::Memory {
            footprint: Box::new(footprint.clone()),
            limit,
        });
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
        let expected = "node 1 (broadcast) computes f32[1000000,1000000], more than the \
                        2147483648 elements a value may have";
        assert_eq!(check_graph(&g).unwrap_err().to_string(), expected);
        assert_eq!(check_lowerable(&g).unwrap_err().to_string(), expected);
    }

    #[test]
    fn values_over_the_interpreters_byte_limit_can_still_be_lowered() {
        let g = graph("graph g {\n  %x = input \"x\" : f64[1073741824]\n  output x = %x\n}\n");
        assert_eq!(
            check_graph(&g),
            Err(SizeError::Total {
                bytes: 1 << 33,
                limit: MAX_BYTES
            })
        );
        assert_eq!(check_lowerable(&g), Ok(()));
    }

    #[test]
    fn values_over_a_terabyte_together_are_not_lowered() {
        // 128 values of 2^30 f64 (8 GiB each, within the element limit) and the constant.
        let mut text = "graph g {\n  %c = constant 1.0 : f64[1]\n".to_string();
        for i in 0..128 {
            text += &format!("  %b{i} = broadcast %c : f64[1073741824]\n  output b{i} = %b{i}\n");
        }
        text += "}\n";
        let e = check_lowerable(&graph(&text)).unwrap_err();
        assert_eq!(
            e,
            SizeError::Total {
                bytes: (1 << 40) + 8,
                limit: MAX_LOWERED_BYTES
            }
        );
    }

    fn footprint(arena: usize, fixed: usize, scratch: usize, batch: Option<usize>) -> Footprint {
        Footprint {
            arena,
            fixed,
            scratch,
            batch,
        }
    }

    #[test]
    fn the_memory_limit_is_inclusive_and_counts_the_scratch() {
        let f = footprint(1000, 100, 24, Some(8));
        assert_eq!(check_memory(&f, 1024), Ok(()));
        assert!(check_memory(&f, 1023).is_err());
    }

    #[test]
    fn a_refusal_names_the_bytes_the_limit_and_a_batch_that_fits() {
        // 100 bytes stay; 800 scale with a batch of 8, 100 an example: 500 bytes leave room
        // for 4.
        let f = footprint(800, 100, 100, Some(8));
        assert_eq!(f.fitting_batch(500), Some(4));
        assert_eq!(
            check_memory(&f, 500).unwrap_err().to_string(),
            "the program needs 900 bytes (900 bytes: an arena of 800 and 100 of scratch), more \
             than the memory limit of 500 bytes (500 bytes; raise it with --max-memory or \
             Options::max_memory); it would fit at batch 4 or less (an estimate: the 100 \
             bytes of params, state and constants stay, the other 800 shrink in proportion \
             to the batch, 8 now)"
        );
        let e = check_memory(&f, 150).unwrap_err().to_string();
        assert!(
            e.contains("; it would not fit even at batch 1 (an estimate"),
            "{e}"
        );
        let e = check_memory(&footprint(5 << 30, 0, 0, None), 4 << 30).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the program needs 5368709120 bytes (5.0 GiB: an arena of 5368709120 and 0 of \
             scratch), more than the memory limit of 4294967296 bytes (4.0 GiB; raise it with \
             --max-memory or Options::max_memory)"
        );
    }
}
