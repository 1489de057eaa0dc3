//! Where update values and outputs live: snapshot copies, and updates done in place.

use super::{
    BufferId, Expr, ExprId, Index, Kernel, LoopKernel, Program, Role, Stage, StageKind, Store,
};
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
/// value's kernel is a loop kernel that stores it once, reads the state only at the element it
/// writes and in no stage after the store's (a store stage computes all its values at a point
/// before it stores any), and nothing later (a kernel or an output) reads the old value. Other updates keep a separate
/// buffer, copied after a run.
pub(super) fn in_place_updates(mut p: Program) -> Program {
    for u in 0..p.updates.len() {
        let (_, state, value) = p.updates[u].clone();
        if state == value || p.buffers[value as usize].role != Role::Temp {
            continue;
        }
        let Some(k) = p.kernels.iter().position(|k| k.writes().contains(&value)) else {
            continue;
        };
        let Kernel::Loop(lk) = &p.kernels[k] else {
            continue;
        };
        let stores: Vec<(usize, &Store)> = (lk.stages.iter().enumerate())
            .flat_map(|(s, stage)| match &stage.kind {
                StageKind::Store(st) => st.iter().map(|x| (s, x)).collect(),
                StageKind::Reduce { .. } => vec![],
            })
            .filter(|(_, st)| st.buffer == value)
            .collect();
        let [(s, store)] = stores.as_slice() else {
            continue;
        };
        let reads_state = |e: &ExprId| matches!(&lk.exprs[*e as usize].0, Expr::Load { buffer, .. } if *buffer == state);
        let same_element = lk.exprs.iter().all(|(e, _)| match e {
            Expr::Load {
                buffer,
                offset,
                guards,
            } if *buffer == state => *offset == store.offset && guards.is_empty(),
            _ => true,
        });
        // A stage after the store's would read the new value.
        let read_after = (s + 1..lk.stages.len()).any(|t| lk.needed(t).iter().any(reads_state));
        let read_later = p.kernels[k + 1..]
            .iter()
            .any(|later| later.reads().contains(&state))
            || p.outputs.iter().any(|&(_, b)| b == state);
        if !same_element || read_after || read_later {
            continue;
        }
        replace_buffer(&mut p, value, state);
    }
    p
}

/// Makes every use of buffer `from` a use of `to`, and removes `from`.
fn replace_buffer(p: &mut Program, from: BufferId, to: BufferId) {
    super::map_buffers(p, &|b| {
        let b = if b == from { to } else { b };
        if b > from { b - 1 } else { b }
    });
    p.buffers.remove(from as usize);
}
