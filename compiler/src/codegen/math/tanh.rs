//! `tanh` and `sigmoid` on f32x4 and f64x2 lanes.
//!
//! tanh on f32 lanes is a rational function: `x (P(x^2) / Q(x^2))` with `P` and `Q` of degree
//! 4, `Q` monic and `P(0) = Q(0)`, on `x^2` clamped to where tanh rounds to 1, with `Q` cleared
//! to `+0` from there on and the result clamped to `[-1, 1]`. Seven fused multiply-adds, two
//! multiplies, a division and six other instructions: about half the instructions and half
//! the latency of an exp-based form. Its error is that of evaluating it in f32, about one ulp
//! per rounding near 1 (the fit itself, rounded to f32, is within 0.97 * 2^-24).
//!
//! tanh on f64 lanes would need a rational function of much higher degree, so it is built on
//! exp's pieces: `h / (1 + h)` with `h = (e^(2|x|) - 1) / 2` computed without cancellation
//! (exp's argument reduction and the polynomial for `e^r - 1`), and the sign restored last.
//! For small `h` the quotient `q` is refined as `h - h q` (equal to `h / (1 + h)`), where `q`'s
//! rounding is damped by `q` itself: that keeps `tanh x = x` for tiny `x` and the error near 0
//! at that of `h`.

use cranelift_codegen::ir::Value;
use cranelift_codegen::ir::condcodes::FloatCC;

use super::emit::{Coeffs, Emit};
use super::exp_log::{exp_nonpositive_ratio, expm1_reduced, pow2, reduce};

/// `tanh x ~ x P(x^2) / Q(x^2)` for f32, `|x| <= 9.02`: the coefficients of `P` and `Q`,
/// a weighted minimax fit by `tools/minimax.py` scaled to make `Q` monic (relative error of
/// the rounded sets 0.97 * 2^-24). Every coefficient is positive, so neither polynomial
/// cancels, and `P(0) = Q(0)`.
const TANH_P: &[f32] = &[
    1_283_656.0,
    171_787.66,
    4_489.532,
    26.489_296,
    0.017_180_825,
];
/// See [`TANH_P`].
const TANH_Q: &[f32] = &[1_283_656.0, 599_672.8, 33_226.613, 422.1325, 1.0];

/// `x^2` (in f32) for the least f32 `x` whose tanh rounds to 1, 9.010914: where the f32 form
/// returns 1, and clamps `x^2` (the fit reaches 9.02).
const TANH_ONE: f32 = 81.196_57;

/// Where the f64 form clamps `2|x|`: tanh rounds to 1 well below (at `e^40`, `h / (1 + h)`
/// rounds to 1), and `2^n` stays normal.
const CLAMP_F64: f64 = 40.0;

/// Below this `h` (`|x|` below `ln 2 / 2`) the result is `h - h q`, above it `q`.
const REFINE_BELOW: f64 = 0.5;

/// Emits `tanh x` lane-wise: odd (`tanh(-x) = -tanh(x)` bit for bit, so `tanh(-0) = -0`),
/// `tanh x = x` for tiny `x`, in `[-1, 1]`, `tanh(+-inf) = +-1`, NaN in gives NaN.
pub(super) fn tanh(e: &mut Emit, x: Value) -> Value {
    if e.is_f64() {
        tanh_f64(e, x)
    } else {
        tanh_f32(e, x)
    }
}

/// tanh on f32 lanes (see the module's doc).
fn tanh_f32(e: &mut Emit, x: Value) -> Value {
    // s = min(x^2, TANH_ONE), passing NaN (`lesser` returns its second operand on NaN); for
    // tiny x, P and Q round to P(0) = Q(0), their quotient is 1 and the result is x.
    let x2 = e.mul(x, x);
    let one_at = e.constant(TANH_ONE, 0.0);
    let s = e.lesser(one_at, x2);
    let coeffs = |c| Coeffs { f32: c, f64: &[] };
    let p = e.poly(s, &coeffs(TANH_P));
    let q = e.poly(s, &coeffs(TANH_Q));
    // Where tanh rounds to +-1, the denominator is cleared to +0: the quotient is +inf, x
    // times it +-inf, and the clamp makes that +-1 exactly. Elsewhere the roundings can take
    // the result a little past +-1, and the clamp brings it back.
    let big = e.cmp(FloatCC::GreaterThanOrEqual, x2, one_at);
    let q = e.and_not(q, big);
    let ratio = e.div(p, q);
    let y = e.mul(x, ratio);
    let one = e.splat(1.0);
    let y = e.lesser(one, y);
    let minus_one = e.splat(-1.0);
    e.greater(minus_one, y)
}

/// tanh on f64 lanes (see the module's doc).
fn tanh_f64(e: &mut Emit, x: Value) -> Value {
    let a = e.abs(x);
    let sign = e.xor(x, a);
    // y = min(2a, CLAMP_F64), passing NaN (`lesser` returns its second operand on NaN).
    let y = e.add(a, a);
    let clamp = e.constant(0.0, CLAMP_F64);
    let y = e.lesser(clamp, y);
    // h = (e^y - 1) / 2 = 2^(n-1) (e^r - 1) + (2^(n-1) - 1/2): exact for n = 0, one rounding
    // otherwise.
    let (r, t) = reduce(e, y);
    let p = expm1_reduced(e, r);
    let half = e.splat(0.5);
    let hs = pow2(e, t, -1);
    let c = e.sub(hs, half);
    let h = e.mul_add(hs, p, c);
    let one = e.splat(1.0);
    let d = e.add(h, one);
    let q = e.div(h, d);
    let sign_mask = e.sign_mask();
    let neg_h = e.xor(h, sign_mask);
    let refined = e.mul_add(neg_h, q, h);
    let limit = e.splat(REFINE_BELOW);
    let small = e.cmp(FloatCC::LessThan, h, limit);
    let y = e.select(small, refined, q);
    e.or(y, sign)
}

/// Emits `1 / (1 + e^-x)` lane-wise: in `[0, 1]`, never NaN unless `x` is, `sigmoid(-inf) = 0`,
/// `sigmoid(inf) = 1`, and accurate where the result is tiny (`e^x / (1 + e^x)` for `x < 0`,
/// down to the subnormal range).
pub(super) fn sigmoid(e: &mut Emit, x: Value) -> Value {
    // e^-|x| = p / a with p and a exact and normal (see `exp_nonpositive_ratio`): the result
    // is a / (a + p) for x >= 0 and p / (a + p) below, one rounding in the sum and one in the
    // division, which rounds a tiny result into the subnormals once. A NaN x makes p NaN, so
    // the sum and the result.
    let sign = e.sign_mask();
    let neg_abs = e.or(x, sign);
    let (p, a) = exp_nonpositive_ratio(e, neg_abs);
    let d = e.add(a, p);
    let zero = e.splat(0.0);
    let negative = e.cmp(FloatCC::LessThan, x, zero);
    let num = e.select(negative, p, a);
    e.div(num, d)
}
