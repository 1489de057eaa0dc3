//! Joining loop kernels: a loop kernel that loops over the same outer index as an earlier one
//! becomes part of it, so the program calls fewer kernels, and a value one of them stores and
//! the other reads at the same element never goes through memory.
//!
//! Planning gives every materialized value a kernel of its own. Many of them run over the same
//! index one after the other: a softmax's row maximum, its row sum of exponentials and its
//! gradient all loop over the rows, and an LSTM step's gate activations are a dozen kernels
//! over the same batch of cells. [`join_kernels`] walks the program in order and joins each
//! loop kernel `B` into the latest earlier loop kernel `A` it can join:
//!
//! - *The same outer loops*: `A` and `B` have outer loops of the same extents (matched by
//!   position), or one of them is a single store stage whose first loops have the extents of
//!   the other's outer loops (those loops then become its outer loops), or both are single
//!   store stages over loops of the same extents. Two kernels without outer loops join only if
//!   both are single store stages (the result is one stage, split across threads as each part
//!   was) or neither is (neither is split).
//! - *Reads of `A`'s results where they are written*: `B` reads a buffer `A` stores only
//!   unguarded, and at an element `A` stores in the same outer iteration: the load's offset is
//!   the store's, with the store stage's loops renamed to the loops (of the same extents) of
//!   one of `B`'s stages. Since `B`'s stages run after `A`'s, every element `B` reads has been
//!   written, by the same thread (threads split the outer loop, which both share).
//! - *Unit strides*: every load that varies in a stage's innermost loop, in either kernel,
//!   reads consecutive elements (see `unit_stride`).
//! - *No conflicts*: `B` writes nothing `A` reads or writes, and no kernel between `A` and `B`
//!   writes what `B` reads, or reads or writes what `B` writes (`B` moves up to `A`).
//!
//! The joined kernel runs `A`'s stages, then `B`'s; when `A`'s last stage and `B`'s first are
//! store stages over loops of the same extents they are one stage, storing `A`'s values and
//! then `B`'s at each point. A load by `B` at exactly the offset `A` stores (the same point of
//! that stage, or an element of the outer index alone) becomes the stored expression itself,
//! so no stage ever loads what its own point stores. A temporary nothing loads any more (and
//! no output or update names) then loses its store and its buffer.
//!
//! Before joining, kernels of one point (per-step scalars) move up to just after what they
//! depend on, so they do not stand between kernels that join.
//!
//! Joining runs after planning and before loops merge (`merge`): every single store stage then
//! still loops over its value's axes, so kernels over the same shape have the same loops.

use super::index::Index;
use super::{
    BufferId, Cond, Expr, ExprId, Kernel, LoopKernel, Program, Role, Stage, StageKind, Var,
};
use crate::types::DType;
use std::collections::{HashMap, HashSet};

/// Joins the program's loop kernels as the module docs describe, then drops the stores and
/// buffers nothing reads any more.
pub(super) fn join_kernels(p: &mut Program) {
    hoist_scalar_kernels(&mut p.kernels);
    let mut out: Vec<Kernel> = Vec::with_capacity(p.kernels.len());
    for k in std::mem::take(&mut p.kernels) {
        let Kernel::Loop(b) = k else {
            out.push(k);
            continue;
        };
        match target(&out, &b) {
            Some((i, joined)) => out[i] = Kernel::Loop(joined),
            None => out.push(Kernel::Loop(b)),
        }
    }
    p.kernels = out;
    remove_dead_stores(p);
}

/// Moves each loop kernel of one point (every loop of extent 1: a per-step scalar such as
/// Adam's bias corrections) up to just after the last kernel it depends on, so it does not
/// sit between two kernels that would join (Adam's moment updates and its parameter update).
fn hoist_scalar_kernels(kernels: &mut Vec<Kernel>) {
    hoist(
        kernels,
        |k| matches!(k, Kernel::Loop(l) if l.extents.iter().all(|&e| e <= 1)),
    );
}

/// Moves each kernel that `which` picks up to just after the last kernel it depends on, in
/// program order. A kernel stays after every earlier kernel that writes what it reads, or
/// reads or writes what it writes, so the program computes the same.
pub(super) fn hoist(kernels: &mut Vec<Kernel>, which: impl Fn(&Kernel) -> bool) {
    let meets = |x: &[BufferId], y: &[BufferId]| x.iter().any(|b| y.contains(b));
    for i in 0..kernels.len() {
        if !which(&kernels[i]) {
            continue;
        }
        let (reads, writes) = (kernels[i].reads(), kernels[i].writes());
        let after = (0..i).rev().find(|&j| {
            let (r, w) = (kernels[j].reads(), kernels[j].writes());
            meets(&w, &reads) || meets(&r, &writes) || meets(&w, &writes)
        });
        let to = after.map_or(0, |j| j + 1);
        let k = kernels.remove(i);
        kernels.insert(to, k);
    }
}

/// The latest kernel of `done` that `b` joins, and the joined kernel; `None` if `b` stays a
/// kernel of its own.
fn target(done: &[Kernel], b: &LoopKernel) -> Option<(usize, LoopKernel)> {
    let kb = Kernel::Loop(b.clone());
    let (reads, writes) = (kb.reads(), kb.writes());
    let meets = |x: &[BufferId], y: &[BufferId]| x.iter().any(|b| y.contains(b));
    for (i, k) in done.iter().enumerate().rev() {
        if let Kernel::Loop(a) = k
            && let Some(joined) = join(a, b)
        {
            return Some((i, joined));
        }
        let (r, w) = (k.reads(), k.writes());
        if meets(&w, &reads) || meets(&r, &writes) || meets(&w, &writes) {
            return None;
        }
    }
    None
}

/// True if `k` is one store stage without outer loops.
fn single(k: &LoopKernel) -> bool {
    k.outer.is_empty()
        && matches!(k.stages.as_slice(), [s] if matches!(s.kind, StageKind::Store(_)))
}

/// The extents of the loops `vars` of `k`.
fn extents(k: &LoopKernel, vars: &[Var]) -> Vec<i64> {
    vars.iter().map(|&v| k.extents[v as usize]).collect()
}

/// `k` (one store stage) with its first `n` loops as outer loops, if its first loops have
/// extents `want`.
fn split(k: &LoopKernel, want: &[i64]) -> Option<LoopKernel> {
    let vars = &k.stages[0].vars;
    let n = want.len();
    // Outer loops of extent 1 alone would not be split across threads, where the stage was.
    let wide = want.iter().any(|&e| e > 1);
    if !single(k) || !wide || vars.len() < n || extents(k, &vars[..n]) != want {
        return None;
    }
    let mut k = k.clone();
    k.outer = k.stages[0].vars.drain(..n).collect();
    Some(k)
}

/// True if every load of `k` that varies in the innermost loop of a stage needing it steps
/// through memory one element at a time. A kernel striding through memory (a column sum, a
/// transposed read) relies on the next iterations of its outer loop finding the cache lines it
/// loaded still in cache, and a longer body evicts them: joining an LSTM's 28 per-step column
/// sums of bias gradients made their kernel eight times slower.
fn unit_stride(k: &LoopKernel) -> bool {
    (0..k.stages.len()).all(|s| {
        let Some(&v) = k.stages[s].vars.last() else {
            return true;
        };
        k.needed(s).iter().all(|&e| match &k.exprs[e as usize].0 {
            Expr::Load { offset, .. } => matches!(offset.stride_of(v), Some(0 | 1)),
            _ => true,
        })
    })
}

/// `b` joined into `a` as the module docs allow, or `None`.
fn join(a: &LoopKernel, b: &LoopKernel) -> Option<LoopKernel> {
    if !unit_stride(a) || !unit_stride(b) {
        return None;
    }
    let (ea, eb) = (extents(a, &a.outer), extents(b, &b.outer));
    let (a, b) = match (ea.is_empty(), eb.is_empty()) {
        (false, false) if ea == eb => (a.clone(), b.clone()),
        (false, true) => (a.clone(), split(b, &ea)?),
        (true, false) => (split(a, &eb)?, b.clone()),
        // Two single stages join only into one: their loops must be alike.
        (true, true)
            if single(a) == single(b)
                && (!single(a)
                    || extents(a, &a.stages[0].vars) == extents(b, &b.stages[0].vars)) =>
        {
            (a.clone(), b.clone())
        }
        _ => return None,
    };
    let (ka, kb) = (Kernel::Loop(a.clone()), Kernel::Loop(b.clone()));
    let written = kb.writes();
    if ka
        .reads()
        .iter()
        .chain(&ka.writes())
        .any(|x| written.contains(x))
    {
        return None;
    }
    // `b`'s first stage runs as part of `a`'s last when both store over loops alike.
    let (last, first) = (a.stages.last()?, b.stages.first()?);
    let fuse = matches!(last.kind, StageKind::Store(_))
        && matches!(first.kind, StageKind::Store(_))
        && extents(&a, &last.vars) == extents(&b, &first.vars);
    if single(&a) && single(&b) && !fuse {
        return None;
    }
    // Where each of `b`'s loops goes: onto `a`'s outer loops, onto `a`'s last stage's loops
    // if the stages fuse, else a loop of its own.
    let mut joined = a.clone();
    let mut var_of: HashMap<Var, Var> = b.outer.iter().copied().zip(a.outer.clone()).collect();
    if fuse {
        var_of.extend(first.vars.iter().copied().zip(last.vars.clone()));
    }
    for (v, &e) in b.extents.iter().enumerate() {
        var_of.entry(v as Var).or_insert_with(|| {
            joined.extents.push(e);
            (joined.extents.len() - 1) as Var
        });
    }
    let stage_base = a.stages.len() - usize::from(fuse);
    // What `a` stores: buffer -> (stage, offset, value).
    let mut stored: HashMap<BufferId, (usize, Index, ExprId)> = HashMap::new();
    for (s, stage) in a.stages.iter().enumerate() {
        if let StageKind::Store(stores) = &stage.kind {
            for st in stores {
                stored.insert(st.buffer, (s, st.offset.clone(), st.value));
            }
        }
    }
    // The renamed loops of each of `b`'s stages, to match reads of `a`'s results.
    let b_stage_vars: Vec<Vec<Var>> = b
        .stages
        .iter()
        .map(|s| s.vars.iter().map(|v| var_of[v]).collect())
        .collect();
    let mut id_of: Vec<ExprId> = Vec::with_capacity(b.exprs.len());
    for (e, dtype) in &b.exprs {
        let e = map_expr(e, &|v| var_of[&v], &|x| id_of[x as usize], &|s| {
            s + stage_base as u32
        });
        if let Expr::Load {
            buffer,
            offset,
            guards,
        } = &e
            && let Some((s, at, value)) = stored.get(buffer)
        {
            if !guards.is_empty() || offset.has_data() {
                return None;
            }
            if offset == at {
                id_of.push(*value);
                continue;
            }
            let vars = &a.stages[*s].vars;
            let same_stage = b_stage_vars.iter().any(|w| {
                extents(&joined, w) == extents(&a, vars) && {
                    let rename = |v: Var| vars.iter().position(|&x| x == v).map_or(v, |i| w[i]);
                    at.rename(&rename, &|x| x) == *offset
                }
            });
            if !same_stage {
                return None;
            }
        }
        // An expression `a` computes already is that expression (a kernel loads a buffer
        // it writes only after the write, so equal loads read equal values).
        let e = (e, *dtype);
        let id = match joined.exprs.iter().position(|x| same(x, &e)) {
            Some(i) => i,
            None => {
                joined.exprs.push(e);
                joined.exprs.len() - 1
            }
        };
        id_of.push(id as ExprId);
    }
    for (i, stage) in b.stages.iter().enumerate() {
        let kind = match &stage.kind {
            StageKind::Reduce { op, value } => StageKind::Reduce {
                op: *op,
                value: id_of[*value as usize],
            },
            StageKind::Store(stores) => StageKind::Store(
                stores
                    .iter()
                    .map(|st| super::Store {
                        buffer: st.buffer,
                        offset: st.offset.rename(&|v| var_of[&v], &|x| id_of[x as usize]),
                        value: id_of[st.value as usize],
                    })
                    .collect(),
            ),
        };
        match (i, fuse, kind, &mut joined.stages.last_mut()?.kind) {
            (0, true, StageKind::Store(mine), StageKind::Store(theirs)) => theirs.extend(mine),
            (_, _, kind, _) => joined.stages.push(Stage {
                vars: b_stage_vars[i].clone(),
                kind,
            }),
        }
    }
    Some(joined)
}

/// True if two expressions compute the same value: equal, constants bit for bit.
fn same(x: &(Expr, DType), y: &(Expr, DType)) -> bool {
    match (&x.0, &y.0) {
        (Expr::Const(a), Expr::Const(b)) => a.to_bits() == b.to_bits() && x.1 == y.1,
        _ => x == y,
    }
}

/// `e` with its loop variables renamed by `var`, its operands by `id` and the stages whose
/// results it reads by `stage`.
pub(super) fn map_expr(
    e: &Expr,
    var: &dyn Fn(Var) -> Var,
    id: &dyn Fn(ExprId) -> ExprId,
    stage: &dyn Fn(u32) -> u32,
) -> Expr {
    let index = |i: &Index| i.rename(var, id);
    let cond = |c: &Cond| match c {
        Cond::Range { index: i, lo, hi } => Cond::Range {
            index: index(i),
            lo: *lo,
            hi: *hi,
        },
        Cond::Multiple { index: i, of } => Cond::Multiple {
            index: index(i),
            of: *of,
        },
    };
    match e {
        Expr::Load {
            buffer,
            offset,
            guards,
        } => Expr::Load {
            buffer: *buffer,
            offset: index(offset),
            guards: guards.iter().map(cond).collect(),
        },
        Expr::Const(c) => Expr::Const(*c),
        Expr::Index(i) => Expr::Index(index(i)),
        Expr::Test(cs) => Expr::Test(cs.iter().map(cond).collect()),
        Expr::Random {
            stream,
            seed,
            index: i,
        } => Expr::Random {
            stream: *stream,
            seed: id(*seed),
            index: index(i),
        },
        Expr::Apply { op, args } => Expr::Apply {
            op: op.clone(),
            args: args.iter().map(|&a| id(a)).collect(),
        },
        Expr::Reduced(s) => Expr::Reduced(stage(*s)),
    }
}

/// Drops every store of a temporary that no kernel loads and no output or update names (a
/// value joining made a kernel use directly), the store stages left empty, the expressions
/// nothing needs any more, and the buffers.
fn remove_dead_stores(p: &mut Program) {
    let mut read: HashSet<BufferId> = p.kernels.iter().flat_map(Kernel::reads).collect();
    read.extend(p.outputs.iter().map(|&(_, b)| b));
    read.extend(p.updates.iter().flat_map(|&(_, s, v)| [s, v]));
    // Matrix products and scatters keep their results; only stores can go.
    let kept: HashSet<BufferId> = (p.kernels.iter())
        .filter(|k| !matches!(k, Kernel::Loop(_)))
        .flat_map(Kernel::writes)
        .collect();
    let dead = |b: BufferId| {
        !read.contains(&b) && !kept.contains(&b) && p.buffers[b as usize].role == Role::Temp
    };
    let dead: Vec<bool> = (0..p.buffers.len() as BufferId).map(dead).collect();
    if !dead.contains(&true) {
        return;
    }
    for k in &mut p.kernels {
        let Kernel::Loop(l) = k else { continue };
        let before = l.stages.len();
        for s in &mut l.stages {
            if let StageKind::Store(stores) = &mut s.kind {
                stores.retain(|st| !dead[st.buffer as usize]);
            }
        }
        let empty = |s: &Stage| matches!(&s.kind, StageKind::Store(st) if st.is_empty());
        // A stage's new number: stages before it that stay.
        let kept: Vec<u32> = l
            .stages
            .iter()
            .scan(0, |n, s| {
                let at = *n;
                *n += u32::from(!empty(s));
                Some(at)
            })
            .collect();
        l.stages.retain(|s| !empty(s));
        if l.stages.len() != before {
            for (e, _) in &mut l.exprs {
                if let Expr::Reduced(s) = e {
                    *s = kept[*s as usize];
                }
            }
        }
        compact(l);
    }
    let mut new_id = vec![0; dead.len()];
    let mut n = 0;
    for (b, &d) in dead.iter().enumerate() {
        new_id[b] = n;
        n += BufferId::from(!d);
    }
    super::map_buffers(p, &|b| new_id[b as usize]);
    let mut b = 0;
    p.buffers.retain(|_| {
        b += 1;
        !dead[b - 1]
    });
}

/// Removes the expressions of `k` that no stage needs, renumbering the others.
fn compact(k: &mut LoopKernel) {
    let mut live = vec![false; k.exprs.len()];
    for s in 0..k.stages.len() {
        for e in k.needed(s) {
            live[e as usize] = true;
        }
    }
    if !live.contains(&false) {
        return;
    }
    let mut new_id = vec![0; live.len()];
    let mut exprs = Vec::with_capacity(live.len());
    for (i, (e, dtype)) in k.exprs.iter().enumerate() {
        if live[i] {
            new_id[i] = exprs.len() as ExprId;
            exprs.push((map_expr(e, &|v| v, &|x| new_id[x as usize], &|s| s), *dtype));
        }
    }
    k.exprs = exprs;
    for s in &mut k.stages {
        match &mut s.kind {
            StageKind::Reduce { value, .. } => *value = new_id[*value as usize],
            StageKind::Store(stores) => {
                for st in stores {
                    st.value = new_id[st.value as usize];
                    st.offset = st.offset.rename(&|v| v, &|x| new_id[x as usize]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
