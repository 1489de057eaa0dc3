//! Cranelift code generation: each loop kernel of a [`Program`] becomes one native function.
//!
//! A compiled kernel has the C signature `fn(buffers: *const *mut u8, lo: i64, hi: i64)`:
//! `buffers[i]` is the address of buffer `i`, and `lo..hi` is the part of the kernel's parallel
//! loop to run (the whole loop is `0..extent`; kernels without a parallel loop take `0..1`).
//! Matrix products, scatters and sums over ranks are not compiled: the runtime calls a tuned
//! GEMM, a plain loop and the communicator for them.

mod expr;
mod loops;
pub(crate) mod math;

use crate::kernel::{Buffer, Kernel, LoopKernel, Program};
use cranelift_codegen::ir::{AbiParam, Function, Signature, UserFuncName, types};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, ir};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{Linkage, Module, ModuleReloc, default_libcall_names};
use math::MathTarget;

/// The native entry point of a compiled loop kernel.
pub type KernelFn = unsafe extern "C" fn(buffers: *const *mut u8, lo: i64, hi: i64);

/// Why code generation failed: Cranelift rejected the function (a bug in kiln, reported with
/// the kernel's number rather than hidden).
#[derive(Debug, thiserror::Error)]
#[error("code generation failed for kernel k{kernel}: {message}")]
pub struct CodegenError {
    /// The kernel's position in the program.
    pub kernel: usize,
    /// What Cranelift said.
    pub message: String,
}

/// Native code for a program's loop kernels. Owns the executable memory: the function
/// pointers stay valid as long as this value lives.
pub struct Compiled {
    module: Option<JITModule>,
    /// The entry point of kernel `i`, `None` for matrix products and scatters.
    pub kernels: Vec<Option<KernelFn>>,
    /// The Cranelift IR of each loop kernel, when asked for (`kiln dump --stage clif`).
    pub clif: Vec<Option<String>>,
    /// The machine code of each loop kernel as Cranelift disassembles it, when asked for
    /// (`kiln dump --stage asm`).
    pub asm: Vec<Option<String>>,
}

impl Drop for Compiled {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the function pointers die with `self`; nothing calls them afterwards.
            unsafe { m.free_memory() };
        }
    }
}

// SAFETY: the compiled code is immutable once finalized and may run on any thread.
unsafe impl Send for Compiled {}
// SAFETY: as above; `Compiled` hands out only function pointers.
unsafe impl Sync for Compiled {}

/// The host ISA with `opt_level=speed`, and what the math routines may use. Cranelift's IR
/// verifier runs in debug builds (every test) and not in release builds, where it took 7% of
/// compile time checking what the tests have checked.
fn host_isa() -> Result<(OwnedTargetIsa, MathTarget), String> {
    let mut flags = settings::builder();
    flags.set("opt_level", "speed").map_err(|e| e.to_string())?;
    let verify = if cfg!(debug_assertions) {
        "true"
    } else {
        "false"
    };
    flags
        .set("enable_verifier", verify)
        .map_err(|e| e.to_string())?;
    let isa = cranelift_native::builder()?
        .finish(settings::Flags::new(flags))
        .map_err(|e| e.to_string())?;
    let target = MathTarget::of(&*isa);
    Ok((isa, target))
}

/// Compiles every loop kernel of `program`; with `keep_text` the Cranelift IR and the machine
/// code of each are kept as text. Kernels are built and compiled on every core, each thread
/// taking the next kernel not yet taken (a program has hundreds of kernels of very different
/// sizes), and defined in the module in program order: the code is the same as compiled on
/// one thread. On this machine's 2 cores, compiling the LeNet step went from 26.6 to 17.5 ms,
/// ResNet-18's from 134 to 114 ms and the LSTM's from 252 to 190 ms (benches/NOTES.md).
pub fn compile(program: &Program, keep_text: bool) -> Result<Compiled, CodegenError> {
    let fail = |kernel, message: String| CodegenError { kernel, message };
    let (isa, target) = host_isa().map_err(|m| fail(0, m))?;
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut sig = module.make_signature();
    for _ in 0..3 {
        sig.params.push(AbiParam::new(types::I64));
    }
    let loops: Vec<(usize, &LoopKernel)> = (program.kernels.iter().enumerate())
        .filter_map(|(i, k)| match k {
            Kernel::Loop(lk) => Some((i, lk)),
            _ => None,
        })
        .collect();
    let config = module.target_config();
    let isa = module.isa();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = || {
        let mut fctx = FunctionBuilderContext::new();
        let mut done = Vec::new();
        loop {
            let j = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&(i, lk)) = loops.get(j) else {
                return done;
            };
            let func = build(
                lk,
                &program.buffers,
                sig.clone(),
                target,
                &mut fctx,
                i,
                config,
            );
            let clif = keep_text.then(|| func.display().to_string());
            let mut ctx = Context::for_function(func);
            ctx.set_disasm(keep_text);
            let compiled = ctx
                .compile(isa, &mut Default::default())
                .map(|_| ())
                .map_err(|e| fail(i, format!("{e:?}")));
            done.push((j, compiled.map(|()| (ctx, clif))));
        }
    };
    let mut built: Vec<_> = match threads.min(loops.len()) {
        0 | 1 => work(),
        n => std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|_| s.spawn(work)).collect();
            (handles.into_iter())
                .flat_map(|h| h.join().expect("a code generation thread panicked"))
                .collect()
        }),
    };
    built.sort_by_key(|(j, _)| *j);
    let n = program.kernels.len();
    let (mut ids, mut clif, mut asm) = (vec![None; n], vec![None; n], vec![None; n]);
    for ((i, _), (_, compiled)) in loops.iter().zip(built) {
        let (ctx, text) = compiled?;
        let id = module
            .declare_function(&format!("k{i}"), Linkage::Local, &sig)
            .map_err(|e| fail(*i, e.to_string()))?;
        let code = ctx.compiled_code().expect("compiled above");
        let alignment = u64::from(code.buffer.alignment)
            .max(module.isa().function_alignment().minimum.into())
            .max(module.isa().symbol_alignment());
        let relocs: Vec<_> = (code.buffer.relocs().iter())
            .map(|r| ModuleReloc::from_mach_reloc(r, &ctx.func, id))
            .collect();
        module
            .define_function_bytes(id, alignment, code.code_buffer(), &relocs)
            .map_err(|e| fail(*i, e.to_string()))?;
        asm[*i] = keep_text.then(|| {
            let vcode = code.vcode.clone();
            format!("k{i}:\n{}", vcode.unwrap_or_default())
        });
        clif[*i] = text;
        ids[*i] = Some(id);
    }
    module
        .finalize_definitions()
        .map_err(|e| fail(0, e.to_string()))?;
    let kernels = ids
        .iter()
        .map(|id| {
            id.map(|id| {
                let ptr = module.get_finalized_function(id);
                // SAFETY: the function was compiled with exactly `KernelFn`'s signature.
                unsafe { std::mem::transmute::<*const u8, KernelFn>(ptr) }
            })
        })
        .collect();
    Ok(Compiled {
        module: Some(module),
        kernels,
        clif,
        asm,
    })
}

/// The Cranelift function of one loop kernel over the program's `buffers`.
fn build(
    k: &LoopKernel,
    buffers: &[Buffer],
    sig: Signature,
    target: MathTarget,
    fctx: &mut FunctionBuilderContext,
    index: usize,
    config: cranelift_codegen::isa::TargetFrontendConfig,
) -> Function {
    let mut func = Function::with_name_signature(UserFuncName::user(0, index as u32), sig);
    loops::emit(k, buffers, &mut func, fctx, target, config);
    func
}

/// `xs` (not empty) folded pairwise with `f`: the first half's elements with the second
/// half's, then again, so that the folds of each round do not wait on one another.
fn fold_pairwise(
    xs: &[ir::Value],
    mut f: impl FnMut(ir::Value, ir::Value) -> ir::Value,
) -> ir::Value {
    let mut parts = xs.to_vec();
    while parts.len() > 1 {
        let right = parts.split_off(parts.len().div_ceil(2));
        for (l, r) in parts.iter_mut().zip(right) {
            *l = f(*l, r);
        }
    }
    parts[0]
}

/// Cranelift's IR type for `lanes` elements of `dtype` (`bool` lanes are masks of the width
/// of the other lanes, scalars are `i8` 0/1).
fn ir_type(dtype: crate::types::DType, lanes: u8) -> ir::Type {
    use crate::types::DType::*;
    match (dtype, lanes) {
        (F32, 1) => types::F32,
        (F64, 1) => types::F64,
        (I32, 1) => types::I32,
        (Bool, 1) => types::I8,
        (F32, 4) => types::F32X4,
        (I32, 4) | (Bool, 4) => types::I32X4,
        (F64, 2) => types::F64X2,
        (Bool, 2) => types::I64X2,
        _ => unreachable!("{dtype} has no {lanes}-lane vector type"),
    }
}

/// The loop nests code generation makes of each loop kernel (`kiln dump --stage loops`): the
/// outer loops (which one threads split, which one runs in vector lanes), and each stage's
/// loops, marked with the vector lanes of the one that runs in them (the innermost) or with
/// the outer loop whose lanes carry the stage, and with the number of loads whose lanes are not
/// consecutive elements.
pub fn describe_loops(program: &Program) -> String {
    use crate::kernel::StageKind;
    use std::fmt::Write;
    let mut out = String::new();
    for (i, k) in program.kernels.iter().enumerate() {
        let Kernel::Loop(lk) = k else {
            let call = match k {
                Kernel::Dot(_) => "gemm",
                Kernel::Scatter(_) => "scatter",
                _ => "all_reduce",
            };
            let _ = writeln!(out, "k{i}: library call ({call})");
            continue;
        };
        let _ = writeln!(out, "k{i}:");
        let uses = loops::uses(lk);
        let plan = loops::plan(lk, &uses);
        // `store`: whether the loop is a store stage's, `overlap`: whether its tail may
        // overlap (see `loops::nest`).
        let loop_line = |v: crate::kernel::Var,
                         vector: Option<(crate::kernel::Var, u8)>,
                         store: bool,
                         overlap: bool| {
            let par = if lk.parallel == Some(v) {
                " (split across threads)"
            } else {
                ""
            };
            let whole = |lanes, vectors| loops::whole(lk, v, lanes, vectors);
            let lanes = match vector {
                Some((w, lanes)) if w == v && store && whole(lanes, loops::STORE_UNROLL) => {
                    format!(
                        " by {lanes} lanes, {} vectors at a time, no tail",
                        loops::STORE_UNROLL
                    )
                }
                Some((w, lanes)) if w == v && whole(lanes, 1) => {
                    format!(" by {lanes} lanes, no tail")
                }
                Some((w, lanes)) if w == v && overlap => {
                    let n = loops::STORE_UNROLL;
                    format!(
                        " by {lanes} lanes, {n} vectors at a time, the last {} again as vectors",
                        n * lanes as usize
                    )
                }
                Some((w, lanes)) if w == v => format!(" by {lanes} lanes, then a scalar tail"),
                _ => String::new(),
            };
            format!("for v{v} in 0..{}{par}{lanes}", lk.extents[v as usize])
        };
        let mut indent = 1;
        for &v in &lk.outer {
            let _ = writeln!(
                out,
                "{}{}",
                "  ".repeat(indent),
                loop_line(v, plan.outer, false, false)
            );
            indent += 1;
        }
        for s in 0..lk.stages.len() {
            let needed = lk.needed(s);
            let stage = &lk.stages[s];
            let what = match &stage.kind {
                StageKind::Reduce { op, value } => format!("s{s}: reduce {:?} of e{value}", op),
                StageKind::Store(st) => format!("s{s}: store {} value(s)", st.len()),
            };
            let carried = match plan.stages[s] {
                Some((v, lanes)) if lk.outer.contains(&v) => {
                    format!(", in the {lanes} lanes of v{v}")
                }
                _ => String::new(),
            };
            // Loads whose lanes are not consecutive elements: a shuffle of one or two vector
            // loads, or a load per lane.
            let gathered = plan.stages[s].map_or(0, |(v, _)| {
                (needed.iter())
                    .filter(|&&e| match &lk.exprs[e as usize].0 {
                        crate::kernel::Expr::Load { offset, .. } => {
                            offset.uses(v) && offset.stride_of(v) != Some(1)
                        }
                        _ => false,
                    })
                    .count()
            });
            let gathered = match gathered {
                0 => String::new(),
                n => format!(", {n} load(s) gathered across lanes"),
            };
            let _ = writeln!(
                out,
                "{}{what}, {} expressions{carried}{gathered}",
                "  ".repeat(indent),
                needed.len()
            );
            if loops::unrolls(lk, s) {
                let points: Vec<String> = stage
                    .vars
                    .iter()
                    .map(|&v| format!("v{v} in 0..{}", lk.extents[v as usize]))
                    .collect();
                let _ = writeln!(
                    out,
                    "{}unrolled over {}",
                    "  ".repeat(indent + 1),
                    points.join(", ")
                );
                continue;
            }
            let overlap = loops::overlapping_tail(lk, s);
            let store = matches!(stage.kind, StageKind::Store(_));
            for (d, &v) in stage.vars.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{}{}",
                    "  ".repeat(indent + 1 + d),
                    loop_line(v, plan.stages[s], store, overlap)
                );
            }
        }
    }
    out
}
