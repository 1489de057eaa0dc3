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
        Op::Reshape(_) => unflatten(&flatten(index, out_shape), in_shape, extents),
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
