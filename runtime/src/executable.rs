//! [`Executable`]: a graph compiled to native kernels over one preallocated arena, run as a
//! flat list of calls. State (parameters, optimizer moments) lives in the arena between runs
//! and is updated in place.

use crate::arena::Arena;
use crate::matmul;
use crate::numerics::Numerics;
use crate::pool::{Pool, Shared};
use crate::scatter;
use kiln_compiler::codegen::{self, CodegenError, Compiled};
use kiln_compiler::collective::{Communicator, Single};
use kiln_compiler::interp::RunError;
use kiln_compiler::kernel::bounds::{self, BoundsError};
use kiln_compiler::kernel::{Kernel, Program, Role, lower};
use kiln_compiler::limits::{
    DEFAULT_MAX_MEMORY, Footprint, SizeError, check_lowerable, check_memory,
};
use kiln_compiler::memory::plan;
use kiln_compiler::passes::optimize;
use kiln_compiler::{Array, DType, Data, Graph, InputKind, VerifyError, verify};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How to compile.
#[derive(Clone, Debug)]
pub struct Options {
    /// Run the graph optimization passes first (simplify, fold, CSE, DCE).
    pub optimize: bool,
    /// Fuse operations into kernels (`false`: one kernel per primitive, for comparison and
    /// testing).
    pub fuse: bool,
    /// Worker threads for large kernels and matrix products (1: run on the caller's thread).
    pub threads: usize,
    /// Keep the Cranelift IR and the machine code of each kernel as text (`kiln dump --stage
    /// clif` and `--stage asm`).
    pub keep_text: bool,
    /// The most bytes the program may allocate: its arena (state, constants, temporaries) and
    /// the scratch of its matrix products and scatters, not the caller's data inputs. A
    /// program over it is refused before anything is allocated, naming the batch that would
    /// fit ([`kiln_compiler::limits::check_memory`]).
    pub max_memory: usize,
}

impl Default for Options {
    /// Optimized and fused, on every core, without the IR text, within
    /// [`DEFAULT_MAX_MEMORY`] (4 GiB).
    fn default() -> Options {
        Options {
            optimize: true,
            fuse: true,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep_text: false,
            max_memory: DEFAULT_MAX_MEMORY,
        }
    }
}

/// Why a graph could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// The graph breaks an invariant of the IR.
    #[error(transparent)]
    Invalid(#[from] VerifyError),
    /// A kernel may access memory outside a buffer (a compiler bug, caught before any code
    /// is generated).
    #[error(transparent)]
    OutOfBounds(#[from] BoundsError),
    /// Cranelift refused a kernel.
    #[error(transparent)]
    Codegen(#[from] CodegenError),
    /// A value of the graph, or all of them together, exceed a limit of
    /// [`kiln_compiler::limits`], or the program would allocate more than
    /// [`Options::max_memory`]; refused before anything is allocated for them.
    #[error(transparent)]
    TooLarge(#[from] SizeError),
}

/// Why state could not be set.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// No param or state has the name.
    #[error("the program has no param or state named `{0}`")]
    Unknown(String),
    /// The value's type differs from the state's.
    #[error("`{name}` has type {expected}, the value given has type {found}")]
    Type {
        /// The state's name.
        name: String,
        /// Its type.
        expected: Box<kiln_compiler::Type>,
        /// The value's type.
        found: Box<kiln_compiler::Type>,
    },
}

/// Facts about a compiled program, for summaries and benchmarks.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Kernels in the program, by kind: loops, matrix products, scatters.
    pub loops: usize,
    /// Matrix products.
    pub dots: usize,
    /// Scatters.
    pub scatters: usize,
    /// Bytes of the arena (state, constants and temporaries).
    pub arena_bytes: usize,
    /// Bytes allocated beside the arena: the matrix products' scratch, the scatters' running
    /// sums and the staging memory of `all_reduce` buckets.
    pub scratch_bytes: usize,
    /// Bytes the temporaries would take without sharing memory.
    pub unshared_bytes: usize,
    /// Time spent compiling (lowering, planning and code generation).
    pub compile_time: Duration,
}

/// A compiled graph, ready to run.
pub struct Executable {
    program: Program,
    compiled: Compiled,
    /// Owns the memory `table` points into (zeroed lazily: see [`crate::arena`]).
    _arena: Arena,
    pool: Pool,
    /// Memory the matrix products use between their call and their result (f64 for its
    /// alignment), allocated once.
    scratch: Vec<f64>,
    /// The running sums of the scatters and the positions they reached, allocated once.
    scatter_sums: (Vec<f64>, Vec<bool>),
    stats: Stats,
    /// Data inputs, by name, with their buffers, in program order.
    inputs: Vec<(String, u32)>,
    /// The pointer of every buffer for the current run (arena addresses are fixed).
    table: Vec<*mut u8>,
    /// Time spent in each kernel over all runs, when `KILN_PROFILE` is set.
    profile: Option<Vec<Duration>>,
    /// What the numerics check names buffers and kernels by.
    numerics: Numerics,
    /// Whether runs scan inputs and kernel results for NaN and infinities.
    check_numerics: bool,
    /// The job whose ranks `all_reduce` sums over.
    comm: Arc<dyn Communicator>,
    /// Where a bucket of several buffers is summed (f64 for its alignment), allocated once.
    staging: Vec<f64>,
}

// SAFETY: the arena and compiled code are owned; raw pointers point into them (or, during
// `run`, into arrays the caller lends for that call only).
unsafe impl Send for Executable {}

impl Executable {
    /// Compiles `g`: verify, check its values' sizes, fuse (or not), plan memory, check what
    /// the program will allocate against [`Options::max_memory`], generate code.
    pub fn compile(g: &Graph, options: &Options) -> Result<Executable, CompileError> {
        let start = Instant::now();
        verify(g)?;
        check_lowerable(g)?;
        let mut g = g.clone();
        if options.optimize {
            optimize(&mut g);
        }
        let program = lower(&g, options.fuse);
        bounds::check(&program)?;
        let numerics = Numerics::new(&g, &program);
        let plan = plan(&program);
        let sums = scatter::sums_len(&program);
        let staging = staging_bytes(&program).div_ceil(8);
        let scratch_bytes = matmul::scratch_bytes(&program).div_ceil(8) * 8
            + sums * (size_of::<f64>() + size_of::<bool>())
            + staging * 8;
        check_memory(
            &Footprint::new(&program, &plan, scratch_bytes),
            options.max_memory,
        )?;
        let compiled = codegen::compile(&program, options.keep_text)?;
        let arena = Arena::new(plan.arena_bytes);
        let table = plan
            .offsets
            .iter()
            .map(|o| match o {
                // SAFETY: the plan's offsets lie inside the arena.
                Some(off) => unsafe { arena.as_ptr().add(*off) },
                None => std::ptr::null_mut(),
            })
            .collect();
        let count = |f: fn(&Kernel) -> bool| program.kernels.iter().filter(|k| f(k)).count();
        let stats = Stats {
            loops: count(|k| matches!(k, Kernel::Loop(_))),
            dots: count(|k| matches!(k, Kernel::Dot(_))),
            scatters: count(|k| matches!(k, Kernel::Scatter(_))),
            arena_bytes: plan.arena_bytes,
            scratch_bytes,
            unshared_bytes: plan.unshared_bytes,
            compile_time: Duration::ZERO,
        };
        let inputs = program
            .buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match &b.role {
                Role::Input(n) => Some((n.clone(), i as u32)),
                _ => None,
            })
            .collect();
        let scratch = vec![0.0; matmul::scratch_bytes(&program).div_ceil(8)];
        let scatter_sums = (vec![0.0; sums], vec![false; sums]);
        let mut exe = Executable {
            program,
            compiled,
            _arena: arena,
            pool: Pool::new(options.threads),
            scratch,
            scatter_sums,
            stats,
            inputs,
            table,
            profile: None,
            numerics,
            check_numerics: false,
            comm: Arc::new(Single),
            staging: vec![0.0; staging],
        };
        if std::env::var_os("KILN_PROFILE").is_some() {
            exe.start_profile();
        }
        for (i, b) in exe.program.buffers.iter().enumerate() {
            if let Role::Constant(a) = &b.role {
                write_array(exe.table[i], a);
            }
        }
        exe.stats.compile_time = start.elapsed();
        Ok(exe)
    }

    /// Makes `all_reduce` sum over the ranks of `comm` (one rank, [`Single`], until this is
    /// called). Every rank of the job must run the same program.
    pub fn set_communicator(&mut self, comm: Arc<dyn Communicator>) {
        self.comm = comm;
    }

    /// The kernel program this executable runs.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The Cranelift IR of loop kernel `i`, if it was kept.
    pub fn clif(&self, i: usize) -> Option<&str> {
        self.compiled.clif.get(i)?.as_deref()
    }

    /// The disassembled machine code of loop kernel `i`, if it was kept.
    pub fn asm(&self, i: usize) -> Option<&str> {
        self.compiled.asm.get(i)?.as_deref()
    }

    /// Time spent in each kernel over all runs so far, by kernel number, when profiling is
    /// on: the environment variable `KILN_PROFILE` was set at compile time, or
    /// [`Executable::start_profile`] was called (timing costs a clock read per kernel, so it
    /// is off otherwise).
    pub fn profile(&self) -> Option<&[Duration]> {
        self.profile.as_deref()
    }

    /// Turns profiling on for the runs that follow, from zero.
    pub fn start_profile(&mut self) {
        self.profile = Some(vec![Duration::ZERO; self.program.kernels.len()]);
    }

    /// The profile as a table: the time per run of every kernel (numbered as
    /// `kiln dump --stage kernels` numbers them) and of all together, averaged over `runs`.
    /// `None` when profiling is off.
    pub fn profile_report(&self, runs: u64) -> Option<String> {
        let times = self.profile()?;
        let per_run = |t: &Duration| t.as_secs_f64() * 1e6 / runs.max(1) as f64;
        let total: f64 = times.iter().map(per_run).sum();
        let mut out = format!("time per run by kernel ({runs} runs): {total:.1} us in all\n");
        for (i, (t, k)) in times.iter().zip(&self.program.kernels).enumerate() {
            let line = format!(
                "  k{i:<3} {:>8.1} us  {}\n",
                per_run(t),
                k.summary(&self.program)
            );
            out.push_str(&line);
        }
        Some(out)
    }

    /// Turns the numerics check on or off (it starts off) for the runs that follow; it needs
    /// no recompilation. When on, a run first scans every float data input, param and state,
    /// and after each kernel the buffers that kernel wrote, for NaN and infinities; the first
    /// one found stops the run with [`RunError::NonFiniteInput`] or
    /// [`RunError::NonFiniteResult`] (naming the kernel and the graph node it computes, with
    /// its source location). A kernel that uses an infinite constant (max pooling's `-inf`
    /// padding) may write infinities, never NaN. Values inside a fused kernel that it does not
    /// store are not seen: compile without fusion to check every primitive. A run stopped by
    /// the check leaves the state as the kernels already run left it. Off, it costs one branch
    /// per run.
    pub fn set_check_numerics(&mut self, on: bool) {
        self.check_numerics = on;
    }

    /// Whether the numerics check is on (see [`Executable::set_check_numerics`]).
    pub fn check_numerics(&self) -> bool {
        self.check_numerics
    }

    /// Facts about the compiled program.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The buffer of the param or state `name`.
    fn state_buffer(&self, name: &str) -> Option<usize> {
        self.program
            .buffers
            .iter()
            .position(|b| matches!(&b.role, Role::State(n) if n == name))
    }

    /// Names and types of every param and state, in program order.
    pub fn state_names(&self) -> Vec<(String, kiln_compiler::Type)> {
        self.program
            .buffers
            .iter()
            .filter_map(|b| match &b.role {
                Role::State(n) => Some((n.clone(), b.ty.clone())),
                _ => None,
            })
            .collect()
    }

    /// Sets the param or state `name` (state starts at zero).
    pub fn set_state(&mut self, name: &str, value: &Array) -> Result<(), StateError> {
        let b = self
            .state_buffer(name)
            .ok_or_else(|| StateError::Unknown(name.into()))?;
        let ty = &self.program.buffers[b].ty;
        if value.ty() != *ty {
            return Err(StateError::Type {
                name: name.into(),
                expected: Box::new(ty.clone()),
                found: Box::new(value.ty()),
            });
        }
        write_array(self.table[b], value);
        Ok(())
    }

    /// The current value of the param or state `name`.
    pub fn state(&self, name: &str) -> Option<Array> {
        let b = self.state_buffer(name)?;
        Some(read_array(self.table[b], &self.program.buffers[b].ty))
    }

    /// Runs the program on the data inputs (every one, by name, of its exact type); updates
    /// the state in place and returns the outputs in the graph's order.
    pub fn run(
        &mut self,
        inputs: &HashMap<String, Array>,
    ) -> Result<Vec<(String, Array)>, RunError> {
        self.execute(inputs)?;
        Ok(self
            .program
            .outputs
            .iter()
            .map(|(n, b)| {
                (
                    n.clone(),
                    read_array(
                        self.table[*b as usize],
                        &self.program.buffers[*b as usize].ty,
                    ),
                )
            })
            .collect())
    }

    /// The type of the output `name`.
    pub fn output_type(&self, name: &str) -> Option<&kiln_compiler::Type> {
        let &(_, b) = self.program.outputs.iter().find(|(n, _)| n == name)?;
        Some(&self.program.buffers[b as usize].ty)
    }

    /// The value of the scalar output `name` of the last run, as `f64`; `None` if there is no
    /// such output or it is not a scalar.
    pub fn scalar_output(&self, name: &str) -> Option<f64> {
        let &(_, b) = self.program.outputs.iter().find(|(n, _)| n == name)?;
        let ty = &self.program.buffers[b as usize].ty;
        if ty.rank() != 0 {
            return None;
        }
        let p = self.table[b as usize];
        // SAFETY: the buffer holds one element of its dtype.
        Some(unsafe {
            match ty.dtype {
                DType::F32 => f64::from(p.cast::<f32>().read()),
                DType::F64 => p.cast::<f64>().read(),
                DType::I32 => f64::from(p.cast::<i32>().read()),
                DType::Bool => f64::from(p.cast::<u8>().read()),
            }
        })
    }

    /// The output `name` of the last run (a copy).
    pub fn output(&self, name: &str) -> Option<Array> {
        let &(_, b) = self.program.outputs.iter().find(|(n, _)| n == name)?;
        Some(read_array(
            self.table[b as usize],
            &self.program.buffers[b as usize].ty,
        ))
    }

    /// Runs the program like [`Executable::run`] but copies no output: read the ones needed
    /// with [`Executable::output`].
    pub fn execute(&mut self, inputs: &HashMap<String, Array>) -> Result<(), RunError> {
        let ordered = (self.inputs.iter())
            .map(|(name, b)| {
                inputs.get(name).ok_or_else(|| RunError::MissingInput {
                    name: name.clone(),
                    kind: InputKind::Data,
                    ty: Box::new(self.program.buffers[*b as usize].ty.clone()),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(extra) = inputs
            .keys()
            .find(|n| !self.inputs.iter().any(|(name, _)| name == *n))
        {
            return Err(RunError::UnexpectedInput(extra.clone()));
        }
        self.execute_ordered(&ordered)
    }

    /// The outputs, by name and type, in the graph's order.
    pub fn output_names(&self) -> Vec<(String, kiln_compiler::Type)> {
        (self.program.outputs.iter())
            .map(|(n, b)| (n.clone(), self.program.buffers[*b as usize].ty.clone()))
            .collect()
    }

    /// The data inputs, by name and type, in the order [`Executable::execute_ordered`] takes
    /// them.
    pub fn input_names(&self) -> Vec<(String, kiln_compiler::Type)> {
        (self.inputs.iter())
            .map(|(n, b)| (n.clone(), self.program.buffers[*b as usize].ty.clone()))
            .collect()
    }

    /// Runs the program on its data inputs given in [`Executable::input_names`] order,
    /// copying no output. This is the training loop's step: no name is looked up and nothing
    /// is allocated.
    pub fn execute_ordered(&mut self, inputs: &[&Array]) -> Result<(), RunError> {
        if inputs.len() != self.inputs.len() {
            return Err(RunError::InputCount {
                expected: self.inputs.len(),
                found: inputs.len(),
            });
        }
        for ((name, b), a) in self.inputs.iter().zip(inputs) {
            let ty = &self.program.buffers[*b as usize].ty;
            if a.ty() != *ty {
                return Err(RunError::InputType {
                    name: name.clone(),
                    expected: Box::new(ty.clone()),
                    found: Box::new(a.ty()),
                });
            }
            self.table[*b as usize] = data_ptr(a);
        }
        let ran = match self.check_numerics {
            false => {
                (0..self.program.kernels.len()).for_each(|i| self.run_kernel(i));
                Ok(())
            }
            true => self.run_checked(),
        };
        if ran.is_err() {
            self.unbind_inputs();
            return ran;
        }
        for (_, state, value) in &self.program.updates {
            if state != value {
                let bytes = self.program.buffers[*state as usize].ty.numel()
                    * self.program.buffers[*state as usize].ty.dtype.size_bytes();
                // SAFETY: both buffers hold `bytes` bytes; they do not overlap (a state is
                // never shared).
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        self.table[*value as usize],
                        self.table[*state as usize],
                        bytes,
                    )
                };
            }
        }
        self.unbind_inputs();
        Ok(())
    }

    /// Runs every kernel with the numerics check: the inputs first, then each kernel's results.
    fn run_checked(&mut self) -> Result<(), RunError> {
        self.numerics.check_inputs(&self.program, &self.table)?;
        for i in 0..self.program.kernels.len() {
            self.run_kernel(i);
            self.numerics.check_kernel(i, &self.program, &self.table)?;
        }
        Ok(())
    }

    /// Runs kernel `i` (timing it when profiling).
    fn run_kernel(&mut self, i: usize) {
        let started = self.profile.as_ref().map(|_| Instant::now());
        match &self.program.kernels[i] {
            Kernel::Loop(lk) => {
                let f = self.compiled.kernels[i].expect("loop kernels are compiled");
                let table = Shared(self.table.as_ptr());
                let extent = lk.parallel.map_or(1, |v| lk.extents[v as usize]);
                let work = work_per_unit(lk);
                let align = split_alignment(lk);
                self.pool.run(extent as usize, work, align, &|lo, hi| {
                    // SAFETY: the kernel reads and writes its buffers through `table`, whose
                    // pointers are valid for their types; disjoint `lo..hi` ranges write
                    // disjoint elements (the parallel loop is an output axis).
                    unsafe { f(table.get(), lo as i64, hi as i64) }
                });
            }
            Kernel::Dot(d) => {
                let scratch = self.scratch.as_mut_ptr().cast();
                // SAFETY: the table holds every buffer's pointer, valid for its type; the
                // scratch was sized for the program's products.
                unsafe { matmul::dot(&self.table, d, &self.program, &self.pool, scratch) }
            }
            Kernel::Scatter(s) => {
                let (sums, reached) = &mut self.scatter_sums;
                // SAFETY: as for the products; the sums were sized for the program's scatters.
                unsafe { scatter::scatter(&self.table, s, &self.program, sums, reached) }
            }
            Kernel::AllReduce(a) => {
                let p = &self.program;
                let dtype = p.buffers[a.pairs[0].0 as usize].ty.dtype;
                let size = dtype.size_bytes();
                let bytes = |b: u32| p.buffers[b as usize].ty.numel() * size;
                // One buffer is summed where its result goes; several are laid end to end in
                // the staging memory, summed there in one call and copied out.
                let (sum, len) = match &a.pairs[..] {
                    [(_, out)] => (self.table[*out as usize], bytes(*out) / size),
                    _ => (self.staging.as_mut_ptr().cast(), a.len(p)),
                };
                let mut at = 0;
                for &(input, _) in &a.pairs {
                    // SAFETY: the buffers hold their types (`bounds::check` compared each
                    // pair's), distinct values of the plan or the staging memory, sized for
                    // the largest bucket, so no copy overlaps.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            self.table[input as usize],
                            sum.add(at),
                            bytes(input),
                        )
                    };
                    at += bytes(input);
                }
                // SAFETY: `sum` holds `len` elements of `dtype`, written just above.
                unsafe {
                    match dtype {
                        DType::F32 => self
                            .comm
                            .all_reduce_f32(std::slice::from_raw_parts_mut(sum.cast(), len)),
                        DType::F64 => self
                            .comm
                            .all_reduce_f64(std::slice::from_raw_parts_mut(sum.cast(), len)),
                        other => unreachable!("all_reduce of {other}: `infer` takes floats only"),
                    }
                }
                if a.pairs.len() > 1 {
                    let mut at = 0;
                    for &(_, out) in &a.pairs {
                        // SAFETY: as for the copies in.
                        unsafe {
                            std::ptr::copy_nonoverlapping(
                                sum.add(at),
                                self.table[out as usize],
                                bytes(out),
                            )
                        };
                        at += bytes(out);
                    }
                }
            }
        }
        if let (Some(p), Some(t)) = (self.profile.as_mut(), started) {
            p[i] += t.elapsed();
        }
    }

    /// Forgets the caller's input arrays, lent for one run.
    fn unbind_inputs(&mut self) {
        for (_, b) in &self.inputs {
            self.table[*b as usize] = std::ptr::null_mut();
        }
    }
}

/// The bytes of the largest bucket of several buffers an `all_reduce` kernel sums.
fn staging_bytes(p: &Program) -> usize {
    (p.kernels.iter())
        .filter_map(|k| match k {
            Kernel::AllReduce(a) if a.pairs.len() > 1 => {
                Some(a.len(p) * p.buffers[a.pairs[0].0 as usize].ty.dtype.size_bytes())
            }
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// What the ranges of a kernel's parallel loop are multiples of: 16 elements when code
/// generation may run that loop in vector lanes (it is the innermost loop of a stage, or the
/// innermost outer loop), so each range's vectors stay aligned; else 1, so a short outer loop
/// (a convolution's 6 channels) still splits.
fn split_alignment(k: &kiln_compiler::kernel::LoopKernel) -> usize {
    let innermost = |vars: &[kiln_compiler::kernel::Var]| vars.last().copied() == k.parallel;
    match innermost(&k.outer) || k.stages.iter().any(|s| innermost(&s.vars)) {
        true => 16,
        false => 1,
    }
}

/// Elements one iteration of the parallel loop touches, roughly (to decide whether threads pay).
fn work_per_unit(k: &kiln_compiler::kernel::LoopKernel) -> usize {
    let per_stage: i64 = k
        .stages
        .iter()
        .map(|s| {
            s.vars
                .iter()
                .map(|&v| k.extents[v as usize])
                .product::<i64>()
        })
        .sum();
    let outer: i64 = k
        .outer
        .iter()
        .filter(|&&v| Some(v) != k.parallel)
        .map(|&v| k.extents[v as usize])
        .product();
    let single_store = k.outer.is_empty();
    let per = if single_store {
        let first = k.parallel.map_or(1, |v| k.extents[v as usize]).max(1);
        per_stage / first
    } else {
        per_stage * outer
    };
    (per.max(1) as usize) * k.exprs.len().max(1)
}

fn data_ptr(a: &Array) -> *mut u8 {
    match a.data() {
        Data::F32(v) => v.as_ptr() as *mut u8,
        Data::F64(v) => v.as_ptr() as *mut u8,
        Data::I32(v) => v.as_ptr() as *mut u8,
        Data::Bool(v) => v.as_ptr() as *mut u8,
    }
}

fn write_array(dst: *mut u8, a: &Array) {
    let bytes = a.numel() * a.dtype().size_bytes();
    // SAFETY: `dst` holds a buffer of `a`'s type; `bool` is one byte 0 or 1 as buffers expect.
    unsafe { std::ptr::copy_nonoverlapping(data_ptr(a), dst, bytes) };
}

fn read_array(src: *const u8, ty: &kiln_compiler::Type) -> Array {
    let n = ty.numel();
    // SAFETY: `src` holds `n` elements of `ty.dtype`; bool buffers hold only 0 or 1.
    let data = unsafe {
        match ty.dtype {
            DType::F32 => Data::F32(std::slice::from_raw_parts(src as *const f32, n).to_vec()),
            DType::F64 => Data::F64(std::slice::from_raw_parts(src as *const f64, n).to_vec()),
            DType::I32 => Data::I32(std::slice::from_raw_parts(src as *const i32, n).to_vec()),
            DType::Bool => Data::Bool(std::slice::from_raw_parts(src as *const bool, n).to_vec()),
        }
    };
    Array::new(&ty.shape, data).expect("buffers hold their type's element count")
}
