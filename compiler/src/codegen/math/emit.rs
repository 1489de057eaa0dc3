//! `Emit`: lane-generic instruction helpers over one 128-bit float vector type, so each
//! approximation is written once for f32x4 and f64x2.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32X4, F64X2, I32X4, I64X2};
use cranelift_codegen::ir::{ConstantData, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::FunctionBuilder;

use super::MathTarget;

/// A polynomial's coefficients for each lane precision, lowest degree first.
pub(super) struct Coeffs {
    /// For f32 lanes.
    pub(super) f32: &'static [f32],
    /// For f64 lanes.
    pub(super) f64: &'static [f64],
}

/// Emits instructions on values of one vector type, `F32X4` or `F64X2` (the *float type*), and
/// of the integer vector of the same lane width (the *int type*) that its bits reinterpret as.
pub(super) struct Emit<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    fma: bool,
    fty: Type,
    ity: Type,
}

impl<'a, 'f> Emit<'a, 'f> {
    /// Helpers for `fty`, which must be `F32X4` or `F64X2`.
    pub(super) fn new(b: &'a mut FunctionBuilder<'f>, t: MathTarget, fty: Type) -> Self {
        let ity = match fty {
            F32X4 => I32X4,
            F64X2 => I64X2,
            _ => unreachable!("Emit on {fty}"),
        };
        Emit {
            b,
            fma: t.fma,
            fty,
            ity,
        }
    }

    /// Whether the lanes are f64.
    pub(super) fn is_f64(&self) -> bool {
        self.fty == F64X2
    }

    /// Bits in a lane's mantissa field: 23 or 52.
    pub(super) fn mantissa_bits(&self) -> i64 {
        if self.is_f64() { 52 } else { 23 }
    }

    /// Bits in a lane: 32 or 64.
    pub(super) fn lane_bits(&self) -> i64 {
        if self.is_f64() { 64 } else { 32 }
    }

    /// The exponent bias: 127 or 1023.
    pub(super) fn bias(&self) -> i64 {
        if self.is_f64() { 1023 } else { 127 }
    }

    /// A vector of `ty` with every lane holding the low bytes of `lane`.
    fn splat_bits(&mut self, ty: Type, lane: u64) -> Value {
        let bytes: Vec<u8> = if self.is_f64() {
            [lane, lane].iter().flat_map(|l| l.to_le_bytes()).collect()
        } else {
            (0..4).flat_map(|_| (lane as u32).to_le_bytes()).collect()
        };
        let handle = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        self.b.ins().vconst(ty, handle)
    }

    /// A float constant: `v32` in every f32 lane or `v64` in every f64 lane.
    pub(super) fn constant(&mut self, v32: f32, v64: f64) -> Value {
        let lane = if self.is_f64() {
            v64.to_bits()
        } else {
            u64::from(v32.to_bits())
        };
        self.splat_bits(self.fty, lane)
    }

    /// A float constant exactly representable in both precisions (like 1.0 or 0.625).
    pub(super) fn splat(&mut self, v: f64) -> Value {
        let v32 = v as f32;
        debug_assert_eq!(f64::from(v32), v, "{v} is not an f32");
        self.constant(v32, v)
    }

    /// A float-typed constant from raw lane bits: `b32` for f32 lanes, `b64` for f64 lanes.
    pub(super) fn float_bits(&mut self, b32: u32, b64: u64) -> Value {
        let lane = if self.is_f64() { b64 } else { u64::from(b32) };
        self.splat_bits(self.fty, lane)
    }

    /// The sign bit alone, float-typed.
    pub(super) fn sign_mask(&mut self) -> Value {
        self.float_bits(1 << 31, 1 << 63)
    }

    /// An integer constant in every lane of the int type (truncated to the lane width).
    pub(super) fn int(&mut self, v: i64) -> Value {
        self.splat_bits(self.ity, v as u64)
    }

    /// `a + b`.
    pub(super) fn add(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }

    /// `a - b`.
    pub(super) fn sub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }

    /// `a * b`.
    pub(super) fn mul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }

    /// `a / b`.
    pub(super) fn div(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }

    /// `a * b + c`: one fused rounding when the target has FMA, else two.
    pub(super) fn mul_add(&mut self, a: Value, b: Value, c: Value) -> Value {
        if self.fma {
            self.b.ins().fma(a, b, c)
        } else {
            let p = self.b.ins().fmul(a, b);
            self.b.ins().fadd(p, c)
        }
    }

    /// The polynomial `c[0] + c[1] x + c[2] x^2 + ...` by Horner's rule, with the f32 or f64
    /// coefficients as the lanes require; a monic one starts with an add.
    pub(super) fn poly(&mut self, x: Value, c: &Coeffs) -> Value {
        self.poly_times(x, c, 1.0)
    }

    /// `scale` times the polynomial of [`Emit::poly`], as Horner's rule on the coefficients
    /// times `scale`. For a power of two `scale` this is the polynomial's value scaled exactly,
    /// as long as no step's result leaves the normal range.
    pub(super) fn poly_times(&mut self, x: Value, c: &Coeffs, scale: f64) -> Value {
        debug_assert_eq!(
            scale.to_bits() & ((1 << 52) - 1),
            0,
            "{scale} is a power of two"
        );
        let lanes: Vec<u64> = if self.is_f64() {
            c.f64.iter().map(|v| (v * scale).to_bits()).collect()
        } else {
            let scale = scale as f32;
            c.f32
                .iter()
                .map(|v| u64::from((v * scale).to_bits()))
                .collect()
        };
        let (&top, rest) = lanes.split_last().expect("a polynomial has coefficients");
        let one = if self.is_f64() {
            1f64.to_bits()
        } else {
            u64::from(1f32.to_bits())
        };
        let mut rest = rest.iter().rev();
        // A leading coefficient of 1 makes the first step `x + c`: an add, where a multiply
        // pipe would take the fused step, with the same rounding.
        let Some(&next) = rest.next() else {
            return self.splat_bits(self.fty, top);
        };
        let c = self.splat_bits(self.fty, next);
        let mut acc = if top == one {
            self.add(x, c)
        } else {
            let top = self.splat_bits(self.fty, top);
            self.mul_add(top, x, c)
        };
        for &lane in rest {
            let c = self.splat_bits(self.fty, lane);
            acc = self.mul_add(acc, x, c);
        }
        acc
    }

    /// Bitwise and (on float or int vectors alike).
    pub(super) fn and(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }

    /// `a & !b` (one `andnps`).
    pub(super) fn and_not(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band_not(a, b)
    }

    /// Bitwise or.
    pub(super) fn or(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }

    /// Bitwise exclusive or.
    pub(super) fn xor(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bxor(a, b)
    }

    /// `|x|`.
    pub(super) fn abs(&mut self, x: Value) -> Value {
        self.b.ins().fabs(x)
    }

    /// The bits of a float vector as the int type.
    pub(super) fn as_int(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.ity, MemFlagsData::new(), x)
    }

    /// The bits of an int vector as the float type.
    pub(super) fn as_float(&mut self, x: Value) -> Value {
        self.b.ins().bitcast(self.fty, MemFlagsData::new(), x)
    }

    /// Lane-wise wrapping integer `a + b`.
    pub(super) fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().iadd(a, b)
    }

    /// Lane-wise wrapping integer `a - b`.
    pub(super) fn isub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().isub(a, b)
    }

    /// Lane-wise logical shift right.
    pub(super) fn ushr(&mut self, a: Value, bits: i64) -> Value {
        self.b.ins().ushr_imm_u(a, bits)
    }

    /// Lane-wise unsigned integer minimum.
    pub(super) fn umin(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().umin(a, b)
    }

    /// All ones in the lanes where the int vectors `a` and `b` are equal, zeros elsewhere,
    /// float-typed.
    pub(super) fn int_eq(&mut self, a: Value, b: Value) -> Value {
        let mask = self.b.ins().icmp(IntCC::Equal, a, b);
        self.as_float(mask)
    }

    /// Lane-wise shift left.
    pub(super) fn ishl(&mut self, a: Value, bits: i64) -> Value {
        self.b.ins().ishl_imm_u(a, bits)
    }

    /// All ones in the lanes where `a cc b` holds, zeros elsewhere, float-typed.
    pub(super) fn cmp(&mut self, cc: FloatCC, a: Value, b: Value) -> Value {
        let mask = self.b.ins().fcmp(cc, a, b);
        self.as_float(mask)
    }

    /// `mask ? a : b` lane-wise, for a mask from [`Emit::cmp`] (one blend instruction).
    pub(super) fn select(&mut self, mask: Value, a: Value, b: Value) -> Value {
        self.b.ins().bitselect(mask, a, b)
    }

    /// `a < b ? a : b`: `b` when either is NaN or on a tie of zeros (one `minps`).
    pub(super) fn lesser(&mut self, a: Value, b: Value) -> Value {
        let lt = self.cmp(FloatCC::LessThan, a, b);
        self.select(lt, a, b)
    }

    /// `a > b ? a : b`: `b` when either is NaN or on a tie of zeros (one `maxps`).
    pub(super) fn greater(&mut self, a: Value, b: Value) -> Value {
        let gt = self.cmp(FloatCC::LessThan, b, a);
        self.select(gt, a, b)
    }
}
