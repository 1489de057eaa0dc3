//! Reductions, dot and scatter_add.

use super::{Case, FLOAT, NUM, arr, case, check, scalar};
use crate::op::{Op, ReduceOp};
use crate::types::DType;
use DType::{F32, I32};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;
/// `2^24`: above it `f32` cannot hold every integer, so `2^24 + 1 + 1` summed in `f32` stays
/// `2^24`, and summed in `f64` becomes `2^24 + 2`.
const BIG: f64 = 16_777_216.0;

pub(super) fn cases() -> Vec<Case> {
    [reduce(), dot(), scatter_add()]
        .into_iter()
        .flatten()
        .collect()
}

fn sum(axes: &[usize]) -> Op {
    Op::Reduce {
        op: ReduceOp::Sum,
        axes: axes.into(),
    }
}

fn max(axes: &[usize]) -> Op {
    Op::Reduce {
        op: ReduceOp::Max,
        axes: axes.into(),
    }
}

fn reduce() -> Vec<Case> {
    let mut cases = vec![];
    for d in NUM {
        let x = arr(d, &[2, 3], &[1.0, 5.0, 3.0, 4.0, 2.0, 6.0]);
        // x[a, b, c] = 6a + 2b + c
        let cube = arr(d, &[2, 3, 2], &(0..12).map(f64::from).collect::<Vec<_>>());
        let empty = arr(d, &[2, 0], &[]);
        let lowest = if d == I32 { i32::MIN as f64 } else { -INF };
        cases.extend([
            case(sum(&[1]), vec![x.clone()], arr(d, &[2], &[9.0, 12.0])),
            case(sum(&[0]), vec![x.clone()], arr(d, &[3], &[5.0, 7.0, 9.0])),
            case(sum(&[0, 1]), vec![x.clone()], scalar(d, 21.0)),
            case(sum(&[]), vec![x.clone()], x.clone()),
            case(
                sum(&[0, 2]),
                vec![cube.clone()],
                arr(d, &[3], &[14.0, 22.0, 30.0]),
            ),
            case(
                sum(&[1]),
                vec![cube.clone()],
                arr(d, &[2, 2], &[6.0, 9.0, 24.0, 27.0]),
            ),
            case(sum(&[1]), vec![empty.clone()], arr(d, &[2], &[0.0, 0.0])),
            case(sum(&[0]), vec![empty.clone()], arr(d, &[0], &[])),
            case(sum(&[]), vec![scalar(d, 3.0)], scalar(d, 3.0)),
            case(max(&[1]), vec![x.clone()], arr(d, &[2], &[5.0, 6.0])),
            case(max(&[0]), vec![x.clone()], arr(d, &[3], &[4.0, 5.0, 6.0])),
            case(max(&[0, 1]), vec![x.clone()], scalar(d, 6.0)),
            case(max(&[]), vec![x.clone()], x.clone()),
            case(max(&[0, 2]), vec![cube], arr(d, &[3], &[7.0, 9.0, 11.0])),
            case(max(&[1]), vec![empty], arr(d, &[2], &[lowest, lowest])),
        ]);
    }
    let (imax, imin) = (i32::MAX as f64, i32::MIN as f64);
    cases.extend([
        case(
            sum(&[0]),
            vec![arr(I32, &[2], &[imax, 1.0])],
            scalar(I32, imin),
        ),
        case(
            max(&[0]),
            vec![arr(I32, &[2], &[imin, imin])],
            scalar(I32, imin),
        ),
        case(
            sum(&[0]),
            vec![arr(F32, &[3], &[BIG, 1.0, 1.0])],
            scalar(F32, BIG + 2.0),
        ),
    ]);
    for d in FLOAT {
        cases.extend([
            case(sum(&[0]), vec![arr(d, &[1], &[-0.0])], scalar(d, -0.0)),
            case(
                sum(&[0]),
                vec![arr(d, &[2], &[-0.0, -0.0])],
                scalar(d, -0.0),
            ),
            case(sum(&[0]), vec![arr(d, &[0], &[])], scalar(d, 0.0)),
            case(
                sum(&[0]),
                vec![arr(d, &[3], &[1.0, NAN, 2.0])],
                scalar(d, NAN),
            ),
            case(sum(&[0]), vec![arr(d, &[2], &[INF, -INF])], scalar(d, NAN)),
            case(
                max(&[0]),
                vec![arr(d, &[3], &[1.0, NAN, 2.0])],
                scalar(d, NAN),
            ),
            case(max(&[0]), vec![arr(d, &[2], &[-0.0, 0.0])], scalar(d, 0.0)),
            case(
                max(&[0]),
                vec![arr(d, &[2], &[-INF, -INF])],
                scalar(d, -INF),
            ),
        ]);
    }
    cases
}

fn dot() -> Vec<Case> {
    let mut cases = vec![];
    // On one rank (the tests' `check` runs it through `Single`), the sum is the operand.
    for d in FLOAT {
        let x = arr(d, &[2], &[-0.0, 1.5]);
        cases.push(case(Op::AllReduce, vec![x.clone()], x));
    }
    for d in NUM {
        let a = arr(d, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let b = arr(d, &[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        // Two batches: [1 2] x [3 4]^T = 11 and [5 6] x [7 8]^T = 83.
        let ba = arr(d, &[2, 1, 2], &[1.0, 2.0, 5.0, 6.0]);
        let bb = arr(d, &[2, 2, 1], &[3.0, 4.0, 7.0, 8.0]);
        // Batch dims [2, 1]: [1 -1] x I and [2 3] x [[0 1] [1 0]].
        let ca = arr(d, &[2, 1, 1, 2], &[1.0, -1.0, 2.0, 3.0]);
        let cb = arr(d, &[2, 1, 2, 2], &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        cases.extend([
            case(
                Op::Dot,
                vec![a, b],
                arr(d, &[2, 2], &[58.0, 64.0, 139.0, 154.0]),
            ),
            case(Op::Dot, vec![ba, bb], arr(d, &[2, 1, 1], &[11.0, 83.0])),
            case(
                Op::Dot,
                vec![ca, cb],
                arr(d, &[2, 1, 1, 2], &[1.0, -1.0, 3.0, 2.0]),
            ),
            case(
                Op::Dot,
                vec![arr(d, &[2, 0], &[]), arr(d, &[0, 3], &[])],
                arr(d, &[2, 3], &[0.0; 6]),
            ),
            case(
                Op::Dot,
                vec![arr(d, &[0, 2], &[]), arr(d, &[2, 3], &[0.0; 6])],
                arr(d, &[0, 3], &[]),
            ),
        ]);
    }
    cases.extend([
        case(
            Op::Dot,
            vec![
                arr(I32, &[1, 2], &[65536.0, 1.0]),
                arr(I32, &[2, 1], &[65536.0, 3.0]),
            ],
            arr(I32, &[1, 1], &[3.0]),
        ),
        case(
            Op::Dot,
            vec![
                arr(F32, &[1, 3], &[BIG, 1.0, 1.0]),
                arr(F32, &[3, 1], &[1.0; 3]),
            ],
            arr(F32, &[1, 1], &[BIG + 2.0]),
        ),
    ]);
    cases
}

fn scatter(axis: usize, size: usize) -> Op {
    Op::ScatterAdd { axis, size }
}

fn scatter_add() -> Vec<Case> {
    let mut cases = vec![];
    for d in NUM {
        let idx = arr(I32, &[4], &[2.0, -1.0, 0.0, 7.0]);
        let u = arr(d, &[4, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        // idx[j] = -1 and 0 land on row 0, 2 and 7 on row 2.
        let rows = arr(d, &[3, 2], &[8.0, 10.0, 0.0, 0.0, 8.0, 10.0]);
        // Along axis 1 with 2-d indices: u[a, j0, j1] is added at [a, idx[j0, j1]].
        let idx2 = arr(I32, &[2, 2], &[0.0, 2.0, 2.0, 1.0]);
        let u2 = arr(d, &[2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 10.0, 20.0, 30.0, 40.0]);
        let cols = arr(d, &[2, 3], &[1.0, 4.0, 5.0, 10.0, 40.0, 50.0]);
        // A scalar index sends all of u to one row.
        let one_row = arr(d, &[2, 3], &[0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
        cases.extend([
            case(scatter(0, 3), vec![idx, u], rows),
            case(scatter(1, 3), vec![idx2, u2], cols),
            case(
                scatter(0, 2),
                vec![scalar(I32, 1.0), arr(d, &[3], &[1.0, 2.0, 3.0])],
                one_row,
            ),
            case(
                scatter(0, 2),
                vec![arr(I32, &[0], &[]), arr(d, &[0, 2], &[])],
                arr(d, &[2, 2], &[0.0; 4]),
            ),
        ]);
    }
    let same = arr(I32, &[3], &[1.0, 1.0, 1.0]);
    cases.extend([
        case(
            scatter(0, 2),
            vec![same.clone(), arr(F32, &[3], &[BIG, 1.0, 1.0])],
            arr(F32, &[2], &[0.0, BIG + 2.0]),
        ),
        case(
            scatter(0, 2),
            vec![same, arr(I32, &[3], &[i32::MAX as f64, 1.0, 1.0])],
            arr(I32, &[2], &[0.0, i32::MIN as f64 + 1.0]),
        ),
    ]);
    cases
}

#[test]
fn reductions() {
    check(reduce());
}

#[test]
fn dot_products() {
    check(dot());
}

#[test]
fn scatter_add_sums_at_clamped_indices() {
    check(scatter_add());
}
