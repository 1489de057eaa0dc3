//! Transcendental functions and NaN-propagating min/max for generated code.
//!
//! Placeholder until the inline polynomial versions land: `exp`, `log` and `tanh` call Rust's
//! functions once per lane, and `min`/`max` use Cranelift's IEEE 754-2019 `fmin`/`fmax`.

use cranelift_codegen::ir::{AbiParam, InstBuilder, Signature, Value, types};
use cranelift_frontend::FunctionBuilder;

/// What the target supports (from cranelift-native's flags).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MathTarget {
    /// Fused multiply-add is one instruction.
    pub fma: bool,
}

/// `e^x`.
pub(crate) fn exp(b: &mut FunctionBuilder, _t: MathTarget, x: Value) -> Value {
    per_lane(b, x, f32::exp, f64::exp)
}

/// Natural logarithm.
pub(crate) fn log(b: &mut FunctionBuilder, _t: MathTarget, x: Value) -> Value {
    per_lane(b, x, f32::ln, f64::ln)
}

/// Hyperbolic tangent.
pub(crate) fn tanh(b: &mut FunctionBuilder, _t: MathTarget, x: Value) -> Value {
    per_lane(b, x, f32::tanh, f64::tanh)
}

/// The larger of `x` and `y`; NaN if either is; `-0.0 < 0.0`.
pub(crate) fn max(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    b.ins().fmax(x, y)
}

/// The smaller of `x` and `y`; NaN if either is; `-0.0 < 0.0`.
pub(crate) fn min(b: &mut FunctionBuilder, x: Value, y: Value) -> Value {
    b.ins().fmin(x, y)
}

fn per_lane(
    b: &mut FunctionBuilder,
    x: Value,
    f32f: fn(f32) -> f32,
    f64f: fn(f64) -> f64,
) -> Value {
    let ty = b.func.dfg.value_type(x);
    let lane = ty.lane_type();
    let mut sig = Signature::new(b.func.signature.call_conv);
    sig.params.push(AbiParam::new(lane));
    sig.returns.push(AbiParam::new(lane));
    let sig = b.import_signature(sig);
    let f = if lane == types::F32 {
        f32f as *const u8
    } else {
        f64f as *const u8
    };
    let f = b.ins().iconst(types::I64, f as i64);
    let call = |b: &mut FunctionBuilder, v: Value| {
        let c = b.ins().call_indirect(sig, f, &[v]);
        b.inst_results(c)[0]
    };
    if !ty.is_vector() {
        return call(b, x);
    }
    let mut out = x;
    for i in 0..ty.lane_count() as u8 {
        let v = b.ins().extractlane(x, i);
        let r = call(b, v);
        out = b.ins().insertlane(out, r, i);
    }
    out
}
