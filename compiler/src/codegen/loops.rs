//! Loop nests: a kernel's outer loops, then each stage's loops. One loop of each stage runs in
//! vector lanes (4 of f32/i32, 2 of f64) with a scalar tail when every access allows ([`plan`]):
//! the innermost outer loop, whose lanes carry every stage varying with it (a column sum's
//! lanes are four columns, each summed by its own lane), or else the stage's innermost loop.

use super::math::{MathTarget, MaxParts};
use crate::kernel::{
    Atom, Buffer, BufferId, Cond, Expr, ExprId, Index, LoopKernel, StageKind, Var,
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
    let uses = uses(k);
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
        point: 1,
        plan: plan(k, &uses),
        loop_vars: vec![None; k.extents.len()],
        shifts: vec![0; k.extents.len()],
        scopes: vec![HashMap::new()],
        reduced: vec![None; k.stages.len()],
        uses,
    };
    g.outer(0);
    g.b.ins().return_(&[]);
    g.b.seal_all_blocks();
    g.b.finalize(config);
}

/// The loop variables each expression depends on (through indices and operands); a reduce
/// stage's result depends on the outer variables its value depends on.
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
            Expr::Reduced(stage) => {
                let StageKind::Reduce { value, .. } = k.stages[*stage as usize].kind else {
                    unreachable!("a result of a reduce stage")
                };
                let value = per
                    .get(value as usize)
                    .expect("a stage's value is numbered before its result");
                s.extend(value.iter().filter(|v| k.outer.contains(v)));
            }
            Expr::Const(_) => {}
        }
        per.push(s);
    }
    per
}

/// What the innermost point of a stage's loops does.
#[derive(Clone, Copy)]
enum Inner {
    /// Combines a value into a reduction.
    Reduce(Reduction),
    /// Stores values; with `overlap`, the vector loop's tail may be a vector that stores some
    /// points again ([`overlapping_tail`]).
    Store { overlap: bool },
}

/// True if store stage `s` of `k`, vectorized in its innermost loop, may end with a vector
/// over that loop's last points instead of a scalar tail, storing some points a second time:
/// it loads no buffer it stores (so the second time stores the same values), and every index
/// varying with the loop is affine in it (so its lanes are right at any first point, not only
/// at multiples of the lanes).
pub(super) fn overlapping_tail(k: &LoopKernel, s: usize) -> bool {
    let StageKind::Store(stores) = &k.stages[s].kind else {
        return false;
    };
    let Some(&v) = k.stages[s].vars.last() else {
        return false;
    };
    let affine = |i: &Index| !i.uses(v) || i.stride_of(v).is_some();
    k.needed(s).iter().all(|&e| match &k.exprs[e as usize].0 {
        Expr::Load {
            buffer,
            offset,
            guards,
        } => {
            stores.iter().all(|st| st.buffer != *buffer)
                && affine(offset)
                && guards.iter().all(|c| affine(crate::kernel::cond_index(c)))
        }
        Expr::Index(i) => affine(i),
        Expr::Test(conds) => conds.iter().all(|c| affine(crate::kernel::cond_index(c))),
        Expr::Random { index, .. } => affine(index),
        Expr::Apply { .. } | Expr::Const(_) | Expr::Reduced(_) => true,
    })
}

/// True if loop `v` of `k` runs over its whole extent (it is not split across threads) and
/// that extent is a multiple of `vectors` vectors of `lanes` lanes: a vector loop taking that
/// many per iteration needs no tail after it.
pub(super) fn whole(k: &LoopKernel, v: Var, lanes: u8, vectors: usize) -> bool {
    k.parallel != Some(v) && k.extents[v as usize] % (vectors as i64 * i64::from(lanes)) == 0
}

/// Vector accumulators of an unrolled reduction loop.
const ACCUMULATORS: usize = 4;

/// Vectors per iteration of a store loop whose extent is a multiple of that many ([`whole`]),
/// or whose tail may overlap ([`overlapping_tail`]): its loop overhead (the counter, the
/// compare and branch, the overlapping tail's minimum) is then shared by two bodies.
pub(super) const STORE_UNROLL: usize = 2;

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
    /// The lanes of a stage's innermost point: the outer loop's lanes in its vector body for a
    /// stage carried in them, else 1.
    point: u8,
    /// Which loop of each stage runs in vector lanes.
    plan: Plan,
    loop_vars: Vec<Option<Variable>>,
    /// A constant added to each loop variable's counter (a vector loop's unrolled copies, a
    /// lane of a vector): kept apart from the counter so that addresses can carry it as the
    /// load's or store's constant offset, and copies share one address computation.
    pub(super) shifts: Vec<i64>,
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

    /// The counter of loop variable `v` (an `i64`), without its shift (see [`Gen::shifts`]).
    pub(super) fn counter(&mut self, v: Var) -> Value {
        let var = self.loop_vars[v as usize].expect("the loop of every used variable is open");
        self.b.use_var(var)
    }

    /// Runs `f` with the vector variable `v` advanced to lane `lane` (and no vector variable).
    pub(super) fn at_lane<T>(&mut self, v: Var, lane: u8, f: impl FnOnce(&mut Self) -> T) -> T {
        self.shifts[v as usize] += i64::from(lane);
        let vector = self.vector_var.take();
        let out = f(self);
        self.vector_var = vector;
        self.shifts[v as usize] -= i64::from(lane);
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

    /// Opens the outer loops from depth `d`, then runs the stages. The innermost outer loop
    /// runs in vector lanes where the plan says so: a vector body, in which each stage carried
    /// in its lanes computes one point per lane, then a scalar tail (unless the loop is
    /// [`whole`]).
    fn outer(&mut self, d: usize) {
        if d == self.k.outer.len() {
            for s in 0..self.k.stages.len() {
                self.stage(s);
            }
            return;
        }
        let v = self.k.outer[d];
        let (from, to) = self.bounds(v);
        let Some((_, lanes)) = self.plan.outer.filter(|&(w, _)| w == v) else {
            self.counted_loop(v, from, to, 1, &mut |g| g.outer(d + 1));
            return;
        };
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, from);
        self.loop_from(v, var, to, lanes as i64, None, &mut |g| {
            let outer = g.vector_var.replace(v);
            g.outer(d + 1);
            g.vector_var = outer;
        });
        if !whole(self.k, v, lanes, 1) {
            self.loop_from(v, var, to, 1, None, &mut |g| g.outer(d + 1));
        }
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
        self.loop_from(v, var, to, step, None, body);
    }

    /// `for v in (i..to).step_by(step) { body }` where `var` holds `i`, leaving `var` at the
    /// first value not run (so a scalar tail can continue from it).
    ///
    /// With `overlap: Some(from)` (the loop's first value), when fewer than `step` values
    /// are left but the loop has at least `step`, the body runs once more at `to - step`,
    /// repeating some values (see [`overlapping_tail`]), and `v` ends at `to`.
    ///
    /// The loop is one header block that either exits or enters the body, the exit being the
    /// branch's first target. Cranelift's loop-invariant code motion relies on that shape:
    /// it tracks the loops it is in while walking the dominator tree, whose children come in
    /// reverse post-order, and forgets a loop once it visits a block outside it. The body must
    /// therefore come before the exit in that order, which the exit being the first target
    /// (visited first, finished first, placed last) ensures; a body reachable also through
    /// another block of the loop (as an overlapping tail's was) loses invariant hoisting for
    /// everything in it.
    fn loop_from(
        &mut self,
        v: Var,
        var: Variable,
        to: Value,
        step: i64,
        overlap: Option<Value>,
        body: &mut dyn FnMut(&mut Self),
    ) {
        let header = self.b.create_block();
        let inner = self.b.create_block();
        let exit = self.b.create_block();
        self.b.ins().jump(header, &[] as &[BlockArg]);
        self.b.switch_to_block(header);
        let i = self.b.use_var(var);
        let (stop, start) = match overlap {
            None if step == 1 => (self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, to), i),
            None => {
                let next = self.b.ins().iadd_imm_s(i, step);
                (self.b.ins().icmp(IntCC::SignedGreaterThan, next, to), i)
            }
            Some(from) => {
                // Run at `i` while a whole step fits, then once at `to - step` if some values
                // are left, as long as the loop spans a step (`short` is loop-invariant, and
                // folds away for constant bounds).
                let done = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, i, to);
                let span = self.b.ins().isub(to, from);
                let short = (self.b.ins()).icmp_imm_s(IntCC::SignedLessThan, span, step);
                let back = self.b.ins().iadd_imm_s(to, -step);
                let stop = self.b.ins().bor(done, short);
                (stop, self.b.ins().smin(i, back))
            }
        };
        self.b.ins().brif(stop, exit, &[], inner, &[]);
        // The body and the exit have the header as their one predecessor: sealing each block
        // as soon as its predecessors are known lets the SSA builder read an outer loop's
        // variable as the value it is, not as a block parameter of every inner header (which
        // would make it vary in every inner loop and stop invariant code from moving out).
        self.b.seal_block(inner);
        self.b.seal_block(exit);
        self.b.switch_to_block(inner);
        self.b.def_var(var, start);
        let saved = self.loop_vars[v as usize].replace(var);
        self.scopes.push(HashMap::new());
        body(self);
        self.scopes.pop();
        self.loop_vars[v as usize] = saved.or(Some(var));
        let i = self.b.use_var(var);
        let next = self.b.ins().iadd_imm_s(i, step);
        self.b.def_var(var, next);
        self.b.ins().jump(header, &[] as &[BlockArg]);
        self.b.seal_block(header);
        self.b.switch_to_block(exit);
    }

    /// Every expression stage `s` needs, in order.
    fn needed(&self, s: usize) -> Vec<ExprId> {
        self.k.needed(s)
    }

    /// The lanes of stage `s`'s innermost point and of its innermost loop (never both above
    /// 1): a stage carried in the outer loop's lanes takes them in the loop's vector body (and
    /// runs scalar in its tail), a stage vectorized in its own innermost loop takes that loop's.
    fn stage_lanes(&self, s: usize) -> (u8, u8) {
        match self.plan.stages[s] {
            Some((v, lanes)) if self.k.outer.contains(&v) => {
                let point = if self.vector_var == Some(v) { lanes } else { 1 };
                (point, 1)
            }
            Some((_, lanes)) => (1, lanes),
            None => (1, 1),
        }
    }

    /// Emits stage `s` inside the current outer iteration.
    fn stage(&mut self, s: usize) {
        let needed = self.needed(s);
        let (point, lanes) = self.stage_lanes(s);
        self.point = point;
        let vars = self.k.stages[s].vars.clone();
        match self.k.stages[s].kind.clone() {
            StageKind::Reduce { op, value } => {
                // One accumulator lane per point of the outer loop's lanes, each combining its
                // point's values in the row-major order of the stage's loops.
                let dtype = self.k.exprs[value as usize].1;
                let acc = self.b.declare_var(super::ir_type(dtype, point));
                let init = self.identity(op, dtype, point);
                self.b.def_var(acc, init);
                let step = &mut |g: &mut Self, l: u8| {
                    let x = g.value(value, l);
                    let a = g.b.use_var(acc);
                    let r = g.combine(op, dtype, a, x);
                    g.b.def_var(acc, r);
                };
                if unrolls(self.k, s) {
                    self.unrolled(&vars, &needed, &mut |g| step(g, point));
                } else {
                    let reduce = Inner::Reduce((op, value, dtype, acc));
                    self.nest(&vars, 0, &needed, lanes, step, reduce);
                }
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
                            let (addr, at) =
                                g.address(st.buffer, &st.offset, dtype_of(g, st.value));
                            let flags = if l == 1 {
                                MemFlagsData::trusted()
                            } else {
                                MemFlagsData::new().with_notrap()
                            };
                            g.b.ins().store(flags, x, addr, at);
                        }
                    },
                    Inner::Store {
                        overlap: overlapping_tail(self.k, s),
                    },
                );
            }
        }
        self.point = 1;
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
    /// lanes in use (the loop's `lanes` in its vector body, else the point's). A reduction
    /// vectorized in its innermost loop keeps vector accumulators and folds them into the
    /// scalar one after the vector loop. A store stage whose tail may overlap
    /// ([`overlapping_tail`]) and is not [`whole`] takes [`STORE_UNROLL`] vectors per iteration
    /// and ends with as many at the loop's last points when the loop has that many, and runs a
    /// scalar tail only when it has fewer. A loop that is [`whole`] has no tail at all, and a
    /// store loop whole in [`STORE_UNROLL`] vectors takes that many per iteration.
    fn nest(
        &mut self,
        vars: &[Var],
        d: usize,
        needed: &[ExprId],
        lanes: u8,
        action: &mut dyn FnMut(&mut Self, u8),
        inner: Inner,
    ) {
        let reduce = match inner {
            Inner::Reduce(r) => Some(r),
            Inner::Store { .. } => None,
        };
        self.hoist(vars, d, needed);
        if d == vars.len() {
            action(self, self.point);
            return;
        }
        let v = vars[d];
        let (from, to) = self.bounds(v);
        if d + 1 < vars.len() || lanes == 1 {
            self.counted_loop(v, from, to, 1, &mut |g| {
                g.nest(vars, d + 1, needed, lanes, action, inner)
            });
            return;
        }
        let var = self.b.declare_var(types::I64);
        self.b.def_var(var, from);
        let whole = |vectors: usize| whole(self.k, v, lanes, vectors);
        match reduce {
            Some(r) => self.vector_reduction(v, var, to, lanes, r, !whole(ACCUMULATORS)),
            None if whole(STORE_UNROLL) => {
                let step = (STORE_UNROLL * lanes as usize) as i64;
                self.loop_from(v, var, to, step, None, &mut |g| {
                    g.shifted_copies(v, var, lanes, STORE_UNROLL, &mut |g, _| action(g, lanes))
                })
            }
            None => {
                // A loop whole in single vectors has no tail, so it takes one at a time; one
                // with a tail may overlap it, and then takes two, ending with the last two.
                let overlap = matches!(inner, Inner::Store { overlap: true })
                    .then_some(from)
                    .filter(|_| !whole(1));
                let copies = if overlap.is_some() { STORE_UNROLL } else { 1 };
                let step = (copies * lanes as usize) as i64;
                self.loop_from(v, var, to, step, overlap, &mut |g| {
                    g.shifted_copies(v, var, lanes, copies, &mut |g, _| action(g, lanes))
                })
            }
        }
        if !whole(1) {
            self.loop_from(v, var, to, 1, None, &mut |g| {
                g.nest(vars, d + 1, needed, 1, action, inner)
            });
        }
    }

    /// Runs `body(j)` for `j` in `0..copies` in the vector body of loop `v` (counter `var`),
    /// copy `j` with `v` at `var + j * lanes`, each with its own cache of computed values.
    fn shifted_copies(
        &mut self,
        v: Var,
        var: Variable,
        lanes: u8,
        copies: usize,
        body: &mut dyn FnMut(&mut Self, usize),
    ) {
        let outer = self.vector_var.replace(v);
        debug_assert_eq!(
            self.loop_vars[v as usize],
            Some(var),
            "the loop's own counter"
        );
        for j in 0..copies {
            self.shifts[v as usize] = j as i64 * lanes as i64;
            self.scopes.push(HashMap::new());
            body(self, j);
            self.scopes.pop();
        }
        self.shifts[v as usize] = 0;
        self.vector_var = outer;
    }

    /// The vector part of a reduction over loop `v` (counter `var`, up to `to`), folded into
    /// the scalar accumulator: [`ACCUMULATORS`] vectors per iteration, one into each
    /// [`Accumulators`]; then, with `singles`, single vectors; then the accumulators' total,
    /// its lanes in order.
    fn vector_reduction(
        &mut self,
        v: Var,
        var: Variable,
        to: Value,
        lanes: u8,
        r: Reduction,
        singles: bool,
    ) {
        let (op, value, dtype, acc) = r;
        let accs = Accumulators::new(self, op, dtype, lanes);
        let step = lanes as i64 * ACCUMULATORS as i64;
        let outer = self.vector_var;
        self.loop_from(v, var, to, step, None, &mut |g| {
            // Copy j reads the vector j*lanes elements further on, into accumulator j.
            let mut xs = Vec::with_capacity(ACCUMULATORS);
            g.shifted_copies(v, var, lanes, ACCUMULATORS, &mut |g, _| {
                xs.push(g.value(value, lanes));
            });
            accs.add(g, &xs);
        });
        if singles {
            self.loop_from(v, var, to, lanes as i64, None, &mut |g| {
                g.vector_var = Some(v);
                let x = g.value(value, lanes);
                accs.add(g, &[x]);
                g.vector_var = outer;
            });
        }
        let total = accs.total(self);
        let mut a = self.b.use_var(acc);
        for lane in 0..lanes {
            let x = self.b.ins().extractlane(total, lane);
            a = self.combine(op, dtype, a, x);
        }
        self.b.def_var(acc, a);
    }

    /// Computes, in the current scope, the needed expressions that use none of `vars[d..]`:
    /// they are invariant in the loops about to open. Those varying with the outer loop whose
    /// lanes carry the stage are computed in its lanes.
    fn hoist(&mut self, vars: &[Var], d: usize, needed: &[ExprId]) {
        for &e in needed {
            let inner = vars[d..].iter().any(|v| self.uses[e as usize].contains(v));
            let carried = self
                .vector_var
                .is_some_and(|v| self.uses[e as usize].contains(&v));
            let lanes = if carried { self.point } else { 1 };
            if !inner && self.cached(e, lanes).is_none() {
                self.value(e, lanes);
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

/// The accumulators of a vector reduction loop: [`ACCUMULATORS`] vectors, one for each copy
/// of the loop body, so that their steps do not wait on one another. A float maximum on
/// `F32X4` lanes keeps [`MaxParts`] instead of taking the exact maximum of every vector: a
/// `maxps` in each accumulator, and the witnesses of `+0` and NaN across all of them.
struct Accumulators {
    op: ReduceOp,
    dtype: DType,
    accs: Vec<Variable>,
    /// For a float maximum: [`MaxParts::low_bits`] and [`MaxParts::nan`].
    witnesses: Option<(Variable, Variable)>,
}

impl Accumulators {
    /// Accumulators of `op` over `lanes` lanes of `dtype`, holding the identity.
    fn new(g: &mut Gen<'_, '_>, op: ReduceOp, dtype: DType, lanes: u8) -> Accumulators {
        let ty = super::ir_type(dtype, lanes);
        let parts = (op == ReduceOp::Max && ty == types::F32X4).then(|| MaxParts::empty(&mut g.b));
        let accs = (0..ACCUMULATORS)
            .map(|_| {
                let a = g.b.declare_var(ty);
                let init = match parts {
                    Some(p) => p.loose,
                    None => g.identity(op, dtype, lanes),
                };
                g.b.def_var(a, init);
                a
            })
            .collect();
        let witnesses = parts.map(|p| {
            let low_bits = g.b.declare_var(types::I32X4);
            g.b.def_var(low_bits, p.low_bits);
            let nan = g.b.declare_var(types::I32X4);
            g.b.def_var(nan, p.nan);
            (low_bits, nan)
        });
        Accumulators {
            op,
            dtype,
            accs,
            witnesses,
        }
    }

    /// Adds `xs[j]` into accumulator `j`.
    fn add(&self, g: &mut Gen<'_, '_>, xs: &[Value]) {
        for (&a, &x) in self.accs.iter().zip(xs) {
            let cur = g.b.use_var(a);
            let next = match self.witnesses {
                Some(_) => MaxParts::loose_step(&mut g.b, cur, x),
                None => g.combine(self.op, self.dtype, cur, x),
            };
            g.b.def_var(a, next);
        }
        if let Some((low_bits, nan)) = self.witnesses {
            let (l, n) = (g.b.use_var(low_bits), g.b.use_var(nan));
            let (l, n) = MaxParts::witness_step(&mut g.b, l, n, xs);
            g.b.def_var(low_bits, l);
            g.b.def_var(nan, n);
        }
    }

    /// A vector whose lanes, combined in order, are the reduction of everything added.
    fn total(&self, g: &mut Gen<'_, '_>) -> Value {
        let parts: Vec<Value> = self.accs.iter().map(|&a| g.b.use_var(a)).collect();
        match self.witnesses {
            None => super::fold_pairwise(&parts, |l, r| g.combine(self.op, self.dtype, l, r)),
            Some((low_bits, nan)) => {
                let loose =
                    super::fold_pairwise(&parts, |l, r| MaxParts::loose_step(&mut g.b, l, r));
                let parts = MaxParts {
                    loose,
                    low_bits: g.b.use_var(low_bits),
                    nan: g.b.use_var(nan),
                };
                parts.exact(&mut g.b)
            }
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

/// Which loop of each stage of a loop kernel runs in vector lanes (`describe_loops` prints it).
pub(super) struct Plan {
    /// The innermost outer loop's variable and lanes, when it runs in vector lanes (a vector
    /// body, then a scalar tail).
    pub(super) outer: Option<(Var, u8)>,
    /// Each stage's vector loop and lanes, if any: the outer loop above (the stage is carried
    /// in its lanes, a point per lane, its own loops scalar), or the stage's innermost loop.
    pub(super) stages: Vec<Option<(Var, u8)>>,
}

/// Decides which loop of each stage of `k` runs in vector lanes: the innermost outer loop
/// where [`outer_lanes`] allows (for each stage that varies with it), else the stage's
/// innermost loop where [`fit`] allows.
pub(super) fn plan(k: &LoopKernel, uses: &[BTreeSet<Var>]) -> Plan {
    let fits = |s: usize, v: Var| fit(k, uses, v, s, &k.needed(s));
    let own = |s: usize| {
        let &v = k.stages[s].vars.last()?;
        match fits(s, v) {
            Fit::Lanes(lanes) => Some((v, lanes)),
            Fit::Invariant | Fit::Scalar => None,
        }
    };
    let Some((v, lanes, per_stage)) = outer_lanes(k, &fits) else {
        return Plan {
            outer: None,
            stages: (0..k.stages.len()).map(own).collect(),
        };
    };
    let stages = (per_stage.iter().enumerate())
        .map(|(s, f)| match f {
            Fit::Lanes(_) => Some((v, lanes)),
            Fit::Invariant | Fit::Scalar => own(s),
        })
        .collect();
    Plan {
        outer: Some((v, lanes)),
        stages,
    }
}

/// The innermost outer loop's variable and lanes, and how they fit each stage, if it can run
/// in vector lanes: every stage either does not vary with it or fits the same lanes over it (a
/// store stage always varies: its stores must be unit stride in it), some stage varies with
/// it, and it has at least as many iterations as lanes.
fn outer_lanes(k: &LoopKernel, fits: &dyn Fn(usize, Var) -> Fit) -> Option<(Var, u8, Vec<Fit>)> {
    let &v = k.outer.last()?;
    let per_stage: Vec<Fit> = (0..k.stages.len()).map(|s| fits(s, v)).collect();
    let mut lanes = per_stage.iter().filter_map(|f| match f {
        Fit::Lanes(l) => Some(*l),
        Fit::Invariant | Fit::Scalar => None,
    });
    let first = lanes.next()?;
    let agree = lanes.all(|l| l == first) && !per_stage.contains(&Fit::Scalar);
    (agree && k.extents[v as usize] >= first as i64).then_some((v, first, per_stage))
}

/// How vector lanes over a loop variable suit a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fit {
    /// Nothing the stage computes or stores varies with the variable.
    Invariant,
    /// Everything that varies does so in a way these lanes can compute.
    Lanes(u8),
    /// Something varies in a way vector lanes cannot compute.
    Scalar,
}

/// How lanes over loop variable `v` suit stage `s` of `k` (whose expressions are `needed`):
/// 4 (f32, i32) or 2 (f64) lanes when every load varying with `v` is unit stride with guards
/// that are ranges affine in `v`, or reads its lanes at offsets from the first that are the
/// same at every vector ([`Index::lane_offsets`]: a pooling window's step of 2, its `v/2`
/// and `v%2`) with guards not varying with `v`; every index expression has such offsets;
/// every store is unit stride in `v`; and every operation varying with `v` has a vector form
/// of those lanes.
fn fit(k: &LoopKernel, uses: &[BTreeSet<Var>], v: Var, s: usize, needed: &[ExprId]) -> Fit {
    let mut lanes = None;
    for &e in needed.iter().filter(|&&e| uses[e as usize].contains(&v)) {
        let (expr, dtype) = &k.exprs[e as usize];
        let want = match dtype {
            DType::F64 => 2,
            _ => 4,
        };
        // A condition varying across lanes must be a range on an index affine in `v` (and
        // free of data indices): then the lanes where it holds are consecutive, and a lane's
        // index is the first one's plus the lane times a stride.
        let lane_cond = |c: &Cond| {
            let i = crate::kernel::cond_index(c);
            let mut data = vec![];
            crate::kernel::data_exprs(i, &mut data);
            let varies = i.uses(v) || data.iter().any(|&d| uses[d as usize].contains(&v));
            !varies
                || (matches!(c, Cond::Range { .. }) && i.stride_of(v).is_some() && !i.has_data())
        };
        let ok = match expr {
            Expr::Load { offset, guards, .. } => {
                let ok = match offset.stride_of(v) {
                    Some(0 | 1) => guards.iter().all(lane_cond),
                    _ => {
                        offset.lane_offsets(v, want as i64).is_some()
                            && guards.iter().all(|c| !c_uses(c, v))
                    }
                };
                *dtype != DType::Bool && !offset.has_data() && ok
            }
            Expr::Index(i) => i.lane_offsets(v, want as i64).is_some(),
            Expr::Test(conds) => conds.iter().all(lane_cond),
            Expr::Random { seed, index, .. } => {
                *dtype == DType::F32
                    && !uses[*seed as usize].contains(&v)
                    && index.stride_of(v).is_some()
                    && !index.has_data()
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
            return Fit::Scalar;
        }
        lanes = Some(want);
    }
    if let StageKind::Store(st) = &k.stages[s].kind {
        for x in st {
            let dtype = k.exprs[x.value as usize].1;
            let want = if dtype == DType::F64 { 2 } else { 4 };
            let unit = x.offset.stride_of(v) == Some(1) && !x.offset.has_data();
            if !unit || dtype == DType::Bool || lanes.is_some_and(|l| l != want) {
                return Fit::Scalar;
            }
            lanes = Some(want);
        }
    }
    lanes.map_or(Fit::Invariant, Fit::Lanes)
}
