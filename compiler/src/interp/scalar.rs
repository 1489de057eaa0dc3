//! The element types as the interpreter computes with them: one trait for how each is stored,
//! one for the arithmetic of the numeric ones.

use crate::array::{Array, Data};
use crate::op::{BinaryOp, UnaryOp};

/// A Rust element type of an [`Array`]: `f32`, `f64`, `i32` or `bool`.
pub(super) trait Elem: Copy + PartialOrd {
    /// The elements of `a`. Panics if `a` holds another element type (an ill-typed operand).
    fn of(a: &Array) -> &[Self];

    /// Elements of this type as [`Data`].
    fn data(v: Vec<Self>) -> Data;
}

/// Runs `$body` with `$T` standing for the Rust type of the elements of `$dtype`, or
/// `$on_bool` for `bool` (the one step of `with_elem!` and `with_num!`).
macro_rules! dispatch {
    ($dtype:expr, $T:ident => $body:expr, bool => $on_bool:expr) => {
        match $dtype {
            $crate::types::DType::F32 => {
                type $T = f32;
                $body
            }
            $crate::types::DType::F64 => {
                type $T = f64;
                $body
            }
            $crate::types::DType::I32 => {
                type $T = i32;
                $body
            }
            $crate::types::DType::Bool => $on_bool,
        }
    };
}

/// Runs `$body` with `$T` standing for the Rust type of the elements of `$dtype` (any dtype).
macro_rules! with_elem {
    ($dtype:expr, $T:ident => $body:expr) => {
        dispatch!($dtype, $T => $body, bool => {
            type $T = bool;
            $body
        })
    };
}

/// Runs `$body` with `$T` standing for the Rust type of the elements of `$dtype`, a numeric
/// dtype; panics on `bool` (an ill-typed operand).
macro_rules! with_num {
    ($dtype:expr, $T:ident => $body:expr) => {
        dispatch!($dtype, $T => $body, bool => {
            panic!("ill-typed operand: bool where a number was expected")
        })
    };
}

macro_rules! impl_elem {
    ($t:ty, $variant:ident, $slice:ident) => {
        impl Elem for $t {
            fn of(a: &Array) -> &[$t] {
                a.$slice().unwrap_or_else(|| {
                    panic!(
                        "ill-typed operand: {} where {} was expected",
                        a.ty(),
                        stringify!($t)
                    )
                })
            }

            fn data(v: Vec<$t>) -> Data {
                Data::$variant(v)
            }
        }
    };
}

impl_elem!(f32, F32, as_f32);
impl_elem!(f64, F64, as_f64);
impl_elem!(i32, I32, as_i32);
impl_elem!(bool, Bool, as_bool);

/// A numeric element type (`f32`, `f64`, `i32`) and its arithmetic.
pub(super) trait Num: Elem {
    /// The type sums accumulate in: `f64` for the floats, `i32` (wrapping) for `i32`.
    type Acc: Num;
    /// Zero: the sum of no elements.
    const ZERO: Self;
    /// The lowest value (`-inf`, `i32::MIN`): the maximum of no elements.
    const LOWEST: Self;

    /// The value in the accumulator type (exact).
    fn widen(self) -> Self::Acc;

    /// An accumulated value rounded (or, for `i32`, kept) to this type.
    fn narrow(acc: Self::Acc) -> Self;

    /// An elementwise function of one value. Panics on a float-only op applied to `i32`.
    fn unary(op: UnaryOp, x: Self) -> Self;

    /// An elementwise function of two values. Panics on `pow` applied to `i32`.
    fn binary(op: BinaryOp, a: Self, b: Self) -> Self;
}

macro_rules! impl_float {
    ($t:ident) => {
        impl Num for $t {
            type Acc = f64;
            const ZERO: $t = 0.0;
            const LOWEST: $t = $t::NEG_INFINITY;

            fn widen(self) -> f64 {
                self as f64
            }

            fn narrow(acc: f64) -> $t {
                acc as $t
            }

            fn unary(op: UnaryOp, x: $t) -> $t {
                match op {
                    UnaryOp::Neg => -x,
                    UnaryOp::Abs => x.abs(),
                    UnaryOp::Exp => x.exp(),
                    UnaryOp::Log => x.ln(),
                    UnaryOp::Sqrt => x.sqrt(),
                    UnaryOp::Recip => 1.0 / x,
                    UnaryOp::Tanh => x.tanh(),
                }
            }

            fn binary(op: BinaryOp, a: $t, b: $t) -> $t {
                match op {
                    BinaryOp::Add => a + b,
                    BinaryOp::Sub => a - b,
                    BinaryOp::Mul => a * b,
                    BinaryOp::Div => a / b,
                    // IEEE 754-2019 maximum and minimum: NaN if either operand is NaN, and
                    // -0.0 below 0.0, so both are commutative.
                    BinaryOp::Max | BinaryOp::Min => {
                        let max = op == BinaryOp::Max;
                        let a_wins = if a == b {
                            a.is_sign_negative() != max
                        } else {
                            (a > b) == max
                        };
                        if a.is_nan() || b.is_nan() {
                            $t::NAN
                        } else if a_wins {
                            a
                        } else {
                            b
                        }
                    }
                    BinaryOp::Pow => a.powf(b),
                }
            }
        }
    };
}

impl_float!(f32);
impl_float!(f64);

impl Num for i32 {
    type Acc = i32;
    const ZERO: i32 = 0;
    const LOWEST: i32 = i32::MIN;

    fn widen(self) -> i32 {
        self
    }

    fn narrow(acc: i32) -> i32 {
        acc
    }

    fn unary(op: UnaryOp, x: i32) -> i32 {
        match op {
            UnaryOp::Neg => x.wrapping_neg(),
            UnaryOp::Abs => x.wrapping_abs(),
            _ => panic!("ill-typed operand: {} on i32", op.mnemonic()),
        }
    }

    fn binary(op: BinaryOp, a: i32, b: i32) -> i32 {
        match op {
            BinaryOp::Add => a.wrapping_add(b),
            BinaryOp::Sub => a.wrapping_sub(b),
            BinaryOp::Mul => a.wrapping_mul(b),
            BinaryOp::Div if b == 0 => 0,
            BinaryOp::Div => a.wrapping_div(b),
            BinaryOp::Max => a.max(b),
            BinaryOp::Min => a.min(b),
            BinaryOp::Pow => panic!("ill-typed operand: pow on i32"),
        }
    }
}
