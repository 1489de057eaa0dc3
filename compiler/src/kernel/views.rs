//! Views as index arithmetic: where the element of a view is found in its operand, and under
//! which conditions (a pad's) it is there at all.

use super::Cond;
use super::index::{Index, flatten, unflatten};
use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::types::Shape;

/// For a view node (not pad with guards, not concat), the index of its operand at which its
/// element `index` is found, and the conditions under which it is (a pad's). `None` for
/// non-views.
pub(super) fn view_index(
    g: &Graph,
    node: NodeId,
    index: &[Index],
    extents: &[i64],
) -> Option<(Vec<Index>, Vec<Cond>)> {
    let n = g.node(node);
    let operand = *g.operands(node).first()?;
    let in_shape: &Shape = &g.node(operand).ty.shape;
    let out_shape = &n.ty.shape;
    let mut guards = vec![];
    let inner: Vec<Index> = match &n.op {
        Op::Reshape(_) => reshape_index(index, out_shape, in_shape, extents),
        Op::Permute(perm) => {
            let mut v = vec![Index::constant(0); perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                v[p] = index[i].clone();
            }
            v
        }
        Op::Broadcast(_) => (0..in_shape.len())
            .map(|i| {
                if in_shape[i] == 1 {
                    Index::constant(0)
                } else {
                    index[i].clone()
                }
            })
            .collect(),
        Op::Slice { start, step, .. } => (0..in_shape.len())
            .map(|i| index[i].scale(step[i] as i64).offset(start[i] as i64))
            .collect(),
        Op::Pad { low, interior, .. } => (0..in_shape.len())
            .map(|i| {
                let t = index[i].offset(-(low[i] as i64));
                let every = interior[i] as i64 + 1;
                let d = in_shape[i] as i64;
                let covered = d + (d - 1).max(0) * (every - 1);
                guards.push(Cond::Range {
                    index: t.clone(),
                    lo: 0,
                    hi: covered,
                });
                if every > 1 {
                    guards.push(Cond::Multiple {
                        index: t.clone(),
                        of: every,
                    });
                }
                t.div(every, extents)
            })
            .collect(),
        Op::Windows {
            window,
            stride,
            dilation,
        } => {
            let k = window.len();
            let lead = in_shape.len() - k;
            let mut v: Vec<Index> = index[..lead].to_vec();
            for i in 0..k {
                let pos = index[lead + i].scale(stride[i] as i64);
                v.push(pos.add(&index[lead + k + i].scale(dilation[i] as i64)));
            }
            v
        }
        _ => return None,
    };
    Some((inner, simplify(guards, extents)?))
}

/// Drops conditions that always hold; `None` if one never holds.
pub(super) fn simplify(conds: Vec<Cond>, extents: &[i64]) -> Option<Vec<Cond>> {
    let mut out = vec![];
    for c in conds {
        match &c {
            Cond::Range { index, lo, hi } => {
                let (a, b) = index.range(extents);
                if a >= *lo && b < *hi {
                    continue;
                }
                if b < *lo || a >= *hi {
                    return None;
                }
            }
            Cond::Multiple { index, of } => {
                let divides = |k: i64| k % of == 0;
                if divides(index.constant) && index.terms.iter().all(|(k, _)| divides(*k)) {
                    continue;
                }
            }
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Some(out)
}

/// The operand index of element `index` of a reshape from `in_shape` to `out_shape`. Row-major
/// order splits both shapes into groups of axes with equal products (an axis of extent 1 is a
/// group of its own): a group of one axis on both sides keeps its index, and only the others
/// go through flattening and unflattening, so a reshape that adds, drops, splits or merges a
/// few axes leaves the indices of the others free of division.
fn reshape_index(
    index: &[Index],
    out_shape: &[usize],
    in_shape: &[usize],
    extents: &[i64],
) -> Vec<Index> {
    let whole = || unflatten(&flatten(index, out_shape), in_shape, extents);
    if in_shape.contains(&0) || out_shape.contains(&0) {
        return whole();
    }
    let mut inner = Vec::with_capacity(in_shape.len());
    let (mut i, mut o) = (0, 0);
    while i < in_shape.len() || o < out_shape.len() {
        if in_shape.get(i) == Some(&1) {
            inner.push(Index::constant(0));
            i += 1;
            continue;
        }
        if out_shape.get(o) == Some(&1) {
            o += 1;
            continue;
        }
        let (i0, o0) = (i, o);
        let (Some(&a), Some(&b)) = (in_shape.get(i), out_shape.get(o)) else {
            return whole();
        };
        let (mut pi, mut po) = (a, b);
        (i, o) = (i + 1, o + 1);
        while pi != po {
            let grown = if pi < po {
                in_shape.get(i).map(|&d| (pi *= d, i += 1))
            } else {
                out_shape.get(o).map(|&d| (po *= d, o += 1))
            };
            if grown.is_none() {
                return whole();
            }
        }
        if i - i0 == 1 && o - o0 == 1 {
            inner.push(index[o0].clone());
        } else {
            let flat = flatten(&index[o0..o], &out_shape[o0..o]);
            inner.extend(unflatten(&flat, &in_shape[i0..i], extents));
        }
    }
    inner
}
