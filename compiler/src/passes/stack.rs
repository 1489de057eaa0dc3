//! Stacking products: matrix products of one matrix with every slice of one tensor become one
//! product of the whole tensor, sliced.
//!
//! An unrolled recurrence multiplies the input of each step by the same weight:
//! `x_t W` for every `t`, where `x_t = reshape(slice(x, t))` takes one index of the time axis
//! of `x: [B, T, F]`. The whole tensor is a matrix of `B T` rows (`reshape(x, [B T, F])`,
//! which copies nothing), so one product `R = reshape(x, [B T, F]) W` holds every step's rows:
//! `x_t W` is `reshape(slice(reshape(R, [B, T, N]), t), [B, N])`. One product of `B T` rows
//! runs at a matrix library's full speed where `T` products of `B` rows each pay its overhead
//! (for the LSTM benchmark: 32 products of `[32, 32] x [32, 512]`, 9.6 us each, against one of
//! `[1024, 32] x [32, 512]`).
//!
//! Exact: each element of a product is the same sum of the same terms in the same order,
//! whichever rows are computed with it. Products are stacked only where every index of the
//! sliced axis has one, so the stacked product computes no row that is not needed.

use super::rewrite::{add_like, is_used, replace};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Shape;
use std::collections::BTreeMap;

/// A product `reshape(slice(x, t on axis)) x w` with one index `t` of a non-last axis of `x`
/// sliced, as [`stack_products`] stacks it.
struct SliceProduct {
    /// The product.
    dot: NodeId,
    /// The index taken.
    at: usize,
}

/// Replaces every full set of products of one matrix `w` with the slices of one tensor along
/// one axis by slices of one product (see the module docs). Returns true if it replaced any.
pub fn stack_products(g: &mut Graph) -> bool {
    // (x, axis, w) -> the products.
    let mut groups: BTreeMap<(NodeId, usize, NodeId), Vec<SliceProduct>> = BTreeMap::new();
    for id in g.topo_order() {
        if g.node(id).op != Op::Dot || g.node(id).ty.rank() != 2 || !is_used(g, id) {
            continue;
        }
        let [lhs, w] = g.operands(id)[..] else {
            continue;
        };
        if let Some((x, axis, at)) = one_slice(g, lhs) {
            let group = groups.entry((x, axis, w)).or_default();
            group.push(SliceProduct { dot: id, at });
        }
    }
    let mut changed = false;
    for ((x, axis, w), products) in groups {
        let x_shape = g.node(x).ty.shape.clone();
        let mut covered = vec![false; x_shape[axis]];
        products.iter().for_each(|p| covered[p.at] = true);
        if products.len() < 2 || covered.contains(&false) {
            continue;
        }
        let like = products[0].dot;
        let (&k, outer) = x_shape.split_last().expect("rank 2 or more");
        let n = g.node(w).ty.shape[1];
        let rows = outer.iter().product::<usize>();
        let matrix = add_like(g, like, Op::Reshape(Shape::from_slice(&[rows, k])), &[x]);
        let product = add_like(g, like, Op::Dot, &[matrix, w]);
        let mut shape = x_shape.clone();
        *shape.last_mut().expect("rank 2 or more") = n;
        let stacked = add_like(g, like, Op::Reshape(shape.clone()), &[product]);
        for p in &products {
            let start: Shape = (0..shape.len())
                .map(|i| if i == axis { p.at } else { 0 })
                .collect();
            let mut end = shape.clone();
            end[axis] = p.at + 1;
            let step = Shape::from_elem(1, shape.len());
            let slice = Op::Slice { start, end, step };
            let slice = add_like(g, p.dot, slice, &[stacked]);
            let shape = g.node(p.dot).ty.shape.clone();
            let value = add_like(g, p.dot, Op::Reshape(shape), &[slice]);
            replace(g, p.dot, value);
        }
        changed = true;
    }
    changed
}

/// `(x, axis, t)` if `lhs` is a matrix `reshape(slice(x))` whose slice takes index `t` of one
/// axis of `x` other than the last, and all of every other axis.
fn one_slice(g: &Graph, lhs: NodeId) -> Option<(NodeId, usize, usize)> {
    let Op::Reshape(_) = g.node(lhs).op else {
        return None;
    };
    let slice = g.operands(lhs)[0];
    let Op::Slice { start, end, step } = &g.node(slice).op else {
        return None;
    };
    let x = g.operands(slice)[0];
    let shape = &g.node(x).ty.shape;
    let last = shape.len().checked_sub(1)?;
    let mut taken = None;
    for i in 0..shape.len() {
        if start[i] == 0 && end[i] == shape[i] && step[i] == 1 {
            continue;
        }
        if end[i] != start[i] + 1 || i == last || taken.is_some() {
            return None;
        }
        taken = Some((i, start[i]));
    }
    let (axis, at) = taken?;
    // The matrix's columns are `x`'s last axis.
    (g.node(lhs).ty.shape[1] == shape[last]).then_some((x, axis, at))
}
