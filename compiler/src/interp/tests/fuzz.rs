//! No panics: every op the operands of a random shape admit evaluates, on any values, to its
//! inferred type.

use super::super::eval_op;
use crate::array::{Array, Data};
use crate::infer::infer;
use crate::op::{BinaryOp, CmpOp, Op, ReduceOp, UnaryOp};
use crate::types::{DType, Shape, Type};
use proptest::prelude::*;
use smallvec::smallvec;

/// Values that break careless arithmetic, converted to each element type.
const NASTY: [f64; 12] = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    2.5,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    i32::MIN as f64,
    i32::MAX as f64,
    1e30,
    -7.0,
];

/// Every op worth trying on `x` (of shape `shape`), with its operands.
fn candidates(x: &Array, seed: &Array) -> Vec<(Op, Vec<Array>)> {
    let shape = x.shape();
    let rank = shape.len();
    let (cond, idx) = (
        apply(Op::Cast(DType::Bool), x),
        apply(Op::Cast(DType::I32), x),
    );
    let extremes = Array::from_i32([3], vec![i32::MIN, 1, i32::MAX]).unwrap();
    let one = |op: Op| (op, vec![x.clone()]);
    let two = |op: Op| (op, vec![x.clone(), x.clone()]);
    let ty = |d| Type::new(d, shape);
    let mut ops = vec![(Op::Select, vec![cond, x.clone(), x.clone()])];
    ops.extend(UnaryOp::ALL.map(|u| one(Op::Unary(u))));
    ops.extend(BinaryOp::ALL.map(|b| two(Op::Binary(b))));
    ops.extend(CmpOp::ALL.map(|c| two(Op::Compare(c))));
    ops.extend(DType::ALL.map(|d| one(Op::Cast(d))));
    for d in DType::ALL {
        ops.push((
            Op::Random {
                stream: 3,
                ty: ty(d),
            },
            vec![seed.clone()],
        ));
        ops.extend((0..rank).map(|axis| (Op::Iota { axis, ty: ty(d) }, vec![])));
    }
    for mask in 0..1usize << rank {
        let axes = (0..rank).filter(|a| mask & (1 << a) != 0).collect();
        ops.push(one(Op::Reduce {
            op: ReduceOp::Sum,
            axes,
        }));
        let axes = (0..rank).filter(|a| mask & (1 << a) != 0).collect();
        ops.push(one(Op::Reduce {
            op: ReduceOp::Max,
            axes,
        }));
    }
    let wider: Shape = shape.iter().map(|&d| if d == 1 { 3 } else { d }).collect();
    let n = |v: usize| -> Shape { smallvec![v; rank] };
    ops.extend([
        one(Op::Reshape(smallvec![x.numel()])),
        one(Op::Permute((0..rank).rev().collect())),
        one(Op::Broadcast(wider)),
        one(Op::Slice {
            start: n(0),
            end: shape.into(),
            step: n(2),
        }),
        one(Op::Pad {
            low: n(1),
            high: n(2),
            interior: n(1),
            value: f64::NAN,
        }),
        one(Op::Windows {
            window: smallvec![1],
            stride: smallvec![2],
            dilation: smallvec![3],
        }),
        one(Op::Windows {
            window: shape.into(),
            stride: n(1),
            dilation: n(1),
        }),
        (
            Op::Dot,
            vec![x.clone(), apply(Op::Permute(swap_last(rank)), x)],
        ),
    ]);
    for axis in 0..rank {
        ops.push(two(Op::Concat { axis }));
        ops.push((Op::Gather { axis }, vec![x.clone(), idx.clone()]));
        ops.push((Op::Gather { axis }, vec![x.clone(), extremes.clone()]));
        ops.push((
            Op::ScatterAdd { axis, size: 2 },
            vec![trailing_index(&idx, axis), x.clone()],
        ));
    }
    ops
}

/// `op` applied to `x` alone.
fn apply(op: Op, x: &Array) -> Array {
    let ty = infer(&op, &[&x.ty()]).unwrap();
    eval_op(&op, &ty, &[x])
}

/// The permutation swapping the last two axes (identity below rank 2).
fn swap_last(rank: usize) -> Shape {
    let mut p: Shape = (0..rank).collect();
    if rank >= 2 {
        p.swap(rank - 2, rank - 1);
    }
    p
}

/// Indices of shape `idx.shape()[axis..]`, taken from the start of `idx` (0 past its end).
fn trailing_index(idx: &Array, axis: usize) -> Array {
    let shape = &idx.shape()[axis..];
    let at = |i| {
        if i < idx.numel() {
            idx.data().get_f64(i)
        } else {
            0.0
        }
    };
    let values = (0..crate::types::numel(shape)).map(at);
    Array::new(shape, Data::from_f64(DType::I32, values)).unwrap()
}

proptest! {
    #[test]
    fn every_well_typed_op_evaluates_to_its_type(
        shape in prop::collection::vec(0usize..4, 0..4),
        dtype in prop::sample::select(DType::ALL.to_vec()),
        picks in prop::collection::vec(0..NASTY.len(), 27),
        seed in any::<i32>(),
    ) {
        let n = crate::types::numel(&shape);
        let values = (0..n).map(|i| NASTY[picks[i % picks.len()]]);
        let x = Array::new(&shape, Data::from_f64(dtype, values)).unwrap();
        let seed = Array::from_i32([], vec![seed]).unwrap();
        for (op, args) in candidates(&x, &seed) {
            let types: Vec<Type> = args.iter().map(Array::ty).collect();
            let refs: Vec<&Type> = types.iter().collect();
            if let Ok(ty) = infer(&op, &refs) {
                let args: Vec<&Array> = args.iter().collect();
                prop_assert_eq!(eval_op(&op, &ty, &args).ty(), ty);
            }
        }
    }
}
