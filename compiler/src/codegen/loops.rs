//! Loop nests: a kernel's outer loops, then each stage's loops, the innermost one vectorized
//! (4 lanes of f32/i32, 2 of f64) with a scalar tail when every access in it allows.

use super::math::MathTarget;
use crate::kernel::{
    Atom, Buffer, BufferId, Cond, Expr, ExprId, Index, LoopKernel, Role, StageKind, Var,
};
use crate::op::{BinaryOp, Op, ReduceOp};
use crate::types::DType;
use cranelift_codegen::ir::{
    BlockArg, Function, InstBuilder, MemFlagsData, Value, condcodes::IntCC, types,
};
use cranelift_codegen::isa::TargetFrontendConfig;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Emits the body of `k` into `func` (whose signature is `(buffers, lo, hi)`).
pub(super) fn emit(
    k: &LoopKernel,
    buffers: &[Buffer],
    func: &mut Function,
    fctx: &mut FunctionBuilderContext,
    target: MathTarget,
    config: TargetFrontendConfig,
) {
    let mut b = FunctionBuilder::new(func, fctx);
    let entry = b.create_block();
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    b.seal_block(entry);
    let params = b.block_params(entry).to_vec();
    let written: HashSet<BufferId> = k
        .stages
        .iter()
        .flat_map(|s| match &s.kind {
            StageKind::Store(st) => st.iter().map(|x| x.buffer).collect(),
            StageKind::Reduce { .. } => vec![],
        })
        .collect();
    let mut used: BTreeSet<BufferId> = written.iter().copied().collect();
    used.extend(k.exprs.iter().filter_map(|(e, _)| match e {
        Expr::Load { buffer, .. } => Some(*buffer),
        _ => None,
    }));
    let table_flags = MemFlagsData::trusted().with_readonly();
    let bases = used
        .into_iter()
        .map(|id| {
            (
                id,
                b.ins()
                    .load(types::I64, table_flags, params[0], (id * 8) as i32),
            )
        })
        .collect();
    let mut g = Gen {
        k,
        buffers,
        b,
        target,
        lo: params[1],
        hi: params[2],
        bases,
        written,
        vector_var: None,
        loop_vars: vec![None; k.extents.len()],
        scopes: vec![HashMap::new()],
        reduced: vec![None; k.stages.len()],
        uses: uses(k),
    };
    g.outer(0);
    g.b.ins().return_(&[]);
    g.b.seal_all_blocks();
    g.b.finalize(config);
}

/// The loop variables each expression depends on (through indices and operands).
pub(super) fn uses(k: &LoopKernel) -> Vec<BTreeSet<Var>> {
    fn index_vars(i: &Index, out: &mut BTreeSet<Var>, per_expr: &[BTreeSet<Var>]) {
        for (_, a) in &i.terms {
            match a {
                Atom::Var(v) => {
                    out.insert(*v);
                }
                Atom::Div(inner, _) | Atom::Mod(inner, _) => index_vars(inner, out, per_expr),
                Atom::Data { expr, .. } => out.extend(per_expr[*expr as usize].iter().copied()),
            }
        }
    }
    let mut per: Vec<BTreeSet<Var>> = Vec::with_capacity(k.exprs.len());
    for (e, _) in &k.exprs {
        let mut s = BTreeSet::new();
        match e {
            Expr::Load { offset, guards, .. } => {
                index_vars(offset, &mut s, &per);
                for c in guards {
                    index_vars(crate::kernel::cond_index(c), &mut s, &per);
                }
            }
            Expr::Index(i) => index_vars(i, &mut s, &per),
            Expr::Test(conds) => conds
                .iter()
                .for_each(|c| index_vars(crate::kernel::cond_index(c), &mut s, &per)),
            Expr::Random { seed, index, .. } => {
                s.extend(per[*seed as usize].iter().copied());
                index_vars(index, &mut s, &per);
            }
            Expr::Apply { args, .. } => args
                .iter()
                .for_each(|a| s.extend(per[*a as usize].iter().copied())),
            Expr::Const(_) | Expr::Reduced(_) => {}
        }
        per.push(s);
    }
    per
}

/// Vector accumulators of an unrolled reduction loop.
const ACCUMULATORS: usize = 4;

/// Reduce stages of at most this many points (a 2x2 or 3x3 pooling window) are unrolled into
/// straight-line code: their loops would cost more than their bodies.
const UNROLL: i64 = 16;

/// A reduce stage being emitted: how it combines, the expression reduced, its element type,
/// and the scalar accumulator.
type Reduction = (ReduceOp, ExprId, DType, Variable);

/// Code generation state for one kernel.
pub(super) struct Gen<'a, 'f> {
    pub(super) k: &'a LoopKernel,
    /// The program's buffers.
    pub(super) buffers: &'a [Buffer],
    pub(super) b: FunctionBuilder<'f>,
    pub(super) target: MathTarget,
    lo: Value,
    hi: Value,
    bases: HashMap<BufferId, Value>,
    /// Buffers some store of this kernel writes: their loads are not marked read-only.
    pub(super) written: HashSet<BufferId>,
    /// The loop variable of the vector loop being emitted, if any.
    pub(super) vector_var: Option<Var>,
    loop_vars: Vec<Option<Variable>>,
    /// Values already computed, per open loop (innermost last), by expression and lanes.
    scopes: Vec<HashMap<(ExprId, u8), Value>>,
    /// The accumulator of each finished reduce stage.
    reduced: Vec<Option<Variable>>,
    /// The loop variables each expression depends on.
    pub(super) uses: Vec<BTreeSet<Var>>,
}

impl Gen<'_, '_> {
    /// The address of buffer `id` (loaded from the table in the entry block).
    pub(super) fn base(&self, id: BufferId) -> Value {
        self.bases[&id]
    }

    /// The current value of loop variable `v` (an `i64`).
    pub(super) fn var(&mut self, v: Var) -> Value {
        let var = self.loop_vars[v as usize].expect("the loop of every used variable is open");
        self.b.use_var(var)
    }

    /// Runs `f` with the vector variable `v` advanced to lane `lane` (and no vector variable).
    pub(super) fn at_lane<T>(&mut self, v: Var, lane: u8, f: impl FnOnce(&mut Self) -> T) -> T {
        let saved = self.loop_vars[v as usize];
        let base = self.var(v);
        let at = self.b.ins().iadd_imm_s(base, lane as i64);
        let shifted = self.b.declare_var(types::I64);
        self.b.def_var(shifted, at);
        self.loop_vars[v as usize] = Some(shifted);
        let vector = self.vector_var.take();
        let out = f(self);
        self.vector_var = vector;
        self.loop_vars[v as usize] = saved;
        out
    }

    pub(super) fn cached(&self, e: ExprId, lanes: u8) -> Option<Value> {
        self.scopes
            .iter()
            .rev()
            .find_map(|s| s.get(&(e, lanes)).copied())
    }

    pub(super) fn remember(&mut self, e: ExprId, lanes: u8, v: Value) {
        self.scopes
            .last_mut()
            .expect("a scope")
            .insert((e, lanes), v);
    }

    /// The accumulator value of finished reduce stage `s`.
    pub(super) fn reduced_value(&mut self, s: u32) -> Value {
        let var = self.reduced[s as usize].expect("stages finish before their results are used");
        self.b.use_var(var)
    }

    /// Opens the outer loops from depth `d`, then runs the stages.
    fn outer(&mut self, d: usize) {
        if d == self.k.outer.len() {
            for s in 0..self.k.stages.len() {
                self.stage(s);
            }
            return;
        }
        let v = self.k.outer[d];
        let (from, to) = self.bounds(v);
        self.counted_loop(v, from, to, 1, &mut |g| g.outer(d + 1));
    }

    /// The range of loop `v`: the caller's `lo..hi` for the parallel loop, else the extent.
    fn bounds(&mut self, v: Var) -> (Value, Value) {
        if self.k.parallel == Some(v) {
            (self.lo, self.hi)
        } else {
            let n = self.k.extents[v as usize];
            (
                self.b.ins().iconst(types::I64, 0),
                self.b.ins().iconst(types::I64, n),
            )
        }
    }

    /// `for v in (from..to).step_by(step) { body }`, leaving `v` at the first value not run
    /// (so a scalar tail can continue from it).
    fn counted_loop(
        &mut self,
        v: Var,
        from: Value,
        to: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self),
    ) {
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, from);
        self.loop_from(v, var, to, step, body);
    }

    fn loop_from(
        &mut self,
        v: Var,
        var: Variable,
        to: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self),
    ) {
        let header = self.b.create_block();
        let inner = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[] as &[BlockArg]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, step);
        let go = self.b.ins().icmp(IntCC::SignedLessThanOrEqual, next, to);
        let go = if step == 1 {
            self.b.ins().icmp(IntCC::SignedLessThan, i, to)
        } else {
            go
        };
        self.b.ins().brif(go, inner, &[], exit, &[]);
        self.b.switch_to_block(inner);
        let saved = self.loop_vars[v as usize].replace(var);
        self.scopes.push(HashMap::new());
        body(self);
        self.scopes.pop();
        self.loop_vars[v as usize] = saved.or(Some(var));
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[] as &[BlockArg]);
        self.b.switch_to_block(exit);
    }

    /// Every expression stage `s` needs, in order.
    fn needed(&self, s: usize) -> Vec<ExprId> {
        self.k.needed(s)
    }

    /// The lanes stage `s`'s innermost loop runs with.
    fn lanes(&self, s: usize, needed: &[ExprId]) -> u8 {
        lanes(self.k, self.buffers, &self.uses, s, needed)
    }

    /// Emits stage `s` inside the current outer iteration.
    fn stage(&mut self, s: usize) {
        let needed = self.needed(s);
        let lanes = self.lanes(s, &needed);
        let vars = self.k.stages[s].vars.clone();
        match self.k.stages[s].kind.clone() {
            StageKind::Reduce { op, value } => {
                let dtype = self.k.exprs[value as usize].1;
                let acc = self.b.declare_var(super::ir_type(dtype, 1));
                let init = self.identity(op, dtype, 1);
                self.b.def_var(acc, init);
                if unrolls(self.k, s) {
                    self.unrolled(&vars, &needed, &mut |g| {
                        let x = g.value(value, 1);
                        let a = g.b.use_var(acc);
                        let r = g.combine(op, dtype, a, x);
                        g.b.def_var(acc, r);
                    });
                    self.reduced[s] = Some(acc);
                    return;
                }
                self.nest(
                    &vars,
                    0,
                    &needed,
                    lanes,
                    &mut |g, l| {
                        if l == 1 {
                            let x = g.value(value, 1);
                            let a = g.b.use_var(acc);
                            let r = g.combine(op, dtype, a, x);
                            g.b.def_var(acc, r);
                        }
                    },
                    Some((op, value, dtype, acc)),
                );
                self.reduced[s] = Some(acc);
            }
            StageKind::Store(stores) => {
                self.nest(
                    &vars,
                    0,
                    &needed,
                    lanes,
                    &mut |g, l| {
                        // Every value of the point before any store: a value may read (in
                        // place) an element another store of the point writes.
                        let values: Vec<Value> =
                            stores.iter().map(|st| g.value(st.value, l)).collect();
                        for (st, x) in stores.iter().zip(values) {
                            let addr = g.address(st.buffer, &st.offset, dtype_of(g, st.value));
                            let flags = if l == 1 {
                                MemFlagsData::trusted()
                            } else {
                                MemFlagsData::new().with_notrap()
                            };
                            g.b.ins().store(flags, x, addr, 0);
                        }
                    },
                    None,
                );
            }
        }
    }

    /// Runs `body` once for every point of the loops `vars`, row-major, each loop variable a
    /// constant, after hoisting what none of them varies.
    fn unrolled(&mut self, vars: &[Var], needed: &[ExprId], body: &mut dyn FnMut(&mut Self)) {
        self.hoist(vars, 0, needed);
        let saved: Vec<Option<Variable>> =
            vars.iter().map(|&v| self.loop_vars[v as usize]).collect();
        let mut point = vec![0i64; vars.len()];
        loop {
            for (&v, &i) in vars.iter().zip(&point) {
                let var = self.b.declare_var(types::I64);
                let c = self.b.ins().iconst(types::I64, i);
                self.b.def_var(var, c);
                self.loop_vars[v as usize] = Some(var);
            }
            self.scopes.push(HashMap::new());
            body(self);
            self.scopes.pop();
            // The next point, the last loop fastest.
            let mut d = vars.len();
            loop {
                if d == 0 {
                    for (&v, &old) in vars.iter().zip(&saved) {
                        self.loop_vars[v as usize] = old;
                    }
                    return;
                }
                d -= 1;
                point[d] += 1;
                if point[d] < self.k.extents[vars[d] as usize] {
                    break;
                }
                point[d] = 0;
            }
        }
    }

    /// Opens the stage loops from depth `d`; at the innermost point runs `action` with the
    /// lanes in use. A vectorized reduction keeps a vector accumulator and folds it into the
    /// scalar one after the vector loop.
    fn nest(
        &mut self,
        vars: &[Var],
        d: usize,
        needed: &[ExprId],
        lanes: u8,
        action: &mut dyn FnMut(&mut Self, u8),
        reduce: Option<Reduction>,
    ) {
        self.hoist(vars, d, needed);
        if d == vars.len() {
            action(self, 1);
            return;
        }
        let v = vars[d];
        let (from, to) = self.bounds(v);
        if d + 1 < vars.len() || lanes == 1 {
            self.counted_loop(v, from, to, 1, &mut |g| {
                g.nest(vars, d + 1, needed, lanes, action, reduce)
            });
            return;
        }
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, from);
        match reduce {
            Some(r) => self.vector_reduction(v, var, to, lanes, r),
            None => self.loop_from(v, var, to, lanes as i64, &mut |g| {
                g.vector_var = Some(v);
                action(g, lanes);
                g.vector_var = None;
            }),
        }
        self.loop_from(v, var, to, 1, &mut |g| {
            g.nest(vars, d + 1, needed, 1, action, reduce)
        });
    }

    /// The vector part of a reduction over loop `v` (counter `var`, up to `to`), folded into
    /// the scalar accumulator. [`ACCUMULATORS`] vectors per iteration, each into its own
    /// accumulator, so that the additions do not wait on one another; then single vectors;
    /// the accumulators are combined pairwise, then their lanes in order.
    fn vector_reduction(&mut self, v: Var, var: Variable, to: Value, lanes: u8, r: Reduction) {
        let (op, value, dtype, acc) = r;
        let accs: Vec<Variable> = (0..ACCUMULATORS)
            .map(|_| {
                let a = self.b.declare_var(super::ir_type(dtype, lanes));
                let init = self.identity(op, dtype, lanes);
                self.b.def_var(a, init);
                a
            })
            .collect();
        let step = lanes as i64 * ACCUMULATORS as i64;
        self.loop_from(v, var, to, step, &mut |g| {
            g.vector_var = Some(v);
            for (j, &a) in accs.iter().enumerate() {
                // Copy j reads the vector j*lanes elements further on.
                let shifted = g.b.declare_var(types::I64);
                let base = g.b.use_var(var);
                let at = g.b.ins().iadd_imm_s(base, j as i64 * lanes as i64);
                g.b.def_var(shifted, at);
                g.loop_vars[v as usize] = Some(shifted);
                g.scopes.push(HashMap::new());
                let x = g.value(value, lanes);
                g.scopes.pop();
                let cur = g.b.use_var(a);
                let next = g.combine(op, dtype, cur, x);
                g.b.def_var(a, next);
            }
            g.loop_vars[v as usize] = Some(var);
            g.vector_var = None;
        });
        self.loop_from(v, var, to, lanes as i64, &mut |g| {
            g.vector_var = Some(v);
            let x = g.value(value, lanes);
            let cur = g.b.use_var(accs[0]);
            let next = g.combine(op, dtype, cur, x);
            g.b.def_var(accs[0], next);
            g.vector_var = None;
        });
        let mut parts: Vec<Value> = accs.iter().map(|&a| self.b.use_var(a)).collect();
        while parts.len() > 1 {
            let right = parts.split_off(parts.len() / 2);
            parts = parts
                .into_iter()
                .zip(right)
                .map(|(l, r)| self.combine(op, dtype, l, r))
                .collect();
        }
        let mut a = self.b.use_var(acc);
        for lane in 0..lanes {
            let x = self.b.ins().extractlane(parts[0], lane);
            a = self.combine(op, dtype, a, x);
        }
        self.b.def_var(acc, a);
    }

    /// Computes, in the current scope, the needed expressions that use none of `vars[d..]`:
    /// they are invariant in the loops about to open.
    fn hoist(&mut self, vars: &[Var], d: usize, needed: &[ExprId]) {
        for &e in needed {
            let inner = vars[d..].iter().any(|v| self.uses[e as usize].contains(v));
            if !inner && self.cached(e, 1).is_none() {
                let v = self.value(e, 1);
                self.remember(e, 1, v);
            }
        }
    }

    /// The identity of a reduction, splat to `lanes`: -0.0 for float sums (so the sum of one
    /// -0.0 stays -0.0), 0 for integer sums, -inf or `i32::MIN` for max.
    fn identity(&mut self, op: ReduceOp, dtype: DType, lanes: u8) -> Value {
        let v = match (op, dtype) {
            (ReduceOp::Sum, DType::I32) => 0.0,
            (ReduceOp::Sum, _) => -0.0,
            (ReduceOp::Max, DType::I32) => i32::MIN as f64,
            (ReduceOp::Max, _) => f64::NEG_INFINITY,
        };
        let s = self.constant(v, dtype);
        self.splat(s, dtype, lanes)
    }

    /// One step of a reduction.
    fn combine(&mut self, op: ReduceOp, dtype: DType, acc: Value, x: Value) -> Value {
        match (op, dtype) {
            (ReduceOp::Sum, DType::I32) => self.b.ins().iadd(acc, x),
            (ReduceOp::Sum, _) => self.b.ins().fadd(acc, x),
            (ReduceOp::Max, DType::I32) => self.b.ins().smax(acc, x),
            (ReduceOp::Max, _) => super::math::max(&mut self.b, acc, x),
        }
    }
}

fn dtype_of(g: &Gen<'_, '_>, e: ExprId) -> DType {
    g.k.exprs[e as usize].1
}

/// True if stage `s` of `k` is a reduction unrolled into straight-line code (at most
/// [`UNROLL`] points, at least one).
pub(super) fn unrolls(k: &LoopKernel, s: usize) -> bool {
    let stage = &k.stages[s];
    let points: i64 = stage.vars.iter().map(|&v| k.extents[v as usize]).product();
    matches!(stage.kind, StageKind::Reduce { .. }) && (1..=UNROLL).contains(&points)
}

/// True if the index condition `c` tests uses loop variable `v`.
fn c_uses(c: &Cond, v: Var) -> bool {
    crate::kernel::cond_index(c).uses(v)
}

/// The lanes stage `s`'s innermost loop runs with: 4 (f32, i32) or 2 (f64) when every access
/// in it is unit stride, invariant, or of stride 2 in a buffer of the arena (a pooling window's
/// step: two vector loads and a shuffle, reading one element past the last lane's, inside the
/// arena's slack), and every operation has a vector form; else 1.
pub(super) fn lanes(
    k: &LoopKernel,
    buffers: &[Buffer],
    uses: &[BTreeSet<Var>],
    s: usize,
    needed: &[ExprId],
) -> u8 {
    let stage = &k.stages[s];
    let Some(&v) = stage.vars.last() else {
        return 1;
    };
    let mut lanes = None;
    for &e in needed.iter().filter(|&&e| uses[e as usize].contains(&v)) {
        let (expr, dtype) = &k.exprs[e as usize];
        let want = match dtype {
            DType::F64 => 2,
            _ => 4,
        };
        // A condition varying across lanes must be a range on an index affine in `v`: then
        // the lanes where it holds are consecutive, and a lane's index is the first one's
        // plus the lane times a stride.
        let lane_cond = |c: &Cond| {
            let i = crate::kernel::cond_index(c);
            !i.uses(v)
                || (matches!(c, Cond::Range { .. }) && i.stride_of(v).is_some() && !i.has_data())
        };
        let ok = match expr {
            Expr::Load {
                buffer,
                offset,
                guards,
            } => {
                let in_arena = !matches!(buffers[*buffer as usize].role, Role::Input(_));
                let ok = match offset.stride_of(v) {
                    Some(0 | 1) => guards.iter().all(lane_cond),
                    Some(2) => in_arena && guards.iter().all(|c| !c_uses(c, v)),
                    _ => false,
                };
                *dtype != DType::Bool && !offset.has_data() && ok
            }
            Expr::Index(i) => i.stride_of(v).is_some() && !i.has_data(),
            Expr::Test(conds) => conds.iter().all(lane_cond),
            Expr::Random { index, .. } => {
                *dtype == DType::F32 && index.stride_of(v).is_some() && !index.has_data()
            }
            Expr::Apply { op, args } => match op {
                Op::Binary(BinaryOp::Pow) => false,
                Op::Binary(BinaryOp::Div) => *dtype != DType::I32,
                Op::Cast(_) => {
                    let from = k.exprs[args[0] as usize].1;
                    (from == DType::F64) == (*dtype == DType::F64)
                }
                _ => true,
            },
            Expr::Const(_) | Expr::Reduced(_) => true,
        };
        if !ok || lanes.is_some_and(|l| l != want) {
            return 1;
        }
        lanes = Some(want);
    }
    if let StageKind::Store(st) = &stage.kind {
        for x in st {
            let dtype = k.exprs[x.value as usize].1;
            let want = if dtype == DType::F64 { 2 } else { 4 };
            let unit = x.offset.stride_of(v) == Some(1) && !x.offset.has_data();
            if !unit || dtype == DType::Bool || lanes.is_some_and(|l| l != want) {
                return 1;
            }
            lanes = Some(want);
        }
    }
    lanes.unwrap_or(1)
}
