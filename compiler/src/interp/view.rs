//! Ops that only move elements: each result element is an operand element picked by an index
//! map (or, for `pad` and a gather from an empty axis, a fill value).

use super::scalar::Elem;
use crate::array::{Array, Data};
use crate::types::{Shape, numel};

/// Every multi-index of `shape`, row-major (none if an extent is 0, one `[]` for a scalar).
pub(super) fn positions(shape: &[usize]) -> impl Iterator<Item = Shape> + '_ {
    (0..numel(shape)).map(move |mut flat| {
        let mut index: Shape = smallvec::smallvec![0; shape.len()];
        for axis in (0..shape.len()).rev() {
            index[axis] = flat % shape[axis];
            flat /= shape[axis];
        }
        index
    })
}

/// The row-major position of multi-index `index` in `shape`.
pub(super) fn ravel(index: &[usize], shape: &[usize]) -> usize {
    index
        .iter()
        .zip(shape)
        .fold(0, |flat, (&i, &d)| flat * d + i)
}

/// Index `i` clamped into `0..n`; `None` when `n` is 0.
pub(super) fn clamp_index(i: i32, n: usize) -> Option<usize> {
    (n > 0).then(|| (i.max(0) as usize).min(n - 1))
}

/// The array of shape `out` whose element at each position `o` is `x[source(o)]`, or `fill`
/// (converted to the element type) where `source` gives `None`.
fn view(x: &Array, out: &[usize], fill: f64, source: impl Fn(&[usize]) -> Option<Shape>) -> Data {
    let flat = positions(out).map(|o| source(&o).map(|i| ravel(&i, x.shape())));
    x.data().gather(flat, fill)
}

/// Result axis `k` is operand axis `perm[k]`.
pub(super) fn permute(x: &Array, perm: &[usize], out: &[usize]) -> Data {
    view(x, out, 0.0, |o| {
        let mut i: Shape = smallvec::smallvec![0; o.len()];
        for (k, &p) in perm.iter().enumerate() {
            i[p] = o[k];
        }
        Some(i)
    })
}

/// Operand axes of extent 1 read at index 0 whatever the result index.
pub(super) fn broadcast(x: &Array, out: &[usize]) -> Data {
    view(x, out, 0.0, |o| {
        Some(
            o.iter()
                .zip(x.shape())
                .map(|(&i, &d)| if d == 1 { 0 } else { i })
                .collect(),
        )
    })
}

/// Result index `o` reads operand index `start + o * step` on every axis.
pub(super) fn slice(x: &Array, start: &[usize], step: &[usize], out: &[usize]) -> Data {
    view(x, out, 0.0, |o| {
        Some((0..o.len()).map(|a| start[a] + o[a] * step[a]).collect())
    })
}

/// On each axis, result index `o` reads operand index `(o - low) / (interior + 1)` when that
/// division is exact and lands inside the operand; every other element is `value`.
pub(super) fn pad(x: &Array, low: &[usize], interior: &[usize], value: f64, out: &[usize]) -> Data {
    view(x, out, value, |o| {
        (0..o.len())
            .map(|a| {
                let q = o[a].checked_sub(low[a])?;
                let step = interior[a] + 1;
                (q % step == 0 && q / step < x.shape()[a]).then_some(q / step)
            })
            .collect()
    })
}

/// `[.., i, j, p, q]` reads `[.., i*sh + p*dh, j*sw + q*dw]` (any number of window axes).
pub(super) fn windows(x: &Array, stride: &[usize], dilation: &[usize], out: &[usize]) -> Data {
    let k = stride.len();
    let lead = x.shape().len() - k;
    view(x, out, 0.0, |o| {
        let mut i: Shape = o[..lead].into();
        i.extend((0..k).map(|s| o[lead + s] * stride[s] + o[lead + k + s] * dilation[s]));
        Some(i)
    })
}

/// `take(x, idx, axis)`: result `[pre.., j.., post..]` reads `x[pre.., idx[j..], post..]`, the
/// index clamped into range (inference refuses a gather from an empty axis; here it gives 0).
pub(super) fn gather(x: &Array, idx: &Array, axis: usize, out: &[usize]) -> Data {
    let (ids, r, n) = (i32::of(idx), idx.shape().len(), x.shape()[axis]);
    view(x, out, 0.0, |o| {
        let k = clamp_index(ids[ravel(&o[axis..axis + r], idx.shape())], n)?;
        let mut i: Shape = o[..axis].into();
        i.push(k);
        i.extend_from_slice(&o[axis + r..]);
        Some(i)
    })
}

/// The operands joined along `axis`: in row-major order, each run of the result below the
/// axes before `axis` is the matching run of every operand in turn.
pub(super) fn concat<T: Elem>(args: &[&Array], axis: usize, out: &[usize]) -> Vec<T> {
    (0..numel(&out[..axis]))
        .flat_map(|outer| {
            args.iter().flat_map(move |a| {
                let run = numel(&a.shape()[axis..]);
                T::of(a)[outer * run..(outer + 1) * run].iter().copied()
            })
        })
        .collect()
}
