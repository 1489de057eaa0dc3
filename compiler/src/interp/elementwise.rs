//! Elementwise ops: one result element from the same position of each operand.

use super::scalar::{Elem, Num};
use crate::array::{Array, Data};
use crate::op::{BinaryOp, CmpOp, UnaryOp};
use crate::types::DType;

/// `f` applied to every element of `x`.
fn map<T: Elem, U: Elem>(x: &Array, f: impl Fn(T) -> U) -> Data {
    U::data(T::of(x).iter().map(|&v| f(v)).collect())
}

/// `f` applied to the elements of `a` and `b` at every position.
fn zip<T: Elem, U: Elem>(a: &Array, b: &Array, f: impl Fn(T, T) -> U) -> Data {
    U::data(
        T::of(a)
            .iter()
            .zip(T::of(b))
            .map(|(&x, &y)| f(x, y))
            .collect(),
    )
}

/// `op` on every element of `x`.
pub(super) fn unary(op: UnaryOp, x: &Array) -> Data {
    with_num!(x.dtype(), T => map(x, |v: T| T::unary(op, v)))
}

/// `op` on the elements of `a` and `b` at every position.
pub(super) fn binary(op: BinaryOp, a: &Array, b: &Array) -> Data {
    with_num!(a.dtype(), T => zip(a, b, |x: T, y| T::binary(op, x, y)))
}

/// `op` on the elements of `a` and `b` at every position, as `bool`s.
pub(super) fn compare(op: CmpOp, a: &Array, b: &Array) -> Data {
    with_elem!(a.dtype(), T => zip(a, b, |x: T, y| compare_one(op, x, y)))
}

/// One comparison under Rust's `PartialOrd`: IEEE for floats (every comparison with NaN is
/// false except `ne`), `false < true` for `bool`.
fn compare_one<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
    }
}

/// The element of `a` where `c` is true, else of `b`.
pub(super) fn select(c: &Array, a: &Array, b: &Array) -> Data {
    with_elem!(a.dtype(), T => {
        let picked = bool::of(c).iter().zip(T::of(a)).zip(T::of(b));
        T::data(picked.map(|((&c, &x), &y)| if c { x } else { y }).collect())
    })
}

/// Every element of `x` converted to `to` through `f64` (exact for every source type), then as
/// [`Data::from_f64`] converts: Rust `as` semantics for numbers, `x != 0` for `bool`.
pub(super) fn cast(x: &Array, to: DType) -> Data {
    Data::from_f64(to, x.to_f64_vec())
}
