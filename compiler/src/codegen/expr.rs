//! Expressions: loads, index arithmetic, constants, random numbers and the elementwise
//! primitives, as scalar or vector Cranelift values with the interpreter's semantics.

use super::loops::Gen;
use super::{ir_type, math};
use crate::kernel::{Atom, BufferId, Cond, Expr, ExprId, Index, Role, StageKind, Var, cond_index};
use crate::op::{BinaryOp, CmpOp, Op, ReduceOp, UnaryOp};
use crate::types::DType;
use cranelift_codegen::ir::{
    AbiParam, BlockArg, InstBuilder, MemFlagsData, Signature, Value,
    condcodes::{FloatCC, IntCC},
    types,
};

impl Gen<'_, '_> {
    /// The value of expression `e` with `lanes` lanes (1, or the vector width of the loop of
    /// the vectorized variable).
    pub(super) fn value(&mut self, e: ExprId, lanes: u8) -> Value {
        if let Some(v) = self.cached(e, lanes) {
            return v;
        }
        let dtype = self.k.exprs[e as usize].1;
        let varies = self
            .vector_var
            .is_some_and(|v| self.uses[e as usize].contains(&v));
        let v = if lanes > 1 && !varies {
            let s = self.value(e, 1);
            self.splat(s, dtype, lanes)
        } else {
            self.compute(e, dtype, lanes)
        };
        self.remember(e, lanes, v);
        v
    }

    fn compute(&mut self, e: ExprId, dtype: DType, lanes: u8) -> Value {
        match self.k.exprs[e as usize].0.clone() {
            Expr::Load {
                buffer,
                offset,
                guards,
            } => self.load(buffer, &offset, &guards, dtype, lanes),
            Expr::Const(c) => self.constant(c, dtype),
            Expr::Index(i) => self.lane_indices(&i, lanes),
            Expr::Test(conds) => self.test_lanes(&conds, lanes),
            Expr::Random {
                stream,
                seed,
                index,
            } => {
                let seed = self.value(seed, 1);
                let idx = self.lane_indices(&index, lanes);
                let u = self.random(stream, seed, idx, lanes);
                if dtype == DType::F64 {
                    self.b.ins().fpromote(types::F64, u)
                } else {
                    u
                }
            }
            Expr::Apply { op, args } => {
                if let Some(x) = self.sigmoid_of(&op, &args) {
                    let x = self.value(x, lanes);
                    return math::sigmoid(&mut self.b, self.target, x);
                }
                if op == Op::Unary(UnaryOp::Exp) && self.below_its_maximum(args[0]) {
                    let x = self.value(args[0], lanes);
                    return math::exp_nonpositive(&mut self.b, self.target, x);
                }
                if op == Op::Select
                    && lanes > 1
                    && dtype.is_float()
                    && let Some(v) = self.select_zero(&args, lanes)
                {
                    return v;
                }
                if op == Op::Binary(BinaryOp::Max)
                    && lanes > 1
                    && dtype.is_float()
                    && let Some(v) = self.max_zero(&args, dtype, lanes)
                {
                    return v;
                }
                let from = self.k.exprs[args[0] as usize].1;
                let vals: Vec<Value> = args.iter().map(|&a| self.value(a, lanes)).collect();
                self.apply(&op, &vals, from, dtype, lanes)
            }
            Expr::Reduced(s) => self.reduced_value(s),
        }
    }

    /// `select(c, x, +0.0)` as `c & x`, and `select(c, +0.0, x)` as `x & !c`, on vector lanes:
    /// `+0.0` has no bit set, so masking the lanes is the select, in one instruction instead of
    /// three. `None` when neither branch is the constant `+0.0`.
    fn select_zero(&mut self, args: &[ExprId], lanes: u8) -> Option<Value> {
        let zero = |e: ExprId| self.is_positive_zero(e);
        let (keep_if, x) = match (zero(args[1]), zero(args[2])) {
            (_, true) => (true, args[1]),
            (true, false) => (false, args[2]),
            (false, false) => return None,
        };
        let c = self.value(args[0], lanes);
        let x = self.value(x, lanes);
        let mask = self.mask_as(c, x);
        Some(if keep_if {
            self.b.ins().band(mask, x)
        } else {
            self.b.ins().band_not(x, mask)
        })
    }

    /// `max(+0.0, x)` (a ReLU) on vector lanes as `x & !(x <= 0)`: where `x <= 0` (`-0.0`
    /// included) the lanes clear to `+0.0`, elsewhere (NaN included) they keep `x`. Exactly
    /// the interpreter's maximum, in two instructions instead of five. `None` when neither
    /// operand is the constant `+0.0`.
    fn max_zero(&mut self, args: &[ExprId], dtype: DType, lanes: u8) -> Option<Value> {
        let x = match *args {
            [a, b] if self.is_positive_zero(a) => b,
            [a, b] if self.is_positive_zero(b) => a,
            _ => return None,
        };
        let x = self.value(x, lanes);
        let zero = self.constant(0.0, dtype);
        let zero = self.splat(zero, dtype, lanes);
        let at_most_zero = self.b.ins().fcmp(FloatCC::LessThanOrEqual, x, zero);
        let mask = self.mask_as(at_most_zero, x);
        Some(self.b.ins().band_not(x, mask))
    }

    /// True if `e` is the constant `+0.0` (not `-0.0`).
    fn is_positive_zero(&self, e: ExprId) -> bool {
        matches!(self.k.exprs[e as usize].0, Expr::Const(c) if c.to_bits() == 0)
    }

    /// True if `e` is `x - max(x)`: a load less the maximum, computed by a stage of this
    /// kernel, of the same load over the same range (a softmax's shift), so `e <= 0` or NaN
    /// (any NaN in the range makes the maximum NaN; else the maximum is at least `x`, and so
    /// is its rounded difference).
    fn below_its_maximum(&self, e: ExprId) -> bool {
        let expr = |e: ExprId| &self.k.exprs[e as usize].0;
        let Expr::Apply {
            op: Op::Binary(BinaryOp::Sub),
            args,
        } = expr(e)
        else {
            return false;
        };
        let Expr::Reduced(s) = *expr(args[1]) else {
            return false;
        };
        let stage = &self.k.stages[s as usize];
        let StageKind::Reduce {
            op: ReduceOp::Max,
            value,
        } = stage.kind
        else {
            return false;
        };
        let (
            Expr::Load {
                buffer: a,
                offset: at,
                guards: ga,
            },
            Expr::Load {
                buffer: b,
                offset: over,
                guards: gb,
            },
        ) = (expr(args[0]), expr(value))
        else {
            return false;
        };
        // The load reads, at each of its points, an element the maximum covered: its offset is
        // the maximum's with the maximum's variables renamed to variables of the same extents.
        let [w] = stage.vars[..] else {
            return false;
        };
        let extent = self.k.extents[w as usize];
        let same = |u: Var| {
            let renamed = over.rename(&|v| if v == w { u } else { v }, &|x| x);
            self.k.extents[u as usize] == extent && renamed == *at
        };
        let vars = 0..self.k.extents.len() as Var;
        a == b && ga.is_empty() && gb.is_empty() && !over.has_data() && vars.into_iter().any(same)
    }

    /// `x` if `recip(args)` is `1 / (exp(-x) + 1)` (or `1 / (1 + exp(-x))`): the sigmoid the
    /// frontend composes, emitted as one approximation instead of three. `None` when the
    /// kernel uses `exp(-x)` elsewhere too (an LSTM keeps it for its gradient): that exp is
    /// computed anyway, and an add and a division finish the sigmoid from it.
    fn sigmoid_of(&self, op: &Op, args: &[ExprId]) -> Option<ExprId> {
        if *op != Op::Unary(UnaryOp::Recip) {
            return None;
        }
        let expr = |e: ExprId| &self.k.exprs[e as usize].0;
        let Expr::Apply {
            op: Op::Binary(BinaryOp::Add),
            args: sum,
        } = expr(args[0])
        else {
            return None;
        };
        let is_one = |e: ExprId| matches!(expr(e), Expr::Const(c) if *c == 1.0);
        let other = match (is_one(sum[0]), is_one(sum[1])) {
            (false, true) => sum[0],
            (true, false) => sum[1],
            _ => return None,
        };
        let Expr::Apply {
            op: Op::Unary(UnaryOp::Exp),
            args: e,
        } = expr(other)
        else {
            return None;
        };
        if self.users(other) > 1 {
            return None;
        }
        let Expr::Apply {
            op: Op::Unary(UnaryOp::Neg),
            args: n,
        } = expr(e[0])
        else {
            return None;
        };
        Some(n[0])
    }

    /// How many times the kernel uses expression `e`: as an operand, a seed, or a stage's
    /// stored or reduced value.
    fn users(&self, e: ExprId) -> usize {
        let in_exprs = (self.k.exprs.iter())
            .map(|(x, _)| match x {
                Expr::Apply { args, .. } => args.iter().filter(|&&a| a == e).count(),
                Expr::Random { seed, .. } => usize::from(*seed == e),
                _ => 0,
            })
            .sum::<usize>();
        let in_stages = (self.k.stages.iter())
            .map(|s| match &s.kind {
                StageKind::Reduce { value, .. } => usize::from(*value == e),
                StageKind::Store(stores) => stores.iter().filter(|st| st.value == e).count(),
            })
            .sum::<usize>();
        in_exprs + in_stages
    }

    /// A scalar constant of `dtype`.
    pub(super) fn constant(&mut self, c: f64, dtype: DType) -> Value {
        match dtype {
            DType::F32 => self.b.ins().f32const(c as f32),
            DType::F64 => self.b.ins().f64const(c),
            DType::I32 => self.b.ins().iconst(types::I32, c as i32 as i64),
            DType::Bool => self.b.ins().iconst(types::I8, (c != 0.0) as i64),
        }
    }

    /// `x` (a scalar of `dtype`) in every one of `lanes` lanes; a `bool` becomes a lane mask.
    pub(super) fn splat(&mut self, x: Value, dtype: DType, lanes: u8) -> Value {
        if lanes == 1 {
            return x;
        }
        let ty = ir_type(dtype, lanes);
        if dtype == DType::Bool {
            let wide = self.b.ins().uextend(ty.lane_type(), x);
            let mask = self.b.ins().ineg(wide);
            return self.b.ins().splat(ty, mask);
        }
        self.b.ins().splat(ty, x)
    }

    /// The value of an index expression at the current loop variables, as an `i64`. The
    /// constant is added last, so indices that differ only in it (a window's taps) share the
    /// sum of their terms (Cranelift's value numbering merges equal instructions).
    pub(super) fn index(&mut self, i: &Index) -> Value {
        let (terms, constant) = self.index_parts(i);
        match terms {
            Some(t) if constant == 0 => t,
            Some(t) => self.b.ins().iadd_imm_s(t, constant),
            None => self.b.ins().iconst(types::I64, constant),
        }
    }

    /// Index `i` as the sum of its variable terms (`None` if it has none) and a constant: its
    /// own constant and the shifts of the loop variables it holds outside any division,
    /// remainder or data (so copies of a loop body shifted by constants share the sum).
    fn index_parts(&mut self, i: &Index) -> (Option<Value>, i64) {
        let mut acc = None;
        let mut constant = i.constant;
        for (k, atom) in &i.terms {
            let t = match atom {
                Atom::Var(v) => {
                    constant += k * self.shifts[*v as usize];
                    self.counter(*v)
                }
                Atom::Div(inner, d) => {
                    let x = self.index(inner);
                    self.b.ins().udiv_imm_s(x, *d)
                }
                Atom::Mod(inner, d) => {
                    let x = self.index(inner);
                    self.b.ins().urem_imm_s(x, *d)
                }
                Atom::Data { expr, extent } => {
                    let x = self.value(*expr, 1);
                    let x = self.b.ins().sextend(types::I64, x);
                    let zero = self.b.ins().iconst(types::I64, 0);
                    let top = self.b.ins().iconst(types::I64, extent - 1);
                    let x = self.b.ins().smax(x, zero);
                    self.b.ins().smin(x, top)
                }
            };
            let t = if *k == 1 {
                t
            } else {
                self.b.ins().imul_imm_s(t, *k)
            };
            acc = Some(match acc {
                Some(acc) => self.b.ins().iadd(acc, t),
                None => t,
            });
        }
        (acc, constant)
    }

    /// An index expression as `i32` lanes: at lane `j`, its value with the vectorized
    /// variable advanced by `j` (the plan checked [`Index::lane_offsets`]).
    fn lane_indices(&mut self, i: &Index, lanes: u8) -> Value {
        if lanes == 1 {
            let first = self.index(i);
            return self.b.ins().ireduce(types::I32, first);
        }
        // The variable terms splat, plus the constant part in the vector of lane steps: copies
        // of an unrolled loop body share the splat.
        let (terms, constant) = self.index_parts(i);
        let steps: Vec<u8> = (self.lane_offsets(i, lanes).iter())
            .flat_map(|&o| ((o + constant) as i32).to_le_bytes())
            .collect();
        let c = self.b.func.dfg.constants.insert(steps.into());
        let steps = self.b.ins().vconst(types::I32X4, c);
        let Some(terms) = terms else {
            return steps;
        };
        let first = self.b.ins().ireduce(types::I32, terms);
        let base = self.b.ins().splat(types::I32X4, first);
        self.b.ins().iadd(base, steps)
    }

    /// The offsets of `lanes` lanes of index `i` from its first lane's (see
    /// [`Index::lane_offsets`]; a vector loop's variable starts at multiples of its lanes).
    fn lane_offsets(&self, i: &Index, lanes: u8) -> Vec<i64> {
        let v = self
            .vector_var
            .expect("vector lanes only inside a vector loop");
        (i.lane_offsets(v, lanes as i64)).expect("the plan vectorizes only such indices")
    }

    /// The address of the element at `offset` of `buffer`, whose elements are `dtype`, as an
    /// address and a constant byte offset for the load or store: the index's constant part
    /// (see [`Gen::index_parts`]) goes into the instruction, where x86-64 adds it for free.
    pub(super) fn address(
        &mut self,
        buffer: BufferId,
        offset: &Index,
        dtype: DType,
    ) -> (Value, i32) {
        let (terms, constant) = self.index_parts(offset);
        let bytes = constant * dtype.size_bytes() as i64;
        match (terms, i32::try_from(bytes)) {
            (Some(t), Ok(bytes)) => (self.element(buffer, t, dtype), bytes),
            _ => {
                let i = self.index(offset);
                (self.element(buffer, i, dtype), 0)
            }
        }
    }

    fn element(&mut self, buffer: BufferId, i: Value, dtype: DType) -> Value {
        let bytes = self.b.ins().imul_imm_s(i, dtype.size_bytes() as i64);
        let base = self.base(buffer);
        self.b.ins().iadd(base, bytes)
    }

    fn load(
        &mut self,
        buffer: BufferId,
        offset: &Index,
        guards: &[Cond],
        dtype: DType,
        lanes: u8,
    ) -> Value {
        let mut flags = MemFlagsData::new().with_notrap();
        if lanes == 1 {
            flags = flags.with_aligned();
        }
        if !self.written.contains(&buffer) {
            flags = flags.with_readonly().with_can_move();
        }
        let offsets = match lanes {
            1 => vec![0],
            _ => self.lane_offsets(offset, lanes),
        };
        let varies = offsets.iter().any(|&o| o != 0);
        let guarded_lanes = self
            .vector_var
            .filter(|&v| lanes > 1 && guards.iter().any(|c| cond_index(c).uses(v)));
        if lanes > 1 && !varies {
            let Some(_) = guarded_lanes else {
                let s = self.load(buffer, offset, guards, dtype, 1);
                return self.splat(s, dtype, lanes);
            };
            // One element for every lane, meaningful where some lane's guards hold (and then
            // in the buffer): read it at the offset clamped into the buffer.
            let i = self.index(offset);
            let i = self.clamp(i, 0, self.numel(buffer) - 1);
            let addr = self.element(buffer, i, dtype);
            let s = self.b.ins().load(ir_type(dtype, 1), flags, addr, 0);
            return self.splat(s, dtype, lanes);
        }
        if let Some(v) = guarded_lanes {
            return self.guarded_vector_load(v, buffer, offset, guards, dtype, lanes, flags);
        }
        let unit = offsets.iter().enumerate().all(|(j, &o)| o == j as i64);
        if !unit {
            return self.gather(buffer, offset, guards, dtype, &offsets, flags);
        }
        let ty = if dtype == DType::Bool {
            types::I8
        } else {
            ir_type(dtype, lanes)
        };
        if guards.is_empty() {
            let (addr, at) = self.address(buffer, offset, dtype);
            return self.b.ins().load(ty, flags, addr, at);
        }
        let i = self.guarded_index(buffer, offset, guards, lanes);
        let addr = self.element(buffer, i, dtype);
        self.b.ins().load(ty, flags, addr, 0)
    }

    /// A vector load whose guards vary across its lanes (a padded view read along the
    /// padded axis); the lanes where the guards fail are discarded by the select around the
    /// view, so only the others must be right. The guard indices are affine in the vector
    /// variable `v`, so those lanes are consecutive.
    ///
    /// A buffer in the arena is read with one vector load from the first lane's element,
    /// clamped to at most a vector less one element before the buffer and to its last
    /// element: where some lane is in the buffer the clamp changes nothing, and the load stays
    /// inside the arena's slack (`memory::SLACK`). A data input (the caller's array, with no
    /// slack around it) is read with one vector load when the guards hold at the first lane
    /// and at the last, and else lane by lane as a scalar guarded load reads (element 0 where
    /// its guards fail). Either needs no clamp and no branch where the first lane's offset
    /// stays in those bounds for every value of the loop variables.
    #[allow(clippy::too_many_arguments)]
    fn guarded_vector_load(
        &mut self,
        v: Var,
        buffer: BufferId,
        offset: &Index,
        guards: &[Cond],
        dtype: DType,
        lanes: u8,
        flags: MemFlagsData,
    ) -> Value {
        let ty = ir_type(dtype, lanes);
        let in_arena = !matches!(self.buffers[buffer as usize].role, Role::Input(_));
        let lo = if in_arena { 1 - lanes as i64 } else { 0 };
        let hi = self.last_start(buffer, lanes);
        if self.within(offset, lo, hi) {
            let (addr, at) = self.address(buffer, offset, dtype);
            return self.b.ins().load(ty, flags, addr, at);
        }
        if in_arena {
            let i = self.index(offset);
            let i = self.clamp(i, lo, hi);
            let addr = self.element(buffer, i, dtype);
            return self.b.ins().load(ty, flags, addr, 0);
        }
        let first = self.test(guards);
        let last = self.at_lane(v, lanes - 1, |g| g.test(guards));
        let all = self.b.ins().band(first, last);
        let whole = self.b.create_block();
        let apart = self.b.create_block();
        let done = self.b.create_block();
        let result = self.b.append_block_param(done, ty);
        self.b.ins().brif(all, whole, &[], apart, &[]);
        self.b.seal_block(whole);
        self.b.seal_block(apart);

        self.b.switch_to_block(whole);
        let (addr, at) = self.address(buffer, offset, dtype);
        let x = self.b.ins().load(ty, flags, addr, at);
        self.b.ins().jump(done, &[BlockArg::Value(x)]);

        self.b.switch_to_block(apart);
        let zero = self.constant(0.0, dtype);
        let mut x = self.splat(zero, dtype, lanes);
        for lane in 0..lanes {
            let scalar = self.at_lane(v, lane, |g| g.load(buffer, offset, guards, dtype, 1));
            x = self.b.ins().insertlane(x, scalar, lane);
        }
        self.b.ins().jump(done, &[BlockArg::Value(x)]);
        self.b.seal_block(done);

        self.b.switch_to_block(done);
        result
    }

    /// A vector whose lane `j` is the element at `offset` plus `offsets[j]` (guards, if any,
    /// the same for every lane). In the arena, where the lanes span at most two vectors' worth
    /// of elements (a pooling window's step of 2, its `v/2` and `v%2`), it is one or two vector
    /// loads from the lowest offset and a shuffle, reading at most two vectors less one element
    /// past it (inside the arena's slack, `memory::SLACK`); else one scalar load per lane.
    fn gather(
        &mut self,
        buffer: BufferId,
        offset: &Index,
        guards: &[Cond],
        dtype: DType,
        offsets: &[i64],
        flags: MemFlagsData,
    ) -> Value {
        let lanes = offsets.len();
        let ty = ir_type(dtype, lanes as u8);
        let lowest = *offsets.iter().min().expect("some lanes");
        let span = offsets.iter().max().expect("some lanes") - lowest + 1;
        let in_arena = !matches!(self.buffers[buffer as usize].role, Role::Input(_));
        if !in_arena || span > 2 * lanes as i64 {
            let zero = self.constant(0.0, dtype);
            let mut x = self.splat(zero, dtype, lanes as u8);
            let first = self.guarded_index(buffer, offset, guards, 1);
            let ok = self.test(guards);
            let zero = self.b.ins().iconst(types::I64, 0);
            for (j, &o) in offsets.iter().enumerate() {
                // Where the guards fail every lane reads element 0, as a scalar load would.
                let at = self.b.ins().iadd_imm_s(first, o);
                let at = self.b.ins().select(ok, at, zero);
                let addr = self.element(buffer, at, dtype);
                let flags = flags.with_aligned();
                let s = self.b.ins().load(ir_type(dtype, 1), flags, addr, 0);
                x = self.b.ins().insertlane(x, s, j as u8);
            }
            return x;
        }
        let i = self.index(offset);
        let i = self.b.ins().iadd_imm_s(i, lowest);
        let i = match guards.is_empty() {
            true => i,
            false => {
                let ok = self.test(guards);
                let zero = self.b.ins().iconst(types::I64, 0);
                self.b.ins().select(ok, i, zero)
            }
        };
        let addr = self.element(buffer, i, dtype);
        let low = self.b.ins().load(ty, flags, addr, 0);
        let high = match span > lanes as i64 {
            true => self.b.ins().load(ty, flags, addr, 16),
            false => low,
        };
        let bytes = 16 / lanes;
        // Bytes 0..16 are `low`'s, 16..32 `high`'s.
        let mask: Vec<u8> = (offsets.iter())
            .flat_map(|&o| (0..bytes).map(move |b| ((o - lowest) as usize * bytes + b) as u8))
            .collect();
        let mask = self.b.func.dfg.immediates.push(mask.into());
        let little = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        let (low, high) = (
            self.b.ins().bitcast(types::I8X16, little, low),
            self.b.ins().bitcast(types::I8X16, little, high),
        );
        let picked = self.b.ins().shuffle(low, high, mask);
        self.b.ins().bitcast(ty, little, picked)
    }

    /// The element `offset` where every guard holds, else element 0 (which a load of `lanes`
    /// elements may read safely: `kernel::bounds` proves they exist); `offset` itself, guards
    /// or not, when a load of `lanes` elements there is safe for every value it takes.
    fn guarded_index(
        &mut self,
        buffer: BufferId,
        offset: &Index,
        guards: &[Cond],
        lanes: u8,
    ) -> Value {
        let i = self.index(offset);
        if guards.is_empty() || self.within(offset, 0, self.last_start(buffer, lanes)) {
            return i;
        }
        let ok = self.test(guards);
        let zero = self.b.ins().iconst(types::I64, 0);
        self.b.ins().select(ok, i, zero)
    }

    /// True if `offset`, as [`Gen::index`] computes it, is in `lo..=hi` for every value of the
    /// kernel's loop variables.
    fn within(&self, offset: &Index, lo: i64, hi: i64) -> bool {
        (offset.unguarded_range(&self.k.extents[..]))
            .is_some_and(|(min, max)| lo <= min && max <= hi)
    }

    /// The last element of `buffer` where a load of `lanes` elements may start: its last
    /// element in the arena (whose slack and neighbouring buffers hold the rest), the last
    /// that keeps every lane inside a data input.
    fn last_start(&self, buffer: BufferId, lanes: u8) -> i64 {
        match self.buffers[buffer as usize].role {
            Role::Input(_) => self.numel(buffer) - lanes as i64,
            _ => self.numel(buffer) - 1,
        }
    }

    /// The number of elements of `buffer`.
    fn numel(&self, buffer: BufferId) -> i64 {
        self.buffers[buffer as usize].ty.numel() as i64
    }

    /// `i` (an `i64`) clamped into `lo..=hi`.
    fn clamp(&mut self, i: Value, lo: i64, hi: i64) -> Value {
        let lo = self.b.ins().iconst(types::I64, lo);
        let hi = self.b.ins().iconst(types::I64, hi);
        let i = self.b.ins().smax(i, lo);
        self.b.ins().smin(i, hi)
    }

    /// A lane mask (`i32` lanes) that is true where every condition holds; conditions that
    /// vary across lanes are `Range`s on indices affine in the vector variable.
    fn test_lanes(&mut self, conds: &[Cond], lanes: u8) -> Value {
        let Some(v) = self.vector_var.filter(|_| lanes > 1) else {
            return self.test(conds);
        };
        let (across, same): (Vec<&Cond>, Vec<&Cond>) =
            conds.iter().partition(|c| cond_index(c).uses(v));
        let same: Vec<Cond> = same.into_iter().cloned().collect();
        let scalar = self.test(&same);
        let mut mask = self.splat(scalar, DType::Bool, lanes);
        for c in across {
            let Cond::Range { index, lo, hi } = c else {
                unreachable!("lanes vectorizes only ranges across lanes")
            };
            let at = self.lane_indices(index, lanes);
            let lo = self.b.ins().iconst(types::I32, *lo);
            let lo = self.b.ins().splat(types::I32X4, lo);
            let hi = self.b.ins().iconst(types::I32, *hi);
            let hi = self.b.ins().splat(types::I32X4, hi);
            let above = self.b.ins().icmp(IntCC::SignedGreaterThanOrEqual, at, lo);
            let below = self.b.ins().icmp(IntCC::SignedLessThan, at, hi);
            let ok = self.b.ins().band(above, below);
            mask = self.b.ins().band(mask, ok);
        }
        mask
    }

    /// An `i8` that is 1 where every condition holds.
    fn test(&mut self, conds: &[Cond]) -> Value {
        let mut all = self.b.ins().iconst(types::I8, 1);
        for c in conds {
            let ok = match c {
                Cond::Range { index, lo, hi } => {
                    let x = self.index(index);
                    let a = self
                        .b
                        .ins()
                        .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, x, *lo);
                    let b = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, x, *hi);
                    self.b.ins().band(a, b)
                }
                Cond::Multiple { index, of } => {
                    let x = self.index(index);
                    let r = self.b.ins().srem_imm_s(x, *of);
                    self.b.ins().icmp_imm_s(IntCC::Equal, r, 0)
                }
            };
            all = self.b.ins().band(all, ok);
        }
        all
    }

    /// `x * c` in 32-bit lanes, wrapping.
    fn mul_u32(&mut self, x: Value, c: u32) -> Value {
        let ty = self.b.func.dfg.value_type(x);
        if ty.is_vector() {
            let k = self.b.ins().iconst(types::I32, c as i32 as i64);
            let k = self.b.ins().splat(ty, k);
            self.b.ins().imul(x, k)
        } else {
            self.b.ins().imul_imm_s(x, c as i32 as i64)
        }
    }

    /// The 32-bit mixer of `interp::random_uniform`.
    fn mix(&mut self, x: Value) -> Value {
        let s = self.b.ins().ushr_imm_s(x, 16);
        let x = self.b.ins().bxor(x, s);
        let x = self.mul_u32(x, 0x7feb_352d);
        let s = self.b.ins().ushr_imm_s(x, 15);
        let x = self.b.ins().bxor(x, s);
        let x = self.mul_u32(x, 0x846c_a68b);
        let s = self.b.ins().ushr_imm_s(x, 16);
        self.b.ins().bxor(x, s)
    }

    /// Uniform `f32`s in `[0, 1)` exactly as `interp::random_uniform(seed, stream, index)`.
    fn random(&mut self, stream: u32, seed: Value, index: Value, lanes: u8) -> Value {
        let mixed_stream = crate::interp::mix(stream.wrapping_add(0x9e37_79b9));
        let k = self.b.ins().iconst(types::I32, mixed_stream as i32 as i64);
        let key = self.b.ins().bxor(seed, k);
        let key = self.mix(key);
        let key = self.splat(key, DType::I32, lanes);
        let h = self.mul_u32(index, 0x9e37_79b9);
        let h = self.b.ins().bxor(h, key);
        let bits = self.mix(h);
        let top = self.b.ins().ushr_imm_s(bits, 8);
        let f = self.b.ins().fcvt_from_sint(ir_type(DType::F32, lanes), top);
        let scale = self.b.ins().f32const(1.0 / (1u32 << 24) as f32);
        let scale = self.splat(scale, DType::F32, lanes);
        self.b.ins().fmul(f, scale)
    }

    /// Reinterprets a lane mask as the lanes of `like`'s type.
    fn mask_as(&mut self, mask: Value, like: Value) -> Value {
        let ty = self.b.func.dfg.value_type(like);
        if self.b.func.dfg.value_type(mask) == ty {
            return mask;
        }
        let flags = MemFlagsData::new().with_endianness(cranelift_codegen::ir::Endianness::Little);
        self.b.ins().bitcast(ty, flags, mask)
    }

    /// An elementwise primitive on `lanes`-lane values; `from` is the first operand's dtype.
    fn apply(&mut self, op: &Op, x: &[Value], from: DType, to: DType, lanes: u8) -> Value {
        let float = from.is_float();
        match op {
            Op::Unary(u) => match (u, float) {
                (UnaryOp::Neg, true) => self.b.ins().fneg(x[0]),
                (UnaryOp::Neg, false) => self.b.ins().ineg(x[0]),
                (UnaryOp::Abs, true) => self.b.ins().fabs(x[0]),
                (UnaryOp::Abs, false) => self.b.ins().iabs(x[0]),
                (UnaryOp::Exp, _) => math::exp(&mut self.b, self.target, x[0]),
                (UnaryOp::Log, _) => math::log(&mut self.b, self.target, x[0]),
                (UnaryOp::Tanh, _) => math::tanh(&mut self.b, self.target, x[0]),
                (UnaryOp::Sqrt, _) => self.b.ins().sqrt(x[0]),
                (UnaryOp::Recip, _) => {
                    let one = self.constant(1.0, from);
                    let one = self.splat(one, from, lanes);
                    self.b.ins().fdiv(one, x[0])
                }
            },
            Op::Binary(b) => self.binary(*b, x[0], x[1], from),
            Op::Compare(c) => self.compare(*c, x[0], x[1], from),
            Op::Select => {
                if lanes == 1 {
                    self.b.ins().select(x[0], x[1], x[2])
                } else {
                    let mask = self.mask_as(x[0], x[1]);
                    self.b.ins().bitselect(mask, x[1], x[2])
                }
            }
            Op::Cast(_) => self.cast(x[0], from, to, lanes),
            _ => unreachable!("{} is not elementwise", op.mnemonic()),
        }
    }

    fn binary(&mut self, op: BinaryOp, a: Value, c: Value, dtype: DType) -> Value {
        let float = dtype.is_float();
        match (op, float) {
            (BinaryOp::Add, true) => self.b.ins().fadd(a, c),
            (BinaryOp::Add, false) => self.b.ins().iadd(a, c),
            (BinaryOp::Sub, true) => self.b.ins().fsub(a, c),
            (BinaryOp::Sub, false) => self.b.ins().isub(a, c),
            (BinaryOp::Mul, true) => self.b.ins().fmul(a, c),
            (BinaryOp::Mul, false) => self.b.ins().imul(a, c),
            (BinaryOp::Div, true) => self.b.ins().fdiv(a, c),
            (BinaryOp::Div, false) => self.int_div(a, c),
            (BinaryOp::Max, true) => math::max(&mut self.b, a, c),
            (BinaryOp::Max, false) => self.b.ins().smax(a, c),
            (BinaryOp::Min, true) => math::min(&mut self.b, a, c),
            (BinaryOp::Min, false) => self.b.ins().smin(a, c),
            (BinaryOp::Pow, _) => self.pow(a, c, dtype),
        }
    }

    /// Truncating `i32` division that never traps: 0 where `c` is 0, wrapping for
    /// `i32::MIN / -1`.
    fn int_div(&mut self, a: Value, c: Value) -> Value {
        let zero = self.b.ins().icmp_imm_s(IntCC::Equal, c, 0);
        let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, c, -1);
        let unsafe_divisor = self.b.ins().bor(zero, minus_one);
        let one = self.b.ins().iconst(types::I32, 1);
        let safe = self.b.ins().select(unsafe_divisor, one, c);
        let q = self.b.ins().sdiv(a, safe);
        let negated = self.b.ins().ineg(a);
        let q = self.b.ins().select(minus_one, negated, q);
        let z = self.b.ins().iconst(types::I32, 0);
        self.b.ins().select(zero, z, q)
    }

    /// `a^c` through Rust's `powf` (scalar only; stages using pow do not vectorize).
    fn pow(&mut self, a: Value, c: Value, dtype: DType) -> Value {
        let ty = ir_type(dtype, 1);
        let mut sig = Signature::new(self.b.func.signature.call_conv);
        sig.params.extend([AbiParam::new(ty), AbiParam::new(ty)]);
        sig.returns.push(AbiParam::new(ty));
        let sig = self.b.import_signature(sig);
        let f = match dtype {
            DType::F64 => pow_f64 as *const u8,
            _ => pow_f32 as *const u8,
        };
        let f = self.b.ins().iconst(types::I64, f as i64);
        let call = self.b.ins().call_indirect(sig, f, &[a, c]);
        self.b.inst_results(call)[0]
    }

    fn compare(&mut self, op: CmpOp, a: Value, c: Value, dtype: DType) -> Value {
        if dtype.is_float() {
            let cc = match op {
                CmpOp::Eq => FloatCC::Equal,
                CmpOp::Ne => FloatCC::NotEqual,
                CmpOp::Lt => FloatCC::LessThan,
                CmpOp::Le => FloatCC::LessThanOrEqual,
                CmpOp::Gt => FloatCC::GreaterThan,
                CmpOp::Ge => FloatCC::GreaterThanOrEqual,
            };
            return self.b.ins().fcmp(cc, a, c);
        }
        // Booleans compare unsigned (false < true, whether 0/1 or lane masks 0/-1).
        let unsigned = dtype == DType::Bool;
        let cc = match (op, unsigned) {
            (CmpOp::Eq, _) => IntCC::Equal,
            (CmpOp::Ne, _) => IntCC::NotEqual,
            (CmpOp::Lt, false) => IntCC::SignedLessThan,
            (CmpOp::Le, false) => IntCC::SignedLessThanOrEqual,
            (CmpOp::Gt, false) => IntCC::SignedGreaterThan,
            (CmpOp::Ge, false) => IntCC::SignedGreaterThanOrEqual,
            (CmpOp::Lt, true) => IntCC::UnsignedLessThan,
            (CmpOp::Le, true) => IntCC::UnsignedLessThanOrEqual,
            (CmpOp::Gt, true) => IntCC::UnsignedGreaterThan,
            (CmpOp::Ge, true) => IntCC::UnsignedGreaterThanOrEqual,
        };
        self.b.ins().icmp(cc, a, c)
    }

    fn cast(&mut self, x: Value, from: DType, to: DType, lanes: u8) -> Value {
        let ty = ir_type(to, lanes);
        match (from, to) {
            _ if from == to => x,
            (DType::F32, DType::F64) => self.b.ins().fpromote(ty, x),
            (DType::F64, DType::F32) => self.b.ins().fdemote(ty, x),
            (DType::F32 | DType::F64, DType::I32) => self.b.ins().fcvt_to_sint_sat(ty, x),
            (DType::I32, DType::F32 | DType::F64) => self.b.ins().fcvt_from_sint(ty, x),
            (_, DType::Bool) => {
                let zero = self.constant(0.0, from);
                let zero = self.splat(zero, from, lanes);
                if from.is_float() {
                    self.b.ins().fcmp(FloatCC::NotEqual, x, zero)
                } else {
                    self.b.ins().icmp(IntCC::NotEqual, x, zero)
                }
            }
            (DType::Bool, _) => {
                let one = self.constant(1.0, to);
                let zero = self.constant(0.0, to);
                if lanes == 1 {
                    return self.b.ins().select(x, one, zero);
                }
                let (one, zero) = (self.splat(one, to, lanes), self.splat(zero, to, lanes));
                let mask = self.mask_as(x, one);
                self.b.ins().bitselect(mask, one, zero)
            }
            _ => unreachable!("no cast from {from} to {to}"),
        }
    }
}

extern "C" fn pow_f32(a: f32, b: f32) -> f32 {
    a.powf(b)
}

extern "C" fn pow_f64(a: f64, b: f64) -> f64 {
    a.powf(b)
}
