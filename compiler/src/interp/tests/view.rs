//! Views, concat and gather: ops that move elements without computing.
//!
//! Each case is written with small integers and checked at every element type (for `bool`,
//! 0 is `false` and anything else `true`).

use super::{Case, arr, case, check, scalar};
use crate::infer::infer;
use crate::op::Op;
use crate::types::{DType, Type};
use DType::{Bool, F32, I32};

pub(super) fn cases() -> Vec<Case> {
    [
        reshape(),
        permute(),
        broadcast(),
        slice(),
        pad(),
        windows(),
        concat(),
        gather(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `0, 1, .., n-1`.
fn count(n: usize) -> Vec<f64> {
    (0..n).map(|i| i as f64).collect()
}

/// The cases `make(d)` gives, at every element type `d`.
fn every(make: impl Fn(DType) -> Vec<Case>) -> Vec<Case> {
    DType::ALL.into_iter().flat_map(make).collect()
}

fn reshape() -> Vec<Case> {
    let to = |shape: &[usize]| Op::Reshape(shape.into());
    every(|d| {
        vec![
            case(
                to(&[3, 2]),
                vec![arr(d, &[2, 3], &count(6))],
                arr(d, &[3, 2], &count(6)),
            ),
            case(
                to(&[6]),
                vec![arr(d, &[2, 3], &count(6))],
                arr(d, &[6], &count(6)),
            ),
            case(to(&[]), vec![arr(d, &[1, 1], &[2.0])], scalar(d, 2.0)),
            case(
                to(&[3, 0]),
                vec![arr(d, &[0, 3], &[])],
                arr(d, &[3, 0], &[]),
            ),
        ]
    })
}

fn permute() -> Vec<Case> {
    let perm = |p: &[usize]| Op::Permute(p.into());
    every(|d| {
        vec![
            case(
                perm(&[1, 0]),
                vec![arr(d, &[2, 3], &count(6))],
                arr(d, &[3, 2], &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]),
            ),
            // out[i, j, k] = x[k, i, j] = 4k + 2i + j
            case(
                perm(&[1, 2, 0]),
                vec![arr(d, &[2, 2, 2], &count(8))],
                arr(d, &[2, 2, 2], &[0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]),
            ),
            case(
                perm(&[0, 1]),
                vec![arr(d, &[2, 3], &count(6))],
                arr(d, &[2, 3], &count(6)),
            ),
            case(perm(&[]), vec![scalar(d, 1.0)], scalar(d, 1.0)),
            case(
                perm(&[1, 0]),
                vec![arr(d, &[0, 2], &[])],
                arr(d, &[2, 0], &[]),
            ),
        ]
    })
}

fn broadcast() -> Vec<Case> {
    let to = |shape: &[usize]| Op::Broadcast(shape.into());
    every(|d| {
        vec![
            case(
                to(&[2, 3]),
                vec![arr(d, &[1, 3], &[1.0, 0.0, 3.0])],
                arr(d, &[2, 3], &[1.0, 0.0, 3.0, 1.0, 0.0, 3.0]),
            ),
            case(
                to(&[2, 3]),
                vec![arr(d, &[2, 1], &[0.0, 2.0])],
                arr(d, &[2, 3], &[0.0, 0.0, 0.0, 2.0, 2.0, 2.0]),
            ),
            case(
                to(&[2, 2]),
                vec![arr(d, &[1, 1], &[5.0])],
                arr(d, &[2, 2], &[5.0; 4]),
            ),
            case(
                to(&[0, 3]),
                vec![arr(d, &[1, 3], &count(3))],
                arr(d, &[0, 3], &[]),
            ),
            case(to(&[]), vec![scalar(d, 4.0)], scalar(d, 4.0)),
        ]
    })
}

fn slice() -> Vec<Case> {
    let slice = |start: &[usize], end: &[usize], step: &[usize]| Op::Slice {
        start: start.into(),
        end: end.into(),
        step: step.into(),
    };
    every(|d| {
        let x = arr(d, &[3, 4], &count(12));
        vec![
            case(
                slice(&[1, 0], &[3, 4], &[1, 2]),
                vec![x.clone()],
                arr(d, &[2, 2], &[4.0, 6.0, 8.0, 10.0]),
            ),
            case(
                slice(&[0, 1], &[3, 4], &[2, 3]),
                vec![x.clone()],
                arr(d, &[2, 1], &[1.0, 9.0]),
            ),
            case(
                slice(&[1], &[5], &[3]),
                vec![arr(d, &[5], &count(5))],
                arr(d, &[2], &[1.0, 4.0]),
            ),
            case(
                slice(&[2, 1], &[2, 4], &[1, 1]),
                vec![x],
                arr(d, &[0, 3], &[]),
            ),
        ]
    })
}

fn pad_op(low: &[usize], high: &[usize], interior: &[usize], value: f64) -> Op {
    Op::Pad {
        low: low.into(),
        high: high.into(),
        interior: interior.into(),
        value,
    }
}

fn pad() -> Vec<Case> {
    let mut cases = every(|d| {
        vec![
            case(
                pad_op(&[1], &[2], &[1], 9.0),
                vec![arr(d, &[3], &[1.0, 2.0, 3.0])],
                arr(d, &[8], &[9.0, 1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 9.0]),
            ),
            case(
                pad_op(&[0, 1], &[1, 0], &[0, 0], 0.0),
                vec![arr(d, &[2, 2], &[1.0, 2.0, 3.0, 4.0])],
                arr(d, &[3, 3], &[0.0, 1.0, 2.0, 0.0, 3.0, 4.0, 0.0, 0.0, 0.0]),
            ),
            case(
                pad_op(&[0, 0], &[0, 1], &[1, 2], 7.0),
                vec![arr(d, &[2, 2], &[1.0, 2.0, 3.0, 4.0])],
                arr(
                    d,
                    &[3, 5],
                    &[
                        1.0, 7.0, 7.0, 2.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 3.0, 7.0, 7.0, 4.0, 7.0,
                    ],
                ),
            ),
            case(
                pad_op(&[1], &[1], &[2], 5.0),
                vec![arr(d, &[0], &[])],
                arr(d, &[2], &[5.0, 5.0]),
            ),
            case(
                pad_op(&[], &[], &[], 5.0),
                vec![scalar(d, 1.0)],
                scalar(d, 1.0),
            ),
        ]
    });
    // The pad value is converted to the element type as `cast` converts.
    let value = pad_op(&[1], &[0], &[0], -1.5);
    cases.extend([
        case(
            value.clone(),
            vec![arr(F32, &[1], &[0.0])],
            arr(F32, &[2], &[-1.5, 0.0]),
        ),
        case(
            value.clone(),
            vec![arr(I32, &[1], &[0.0])],
            arr(I32, &[2], &[-1.0, 0.0]),
        ),
        case(
            value,
            vec![arr(Bool, &[1], &[0.0])],
            arr(Bool, &[2], &[1.0, 0.0]),
        ),
    ]);
    cases
}

fn windows() -> Vec<Case> {
    let win = |window: &[usize], stride: &[usize], dilation: &[usize]| Op::Windows {
        window: window.into(),
        stride: stride.into(),
        dilation: dilation.into(),
    };
    every(|d| {
        let pooled = [
            0.0, 1.0, 4.0, 5.0, 2.0, 3.0, 6.0, 7.0, 8.0, 9.0, 12.0, 13.0, 10.0, 11.0, 14.0, 15.0,
        ];
        let conv = [
            0.0, 1.0, 3.0, 4.0, 1.0, 2.0, 4.0, 5.0, 3.0, 4.0, 6.0, 7.0, 4.0, 5.0, 7.0, 8.0,
        ];
        vec![
            // out[i, j, p, q] = x[2i + p, 2j + q]
            case(
                win(&[2, 2], &[2, 2], &[1, 1]),
                vec![arr(d, &[4, 4], &count(16))],
                arr(d, &[2, 2, 2, 2], &pooled),
            ),
            // out[i, j, p, q] = x[i + p, j + q] on a 3x3
            case(
                win(&[2, 2], &[1, 1], &[1, 1]),
                vec![arr(d, &[3, 3], &count(9))],
                arr(d, &[2, 2, 2, 2], &conv),
            ),
            // out[i, p] = x[i + 2p]
            case(
                win(&[2], &[1], &[2]),
                vec![arr(d, &[5], &count(5))],
                arr(d, &[3, 2], &[0.0, 2.0, 1.0, 3.0, 2.0, 4.0]),
            ),
            // A leading axis is kept: each row is windowed on its own.
            case(
                win(&[2], &[1], &[1]),
                vec![arr(d, &[2, 3], &count(6))],
                arr(d, &[2, 2, 2], &[0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 5.0]),
            ),
            case(
                win(&[2], &[1], &[1]),
                vec![arr(d, &[0, 3], &[])],
                arr(d, &[0, 2, 2], &[]),
            ),
        ]
    })
}

fn concat() -> Vec<Case> {
    let along = |axis| Op::Concat { axis };
    every(|d| {
        let a = arr(d, &[2, 1], &[1.0, 2.0]);
        let b = arr(d, &[2, 2], &[3.0, 4.0, 5.0, 0.0]);
        vec![
            case(
                along(1),
                vec![a.clone(), b.clone()],
                arr(d, &[2, 3], &[1.0, 3.0, 4.0, 2.0, 5.0, 0.0]),
            ),
            case(
                along(0),
                vec![b.clone(), b.clone()],
                arr(d, &[4, 2], &[3.0, 4.0, 5.0, 0.0, 3.0, 4.0, 5.0, 0.0]),
            ),
            case(
                along(1),
                vec![b.clone(), arr(d, &[2, 0], &[]), a.clone()],
                arr(d, &[2, 3], &[3.0, 4.0, 1.0, 5.0, 0.0, 2.0]),
            ),
            case(along(0), vec![a.clone()], a),
            case(
                along(0),
                vec![arr(d, &[0, 2], &[]), arr(d, &[0, 2], &[])],
                arr(d, &[0, 2], &[]),
            ),
            case(along(0), vec![arr(d, &[0, 2], &[]), b.clone()], b),
        ]
    })
}

fn gather() -> Vec<Case> {
    let axis = |axis| Op::Gather { axis };
    let cases = every(|d| {
        let rows = arr(d, &[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 0.0]);
        let wide = arr(d, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 0.0]);
        vec![
            // Indices -1 and 7 clamp to 0 and 2.
            case(
                axis(0),
                vec![rows.clone(), arr(I32, &[4], &[2.0, -1.0, 0.0, 7.0])],
                arr(d, &[4, 2], &[5.0, 0.0, 1.0, 2.0, 1.0, 2.0, 5.0, 0.0]),
            ),
            // out[a, j0, j1] = x[a, idx[j0, j1]]
            case(
                axis(1),
                vec![wide, arr(I32, &[2, 2], &[0.0, 2.0, 1.0, 1.0])],
                arr(d, &[2, 2, 2], &[1.0, 3.0, 2.0, 2.0, 4.0, 0.0, 5.0, 5.0]),
            ),
            case(
                axis(0),
                vec![rows.clone(), scalar(I32, 1.0)],
                arr(d, &[2], &[3.0, 4.0]),
            ),
            case(
                axis(0),
                vec![rows, arr(I32, &[0], &[])],
                arr(d, &[0, 2], &[]),
            ),
            case(
                axis(0),
                vec![arr(d, &[3], &[4.0, 0.0, 6.0]), scalar(I32, i32::MIN as f64)],
                scalar(d, 4.0),
            ),
        ]
    });
    // From an axis of extent 0 there is nothing to clamp to: inference refuses the gather.
    let empty = Type::new(F32, [0, 2]);
    let idx = Type::new(I32, [2]);
    assert!(infer(&axis(0), &[&empty, &idx]).is_err());
    cases
}

#[test]
fn reshapes() {
    check(reshape());
}

#[test]
fn permutes() {
    check(permute());
}

#[test]
fn broadcasts() {
    check(broadcast());
}

#[test]
fn slices() {
    check(slice());
}

#[test]
fn pads_with_interior() {
    check(pad());
}

#[test]
fn windows_with_stride_and_dilation() {
    check(windows());
}

#[test]
fn concats() {
    check(concat());
}

#[test]
fn gathers_with_clamping() {
    check(gather());
}
