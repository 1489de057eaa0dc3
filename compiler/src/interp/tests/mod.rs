//! Tests of the interpreter: every primitive on hand-written operands against hand-computed
//! results, for every element type it supports, and `run` on small graphs.

mod elementwise;
mod fuzz;
mod reduce;
mod run;
mod view;

use super::eval_op;
use crate::array::{Array, Data};
use crate::infer::{TypeErrorKind, infer};
use crate::op::{MNEMONICS, Op};
use crate::types::{DType, Type};
use std::collections::{BTreeMap, BTreeSet};

use DType::{F32, F64, I32};

/// The float element types.
const FLOAT: [DType; 2] = [F32, F64];
/// The numeric element types.
const NUM: [DType; 3] = [F32, F64, I32];

/// An array of `dtype` from values written as `f64`, converted as [`Data::from_f64`] converts
/// (so `1.0` is `true` for `bool`).
fn arr(dtype: DType, shape: &[usize], values: &[f64]) -> Array {
    Array::new(shape, Data::from_f64(dtype, values.iter().copied())).unwrap()
}

/// A scalar of `dtype`.
fn scalar(dtype: DType, value: f64) -> Array {
    Array::scalar(dtype, value)
}

/// One op applied to hand-written operands, with its hand-computed result.
struct Case {
    op: Op,
    args: Vec<Array>,
    expected: Array,
    /// Relative error allowed (0: the same bits; any NaN matches any NaN).
    tolerance: f64,
}

/// An exact case.
fn case(op: Op, args: Vec<Array>, expected: Array) -> Case {
    Case {
        op,
        args,
        expected,
        tolerance: 0.0,
    }
}

impl Case {
    /// The same case with a relative error allowed (for transcendental functions).
    fn within(self, tolerance: f64) -> Case {
        Case { tolerance, ..self }
    }

    /// The element type the op is applied at: the operands' for comparisons and casts, the
    /// result's otherwise.
    fn dtype(&self) -> DType {
        match self.op {
            Op::Compare(_) | Op::Cast(_) => self.args[0].dtype(),
            _ => self.expected.dtype(),
        }
    }
}

/// `make(d)` for every `d` in `dtypes`.
fn each(dtypes: &[DType], make: impl Fn(DType) -> Case) -> Vec<Case> {
    dtypes.iter().map(|&d| make(d)).collect()
}

/// True when `got` has the type of `expected` and each element matches: the same bits, or
/// both NaN, or within `tolerance` relative error.
fn matches(got: &Array, expected: &Array, tolerance: f64) -> bool {
    let close = |(g, e): (f64, f64)| {
        let near = tolerance > 0.0 && (g - e).abs() <= tolerance * e.abs();
        g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()) || near
    };
    got.ty() == expected.ty()
        && got
            .to_f64_vec()
            .into_iter()
            .zip(expected.to_f64_vec())
            .all(close)
}

/// Evaluates every case, checking the result type against `infer` and the elements against
/// the hand-computed ones.
fn check(cases: Vec<Case>) {
    for c in cases {
        let types: Vec<Type> = c.args.iter().map(Array::ty).collect();
        let type_refs: Vec<&Type> = types.iter().collect();
        let shown: Vec<String> = c.args.iter().map(Array::to_string).collect();
        let what = format!("{} of ({})", c.op.mnemonic(), shown.join("; "));
        let ty = infer(&c.op, &type_refs).unwrap_or_else(|e| panic!("{what}: ill-typed: {e:?}"));
        assert_eq!(ty, c.expected.ty(), "{what}: result type");
        let args: Vec<&Array> = c.args.iter().collect();
        let got = match c.op {
            Op::AllReduce => crate::interp::all_reduce(args[0], &crate::collective::Single),
            _ => eval_op(&c.op, &ty, &args),
        };
        assert!(
            matches(&got, &c.expected, c.tolerance),
            "{what}: got {got}, expected {}",
            c.expected
        );
    }
}

/// Every case of every test module.
fn all_cases() -> Vec<Case> {
    [elementwise::cases(), reduce::cases(), view::cases()]
        .into_iter()
        .flatten()
        .collect()
}

/// The element types `infer` accepts for the op spelled `mnemonic`, as the tests claim them.
fn supported(mnemonic: &str) -> &'static [DType] {
    match mnemonic {
        "exp" | "log" | "sqrt" | "recip" | "tanh" | "pow" | "random" => &FLOAT,
        "neg" | "abs" | "add" | "sub" | "mul" | "div" | "max" | "min" | "iota" | "reduce_sum"
        | "reduce_max" | "dot" | "scatter_add" => &NUM,
        "all_reduce" => &FLOAT,
        _ => &DType::ALL,
    }
}

/// The op and operand types of `c` with its element type replaced by `d` (indices and
/// conditions keep theirs unless they share it).
fn retyped(c: &Case, d: DType) -> (Op, Vec<Type>) {
    let from = c.dtype();
    let op = match &c.op {
        Op::Iota { axis, ty } => Op::Iota {
            axis: *axis,
            ty: Type::new(d, &ty.shape),
        },
        Op::Random { stream, ty } => Op::Random {
            stream: *stream,
            ty: Type::new(d, &ty.shape),
        },
        op => op.clone(),
    };
    let args = c.args.iter().map(|a| a.ty()).map(|t| {
        if t.dtype == from {
            Type::new(d, &t.shape)
        } else {
            t
        }
    });
    (op, args.collect())
}

#[test]
fn every_primitive_is_tested_at_every_element_type_it_supports() {
    let mut tested: BTreeMap<&str, BTreeSet<DType>> = BTreeMap::new();
    let cases = all_cases();
    for c in &cases {
        tested.entry(c.op.mnemonic()).or_default().insert(c.dtype());
    }
    let (inputs, _) = run::every_kind_and_dtype();
    for id in inputs.node_ids() {
        let node = inputs.node(id);
        tested
            .entry(node.op.mnemonic())
            .or_default()
            .insert(node.ty.dtype);
    }
    let listed: BTreeSet<&str> = MNEMONICS.iter().copied().collect();
    assert_eq!(tested.keys().copied().collect::<BTreeSet<_>>(), listed);
    for (m, dtypes) in &tested {
        let missing: Vec<_> = supported(m)
            .iter()
            .filter(|d| !dtypes.contains(d))
            .collect();
        assert!(missing.is_empty(), "{m} is not tested at {missing:?}");
    }
    // The claims of `supported` agree with `infer`: every other element type is refused.
    for c in &cases {
        for d in DType::ALL
            .into_iter()
            .filter(|d| !supported(c.op.mnemonic()).contains(d))
        {
            let (op, types) = retyped(c, d);
            let refs: Vec<&Type> = types.iter().collect();
            let err = infer(&op, &refs);
            assert!(
                matches!(err, Err(TypeErrorKind::UnsupportedDType { .. })),
                "{} at {d}: {err:?}",
                op.mnemonic()
            );
        }
    }
}
