//! `exp` and `log` on f32x4 and f64x2 lanes.
//!
//! Both follow the classic shape of Cephes' `expf`/`logf` and fdlibm's `e_log.c` (argument
//! reduction by powers of two, Cody-Waite split of ln 2, a short polynomial on the reduced
//! argument), without branches or tables. The polynomial coefficients are our own weighted
//! minimax fits, derived by `tools/minimax.py` (Remez exchange in 50-digit arithmetic); its
//! comments say which form each fits and its output gives the error of each set.

use cranelift_codegen::ir::Value;
use cranelift_codegen::ir::condcodes::FloatCC;

use super::emit::{Coeffs, Emit};

/// `e^r ~ 1 + r + r^2 Q(r)` on `|r| <= 1.01 ln2 / 2`: Q's coefficients. Relative error of the
/// rounded sets: 0.08 * 2^-24 (f32, degree 6), 0.12 * 2^-53 (f64, degree 11).
const EXP_Q: Coeffs = Coeffs {
    f32: &[
        0.49999994,
        0.16666515,
        0.041668456,
        0.008369419,
        0.0013813145,
    ],
    f64: &[
        0.5000000000000012,
        0.16666666666666385,
        0.04166666666651915,
        0.008333333333507657,
        0.0013888888946919891,
        0.00019841269486170723,
        2.480148935230548e-05,
        2.7557597177196026e-06,
        2.7631687342199956e-07,
        2.4998995960191523e-08,
    ],
};

/// `log1p(f) ~ f - s (f - z Q(z))` with `s = f / (2 + f)`, `z = s^2 <= 1.01 (3 - 2 sqrt 2)^2`:
/// Q's coefficients. Relative error of the rounded sets: 0.02 * 2^-24 (f32), 0.02 * 2^-53 (f64).
const LOG_Q: Coeffs = Coeffs {
    f32: &[0.6666678, 0.39977112, 0.2988438],
    f64: &[
        0.666666666666674,
        0.3999999999937978,
        0.28571428750909256,
        0.22222197626811996,
        0.1818361698888174,
        0.15312619688796272,
        0.14811055084192534,
    ],
};

/// ln 2 with its low bits cleared, so `n * LN2_HI` is exact for every exponent `n` that exp and
/// log meet (16 significant bits for f32, 32 for f64).
const LN2_HI: (f32, f64) = (0.693_145_75, 0.693_147_180_369_123_8);
/// `ln 2 - LN2_HI`, rounded.
const LN2_LO: (f32, f64) = (1.428_606_8e-6, 1.908_214_929_270_587_7e-10);
/// `1.5 * 2^mantissa_bits + bias + 64`: adding it rounds a float to an integer `n` held in
/// the low mantissa bits (for magnitudes below `2^(mantissa_bits - 2)`), and the bits the
/// exponent field keeps when shifted there are `bias + 64 + n`, so [`pow2`] of the scaling
/// that exp of a non-positive argument uses is one shift, with no addition.
const SHIFTER: (f32, f64) = shifter(UNDERFLOW_SHIFT);
/// [`SHIFTER`] less `2 * 64`, for [`reduce_negated`]: the bits the exponent field keeps are
/// `bias - 64 - n`, those of `2^(-n - 64)`.
const SHIFTER_NEGATED: (f32, f64) = shifter(-UNDERFLOW_SHIFT);

/// `1.5 * 2^mantissa_bits + bias + offset` in each precision.
const fn shifter(offset: i64) -> (f32, f64) {
    (
        12_582_912.0 + (127 + offset) as f32,
        6_755_399_441_055_744.0 + (1023 + offset) as f64,
    )
}

/// Emits `e^x` lane-wise. Exact at the special points (`e^0 = 1`, `e^-inf = +0`, `e^inf = inf`,
/// NaN in gives NaN); overflows to `inf` where the correctly rounded result does (checked at
/// every f32), and underflows gradually (a subnormal result is rounded once, from the
/// polynomial's value).
pub(super) fn exp(e: &mut Emit, x: Value) -> Value {
    // Beyond [lo, hi] the result is 0 or inf already; clamping keeps n small. The clamp passes
    // NaN through: `greater`/`lesser` return their second operand on NaN.
    let lo = e.constant(-104.0, -746.0);
    let hi = e.constant(89.0, 710.0);
    let x = e.greater(lo, x);
    let x = e.lesser(hi, x);
    let (r, t) = reduce(e, x);
    let p = exp_reduced(e, r, 1.0);
    scale(e, p, t)
}

/// `(r, t)` with `x = n ln 2 + r`, `|r| <= 1.01 ln2 / 2`, and `t = SHIFTER + n` (n in the low
/// bits of `t`), for `|x|` below about 1100 (f32) or 2^40 (f64).
pub(super) fn reduce(e: &mut Emit, x: Value) -> (Value, Value) {
    reduce_signed(e, x, SHIFTER, 1.0)
}

/// `(r, t)` as [`reduce`] computes them but with `t = SHIFTER_NEGATED - n`, for `|x|` below
/// 1100 (f32) or 2^40 (f64). `n` and `r` are [`reduce`]'s bit for bit: rounding to nearest is
/// symmetric, and no `x` in that range puts `x log2(e)` exactly halfway between integers.
fn reduce_negated(e: &mut Emit, x: Value) -> (Value, Value) {
    reduce_signed(e, x, SHIFTER_NEGATED, -1.0)
}

/// `(r, t)` with `t = shifter + sign n` for `sign = +-1` (see [`reduce`]).
fn reduce_signed(e: &mut Emit, x: Value, shifter: (f32, f64), sign: f64) -> (Value, Value) {
    // sign n = round(sign x / ln 2), as a float and in the low bits of `t`; r = x - n ln 2 in
    // two exact steps plus a small correction.
    let shifter = e.constant(shifter.0, shifter.1);
    let log2e = e.constant(
        sign as f32 * std::f32::consts::LOG2_E,
        sign * std::f64::consts::LOG2_E,
    );
    let t = e.mul_add(x, log2e, shifter);
    let signed_n = e.sub(t, shifter);
    let hi = e.constant(sign as f32 * -LN2_HI.0, sign * -LN2_HI.1);
    let lo = e.constant(sign as f32 * -LN2_LO.0, sign * -LN2_LO.1);
    let r = e.mul_add(signed_n, hi, x);
    let r = e.mul_add(signed_n, lo, r);
    (r, t)
}

/// `e^r - 1` for a reduced `r` (see [`reduce`]): `r + r^2 Q(r)`, with no cancellation near 0.
pub(super) fn expm1_reduced(e: &mut Emit, r: Value) -> Value {
    let q = e.poly(r, &EXP_Q);
    let r2 = e.mul(r, r);
    e.mul_add(r2, q, r)
}

/// `e^r * scale` for a reduced `r` (see [`reduce`]) and a power of two `scale`:
/// `1 + r (1 + r Q(r))`, two fused steps after Q, on coefficients times `scale`. Every step's
/// result stays near `scale` times its unscaled value, so for a `scale` that keeps them normal
/// the result is exactly `scale` times the unscaled one.
fn exp_reduced(e: &mut Emit, r: Value, scale: f64) -> Value {
    let q = e.poly_times(r, &EXP_Q, scale);
    let s = e.constant(scale as f32, scale);
    let u = e.mul_add(q, r, s);
    e.mul_add(u, r, s)
}

/// `2^(n + offset)` for `t = SHIFTER + n` (see [`reduce`]), for `n + offset` in the normal
/// exponent range.
pub(super) fn pow2(e: &mut Emit, t: Value, offset: i64) -> Value {
    let m = e.mantissa_bits();
    let k = e.as_int(t);
    // Only the bits below the lane's top `m` survive the shift: add nothing if those of the
    // constant are zero (so for `offset = UNDERFLOW_SHIFT`, see SHIFTER).
    let c = e.bias() + offset - shifter_bits(e);
    let kept = (1 << (e.lane_bits() - m)) - 1;
    let biased = if c & kept == 0 {
        k
    } else {
        let c = e.int(c);
        e.iadd(k, c)
    };
    let bits = e.ishl(biased, m);
    e.as_float(bits)
}

/// How far [`exp_nonpositive`] scales up: enough to keep `2^n` normal down to the clamp, not
/// so far that `2^0` overflows.
const UNDERFLOW_SHIFT: i64 = 64;
/// `2^UNDERFLOW_SHIFT`.
const UNDERFLOW_SCALE: f64 = (1u128 << UNDERFLOW_SHIFT) as f64;

/// Emits `e^x` lane-wise for `x <= 0` or NaN, bit for bit as [`exp`] computes it, in fewer
/// instructions: no upper clamp, one integer power of two, one multiply after the polynomial.
/// The polynomial's value `p` comes out times `2^-64` (exact, see [`exp_reduced`]) and is
/// multiplied by `2^(n + 64)`, normal down to the clamp: the product `p 2^n` is rounded once,
/// as `exp`'s two factors round it once.
pub(super) fn exp_nonpositive(e: &mut Emit, x: Value) -> Value {
    let x = clamp_nonpositive(e, x);
    let (r, t) = reduce(e, x);
    let p = exp_reduced(e, r, 1.0 / UNDERFLOW_SCALE);
    let up = pow2(e, t, UNDERFLOW_SHIFT);
    e.mul(p, up)
}

/// `(p, a)` with `e^x = p / a`, both exact and normal, for `x <= 0` or NaN (then `p` is NaN):
/// `p = e^r 2^-64` (the polynomial on scaled coefficients, see [`exp_reduced`]) and
/// `a = 2^(-n - 64)` (one shift of [`reduce_negated`]'s `t`), with `x` clamped as
/// [`exp_nonpositive`] clamps it. For a caller that divides by a sum of the two, where the
/// product `p 2^n` would cost a multiply.
pub(super) fn exp_nonpositive_ratio(e: &mut Emit, x: Value) -> (Value, Value) {
    let x = clamp_nonpositive(e, x);
    let (r, t) = reduce_negated(e, x);
    let p = exp_reduced(e, r, 1.0 / UNDERFLOW_SCALE);
    let bits = e.as_int(t);
    let bits = e.ishl(bits, e.mantissa_bits());
    (p, e.as_float(bits))
}

/// `max(x, lo)` with `lo` below where `e^x` rounds to zero (-104 or -746), passing NaN: keeps
/// `n` where `2^(n + 64)` and `2^(-n - 64)` are normal.
fn clamp_nonpositive(e: &mut Emit, x: Value) -> Value {
    let lo = e.constant(-104.0, -746.0);
    e.greater(lo, x)
}

/// `p * 2^n`, where `t = SHIFTER + n` and `|n| <= 1100`, as `(p * 2^n1) * 2^n2` with
/// `n1 = floor(n / 2)`: both factors stay normal, the first product is exact, and the second
/// rounds once, so results near overflow and in the subnormal range come out right.
fn scale(e: &mut Emit, p: Value, t: Value) -> Value {
    // With bits(t) = bits(SHIFTER) + n: u = n + 2 bias > 0, h = u >> 1 = n1 + bias, and
    // u - h = n - n1 + bias; shifted into the exponent field they are 2^n1 and 2^n2.
    let m = e.mantissa_bits();
    let c = e.int(2 * e.bias() - shifter_bits(e));
    let k = e.as_int(t);
    let u = e.iadd(k, c);
    let h = e.ushr(u, 1);
    let b1 = e.ishl(h, m);
    let b2 = e.isub(u, h);
    let b2 = e.ishl(b2, m);
    let s1 = e.as_float(b1);
    let s2 = e.as_float(b2);
    let y = e.mul(p, s1);
    e.mul(y, s2)
}

/// The bits of `SHIFTER` in the lanes' precision.
fn shifter_bits(e: &Emit) -> i64 {
    if e.is_f64() {
        SHIFTER.1.to_bits() as i64
    } else {
        i64::from(SHIFTER.0.to_bits())
    }
}

/// Emits `ln x` lane-wise: `ln 0 = -inf` (either sign of zero), `ln x = NaN` for `x < 0` and for
/// NaN, `ln inf = inf`, and subnormal `x` are handled exactly like normal ones.
pub(super) fn log(e: &mut Emit, x: Value) -> Value {
    let (k, mant) = decompose(e, x);

    // ln x = k ln2 + log1p(f), log1p(f) = f - (hfsq - s (hfsq + R)) with R = z Q(z): fdlibm's
    // arrangement, adding the big terms f and k ln2_hi last.
    let one = e.splat(1.0);
    let f = e.sub(mant, one);
    let two = e.splat(2.0);
    let d = e.add(f, two);
    let s = e.div(f, d);
    let z = e.mul(s, s);
    let q = e.poly(z, &LOG_Q);
    let r = e.mul(z, q);
    let half = e.splat(0.5);
    let hf = e.mul(half, f);
    let hfsq = e.mul(hf, f);
    let hr = e.add(hfsq, r);
    let lo = e.constant(LN2_LO.0, LN2_LO.1);
    let klo = e.mul(k, lo);
    let t = e.mul_add(s, hr, klo);
    let t = e.sub(hfsq, t);
    let lp = e.sub(f, t);
    let hi = e.constant(LN2_HI.0, LN2_HI.1);
    let y = e.mul_add(k, hi, lp);

    // Special inputs: inf -> inf, +-0 -> -inf, negative or NaN -> NaN (all ones).
    let inf = e.constant(f32::INFINITY, f64::INFINITY);
    let is_inf = e.cmp(FloatCC::Equal, x, inf);
    let y = e.select(is_inf, inf, y);
    let zero = e.splat(0.0);
    let is_zero = e.cmp(FloatCC::Equal, x, zero);
    let neg_inf = e.constant(f32::NEG_INFINITY, f64::NEG_INFINITY);
    let y = e.select(is_zero, neg_inf, y);
    let bad = e.cmp(FloatCC::UnorderedOrLessThan, x, zero);
    e.or(y, bad)
}

/// `(k, mant)` with `x = mant * 2^k`, `k` an integer (as a float) and `mant` in
/// `[sqrt(1/2), sqrt(2))`, for positive finite `x`, subnormals included; other lanes get
/// values that [`log`] replaces.
fn decompose(e: &mut Emit, x: Value) -> (Value, Value) {
    let m = e.mantissa_bits();
    let min_normal = e.constant(f32::MIN_POSITIVE, f64::MIN_POSITIVE);
    let tiny = e.cmp(FloatCC::LessThan, x, min_normal);
    // 2^m brings every positive subnormal into the normal range.
    let up = e.constant(8_388_608.0, 4_503_599_627_370_496.0);
    let scaled = e.mul(x, up);
    let x = e.select(tiny, scaled, x);

    // Subtracting the bits of sqrt(1/2) moves the cut between exponents there; adding B << m
    // (B = bias + 1) keeps the difference non-negative for positive x, so a logical shift
    // extracts k + B, and the low m bits plus those of sqrt(1/2) are mant's.
    let big_b = e.bias() + 1;
    let offset = if e.is_f64() {
        std::f64::consts::FRAC_1_SQRT_2.to_bits() as i64
    } else {
        i64::from(std::f32::consts::FRAC_1_SQRT_2.to_bits())
    };
    let ix = e.as_int(x);
    let c = e.int((big_b << m) - offset);
    let u = e.iadd(ix, c);
    let mant_mask = e.int((1 << m) - 1);
    let mant = e.and(u, mant_mask);
    let c = e.int(offset);
    let mant = e.iadd(mant, c);
    let mant = e.as_float(mant);

    // k as a float: k + B, less m for scaled subnormals, less B, in SHIFTER's low bits.
    let k_b = e.ushr(u, m);
    let adjust = e.int(m);
    let tiny = e.as_int(tiny);
    let adjust = e.and(tiny, adjust);
    let k_b = e.isub(k_b, adjust);
    let c = e.int(shifter_bits(e) - big_b);
    let k = e.iadd(k_b, c);
    let k = e.as_float(k);
    let shifter = e.constant(SHIFTER.0, SHIFTER.1);
    (e.sub(k, shifter), mant)
}
