//! Fusion: from a graph to a [`Program`] of kernels.
//!
//! Which values live in memory decides everything else. A value is *materialized* (gets a
//! buffer) when it is an input, a non-splat constant, an output or an update, a matrix product
//! or a scatter (and their operands, unless a matrix operand is a strided view of a buffer), or
//! when a reduction cannot be computed where it is needed (see below). In the unfused mode every
//! value is materialized, so each primitive is one kernel.
//!
//! A maximum over a few elements (a pooling window) is an expression rather than a stage, so
//! the kernel around it vectorizes across windows.
//!
//! Fusion also materializes an elementwise value that two or more kernels need when it is
//! expensive to recompute (see `shared`), and a padded tensor that overlapping windows read (a
//! convolution's padded input): each of its elements is read by several windows, and from a
//! buffer every read is a plain load, where inlined each would test the padding and recompute
//! the element.
//!
//! Each materialized value that is not an input or constant is the root of one kernel. The
//! kernel computes the root's expression with everything that is not materialized inlined:
//! elementwise ops as expressions, views as index arithmetic, and each reduction as a stage
//! computed once per outer index. The root's shape is split into outer loops and the loops of
//! the final store stage at the deepest point where every reduction's index depends on outer
//! variables only. A reduction needed at an index that varies inside another stage (a reduction
//! of reductions) cannot be a stage there: the input of the enclosing reduction is then
//! materialized, and planning starts again.
//!
//! A sum of matrix products is materialized and its products add into its buffer (see
//! `accumulate`); the products get no buffers of their own and the sum no kernel. A transposed
//! matrix that several products take as their right operand is materialized (see
//! `shared_transpose`).
//!
//! Once every kernel is planned, kernels over the same outer loops are joined (`join`): one
//! kernel per value is the plan, not the program.

use super::accumulate::sums_of_products;
use super::buckets::bucket_all_reduces;
use super::index::{Index, flatten};
use super::join::{hoist, join_kernels};
use super::merge::merge_loops;
use super::shared::materialize_shared;
use super::updates::{copy_kernel, descents_in_products, in_place_updates};
use super::views::{simplify, view_index};
use super::{
    AllReduceKernel, Buffer, BufferId, Cond, DotKernel, Expr, ExprId, Kernel, LoopKernel, Matrix,
    Program, Role, ScatterKernel, Stage, StageKind, Store, Var, map_loop_buffers,
};
use crate::graph::{Graph, NodeId};
use crate::op::{InputKind, Op};
use crate::types::DType;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

/// Compiles `g` to kernels: fused, or one kernel per primitive when `fuse` is false.
pub fn lower(g: &Graph, fuse: bool) -> Program {
    lower_reusing(g, fuse, true)
}

/// The program of [`lower`], planned without reusing the loop kernels of earlier planning
/// attempts (see `Planned`): slower on large graphs, and the same program, which the tests
/// check.
pub fn lower_from_scratch(g: &Graph, fuse: bool) -> Program {
    lower_reusing(g, fuse, false)
}

fn lower_reusing(g: &Graph, fuse: bool, reuse: bool) -> Program {
    let mut materialized = initial(g, fuse);
    let sums = match fuse {
        true => sums_of_products(g, &g.live_nodes()),
        false => HashMap::new(),
    };
    materialized.extend(sums.values());
    let planned = RefCell::new(HashMap::new());
    loop {
        match Planner::new(g, &materialized, &sums, &planned).plan() {
            Ok(mut p) => {
                if fuse {
                    join_kernels(&mut p);
                }
                for k in &mut p.kernels {
                    if let Kernel::Loop(l) = k {
                        finish(l);
                    }
                }
                let mut p = in_place_updates(p);
                bucket_all_reduces(&mut p);
                if !fuse {
                    return p;
                }
                let mut p = descents_in_products(p);
                // Each matrix product runs as soon as what it reads is ready, not where
                // planning's order put it (a weight gradient among the optimizer's updates at
                // the end): the operands it is the last to read, a convolution's im2col
                // matrix, are freed before the rest of the backward pass. The Keras CNN's
                // arena at batch 32 shrank from 1728 to 1366 MiB, the CIFAR CNN's from 221 to
                // 117, ResNet-18's from 656 to 524.
                hoist(&mut p.kernels, |k| matches!(k, Kernel::Dot(_)));
                return p;
            }
            Err(Restart(node)) => {
                if !reuse {
                    planned.borrow_mut().clear();
                }
                let fresh = materialized.insert(node);
                assert!(fresh, "planning restarted on an already materialized node");
            }
        }
    }
}

/// Puts a loop kernel in its final form: a single store stage takes every loop, the stages'
/// loops merge where they can (see `merge`), and the parallel loop is chosen.
fn finish(k: &mut LoopKernel) {
    if let [only] = k.stages.as_mut_slice()
        && matches!(only.kind, StageKind::Store(_))
    {
        let mut vars = std::mem::take(&mut k.outer);
        vars.append(&mut only.vars);
        only.vars = vars;
    }
    merge_loops(k);
    // Loops of extent 1 before it are no loops at all: split the first that is one.
    let first_wide = |vars: &[Var]| {
        let wide = vars.iter().find(|&&v| k.extents[v as usize] > 1);
        wide.or(vars.first()).copied()
    };
    k.parallel = match (k.outer.as_slice(), k.stages.as_slice()) {
        ([_, ..], _) => first_wide(&k.outer),
        ([], [only]) => first_wide(&only.vars),
        _ => None,
    };
}

/// Maximums over at most this many elements are inlined as expressions (see
/// `KernelBuilder::inline_max`).
const INLINE_MAX: usize = 16;

/// The most elements a kernel may reduce again and again, computing the same value for each
/// index of an outer loop that the reduction does not depend on, before the reduction gets a
/// buffer of its own: about what a kernel of its own costs to launch.
const REPEATED_REDUCTION: i64 = 1 << 12;

/// Planning must start again with this node materialized.
struct Restart(NodeId);

/// The value of a constant node if all its elements are bitwise equal.
fn splat(op: &Op) -> Option<f64> {
    let Op::Constant(a) = op else { return None };
    if a.numel() == 0 {
        return None;
    }
    let first = a.data().get_f64(0);
    let all_equal = (0..a.numel()).all(|i| a.data().get_f64(i).to_bits() == first.to_bits());
    all_equal.then_some(first)
}

fn initial(g: &Graph, fuse: bool) -> HashSet<NodeId> {
    let needed = g.live_nodes();
    let mut m: HashSet<NodeId> = g.inputs().into_iter().collect();
    m.extend(g.outputs().iter().chain(g.updates()).map(|&(_, id)| id));
    for &id in &needed {
        let op = &g.node(id).op;
        match op {
            Op::Dot => {
                m.insert(id);
                if fuse {
                    m.extend(shared_transpose(g, id));
                }
            }
            Op::ScatterAdd { .. } | Op::AllReduce => {
                m.insert(id);
                m.extend(g.operands(id));
            }
            Op::Constant(_) if splat(op).is_none() => {
                m.insert(id);
            }
            Op::Windows { window, stride, .. } if window.iter().zip(stride).any(|(w, s)| s < w) => {
                let operand = g.operands(id)[0];
                if matches!(g.node(operand).op, Op::Pad { .. }) {
                    m.insert(operand);
                }
                if !fuse {
                    m.insert(id);
                }
            }
            _ if !fuse => {
                m.insert(id);
            }
            _ => {}
        }
    }
    if fuse {
        materialize_shared(g, &needed, &mut m);
    }
    m
}

/// The right operand of product `dot` if it is a transposed matrix (its last two axes
/// swapped) that two or more products take as their right operand, and `dot`'s result is wider
/// than tall: a recurrent weight's transpose in each backward step of an unrolled sequence.
/// Read through the view, the operand is column-major, the layout `gemm` handles worst for such
/// a result (`runtime::matmul`); materialized, the transpose is copied once and every product
/// reads it row-major: the LSTM benchmark's 31 `[32,512] x [512,128]` products took 16 us each
/// against 11 us for its `[32,128] x [128,512]` ones.
fn shared_transpose(g: &Graph, dot: NodeId) -> Option<NodeId> {
    let rhs = g.operands(dot)[1];
    let Op::Permute(perm) = &g.node(rhs).op else {
        return None;
    };
    let r = perm.len();
    let swaps_last = (0..r).all(|i| match i {
        _ if i + 2 == r => perm[i] == r - 1,
        _ if i + 1 == r => perm[i] == r - 2,
        _ => perm[i] == i,
    });
    let shape = &g.node(dot).ty.shape;
    let wide = shape[r - 2] < shape[r - 1];
    let products = (g.users(rhs).iter())
        .filter(|&&u| g.node(u).op == Op::Dot && g.operands(u)[1] == rhs)
        .count();
    (swaps_last && wide && products >= 2).then_some(rhs)
}

/// A loop kernel planned by an earlier attempt (planning restarts whenever it materializes
/// one more value), reused as long as nothing it computes inline has been materialized since:
/// the same kernel would be built again. Without it, planning a model of a few hundred
/// kernels that restarts some seventy times (ResNet-18's step) took half a second.
struct Planned {
    kernel: LoopKernel,
    /// The values the kernel computes inline: not materialized when it was planned.
    inlined: HashSet<NodeId>,
    /// The value of each buffer the kernel names, by that attempt's buffer numbers.
    nodes: HashMap<BufferId, NodeId>,
}

struct Planner<'g> {
    g: &'g Graph,
    materialized: &'g HashSet<NodeId>,
    /// Each matrix product that adds into a sum's buffer, and that sum (see `accumulate`).
    sums: &'g HashMap<NodeId, NodeId>,
    /// The loop kernels of earlier attempts, by root.
    planned: &'g RefCell<HashMap<NodeId, Planned>>,
    buffer_of: HashMap<NodeId, BufferId>,
    buffers: Vec<Buffer>,
}

impl<'g> Planner<'g> {
    fn new(
        g: &'g Graph,
        materialized: &'g HashSet<NodeId>,
        sums: &'g HashMap<NodeId, NodeId>,
        planned: &'g RefCell<HashMap<NodeId, Planned>>,
    ) -> Planner<'g> {
        Planner {
            g,
            materialized,
            sums,
            planned,
            buffer_of: HashMap::new(),
            buffers: vec![],
        }
    }

    fn plan(mut self) -> Result<Program, Restart> {
        let order: Vec<NodeId> = self
            .g
            .topo_order()
            .into_iter()
            .filter(|id| self.materialized.contains(id))
            .collect();
        for &id in order.iter().filter(|id| !self.sums.contains_key(id)) {
            let node = self.g.node(id);
            let role = match &node.op {
                Op::Input {
                    kind: InputKind::Data,
                    name,
                    ..
                } => Role::Input(name.clone()),
                Op::Input { name, .. } => Role::State(name.clone()),
                Op::Constant(a) if splat(&node.op).is_none() => Role::Constant(a.clone()),
                _ => Role::Temp,
            };
            self.buffer_of.insert(id, self.buffers.len() as BufferId);
            self.buffers.push(Buffer {
                ty: node.ty.clone(),
                role,
                node: id,
            });
        }
        for (&product, sum) in self.sums {
            self.buffer_of.insert(product, self.buffer_of[sum]);
        }
        let sums: HashSet<NodeId> = self.sums.values().copied().collect();
        let mut written = HashSet::new();
        let mut kernels = vec![];
        for &id in &order {
            let b = self.buffer_of[&id];
            if self.buffers[b as usize].role != Role::Temp || sums.contains(&id) {
                continue;
            }
            kernels.push(match &self.g.node(id).op {
                Op::Dot => Kernel::Dot(DotKernel {
                    // The first product of a sum to run writes its buffer, the others add.
                    accumulate: !written.insert(b),
                    ..self.dot(id)?
                }),
                Op::ScatterAdd { axis, .. } => {
                    let ops = self.g.operands(id);
                    Kernel::Scatter(ScatterKernel {
                        indices: self.buffer_of[&ops[0]],
                        updates: self.buffer_of[&ops[1]],
                        out: b,
                        axis: *axis,
                    })
                }
                Op::AllReduce => Kernel::AllReduce(AllReduceKernel {
                    pairs: vec![(self.buffer_of[&self.g.operands(id)[0]], b)],
                }),
                _ => Kernel::Loop(self.loop_kernel(id)?),
            });
        }
        // Outputs and update values live in temporaries of their own: where one is an input,
        // state or constant (`output y = %x`, `update a <- %b`), a copy made before any kernel
        // runs holds it, so in-place updates and the copies of other updates after the run
        // cannot change it, and it can be read after the run.
        let mut snapshots = vec![];
        let mut own = |planner: &mut Self, id: NodeId| {
            let b = planner.buffer_of[&id];
            if planner.buffers[b as usize].role == Role::Temp {
                return b;
            }
            let copy = planner.buffers.len() as BufferId;
            let ty = planner.buffers[b as usize].ty.clone();
            planner.buffers.push(Buffer {
                ty: ty.clone(),
                role: Role::Temp,
                node: id,
            });
            snapshots.push(Kernel::Loop(copy_kernel(b, copy, ty.numel(), ty.dtype)));
            copy
        };
        let mut outputs = vec![];
        for (n, id) in self.g.outputs() {
            outputs.push((n.clone(), own(&mut self, *id)));
        }
        let mut updates = vec![];
        for (n, id) in self.g.updates() {
            let state = self.buffer_of[&self.g.input(n).expect("updates name inputs")];
            updates.push((n.clone(), state, own(&mut self, *id)));
        }
        snapshots.extend(kernels);
        let kernels = snapshots;
        Ok(Program {
            name: self.g.name().to_string(),
            buffers: self.buffers,
            kernels,
            outputs,
            updates,
        })
    }

    /// The loop kernel computing root `root`.
    ///
    /// A root that reshapes a value without a buffer (through any chain of reshapes) loops
    /// over that value's shape instead of its own: the same elements in the same row-major
    /// order, so the stores land where they would, but the indices into the value's operands
    /// need no division by the root's extents. (An im2col matrix, a window view laid out as
    /// rows, is such a root.)
    fn loop_kernel(&self, root: NodeId) -> Result<LoopKernel, Restart> {
        if let Some(p) = self.planned.borrow().get(&root)
            && p.inlined.iter().all(|n| !self.materialized.contains(n))
        {
            let mut kernel = p.kernel.clone();
            map_loop_buffers(&mut kernel, &|b| self.buffer_of[&p.nodes[&b]]);
            return Ok(kernel);
        }
        let mut inlined = HashSet::new();
        let mut source = root;
        while let Op::Reshape(_) = self.g.node(source).op {
            let operand = self.g.operands(source)[0];
            if self.materialized.contains(&operand) {
                break;
            }
            source = operand;
            inlined.insert(source);
        }
        let shape = self.g.node(source).ty.shape.clone();
        let n = shape.len();
        let first = KernelBuilder::build(self, root, source, &shape, n)?;
        // One store stage takes every loop (its loops then merge where they can, see `merge`);
        // with reductions, the outer loops are those their indices depend on.
        let split = if first.stages.len() == 1 {
            0
        } else {
            first.min_level
        };
        inlined.extend(first.inlined.iter().copied());
        let k = if split == n {
            first
        } else {
            KernelBuilder::build(self, root, source, &shape, split)?
        };
        inlined.extend(k.inlined.iter().copied());
        let kernel = k.finish();
        let named = Kernel::Loop(kernel.clone());
        let nodes = (named.reads().into_iter().chain(named.writes()))
            .map(|b| (b, self.buffers[b as usize].node))
            .collect();
        let planned = Planned {
            kernel: kernel.clone(),
            inlined,
            nodes,
        };
        self.planned.borrow_mut().insert(root, planned);
        Ok(kernel)
    }

    /// The matrix product at `id`; its operands must be strided views of buffers.
    fn dot(&self, id: NodeId) -> Result<DotKernel, Restart> {
        let ops = self.g.operands(id);
        let out = self.g.node(id).ty.shape.clone();
        let r = out.len();
        let a_shape = &self.g.node(ops[0]).ty.shape;
        let (m, k, n) = (out[r - 2], a_shape[r - 1], out[r - 1]);
        Ok(DotKernel {
            a: self.matrix(ops[0])?,
            b: self.matrix(ops[1])?,
            out: self.buffer_of[&id],
            batch: out[..r - 2].to_vec(),
            m,
            k,
            n,
            accumulate: false,
            descend: None,
        })
    }

    /// `node` as a strided matrix over a buffer, or a restart materializing what is in the
    /// way: the value under its views, or the padded view among them (so the other views of
    /// that value, such as an unrolled sequence's steps, are strided matrices too).
    fn matrix(&self, node: NodeId) -> Result<Matrix, Restart> {
        let shape = self.g.node(node).ty.shape.clone();
        let extents: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let index: Vec<Index> = (0..shape.len() as Var).map(Index::var).collect();
        let (source, offset) = self.view_source(node, index, &extents).map_err(Restart)?;
        let affine = offset
            .terms
            .iter()
            .all(|(_, a)| matches!(a, super::Atom::Var(_)));
        if !affine {
            return Err(Restart(node));
        }
        let stride = |v: usize| offset.stride_of(v as Var).expect("affine");
        let r = shape.len();
        Ok(Matrix {
            buffer: self.buffer_of[&source],
            offset: offset.constant,
            batch_strides: (0..r - 2).map(stride).collect(),
            row_stride: stride(r - 2),
            col_stride: stride(r - 1),
        })
    }

    /// Follows views from `node` at `index` down to a materialized node: that node and the
    /// flat offset, or the node in the way (not a view, or a view with guards).
    fn view_source(
        &self,
        node: NodeId,
        index: Vec<Index>,
        extents: &[i64],
    ) -> Result<(NodeId, Index), NodeId> {
        if self.materialized.contains(&node) {
            return Ok((node, flatten(&index, &self.g.node(node).ty.shape)));
        }
        let operand = *self.g.operands(node).first().ok_or(node)?;
        let (inner, guards) = view_index(self.g, node, &index, extents).ok_or(node)?;
        if !guards.is_empty() {
            return Err(node);
        }
        self.view_source(operand, inner, extents)
    }
}

/// Where an expression is being built: the variables of the stage around it, and the input of
/// the reduction that stage computes (`None` in the final store stage).
#[derive(Clone)]
struct Scope {
    stage_vars: Vec<Var>,
    reducing: Option<NodeId>,
}

struct KernelBuilder<'p, 'g> {
    planner: &'p Planner<'g>,
    root: NodeId,
    extents: Vec<i64>,
    outer: Vec<Var>,
    exprs: Vec<(Expr, DType)>,
    memo: HashMap<(NodeId, Vec<Index>, Vec<Cond>), ExprId>,
    reductions: HashMap<(NodeId, Vec<Index>, Vec<Cond>), ExprId>,
    consts: HashMap<(u64, DType), ExprId>,
    stages: Vec<Stage>,
    scope: Scope,
    /// The shallowest outer depth at which some reduction's index is invariant.
    min_level: usize,
    /// The values computed inline (see [`Planned`]).
    inlined: HashSet<NodeId>,
}

impl<'p, 'g> KernelBuilder<'p, 'g> {
    /// Builds the kernel storing `source` (`root` itself, or a value `root` only reshapes) of
    /// shape `shape` into `root`'s buffer, with its first `split` axes as outer loops.
    fn build(
        planner: &'p Planner<'g>,
        root: NodeId,
        source: NodeId,
        shape: &[usize],
        split: usize,
    ) -> Result<Self, Restart> {
        let extents: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let vars: Vec<Var> = (0..shape.len() as Var).collect();
        let mut b = KernelBuilder {
            planner,
            root,
            extents,
            outer: vars[..split].to_vec(),
            exprs: vec![],
            memo: HashMap::new(),
            reductions: HashMap::new(),
            consts: HashMap::new(),
            stages: vec![],
            scope: Scope {
                stage_vars: vars[split..].to_vec(),
                reducing: None,
            },
            min_level: split,
            inlined: HashSet::new(),
        };
        let index: Vec<Index> = vars.iter().map(|&v| Index::var(v)).collect();
        let value = b.value(source, &index, &[])?;
        let store = Store {
            buffer: planner.buffer_of[&root],
            offset: flatten(&index, shape),
            value,
        };
        b.stages.push(Stage {
            vars: vars[split..].to_vec(),
            kind: StageKind::Store(vec![store]),
        });
        Ok(b)
    }

    fn finish(self) -> LoopKernel {
        LoopKernel {
            extents: self.extents,
            outer: self.outer,
            stages: self.stages,
            exprs: self.exprs,
            parallel: None,
        }
    }

    fn push(&mut self, e: Expr, dtype: DType) -> ExprId {
        self.exprs.push((e, dtype));
        (self.exprs.len() - 1) as ExprId
    }

    fn constant(&mut self, v: f64, dtype: DType) -> ExprId {
        if let Some(&id) = self.consts.get(&(v.to_bits(), dtype)) {
            return id;
        }
        let id = self.push(Expr::Const(v), dtype);
        self.consts.insert((v.to_bits(), dtype), id);
        id
    }

    fn apply(&mut self, op: Op, args: &[ExprId], dtype: DType) -> ExprId {
        self.push(
            Expr::Apply {
                op,
                args: args.into(),
            },
            dtype,
        )
    }

    /// The expression for `node`'s element at `index`, read under `guards`.
    fn value(&mut self, node: NodeId, index: &[Index], guards: &[Cond]) -> Result<ExprId, Restart> {
        let key = (node, index.to_vec(), guards.to_vec());
        if let Some(&id) = self.memo.get(&key) {
            return Ok(id);
        }
        let id = self.compute(node, index, guards)?;
        self.memo.insert(key, id);
        Ok(id)
    }

    fn compute(
        &mut self,
        node: NodeId,
        index: &[Index],
        guards: &[Cond],
    ) -> Result<ExprId, Restart> {
        let g = self.planner.g;
        let n = g.node(node);
        let dtype = n.ty.dtype;
        let inline = node == self.root || !self.planner.materialized.contains(&node);
        if node != self.root && inline {
            self.inlined.insert(node);
        }
        if !inline {
            if n.ty.numel() == 0 {
                // Only read where a guard fails (a concat or pad operand with no elements),
                // so the value is never used; a load would read past an empty buffer.
                return Ok(self.constant(0.0, dtype));
            }
            let load = Expr::Load {
                buffer: self.planner.buffer_of[&node],
                offset: flatten(index, &n.ty.shape),
                guards: guards.to_vec(),
            };
            return Ok(self.push(load, dtype));
        }
        let ops = g.operands(node);
        match &n.op {
            Op::Constant(_) => Ok(self.constant(
                splat(&n.op).expect("non-splat constants are buffers"),
                dtype,
            )),
            Op::Iota { axis, .. } => {
                let i = self.push(Expr::Index(index[*axis].clone()), DType::I32);
                Ok(if dtype == DType::I32 {
                    i
                } else {
                    self.apply(Op::Cast(dtype), &[i], dtype)
                })
            }
            Op::Random { stream, .. } => {
                let seed = self.value(ops[0], &[], guards)?;
                let at = flatten(index, &n.ty.shape);
                Ok(self.push(
                    Expr::Random {
                        stream: *stream,
                        seed,
                        index: at,
                    },
                    dtype,
                ))
            }
            // Only autodiff tells it from its operand.
            Op::StopGradient => self.value(ops[0], index, guards),
            Op::Unary(_) | Op::Binary(_) | Op::Compare(_) | Op::Select | Op::Cast(_) => {
                let args = ops
                    .iter()
                    .map(|&o| self.value(o, index, guards))
                    .collect::<Result<SmallVec<[ExprId; 3]>, _>>()?;
                Ok(self.apply(n.op.clone(), &args, dtype))
            }
            Op::Pad { value, .. } => {
                let Some((inner, conds)) = view_index(g, node, index, &self.extents) else {
                    return Ok(self.constant(*value, dtype));
                };
                if conds.is_empty() {
                    return self.value(ops[0], &inner, guards);
                }
                let all: Vec<Cond> = guards.iter().chain(&conds).cloned().collect();
                let v = self.value(ops[0], &inner, &all)?;
                let test = self.push(Expr::Test(conds), DType::Bool);
                let fill = self.constant(*value, dtype);
                Ok(self.apply(Op::Select, &[test, v, fill], dtype))
            }
            Op::Reshape(_)
            | Op::Permute(_)
            | Op::Broadcast(_)
            | Op::Slice { .. }
            | Op::Windows { .. } => {
                let (inner, _) = view_index(g, node, index, &self.extents).expect("a view");
                self.value(ops[0], &inner, guards)
            }
            Op::Concat { axis } => self.concat(node, *axis, index, guards),
            Op::Gather { axis } => {
                let idx_rank = g.node(ops[1]).ty.rank();
                let idx = self.value(ops[1], &index[*axis..axis + idx_rank], guards)?;
                let extent = g.node(ops[0]).ty.shape[*axis] as i64;
                let data = Index {
                    terms: vec![(1, super::Atom::Data { expr: idx, extent })],
                    constant: 0,
                };
                let mut inner: Vec<Index> = index[..*axis].to_vec();
                inner.push(data);
                inner.extend_from_slice(&index[axis + idx_rank..]);
                self.value(ops[0], &inner, guards)
            }
            Op::Reduce { op, axes } => self.reduction(node, *op, axes, index, guards),
            Op::Input { .. } | Op::Dot | Op::ScatterAdd { .. } | Op::AllReduce => {
                unreachable!("{} is always materialized", n.op.mnemonic())
            }
        }
    }

    fn concat(
        &mut self,
        node: NodeId,
        axis: usize,
        index: &[Index],
        guards: &[Cond],
    ) -> Result<ExprId, Restart> {
        let g = self.planner.g;
        let ops = g.operands(node);
        let dtype = g.node(node).ty.dtype;
        let mut parts = vec![];
        let mut offset = 0i64;
        for &o in &ops {
            let len = g.node(o).ty.shape[axis] as i64;
            let cond = Cond::Range {
                index: index[axis].clone(),
                lo: offset,
                hi: offset + len,
            };
            let mut inner = index.to_vec();
            inner[axis] = index[axis].offset(-offset);
            offset += len;
            if let Some(conds) = simplify(vec![cond], &self.extents) {
                parts.push((o, inner, conds));
            }
        }
        let Some((o, inner, conds)) = parts.pop() else {
            // No operand is ever read: the loops around are empty.
            return Ok(self.constant(0.0, dtype));
        };
        let all: Vec<Cond> = guards.iter().chain(&conds).cloned().collect();
        let mut acc = self.value(o, &inner, &all)?;
        while let Some((o, inner, conds)) = parts.pop() {
            let all: Vec<Cond> = guards.iter().chain(&conds).cloned().collect();
            let v = self.value(o, &inner, &all)?;
            let test = self.push(Expr::Test(conds), DType::Bool);
            acc = self.apply(Op::Select, &[test, v, acc], dtype);
        }
        Ok(acc)
    }

    /// A maximum over at most [`INLINE_MAX`] elements (a pooling window, the position of a
    /// window's maximum) as an expression, `max(max(x0, x1), ..)` in row-major order, so the
    /// kernel needing it has no stage for it and can vectorize across the windows. Exact: the
    /// interpreter folds a maximum the same way, from its first element. `None` for a larger
    /// (or empty) reduction.
    fn inline_max(
        &mut self,
        node: NodeId,
        axes: &[usize],
        index: &[Index],
        guards: &[Cond],
    ) -> Result<Option<ExprId>, Restart> {
        let g = self.planner.g;
        let input = g.operands(node)[0];
        let in_shape = g.node(input).ty.shape.clone();
        let points: usize = axes.iter().map(|&a| in_shape[a]).product();
        if points == 0 || points > INLINE_MAX {
            return Ok(None);
        }
        let dtype = g.node(node).ty.dtype;
        let mut point = vec![0usize; axes.len()];
        let mut acc: Option<ExprId> = None;
        loop {
            let mut kept = index.iter();
            let mut reduced = point.iter();
            let at: Vec<Index> = (0..in_shape.len())
                .map(|i| match axes.contains(&i) {
                    true => Index::constant(*reduced.next().expect("one per axis") as i64),
                    false => kept.next().expect("one index per kept axis").clone(),
                })
                .collect();
            let x = self.value(input, &at, guards)?;
            acc = Some(match acc {
                None => x,
                Some(a) => self.apply(Op::Binary(crate::op::BinaryOp::Max), &[a, x], dtype),
            });
            // The next point, the last axis fastest.
            let mut d = axes.len();
            loop {
                if d == 0 {
                    return Ok(acc);
                }
                d -= 1;
                point[d] += 1;
                if point[d] < in_shape[axes[d]] {
                    break;
                }
                point[d] = 0;
            }
        }
    }

    /// A reduction needed at `index`: a stage computed once per outer index.
    fn reduction(
        &mut self,
        node: NodeId,
        op: crate::op::ReduceOp,
        axes: &[usize],
        index: &[Index],
        guards: &[Cond],
    ) -> Result<ExprId, Restart> {
        if op == crate::op::ReduceOp::Max
            && let Some(id) = self.inline_max(node, axes, index, guards)?
        {
            return Ok(id);
        }
        let uses_stage_var = |i: &Index| self.scope.stage_vars.iter().any(|&v| i.uses(v));
        let guarded = guards.iter().any(|c| uses_stage_var(super::cond_index(c)));
        if guarded || index.iter().any(uses_stage_var) || index.iter().any(Index::has_data) {
            return Err(Restart(self.scope.reducing.unwrap_or(node)));
        }
        let key = (node, index.to_vec(), guards.to_vec());
        if let Some(&id) = self.reductions.get(&key) {
            return Ok(id);
        }
        let level = index
            .iter()
            .filter_map(Index::max_var)
            .map(|v| self.outer.iter().position(|&o| o == v).map_or(0, |p| p + 1))
            .max()
            .unwrap_or(0);
        let g = self.planner.g;
        let input = g.operands(node)[0];
        let in_shape = g.node(input).ty.shape.clone();
        if self.scope.reducing.is_none() {
            // Only reductions the store stage needs decide the split: those inside another
            // reduction's body run once per outer index wherever the split is.
            self.min_level = self.min_level.min(level);
            // A reduction runs once per iteration of the outer loops down to its level; where
            // its index does not use some of them it computes the same value again each time
            // (a batch norm's per-channel sum, inside a kernel over batch and channel): it gets
            // a buffer instead, when the repeats would cost more than a small kernel.
            let repeats: i64 = (self.outer[..level].iter())
                .filter(|&&o| !index.iter().any(|i| i.uses(o)))
                .map(|&o| self.extents[o as usize])
                .product();
            let points: i64 = axes.iter().map(|&a| in_shape[a] as i64).product();
            if (repeats - 1).saturating_mul(points) >= REPEATED_REDUCTION {
                return Err(Restart(node));
            }
        }
        let mut vars = vec![];
        let mut kept = index.iter();
        let body_index: Vec<Index> = (0..in_shape.len())
            .map(|i| {
                if axes.contains(&i) {
                    let v = self.extents.len() as Var;
                    self.extents.push(in_shape[i] as i64);
                    vars.push(v);
                    Index::var(v)
                } else {
                    kept.next().expect("one index per kept axis").clone()
                }
            })
            .collect();
        let outer_scope = std::mem::replace(
            &mut self.scope,
            Scope {
                stage_vars: vars.clone(),
                reducing: Some(input),
            },
        );
        let body = self.value(input, &body_index, guards);
        self.scope = outer_scope;
        let body = body?;
        self.stages.push(Stage {
            vars,
            kind: StageKind::Reduce { op, value: body },
        });
        let id = self.push(
            Expr::Reduced((self.stages.len() - 1) as u32),
            g.node(node).ty.dtype,
        );
        self.reductions.insert(key, id);
        Ok(id)
    }
}
