//! Leaves and elementwise ops.

use super::{Case, FLOAT, NUM, arr, case, check, each, scalar};
use crate::array::Array;
use crate::interp::random_uniform;
use crate::op::{BinaryOp, CmpOp, Op, UnaryOp};
use crate::types::{DType, Type};
use DType::{Bool, F32, I32};

const INF: f64 = f64::INFINITY;
const NAN: f64 = f64::NAN;
const MAX: f64 = i32::MAX as f64;
const MIN: f64 = i32::MIN as f64;

pub(super) fn cases() -> Vec<Case> {
    [
        leaves(),
        unary(),
        binary(),
        compare(),
        select(),
        stop_gradient(),
        cast(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// `2^-24 * bits`, a value of the generator.
fn uniform(top_bits: u32) -> f64 {
    top_bits as f64 / 16_777_216.0
}

fn leaves() -> Vec<Case> {
    let mut cases = each(&DType::ALL, |d| {
        let c = arr(d, &[2, 2], &[0.0, 1.0, -1.0, 2.0]);
        case(Op::Constant(c.clone()), vec![], c)
    });
    cases.push(case(
        Op::Constant(scalar(F32, 0.5)),
        vec![],
        scalar(F32, 0.5),
    ));
    cases.extend(NUM.iter().flat_map(|&d| {
        let iota = |axis, shape: &[usize]| Op::Iota {
            axis,
            ty: Type::new(d, shape),
        };
        [
            case(
                iota(1, &[2, 3]),
                vec![],
                arr(d, &[2, 3], &[0.0, 1.0, 2.0, 0.0, 1.0, 2.0]),
            ),
            case(
                iota(0, &[2, 3]),
                vec![],
                arr(d, &[2, 3], &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]),
            ),
            case(iota(0, &[0, 3]), vec![], arr(d, &[0, 3], &[])),
        ]
    }));
    // Golden values of the generator, computed independently (in Python).
    let first = [9_719_733, 5_132_941, 4_381_107].map(uniform);
    cases.extend(FLOAT.iter().flat_map(|&d| {
        let random = |stream, shape: &[usize]| Op::Random {
            stream,
            ty: Type::new(d, shape),
        };
        [
            case(
                random(0, &[3]),
                vec![scalar(I32, 0.0)],
                arr(d, &[3], &first),
            ),
            case(
                random(0, &[]),
                vec![scalar(I32, -1.0)],
                scalar(d, uniform(10_773_203)),
            ),
            case(
                random(1, &[1, 1]),
                vec![scalar(I32, 0.0)],
                arr(d, &[1, 1], &[uniform(14_049_791)]),
            ),
            case(
                random(0, &[2, 0]),
                vec![scalar(I32, 0.0)],
                arr(d, &[2, 0], &[]),
            ),
        ]
    }));
    cases
}

/// `op` on the elements `x`, giving `y`, at element type `d`.
fn un(op: UnaryOp, d: DType, x: &[f64], y: &[f64]) -> Case {
    case(
        Op::Unary(op),
        vec![arr(d, &[x.len()], x)],
        arr(d, &[y.len()], y),
    )
}

fn unary() -> Vec<Case> {
    use UnaryOp::*;
    let mut cases = each(&NUM, |d| un(Neg, d, &[1.0, -2.0, 0.0], &[-1.0, 2.0, -0.0]));
    cases.extend(each(&NUM, |d| {
        un(Abs, d, &[-3.0, 0.0, 2.0], &[3.0, 0.0, 2.0])
    }));
    cases.push(un(Neg, I32, &[MIN, MAX], &[MIN, -MAX]));
    cases.push(un(Abs, I32, &[MIN, -MAX], &[MIN, MAX]));
    for d in FLOAT {
        cases.extend([
            un(Neg, d, &[-0.0, INF, NAN], &[0.0, -INF, NAN]),
            un(Abs, d, &[-0.0, -INF, NAN], &[0.0, INF, NAN]),
            un(Exp, d, &[0.0, -INF, INF, NAN], &[1.0, 0.0, INF, NAN]),
            un(
                Exp,
                d,
                &[1.0, -1.0],
                &[std::f64::consts::E, 0.36787944117144233],
            )
            .within(1e-6),
            un(Log, d, &[1.0, 0.0, -1.0, INF], &[0.0, -INF, NAN, INF]),
            un(Log, d, &[2.0], &[std::f64::consts::LN_2]).within(1e-6),
            un(
                Sqrt,
                d,
                &[4.0, 0.25, -0.0, -1.0, INF],
                &[2.0, 0.5, -0.0, NAN, INF],
            ),
            un(
                Recip,
                d,
                &[2.0, -4.0, 0.0, -0.0, INF],
                &[0.5, -0.25, INF, -INF, 0.0],
            ),
            un(
                Tanh,
                d,
                &[0.0, -0.0, INF, -INF, NAN],
                &[0.0, -0.0, 1.0, -1.0, NAN],
            ),
            un(
                Tanh,
                d,
                &[1.0, -0.5],
                &[0.7615941559557649, -0.46211715726000974],
            )
            .within(1e-6),
        ]);
    }
    cases
}

/// `op` on the elements `a` and `b`, giving `y`, at element type `d`.
fn bin(op: BinaryOp, d: DType, a: &[f64], b: &[f64], y: &[f64]) -> Case {
    let n = a.len();
    case(
        Op::Binary(op),
        vec![arr(d, &[n], a), arr(d, &[n], b)],
        arr(d, &[n], y),
    )
}

fn binary() -> Vec<Case> {
    use BinaryOp::*;
    let (a, b) = (&[1.0, -2.0, 3.0, 0.0], &[4.0, 5.0, -6.0, -1.0]);
    let mut cases: Vec<Case> = NUM
        .iter()
        .flat_map(|&d| {
            [
                bin(Add, d, a, b, &[5.0, 3.0, -3.0, -1.0]),
                bin(Sub, d, a, b, &[-3.0, -7.0, 9.0, 1.0]),
                bin(Mul, d, a, b, &[4.0, -10.0, -18.0, -0.0]),
                bin(
                    Div,
                    d,
                    &[8.0, -9.0, 6.0],
                    &[2.0, 3.0, -3.0],
                    &[4.0, -3.0, -2.0],
                ),
                bin(Max, d, a, b, &[4.0, 5.0, 3.0, 0.0]),
                bin(Min, d, a, b, &[1.0, -2.0, -6.0, -1.0]),
            ]
        })
        .collect();
    cases.extend([
        bin(Add, I32, &[MAX, MIN], &[1.0, -1.0], &[MIN, MAX]),
        bin(Sub, I32, &[MIN, MAX], &[1.0, -1.0], &[MAX, MIN]),
        bin(Mul, I32, &[65536.0, MAX], &[65536.0, 2.0], &[0.0, -2.0]),
        bin(
            Div,
            I32,
            &[7.0, -7.0, 5.0, 0.0, MIN],
            &[2.0, 2.0, 0.0, 0.0, -1.0],
            &[3.0, -3.0, 0.0, 0.0, MIN],
        ),
        bin(Max, I32, &[MIN, MAX], &[0.0, 0.0], &[0.0, MAX]),
        bin(Min, I32, &[MIN, MAX], &[0.0, 0.0], &[MIN, 0.0]),
    ]);
    for d in FLOAT {
        let (x, y) = (&[NAN, 1.0, 0.0, -0.0, -INF], &[1.0, NAN, -0.0, 0.0, 2.0]);
        cases.extend([
            bin(
                Add,
                d,
                &[INF, 0.5, -0.0],
                &[-INF, 0.25, -0.0],
                &[NAN, 0.75, -0.0],
            ),
            bin(
                Sub,
                d,
                &[INF, 0.5, 0.0],
                &[INF, 0.25, 0.0],
                &[NAN, 0.25, 0.0],
            ),
            bin(
                Mul,
                d,
                &[INF, 0.5, -0.0],
                &[0.0, -0.5, -0.0],
                &[NAN, -0.25, 0.0],
            ),
            bin(
                Div,
                d,
                &[7.0, -7.0, 1.0, -1.0, 0.0],
                &[2.0, 2.0, 0.0, 0.0, 0.0],
                &[3.5, -3.5, INF, -INF, NAN],
            ),
            bin(Max, d, x, y, &[NAN, NAN, 0.0, 0.0, 2.0]),
            bin(Min, d, x, y, &[NAN, NAN, -0.0, -0.0, -INF]),
            bin(
                Pow,
                d,
                &[2.0, 4.0, 2.0, -8.0, 0.0, NAN, -2.0],
                &[3.0, 0.5, -1.0, 0.5, 0.0, 0.0, 3.0],
                &[8.0, 2.0, 0.5, NAN, 1.0, 1.0, -8.0],
            ),
        ]);
    }
    cases
}

fn compare() -> Vec<Case> {
    let (t, f) = (1.0, 0.0);
    // (op, expected on numbers, on NaN and signed zeros, on booleans)
    let table = [
        (CmpOp::Eq, [f, t, f], [f, t], [t, f, f, t]),
        (CmpOp::Ne, [t, f, t], [t, f], [f, t, t, f]),
        (CmpOp::Lt, [t, f, f], [f, f], [f, t, f, f]),
        (CmpOp::Le, [t, t, f], [f, t], [t, t, f, t]),
        (CmpOp::Gt, [f, f, t], [f, f], [f, f, t, f]),
        (CmpOp::Ge, [f, t, t], [f, t], [t, f, t, t]),
    ];
    let cmp = |op, d, a: &[f64], b: &[f64], y: &[f64]| {
        let n = a.len();
        case(
            Op::Compare(op),
            vec![arr(d, &[n], a), arr(d, &[n], b)],
            arr(Bool, &[n], y),
        )
    };
    let mut cases = vec![];
    for (op, numbers, nans, bools) in table {
        cases.extend(each(&NUM, |d| {
            cmp(op, d, &[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0], &numbers)
        }));
        cases.extend(each(&FLOAT, |d| {
            cmp(op, d, &[NAN, -0.0], &[NAN, 0.0], &nans)
        }));
        cases.push(cmp(op, Bool, &[f, f, t, t], &[f, t, f, t], &bools));
    }
    cases
}

fn select() -> Vec<Case> {
    let c = arr(Bool, &[3], &[1.0, 0.0, 0.0]);
    let mut cases = each(&DType::ALL, |d| {
        let (a, b) = (
            arr(d, &[3], &[1.0, 0.0, 2.0]),
            arr(d, &[3], &[0.0, 3.0, 0.0]),
        );
        case(
            Op::Select,
            vec![c.clone(), a, b],
            arr(d, &[3], &[1.0, 3.0, 0.0]),
        )
    });
    let empty = |d| arr(d, &[0, 2], &[]);
    cases.push(case(
        Op::Select,
        vec![empty(Bool), empty(F32), empty(F32)],
        empty(F32),
    ));
    cases
}

fn stop_gradient() -> Vec<Case> {
    each(&DType::ALL, |d| {
        let x = arr(d, &[2, 2], &[1.0, 0.0, 3.0, 0.0]);
        case(Op::StopGradient, vec![x.clone()], x)
    })
}

fn cast() -> Vec<Case> {
    // Each source array with its conversions to f32, f64, i32 and bool, all written out.
    let from = |x: Array, to: [Array; 4]| to.map(|y| case(Op::Cast(y.dtype()), vec![x.clone()], y));
    let f32s = |v: &[f32]| Array::from_f32([v.len()], v.to_vec()).unwrap();
    let f64s = |v: &[f64]| Array::from_f64([v.len()], v.to_vec()).unwrap();
    let i32s = |v: &[i32]| Array::from_i32([v.len()], v.to_vec()).unwrap();
    let bools = |v: &[bool]| Array::from_bool([v.len()], v.to_vec()).unwrap();
    let (t, f) = (true, false);
    let (imax, imin) = (i32::MAX, i32::MIN);
    let x32 = [-1.5, -0.0, 0.5, 3e9, f32::NAN, f32::NEG_INFINITY];
    let x64 = [-2.5, 1e300, 0.1, f64::NAN, 0.0];
    let xi = [-3, 0, 16_777_217, imax];
    [
        from(
            f32s(&x32),
            [
                f32s(&x32),
                f64s(&[-1.5, -0.0, 0.5, 3e9, NAN, -INF]),
                i32s(&[-1, 0, 0, imax, 0, imin]),
                bools(&[t, f, t, t, t, t]),
            ],
        ),
        from(
            f64s(&x64),
            [
                f32s(&[-2.5, f32::INFINITY, 0.1, f32::NAN, 0.0]),
                f64s(&x64),
                i32s(&[-2, imax, 0, 0, 0]),
                bools(&[t, t, t, t, f]),
            ],
        ),
        from(
            i32s(&xi),
            [
                f32s(&[-3.0, 0.0, 16_777_216.0, 2_147_483_648.0]),
                f64s(&[-3.0, 0.0, 16_777_217.0, MAX]),
                i32s(&xi),
                bools(&[t, f, t, t]),
            ],
        ),
        from(
            bools(&[f, t]),
            [
                f32s(&[0.0, 1.0]),
                f64s(&[0.0, 1.0]),
                i32s(&[0, 1]),
                bools(&[f, t]),
            ],
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn leaves_give_their_values() {
    check(leaves());
}

#[test]
fn unary_ops() {
    check(unary());
}

#[test]
fn binary_ops() {
    check(binary());
}

#[test]
fn comparisons() {
    check(compare());
}

#[test]
fn select_picks_by_condition() {
    check(select());
}

#[test]
fn stop_gradient_is_the_identity() {
    check(stop_gradient());
}

#[test]
fn casts_between_every_pair_of_types() {
    check(cast());
}

#[test]
fn random_uniform_matches_golden_values() {
    let cases = [
        (0, 0, 0, 9_719_733),
        (0, 0, 1, 5_132_941),
        (-1, 0, 0, 10_773_203),
        (42, 7, 5, 1_895_801),
        (0, 1, 0, 14_049_791),
    ];
    for (seed, stream, index, bits) in cases {
        assert_eq!(
            random_uniform(seed, stream, index) as f64,
            uniform(bits),
            "{seed} {stream} {index}"
        );
    }
}

#[test]
fn random_uniform_statistics() {
    let n = 100_000u32;
    let sample = |seed, stream| (0..n).map(move |i| random_uniform(seed, stream, i));
    assert!(sample(7, 3).all(|v| (0.0..1.0).contains(&v)));
    let mean = sample(7, 3).map(f64::from).sum::<f64>() / n as f64;
    let var = sample(7, 3).map(|v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
    assert!((mean - 0.5).abs() < 0.005, "mean {mean}");
    assert!((var - 1.0 / 12.0).abs() < 0.002, "variance {var}");
    // Ten equal bins each hold about a tenth.
    let mut bins = [0u32; 10];
    sample(7, 3).for_each(|v| bins[(f64::from(v) * 10.0) as usize] += 1);
    assert!(
        bins.iter().all(|&b| b.abs_diff(n / 10) < n / 100),
        "{bins:?}"
    );
    // Streams and seeds give different sequences, and neighbours are uncorrelated.
    let first: Vec<f32> = sample(7, 3).take(64).collect();
    assert_ne!(first, sample(7, 4).take(64).collect::<Vec<_>>());
    assert_ne!(first, sample(8, 3).take(64).collect::<Vec<_>>());
    let lag: f64 = (0..n - 1)
        .map(|i| {
            (random_uniform(7, 3, i) as f64 - 0.5) * (random_uniform(7, 3, i + 1) as f64 - 0.5)
        })
        .sum::<f64>()
        / n as f64;
    assert!(lag.abs() < 0.002, "lag-1 covariance {lag}");
}
