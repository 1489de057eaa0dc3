//! Index arithmetic: how a kernel's loop variables map to an element of a buffer.
//!
//! Views (reshape, permute, broadcast, slice, pad, windows) never copy: composing them gives an
//! index expression in the loop variables. Every expression is kept in an affine normal form,
//! `c + sum(k_i * atom_i)`, whose atoms are loop variables, floor divisions and remainders by
//! positive constants, and clamped data-dependent indices (gather). Division and remainder
//! simplify away whenever the ranges of the loop variables prove them exact, which is the
//! common case of reshapes between contiguous layouts.

use std::fmt;

/// A loop variable's number within its kernel.
pub type Var = u32;

/// A term of an [`Index`]: something that is not a sum.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Atom {
    /// A loop variable, in `0..extent`.
    Var(Var),
    /// `floor(a / d)`, `d > 1`, for `a >= 0`.
    Div(Box<Index>, i64),
    /// `a mod d`, `d > 1`, for `a >= 0`.
    Mod(Box<Index>, i64),
    /// An index read from data: expression number `expr` of the kernel (an `i32`), clamped into
    /// `0..extent`.
    Data {
        /// The kernel expression holding the index.
        expr: u32,
        /// The extent it is clamped to.
        extent: i64,
    },
}

/// An index expression in affine normal form: `constant + sum(coefficient * atom)`, atoms
/// sorted and distinct, no zero coefficient.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Index {
    /// Coefficient and atom of each term.
    pub terms: Vec<(i64, Atom)>,
    /// The constant term.
    pub constant: i64,
}

/// The extents of a kernel's loop variables, for range reasoning (variable `v` is in
/// `0..extents[v]`).
pub trait Ranges {
    /// The extent of loop variable `v`.
    fn extent(&self, v: Var) -> i64;
}

impl Ranges for [i64] {
    fn extent(&self, v: Var) -> i64 {
        self[v as usize]
    }
}

impl Index {
    /// The constant `c`.
    pub fn constant(c: i64) -> Index {
        Index {
            terms: vec![],
            constant: c,
        }
    }

    /// The loop variable `v`.
    pub fn var(v: Var) -> Index {
        Index::atom(Atom::Var(v))
    }

    fn atom(a: Atom) -> Index {
        Index {
            terms: vec![(1, a)],
            constant: 0,
        }
    }

    /// The value, if it does not depend on any variable.
    pub fn as_constant(&self) -> Option<i64> {
        self.terms.is_empty().then_some(self.constant)
    }

    /// `self + other`.
    pub fn add(&self, other: &Index) -> Index {
        let mut terms = self.terms.clone();
        terms.extend(other.terms.iter().cloned());
        normalize(terms, self.constant + other.constant)
    }

    /// `self + c`.
    pub fn offset(&self, c: i64) -> Index {
        Index {
            terms: self.terms.clone(),
            constant: self.constant + c,
        }
    }

    /// `self * k`.
    pub fn scale(&self, k: i64) -> Index {
        if k == 0 {
            return Index::constant(0);
        }
        Index {
            terms: self.terms.iter().map(|(c, a)| (c * k, a.clone())).collect(),
            constant: self.constant * k,
        }
    }

    /// `self` with each loop variable `v` renamed `var(v)` and each data-dependent index's
    /// expression `e` renumbered `expr(e)`; both maps must be one to one.
    pub fn rename(&self, var: &dyn Fn(Var) -> Var, expr: &dyn Fn(u32) -> u32) -> Index {
        let terms = self.terms.iter().map(|(k, a)| {
            let a = match a {
                Atom::Var(v) => Atom::Var(var(*v)),
                Atom::Div(x, d) => Atom::Div(Box::new(x.rename(var, expr)), *d),
                Atom::Mod(x, d) => Atom::Mod(Box::new(x.rename(var, expr)), *d),
                Atom::Data { expr: e, extent } => Atom::Data {
                    expr: expr(*e),
                    extent: *extent,
                },
            };
            (*k, a)
        });
        normalize(terms.collect(), self.constant)
    }

    /// The smallest and largest value over all variable values.
    pub fn range(&self, r: &(impl Ranges + ?Sized)) -> (i64, i64) {
        let (mut lo, mut hi) = (self.constant, self.constant);
        for (k, a) in &self.terms {
            let (alo, ahi) = a.range(r);
            if *k >= 0 {
                lo += k * alo;
                hi += k * ahi;
            } else {
                lo += k * ahi;
                hi += k * alo;
            }
        }
        (lo, hi)
    }

    /// The smallest and largest value over all variable values as generated code computes
    /// it, guards or not: quotients and remainders there are unsigned, equal to the floored
    /// ones only for an operand that is never negative. `None` when some operand may be.
    pub fn unguarded_range(&self, r: &(impl Ranges + ?Sized)) -> Option<(i64, i64)> {
        let operands_nonnegative = self.terms.iter().all(|(_, a)| match a {
            Atom::Div(x, _) | Atom::Mod(x, _) => {
                x.unguarded_range(r).is_some_and(|(lo, _)| lo >= 0)
            }
            Atom::Var(_) | Atom::Data { .. } => true,
        });
        operands_nonnegative.then(|| self.range(r))
    }

    /// `floor(self / d)` for `d >= 1`, simplified when the ranges prove it exact. A quotient
    /// of a quotient is one quotient, `(x / a) / d = x / (a d)`, so equal values have one form.
    pub fn div(&self, d: i64, r: &(impl Ranges + ?Sized)) -> Index {
        if d == 1 {
            return self.clone();
        }
        if let (0, [(1, Atom::Div(x, a))]) = (self.constant, self.terms.as_slice())
            && let Some(ad) = a.checked_mul(d)
        {
            return x.div(ad, r);
        }
        // self = d * q + rest, where q gathers the terms whose coefficient d divides.
        let (q, rest) = self.split(d);
        let (lo, hi) = rest.range(r);
        if lo >= 0 && hi < d {
            return q;
        }
        let (lo, hi) = self.range(r);
        if lo >= 0 && hi < d {
            return Index::constant(0);
        }
        Index::atom(Atom::Div(Box::new(self.clone()), d))
    }

    /// `self mod d` for `d >= 1`, simplified when the ranges prove it exact.
    pub fn rem(&self, d: i64, r: &(impl Ranges + ?Sized)) -> Index {
        if d == 1 {
            return Index::constant(0);
        }
        let (_, rest) = self.split(d);
        let (lo, hi) = rest.range(r);
        if lo >= 0 && hi < d {
            return rest;
        }
        Index::atom(Atom::Mod(Box::new(rest), d))
    }

    /// `(q, rest)` with `self = d * q + rest`: `q` takes the terms (and the part of the
    /// constant) that `d` divides, `rest` the others and the constant's remainder.
    fn split(&self, d: i64) -> (Index, Index) {
        let mut q = Index::constant(self.constant.div_euclid(d));
        let mut rest = Index::constant(self.constant.rem_euclid(d));
        for (k, a) in &self.terms {
            if k % d == 0 {
                q.terms.push((k / d, a.clone()));
            } else {
                rest.terms.push((*k, a.clone()));
            }
        }
        (q, rest)
    }

    /// The coefficient of loop variable `v` if the index is affine in it (no division,
    /// remainder or data index involves `v`), else `None`.
    pub fn stride_of(&self, v: Var) -> Option<i64> {
        let mut stride = 0;
        for (k, a) in &self.terms {
            match a {
                Atom::Var(w) if *w == v => stride = *k,
                Atom::Var(_) => {}
                Atom::Div(inner, _) | Atom::Mod(inner, _) if inner.uses(v) => return None,
                Atom::Div(..) | Atom::Mod(..) => {}
                Atom::Data { .. } => return None,
            }
        }
        Some(stride)
    }

    /// The index at each of `lanes` consecutive values of loop variable `v`, less its value at
    /// the first, when that difference is the same for every first value that is a multiple of
    /// `lanes` (as a vector loop's are): the index is affine in `v`, or `v` occurs only as
    /// `s*v + c` under divisions and remainders by divisors of `lanes * s` (a pooling window's
    /// `v/2` and `v%2`). `None` otherwise, and where a data-dependent index occurs.
    pub fn lane_offsets(&self, v: Var, lanes: i64) -> Option<Vec<i64>> {
        if self.has_data() {
            return None;
        }
        let mut out = vec![0; lanes as usize];
        for (k, a) in &self.terms {
            let per_lane: Box<dyn Fn(i64) -> i64> = match a {
                Atom::Var(w) if *w == v => Box::new(|j| j),
                Atom::Var(_) => continue,
                Atom::Div(inner, _) | Atom::Mod(inner, _) if !inner.uses(v) => continue,
                Atom::Div(inner, d) | Atom::Mod(inner, d) => {
                    let [(s, Atom::Var(w))] = inner.terms.as_slice() else {
                        return None;
                    };
                    // With `v` a multiple of `lanes` and `d` dividing `lanes * s`, `s*v` is a
                    // multiple of `d`: it shifts the quotient by a constant and leaves the
                    // remainder alone.
                    if *w != v || *s <= 0 || (lanes * s) % d != 0 {
                        return None;
                    }
                    let (s, c, d) = (*s, inner.constant, *d);
                    match a {
                        Atom::Div(..) => {
                            Box::new(move |j| (c + s * j).div_euclid(d) - c.div_euclid(d))
                        }
                        _ => Box::new(move |j| (c + s * j).rem_euclid(d) - c.rem_euclid(d)),
                    }
                }
                Atom::Data { .. } => unreachable!("no data index"),
            };
            for (j, o) in out.iter_mut().enumerate() {
                *o += k * per_lane(j as i64);
            }
        }
        Some(out)
    }

    /// True if loop variable `v` occurs in the index.
    pub fn uses(&self, v: Var) -> bool {
        self.terms.iter().any(|(_, a)| a.uses(v))
    }

    /// The largest loop variable that occurs, if any.
    pub fn max_var(&self) -> Option<Var> {
        self.terms.iter().filter_map(|(_, a)| a.max_var()).max()
    }

    /// True if a data-dependent index occurs.
    pub fn has_data(&self) -> bool {
        self.terms.iter().any(|(_, a)| a.has_data())
    }
}

impl Atom {
    fn range(&self, r: &(impl Ranges + ?Sized)) -> (i64, i64) {
        match self {
            Atom::Var(v) => (0, r.extent(*v) - 1),
            Atom::Div(a, d) => {
                let (lo, hi) = a.range(r);
                (lo.div_euclid(*d), hi.div_euclid(*d))
            }
            Atom::Mod(a, d) => {
                let (lo, hi) = a.range(r);
                if lo >= 0 && hi < *d {
                    (lo, hi)
                } else {
                    (0, d - 1)
                }
            }
            Atom::Data { extent, .. } => (0, extent - 1),
        }
    }

    fn uses(&self, v: Var) -> bool {
        match self {
            Atom::Var(w) => *w == v,
            Atom::Div(a, _) | Atom::Mod(a, _) => a.uses(v),
            Atom::Data { .. } => false,
        }
    }

    fn max_var(&self) -> Option<Var> {
        match self {
            Atom::Var(w) => Some(*w),
            Atom::Div(a, _) | Atom::Mod(a, _) => a.max_var(),
            Atom::Data { .. } => None,
        }
    }

    fn has_data(&self) -> bool {
        match self {
            Atom::Var(_) => false,
            Atom::Div(a, _) | Atom::Mod(a, _) => a.has_data(),
            Atom::Data { .. } => true,
        }
    }
}

/// Sorts terms, merges equal atoms, drops zero coefficients, and folds `k*d*(x/d) + k*(x%d)`
/// back into `k*x` (the identity a reshape and its inverse produce).
fn normalize(mut terms: Vec<(i64, Atom)>, mut constant: i64) -> Index {
    while let Some((i, j)) = div_mod_pair(&terms) {
        let (k, Atom::Mod(x, _)) = terms[j].clone() else {
            unreachable!("a remainder")
        };
        terms.remove(i.max(j));
        terms.remove(i.min(j));
        terms.extend(x.terms.iter().map(|(c, a)| (c * k, a.clone())));
        constant += x.constant * k;
    }
    terms.sort_by(|a, b| a.1.cmp(&b.1));
    let mut out: Vec<(i64, Atom)> = Vec::with_capacity(terms.len());
    for (k, a) in terms {
        match out.last_mut() {
            Some((k0, a0)) if *a0 == a => *k0 += k,
            _ => out.push((k, a)),
        }
    }
    out.retain(|(k, _)| *k != 0);
    Index {
        terms: out,
        constant,
    }
}

/// Positions `(i, j)` of terms `k*d*(y/d)` and `k*(y%d)` with the same `y` and `d`, where
/// `y/d` may also be written `x/(a d)` for `y = x/a` (a quotient of a quotient).
fn div_mod_pair(terms: &[(i64, Atom)]) -> Option<(usize, usize)> {
    terms.iter().enumerate().find_map(|(i, (ki, ai))| {
        let Atom::Div(x, d) = ai else { return None };
        let j = terms.iter().position(|(kj, aj)| {
            let Atom::Mod(y, e) = aj else { return false };
            let same = (y == x && e == d)
                || matches!(
                    (y.constant, y.terms.as_slice()),
                    (0, [(1, Atom::Div(inner, a))]) if inner == x && a.checked_mul(*e) == Some(*d)
                );
            same && *ki == kj * e
        })?;
        Some((i, j))
    })
}

/// Row-major flattening: `sum(index[i] * stride[i])` for a shape's strides.
pub fn flatten(index: &[Index], shape: &[usize]) -> Index {
    let strides = crate::types::strides(shape);
    index
        .iter()
        .zip(&strides)
        .fold(Index::constant(0), |acc, (i, &s)| {
            acc.add(&i.scale(s as i64))
        })
}

/// The multi-index of a row-major flat index into `shape`.
///
/// The outermost axis takes no remainder: for an element of the tensor the flat index is
/// below the element count, so its quotient is already below the axis's extent. (An index
/// outside the tensor, as a padded or concatenated view computes where its guards fail, is
/// never loaded: guarded loads read element 0 there.)
pub fn unflatten(flat: &Index, shape: &[usize], r: &(impl Ranges + ?Sized)) -> Vec<Index> {
    let strides = crate::types::strides(shape);
    shape
        .iter()
        .zip(&strides)
        .enumerate()
        .map(|(i, (&d, &s))| {
            // A zero extent means the tensor is empty: no element is ever addressed.
            if d == 0 || s == 0 {
                Index::constant(0)
            } else if i == 0 {
                flat.div(s as i64, r)
            } else {
                flat.div(s as i64, r).rem(d as i64, r)
            }
        })
        .collect()
}

impl fmt::Display for Index {
    /// `o0*10 + i0 + 3`, `(o0*10 + i0) / 7`, `(..) % 7`, `data(e4)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, a) in &self.terms {
            if !first {
                f.write_str(if *k < 0 { " - " } else { " + " })?;
            } else if *k < 0 {
                f.write_str("-")?;
            }
            first = false;
            write!(f, "{a}")?;
            if k.abs() != 1 {
                write!(f, "*{}", k.abs())?;
            }
        }
        if first {
            write!(f, "{}", self.constant)
        } else if self.constant != 0 {
            let sign = if self.constant < 0 { "-" } else { "+" };
            write!(f, " {sign} {}", self.constant.abs())
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Atom::Var(v) => write!(f, "v{v}"),
            Atom::Div(a, d) => write!(f, "({a})/{d}"),
            Atom::Mod(a, d) => write!(f, "({a})%{d}"),
            Atom::Data { expr, extent } => write!(f, "clamp(e{expr}, {extent})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reshape_round_trips_simplify_away() {
        // [4,6] -> flat -> [2,12] -> flat -> [4,6]: the indices come back unchanged.
        let extents: [i64; 2] = [4, 6];
        let r = &extents[..];
        let idx = [Index::var(0), Index::var(1)];
        let flat = flatten(&idx, &[4, 6]);
        assert_eq!(flat.to_string(), "v0*6 + v1");
        let mid = unflatten(&flat, &[2, 12], r);
        let back = unflatten(&flatten(&mid, &[2, 12]), &[4, 6], r);
        assert_eq!(back, idx.to_vec());
    }

    #[test]
    fn inexact_division_stays() {
        let extents: [i64; 1] = [10];
        let r = &extents[..];
        let v = Index::var(0);
        assert_eq!(v.div(4, r).to_string(), "(v0)/4");
        assert_eq!(v.rem(4, r).to_string(), "(v0)%4");
        assert_eq!(v.scale(4).offset(3).div(4, r), v);
        assert_eq!(v.scale(4).offset(3).rem(4, r), Index::constant(3));
        assert_eq!(v.div(16, r), Index::constant(0));
    }

    #[test]
    fn nested_quotients_and_remainders_fold_back() {
        // [27] -> [3, 3, 3] -> [27]: v/9*9 + (v/3)%3*3 + v%3 is v.
        let extents: [i64; 1] = [27];
        let r = &extents[..];
        let v = Index::var(0);
        assert_eq!(v.div(3, r).div(3, r), v.div(9, r));
        let parts = unflatten(&v, &[3, 3, 3], r);
        assert_eq!(flatten(&parts, &[3, 3, 3]), v);
    }

    #[test]
    fn the_outermost_axis_takes_no_remainder() {
        // A flat index shifted out of range (by a pad) stays affine in the outermost axis.
        let extents: [i64; 2] = [2, 64];
        let r = &extents[..];
        let flat = Index::var(0).scale(64).add(&Index::var(1)).offset(-9);
        let parts = unflatten(&flat, &[128], r);
        assert_eq!(parts, vec![flat]);
    }

    #[test]
    fn lane_offsets_follow_quotients_and_remainders() {
        let extents: [i64; 2] = [10, 28];
        let r = &extents[..];
        let v = Index::var(1);
        // A max pooling's gradient reads its 2x2 window's values at v/2 and picks by v%2.
        let window = v
            .div(2, r)
            .scale(4)
            .add(&v.rem(2, r))
            .add(&Index::var(0).scale(56));
        assert_eq!(window.lane_offsets(1, 4), Some(vec![0, 1, 4, 5]));
        assert_eq!(v.div(2, r).lane_offsets(1, 4), Some(vec![0, 0, 1, 1]));
        assert_eq!(
            v.offset(1).rem(2, r).lane_offsets(1, 4),
            Some(vec![0, -1, 0, -1])
        );
        assert_eq!(v.scale(2).lane_offsets(1, 4), Some(vec![0, 2, 4, 6]));
        assert_eq!(v.div(4, r).lane_offsets(1, 4), Some(vec![0; 4]));
        assert_eq!(window.lane_offsets(0, 4), Some(vec![0, 56, 112, 168]));
        // A divisor not dividing the lanes' span, or another variable under the division.
        assert_eq!(v.div(3, r).lane_offsets(1, 4), None);
        let mixed = v.add(&Index::var(0)).div(2, r);
        assert_eq!(mixed.lane_offsets(1, 4), None);
    }

    #[test]
    fn strides_are_read_off_affine_indices() {
        let i = Index::var(0).scale(784).add(&Index::var(1)).offset(5);
        assert_eq!(i.stride_of(1), Some(1));
        assert_eq!(i.stride_of(0), Some(784));
        assert_eq!(i.stride_of(2), Some(0));
        let extents: [i64; 2] = [10, 10];
        let d = Index::var(1).div(3, &extents[..]);
        assert_eq!(d.stride_of(1), None);
        assert_eq!(d.stride_of(0), Some(0));
        assert_eq!(i.range(&extents[..]), (5, 784 * 9 + 9 + 5));
    }
}
