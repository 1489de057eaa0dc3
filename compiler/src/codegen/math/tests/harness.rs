//! JIT-compiled loops applying one math function over arrays, references, and ulp measures.

use cranelift_codegen::Context;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4, F64, F64X2, I64};
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, Type, UserFuncName, Value};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, default_libcall_names};

use super::super::{MathTarget, exp, exp_nonpositive, log, max, min, sigmoid, tanh};

/// The functions under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Func {
    Exp,
    /// `exp` for inputs `<= 0` or NaN only (in no list: the other inputs are outside its
    /// domain).
    ExpNonpositive,
    Log,
    Tanh,
    Sigmoid,
    Min,
    Max,
}

impl Func {
    /// The four approximations.
    pub(super) const UNARY: [Func; 4] = [Func::Exp, Func::Log, Func::Tanh, Func::Sigmoid];
    /// Every function.
    pub(super) const ALL: [Func; 6] = [
        Func::Exp,
        Func::Log,
        Func::Tanh,
        Func::Sigmoid,
        Func::Min,
        Func::Max,
    ];

    /// Emits this function of `x` (and `y`, for min and max).
    pub(super) fn emit(self, b: &mut FunctionBuilder, t: MathTarget, x: Value, y: Value) -> Value {
        match self {
            Func::Exp => exp(b, t, x),
            Func::ExpNonpositive => exp_nonpositive(b, t, x),
            Func::Log => log(b, t, x),
            Func::Tanh => tanh(b, t, x),
            Func::Sigmoid => sigmoid(b, t, x),
            Func::Min => min(b, x, y),
            Func::Max => max(b, x, y),
        }
    }

    /// The function in f64 arithmetic: Rust's `exp`, `ln`, `tanh`, and sigmoid in the form that
    /// neither overflows nor cancels. About 1 ulp of f64.
    pub(super) fn reference(self, x: f64) -> f64 {
        match self {
            Func::Exp | Func::ExpNonpositive => x.exp(),
            Func::Log => x.ln(),
            Func::Tanh => x.tanh(),
            Func::Sigmoid if x < 0.0 => {
                let t = x.exp();
                t / (1.0 + t)
            }
            Func::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Func::Min | Func::Max => unreachable!("binary"),
        }
    }
}

/// The host ISA with `opt_level=speed`, as the code generator will build it.
pub(super) fn host_isa() -> OwnedTargetIsa {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").unwrap();
    flags.set("use_colocated_libcalls", "false").unwrap();
    flags.set("is_pic", "false").unwrap();
    cranelift_native::builder()
        .unwrap()
        .finish(settings::Flags::new(flags))
        .unwrap()
}

/// The host's fused multiply-add support.
pub(super) fn host_fma() -> bool {
    MathTarget::of(&*host_isa()).fma
}

/// The targets to test on this host: without FMA always, with it when the host has it.
pub(super) fn targets() -> Vec<MathTarget> {
    let mut t = vec![MathTarget { fma: false }];
    if host_fma() {
        t.push(MathTarget { fma: true });
    }
    t
}

/// An element type of the arrays: f32 or f64.
pub(super) trait Elem: Copy + Default + std::fmt::Debug {
    /// The Cranelift scalar type.
    const SCALAR: Type;
    /// The 128-bit vector type.
    const VECTOR: Type;

    /// `v` rounded to this type.
    fn from_f64(v: f64) -> Self;

    /// The value as an f64 (exact).
    fn to_f64(self) -> f64;

    /// The bits of the value.
    fn bits(self) -> u64;
}

impl Elem for f32 {
    const SCALAR: Type = F32;
    const VECTOR: Type = F32X4;

    fn from_f64(v: f64) -> f32 {
        v as f32
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn bits(self) -> u64 {
        u64::from(self.to_bits())
    }
}

impl Elem for f64 {
    const SCALAR: Type = F64;
    const VECTOR: Type = F64X2;

    fn from_f64(v: f64) -> f64 {
        v
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn bits(self) -> u64 {
        self.to_bits()
    }
}

/// The compiled loop's signature: `(a, b, dst, n)`.
type KernelFn = unsafe extern "C" fn(*const u8, *const u8, *mut u8, usize);

/// `fn(a, b, dst, n)` computing `dst[i] = func(a[i], b[i])` for `i < n`, `n` a multiple of the
/// lanes, one value of `ty` per iteration.
pub(super) struct Kernel {
    _module: JITModule,
    run: KernelFn,
    lanes: usize,
}

impl Kernel {
    /// Compiles the loop for `func` on values of `ty`.
    pub(super) fn new(func: Func, ty: Type, t: MathTarget) -> Kernel {
        let mut module = JITModule::new(JITBuilder::with_isa(host_isa(), default_libcall_names()));
        let mut ctx = module.make_context();
        let ptr = module.target_config().pointer_type();
        assert_eq!(ptr, I64);
        for _ in 0..4 {
            ctx.func.signature.params.push(AbiParam::new(I64));
        }
        let id = module
            .declare_function("kernel", Linkage::Local, &ctx.func.signature)
            .unwrap();
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        let mut fctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let (entry, header, body, exit) = (
            b.create_block(),
            b.create_block(),
            b.create_block(),
            b.create_block(),
        );
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        let &[src_a, src_b, dst, n] = b.block_params(entry) else {
            unreachable!()
        };
        let bytes = b.ins().imul_imm_u(n, i64::from(ty.lane_bits() / 8));
        let zero = b.ins().iconst(I64, 0);
        b.append_block_param(header, I64);
        b.ins().jump(header, &[zero.into()]);

        b.switch_to_block(header);
        let i = b.block_params(header)[0];
        let more = b.ins().icmp(IntCC::UnsignedLessThan, i, bytes);
        b.ins().brif(more, body, &[], exit, &[]);

        b.switch_to_block(body);
        let flags = MemFlagsData::new().with_notrap();
        let pa = b.ins().iadd(src_a, i);
        let x = b.ins().load(ty, flags, pa, 0);
        let pb = b.ins().iadd(src_b, i);
        let y = b.ins().load(ty, flags, pb, 0);
        let r = func.emit(&mut b, t, x, y);
        let pd = b.ins().iadd(dst, i);
        b.ins().store(flags, r, pd, 0);
        let next = b.ins().iadd_imm_u(i, i64::from(ty.bytes()));
        b.ins().jump(header, &[next.into()]);

        b.switch_to_block(exit);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(module.target_config());

        module.define_function(id, &mut ctx).unwrap();
        module.clear_context(&mut ctx);
        module.finalize_definitions().unwrap();
        let code = module.get_finalized_function(id);
        // SAFETY: the function was compiled with this signature (four pointer-sized integers)
        // in the default calling convention of the host.
        let run = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
        Kernel {
            _module: module,
            run,
            lanes: ty.lane_count() as usize,
        }
    }

    /// `func(a[i], b[i])` for every `i`; `b` is ignored by unary functions but must be as long.
    pub(super) fn run<T: Elem>(&self, a: &[T], b: &[T]) -> Vec<T> {
        let mut dst = vec![T::default(); a.len()];
        self.run_into(a, b, &mut dst);
        dst
    }

    /// `dst[i] = func(a[i], b[i])` for every `i`.
    pub(super) fn run_into<T: Elem>(&self, a: &[T], b: &[T], dst: &mut [T]) {
        assert!(a.len() == b.len() && a.len() == dst.len());
        let whole = a.len() - a.len() % self.lanes;
        // SAFETY: the kernel reads `whole` elements of `a` and `b` and writes as many to `dst`,
        // all in bounds; it reads and writes nothing else.
        unsafe {
            (self.run)(
                a.as_ptr().cast(),
                b.as_ptr().cast(),
                dst.as_mut_ptr().cast(),
                whole,
            )
        };
        if whole < a.len() {
            let (mut ta, mut tb, mut td) =
                ([T::default(); 4], [T::default(); 4], [T::default(); 4]);
            let rest = a.len() - whole;
            ta[..rest].copy_from_slice(&a[whole..]);
            tb[..rest].copy_from_slice(&b[whole..]);
            // SAFETY: as above, on arrays of 4 elements, at most 4 lanes.
            unsafe {
                (self.run)(
                    ta.as_ptr().cast(),
                    tb.as_ptr().cast(),
                    td.as_mut_ptr().cast(),
                    self.lanes,
                )
            };
            dst[whole..].copy_from_slice(&td[..rest]);
        }
    }

    /// `func(x)` for every `x` of a unary function.
    pub(super) fn map<T: Elem>(&self, xs: &[T]) -> Vec<T> {
        self.run(xs, xs)
    }
}

/// The machine code of `func` alone on one value of `ty`, as Cranelift disassembles it.
pub(super) fn disassembly(func: Func, ty: Type, t: MathTarget) -> String {
    let isa = host_isa();
    let mut ctx = Context::new();
    ctx.func.signature.params.push(AbiParam::new(ty));
    ctx.func.signature.params.push(AbiParam::new(ty));
    ctx.func.signature.returns.push(AbiParam::new(ty));
    ctx.set_disasm(true);
    let mut fctx = FunctionBuilderContext::new();
    let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let &[x, y] = b.block_params(entry) else {
        unreachable!()
    };
    let r = func.emit(&mut b, t, x, y);
    b.ins().return_(&[r]);
    b.seal_all_blocks();
    assert_eq!(b.func.layout.blocks().count(), 1, "{func:?} made blocks");
    b.finalize(isa.frontend_config());
    let code = ctx
        .compile(&*isa, &mut Default::default())
        .expect("compiles");
    code.vcode.clone().expect("disassembly requested")
}

/// The error of the f32 result `y` against the exact value `exact`, in units of the spacing of
/// f32 numbers at the correctly rounded result (`2^-149` at the bottom). A result that should
/// be NaN, infinite or zero-signed counts as exact only if it is exactly that.
pub(super) fn ulp_error_f32(y: f32, exact: f64) -> f64 {
    let rounded = exact as f32;
    if rounded.is_nan() || y.is_nan() {
        return if rounded.is_nan() && y.is_nan() {
            0.0
        } else {
            f64::INFINITY
        };
    }
    if rounded.is_infinite() || y.is_infinite() {
        return if y == rounded { 0.0 } else { f64::INFINITY };
    }
    let exponent = ((rounded.to_bits() >> 23) & 0xff).max(1) as i32;
    let ulp = 2f64.powi(exponent - 127 - 23);
    (f64::from(y) - exact).abs() / ulp
}

/// The distance between two f64 in representable numbers (NaN to NaN is 0, NaN to a number
/// is `u64::MAX`).
pub(super) fn ulp_distance_f64(a: f64, b: f64) -> u64 {
    if a.is_nan() || b.is_nan() {
        return if a.is_nan() && b.is_nan() {
            0
        } else {
            u64::MAX
        };
    }
    let key = |v: f64| {
        let bits = v.to_bits() as i64;
        if bits < 0 { i64::MIN - bits } else { bits }
    };
    key(a).abs_diff(key(b))
}

/// A deterministic stream of 64-bit values (splitmix64).
pub(super) struct Bits(pub(super) u64);

impl Iterator for Bits {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Some(z ^ (z >> 31))
    }
}
