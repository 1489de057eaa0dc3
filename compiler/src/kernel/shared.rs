//! Values worth a buffer although fusion could inline them: elementwise values, reductions and
//! concatenations that two or more kernels need and that cost much to recompute.
//!
//! Fusion recomputes a value that has no buffer in every kernel that needs it. For a cheap
//! value (a bias added, a ReLU) that beats writing and reading it back; for a chain of
//! expensive values it does not, and for a recurrence it is quadratic: an LSTM's cell state
//! `c_t = f_t c_{t-1} + i_t g_t` is needed by the kernel of step `t`, by that of step `t + 1`
//! and by the backward pass, so without a buffer the kernel of step `t` recomputes every step
//! before it, and a program of `T` steps holds `T^2 / 2` of them.
//!
//! Reductions are the other case: a max pooling's result, or a batch norm's mean, is needed by
//! the forward kernel after it and by the backward pass, and each would run a stage of its own
//! to recompute it.
//!
//! A concatenation is the third: each of its elements selects one operand's, but an expression
//! computes every operand at every element (a select picks one), so each kernel that inlines
//! a concatenation of `k` tensors computes `k` times its elements' worth.
//!
//! The rule: a reduction or a concatenation needed by at least two kernels gets a buffer; so
//! does an elementwise value needed by at least two kernels when recomputing it costs at
//! least [`SHARED_COST`].
//!
//! The cost of an elementwise value is that of its op plus that of every operand: a buffer's
//! element costs 2 to read again, an operand without a buffer what it costs to recompute (views
//! cost nothing, and a reduction, a stage of its own, stops the count); an op costs 1, a
//! division, square root or reciprocal 4, and an exponential, logarithm, tanh or power 8
//! (shared operands count once per path, which only overestimates). Counting the reads matters
//! where the inputs have gone cold: an LSTM's backward pass, recomputing a gate's
//! pre-activation from four buffers written many kernels earlier, ran slower than reading it.
//! Of a chain of such values, each the only use of the one before, directly or through
//! reshapes and permutations (the partial sums of a long addition), only the last gets a
//! buffer. Giving values buffers changes which kernels need
//! what, so the rule is applied again until it gives no more buffers.

use crate::graph::{Graph, NodeId};
use crate::op::{BinaryOp, Op, OpGroup, UnaryOp};
use std::collections::{HashMap, HashSet};

/// The recomputation cost from which a value two kernels need gets a buffer: a transcendental
/// function and the reads of two operands (a softmax's `exp(x - max)`, which its row sum and
/// its gradient both need), or a dozen additions and multiplications. Below it, recomputing
/// costs about what writing the value and reading it back would. Kernels over the same rows
/// are joined (`join`), so the value is then read back from cache within one kernel: storing a
/// softmax's exponentials once made its forward and backward pass a quarter faster than
/// computing them twice.
const SHARED_COST: u32 = 12;

/// Adds to `materialized` the values among `live` that the rule of the module docs gives a
/// buffer.
pub(super) fn materialize_shared(
    g: &Graph,
    live: &HashSet<NodeId>,
    materialized: &mut HashSet<NodeId>,
) {
    let order: Vec<NodeId> = g
        .topo_order()
        .into_iter()
        .filter(|id| live.contains(id))
        .collect();
    loop {
        let users = kernel_users(g, &order, materialized);
        let shared = |id: &NodeId| users.get(id).is_some_and(|&n| n >= 2);
        // The cost of recomputing each value without a buffer; absent means free (a buffer, a
        // leaf, a reduction, a concatenation).
        let mut cost: HashMap<NodeId, u32> = HashMap::new();
        let mut wanted: HashSet<NodeId> = HashSet::new();
        for &id in &order {
            let op = &g.node(id).op;
            if materialized.contains(&id) {
                continue;
            }
            if matches!(op, Op::Reduce { .. } | Op::Concat { .. }) {
                if shared(&id) {
                    wanted.insert(id);
                }
                continue;
            }
            let own = if op.group() == OpGroup::Elementwise {
                weight(op)
            } else {
                0
            };
            let read = |o: &NodeId| match materialized.contains(o) {
                true => LOAD_COST,
                false => *cost.get(o).unwrap_or(&0),
            };
            let c = g
                .operands(id)
                .iter()
                .fold(own, |acc, o| acc.saturating_add(read(o)));
            if op.group() == OpGroup::Elementwise && shared(&id) && c >= SHARED_COST {
                wanted.insert(id);
            }
            cost.insert(id, c);
        }
        // Of a chain of wanted values, each the only use of the one before, directly or
        // through reshapes and permutations (the partial sums of a long addition; a pooling
        // gradient laid out as windows, put back in image order and masked by the
        // activation's gradient), only the last needs a buffer: the kernels that need the
        // chain need it through the last, computing each element of the chain once per
        // element of the last (views that repeat elements, like a broadcast, would compute
        // it more often).
        let last_of_chain = |id: &NodeId| {
            let mut at = *id;
            loop {
                let mut next = g.users(at);
                next.retain(|u| live.contains(u));
                match next.as_slice() {
                    [only] if wanted.contains(only) => return false,
                    [only]
                        if matches!(g.node(*only).op, Op::Reshape(_) | Op::Permute(_))
                            && !materialized.contains(only) =>
                    {
                        at = *only
                    }
                    _ => return true,
                }
            }
        };
        let chosen: Vec<NodeId> = wanted.iter().copied().filter(last_of_chain).collect();
        if chosen.is_empty() {
            return;
        }
        materialized.extend(chosen);
    }
}

/// The cost of reading an element of a buffer again (a recomputed value re-reads its inputs).
const LOAD_COST: u32 = 2;

/// The cost of computing one element of `op`'s result from its operands' elements.
fn weight(op: &Op) -> u32 {
    match op {
        Op::StopGradient => 0,
        Op::Unary(UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh) | Op::Binary(BinaryOp::Pow) => 8,
        Op::Unary(UnaryOp::Sqrt | UnaryOp::Recip) | Op::Binary(BinaryOp::Div) => 4,
        _ => 1,
    }
}

/// For each value without a buffer, the number of kernels that compute it: the computed
/// values with a buffer (kernel roots) from which it is reached through values without one.
fn kernel_users(
    g: &Graph,
    order: &[NodeId],
    materialized: &HashSet<NodeId>,
) -> HashMap<NodeId, u32> {
    let mut users: HashMap<NodeId, u32> = HashMap::new();
    let roots = order.iter().filter(|id| {
        materialized.contains(id) && !matches!(g.node(**id).op, Op::Input { .. } | Op::Constant(_))
    });
    for &root in roots {
        let mut seen: HashSet<NodeId> = HashSet::new();
        let mut stack: Vec<NodeId> = g.operands(root).to_vec();
        while let Some(id) = stack.pop() {
            if materialized.contains(&id) || !seen.insert(id) {
                continue;
            }
            *users.entry(id).or_default() += 1;
            stack.extend(g.operands(id));
        }
    }
    users
}
