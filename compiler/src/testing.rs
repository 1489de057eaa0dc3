//! Test support shared by the crate's tests: random well-typed graphs covering every op (with
//! the redundancy optimization passes remove: duplicates, no-op ops, view chains, identities
//! of arithmetic), random values for their inputs, and the proptest configuration.

use crate::array::{Array, Data};
use crate::graph::{Graph, NodeId, Origin};
use crate::op::{BinaryOp, CmpOp, InputKind, Op, ReduceOp, UnaryOp};
use crate::types::{DType, Shape, Type};
use proptest::prelude::ProptestConfig;
use std::collections::HashMap;

/// 256 cases, or `PROPTEST_CASES` when set (`with_cases` alone would ignore the variable).
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(256))
}

/// SplitMix64: a small deterministic generator, so one `u64` from proptest picks a graph.
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator seeded with `seed`.
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// A float, never NaN: often a signed zero (where identities of arithmetic go wrong) or
    /// another special value, else random bits.
    fn float(&mut self) -> f64 {
        let special = [
            1.0,
            -1.0,
            0.1,
            -2.5,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e-310,
            1e300,
        ];
        let v = match self.below(10) {
            0 => 0.0,
            1 => -0.0,
            2..=5 => self.pick(&special),
            _ => f64::from_bits(self.next()),
        };
        if v.is_nan() { 0.5 } else { v }
    }

    /// An `f32` element: sometimes NaN, often special, else random bits.
    fn f32(&mut self) -> f32 {
        let v = if self.chance(75) {
            self.float() as f32
        } else {
            f32::from_bits(self.next() as u32)
        };
        if v.is_nan() || self.chance(3) {
            f32::NAN
        } else {
            v
        }
    }

    /// An `i32` element: small half of the time, else random bits.
    fn i32(&mut self) -> i32 {
        if self.chance(50) {
            self.below(7) as i32 - 3
        } else {
            self.next() as i32
        }
    }

    /// A random array of type `ty`, all elements equal half of the time.
    pub(crate) fn array(&mut self, ty: &Type) -> Array {
        let n = ty.numel();
        let data = match ty.dtype {
            DType::F32 => Data::F32((0..n).map(|_| self.f32()).collect()),
            DType::F64 => Data::F64(
                (0..n)
                    .map(|_| {
                        if self.chance(3) {
                            f64::NAN
                        } else {
                            self.float()
                        }
                    })
                    .collect(),
            ),
            DType::I32 => Data::I32((0..n).map(|_| self.i32()).collect()),
            DType::Bool => Data::Bool((0..n).map(|_| self.chance(50)).collect()),
        };
        let data = if self.chance(50) {
            data.gather((0..n).map(|_| Some(0)), 0.0)
        } else {
            data
        };
        Array::new(&ty.shape, data).expect("the data fills the shape")
    }
}

const NAMES: [&str; 6] = ["h", "h.1", "a.b", "x_1", "in1", "loss"];
const FILES: [&str; 4] = [
    "examples/mlp.rs",
    "a \"q\" \\ b.rs",
    "ünï/ cöde.rs",
    "tab\tnew\nline",
];

struct Builder {
    r: Rng,
    g: Graph,
    /// Name nodes from a small pool, so that names repeat; else keep every name distinct.
    repeat_names: bool,
}

impl Builder {
    /// Adds a node with a random origin and, sometimes, a random name or none.
    fn add(&mut self, op: Op, operands: &[NodeId]) -> Option<NodeId> {
        let origin = self.r.chance(50).then(|| Origin {
            file: self.r.pick(&FILES).into(),
            line: self.r.next() as u32,
            column: self.r.below(200) as u32,
        });
        let id = self.g.add(op, operands, origin).ok()?;
        if self.r.chance(30) {
            let base = self.r.pick(&NAMES);
            let name = if self.repeat_names {
                base.to_string()
            } else {
                format!("{base}_{}", self.g.len())
            };
            let name = self.r.chance(80).then_some(name);
            self.g.set_node_name(id, name).ok()?;
        }
        Some(id)
    }

    /// A random node whose type satisfies `f`, if there is one.
    fn find(&mut self, f: impl Fn(&Type) -> bool) -> Option<NodeId> {
        let ids: Vec<_> = self
            .g
            .node_ids()
            .filter(|&id| f(&self.g.node(id).ty))
            .collect();
        (!ids.is_empty()).then(|| self.r.pick(&ids))
    }

    fn ty(&mut self, dtypes: &[DType]) -> Type {
        let rank = self.r.below(4);
        let shape: Shape = (0..rank)
            .map(|_| self.r.below(4) + usize::from(self.r.chance(95)))
            .collect();
        Type {
            dtype: self.r.pick(dtypes),
            shape,
        }
    }

    fn extents(&mut self, n: usize, max: usize) -> Shape {
        (0..n).map(|_| self.r.below(max)).collect()
    }

    /// One attempt at a random op on random operands; `None` when it does not type-check.
    fn step(&mut self) -> Option<NodeId> {
        let x = self.find(|_| true)?;
        let t = self.g.node(x).ty.clone();
        let rank = t.rank();
        let same = |b: &mut Builder| b.find(|u| *u == t);
        let (op, operands) = match self.r.below(26) {
            0 => {
                let kind = self
                    .r
                    .pick(&[InputKind::Data, InputKind::Param, InputKind::State]);
                let name = format!("in{}", self.g.len());
                (
                    Op::Input {
                        kind,
                        name,
                        ty: self.ty(&DType::ALL),
                    },
                    vec![],
                )
            }
            1 => {
                let ty = self.ty(&DType::ALL);
                (Op::Constant(self.r.array(&ty)), vec![])
            }
            2 => {
                let ty = self.ty(&[DType::F32, DType::F64, DType::I32]);
                (
                    Op::Iota {
                        axis: self.r.below(ty.rank()),
                        ty,
                    },
                    vec![],
                )
            }
            3 => {
                let seed = self.find(|u| *u == Type::scalar(DType::I32))?;
                (
                    Op::Random {
                        stream: self.r.next() as u32,
                        ty: self.ty(&[DType::F32, DType::F64]),
                    },
                    vec![seed],
                )
            }
            4 => (Op::Unary(self.r.pick(&UnaryOp::ALL)), vec![x]),
            5 => (
                Op::Binary(self.r.pick(&BinaryOp::ALL)),
                vec![x, same(self)?],
            ),
            6 => (Op::Compare(self.r.pick(&CmpOp::ALL)), vec![x, same(self)?]),
            7 => {
                let c = self.find(|u| u.dtype == DType::Bool && u.shape == t.shape)?;
                (Op::Select, vec![c, x, same(self)?])
            }
            8 if self.r.chance(20) => (Op::StopGradient, vec![x]),
            8 => (Op::Cast(self.r.pick(&DType::ALL)), vec![x]),
            9 => {
                let axes = (0..rank).filter(|_| self.r.chance(50)).collect();
                (
                    Op::Reduce {
                        op: self.r.pick(&[ReduceOp::Sum, ReduceOp::Max]),
                        axes,
                    },
                    vec![x],
                )
            }
            10 if rank > 0 && self.r.chance(30) => {
                // Each element of the last axis repeated 2-4 times, as nearest-neighbour
                // upsampling (or a pooling gradient) reads it: its index divides that axis's.
                let times = 2 + self.r.below(3);
                let mut column = t.shape.clone();
                column.push(1);
                let column = self.add(Op::Reshape(column.clone()), &[x])?;
                let mut repeated = t.shape.clone();
                repeated.push(times);
                let repeated = self.add(Op::Broadcast(repeated), &[column])?;
                let mut shape = t.shape.clone();
                shape[rank - 1] *= times;
                (Op::Reshape(shape), vec![repeated])
            }
            10 => {
                let shape = if self.r.chance(50) {
                    Shape::from_slice(&[t.numel()])
                } else {
                    t.shape.iter().rev().copied().collect()
                };
                (Op::Reshape(shape), vec![x])
            }
            11 => (Op::Permute(self.perm(rank)), vec![x]),
            12 => (Op::Broadcast(self.broadcast_shape(&t.shape)), vec![x]),
            13 => {
                let start: Shape = t.shape.iter().map(|&d| self.r.below(d + 1)).collect();
                let end = t
                    .shape
                    .iter()
                    .zip(&start)
                    .map(|(&d, &s)| s + self.r.below(d - s + 1))
                    .collect();
                (
                    Op::Slice {
                        start,
                        end,
                        step: self.extents(rank, 3).iter().map(|s| s + 1).collect(),
                    },
                    vec![x],
                )
            }
            14 => {
                let (low, high, interior) = (
                    self.extents(rank, 3),
                    self.extents(rank, 3),
                    self.extents(rank, 3),
                );
                let value = self.r.float();
                (
                    Op::Pad {
                        low,
                        high,
                        interior,
                        value,
                    },
                    vec![x],
                )
            }
            15 => {
                let k = 1 + self.r.below(rank.min(2));
                let window = self.extents(k, 3).iter().map(|w| w + 1).collect();
                let (stride, dilation) = (self.extents(k, 2), self.extents(k, 2));
                let stride = stride.iter().map(|s| s + 1).collect();
                (
                    Op::Windows {
                        window,
                        stride,
                        dilation: dilation.iter().map(|d| d + 1).collect(),
                    },
                    vec![x],
                )
            }
            16 => {
                let mut operands = vec![x];
                for _ in 0..self.r.below(3) {
                    operands.push(same(self)?);
                }
                (
                    Op::Concat {
                        axis: self.r.below(rank),
                    },
                    operands,
                )
            }
            17 => {
                let mut perm: Shape = (0..rank).collect();
                perm.swap(rank.checked_sub(2)?, rank - 1);
                let xt = self.add(Op::Permute(perm.clone()), &[x])?;
                if t.dtype == DType::Bool || self.r.chance(40) {
                    (Op::Dot, vec![x, xt])
                } else {
                    // A sum of two or three products (a gradient summed over steps), which
                    // fusion computes by adding each product into one buffer. No product
                    // repeats another: the JIT may round two equal products differently (one
                    // operand laid out otherwise), and a comparison of the two would differ.
                    let mut sum = self.add(Op::Dot, &[x, xt])?;
                    let mut used = vec![x];
                    for _ in 0..1 + self.r.below(2) {
                        let last = *used.last().expect("x");
                        let y = match same(self) {
                            Some(y) if !used.contains(&y) => y,
                            _ => self.add(Op::Binary(BinaryOp::Add), &[last, last])?,
                        };
                        used.push(y);
                        let yt = self.add(Op::Permute(perm.clone()), &[y])?;
                        let product = self.add(Op::Dot, &[y, yt])?;
                        sum = self.add(Op::Binary(BinaryOp::Add), &[sum, product])?;
                    }
                    (Op::Unary(UnaryOp::Neg), vec![sum])
                }
            }
            18 => {
                let idx = self.find(|u| u.dtype == DType::I32)?;
                (
                    Op::Gather {
                        axis: self.r.below(rank),
                    },
                    vec![x, idx],
                )
            }
            19 => {
                let idx = self.find(|u| u.dtype == DType::I32)?;
                let axis = self.r.below(rank);
                let size = *t.shape.get(axis)?;
                let u = self.add(Op::Gather { axis }, &[x, idx])?;
                (Op::ScatterAdd { axis, size }, vec![idx, u])
            }
            20 if t.dtype.is_float() && self.r.chance(25) => (Op::AllReduce, vec![x]),
            20 => (self.g.node(x).op.clone(), self.g.operands(x).to_vec()),
            21..=23 => self.with_special(x, &t)?,
            24 => self.on_broadcasts(x, &t)?,
            25 if self.r.chance(50) => self.step_products(x, &t)?,
            25 => self.picked_sum(x, &t)?,
            _ => self.no_op(x, &t)?,
        };
        self.add(op, &operands)
    }

    /// An output reducing some value of rank 2 or more (mostly of at least 4 columns) over
    /// every axis but the last: a column reduction, as a bias gradient sums a batch, whose
    /// outer loop runs in vector lanes.
    fn column_reduction(&mut self) -> Option<()> {
        let columns = |u: &Type, least: usize| {
            u.rank() >= 2 && u.dtype != DType::Bool && u.shape[u.rank() - 1] >= least
        };
        let least = if self.r.chance(75) { 4 } else { 0 };
        let x = self.find(|u| columns(u, least))?;
        let rank = self.g.node(x).ty.rank();
        let op = Op::Reduce {
            op: self.r.pick(&[ReduceOp::Sum, ReduceOp::Max]),
            axes: (0..rank - 1).collect(),
        };
        let id = self.add(op, &[x])?;
        self.g.set_output("columns", id).ok()
    }

    /// A random permutation of `rank` axes.
    fn perm(&mut self, rank: usize) -> Shape {
        let mut perm: Shape = (0..rank).collect();
        for i in (1..rank).rev() {
            perm.swap(i, self.r.below(i + 1));
        }
        perm
    }

    /// `shape` with its extents of 1 broadcast to random extents (1 included).
    fn broadcast_shape(&mut self, shape: &[usize]) -> Shape {
        shape
            .iter()
            .map(|&d| if d == 1 { 1 + self.r.below(3) } else { d })
            .collect()
    }

    /// A tensor of type `ty` with every element `value`, the way autodiff writes one: a scalar
    /// constant reshaped to extents of 1 and broadcast.
    fn splat(&mut self, ty: &Type, value: f64) -> Option<NodeId> {
        let c = self.add(Op::Constant(Array::scalar(ty.dtype, value)), &[])?;
        if ty.rank() == 0 {
            return Some(c);
        }
        let ones = Shape::from_elem(1, ty.rank());
        let r = self.add(Op::Reshape(ones), &[c])?;
        self.add(Op::Broadcast(ty.shape.clone()), &[r])
    }

    /// `x` (of type `t`) combined with a splat of a special value: an identity of arithmetic or
    /// a near miss, a constant condition, or a select between splats of 1 and 0.
    fn with_special(&mut self, x: NodeId, t: &Type) -> Option<(Op, Vec<NodeId>)> {
        let special = [0.0, -0.0, 1.0, -1.0, 2.0, f64::NAN, f64::INFINITY];
        let v = self.r.pick(&special);
        let s = self.splat(t, v)?;
        let bool_ty = Type::new(DType::Bool, &t.shape);
        // Mostly the ops that have identities, some of the others.
        let arithmetic = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];
        let op = Op::Binary(if self.r.chance(75) {
            self.r.pick(&arithmetic)
        } else {
            self.r.pick(&BinaryOp::ALL)
        });
        Some(match self.r.below(4) {
            0 => (op, vec![x, s]),
            1 => (op, vec![s, x]),
            2 => {
                let c = self.splat(&bool_ty, v)?;
                (Op::Select, vec![c, x, s])
            }
            _ => {
                let c = self.find(|u| *u == bool_ty)?;
                let zero = self.r.pick(&[0.0, -0.0]);
                let (one, zero) = (self.splat(t, 1.0)?, self.splat(t, zero)?);
                (Op::Select, vec![c, one, zero])
            }
        })
    }

    /// An elementwise op on `x` (of type `t`) broadcast, or on it and another node broadcast to
    /// the same shape (often from `x`'s shape, sometimes from another).
    fn on_broadcasts(&mut self, x: NodeId, t: &Type) -> Option<(Op, Vec<NodeId>)> {
        let shape = self.broadcast_shape(&t.shape);
        let bx = self.add(Op::Broadcast(shape.clone()), &[x])?;
        if self.r.chance(30) {
            return Some((Op::Unary(self.r.pick(&UnaryOp::ALL)), vec![bx]));
        }
        let fits = |u: &Type| {
            u.dtype == t.dtype
                && u.rank() == shape.len()
                && u.shape.iter().zip(&shape).all(|(&a, &b)| a == b || a == 1)
        };
        let y = if self.r.chance(50) {
            self.find(|u| u == t)?
        } else {
            self.find(fits)?
        };
        let by = self.add(Op::Broadcast(shape), &[y])?;
        Some((Op::Binary(self.r.pick(&BinaryOp::ALL)), vec![bx, by]))
    }

    /// A sum over one axis of `x` masked to the position an index names (a negative
    /// log-likelihood's pick of the label's log-probability), maybe negated, with `+0` or `-0`
    /// where masked; the indices are constants from -1 to the axis's extent, so some fall
    /// outside it.
    fn picked_sum(&mut self, x: NodeId, t: &Type) -> Option<(Op, Vec<NodeId>)> {
        if t.rank() == 0 || t.dtype == DType::Bool {
            return None;
        }
        let axis = self.r.below(t.rank());
        let n = t.shape[axis];
        let mut column = t.shape.clone();
        column[axis] = 1;
        let values = (0..column.iter().product::<usize>())
            .map(|_| self.r.below(n + 2) as i32 - 1)
            .collect();
        let index = Array::from_i32(column.as_slice(), values).ok()?;
        let index = self.add(Op::Constant(index), &[])?;
        let index = self.add(Op::Broadcast(t.shape.clone()), &[index])?;
        let ty = Type::new(DType::I32, &t.shape);
        let iota = self.add(Op::Iota { axis, ty }, &[])?;
        let mask = self.add(Op::Compare(CmpOp::Eq), &[iota, index])?;
        let zero = if self.r.chance(50) { 0.0 } else { -0.0 };
        let zero = self.splat(t, zero)?;
        let mut masked = self.add(Op::Select, &[mask, x, zero])?;
        if self.r.chance(30) {
            masked = self.add(Op::Unary(UnaryOp::Neg), &[masked])?;
        }
        let axes = Shape::from_slice(&[axis]);
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes,
        };
        Some((op, vec![masked]))
    }

    /// The sum of every step of a sequence times one new weight, as an unrolled recurrence's
    /// input projections: `x` (a float of rank 3 or more, `[.., T, .., F]`) sliced at each
    /// index of a middle axis, each slice a matrix of `F` columns times `w: [F, N]`.
    fn step_products(&mut self, x: NodeId, t: &Type) -> Option<(Op, Vec<NodeId>)> {
        let rank = t.rank();
        if rank < 3 || !t.dtype.is_float() {
            return None;
        }
        let axis = self.r.below(rank - 1);
        let f = t.shape[rank - 1];
        let ty = Type::new(t.dtype, [f, 1 + self.r.below(4)]);
        let name = format!("w{}", self.g.len());
        let kind = InputKind::Param;
        let w = self.add(Op::Input { kind, name, ty }, &[])?;
        let rows = (t.shape.iter().enumerate())
            .filter(|&(i, _)| i != axis && i + 1 != rank)
            .map(|(_, &d)| d)
            .product::<usize>();
        let mut sum = None;
        for at in 0..t.shape[axis] {
            let mut start = Shape::from_elem(0, rank);
            start[axis] = at;
            let mut end = t.shape.clone();
            end[axis] = at + 1;
            let step = Shape::from_elem(1, rank);
            let slice = self.add(Op::Slice { start, end, step }, &[x])?;
            let matrix = self.add(Op::Reshape(Shape::from_slice(&[rows, f])), &[slice])?;
            let product = self.add(Op::Dot, &[matrix, w])?;
            sum = Some(match sum {
                None => product,
                Some(s) => self.add(Op::Binary(BinaryOp::Add), &[s, product])?,
            });
        }
        Some((Op::Unary(UnaryOp::Neg), vec![sum?]))
    }

    /// An op that leaves `x` (of type `t`) as it is, or a view of a view of it.
    fn no_op(&mut self, x: NodeId, t: &Type) -> Option<(Op, Vec<NodeId>)> {
        let rank = t.rank();
        let zeros = Shape::from_elem(0, rank);
        Some(match self.r.below(8) {
            0 => {
                let flat = self.add(Op::Reshape(Shape::from_elem(t.numel(), 1)), &[x])?;
                (Op::Reshape(t.shape.clone()), vec![flat])
            }
            1 => {
                let p = self.perm(rank);
                let y = self.add(Op::Permute(p), &[x])?;
                (Op::Permute(self.perm(rank)), vec![y])
            }
            2 => {
                let shape = self.broadcast_shape(&t.shape);
                let y = self.add(Op::Broadcast(shape.clone()), &[x])?;
                (Op::Broadcast(self.broadcast_shape(&shape)), vec![y])
            }
            3 => (Op::Cast(t.dtype), vec![x]),
            4 => (
                Op::Unary(UnaryOp::Neg),
                vec![self.add(Op::Unary(UnaryOp::Neg), &[x])?],
            ),
            5 => {
                let c = self.find(|u| u.dtype == DType::Bool && u.shape == t.shape)?;
                (Op::Select, vec![c, x, x])
            }
            6 => {
                let (end, step) = (t.shape.clone(), Shape::from_elem(1, rank));
                let start = zeros;
                (Op::Slice { start, end, step }, vec![x])
            }
            _ => {
                let value = self.r.float();
                let (low, high, interior) = (zeros.clone(), zeros.clone(), zeros);
                (
                    Op::Pad {
                        low,
                        high,
                        interior,
                        value,
                    },
                    vec![x],
                )
            }
        })
    }
}

/// A random well-typed graph: an `i32[]` seed and a few inputs (one a matrix of up to 24 by
/// 15), then `steps` attempts at random ops, then random outputs (often a column reduction)
/// and updates.
pub fn random_graph(seed: u64, steps: usize) -> Graph {
    let mut r = Rng::new(seed);
    let repeat_names = r.chance(25);
    let mut b = Builder {
        r,
        g: Graph::new("g"),
        repeat_names,
    };
    let seed_ty = Type::scalar(DType::I32);
    b.add(
        Op::Input {
            kind: InputKind::Data,
            name: "seed".into(),
            ty: seed_ty,
        },
        &[],
    );
    for i in 0..3 {
        let ty = b.ty(&[DType::F32, DType::F32, DType::F64, DType::I32]);
        b.add(
            Op::Input {
                kind: InputKind::Param,
                name: format!("p{i}"),
                ty,
            },
            &[],
        );
    }
    // A matrix wider than a vector and longer than an unrolled reduction, often not a
    // multiple of the lanes: its reductions over rows run in vector lanes with a tail.
    let wide = Type::new(
        b.r.pick(&[DType::F32, DType::F32, DType::F64, DType::I32]),
        [1 + b.r.below(24), 4 + b.r.below(12)],
    );
    b.add(
        Op::Input {
            kind: InputKind::Param,
            name: "p3".into(),
            ty: wide,
        },
        &[],
    );
    for _ in 0..steps {
        b.step();
    }
    for k in 0..b.r.below(7) {
        let id = b.find(|_| true).expect("the graph has inputs");
        b.g.set_output(format!("out{k}"), id)
            .expect("output names are distinct");
    }
    if b.r.chance(50) {
        b.column_reduction();
    }
    for id in b.g.inputs() {
        let ty = b.g.node(id).ty.clone();
        let name = b.g.node(id).op.as_input().map(|(_, n)| n.to_string());
        if let (Some(name), Some(value)) = (name, b.find(|u| *u == ty)) {
            // Data inputs are refused, which is fine: the graph only gains valid updates.
            let _ = b.g.set_update(name, value);
        }
    }
    b.g
}

/// A random value for every input of `g`, by name, picked by `seed`.
pub fn random_inputs(g: &Graph, seed: u64) -> HashMap<String, Array> {
    let mut r = Rng::new(seed);
    g.inputs()
        .into_iter()
        .map(|id| {
            let node = g.node(id);
            let (_, name) = node.op.as_input().expect("Graph::inputs gives inputs");
            (name.to_string(), r.array(&node.ty))
        })
        .collect()
}

#[cfg(test)]
#[test]
fn random_graphs_cover_every_op() {
    use crate::op::MNEMONICS;
    use std::collections::HashSet;
    let mut used = HashSet::new();
    for seed in 0..200 {
        let g = random_graph(seed, 40);
        used.extend(g.node_ids().map(|id| g.node(id).op.mnemonic()));
    }
    let missing: Vec<_> = MNEMONICS.iter().filter(|m| !used.contains(*m)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
}
