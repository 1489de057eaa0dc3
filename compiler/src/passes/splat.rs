//! Splats: tensors whose elements all equal one value known at compile time. Autodiff and the
//! frontend write them as a scalar constant reshaped to extents of 1 and broadcast; fold keeps
//! them as a broadcast one-element constant (free inside a fused kernel) rather than
//! materializing them.

use crate::array::Array;
use crate::graph::{Graph, NodeId};
use crate::op::Op;

/// The value every element of node `id` equals, when it is a constant known at compile time:
/// a constant whose elements all have the same bits, seen through any chain of `reshape` and
/// `broadcast`. `None` otherwise, and for a constant with no elements.
///
/// The value is exact for every element type (`true` is 1, `false` 0); in particular `-0.0`
/// and `0.0` stay apart (test the sign), and a NaN is a NaN.
pub fn splat_value(g: &Graph, id: NodeId) -> Option<f64> {
    splat(g, id).map(|s| s.data().get_f64(0))
}

/// The value every element of node `id` equals, as a scalar array of its element type (bits
/// preserved, NaN payloads included): see [`splat_value`].
pub(super) fn splat(g: &Graph, mut id: NodeId) -> Option<Array> {
    loop {
        match &g.node(id).op {
            Op::Reshape(_) | Op::Broadcast(_) => id = g.operands(id)[0],
            Op::Constant(a) => return uniform(a),
            _ => return None,
        }
    }
}

/// The element every element of `a` equals bitwise, as a scalar array; `None` if `a` is empty
/// or has two different elements.
pub(super) fn uniform(a: &Array) -> Option<Array> {
    if a.numel() == 0 {
        return None;
    }
    let first = a.data().gather(std::iter::once(Some(0)), 0.0);
    let repeated = a.data().gather((0..a.numel()).map(|_| Some(0)), 0.0);
    repeated
        .bits_eq(a.data())
        .then(|| Array::new([], first).expect("one element fills a scalar"))
}

/// The array of `shape` whose every element is the element of the scalar array `s`, bitwise.
pub(super) fn fill(s: &Array, shape: &[usize]) -> Array {
    let n = crate::types::numel(shape);
    Array::new(shape, s.data().gather((0..n).map(|_| Some(0)), 0.0))
        .expect("the gathered elements fill the shape")
}
