//! The kernel IR: what fusion makes of a graph, and what the code generator compiles.
//!
//! A [`Program`] is a list of kernels over a set of buffers. A buffer is a graph value that
//! exists in memory: an input, a parameter or state, a constant, or a value fusion chose to
//! materialize (outputs, updates, matrix products, values used across kernels). Everything else
//! is recomputed inside the kernels that need it: elementwise ops become expression trees, views
//! become index arithmetic ([`index::Index`]), and reductions become stages of a kernel's loop.
//!
//! A [`LoopKernel`] iterates an *outer* index space (whose first loop may be split across
//! threads) and, inside it, runs its stages in order: each stage loops over its own *inner*
//! variables and either reduces an expression to one value per outer index, or stores
//! expressions into buffers. A stage may load a buffer its kernel writes only at elements an
//! earlier stage wrote in the same outer iteration, or at the element its own point stores (an
//! update in place); kernels over the same outer loops are joined into one (`join`). Matrix
//! products are [`DotKernel`]s, handed to a tuned GEMM.

mod accumulate;
pub mod bounds;
mod buckets;
mod eval;
mod fuse;
pub mod index;
mod join;
mod merge;
mod print;
mod shared;
mod updates;
mod views;

pub use buckets::BUCKET_BYTES;
pub use eval::eval;
pub use fuse::{lower, lower_from_scratch};

pub use index::{Atom, Index, Var};

use crate::array::Array;
use crate::graph::NodeId;
use crate::op::{Op, ReduceOp};
use crate::types::{DType, Type};
use smallvec::SmallVec;

/// A buffer's number in its program.
pub type BufferId = u32;

/// An expression's number in its kernel.
pub type ExprId = u32;

/// What a buffer holds and who provides it.
#[derive(Clone, Debug, PartialEq)]
pub enum Role {
    /// A data input, bound at every run.
    Input(String),
    /// A parameter or state input, kept by the executable between runs.
    State(String),
    /// A constant, filled once at compile time.
    Constant(Array),
    /// A value computed by a kernel.
    Temp,
}

/// A tensor in memory, row-major and contiguous.
#[derive(Clone, Debug, PartialEq)]
pub struct Buffer {
    /// Element type and shape.
    pub ty: Type,
    /// What it holds.
    pub role: Role,
    /// The graph node whose value it holds.
    pub node: NodeId,
}

/// A guard on a load: the load happens only where every condition holds (elsewhere its value
/// is unused, and the load reads element 0 so it stays in bounds).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `lo <= index < hi`.
    Range {
        /// The index tested.
        index: Index,
        /// Inclusive lower bound.
        lo: i64,
        /// Exclusive upper bound.
        hi: i64,
    },
    /// `index` is a multiple of `of`.
    Multiple {
        /// The index tested.
        index: Index,
        /// The divisor.
        of: i64,
    },
}

/// The index a condition tests.
pub fn cond_index(c: &Cond) -> &Index {
    match c {
        Cond::Range { index, .. } | Cond::Multiple { index, .. } => index,
    }
}

/// A node of a kernel's expression DAG.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An element of a buffer; see [`Cond`] for the guards.
    Load {
        /// The buffer read.
        buffer: BufferId,
        /// The element's row-major position.
        offset: Index,
        /// Conditions under which the element is meaningful.
        guards: Vec<Cond>,
    },
    /// A scalar constant.
    Const(f64),
    /// The value of an index expression (an iota), as an `i32`.
    Index(Index),
    /// True where every condition holds (the validity of a pad or a concat operand).
    Test(Vec<Cond>),
    /// Counter-based uniform random numbers (see `interp::random_uniform`) at the row-major
    /// position `index` of the random tensor.
    Random {
        /// The stream.
        stream: u32,
        /// The seed (an `i32` expression).
        seed: ExprId,
        /// The element's position.
        index: Index,
    },
    /// An elementwise primitive (unary, binary, compare, select or cast) of other expressions.
    Apply {
        /// The primitive.
        op: Op,
        /// Its operands.
        args: SmallVec<[ExprId; 3]>,
    },
    /// The result of reduce stage number `stage` for the current outer index (numbered after
    /// the stage's value).
    Reduced(u32),
}

/// A store of an expression into a buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Store {
    /// The buffer written.
    pub buffer: BufferId,
    /// The element's row-major position.
    pub offset: Index,
    /// The value.
    pub value: ExprId,
}

/// One loop nest inside a kernel's outer loops.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    /// The inner loop variables, outermost first (possibly none).
    pub vars: Vec<Var>,
    /// What the stage does.
    pub kind: StageKind,
}

/// What a stage does.
#[derive(Clone, Debug, PartialEq)]
pub enum StageKind {
    /// Reduces `value` over the stage's variables to one value per outer index.
    Reduce {
        /// Sum or max.
        op: ReduceOp,
        /// The expression reduced.
        value: ExprId,
    },
    /// Stores values at every point of the stage's variables, into one buffer or several (a
    /// kernel joined from several, see `join`); every value of a point is computed before any
    /// of them is stored.
    Store(Vec<Store>),
}

/// A fused loop nest, compiled to native code.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopKernel {
    /// The extent of each loop variable, by variable number.
    pub extents: Vec<i64>,
    /// The outer variables, outermost first.
    pub outer: Vec<Var>,
    /// The stages, run in order for every outer index.
    pub stages: Vec<Stage>,
    /// The expressions and their element types, by number; operands before users.
    pub exprs: Vec<(Expr, DType)>,
    /// The variable whose range is split across threads: the first outer variable, or the
    /// first variable of a kernel that is one store stage (past variables of extent 1); `None`
    /// if the kernel cannot be split.
    pub parallel: Option<Var>,
}

/// One operand of a matrix product: a strided view of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// The buffer.
    pub buffer: BufferId,
    /// Element offset of the first matrix.
    pub offset: i64,
    /// Element strides of the batch axes.
    pub batch_strides: Vec<i64>,
    /// Element stride between rows.
    pub row_stride: i64,
    /// Element stride between columns.
    pub col_stride: i64,
}

/// A batched matrix product `out[b] = a[b] x b[b]`, `[m,k] x [k,n]`, into a contiguous buffer,
/// or added to it (`out[b] += a[b] x b[b]`: a product of a sum of products, see `fuse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DotKernel {
    /// Left operand.
    pub a: Matrix,
    /// Right operand.
    pub b: Matrix,
    /// The result buffer, contiguous `[batch.., m, n]`.
    pub out: BufferId,
    /// Batch extents.
    pub batch: Vec<usize>,
    /// Rows of the result.
    pub m: usize,
    /// The contracted extent.
    pub k: usize,
    /// Columns of the result.
    pub n: usize,
    /// Whether the product is added to the result buffer's contents instead of replacing them.
    pub accumulate: bool,
    /// A scalar buffer whose element, negated, scales the product (`out += -s[0] a x b`: a
    /// gradient descent step taken by the product, see `updates`).
    pub descend: Option<BufferId>,
}

/// `out = zeros; out[.., clamp(idx[j]), ..] += upd[.., j, ..]`, the adjoint of a gather.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScatterKernel {
    /// The `i32` indices.
    pub indices: BufferId,
    /// The values added.
    pub updates: BufferId,
    /// The result buffer.
    pub out: BufferId,
    /// The axis scattered along.
    pub axis: usize,
}

/// `out = the sum over the ranks of input` for each `(input, out)` pair of one element type:
/// one call to the program's [`crate::collective::Communicator`], made by the runtime (no code
/// is generated for it) on the pairs' values laid end to end, Horovod's tensor fusion
/// (`buckets`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllReduceKernel {
    /// Each rank's own values and the buffer of their sum, of the same type.
    pub pairs: Vec<(BufferId, BufferId)>,
}

impl AllReduceKernel {
    /// The elements summed in the call.
    pub fn len(&self, p: &Program) -> usize {
        (self.pairs.iter())
            .map(|&(i, _)| p.buffers[i as usize].ty.numel())
            .sum()
    }
}

/// One step of a program.
#[derive(Clone, Debug, PartialEq)]
pub enum Kernel {
    /// A fused loop nest.
    Loop(LoopKernel),
    /// A matrix product.
    Dot(DotKernel),
    /// A scatter-add.
    Scatter(ScatterKernel),
    /// A sum over the ranks of a data-parallel job.
    AllReduce(AllReduceKernel),
}

/// A graph compiled to kernels over buffers.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The graph's name.
    pub name: String,
    /// Every buffer, by number.
    pub buffers: Vec<Buffer>,
    /// The kernels, in execution order.
    pub kernels: Vec<Kernel>,
    /// The graph's outputs and the buffers holding them after a run.
    pub outputs: Vec<(String, BufferId)>,
    /// Each update: the state's name, its buffer, and the buffer holding its new value (the
    /// same buffer when the update is done in place).
    pub updates: Vec<(String, BufferId, BufferId)>,
}

impl LoopKernel {
    /// Every expression stage `s` needs (its values, their operands, and the expressions
    /// data-dependent indices read), in order.
    pub fn needed(&self, s: usize) -> Vec<ExprId> {
        let mut roots: Vec<ExprId> = match &self.stages[s].kind {
            StageKind::Reduce { value, .. } => vec![*value],
            StageKind::Store(st) => st.iter().map(|x| x.value).collect(),
        };
        if let StageKind::Store(st) = &self.stages[s].kind {
            for x in st {
                data_exprs(&x.offset, &mut roots);
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        while let Some(e) = roots.pop() {
            if seen.insert(e) {
                match &self.exprs[e as usize].0 {
                    Expr::Apply { args, .. } => roots.extend(args.iter().copied()),
                    Expr::Random { seed, index, .. } => {
                        roots.push(*seed);
                        data_exprs(index, &mut roots);
                    }
                    Expr::Load { offset, guards, .. } => {
                        data_exprs(offset, &mut roots);
                        guards
                            .iter()
                            .for_each(|c| data_exprs(cond_index(c), &mut roots));
                    }
                    Expr::Index(i) => data_exprs(i, &mut roots),
                    Expr::Test(cs) => cs
                        .iter()
                        .for_each(|c| data_exprs(cond_index(c), &mut roots)),
                    Expr::Const(_) | Expr::Reduced(_) => {}
                }
            }
        }
        seen.into_iter().collect()
    }
}

/// Pushes the expressions holding the data-dependent indices inside `i`.
pub(crate) fn data_exprs(i: &Index, out: &mut Vec<ExprId>) {
    for (_, a) in &i.terms {
        match a {
            Atom::Data { expr, .. } => out.push(*expr),
            Atom::Div(inner, _) | Atom::Mod(inner, _) => data_exprs(inner, out),
            Atom::Var(_) => {}
        }
    }
}

impl Kernel {
    /// The buffers the kernel reads.
    pub fn reads(&self) -> Vec<BufferId> {
        let mut out = match self {
            Kernel::Loop(k) => k
                .exprs
                .iter()
                .filter_map(|(e, _)| match e {
                    Expr::Load { buffer, .. } => Some(*buffer),
                    _ => None,
                })
                .collect(),
            Kernel::Dot(d) => {
                let mut r = vec![d.a.buffer, d.b.buffer];
                r.extend(d.accumulate.then_some(d.out));
                r.extend(d.descend);
                r
            }
            Kernel::Scatter(s) => vec![s.indices, s.updates],
            Kernel::AllReduce(a) => a.pairs.iter().map(|&(i, _)| i).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The buffers the kernel writes.
    pub fn writes(&self) -> Vec<BufferId> {
        let mut out = match self {
            Kernel::Loop(k) => k
                .stages
                .iter()
                .flat_map(|s| match &s.kind {
                    StageKind::Store(stores) => stores.iter().map(|st| st.buffer).collect(),
                    StageKind::Reduce { .. } => vec![],
                })
                .collect(),
            Kernel::Dot(d) => vec![d.out],
            Kernel::Scatter(s) => vec![s.out],
            Kernel::AllReduce(a) => a.pairs.iter().map(|&(_, o)| o).collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Renumbers every buffer `b` the loop kernel loads or stores as `f(b)`.
fn map_loop_buffers(l: &mut LoopKernel, f: &dyn Fn(BufferId) -> BufferId) {
    for (e, _) in &mut l.exprs {
        if let Expr::Load { buffer, .. } = e {
            *buffer = f(*buffer);
        }
    }
    for s in &mut l.stages {
        if let StageKind::Store(stores) = &mut s.kind {
            stores.iter_mut().for_each(|st| st.buffer = f(st.buffer));
        }
    }
}

/// Renumbers every buffer `b` the program's kernels, outputs and updates name as `f(b)`.
fn map_buffers(p: &mut Program, f: &dyn Fn(BufferId) -> BufferId) {
    for k in &mut p.kernels {
        match k {
            Kernel::Loop(l) => map_loop_buffers(l, f),
            Kernel::Dot(d) => {
                d.a.buffer = f(d.a.buffer);
                d.b.buffer = f(d.b.buffer);
                d.out = f(d.out);
                d.descend = d.descend.map(f);
            }
            Kernel::Scatter(s) => {
                s.indices = f(s.indices);
                s.updates = f(s.updates);
                s.out = f(s.out);
            }
            Kernel::AllReduce(a) => {
                a.pairs
                    .iter_mut()
                    .for_each(|(i, o)| (*i, *o) = (f(*i), f(*o)));
            }
        }
    }
    p.outputs.iter_mut().for_each(|(_, b)| *b = f(*b));
    for (_, s, v) in &mut p.updates {
        *s = f(*s);
        *v = f(*v);
    }
}
