//! Reverse-mode automatic differentiation as a graph transform.
//!
//! [`grad`] appends to a graph the nodes that compute the gradient of an output with respect to
//! chosen nodes. The gradient graph is made of ordinary primitives, so it can be differentiated
//! again (higher order), optimized and fused like any other.
//!
//! There is one vector-Jacobian product rule per primitive, all in [`vjp`], one `match` arm
//! each. Values that have no gradient are constants to autodiff: non-float nodes (comparisons,
//! integer casts, iota, indices), random numbers and constants. Ties in `max`/`min` (binary and
//! `reduce_max`) pass the whole gradient to one winner: the first operand of a binary op, and
//! the first element in row-major order over the reduced axes of a reduction.

use crate::graph::{Graph, NodeId, Origin};
use crate::infer::TypeError;
use crate::op::{BinaryOp, CmpOp, Op, ReduceOp, UnaryOp};
use crate::types::{Axes, DType, Shape, Type};
use smallvec::smallvec;
use std::collections::{HashMap, HashSet};

/// Why a gradient cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GradError {
    /// The output differentiated is not a float tensor.
    #[error("cannot differentiate `{0}`: only f32 and f64 values have gradients")]
    NotFloat(String),
    /// A node differentiated with respect to is not a float tensor.
    #[error("cannot differentiate with respect to `{0}`: only f32 and f64 values have gradients")]
    WrtNotFloat(String),
    /// A rule produced an ill-typed node: a bug in kiln, reported rather than hidden.
    #[error("internal error in a gradient rule: {0}")]
    Internal(#[from] TypeError),
}

/// Appends the gradient of `sum(of)` with respect to each node of `wrt` and returns the nodes
/// holding them (each of its node's type; zeros where `of` does not depend on it).
pub fn grad(g: &mut Graph, of: NodeId, wrt: &[NodeId]) -> Result<Vec<NodeId>, GradError> {
    let ty = g.node(of).ty.clone();
    let seed = Emit::new(g, None).full(&ty, 1.0)?;
    vjp(g, of, seed, wrt)
}

/// Appends the vector-Jacobian product of `of` with the cotangent `cotangent` (a node of `of`'s
/// type) with respect to each node of `wrt`, and returns the nodes holding them.
pub fn vjp(
    g: &mut Graph,
    of: NodeId,
    cotangent: NodeId,
    wrt: &[NodeId],
) -> Result<Vec<NodeId>, GradError> {
    let describe = |g: &Graph, id: NodeId| {
        let n = g.node(id);
        n.name
            .clone()
            .unwrap_or_else(|| format!("{} {}", n.op.mnemonic(), n.ty))
    };
    if !g.node(of).ty.dtype.is_float() {
        return Err(GradError::NotFloat(describe(g, of)));
    }
    if let Some(&w) = wrt.iter().find(|&&w| !g.node(w).ty.dtype.is_float()) {
        return Err(GradError::WrtNotFloat(describe(g, w)));
    }
    let before: HashSet<NodeId> = g.node_ids().collect();
    let order = g.topo_order();
    let active = active_nodes(g, &order, wrt);
    let mut adjoint: HashMap<NodeId, NodeId> = HashMap::new();
    if active.contains(&of) {
        adjoint.insert(of, cotangent);
    }
    for &y in order.iter().rev() {
        let Some(&dy) = adjoint.get(&y) else { continue };
        let operands = g.operands(y);
        let mut e = Emit::new(g, g.node(y).origin.clone());
        let contributions = rule(&mut e, y, &operands, dy)?;
        for (x, dx) in operands.iter().zip(contributions) {
            let (Some(dx), true) = (dx, active.contains(x)) else {
                continue;
            };
            let total = match adjoint.get(x) {
                Some(&prev) => e.binary(BinaryOp::Add, prev, dx)?,
                None => dx,
            };
            adjoint.insert(*x, total);
        }
    }
    let result = wrt
        .iter()
        .map(|&w| match adjoint.get(&w) {
            Some(&d) => Ok(d),
            None => {
                let ty = g.node(w).ty.clone();
                Ok(Emit::new(g, None).full(&ty, 0.0)?)
            }
        })
        .collect::<Result<Vec<_>, GradError>>()?;
    remove_unused_since(g, &before, &result);
    Ok(result)
}

/// Removes the nodes not in `before` that nothing uses: rules compute a contribution for
/// every float operand, and those of constants are dropped here.
fn remove_unused_since(g: &mut Graph, before: &HashSet<NodeId>, keep: &[NodeId]) {
    let created: Vec<NodeId> = g
        .topo_order()
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    for &id in created.iter().rev() {
        if g.users(id).is_empty() && !keep.contains(&id) {
            g.remove(id);
        }
    }
}

/// The float nodes that depend on some node of `wrt` (including them): the only nodes that
/// carry adjoints.
fn active_nodes(g: &Graph, order: &[NodeId], wrt: &[NodeId]) -> HashSet<NodeId> {
    let mut active: HashSet<NodeId> = wrt.iter().copied().collect();
    for &id in order {
        if g.node(id).ty.dtype.is_float() && g.operands(id).iter().any(|o| active.contains(o)) {
            active.insert(id);
        }
    }
    active
}

/// The contribution of node `y` (with adjoint `dy`) to each operand's adjoint, in operand
/// order; `None` for operands that take no gradient through `y`. One arm per primitive.
fn rule(
    e: &mut Emit<'_>,
    y: NodeId,
    x: &[NodeId],
    dy: NodeId,
) -> Result<Vec<Option<NodeId>>, GradError> {
    let op = e.g.node(y).op.clone();
    let xty = |e: &Emit<'_>, i: usize| e.g.node(x[i]).ty.clone();
    let out = match op {
        Op::Input { .. } | Op::Constant(_) | Op::Iota { .. } | Op::Random { .. } => vec![],
        Op::Compare(_) => vec![None, None],
        Op::StopGradient => vec![None],
        Op::Unary(u) => {
            let d = match u {
                UnaryOp::Neg => e.unary(UnaryOp::Neg, dy)?,
                UnaryOp::Abs => {
                    let zero = e.zeros_like(x[0])?;
                    let pos = e.compare(CmpOp::Gt, x[0], zero)?;
                    let neg = e.compare(CmpOp::Lt, x[0], zero)?;
                    let ndy = e.unary(UnaryOp::Neg, dy)?;
                    let low = e.select(neg, ndy, zero)?;
                    e.select(pos, dy, low)?
                }
                UnaryOp::Exp => e.binary(BinaryOp::Mul, dy, y)?,
                UnaryOp::Log => e.binary(BinaryOp::Div, dy, x[0])?,
                UnaryOp::Sqrt => {
                    let two_y = e.scale(y, 2.0)?;
                    e.binary(BinaryOp::Div, dy, two_y)?
                }
                UnaryOp::Recip => {
                    let yy = e.binary(BinaryOp::Mul, y, y)?;
                    let t = e.binary(BinaryOp::Mul, dy, yy)?;
                    e.unary(UnaryOp::Neg, t)?
                }
                UnaryOp::Tanh => {
                    let yy = e.binary(BinaryOp::Mul, y, y)?;
                    let one = e.full_like(y, 1.0)?;
                    let d = e.binary(BinaryOp::Sub, one, yy)?;
                    e.binary(BinaryOp::Mul, dy, d)?
                }
            };
            vec![Some(d)]
        }
        Op::Binary(b) => {
            let (a, c) = (x[0], x[1]);
            match b {
                BinaryOp::Add => vec![Some(dy), Some(dy)],
                BinaryOp::Sub => vec![Some(dy), Some(e.unary(UnaryOp::Neg, dy)?)],
                BinaryOp::Mul => vec![
                    Some(e.binary(BinaryOp::Mul, dy, c)?),
                    Some(e.binary(BinaryOp::Mul, dy, a)?),
                ],
                BinaryOp::Div => {
                    let da = e.binary(BinaryOp::Div, dy, c)?;
                    let q = e.binary(BinaryOp::Mul, da, y)?;
                    vec![Some(da), Some(e.unary(UnaryOp::Neg, q)?)]
                }
                BinaryOp::Max | BinaryOp::Min => {
                    let cmp = if b == BinaryOp::Max {
                        CmpOp::Ge
                    } else {
                        CmpOp::Le
                    };
                    let first_wins = e.compare(cmp, a, c)?;
                    let zero = e.zeros_like(y)?;
                    vec![
                        Some(e.select(first_wins, dy, zero)?),
                        Some(e.select(first_wins, zero, dy)?),
                    ]
                }
                BinaryOp::Pow => {
                    let one = e.full_like(c, 1.0)?;
                    let c1 = e.binary(BinaryOp::Sub, c, one)?;
                    let p = e.binary(BinaryOp::Pow, a, c1)?;
                    let cp = e.binary(BinaryOp::Mul, c, p)?;
                    let da = e.binary(BinaryOp::Mul, dy, cp)?;
                    // d/dc a^c = a^c log a, taken as 0 where a <= 0 (log undefined there).
                    let zero = e.zeros_like(a)?;
                    let pos = e.compare(CmpOp::Gt, a, zero)?;
                    let one_a = e.full_like(a, 1.0)?;
                    let safe_a = e.select(pos, a, one_a)?;
                    let log = e.unary(UnaryOp::Log, safe_a)?;
                    let ylog = e.binary(BinaryOp::Mul, y, log)?;
                    let dc = e.binary(BinaryOp::Mul, dy, ylog)?;
                    vec![Some(da), Some(e.select(pos, dc, zero)?)]
                }
            }
        }
        Op::Select => {
            let zero = e.zeros_like(y)?;
            vec![
                None,
                Some(e.select(x[0], dy, zero)?),
                Some(e.select(x[0], zero, dy)?),
            ]
        }
        Op::Cast(_) => {
            let src = xty(e, 0).dtype;
            vec![
                src.is_float()
                    .then(|| e.add(Op::Cast(src), &[dy]))
                    .transpose()?,
            ]
        }
        Op::Reduce {
            op: ReduceOp::Sum,
            axes,
        } => {
            let xt = xty(e, 0);
            vec![Some(e.unreduce(dy, &xt.shape, &axes)?)]
        }
        Op::Reduce {
            op: ReduceOp::Max,
            axes,
        } => vec![Some(reduce_max_vjp(e, x[0], y, dy, &axes)?)],
        Op::Reshape(_) => vec![Some(e.add(Op::Reshape(xty(e, 0).shape), &[dy])?)],
        Op::Permute(perm) => {
            let mut inv: Axes = smallvec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![Some(e.add(Op::Permute(inv), &[dy])?)]
        }
        Op::Broadcast(shape) => {
            let xs = xty(e, 0).shape;
            let axes: Axes = (0..xs.len()).filter(|&i| xs[i] != shape[i]).collect();
            vec![Some(e.sum_to(dy, &axes, &xs)?)]
        }
        Op::Slice { start, step, .. } => {
            let (xs, ys) = (xty(e, 0).shape, e.g.node(y).ty.shape.clone());
            let interior: Shape = step.iter().map(|s| s - 1).collect();
            vec![Some(e.pad_into(dy, &start, &interior, &ys, &xs)?)]
        }
        Op::Pad { low, interior, .. } => {
            let xs = xty(e, 0).shape;
            let end: Shape = (0..xs.len())
                .map(|i| low[i] + covered(xs[i], interior[i]))
                .collect();
            let step: Shape = interior.iter().map(|s| s + 1).collect();
            vec![Some(e.add(
                Op::Slice {
                    start: low,
                    end,
                    step,
                },
                &[dy],
            )?)]
        }
        Op::Windows {
            window,
            stride,
            dilation,
        } => {
            vec![Some(windows_vjp(
                e,
                &xty(e, 0).shape,
                dy,
                &window,
                &stride,
                &dilation,
            )?)]
        }
        Op::Concat { axis } => {
            let mut offset = 0;
            let mut out = Vec::with_capacity(x.len());
            for i in 0..x.len() {
                let xs = xty(e, i).shape;
                let mut start: Shape = smallvec![0; xs.len()];
                let mut end = e.g.node(y).ty.shape.clone();
                start[axis] = offset;
                end[axis] = offset + xs[axis];
                offset += xs[axis];
                let step = smallvec![1; xs.len()];
                out.push(Some(e.add(Op::Slice { start, end, step }, &[dy])?));
            }
            out
        }
        Op::Dot => {
            let bt = e.transpose(x[1])?;
            let at = e.transpose(x[0])?;
            vec![
                Some(e.add(Op::Dot, &[dy, bt])?),
                Some(e.add(Op::Dot, &[at, dy])?),
            ]
        }
        Op::Gather { axis } => {
            let size = xty(e, 0).shape[axis];
            vec![
                Some(e.add(Op::ScatterAdd { axis, size }, &[x[1], dy])?),
                None,
            ]
        }
        Op::ScatterAdd { axis, .. } => vec![None, Some(e.add(Op::Gather { axis }, &[dy, x[0]])?)],
        // Each rank's operand adds to every rank's result, so its adjoint is the sum of every
        // rank's adjoint.
        Op::AllReduce => vec![Some(e.add(Op::AllReduce, &[dy])?)],
    };
    Ok(out)
}

/// Elements an axis of extent `n` spans once `interior` elements are put between neighbours.
fn covered(n: usize, interior: usize) -> usize {
    n + n.saturating_sub(1) * interior
}

/// The gradient of `reduce_max` over `axes`: `dy` goes to the first maximal element (row-major
/// over the reduced axes) of each reduced group, zero elsewhere.
fn reduce_max_vjp(
    e: &mut Emit<'_>,
    x: NodeId,
    y: NodeId,
    dy: NodeId,
    axes: &[usize],
) -> Result<NodeId, GradError> {
    let xt = e.g.node(x).ty.clone();
    let rank = xt.rank();
    // Move the reduced axes last and flatten them into one axis of extent r.
    let kept: Axes = (0..rank).filter(|i| !axes.contains(i)).collect();
    let perm: Axes = kept.iter().chain(axes).copied().collect();
    let r: usize = axes.iter().map(|&a| xt.shape[a]).product();
    let mut flat: Shape = kept.iter().map(|&a| xt.shape[a]).collect();
    let outer = flat.clone();
    flat.push(r);
    let mut column = outer.clone();
    column.push(1);
    let permuted = e.permute(x, &perm)?;
    let xf = e.add(Op::Reshape(flat.clone()), &[permuted])?;
    let yc = e.add(Op::Reshape(column.clone()), &[y])?;
    let yb = e.add(Op::Broadcast(flat.clone()), &[yc])?;
    let is_max = e.compare(CmpOp::Eq, xf, yb)?;
    let last = flat.len() - 1;
    let idx = e.add(
        Op::Iota {
            axis: last,
            ty: Type::new(DType::I32, &flat),
        },
        &[],
    )?;
    let past_end = e.full(&Type::new(DType::I32, &flat), r as f64)?;
    let candidates = e.select(is_max, idx, past_end)?;
    let neg = e.unary(UnaryOp::Neg, candidates)?;
    let max_neg = e.add(
        Op::Reduce {
            op: ReduceOp::Max,
            axes: smallvec![last],
        },
        &[neg],
    )?;
    let first = e.unary(UnaryOp::Neg, max_neg)?;
    let first = e.add(Op::Reshape(column.clone()), &[first])?;
    let first = e.add(Op::Broadcast(flat.clone()), &[first])?;
    let winner = e.compare(CmpOp::Eq, idx, first)?;
    let dyc = e.add(Op::Reshape(column), &[dy])?;
    let dyb = e.add(Op::Broadcast(flat.clone()), &[dyc])?;
    let zero = e.zeros_like(dyb)?;
    let df = e.select(winner, dyb, zero)?;
    let permuted_shape: Shape = perm.iter().map(|&p| xt.shape[p]).collect();
    let dp = e.add(Op::Reshape(permuted_shape), &[df])?;
    let mut inv: Axes = smallvec![0; rank];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    e.permute(dp, &inv)
}

/// The gradient of a window view: each window position's slice of `dy` lands, dilated by the
/// stride, at its offset in the operand; the contributions add up.
fn windows_vjp(
    e: &mut Emit<'_>,
    xs: &[usize],
    dy: NodeId,
    window: &[usize],
    stride: &[usize],
    dilation: &[usize],
) -> Result<NodeId, GradError> {
    let k = window.len();
    if (0..k).all(|i| stride[i] > 1 && window[i].is_multiple_of(stride[i]) && dilation[i] == 1) {
        return tiled_windows_vjp(e, xs, dy, window, stride);
    }
    let lead = xs.len() - k;
    let ys = e.g.node(dy).ty.shape.clone();
    let mut part_shape: Shape = ys[..lead].into();
    part_shape.extend_from_slice(&ys[lead..lead + k]);
    let ones: Shape = smallvec![1; k];
    sum_over(e, window, |e, offset| {
        let part = offset_slice(e, dy, &ys, lead, offset, &ones)?;
        let part = e.add(Op::Reshape(ys[..lead + k].into()), &[part])?;
        let mut low: Shape = smallvec![0; xs.len()];
        let mut interior: Shape = smallvec![0; xs.len()];
        for i in 0..k {
            low[lead + i] = offset[i] * dilation[i];
            interior[lead + i] = stride[i] - 1;
        }
        e.pad_into(part, &low, &interior, &part_shape, xs)
    })
}

/// The gradient of a window view whose windows are whole multiples of their stride (4x4
/// windows every 2 elements, say), without dilation: each window is `window / stride` tiles
/// of `stride` elements per axis, and the windows' tiles at one tile offset `q` are a tiling
/// of `x` shifted by `q stride`, a reshape and a permutation. So the gradient sums, for each
/// tile offset, `dy`'s elements at that offset laid out as the tiling (padded by whole tiles
/// to `x`'s extent in tiles): `(window / stride)^k` plain shifted reads per element, where
/// the general rule sums `window^k` reads spaced `stride` apart, each testing its position.
fn tiled_windows_vjp(
    e: &mut Emit<'_>,
    xs: &[usize],
    dy: NodeId,
    window: &[usize],
    stride: &[usize],
) -> Result<NodeId, GradError> {
    let k = window.len();
    let lead = xs.len() - k;
    let ys = e.g.node(dy).ty.shape.clone();
    let positions = &ys[lead..lead + k];
    let tiles: Shape = (0..k).map(|i| window[i] / stride[i]).collect();
    // Tiles per axis that the windows cover.
    let covered: Shape = (0..k).map(|i| positions[i] + tiles[i] - 1).collect();
    // [lead.., P1, s1, P2, s2, ..]: each position axis followed by its offsets in a tile.
    let mut perm: Axes = (0..lead).collect();
    for i in 0..k {
        perm.extend([lead + i, lead + k + i]);
    }
    let total = sum_over(e, &tiles, |e, q| {
        let offset: Shape = (0..k).map(|i| q[i] * stride[i]).collect();
        let part = offset_slice(e, dy, &ys, lead, &offset, stride)?;
        let part = e.add(Op::Permute(perm.clone()), &[part])?;
        let mut low: Shape = smallvec![0; lead + 2 * k];
        let mut high: Shape = smallvec![0; lead + 2 * k];
        for i in 0..k {
            low[lead + 2 * i] = q[i];
            high[lead + 2 * i] = covered[i] - positions[i] - q[i];
        }
        let interior = smallvec![0; lead + 2 * k];
        let op = Op::Pad {
            low,
            high,
            interior,
            value: 0.0,
        };
        e.add(op, &[part])
    })?;
    // [lead.., covered1 s1, covered2 s2, ..], then zeros up to x's extents.
    let mut flat: Shape = ys[..lead].into();
    flat.extend((0..k).map(|i| covered[i] * stride[i]));
    let flat_node = e.add(Op::Reshape(flat.clone()), &[total])?;
    if flat[..] == xs[..] {
        return Ok(flat_node);
    }
    let zeros: Shape = smallvec![0; xs.len()];
    e.pad_into(flat_node, &zeros, &zeros, &flat, xs)
}

/// The elements `offset[i]..offset[i] + len[i]` of each window axis of `dy` (shape `ys`, its
/// window axes the last `offset.len()`, after `lead` batch and as many position axes).
fn offset_slice(
    e: &mut Emit<'_>,
    dy: NodeId,
    ys: &[usize],
    lead: usize,
    offset: &[usize],
    len: &[usize],
) -> Result<NodeId, GradError> {
    let k = offset.len();
    let mut start: Shape = smallvec![0; ys.len()];
    let mut end: Shape = ys.into();
    for i in 0..k {
        start[lead + k + i] = offset[i];
        end[lead + k + i] = offset[i] + len[i];
    }
    let step = smallvec![1; ys.len()];
    e.add(Op::Slice { start, end, step }, &[dy])
}

/// The sum of `term(e, o)` over every offset `o` in `extents` (row-major, last axis fastest);
/// every extent is at least 1.
fn sum_over(
    e: &mut Emit<'_>,
    extents: &[usize],
    mut term: impl FnMut(&mut Emit<'_>, &[usize]) -> Result<NodeId, GradError>,
) -> Result<NodeId, GradError> {
    let mut offset: Shape = smallvec![0; extents.len()];
    let mut total = term(e, &offset)?;
    loop {
        // Next offset, last axis fastest; done once every axis wraps.
        let mut i = extents.len();
        loop {
            if i == 0 {
                return Ok(total);
            }
            i -= 1;
            offset[i] += 1;
            if offset[i] < extents[i] {
                break;
            }
            offset[i] = 0;
        }
        let next = term(e, &offset)?;
        total = e.binary(BinaryOp::Add, total, next)?;
    }
}

/// Emits nodes carrying one origin (the forward node a rule differentiates).
struct Emit<'g> {
    g: &'g mut Graph,
    origin: Option<Origin>,
}

impl<'g> Emit<'g> {
    fn new(g: &'g mut Graph, origin: Option<Origin>) -> Emit<'g> {
        Emit { g, origin }
    }

    fn add(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId, GradError> {
        Ok(self.g.add(op, operands, self.origin.clone())?)
    }

    fn unary(&mut self, u: UnaryOp, a: NodeId) -> Result<NodeId, GradError> {
        self.add(Op::Unary(u), &[a])
    }

    fn binary(&mut self, b: BinaryOp, a: NodeId, c: NodeId) -> Result<NodeId, GradError> {
        self.add(Op::Binary(b), &[a, c])
    }

    fn compare(&mut self, c: CmpOp, a: NodeId, b: NodeId) -> Result<NodeId, GradError> {
        self.add(Op::Compare(c), &[a, b])
    }

    fn select(&mut self, c: NodeId, a: NodeId, b: NodeId) -> Result<NodeId, GradError> {
        self.add(Op::Select, &[c, a, b])
    }

    /// A tensor of type `ty` whose elements all equal `value`: a scalar constant, broadcast.
    fn full(&mut self, ty: &Type, value: f64) -> Result<NodeId, GradError> {
        let c = self.add(Op::Constant(crate::Array::scalar(ty.dtype, value)), &[])?;
        if ty.rank() == 0 {
            return Ok(c);
        }
        let ones: Shape = smallvec![1; ty.rank()];
        let c = self.add(Op::Reshape(ones), &[c])?;
        self.add(Op::Broadcast(ty.shape.clone()), &[c])
    }

    fn full_like(&mut self, like: NodeId, value: f64) -> Result<NodeId, GradError> {
        let ty = self.g.node(like).ty.clone();
        self.full(&ty, value)
    }

    fn zeros_like(&mut self, like: NodeId) -> Result<NodeId, GradError> {
        self.full_like(like, 0.0)
    }

    /// `a * factor`.
    fn scale(&mut self, a: NodeId, factor: f64) -> Result<NodeId, GradError> {
        let f = self.full_like(a, factor)?;
        self.binary(BinaryOp::Mul, a, f)
    }

    fn permute(&mut self, a: NodeId, perm: &[usize]) -> Result<NodeId, GradError> {
        if perm.iter().copied().eq(0..perm.len()) {
            return Ok(a);
        }
        self.add(Op::Permute(perm.into()), &[a])
    }

    /// The last two axes swapped.
    fn transpose(&mut self, a: NodeId) -> Result<NodeId, GradError> {
        let r = self.g.node(a).ty.rank();
        let mut perm: Axes = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(a, &perm)
    }

    /// `dy` (the result of reducing `shape` over `axes`) broadcast back to `shape`.
    fn unreduce(
        &mut self,
        dy: NodeId,
        shape: &[usize],
        axes: &[usize],
    ) -> Result<NodeId, GradError> {
        let kept: Shape = (0..shape.len())
            .map(|i| if axes.contains(&i) { 1 } else { shape[i] })
            .collect();
        let r = self.add(Op::Reshape(kept), &[dy])?;
        self.add(Op::Broadcast(shape.into()), &[r])
    }

    /// `dy` summed over `axes` (where it was broadcast), reshaped to `shape`.
    fn sum_to(&mut self, dy: NodeId, axes: &[usize], shape: &[usize]) -> Result<NodeId, GradError> {
        let s = self.add(
            Op::Reduce {
                op: ReduceOp::Sum,
                axes: axes.into(),
            },
            &[dy],
        )?;
        self.add(Op::Reshape(shape.into()), &[s])
    }

    /// `part` (of shape `part_shape`) spread into zeros of shape `target`: placed from `low`,
    /// with `interior` zeros between neighbours.
    fn pad_into(
        &mut self,
        part: NodeId,
        low: &[usize],
        interior: &[usize],
        part_shape: &[usize],
        target: &[usize],
    ) -> Result<NodeId, GradError> {
        let high: Shape = (0..target.len())
            .map(|i| target[i] - low[i] - covered(part_shape[i], interior[i]))
            .collect();
        let op = Op::Pad {
            low: low.into(),
            high,
            interior: interior.into(),
            value: 0.0,
        };
        self.add(op, &[part])
    }
}
