//! Where update values and outputs live: snapshot copies, and updates done in place.

use super::{BufferId, Expr, Index, Kernel, LoopKernel, Program, Role, Stage, StageKind, Store};
use crate::types::DType;

/// A kernel copying `n` elements of `dtype` from buffer `from` to buffer `to`.
pub(super) fn copy_kernel(from: BufferId, to: BufferId, n: usize, dtype: DType) -> LoopKernel {
    let offset = Index::var(0);
    LoopKernel {
        extents: vec![n as i64],
        outer: vec![],
        stages: vec![Stage {
            vars: vec![0],
            kind: StageKind::Store(vec![Store {
                buffer: to,
                offset: offset.clone(),
                value: 0,
            }]),
        }],
        exprs: vec![(
            Expr::Load {
                buffer: from,
                offset,
                guards: vec![],
            },
            dtype,
        )],
        parallel: Some(0),
    }
}

/// Makes each update whose kernel can write its new value over the old one do so: the new
/// value's kernel is a loop kernel that reads the state only at the element it writes, and
/// nothing later (a kernel or an output) reads the old value. Other updates keep a separate
/// buffer, copied after a run.
pub(super) fn in_place_updates(mut p: Program) -> Program {
    for u in 0..p.updates.len() {
        let (_, state, value) = p.updates[u].clone();
        if state == value || p.buffers[value as usize].role != Role::Temp {
            continue;
        }
        let Some(k) = p.kernels.iter().position(|k| k.writes() == [value]) else {
            continue;
        };
        let Kernel::Loop(lk) = &p.kernels[k] else {
            continue;
        };
        let stores: Vec<&Store> = lk
            .stages
            .iter()
            .flat_map(|s| match &s.kind {
                StageKind::Store(st) => st.iter().collect(),
                StageKind::Reduce { .. } => vec![],
            })
            .collect();
        let [store] = stores.as_slice() else { continue };
        let same_element = lk.exprs.iter().all(|(e, _)| match e {
            Expr::Load {
                buffer,
                offset,
                guards,
            } if *buffer == state => *offset == store.offset && guards.is_empty(),
            _ => true,
        });
        let read_later = p.kernels[k + 1..]
            .iter()
            .any(|later| later.reads().contains(&state))
            || p.outputs.iter().any(|&(_, b)| b == state);
        if !same_element || read_later {
            continue;
        }
        replace_buffer(&mut p, value, state);
    }
    p
}

/// Makes every use of buffer `from` a use of `to`, and removes `from`.
fn replace_buffer(p: &mut Program, from: BufferId, to: BufferId) {
    let remap = |b: &mut BufferId| {
        if *b == from {
            *b = to;
        }
        if *b > from {
            *b -= 1;
        }
    };
    for k in &mut p.kernels {
        match k {
            Kernel::Loop(l) => {
                for (e, _) in &mut l.exprs {
                    if let Expr::Load { buffer, .. } = e {
                        remap(buffer);
                    }
                }
                for s in &mut l.stages {
                    if let StageKind::Store(stores) = &mut s.kind {
                        stores.iter_mut().for_each(|st| remap(&mut st.buffer));
                    }
                }
            }
            Kernel::Dot(d) => {
                remap(&mut d.a.buffer);
                remap(&mut d.b.buffer);
                remap(&mut d.out);
            }
            Kernel::Scatter(s) => {
                remap(&mut s.indices);
                remap(&mut s.updates);
                remap(&mut s.out);
            }
        }
    }
    p.outputs.iter_mut().for_each(|(_, b)| remap(b));
    for (_, s, v) in &mut p.updates {
        remap(s);
        remap(v);
    }
    p.buffers.remove(from as usize);
}
