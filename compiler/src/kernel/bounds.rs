//! The proof that a program's kernels stay inside their buffers.
//!
//! Shapes are static, so every memory access of a kernel is an index expression over loop
//! variables with known extents, and its range can be bounded before anything runs. [`check`]
//! bounds each access and refuses the program if any may fall outside its buffer:
//!
//! - a store's offset must lie in its buffer wherever its stage runs;
//! - a guarded load reads its offset where its guards hold and element 0 elsewhere, so the
//!   offset must lie in the buffer where the guards hold, and the buffer must have an element;
//! - a matrix product's operands must lie in their buffers at the four corners of every batch,
//!   its result must fill its buffer;
//! - a scatter's operands must have the shapes its result and axis imply.
//!
//! The bound for a guarded load substitutes each range guard: an offset `s * g + rest`, where
//! `g` is the index a guard keeps in `lo..hi`, lies in `s * (lo..hi) + range(rest)`. Guards
//! first add what they imply (a guard on `x / d` bounds `x`, one on `m * h` bounds `h`) and
//! narrow the loop variables' ranges together (a guard on `k v + rest` bounds `v` by the range
//! of `rest`). Interval arithmetic over-approximates, so a program that passes is in bounds; a
//! program that fails may still be in bounds, but no lowering the compiler does produces one
//! in the random programs the tests try.
//!
//! This is the kernel IR's contract with code generation: the generated code reads only what
//! the IR reads (plus, for vector loads, the arena's slack, `memory::SLACK`), so checking the
//! IR proves the machine code in bounds. Executables check every program they compile.

use super::{
    Atom, BufferId, Cond, Expr, ExprId, Index, Kernel, LoopKernel, Matrix, Program, StageKind,
};
use crate::types::numel;
use std::fmt;

/// A memory access that may fall outside its buffer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kernel {kernel} {access} buffer {buffer}: {reason} (a compiler bug; please report it)")]
pub struct BoundsError {
    /// The kernel's number in its program.
    pub kernel: usize,
    /// What the access is: `reads` or `writes`.
    pub access: Access,
    /// The buffer.
    pub buffer: BufferId,
    /// Why it may fall outside, in words.
    pub reason: String,
}

/// The direction of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::Read => "reads",
            Access::Write => "writes",
        })
    }
}

/// Checks that every access of every kernel of `p` lies inside its buffer.
pub fn check(p: &Program) -> Result<(), BoundsError> {
    for (i, k) in p.kernels.iter().enumerate() {
        let fail = |access, buffer, reason: String| BoundsError {
            kernel: i,
            access,
            buffer,
            reason,
        };
        match k {
            Kernel::Loop(l) => check_loop(p, l).map_err(|(a, b, r)| fail(a, b, r))?,
            Kernel::Dot(d) => {
                let batch = |m: &Matrix| (d.batch.iter().copied()).zip(m.batch_strides.clone());
                // An empty product reads nothing (and an empty sum is zero).
                let reads = numel(&d.batch) * d.m * d.k * d.n > 0;
                let operands = [(&d.a, d.m, d.k), (&d.b, d.k, d.n)];
                for (m, rows, cols) in operands.into_iter().filter(|_| reads) {
                    let axes = batch(m).chain([(rows, m.row_stride), (cols, m.col_stride)]);
                    let axes: Vec<_> = axes.collect();
                    within(p, m.buffer, strided_range(m.offset, &axes))
                        .map_err(|r| fail(Access::Read, m.buffer, r))?;
                }
                let out = numel(&d.batch) * d.m * d.n;
                let have = p.buffers[d.out as usize].ty.numel();
                if out != have {
                    let reason = format!("the product has {out} elements, the buffer {have}");
                    return Err(fail(Access::Write, d.out, reason));
                }
            }
            Kernel::Scatter(s) => {
                let ty = |b: BufferId| &p.buffers[b as usize].ty;
                let (out, upd) = (&ty(s.out).shape, &ty(s.updates).shape);
                // The updates are shaped `out[..axis] ++ indices ++ out[axis + 1..]`.
                let fits = s.axis < out.len() && {
                    let (before, after) = (&out[..s.axis], &out[s.axis + 1..]);
                    let implied = before.iter().chain(&ty(s.indices).shape).chain(after);
                    implied.eq(upd.iter())
                };
                if !fits {
                    let reason = format!(
                        "indices {} and updates {} do not scatter into {} along axis {}",
                        ty(s.indices),
                        ty(s.updates),
                        ty(s.out),
                        s.axis
                    );
                    return Err(fail(Access::Write, s.out, reason));
                }
            }
            Kernel::AllReduce(a) => {
                let ty = |b: BufferId| &p.buffers[b as usize].ty;
                for &(i, o) in &a.pairs {
                    if ty(i) != ty(o) || ty(i).dtype != ty(a.pairs[0].0).dtype {
                        let reason = format!("the sum of {} cannot be {}", ty(i), ty(o));
                        return Err(fail(Access::Write, o, reason));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The failing access of a loop kernel: direction, buffer, reason.
type Failure = (Access, BufferId, String);

fn check_loop(p: &Program, k: &LoopKernel) -> Result<(), Failure> {
    let extents = &k.extents[..];
    for stage in &k.stages {
        let vars = k.outer.iter().chain(&stage.vars);
        if vars.clone().any(|&v| extents[v as usize] <= 0) {
            continue; // The stage never runs.
        }
        let roots: Vec<ExprId> = match &stage.kind {
            StageKind::Reduce { value, .. } => vec![*value],
            StageKind::Store(stores) => {
                for s in stores {
                    within(p, s.buffer, s.offset.range(extents))
                        .map_err(|r| (Access::Write, s.buffer, r))?;
                }
                stores.iter().map(|s| s.value).collect()
            }
        };
        for e in reachable(k, &roots) {
            if let Expr::Load {
                buffer,
                offset,
                guards,
            } = &k.exprs[e as usize].0
            {
                let (lo, hi) = guarded_range(offset, guards, extents);
                let range = if guards.is_empty() {
                    (lo, hi)
                } else {
                    (lo.min(0), hi.max(0))
                };
                within(p, *buffer, range).map_err(|r| (Access::Read, *buffer, r))?;
            }
        }
    }
    Ok(())
}

/// Ok if element offsets `lo..=hi` lie inside `buffer`.
fn within(p: &Program, buffer: BufferId, (lo, hi): (i64, i64)) -> Result<(), String> {
    let b = &p.buffers[buffer as usize];
    let n = b.ty.numel() as i64;
    if lo >= 0 && hi < n {
        Ok(())
    } else {
        Err(format!(
            "offsets {lo}..={hi} may fall outside its {n} elements ({})",
            b.ty
        ))
    }
}

/// The smallest and largest of `offset + sum(i * stride)` over `i` in `0..extent` per axis,
/// every extent at least 1.
fn strided_range(offset: i64, axes: &[(usize, i64)]) -> (i64, i64) {
    let (mut lo, mut hi) = (offset, offset);
    for &(extent, stride) in axes {
        let span = (extent as i64 - 1) * stride;
        lo += span.min(0);
        hi += span.max(0);
    }
    (lo, hi)
}

/// Bounds of `offset` over the points where every range guard holds (other guards only
/// narrow the points further, so leaving them out keeps the bound sound).
fn guarded_range(offset: &Index, guards: &[Cond], extents: &[i64]) -> (i64, i64) {
    // Each guarded index without its constant, `c + g` in `lo..hi` becoming `g` in
    // `lo - c..=hi - 1 - c`, and guards on the same `g` intersected.
    let mut ranges: Vec<(Index, i64, i64)> = vec![];
    for c in guards {
        let Cond::Range { index, lo, hi } = c else {
            continue;
        };
        let g = index.offset(-index.constant);
        let (lo, hi) = (lo - index.constant, hi - 1 - index.constant);
        match ranges.iter_mut().find(|(h, ..)| *h == g) {
            Some(r) => (r.1, r.2) = (r.1.max(lo), r.2.min(hi)),
            None => ranges.push((g, lo, hi)),
        }
    }
    // What a guard implies for simpler indices, and what those imply in turn:
    // - on a quotient (`x / d` in `lo..=hi`), `x` is in `lo d..=hi d + d - 1` (a
    //   concatenation's part is chosen by such a guard);
    // - on a multiple (`m h` in `lo..=hi`, `m` the coefficients' greatest common divisor), `h`
    //   is in `lo / m..=hi / m` rounded inwards (a strided view's offset is `h` where its guard
    //   tests `m h`).
    let mut i = 0;
    while i < ranges.len() {
        let (g, lo, hi) = ranges[i].clone();
        i += 1;
        let implied = match g.terms.as_slice() {
            [(1, Atom::Div(x, d))] => Some((
                x.offset(-x.constant),
                lo * d - x.constant,
                hi * d + d - 1 - x.constant,
            )),
            terms => {
                let m = (terms.iter()).fold(0, |m, (k, _)| gcd(m, k.abs()));
                (m > 1).then(|| {
                    let h = Index {
                        terms: terms.iter().map(|(k, a)| (k / m, a.clone())).collect(),
                        constant: 0,
                    };
                    (
                        h,
                        lo.div_euclid(m) + (lo.rem_euclid(m) != 0) as i64,
                        hi.div_euclid(m),
                    )
                })
            }
        };
        let Some((h, lo, hi)) = implied else { continue };
        match ranges.iter_mut().find(|(x, ..)| *x == h) {
            Some(r) => (r.1, r.2) = (r.1.max(lo), r.2.min(hi)),
            None => ranges.push((h, lo, hi)),
        }
    }
    // Each variable's range, narrowed by the guards until nothing changes: a guard
    // `k v + rest` in `lo..=hi` keeps `k v` in `lo - max(rest)..=hi - min(rest)`.
    let mut vars: Vec<(i64, i64)> = extents.iter().map(|&e| (0, e - 1)).collect();
    for _ in 0..NARROWING_ROUNDS {
        let mut changed = false;
        for (g, lo, hi) in &ranges {
            for (k, a) in &g.terms {
                let Atom::Var(v) = a else { continue };
                let rest = g.add(&Index::var(*v).scale(-k));
                let (rlo, rhi) = bound(&rest, &[], &vars);
                let (lo, hi) = ((lo - rhi) as f64 / *k as f64, (hi - rlo) as f64 / *k as f64);
                let r = &mut vars[*v as usize];
                let narrowed = (
                    r.0.max(lo.min(hi).ceil() as i64),
                    r.1.min(lo.max(hi).floor() as i64),
                );
                changed |= narrowed != *r;
                *r = narrowed;
            }
        }
        if !changed {
            break;
        }
    }
    // Where a guard's own range misses its `lo..=hi`, the guard never holds. Guards of more
    // terms come first: `bound` subtracts guards from an offset greedily, and a guard on `v`
    // alone must not take `v` out of an offset `v + w - c` that a guard on `v + w` bounds.
    let mut ranges: Vec<_> = (ranges.iter())
        .map(|(g, lo, hi)| {
            let (own_lo, own_hi) = bound(g, &[], &vars);
            (g, (*lo).max(own_lo), (*hi).min(own_hi))
        })
        .collect();
    ranges.sort_by_key(|(g, ..)| std::cmp::Reverse(g.terms.len()));
    if (vars
        .iter()
        .map(|&(lo, hi)| (lo, hi))
        .chain(ranges.iter().map(|&(_, lo, hi)| (lo, hi))))
    .any(|(lo, hi)| lo > hi)
    {
        return (0, 0); // Only element 0 is read.
    }
    bound(offset, &ranges, &vars)
}

/// Bounds of `i` where each variable `v` lies in `vars[v]` and each guard index `g` in its
/// `lo..=hi`. An index equal to a guard index takes the guard's range; an index
/// `s * g + rest` takes `s * (lo..=hi) + bound(rest)` (the guard's terms all occur in `i`,
/// in the ratio `s`); quotients and remainders bound their dividends the same way.
fn bound(i: &Index, guards: &[(&Index, i64, i64)], vars: &[(i64, i64)]) -> (i64, i64) {
    if let Some(&(_, lo, hi)) = guards.iter().find(|(g, ..)| *g == i) {
        return (lo, hi);
    }
    let mut rest = i.clone();
    let (mut lo, mut hi) = (0, 0);
    for &(g, glo, ghi) in guards {
        let Some(s) = ratio(&rest, g) else { continue };
        rest = rest.add(&g.scale(-s));
        lo += (s * glo).min(s * ghi);
        hi += (s * glo).max(s * ghi);
    }
    let (mut rlo, mut rhi) = (rest.constant, rest.constant);
    for (k, a) in &rest.terms {
        let (alo, ahi) = match a {
            Atom::Var(v) => vars[*v as usize],
            Atom::Data { extent, .. } => (0, extent - 1),
            Atom::Div(x, d) => {
                let (xlo, xhi) = bound(x, guards, vars);
                let (qlo, qhi) = (xlo.div_euclid(*d), xhi.div_euclid(*d));
                // A guard on `x / a`, `a | d`, bounds `x / d = (x / a) / (d / a)` too.
                (guards.iter())
                    .filter_map(|&(g, glo, ghi)| match (g.constant, g.terms.as_slice()) {
                        (0, [(1, Atom::Div(y, a))]) if y == x && d % a == 0 => {
                            Some((glo.div_euclid(d / a), ghi.div_euclid(d / a)))
                        }
                        _ => None,
                    })
                    .fold((qlo, qhi), |(lo, hi), (glo, ghi)| {
                        (lo.max(glo), hi.min(ghi))
                    })
            }
            Atom::Mod(x, d) => match bound(x, guards, vars) {
                (xlo, xhi) if xlo >= 0 && xhi < *d => (xlo, xhi),
                _ => (0, d - 1),
            },
        };
        rlo += (k * alo).min(k * ahi);
        rhi += (k * alo).max(k * ahi);
    }
    (lo + rlo, hi + rhi)
}

/// Rounds of narrowing variables' ranges by guards (each round uses the last one's ranges;
/// two or three suffice for every view composition seen).
const NARROWING_ROUNDS: usize = 8;

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `s` if every term of `g` occurs in `i` with `s` times its coefficient, `s != 0`.
fn ratio(i: &Index, g: &Index) -> Option<i64> {
    let coefficient = |a: &Atom| i.terms.iter().find(|(_, b)| b == a).map(|(k, _)| *k);
    let (k, a) = g.terms.first()?;
    let r = coefficient(a)?;
    let s = (r % k == 0).then_some(r / k)?;
    (g.terms.iter())
        .all(|(k, a)| coefficient(a) == Some(s * k))
        .then_some(s)
}

/// The expressions `roots` depend on, through operands, random seeds and data-dependent
/// indices of offsets and guards.
fn reachable(k: &LoopKernel, roots: &[ExprId]) -> Vec<ExprId> {
    let mut seen = vec![false; k.exprs.len()];
    let mut stack = roots.to_vec();
    while let Some(e) = stack.pop() {
        if std::mem::replace(&mut seen[e as usize], true) {
            continue;
        }
        let mut indices = vec![];
        match &k.exprs[e as usize].0 {
            Expr::Load { offset, guards, .. } => {
                indices.push(offset);
                indices.extend(guards.iter().map(super::cond_index));
            }
            Expr::Test(conds) => indices.extend(conds.iter().map(super::cond_index)),
            Expr::Index(i) => indices.push(i),
            Expr::Random { seed, index, .. } => {
                stack.push(*seed);
                indices.push(index);
            }
            Expr::Apply { args, .. } => stack.extend(args.iter().copied()),
            Expr::Const(_) | Expr::Reduced(_) => {}
        }
        for i in indices {
            super::data_exprs(i, &mut stack);
        }
    }
    (0..k.exprs.len() as ExprId)
        .filter(|&e| seen[e as usize])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{Buffer, DotKernel, Role, Stage, Store, lower};
    use crate::testing::random_graph;
    use crate::types::{DType, Type};

    /// The value of `i` at the point `env`, or `None` if it reads data.
    fn at(i: &Index, env: &[i64]) -> Option<i64> {
        let mut v = i.constant;
        for (k, a) in &i.terms {
            v += k * match a {
                Atom::Var(x) => env[*x as usize],
                Atom::Div(x, d) => at(x, env)?.div_euclid(*d),
                Atom::Mod(x, d) => at(x, env)?.rem_euclid(*d),
                Atom::Data { .. } => return None,
            };
        }
        Some(v)
    }

    /// Every point of `0..extents[v]` for each `v`, row-major.
    fn points(extents: &[i64]) -> Vec<Vec<i64>> {
        let mut out = vec![vec![]];
        for &e in extents {
            out = (out.into_iter())
                .flat_map(|p| (0..e).map(move |x| [p.clone(), vec![x]].concat()))
                .collect();
        }
        out
    }

    /// The bound of every load of random programs contains the load's offset at every point
    /// where its guards hold: the interval reasoning is sound where it is exercised.
    #[test]
    fn guarded_bounds_contain_every_offset_read() {
        let mut checked = 0;
        for seed in 0..1500 {
            let p = lower(&random_graph(seed, 30), true);
            assert_eq!(check(&p), Ok(()), "seed {seed}");
            for k in &p.kernels {
                let Kernel::Loop(k) = k else { continue };
                if k.extents.iter().product::<i64>() > 20_000 {
                    continue;
                }
                let loads = k.exprs.iter().filter_map(|(e, _)| match e {
                    Expr::Load { offset, guards, .. } => Some((offset, guards)),
                    _ => None,
                });
                for (offset, guards) in loads {
                    let (lo, hi) = guarded_range(offset, guards, &k.extents);
                    for env in points(&k.extents) {
                        let holds = guards.iter().all(|c| match c {
                            Cond::Range { index, lo, hi } => {
                                at(index, &env).is_none_or(|i| (*lo..*hi).contains(&i))
                            }
                            Cond::Multiple { index, of } => {
                                at(index, &env).is_none_or(|i| i.rem_euclid(*of) == 0)
                            }
                        });
                        if let (true, Some(o)) = (holds, at(offset, &env)) {
                            assert!((lo..=hi).contains(&o), "seed {seed}: {offset} = {o}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "only {checked} offsets checked");
    }

    /// The value of `i` at the point `env` as generated code computes it (unsigned quotients
    /// and remainders of the 64-bit value), or `None` if it reads data.
    fn computed(i: &Index, env: &[i64]) -> Option<i64> {
        let mut v = i.constant;
        for (k, a) in &i.terms {
            v += k * match a {
                Atom::Var(x) => env[*x as usize],
                Atom::Div(x, d) => (computed(x, env)? as u64 / *d as u64) as i64,
                Atom::Mod(x, d) => (computed(x, env)? as u64 % *d as u64) as i64,
                Atom::Data { .. } => return None,
            };
        }
        Some(v)
    }

    /// Where `Index::unguarded_range` gives a range (code generation then drops a load's
    /// guards and clamp), it contains the offset as generated code computes it at every
    /// point, guards or not; and it gives one for most loads of random programs.
    #[test]
    fn unguarded_ranges_contain_every_offset_computed() {
        let (mut checked, mut loads, mut ranged) = (0, 0, 0);
        for seed in 0..1500 {
            let p = lower(&random_graph(seed, 30), true);
            for k in &p.kernels {
                let Kernel::Loop(k) = k else { continue };
                if k.extents.iter().product::<i64>() > 20_000 {
                    continue;
                }
                for (e, _) in &k.exprs {
                    let Expr::Load { offset, .. } = e else {
                        continue;
                    };
                    loads += 1;
                    let Some((lo, hi)) = offset.unguarded_range(&k.extents[..]) else {
                        continue;
                    };
                    ranged += 1;
                    for env in points(&k.extents) {
                        if let Some(o) = computed(offset, &env) {
                            assert!((lo..=hi).contains(&o), "seed {seed}: {offset} = {o}");
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 100_000, "only {checked} offsets checked");
        assert!(ranged * 2 > loads, "{ranged} of {loads} loads have a range");
    }

    /// Guards bound an offset through what they imply for simpler indices: a multiple's
    /// factor, a quotient's dividend, and the other guards' variables.
    #[test]
    fn guards_bound_offsets_through_what_they_imply() {
        let range = |index: &Index, lo, hi| Cond::Range {
            index: index.clone(),
            lo,
            hi,
        };
        // A data index `d` read at `d - 1` where `1 <= 2 d < 5`: `d` is 1 or 2.
        let d = Index {
            terms: vec![(1, Atom::Data { expr: 0, extent: 3 })],
            constant: 0,
        };
        let guard = range(&d.scale(2).offset(-1), 0, 5);
        assert_eq!(guarded_range(&d.offset(-1), &[guard], &[1]), (0, 1));
        // `x - 22` where `2 <= x / 11 < 4`, `x = 2 v0 + 2 v1 <= 42`: `x` is at least 22.
        let extents = [21, 2];
        let x = Index::var(0).scale(2).add(&Index::var(1).scale(2));
        let guard = range(&x.div(11, &extents[..]), 2, 4);
        assert_eq!(guarded_range(&x.offset(-22), &[guard], &extents), (0, 20));
        // `v0 + 2 w - 2` where `0 <= v0 < 2` and `2 <= v0 + 2 w < 4`, `w = (v1 - 2) / 2`: the
        // second guard bounds it, whichever comes first.
        let extents = [4, 5];
        let w = Index::var(1).offset(-2).div(2, &extents[..]);
        let sum = Index::var(0).add(&w.scale(2));
        let guards = [range(&Index::var(0), 0, 2), range(&sum, 2, 4)];
        assert_eq!(guarded_range(&sum.offset(-2), &guards, &extents), (0, 1));
        // `9 v0 - 9` where `0 <= 2 v0 + u - 1` and `u = 0`: `v0` is at least 1.
        let extents = [22, 2];
        let u = Index::var(1).offset(-1);
        let guards = [
            range(&u, 0, 1),
            range(&Index::var(0).scale(2).add(&u).offset(-1), 0, 41),
        ];
        let offset = Index::var(0).scale(9).offset(-9);
        assert_eq!(guarded_range(&offset, &guards, &extents).0, 0);
    }

    fn buffer(shape: &[usize]) -> Buffer {
        Buffer {
            ty: Type::new(DType::F32, shape),
            role: Role::Temp,
            node: crate::graph::NodeId::new(0),
        }
    }

    fn program(buffers: Vec<Buffer>, kernel: Kernel) -> Program {
        Program {
            name: "p".into(),
            buffers,
            kernels: vec![kernel],
            outputs: vec![],
            updates: vec![],
        }
    }

    /// `b1[v0 + shift] = b0[v0 * stride]` over `v0 < 4`, guarded by `v0 < 2` if `guarded`.
    fn copy(shift: i64, stride: i64, guarded: bool) -> Program {
        let guards = if guarded {
            vec![Cond::Range {
                index: Index::var(0),
                lo: 0,
                hi: 2,
            }]
        } else {
            vec![]
        };
        let load = Expr::Load {
            buffer: 0,
            offset: Index::var(0).scale(stride),
            guards,
        };
        let store = Store {
            buffer: 1,
            offset: Index::var(0).offset(shift),
            value: 0,
        };
        let k = LoopKernel {
            extents: vec![4],
            outer: vec![],
            stages: vec![Stage {
                vars: vec![0],
                kind: StageKind::Store(vec![store]),
            }],
            exprs: vec![(load, DType::F32)],
            parallel: None,
        };
        program(vec![buffer(&[4]), buffer(&[4])], Kernel::Loop(k))
    }

    #[test]
    fn accesses_past_a_buffer_are_refused_and_named() {
        assert_eq!(check(&copy(0, 1, false)), Ok(()));
        let e = check(&copy(1, 1, false)).unwrap_err();
        assert_eq!((e.kernel, e.access, e.buffer), (0, Access::Write, 1));
        assert_eq!(
            e.to_string(),
            "kernel 0 writes buffer 1: offsets 1..=4 may fall outside its 4 elements (f32[4]) \
             (a compiler bug; please report it)"
        );
        let e = check(&copy(0, 2, false)).unwrap_err();
        assert_eq!((e.access, e.buffer), (Access::Read, 0));
        assert!(e.to_string().contains("offsets 0..=6"), "{e}");
        // Under `v0 < 2` the strided load reads offsets 0 and 2 only.
        assert_eq!(check(&copy(0, 2, true)), Ok(()));
    }

    #[test]
    fn a_matrix_product_past_its_operand_is_refused() {
        let dot = |row_stride| {
            let m = |buffer, row_stride| Matrix {
                buffer,
                offset: 0,
                batch_strides: vec![],
                row_stride,
                col_stride: 1,
            };
            let d = DotKernel {
                a: m(0, row_stride),
                b: m(1, 2),
                out: 2,
                batch: vec![],
                m: 2,
                k: 2,
                n: 2,
                accumulate: false,
                descend: None,
            };
            let buffers = vec![buffer(&[2, 2]), buffer(&[2, 2]), buffer(&[2, 2])];
            program(buffers, Kernel::Dot(d))
        };
        assert_eq!(check(&dot(2)), Ok(()));
        let e = check(&dot(3)).unwrap_err();
        assert_eq!((e.access, e.buffer), (Access::Read, 0));
        assert!(e.to_string().contains("offsets 0..=4"), "{e}");
    }
}
