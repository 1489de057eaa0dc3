//! Ops that combine many elements into one: reductions, `dot` and `scatter_add`.
//!
//! Each result element folds its terms in row-major order, in the accumulator type
//! ([`Num::Acc`]: `f64` for both float types), starting from the first term as it is, and is
//! rounded to the element type once at the end. No terms give 0 for a sum and the lowest value
//! for a maximum.

use super::scalar::{Elem, Num};
use super::view::{clamp_index, positions, ravel};
use crate::array::Array;
use crate::op::{BinaryOp, ReduceOp};
use crate::types::{Shape, numel};

/// Folds `x` into the running value `acc` with `op`; the first value is taken as it is.
fn fold<A: Num>(acc: &mut Option<A>, op: BinaryOp, x: A) {
    *acc = Some(match *acc {
        None => x,
        Some(a) => A::binary(op, a, x),
    });
}

/// Running values rounded to `T`, `empty` where nothing was folded in.
fn finish<T: Num>(acc: Vec<Option<T::Acc>>, empty: T) -> Vec<T> {
    acc.into_iter()
        .map(|a| a.map_or(empty, T::narrow))
        .collect()
}

/// `op` over the `axes` of `x`; `out` is `x`'s shape without them.
pub(super) fn reduce<T: Num>(op: ReduceOp, x: &Array, axes: &[usize], out: &[usize]) -> Vec<T> {
    let (combine, empty) = match op {
        ReduceOp::Sum => (BinaryOp::Add, T::ZERO),
        ReduceOp::Max => (BinaryOp::Max, T::LOWEST),
    };
    let mut acc = vec![None; numel(out)];
    for (&v, i) in T::of(x).iter().zip(positions(x.shape())) {
        let kept: Shape = (0..i.len())
            .filter(|a| !axes.contains(a))
            .map(|a| i[a])
            .collect();
        fold(&mut acc[ravel(&kept, out)], combine, v.widen());
    }
    finish(acc, empty)
}

/// `[.., M, K] x [.., K, N] -> [.., M, N]`: each element sums its `K` products, each product
/// taken in the accumulator type.
pub(super) fn dot<T: Num>(a: &Array, b: &Array, out: &[usize]) -> Vec<T> {
    let r = out.len();
    let (m, k, n) = (out[r - 2], a.shape()[r - 1], out[r - 1]);
    let (av, bv) = (T::of(a), T::of(b));
    positions(out)
        .map(|o| {
            let (batch, i, j) = (ravel(&o[..r - 2], &out[..r - 2]), o[r - 2], o[r - 1]);
            let mut acc = None;
            for p in 0..k {
                let (x, y) = (av[(batch * m + i) * k + p], bv[(batch * k + p) * n + j]);
                fold(
                    &mut acc,
                    BinaryOp::Add,
                    T::Acc::binary(BinaryOp::Mul, x.widen(), y.widen()),
                );
            }
            acc.map_or(T::ZERO, T::narrow)
        })
        .collect()
}

/// Zeros of shape `out`, with each slice `u[pre.., j.., post..]` added at
/// `[pre.., idx[j..], post..]` (the index clamped into `0..out[axis]`).
pub(super) fn scatter_add<T: Num>(idx: &Array, u: &Array, axis: usize, out: &[usize]) -> Vec<T> {
    let (ids, r) = (i32::of(idx), idx.shape().len());
    let mut acc = vec![None; numel(out)];
    for (&v, i) in T::of(u).iter().zip(positions(u.shape())) {
        let Some(k) = clamp_index(ids[ravel(&i[axis..axis + r], idx.shape())], out[axis]) else {
            continue;
        };
        let mut target: Shape = i[..axis].into();
        target.push(k);
        target.extend_from_slice(&i[axis + r..]);
        fold(&mut acc[ravel(&target, out)], BinaryOp::Add, v.widen());
    }
    finish(acc, T::ZERO)
}
