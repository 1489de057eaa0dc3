//! [`Tensor`]: a handle on a node of the graph being built, with the operations of the DSL.
//!
//! Elementwise operations follow NumPy's broadcasting rules; axes may be negative (counting
//! from the end). Every operation is `#[track_caller]`, so the nodes it adds carry the user's
//! source line.

use crate::builder::{BuildError, Shared, State, push};
use kiln_compiler::{
    Array, Axes, BinaryOp, CmpOp, DType, NodeId, Op, Origin, ReduceOp, Shape, Type, TypeError,
    TypeErrorKind, UnaryOp,
};
use std::rc::Rc;

/// A symbolic tensor: a node of the graph under construction, with its static type.
///
/// Cloning is cheap (a handle). A tensor produced by a mistake is *poisoned*: its shape is `[]`,
/// operations on it produce poisoned tensors, and [`crate::GraphBuilder::finish`] reports the
/// mistake.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub(crate) state: Shared,
    pub(crate) id: Option<NodeId>,
    ty: Type,
}

impl Tensor {
    pub(crate) fn new(state: &Shared, id: NodeId, ty: Type) -> Tensor {
        Tensor {
            state: Rc::clone(state),
            id: Some(id),
            ty,
        }
    }

    pub(crate) fn poisoned(state: &Shared) -> Tensor {
        Tensor {
            state: Rc::clone(state),
            id: None,
            ty: Type::scalar(DType::F32),
        }
    }

    /// The node this tensor is, or `None` if it is poisoned.
    pub fn node(&self) -> Option<NodeId> {
        self.id
    }

    /// The extents, outermost first (`[]` if poisoned).
    pub fn shape(&self) -> &[usize] {
        &self.ty.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.ty.dtype
    }

    /// The static type.
    pub fn ty(&self) -> &Type {
        &self.ty
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.ty.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.ty.numel()
    }

    /// Gives the node a name for people; dumps print it as `%name`.
    #[track_caller]
    pub fn named(self, name: &str) -> Tensor {
        let origin = Origin::caller();
        if let Some(id) = self.id {
            let mut s = self.state.borrow_mut();
            if let Err(error) = s.graph.set_node_name(id, Some(name.into())) {
                s.fail(BuildError::Graph { error, origin });
            }
        }
        self
    }

    #[track_caller]
    fn op(&self, op: Op, operands: &[&Tensor]) -> Tensor {
        push(&self.state, op, operands, Origin::caller())
    }

    /// A leaf node (constant, iota) in the same graph as `self`.
    #[track_caller]
    pub(crate) fn leaf(&self, op: Op) -> Tensor {
        self.op(op, &[])
    }

    /// Records a type error of the operation `op` and returns a poisoned tensor.
    #[track_caller]
    pub(crate) fn fail(&self, op: &str, kind: TypeErrorKind) -> Tensor {
        if self.id.is_some() {
            let e = TypeError {
                op: op.into(),
                kind,
                origin: Some(Origin::caller()),
            };
            State::fail(&mut self.state.borrow_mut(), BuildError::Type(e));
        }
        Tensor::poisoned(&self.state)
    }

    /// A scalar constant of this tensor's dtype, broadcast as needed where it is used.
    #[track_caller]
    pub fn scalar_like(&self, value: f64) -> Tensor {
        self.op(Op::Constant(Array::scalar(self.dtype(), value)), &[])
    }

    /// A scalar constant of `dtype` in the same graph as `like`.
    #[track_caller]
    pub fn scalar_of(like: &Tensor, value: f64, dtype: DType) -> Tensor {
        like.op(Op::Constant(Array::scalar(dtype, value)), &[])
    }

    /// A constant tensor of this tensor's type, every element `value`.
    #[track_caller]
    pub fn full_like(&self, value: f64) -> Tensor {
        self.scalar_like(value).broadcast_to(self.shape())
    }

    // ---- elementwise, one operand ----

    #[track_caller]
    fn unary(&self, u: UnaryOp) -> Tensor {
        self.op(Op::Unary(u), &[self])
    }

    /// `-x`.
    #[track_caller]
    pub fn neg(&self) -> Tensor {
        self.unary(UnaryOp::Neg)
    }

    /// `|x|`.
    #[track_caller]
    pub fn abs(&self) -> Tensor {
        self.unary(UnaryOp::Abs)
    }

    /// `e^x`.
    #[track_caller]
    pub fn exp(&self) -> Tensor {
        self.unary(UnaryOp::Exp)
    }

    /// Natural logarithm.
    #[track_caller]
    pub fn log(&self) -> Tensor {
        self.unary(UnaryOp::Log)
    }

    /// Square root.
    #[track_caller]
    pub fn sqrt(&self) -> Tensor {
        self.unary(UnaryOp::Sqrt)
    }

    /// `1/x`.
    #[track_caller]
    pub fn recip(&self) -> Tensor {
        self.unary(UnaryOp::Recip)
    }

    /// Hyperbolic tangent.
    #[track_caller]
    pub fn tanh(&self) -> Tensor {
        self.unary(UnaryOp::Tanh)
    }

    /// `x * x`.
    #[track_caller]
    pub fn square(&self) -> Tensor {
        self.mul(self)
    }

    /// The same values, but a constant to differentiation: no gradient flows back through
    /// it (JAX's `stop_gradient`, PyTorch's `detach`).
    #[track_caller]
    pub fn stop_gradient(&self) -> Tensor {
        self.op(Op::StopGradient, &[self])
    }

    /// Conversion to `dtype` (see [`Op::Cast`] for the rules).
    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Tensor {
        self.op(Op::Cast(dtype), &[self])
    }

    // ---- elementwise, two operands, broadcast ----

    /// The shape both operands broadcast to under NumPy's rules, or a shape mismatch.
    #[track_caller]
    fn broadcast_pair(&self, op: &str, other: &Tensor) -> Option<(Tensor, Tensor)> {
        let (a, b) = (self.shape(), other.shape());
        match broadcast_shapes(a, b) {
            Some(shape) => Some((self.broadcast_to(&shape), other.broadcast_to(&shape))),
            None => {
                if other.id.is_some() {
                    self.fail(op, mismatch(&[a, b], "vs"));
                }
                None
            }
        }
    }

    #[track_caller]
    fn elementwise(&self, op: Op, other: &Tensor) -> Tensor {
        match self.broadcast_pair(op.mnemonic(), other) {
            Some((a, b)) => self.op(op, &[&a, &b]),
            None => Tensor::poisoned(&self.state),
        }
    }

    /// `self + other`, broadcast.
    #[track_caller]
    pub fn add(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Add), other)
    }

    /// `self - other`, broadcast.
    #[track_caller]
    pub fn sub(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Sub), other)
    }

    /// `self * other`, broadcast.
    #[track_caller]
    pub fn mul(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Mul), other)
    }

    /// `self / other`, broadcast.
    #[track_caller]
    pub fn div(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Div), other)
    }

    /// The elementwise larger of `self` and `other`, broadcast.
    #[track_caller]
    pub fn maximum(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Max), other)
    }

    /// The elementwise smaller of `self` and `other`, broadcast.
    #[track_caller]
    pub fn minimum(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Min), other)
    }

    /// `self` to the power `other`, broadcast.
    #[track_caller]
    pub fn pow(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Binary(BinaryOp::Pow), other)
    }

    /// `self` to the power of the constant `p`.
    #[track_caller]
    pub fn powf(&self, p: f64) -> Tensor {
        self.pow(&self.scalar_like(p))
    }

    /// `self == other` elementwise (a `bool` tensor), broadcast.
    #[track_caller]
    pub fn eq(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Eq), other)
    }

    /// `self != other` elementwise, broadcast.
    #[track_caller]
    pub fn ne(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Ne), other)
    }

    /// `self < other` elementwise, broadcast.
    #[track_caller]
    pub fn lt(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Lt), other)
    }

    /// `self <= other` elementwise, broadcast.
    #[track_caller]
    pub fn le(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Le), other)
    }

    /// `self > other` elementwise, broadcast.
    #[track_caller]
    pub fn gt(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Gt), other)
    }

    /// `self >= other` elementwise, broadcast.
    #[track_caller]
    pub fn ge(&self, other: &Tensor) -> Tensor {
        self.elementwise(Op::Compare(CmpOp::Ge), other)
    }

    /// `if self { a } else { b }` elementwise; `self` is a `bool` tensor; all three broadcast.
    #[track_caller]
    pub fn select(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let shapes = [self.shape(), a.shape(), b.shape()];
        let Some(shape) =
            broadcast_shapes(shapes[0], shapes[1]).and_then(|s| broadcast_shapes(&s, shapes[2]))
        else {
            if a.id.is_some() && b.id.is_some() {
                return self.fail("select", mismatch(&shapes, "vs"));
            }
            return Tensor::poisoned(&self.state);
        };
        let (c, a, b) = (
            self.broadcast_to(&shape),
            a.broadcast_to(&shape),
            b.broadcast_to(&shape),
        );
        self.op(Op::Select, &[&c, &a, &b])
    }

    // ---- reductions ----

    /// Normalizes possibly negative axes against the rank: sorted, distinct, in range.
    #[track_caller]
    fn axes(&self, op: &str, axes: &[isize]) -> Option<Axes> {
        let rank = self.rank() as isize;
        let mut out = Axes::new();
        for &a in axes {
            let n = if a < 0 { a + rank } else { a };
            if !(0..rank).contains(&n) {
                self.fail(
                    op,
                    TypeErrorKind::BadAttribute(format!(
                        "axis {a} is out of range for a tensor of rank {rank}"
                    )),
                );
                return None;
            }
            out.push(n as usize);
        }
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    #[track_caller]
    fn reduce(&self, op: ReduceOp, axes: &[isize], keep: bool) -> Tensor {
        let Some(axes) = self.axes(op.mnemonic(), axes) else {
            return Tensor::poisoned(&self.state);
        };
        let r = self.op(
            Op::Reduce {
                op,
                axes: axes.clone(),
            },
            &[self],
        );
        if !keep {
            return r;
        }
        let kept: Vec<isize> = (0..self.rank())
            .map(|i| {
                if axes.contains(&i) {
                    1
                } else {
                    self.shape()[i] as isize
                }
            })
            .collect();
        r.reshape(&kept)
    }

    /// Sum over `axes`, which disappear from the shape.
    #[track_caller]
    pub fn sum(&self, axes: &[isize]) -> Tensor {
        self.reduce(ReduceOp::Sum, axes, false)
    }

    /// Sum over `axes`, kept as extents of 1.
    #[track_caller]
    pub fn sum_keepdims(&self, axes: &[isize]) -> Tensor {
        self.reduce(ReduceOp::Sum, axes, true)
    }

    /// Sum of every element (a scalar).
    #[track_caller]
    pub fn sum_all(&self) -> Tensor {
        let all: Vec<isize> = (0..self.rank() as isize).collect();
        self.sum(&all)
    }

    /// Maximum over `axes`, which disappear from the shape.
    #[track_caller]
    pub fn max(&self, axes: &[isize]) -> Tensor {
        self.reduce(ReduceOp::Max, axes, false)
    }

    /// Maximum over `axes`, kept as extents of 1.
    #[track_caller]
    pub fn max_keepdims(&self, axes: &[isize]) -> Tensor {
        self.reduce(ReduceOp::Max, axes, true)
    }

    /// Mean over `axes`, which disappear from the shape.
    #[track_caller]
    pub fn mean(&self, axes: &[isize]) -> Tensor {
        let Some(norm) = self.axes("mean", axes) else {
            return Tensor::poisoned(&self.state);
        };
        let count: usize = norm.iter().map(|&a| self.shape()[a]).product();
        self.sum(axes) / count as f64
    }

    /// Mean of every element (a scalar).
    #[track_caller]
    pub fn mean_all(&self) -> Tensor {
        self.sum_all() / self.numel().max(1) as f64
    }

    // ---- views ----

    /// The same elements under `shape`; one extent may be `-1`, inferred from the rest.
    #[track_caller]
    pub fn reshape(&self, shape: &[isize]) -> Tensor {
        let known: usize = shape
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let holes = shape.iter().filter(|&&d| d < 0).count();
        let bad = holes > 1 || shape.iter().any(|&d| d < -1) || (holes == 1 && known == 0);
        if bad {
            return self.fail(
                "reshape",
                TypeErrorKind::BadAttribute(format!("cannot reshape to {shape:?}")),
            );
        }
        if holes == 1 && !self.numel().is_multiple_of(known) {
            return self.fail(
                "reshape",
                TypeErrorKind::BadAttribute(format!(
                    "{} elements cannot take the shape {shape:?}",
                    self.numel()
                )),
            );
        }
        let target: Shape = shape
            .iter()
            .map(|&d| {
                if d < 0 {
                    self.numel() / known
                } else {
                    d as usize
                }
            })
            .collect();
        if target.as_slice() == self.shape() {
            return self.clone();
        }
        self.op(Op::Reshape(target), &[self])
    }

    /// All elements in one axis.
    #[track_caller]
    pub fn flatten(&self) -> Tensor {
        self.reshape(&[-1])
    }

    /// Axes reordered: result axis `i` is axis `perm[i]`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor {
        self.op(Op::Permute(perm.into()), &[self])
    }

    /// The last two axes swapped.
    #[track_caller]
    pub fn t(&self) -> Tensor {
        let r = self.rank();
        if r < 2 {
            return self.fail(
                "t",
                TypeErrorKind::BadAttribute(format!("rank {r} has no two axes to swap")),
            );
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&perm)
    }

    /// Broadcast to `shape` under NumPy's rules (leading axes added, extents of 1 repeated).
    #[track_caller]
    pub fn broadcast_to(&self, shape: &[usize]) -> Tensor {
        if self.shape() == shape || self.id.is_none() {
            return self.clone();
        }
        let r = self.rank();
        if r > shape.len() {
            return self.fail("broadcast", mismatch(&[self.shape(), shape], "to"));
        }
        let lead = shape.len() - r;
        let src = if lead > 0 {
            let padded: Shape = std::iter::repeat_n(1, lead)
                .chain(self.shape().iter().copied())
                .collect();
            self.op(Op::Reshape(padded), &[self])
        } else {
            self.clone()
        };
        if src.shape() == shape {
            return src;
        }
        src.op(Op::Broadcast(shape.into()), &[&src])
    }

    /// `x[start:end:step]` on every axis.
    #[track_caller]
    pub fn slice(&self, start: &[usize], end: &[usize], step: &[usize]) -> Tensor {
        let op = Op::Slice {
            start: start.into(),
            end: end.into(),
            step: step.into(),
        };
        self.op(op, &[self])
    }

    /// The `len` elements from `start` along `axis` (the other axes whole).
    #[track_caller]
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Tensor {
        let r = self.rank();
        if axis >= r {
            return self.fail(
                "narrow",
                TypeErrorKind::BadAttribute(format!("axis {axis} is out of range for rank {r}")),
            );
        }
        let mut lo: Shape = smallvec::smallvec![0; r];
        let mut hi: Shape = self.shape().into();
        lo[axis] = start;
        hi[axis] = start.saturating_add(len);
        self.slice(&lo, &hi, &vec![1; r])
    }

    /// `low[i]` and `high[i]` elements of `value` added before and after axis `i`.
    #[track_caller]
    pub fn pad(&self, low: &[usize], high: &[usize], value: f64) -> Tensor {
        let op = Op::Pad {
            low: low.into(),
            high: high.into(),
            interior: smallvec::smallvec![0; low.len()],
            value,
        };
        self.op(op, &[self])
    }

    /// Sliding windows over the trailing `window.len()` axes (see [`Op::Windows`]).
    #[track_caller]
    pub fn windows(&self, window: &[usize], stride: &[usize], dilation: &[usize]) -> Tensor {
        let op = Op::Windows {
            window: window.into(),
            stride: stride.into(),
            dilation: dilation.into(),
        };
        self.op(op, &[self])
    }

    // ---- the rest ----

    /// Matrix product over the last two axes, `[.., M, K] x [.., K, N]`; leading (batch) axes
    /// broadcast under NumPy's rules.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        let (a, b) = (self.shape(), other.shape());
        let (ra, rb) = (a.len(), b.len());
        let batch = (ra >= 2 && rb >= 2)
            .then(|| broadcast_shapes(&a[..ra - 2], &b[..rb - 2]))
            .flatten();
        let Some(batch) = batch.filter(|_| a[ra - 1] == b[rb - 2]) else {
            if self.id.is_some() && other.id.is_some() {
                return self.fail("dot", mismatch(&[a, b], "x"));
            }
            return Tensor::poisoned(&self.state);
        };
        let lhs = self.broadcast_to(&[&batch[..], &a[ra - 2..]].concat());
        let rhs = other.broadcast_to(&[&batch[..], &b[rb - 2..]].concat());
        self.op(Op::Dot, &[&lhs, &rhs])
    }

    /// NumPy's `take(x, indices, axis)`: slices of `self` at the `i32` `indices` along `axis`.
    #[track_caller]
    pub fn gather(&self, indices: &Tensor, axis: usize) -> Tensor {
        self.op(Op::Gather { axis }, &[self, indices])
    }

    /// `self` and `others` joined along `axis` (negative counts from the end), in that order.
    #[track_caller]
    pub fn concat(&self, others: &[&Tensor], axis: isize) -> Tensor {
        let Some(axes) = self.axes("concat", &[axis]) else {
            return Tensor::poisoned(&self.state);
        };
        let all: Vec<&Tensor> = std::iter::once(self)
            .chain(others.iter().copied())
            .collect();
        self.op(Op::Concat { axis: axes[0] }, &all)
    }

    /// The index of the largest element along `axis` (the first one among ties), as `i32`.
    #[track_caller]
    pub fn argmax(&self, axis: isize) -> Tensor {
        let Some(axes) = self.axes("argmax", &[axis]) else {
            return Tensor::poisoned(&self.state);
        };
        let a = axes[0];
        let n = self.shape()[a];
        let is_max = self.eq(&self.max_keepdims(&[a as isize]));
        let idx = self.op(
            Op::Iota {
                axis: a,
                ty: Type::new(DType::I32, self.shape()),
            },
            &[],
        );
        let big = idx.scalar_like(n as f64);
        let candidates = is_max.select(&idx, &big);
        // The smallest candidate index is minus the maximum of the negated indices.
        candidates.neg().max(&[a as isize]).neg()
    }
}

/// The shape two shapes broadcast to under NumPy's rules, if they are compatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let r = a.len().max(b.len());
    let at = |s: &[usize], i: usize| {
        let lead = r - s.len();
        if i < lead { 1 } else { s[i - lead] }
    };
    (0..r)
        .map(|i| match (at(a, i), at(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

fn mismatch(shapes: &[&[usize]], sep: &'static str) -> TypeErrorKind {
    TypeErrorKind::ShapeMismatch {
        shapes: shapes.iter().map(|&s| Shape::from_slice(s)).collect(),
        sep,
    }
}
