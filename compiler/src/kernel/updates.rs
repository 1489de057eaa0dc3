//! Where update values and outputs live: snapshot copies, and updates done in place.

use super::{
    BufferId, Expr, ExprId, Index, Kernel, LoopKernel, Program, Role, Stage, StageKind, Store,
};
use crate::op::{BinaryOp, Op};
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

/// Makes each gradient descent step `w = w - s * g` done in place, where the gradient `g` is
/// one matrix product that nothing else reads, a step of the product itself: it adds `-s`
/// times the product to `w` (`gemm` scales the product and adds it to its destination), and
/// the step's kernel and `g`'s buffer go. For the MLP's first layer that saves writing and
/// reading back a `[784, 128]` gradient.
///
/// Only where nothing reads `w` from the product on (its old value is not needed any more
/// when the product changes it) and `w` is no output. The element is `w + -(s g)`, which is
/// `w - s g` bit for bit. A sum of products (see `accumulate`) is not folded: adding each
/// product's step to `w` would round differently from `w - s * (sum)`.
pub(super) fn descents_in_products(mut p: Program) -> Program {
    let mut u = 0;
    while u < p.updates.len() {
        let (_, state, value) = p.updates[u].clone();
        u += 1;
        if state != value {
            continue;
        }
        let Some((step, scale, gradient)) = descent_step(&p, state) else {
            continue;
        };
        let writers: Vec<usize> = (0..p.kernels.len())
            .filter(|&k| p.kernels[k].writes() == [gradient])
            .collect();
        let &[product] = writers.as_slice() else {
            continue;
        };
        let one_product = match &p.kernels[product] {
            Kernel::Dot(d) => !d.accumulate && d.descend.is_none() && product < step,
            _ => false,
        };
        let gradient_read_elsewhere = (p.kernels.iter().enumerate())
            .any(|(k, kernel)| k != step && kernel.reads().contains(&gradient))
            || p.outputs.iter().any(|&(_, b)| b == gradient);
        let state_touched = (product..p.kernels.len()).filter(|&k| k != step).any(|k| {
            p.kernels[k].reads().contains(&state) || p.kernels[k].writes().contains(&state)
        }) || p.outputs.iter().any(|&(_, b)| b == state);
        if !one_product
            || gradient_read_elsewhere
            || state_touched
            || p.kernels[step].writes() != [state]
        {
            continue;
        }
        if let Kernel::Dot(d) = &mut p.kernels[product] {
            d.out = state;
            d.accumulate = true;
            d.descend = Some(scale);
        }
        p.kernels.remove(step);
        // Nothing names the gradient's buffer any more.
        remove_buffer(&mut p, gradient);
    }
    p
}

/// The kernel computing `w[i] - s[0] * g[i]` (or `g[i] * s[0]`) into `w` in place, with its
/// scalar `s` and gradient buffer `g`, if kernel `state`'s update is such a step.
fn descent_step(p: &Program, state: BufferId) -> Option<(usize, BufferId, BufferId)> {
    let k = p.kernels.iter().position(|k| k.writes().contains(&state))?;
    let Kernel::Loop(lk) = &p.kernels[k] else {
        return None;
    };
    let [stage] = lk.stages.as_slice() else {
        return None;
    };
    let StageKind::Store(stores) = &stage.kind else {
        return None;
    };
    let [store] = stores.as_slice() else {
        return None;
    };
    let dtype = p.buffers[state as usize].ty.dtype;
    let expr = |e: ExprId| &lk.exprs[e as usize].0;
    let load = |e: ExprId| match expr(e) {
        Expr::Load {
            buffer,
            offset,
            guards,
        } if guards.is_empty() => Some((*buffer, offset)),
        _ => None,
    };
    let apply = |e: ExprId, op: BinaryOp| match expr(e) {
        Expr::Apply { op: o, args } if *o == Op::Binary(op) => Some([args[0], args[1]]),
        _ => None,
    };
    let [w, step] = apply(store.value, BinaryOp::Sub)?;
    let [x, y] = apply(step, BinaryOp::Mul)?;
    let (scale, gradient) = match (load(x)?, load(y)?) {
        ((s, at), (g, o)) | ((g, o), (s, at))
            if p.buffers[s as usize].ty.numel() == 1
                && at.terms.is_empty()
                && *o == store.offset
                && g != s =>
        {
            (s, g)
        }
        _ => return None,
    };
    let (w_buffer, w_offset) = load(w)?;
    let elementwise = w_buffer == state
        && *w_offset == store.offset
        && store.buffer == state
        && p.buffers[gradient as usize].ty == p.buffers[state as usize].ty
        && p.buffers[gradient as usize].role == Role::Temp
        && dtype.is_float();
    // Every element of `w` once, in order.
    let points: i64 = stage.vars.iter().map(|&v| lk.extents[v as usize]).product();
    let whole = lk.outer.is_empty()
        && points == p.buffers[state as usize].ty.numel() as i64
        && store.offset == flat_index(lk, &stage.vars);
    (elementwise && whole).then_some((k, scale, gradient))
}

/// The row-major flat index over `vars` (each a loop of `lk`).
fn flat_index(lk: &LoopKernel, vars: &[super::Var]) -> Index {
    let mut i = Index::default();
    for &v in vars {
        i = i.scale(lk.extents[v as usize]).add(&Index::var(v));
    }
    i
}

/// Removes buffer `b`, which nothing names any more.
fn remove_buffer(p: &mut Program, b: BufferId) {
    super::map_buffers(p, &|x| {
        assert!(x != b, "the removed buffer is still named");
        if x > b { x - 1 } else { x }
    });
    p.buffers.remove(b as usize);
}
