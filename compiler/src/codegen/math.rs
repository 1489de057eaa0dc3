//! Elementwise math emitted inline as Cranelift IR: `exp`, `log`, `tanh`, `sigmoid` as
//! polynomial and rational approximations, and NaN-propagating `min` and `max`.
//!
//! Every function takes a value of type `F32`, `F32X4`, `F64` or `F64X2` and returns one of the
//! same type, emitting straight-line code (no blocks, branches or calls) at the builder's
//! current position, so it can sit inside a vectorized loop body. Scalars are computed in lane 0
//! of the 128-bit vector form by the same instructions, so a scalar tail loop and a vector body
//! agree bit for bit. The constants are `vconst`s: Cranelift's optimizer hoists them out of the
//! innermost loop.
//!
//! Errors are within a few ulp of the correctly rounded result (7 at most) (each function's doc gives its
//! bound, checked at every f32 input and sampled f64 ones; docs/math.md has the table and the
//! commands), and the special values (zeros, infinities, NaN, subnormals, overflow and
//! underflow) are exactly those of Rust's `exp`, `ln`, `tanh` and of `1 / (1 + e^-x)` computed
//! exactly. NaN results are some NaN (payload unspecified). Results depend on
//! [`MathTarget::fma`] (fused steps round once), not on the vector width. They assume the
//! default floating-point environment (no flush-to-zero).

mod emit;
mod exp_log;
mod tanh;
#[cfg(test)]
mod tests;

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2};
use cranelift_codegen::ir::{InstBuilder, Type, Value};
use cranelift_codegen::isa::TargetIsa;
use cranelift_frontend::FunctionBuilder;

use emit::Emit;

/// What the target supports (from cranelift-native's flags).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MathTarget {
    /// Whether `fma` on `F32X4`/`F64X2` is one instruction (x86-64: AVX and FMA). Without it
    /// the approximations use a multiply and an add, never Cranelift's per-lane `fma` libcall.
    pub fma: bool,
}

impl MathTarget {
    /// What `isa` supports.
    pub(crate) fn of(isa: &dyn TargetIsa) -> MathTarget {
        MathTarget {
            fma: isa.has_native_fma(),
        }
    }
}

/// Emits `e^x`: within 1.17 ulp of the correctly rounded result for f32 (0.9 with FMA), 2 ulp
/// of `f64::exp` for f64. NaN gives NaN, `e^inf = inf`, `e^-inf = +0`; results overflow to `inf` above ~88.72
/// (f32) / ~709.78 (f64) and underflow gradually through the subnormals to `+0`.
pub(crate) fn exp(b: &mut FunctionBuilder, t: MathTarget, x: Value) -> Value {
    lanewise(b, t, x, exp_log::exp)
}

/// Emits `e^x` for `x` known to be `<= 0` or NaN, bit for bit as [`exp`] computes it, in fewer
/// instructions (no upper clamp, one integer power of two).
pub(crate) fn exp_nonpositive(b: &mut FunctionBuilder, t: MathTarget, x: Value) -> Value {
    lanewise(b, t, x, exp_log::exp_nonpositive)
}

/// Emits `ln x`: within 0.85 ulp of the correctly rounded result for f32, 2 ulp of `f64::ln`
/// for f64. `ln(+-0) = -inf`, `ln x = NaN` for `x < 0` and NaN, `ln inf = inf`; subnormal `x`
/// are as accurate as normal ones.
pub(crate) fn log(b: &mut FunctionBuilder, t: MathTarget, x: Value) -> Value {
    lanewise(b, t, x, exp_log::log)
}

/// Emits `tanh x`: within 6.57 ulp of the correctly rounded result for f32 (a rational
/// function, fast), 4 ulp of `f64::tanh` for f64. Odd bit for bit (`tanh(-0) = -0`),
/// `tanh x = x` for tiny `x`, in `[-1, 1]`, `tanh(+-inf) = +-1`, NaN gives NaN.
pub(crate) fn tanh(b: &mut FunctionBuilder, t: MathTarget, x: Value) -> Value {
    lanewise(b, t, x, tanh::tanh)
}

/// Emits `1 / (1 + e^-x)`: within 2.41 ulp of the correctly rounded result for f32, 3 ulp of
/// the formula in f64 arithmetic for f64. In `[0, 1]` and never NaN for a non-NaN `x`;
/// `sigmoid(-inf) = 0`, `sigmoid(inf) = 1`; accurate also where the result is tiny or
/// subnormal (`x` below about -87 for f32), where the literal formula gives 0.
pub(crate) fn sigmoid(b: &mut FunctionBuilder, t: MathTarget, x: Value) -> Value {
    lanewise(b, t, x, tanh::sigmoid)
}

/// Emits the minimum of `x` and `y`, as the reference interpreter defines it (IEEE 754-2019
/// `minimum`): NaN if either is NaN, and `-0 < +0`, so `min(+0, -0) = min(-0, +0) = -0`.
/// Three instructions on x86-64 (`minps` both ways, `orps`). Panics unless `x` and `y` have one
/// type, `F32`, `F32X4`, `F64` or `F64X2` (as do all the functions here).
pub(crate) fn min(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    binary(b, x, y, |e, x, y| {
        // The two orders differ only on NaN (one is the NaN) and on zeros of both signs (one
        // is -0); or-ing them keeps a NaN's all-ones exponent and -0's sign.
        let xy = e.lesser(x, y);
        let yx = e.lesser(y, x);
        e.or(xy, yx)
    })
}

/// Emits the maximum of `x` and `y`: NaN if either is NaN (all bits set), and otherwise the
/// larger, with `-0 < +0`, exactly as the reference interpreter (IEEE 754-2019 `maximum`).
/// The two orders of `maxps` differ only on NaN and on zeros of both signs; and-ing them keeps
/// +0's clear sign, and or-ing in the unordered mask makes any NaN all ones. Five instructions
/// on x86-64; the exactness is worth the two more than a plain `maxps` and NaN fix-up.
pub(crate) fn max(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    binary(b, x, y, |e, x, y| {
        let xy = e.greater(x, y);
        let yx = e.greater(y, x);
        let m = e.and(xy, yx);
        let nan = e.cmp(FloatCC::Unordered, x, y);
        e.or(m, nan)
    })
}

/// The parts of a running maximum over `F32X4` vectors that a reduction loop keeps instead of
/// applying [`max`] to each vector: three instructions a vector instead of five. The exact
/// maximum comes out of them at the end ([`MaxParts::exact`]).
///
/// Each lane keeps, over the values it has seen:
/// - `loose`, a `maxps` maximum: the maximum when no NaN was seen, but either zero on a tie of
///   `+0` and `-0`;
/// - `low_bits`, the unsigned minimum of their bits, zero exactly when `+0` was seen;
/// - `nan`, all ones once a NaN was seen.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaxParts {
    /// The `maxps` maximum (one per accumulator of the loop).
    pub loose: Value,
    /// The unsigned minimum of the values' bits, as an `I32X4`.
    pub low_bits: Value,
    /// All ones in the lanes that saw a NaN, as an `I32X4`.
    pub nan: Value,
}

impl MaxParts {
    /// The parts of the maximum of no values: `-inf`, all bits set, no NaN.
    pub(crate) fn empty(b: &mut FunctionBuilder) -> MaxParts {
        let mut e = Emit::new(b, MathTarget { fma: false }, F32X4);
        let loose = e.constant(f32::NEG_INFINITY, f64::NEG_INFINITY);
        let low_bits = e.int(-1);
        let nan = e.int(0);
        MaxParts {
            loose,
            low_bits,
            nan,
        }
    }

    /// `loose` after seeing `x`: one `maxps`, which keeps `loose` when `x` is NaN or ties it.
    pub(crate) fn loose_step(b: &mut FunctionBuilder, loose: Value, x: Value) -> Value {
        Emit::new(b, MathTarget { fma: false }, F32X4).greater(x, loose)
    }

    /// `low_bits` and `nan` after seeing the vectors `xs`: one `pminud` a vector, and an
    /// `unordps` and an `orps` for each two (a lane of the pair's test is set if either is NaN).
    pub(crate) fn witness_step(
        b: &mut FunctionBuilder,
        low_bits: Value,
        nan: Value,
        xs: &[Value],
    ) -> (Value, Value) {
        let mut e = Emit::new(b, MathTarget { fma: false }, F32X4);
        let bits: Vec<Value> = xs.iter().map(|&x| e.as_int(x)).collect();
        let low = super::fold_pairwise(&bits, |a, b| e.umin(a, b));
        let unordered: Vec<Value> = (xs.chunks(2))
            .map(|p| {
                let m = e.cmp(FloatCC::Unordered, p[0], *p.last().expect("a chunk"));
                e.as_int(m)
            })
            .collect();
        let seen = super::fold_pairwise(&unordered, |a, b| e.or(a, b));
        (e.umin(low_bits, low), e.or(nan, seen))
    }

    /// Each lane's exact maximum ([`max`] of the values it saw): NaN (all ones) if it saw one,
    /// `+0` for a zero maximum if it saw `+0`, `-0` for one if not, else `loose`.
    pub(crate) fn exact(self, b: &mut FunctionBuilder) -> Value {
        let mut e = Emit::new(b, MathTarget { fma: false }, F32X4);
        let zero = e.splat(0.0);
        let is_zero = e.cmp(FloatCC::Equal, self.loose, zero);
        let no_bits = e.int(0);
        let saw_plus_zero = e.int_eq(self.low_bits, no_bits);
        let sign = e.sign_mask();
        let signed_zero = e.and_not(sign, saw_plus_zero);
        let m = e.select(is_zero, signed_zero, self.loose);
        let nan = e.as_float(self.nan);
        e.or(m, nan)
    }
}

/// The 128-bit vector type that computes values of type `ty`.
fn vector_of(ty: Type) -> Type {
    match ty {
        F32X4 | F64X2 => ty,
        F32 => F32X4,
        F64 => F64X2,
        _ => panic!("math on {ty}: expected f32, f64, f32x4 or f64x2"),
    }
}

/// `x` as a vector: a scalar goes in lane 0.
fn widen(b: &mut FunctionBuilder, x: Value) -> Value {
    let ty = b.func.dfg.value_type(x);
    if ty.is_vector() {
        x
    } else {
        b.ins().scalar_to_vector(vector_of(ty), x)
    }
}

/// The vector `v` as a value of type `ty`: lane 0 for a scalar.
fn narrow(b: &mut FunctionBuilder, ty: Type, v: Value) -> Value {
    if ty.is_vector() {
        v
    } else {
        b.ins().extractlane(v, 0)
    }
}

/// Applies `f` to `x` as a vector.
fn lanewise(
    b: &mut FunctionBuilder,
    t: MathTarget,
    x: Value,
    f: fn(&mut Emit, Value) -> Value,
) -> Value {
    let ty = b.func.dfg.value_type(x);
    let v = widen(b, x);
    let y = f(&mut Emit::new(b, t, vector_of(ty)), v);
    narrow(b, ty, y)
}

/// Applies `f` to `x` and `y`, of one type, as vectors.
fn binary(
    b: &mut FunctionBuilder,
    x: Value,
    y: Value,
    f: fn(&mut Emit, Value, Value) -> Value,
) -> Value {
    let ty = b.func.dfg.value_type(x);
    assert_eq!(ty, b.func.dfg.value_type(y), "min/max of two types");
    let (x, y) = (widen(b, x), widen(b, y));
    // min and max use no fused operation, so the target does not matter.
    let r = f(
        &mut Emit::new(b, MathTarget { fma: false }, vector_of(ty)),
        x,
        y,
    );
    narrow(b, ty, r)
}
