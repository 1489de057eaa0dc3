//! `tanh` and `sigmoid` on f32x4 and f64x2 lanes, both built on [`exp`].
//!
//! tanh follows the split of Cephes' `tanhf`: an odd polynomial below `SMALL` (our own minimax
//! fit, from `tools/minimax.py`), `1 - 2 / (e^(2|x|) + 1)` above, both evaluated and one
//! selected, the sign restored last.

use cranelift_codegen::ir::Value;
use cranelift_codegen::ir::condcodes::FloatCC;

use super::emit::{Coeffs, Emit};
use super::exp_log::exp;

/// Below this `|x|` tanh uses the polynomial.
const SMALL: f64 = 0.625;

/// `tanh(x) ~ x + x^3 Q(x^2)` on `|x| <= SMALL`: Q's coefficients. Relative error of the rounded
/// sets: 0.14 * 2^-24 (f32), 0.12 * 2^-53 (f64).
const TANH_Q: Coeffs = Coeffs {
    f32: &[
        -0.3333328,
        0.13331442,
        -0.053739715,
        0.020639088,
        -0.0057049873,
    ],
    f64: &[
        -0.33333333333332854,
        0.1333333333326209,
        -0.053968253931267696,
        0.021869487576094505,
        -0.008863221002629427,
        0.0035919891738015195,
        -0.0014549588778863009,
        0.0005863165398973215,
        -0.00022856421001112698,
        7.714436515378315e-05,
        -1.6072568841356422e-05,
    ],
};

/// Emits `tanh x` lane-wise: odd (`tanh(-x) = -tanh(x)` bit for bit, so `tanh(-0) = -0`),
/// `tanh x = x` for tiny `x`, `tanh(+-inf) = +-1`, NaN in gives NaN.
pub(super) fn tanh(e: &mut Emit, x: Value) -> Value {
    let a = e.abs(x);
    let sign = e.xor(x, a);

    // Near 0: a + a^3 Q(a^2), with no cancellation.
    let w = e.mul(a, a);
    let q = e.poly(w, &TANH_Q);
    let aw = e.mul(a, w);
    let small = e.mul_add(aw, q, a);

    // Elsewhere: 1 - 2 / (e^(2a) + 1); e^(2a) = inf gives exactly 1.
    let a2 = e.add(a, a);
    let big = exp(e, a2);
    let one = e.splat(1.0);
    let big = e.add(big, one);
    let two = e.splat(2.0);
    let big = e.div(two, big);
    let big = e.sub(one, big);

    let threshold = e.splat(SMALL);
    let is_small = e.cmp(FloatCC::LessThan, a, threshold);
    let y = e.select(is_small, small, big);
    e.or(y, sign)
}

/// Emits `1 / (1 + e^-x)` lane-wise: in `[0, 1]`, never NaN unless `x` is, `sigmoid(-inf) = 0`,
/// `sigmoid(inf) = 1`, and accurate where the result is tiny (`e^x / (1 + e^x)` for `x < 0`,
/// down to the subnormal range).
pub(super) fn sigmoid(e: &mut Emit, x: Value) -> Value {
    // t = e^-|x| never overflows; the result is 1 / (1 + t) for x >= 0, t / (1 + t) below.
    let sign = e.sign_mask();
    let neg_abs = e.or(x, sign);
    let t = exp(e, neg_abs);
    let one = e.splat(1.0);
    let d = e.add(t, one);
    let zero = e.splat(0.0);
    let negative = e.cmp(FloatCC::LessThan, x, zero);
    let num = e.select(negative, t, one);
    e.div(num, d)
}
