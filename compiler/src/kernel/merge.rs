//! Merging a stage's loops: two nested loops that every index of the stage walks as one (an
//! image's rows and columns, read and written row after row) become one loop over both.
//!
//! A kernel's loops are its root's axes, and a reduction's stage loops are the reduced axes; a
//! 28x28 image gives inner loops of 28, of which a four-lane vector loop runs six iterations
//! and a tail of four, with a reduction's accumulators set up and folded for each. Where the
//! indices allow, the loops over `h` and `w` are one loop of 784.
//!
//! Loops `a` (outer) and `b` (inner, extent `E`) of one stage merge when every index the stage
//! computes (loads and their guards, stores, iotas, random numbers' positions) holds them only
//! as `k * (E * a + b)`: `a` and `b` with coefficients `k E` and `k`, outside any division,
//! remainder or data-dependent index (or neither). Then `a` becomes the merged loop, of extent
//! `extent(a) * E`, with coefficient `k`, and `b` disappears: the same elements, in the same
//! order. A guard testing `b` alone (a padded row) prevents the merge. A loop of extent 1
//! merges with its neighbour whatever the coefficients: it only ever takes the value 0.

use super::index::{Atom, Index};
use super::{Cond, Expr, LoopKernel, StageKind, Var};

/// Merges the loops of every stage of `k` as far as the module docs allow.
pub(super) fn merge_loops(k: &mut LoopKernel) {
    for s in 0..k.stages.len() {
        while let Some(i) = (1..k.stages[s].vars.len()).find(|&i| mergeable(k, s, i)) {
            let (a, b) = (k.stages[s].vars[i - 1], k.stages[s].vars[i]);
            let (ea, eb) = (k.extents[a as usize], k.extents[b as usize]);
            for_each_index(k, s, &mut |index| *index = merged(index, a, b, ea, eb));
            k.extents[a as usize] = ea * eb;
            k.stages[s].vars.remove(i);
        }
    }
}

/// True if loops `vars[i - 1]` and `vars[i]` of stage `s` merge: as the module docs say, or
/// because one of them has extent 1 (its value is always 0, so its coefficients do not matter).
fn mergeable(k: &mut LoopKernel, s: usize, i: usize) -> bool {
    let (a, b) = (k.stages[s].vars[i - 1], k.stages[s].vars[i]);
    let (ea, eb) = (k.extents[a as usize], k.extents[b as usize]);
    let mut ok = true;
    for_each_index(k, s, &mut |index| {
        let (ka, kb) = (coefficient(index, a), coefficient(index, b));
        let hidden = index.terms.iter().any(|(_, atom)| {
            !matches!(atom, Atom::Var(_)) && (atom_uses(atom, a) || atom_uses(atom, b))
        });
        ok &= !hidden && (ea == 1 || eb == 1 || eb.checked_mul(kb) == Some(ka));
    });
    ok
}

/// The coefficient of loop variable `v` among the terms of `index` (0 if absent).
fn coefficient(index: &Index, v: Var) -> i64 {
    index
        .terms
        .iter()
        .find_map(|(k, atom)| (*atom == Atom::Var(v)).then_some(*k))
        .unwrap_or(0)
}

/// True if `v` occurs in `atom`.
fn atom_uses(atom: &Atom, v: Var) -> bool {
    Index {
        terms: vec![(1, atom.clone())],
        constant: 0,
    }
    .uses(v)
}

/// `index` with loops `a` (extent `ea`) and `b` (extent `eb`) merged into `a`: `k eb a + k b`
/// becomes `k a`; with `eb = 1`, `b` (always 0) drops out and `a` keeps its coefficient; with
/// `ea = 1`, `a` (always 0) drops out and takes `b`'s.
fn merged(index: &Index, a: Var, b: Var, ea: i64, eb: i64) -> Index {
    let (ka, kb) = (coefficient(index, a), coefficient(index, b));
    debug_assert!(
        ea == 1 || eb == 1 || ka == eb * kb,
        "merged only where mergeable"
    );
    let k = if eb == 1 { ka } else { kb };
    let rest = Index {
        terms: index
            .terms
            .iter()
            .filter(|(_, atom)| *atom != Atom::Var(a) && *atom != Atom::Var(b))
            .cloned()
            .collect(),
        constant: index.constant,
    };
    rest.add(&Index::var(a).scale(k))
}

/// Calls `f` on every index of stage `s` of `k` that uses one of its loops: its stores'
/// offsets, and the indices of the expressions (only the stage's own expressions use its
/// loops).
fn for_each_index(k: &mut LoopKernel, s: usize, f: &mut dyn FnMut(&mut Index)) {
    let vars = k.stages[s].vars.clone();
    let mut visit = |i: &mut Index| {
        if vars.iter().any(|&v| i.uses(v)) {
            f(i);
        }
    };
    for (e, _) in &mut k.exprs {
        match e {
            Expr::Load { offset, guards, .. } => {
                visit(offset);
                guards.iter_mut().for_each(|c| visit(cond_index_mut(c)));
            }
            Expr::Index(i) | Expr::Random { index: i, .. } => visit(i),
            Expr::Test(conds) => conds.iter_mut().for_each(|c| visit(cond_index_mut(c))),
            Expr::Const(_) | Expr::Apply { .. } | Expr::Reduced(_) => {}
        }
    }
    if let StageKind::Store(stores) = &mut k.stages[s].kind {
        stores.iter_mut().for_each(|st| visit(&mut st.offset));
    }
}

/// The index a condition tests, to rewrite.
fn cond_index_mut(c: &mut Cond) -> &mut Index {
    match c {
        Cond::Range { index, .. } | Cond::Multiple { index, .. } => index,
    }
}
