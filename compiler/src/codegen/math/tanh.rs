//! `tanh` and `sigmoid` on f32x4 and f64x2 lanes, both built on exp's pieces.
//!
//! tanh is `h / (1 + h)` with `h = (e^(2|x|) - 1) / 2` computed without cancellation (exp's
//! argument reduction and the polynomial for `e^r - 1`), and the sign restored last: one path
//! for every argument, about half the instructions of evaluating a small-argument polynomial
//! and an exp form both and selecting one. For small `h` the quotient `q` is refined as
//! `h - h q` (equal to `h / (1 + h)`), where `q`'s rounding is damped by `q` itself: that keeps
//! `tanh x = x` for tiny `x` and the error near 0 at that of `h`.

use cranelift_codegen::ir::Value;
use cranelift_codegen::ir::condcodes::FloatCC;

use super::emit::Emit;
use super::exp_log::{exp_nonpositive, expm1_reduced, pow2, reduce};

/// Where `2|x|` is clamped: tanh rounds to 1 well below (at `e^20` in f32, `e^40` in f64,
/// `h / (1 + h)` rounds to 1), and `2^n` stays normal.
const CLAMP: (f32, f64) = (20.0, 40.0);

/// Below this `h` (`|x|` below `ln 2 / 2`) the result is `h - h q`, above it `q`.
const REFINE_BELOW: f64 = 0.5;

/// Emits `tanh x` lane-wise: odd (`tanh(-x) = -tanh(x)` bit for bit, so `tanh(-0) = -0`),
/// `tanh x = x` for tiny `x`, `tanh(+-inf) = +-1`, NaN in gives NaN.
pub(super) fn tanh(e: &mut Emit, x: Value) -> Value {
    let a = e.abs(x);
    let sign = e.xor(x, a);
    // y = min(2a, CLAMP), passing NaN (`lesser` returns its second operand on NaN).
    let y = e.add(a, a);
    let clamp = e.constant(CLAMP.0, CLAMP.1);
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
    // t = e^-|x| never overflows; the result is 1 / (1 + t) for x >= 0, t / (1 + t) below.
    let sign = e.sign_mask();
    let neg_abs = e.or(x, sign);
    let t = exp_nonpositive(e, neg_abs);
    let one = e.splat(1.0);
    let d = e.add(t, one);
    let zero = e.splat(0.0);
    let negative = e.cmp(FloatCC::LessThan, x, zero);
    let num = e.select(negative, t, one);
    e.div(num, d)
}
