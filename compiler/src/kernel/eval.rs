//! An evaluator of the kernel IR, element by element, through the reference interpreter's
//! primitives. It checks fusion (the kernel IR computes what the graph computes) separately
//! from code generation, and it is how a program is read when debugging: plain and slow.

use super::{Atom, Cond, Expr, ExprId, Index, Kernel, LoopKernel, Program, Role, StageKind};
use crate::array::{Array, Data};
use crate::collective::Single;
use crate::interp::{Evaluation, all_reduce, eval_op, random_uniform};
use crate::op::{BinaryOp, Op, ReduceOp};
use crate::types::{DType, Type, numel};
use std::collections::HashMap;

/// Runs `p` on named inputs (data, params and state) and gives the outputs and the new values
/// of the updated states, like [`crate::interp::run`] (an `all_reduce` as on one rank). Panics on a missing or mistyped input
/// (it is a testing tool).
pub fn eval(p: &Program, inputs: &HashMap<String, Array>) -> Evaluation {
    let mut bufs: Vec<Array> = p
        .buffers
        .iter()
        .map(|b| match &b.role {
            Role::Input(n) | Role::State(n) => {
                let a = inputs[n].clone();
                assert_eq!(a.ty(), b.ty, "input {n}");
                a
            }
            Role::Constant(a) => a.clone(),
            Role::Temp => Array::full(b.ty.dtype, &b.ty.shape, 0.0),
        })
        .collect();
    for k in &p.kernels {
        match k {
            Kernel::Loop(l) => run_loop(l, &mut bufs),
            Kernel::Dot(d) => {
                let (a, b) = (&bufs[d.a.buffer as usize], &bufs[d.b.buffer as usize]);
                let batches = numel(&d.batch);
                let mut out = vec![0.0; batches * d.m * d.n];
                for bi in 0..batches {
                    let at = |m: &super::Matrix| {
                        let mut rest = bi;
                        let mut off = m.offset;
                        for (i, &s) in m.batch_strides.iter().enumerate().rev() {
                            off += (rest % d.batch[i]) as i64 * s;
                            rest /= d.batch[i];
                        }
                        off
                    };
                    let (oa, ob) = (at(&d.a), at(&d.b));
                    for i in 0..d.m {
                        for j in 0..d.n {
                            // The sum starts from the first product, as the interpreter's
                            // does: starting from +0 would turn a sum of -0 products into +0.
                            let mut acc: Option<f64> = None;
                            for l in 0..d.k {
                                let ea = oa + i as i64 * d.a.row_stride + l as i64 * d.a.col_stride;
                                let eb = ob + l as i64 * d.b.row_stride + j as i64 * d.b.col_stride;
                                let x =
                                    a.data().get_f64(ea as usize) * b.data().get_f64(eb as usize);
                                acc = Some(acc.map_or(x, |acc| acc + x));
                            }
                            out[(bi * d.m + i) * d.n + j] = acc.unwrap_or(0.0);
                        }
                    }
                }
                let step = d.descend.map(|s| -bufs[s as usize].data().get_f64(0));
                let o = &mut bufs[d.out as usize];
                if let Some(s) = step {
                    // A descent step: minus the scalar times the product, each rounded.
                    let products = Data::from_f64(o.dtype(), out);
                    let scaled: Vec<f64> = (0..products.len())
                        .map(|i| s * products.get_f64(i))
                        .collect();
                    out = Data::from_f64(o.dtype(), scaled).to_f64_vec();
                }
                if d.accumulate {
                    // Each element's product is rounded to the buffer's type before the
                    // addition, as `gemm` adds a finished product.
                    let products = Data::from_f64(o.dtype(), out);
                    out = (0..products.len())
                        .map(|i| o.data().get_f64(i) + products.get_f64(i))
                        .collect();
                }
                *o = Array::new(o.shape(), Data::from_f64(o.dtype(), out)).expect("sized");
            }
            Kernel::Scatter(s) => {
                let idx = bufs[s.indices as usize].clone();
                let upd = bufs[s.updates as usize].clone();
                let out_ty = p.buffers[s.out as usize].ty.clone();
                let g = scatter_graph_op(s.axis, &out_ty);
                bufs[s.out as usize] = eval_op(&g, &out_ty, &[&idx, &upd]);
            }
            Kernel::AllReduce(a) => {
                for &(i, o) in &a.pairs {
                    bufs[o as usize] = all_reduce(&bufs[i as usize], &Single);
                }
            }
        }
    }
    let outputs = p
        .outputs
        .iter()
        .map(|(n, b)| (n.clone(), bufs[*b as usize].clone()))
        .collect();
    let updates = p
        .updates
        .iter()
        .map(|(n, _, v)| (n.clone(), bufs[*v as usize].clone()))
        .collect();
    Evaluation { outputs, updates }
}

fn scatter_graph_op(axis: usize, out: &Type) -> Op {
    Op::ScatterAdd {
        axis,
        size: out.shape[axis],
    }
}

fn scalar(dtype: DType, v: f64) -> Array {
    Array::scalar(dtype, v)
}

/// Visits every point of the variables `vars` (row-major), setting them in `env`.
fn for_each(vars: &[u32], extents: &[i64], env: &mut [i64], f: &mut dyn FnMut(&mut [i64])) {
    match vars.split_first() {
        None => f(env),
        Some((&v, rest)) => {
            for i in 0..extents[v as usize] {
                env[v as usize] = i;
                for_each(rest, extents, env, f);
            }
        }
    }
}

fn run_loop(k: &LoopKernel, bufs: &mut [Array]) {
    let mut env = vec![0i64; k.extents.len()];
    for_each(&k.outer, &k.extents, &mut env.clone(), &mut |outer_env| {
        env.copy_from_slice(outer_env);
        let mut reduced: Vec<Option<Array>> = vec![None; k.stages.len()];
        for (si, stage) in k.stages.iter().enumerate() {
            let mut acc: Option<Array> = None;
            let mut stores = vec![];
            for_each(&stage.vars, &k.extents, &mut env.clone(), &mut |point| {
                let mut e = Eval {
                    k,
                    bufs,
                    env: point,
                    reduced: &reduced,
                    memo: HashMap::new(),
                };
                match &stage.kind {
                    StageKind::Reduce { op, value } => {
                        let v = e.expr(*value);
                        acc = Some(match acc.take() {
                            None => start(*op, v),
                            Some(a) => combine(*op, a, &v),
                        });
                    }
                    StageKind::Store(list) => {
                        for st in list {
                            let v = e.expr(st.value);
                            stores.push((st.buffer, e.index(&st.offset) as usize, v));
                        }
                    }
                }
            });
            for (b, off, v) in stores {
                set(&mut bufs[b as usize], off, &v);
            }
            if let StageKind::Reduce { op, value } = &stage.kind {
                let dtype = k.exprs[*value as usize].1;
                let r = acc
                    .take()
                    .map_or_else(|| empty_reduction(*op, dtype), |a| finish(a, dtype));
                reduced[si] = Some(r);
            }
        }
    });
}

/// A sum or max of one more element, as the interpreter computes it: float sums accumulate in
/// `f64` and round once at the end ([`finish`]).
fn combine(op: ReduceOp, a: Array, v: &Array) -> Array {
    match op {
        ReduceOp::Sum if v.dtype().is_float() => {
            let s = a.data().get_f64(0) + v.data().get_f64(0);
            scalar(DType::F64, s)
        }
        ReduceOp::Sum => eval_op(&Op::Binary(BinaryOp::Add), &v.ty(), &[&a, v]),
        ReduceOp::Max => eval_op(&Op::Binary(BinaryOp::Max), &v.ty(), &[&a, v]),
    }
}

/// The first element of a reduction, in the accumulator's type.
fn start(op: ReduceOp, v: Array) -> Array {
    if op == ReduceOp::Sum && v.dtype().is_float() {
        scalar(DType::F64, v.data().get_f64(0))
    } else {
        v
    }
}

/// The reduction's value in its element type.
fn finish(acc: Array, dtype: DType) -> Array {
    Array::new([], Data::from_f64(dtype, [acc.data().get_f64(0)])).expect("one")
}

fn empty_reduction(op: ReduceOp, dtype: DType) -> Array {
    match op {
        ReduceOp::Sum => scalar(dtype, 0.0),
        ReduceOp::Max => match dtype {
            DType::I32 => scalar(dtype, i32::MIN as f64),
            _ => scalar(dtype, f64::NEG_INFINITY),
        },
    }
}

fn set(a: &mut Array, off: usize, v: &Array) {
    a.data_mut().copy_element(off, v.data(), 0);
}

struct Eval<'a> {
    k: &'a LoopKernel,
    bufs: &'a [Array],
    env: &'a [i64],
    reduced: &'a [Option<Array>],
    memo: HashMap<ExprId, Array>,
}

impl Eval<'_> {
    fn index(&mut self, i: &Index) -> i64 {
        let mut v = i.constant;
        for (c, a) in &i.terms {
            v += c * match a {
                Atom::Var(x) => self.env[*x as usize],
                Atom::Div(inner, d) => self.index(inner).div_euclid(*d),
                Atom::Mod(inner, d) => self.index(inner).rem_euclid(*d),
                Atom::Data { expr, extent } => {
                    (self.expr(*expr).data().get_f64(0) as i64).clamp(0, extent - 1)
                }
            };
        }
        v
    }

    fn holds(&mut self, conds: &[Cond]) -> bool {
        conds.iter().all(|c| match c {
            Cond::Range { index, lo, hi } => (*lo..*hi).contains(&self.index(index)),
            Cond::Multiple { index, of } => self.index(index).rem_euclid(*of) == 0,
        })
    }

    fn expr(&mut self, id: ExprId) -> Array {
        if let Some(a) = self.memo.get(&id) {
            return a.clone();
        }
        let (e, dtype) = &self.k.exprs[id as usize];
        let v = match e {
            Expr::Load {
                buffer,
                offset,
                guards,
            } => {
                if self.holds(guards) {
                    let off = self.index(offset) as usize;
                    let b = &self.bufs[*buffer as usize];
                    Array::new([], b.data().gather(std::iter::once(Some(off)), 0.0)).expect("one")
                } else {
                    scalar(*dtype, 0.0)
                }
            }
            Expr::Const(c) => scalar(*dtype, *c),
            Expr::Index(i) => scalar(DType::I32, self.index(i) as f64),
            Expr::Test(conds) => Array::from_bool([], vec![self.holds(conds)]).expect("one"),
            Expr::Random {
                stream,
                seed,
                index,
            } => {
                let s = self.expr(*seed).data().get_f64(0) as i32;
                let i = self.index(index) as u32;
                scalar(*dtype, random_uniform(s, *stream, i) as f64)
            }
            Expr::Apply { op, args } => {
                let vals: Vec<Array> = args.iter().map(|&a| self.expr(a)).collect();
                let refs: Vec<&Array> = vals.iter().collect();
                eval_op(op, &Type::scalar(*dtype), &refs)
            }
            Expr::Reduced(s) => {
                let r = self.reduced[*s as usize]
                    .clone()
                    .expect("stages run in order");
                Array::new([], Data::from_f64(*dtype, [r.data().get_f64(0)])).expect("one")
            }
        };
        self.memo.insert(id, v.clone());
        v
    }
}
