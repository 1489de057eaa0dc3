//! Shape and type inference: the result type of every op from its operands' types.
//!
//! This is the single definition of what a well-typed node is: the frontend calls it while a
//! model is built, the parser checks declared types against it, and the verifier re-runs it on
//! every node after every pass.

use crate::graph::Origin;
use crate::op::Op;
use crate::types::{DType, DisplayShape, Shape, Type, numel};
use std::fmt;

/// Why an op cannot be applied to its operands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeErrorKind {
    /// Extents disagree; `shapes` are the operands' shapes, shown joined by `sep`.
    ShapeMismatch {
        /// The shapes involved, in operand order.
        shapes: Vec<Shape>,
        /// How they are joined in the message (`x` for a product, `vs` otherwise).
        sep: &'static str,
    },
    /// Element types disagree.
    DTypeMismatch {
        /// The element types involved, in operand order.
        dtypes: Vec<DType>,
    },
    /// The op is not defined on this element type.
    UnsupportedDType {
        /// The element type given.
        dtype: DType,
        /// What the op accepts, in words.
        expected: &'static str,
    },
    /// Too few or too many operands.
    Arity {
        /// Operands expected, in words.
        expected: String,
        /// Operands given.
        found: usize,
    },
    /// An attribute is out of range or inconsistent with the operands.
    BadAttribute(String),
}

/// A type error with the op it arose in and, when known, the user's source location.
///
/// Displays as `shape mismatch in dot at examples/mlp.rs:21:13: [64,784] x [128,10]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeError {
    /// The mnemonic of the op (or the name of the frontend operation) that failed.
    pub op: String,
    /// What is wrong.
    pub kind: TypeErrorKind,
    /// Where the user asked for the op.
    pub origin: Option<Origin>,
}

impl std::error::Error for TypeError {}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            TypeErrorKind::ShapeMismatch { .. } => "shape mismatch",
            TypeErrorKind::DTypeMismatch { .. } => "dtype mismatch",
            TypeErrorKind::UnsupportedDType { .. } => "unsupported dtype",
            TypeErrorKind::Arity { .. } => "wrong number of operands",
            TypeErrorKind::BadAttribute(_) => "invalid attribute",
        };
        write!(f, "{what} in {}", self.op)?;
        if let Some(o) = &self.origin {
            write!(f, " at {o}")?;
        }
        f.write_str(": ")?;
        match &self.kind {
            TypeErrorKind::ShapeMismatch { shapes, sep } => {
                for (i, s) in shapes.iter().enumerate() {
                    if i > 0 {
                        write!(f, " {sep} ")?;
                    }
                    write!(f, "{}", DisplayShape(s))?;
                }
                Ok(())
            }
            TypeErrorKind::DTypeMismatch { dtypes } => {
                let names: Vec<_> = dtypes.iter().map(|d| d.name()).collect();
                f.write_str(&names.join(" vs "))
            }
            TypeErrorKind::UnsupportedDType { dtype, expected } => {
                write!(f, "{dtype} (expects {expected})")
            }
            TypeErrorKind::Arity { expected, found } => {
                write!(f, "expected {expected}, found {found}")
            }
            TypeErrorKind::BadAttribute(msg) => f.write_str(msg),
        }
    }
}

/// The result type of `op` applied to operands of types `args`, or why it is ill-typed.
pub fn infer(op: &Op, args: &[&Type]) -> Result<Type, TypeErrorKind> {
    check_arity(op, args.len())?;
    match op {
        Op::Input { ty, .. } => Ok(ty.clone()),
        Op::Constant(a) => Ok(a.ty()),
        Op::Iota { axis, ty } => {
            numeric(ty.dtype)?;
            axis_in_range(*axis, ty.rank())?;
            Ok(ty.clone())
        }
        Op::Random { ty, .. } => {
            if args[0].dtype != DType::I32 || args[0].rank() != 0 {
                return Err(bad(format!("the seed must be i32[], found {}", args[0])));
            }
            float(ty.dtype)?;
            Ok(ty.clone())
        }
        Op::Unary(u) => {
            if u.float_only() {
                float(args[0].dtype)?;
            } else {
                numeric(args[0].dtype)?;
            }
            Ok(args[0].clone())
        }
        Op::Binary(b) => {
            same_shapes(args)?;
            same_dtypes(args)?;
            if *b == crate::op::BinaryOp::Pow {
                float(args[0].dtype)?;
            } else {
                numeric(args[0].dtype)?;
            }
            Ok(args[0].clone())
        }
        Op::Compare(_) => {
            same_shapes(args)?;
            same_dtypes(args)?;
            Ok(Type::new(DType::Bool, &args[0].shape))
        }
        Op::StopGradient => Ok(args[0].clone()),
        Op::Select => {
            same_shapes(args)?;
            if args[0].dtype != DType::Bool {
                return Err(TypeErrorKind::UnsupportedDType {
                    dtype: args[0].dtype,
                    expected: "a bool condition",
                });
            }
            same_dtypes(&args[1..])?;
            Ok(args[1].clone())
        }
        Op::Cast(d) => Ok(Type::new(*d, &args[0].shape)),
        Op::Reduce { axes, .. } => {
            let x = args[0];
            numeric(x.dtype)?;
            sorted_distinct(axes, x.rank(), "axes")?;
            let shape = (0..x.rank())
                .filter(|i| !axes.contains(i))
                .map(|i| x.shape[i])
                .collect::<Shape>();
            Ok(Type {
                dtype: x.dtype,
                shape,
            })
        }
        Op::Reshape(shape) => {
            if numel(shape) != args[0].numel() {
                return Err(mismatch([&args[0].shape, shape], "vs"));
            }
            Ok(Type {
                dtype: args[0].dtype,
                shape: shape.clone(),
            })
        }
        Op::Permute(perm) => {
            let x = args[0];
            let mut sorted = perm.clone();
            sorted.sort_unstable();
            if sorted.iter().copied().ne(0..x.rank()) {
                return Err(bad(format!(
                    "{} is not a permutation of the {} axes of {}",
                    DisplayShape(perm),
                    x.rank(),
                    DisplayShape(&x.shape)
                )));
            }
            Ok(Type {
                dtype: x.dtype,
                shape: perm.iter().map(|&p| x.shape[p]).collect(),
            })
        }
        Op::Broadcast(shape) => {
            let x = args[0];
            let ok = x.rank() == shape.len()
                && x.shape.iter().zip(shape).all(|(&a, &b)| a == b || a == 1);
            if !ok {
                return Err(mismatch([&x.shape, shape], "to"));
            }
            Ok(Type {
                dtype: x.dtype,
                shape: shape.clone(),
            })
        }
        Op::Slice { start, end, step } => {
            let x = args[0];
            same_len(x.rank(), [start, end, step], "slice bounds")?;
            let mut shape = Shape::new();
            for i in 0..x.rank() {
                if start[i] > end[i] || end[i] > x.shape[i] || step[i] == 0 {
                    return Err(bad(format!(
                        "axis {i}: {}:{}:{} does not fit extent {}",
                        start[i], end[i], step[i], x.shape[i]
                    )));
                }
                shape.push((end[i] - start[i]).div_ceil(step[i]));
            }
            Ok(Type {
                dtype: x.dtype,
                shape,
            })
        }
        Op::Pad {
            low,
            high,
            interior,
            ..
        } => {
            let x = args[0];
            same_len(x.rank(), [low, high, interior], "padding")?;
            let shape = (0..x.rank())
                .map(|i| {
                    let d = x.shape[i];
                    d.saturating_sub(1)
                        .checked_mul(interior[i])?
                        .checked_add(d)?
                        .checked_add(low[i])?
                        .checked_add(high[i])
                })
                .collect::<Option<Shape>>()
                .ok_or_else(|| bad("the padded extents overflow".into()))?;
            Ok(Type {
                dtype: x.dtype,
                shape,
            })
        }
        Op::Windows {
            window,
            stride,
            dilation,
        } => {
            let x = args[0];
            let k = window.len();
            if k == 0 || k > x.rank() {
                return Err(bad(format!(
                    "{} window axes for an operand of rank {}",
                    k,
                    x.rank()
                )));
            }
            same_len(k, [stride, dilation], "window strides and dilations")?;
            let lead = x.rank() - k;
            let mut shape: Shape = x.shape[..lead].into();
            for i in 0..k {
                let (d, w, s, dl) = (x.shape[lead + i], window[i], stride[i], dilation[i]);
                if w == 0 || s == 0 || dl == 0 {
                    return Err(bad("window, stride and dilation must be positive".into()));
                }
                let span = match (w - 1).checked_mul(dl) {
                    Some(span) if span < d => span + 1,
                    _ => return Err(mismatch([&x.shape, window], "windowed by")),
                };
                shape.push((d - span) / s + 1);
            }
            shape.extend_from_slice(window);
            Ok(Type {
                dtype: x.dtype,
                shape,
            })
        }
        Op::Concat { axis } => {
            let first = args[0];
            axis_in_range(*axis, first.rank())?;
            same_dtypes(args)?;
            let compatible = args.iter().all(|a| {
                a.rank() == first.rank()
                    && (0..a.rank()).all(|i| i == *axis || a.shape[i] == first.shape[i])
            });
            if !compatible {
                return Err(mismatch(args.iter().map(|a| &a.shape), "and"));
            }
            let mut shape = first.shape.clone();
            shape[*axis] = args
                .iter()
                .try_fold(0usize, |n, a| n.checked_add(a.shape[*axis]))
                .ok_or_else(|| bad("the joined extent overflows".into()))?;
            Ok(Type {
                dtype: first.dtype,
                shape,
            })
        }
        Op::Dot => {
            let (a, b) = (args[0], args[1]);
            same_dtypes(args)?;
            numeric(a.dtype)?;
            let (ra, rb) = (a.rank(), b.rank());
            let ok = ra >= 2
                && ra == rb
                && a.shape[..ra - 2] == b.shape[..rb - 2]
                && a.shape[ra - 1] == b.shape[rb - 2];
            if !ok {
                return Err(mismatch([&a.shape, &b.shape], "x"));
            }
            let mut shape: Shape = a.shape[..ra - 1].into();
            shape.push(b.shape[rb - 1]);
            Ok(Type {
                dtype: a.dtype,
                shape,
            })
        }
        Op::Gather { axis } => {
            let (x, idx) = (args[0], args[1]);
            axis_in_range(*axis, x.rank())?;
            index(idx.dtype)?;
            if x.shape[*axis] == 0 && idx.numel() > 0 {
                return Err(bad(format!(
                    "axis {axis} is empty: there is nothing to gather"
                )));
            }
            let mut shape: Shape = x.shape[..*axis].into();
            shape.extend_from_slice(&idx.shape);
            shape.extend_from_slice(&x.shape[axis + 1..]);
            Ok(Type {
                dtype: x.dtype,
                shape,
            })
        }
        Op::ScatterAdd { axis, size } => {
            let (idx, u) = (args[0], args[1]);
            index(idx.dtype)?;
            numeric(u.dtype)?;
            let end = axis.saturating_add(idx.rank());
            if end > u.rank() || u.shape[*axis..end] != idx.shape[..] {
                return Err(mismatch([&idx.shape, &u.shape], "indexing"));
            }
            if *size == 0 {
                return Err(bad("the scattered axis must have a positive extent".into()));
            }
            let mut shape: Shape = u.shape[..*axis].into();
            shape.push(*size);
            shape.extend_from_slice(&u.shape[end..]);
            Ok(Type {
                dtype: u.dtype,
                shape,
            })
        }
        Op::AllReduce => {
            float(args[0].dtype)?;
            Ok(args[0].clone())
        }
    }
}

fn bad(msg: String) -> TypeErrorKind {
    TypeErrorKind::BadAttribute(msg)
}

fn mismatch<'a>(shapes: impl IntoIterator<Item = &'a Shape>, sep: &'static str) -> TypeErrorKind {
    TypeErrorKind::ShapeMismatch {
        shapes: shapes.into_iter().cloned().collect(),
        sep,
    }
}

fn check_arity(op: &Op, found: usize) -> Result<(), TypeErrorKind> {
    match op.arity() {
        Some(n) if n != found => Err(TypeErrorKind::Arity {
            expected: n.to_string(),
            found,
        }),
        None if found == 0 => Err(TypeErrorKind::Arity {
            expected: "at least 1".into(),
            found,
        }),
        _ => Ok(()),
    }
}

fn same_shapes(args: &[&Type]) -> Result<(), TypeErrorKind> {
    if args.iter().any(|a| a.shape != args[0].shape) {
        return Err(mismatch(args.iter().map(|a| &a.shape), "vs"));
    }
    Ok(())
}

fn same_dtypes(args: &[&Type]) -> Result<(), TypeErrorKind> {
    if args.iter().any(|a| a.dtype != args[0].dtype) {
        return Err(TypeErrorKind::DTypeMismatch {
            dtypes: args.iter().map(|a| a.dtype).collect(),
        });
    }
    Ok(())
}

fn float(d: DType) -> Result<(), TypeErrorKind> {
    if d.is_float() {
        Ok(())
    } else {
        Err(TypeErrorKind::UnsupportedDType {
            dtype: d,
            expected: "f32 or f64",
        })
    }
}

fn numeric(d: DType) -> Result<(), TypeErrorKind> {
    if d.is_numeric() {
        Ok(())
    } else {
        Err(TypeErrorKind::UnsupportedDType {
            dtype: d,
            expected: "f32, f64 or i32",
        })
    }
}

fn index(d: DType) -> Result<(), TypeErrorKind> {
    if d == DType::I32 {
        Ok(())
    } else {
        Err(TypeErrorKind::UnsupportedDType {
            dtype: d,
            expected: "i32 indices",
        })
    }
}

fn axis_in_range(axis: usize, rank: usize) -> Result<(), TypeErrorKind> {
    if axis < rank {
        Ok(())
    } else {
        Err(bad(format!("axis {axis} is out of range for rank {rank}")))
    }
}

fn sorted_distinct(axes: &[usize], rank: usize, what: &str) -> Result<(), TypeErrorKind> {
    let ok = axes.windows(2).all(|w| w[0] < w[1]) && axes.iter().all(|&a| a < rank);
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "{what} {} must be sorted, distinct and below the rank {rank}",
            DisplayShape(axes)
        )))
    }
}

fn same_len<const N: usize>(
    rank: usize,
    lists: [&Shape; N],
    what: &str,
) -> Result<(), TypeErrorKind> {
    if lists.iter().all(|l| l.len() == rank) {
        Ok(())
    } else {
        Err(bad(format!("{what} need one entry per axis ({rank})")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{BinaryOp, ReduceOp};
    use smallvec::smallvec;

    fn t(shape: &[usize]) -> Type {
        Type::new(DType::F32, shape)
    }

    #[test]
    fn dot_checks_the_contracted_extent() {
        let ty = infer(&Op::Dot, &[&t(&[64, 784]), &t(&[784, 128])]).unwrap();
        assert_eq!(ty, t(&[64, 128]));
        let err = infer(&Op::Dot, &[&t(&[64, 784]), &t(&[128, 10])]).unwrap_err();
        let e = TypeError {
            op: "dot".into(),
            kind: err,
            origin: None,
        };
        assert_eq!(e.to_string(), "shape mismatch in dot: [64,784] x [128,10]");
    }

    #[test]
    fn reductions_drop_their_axes() {
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes: smallvec![0, 2],
        };
        assert_eq!(infer(&op, &[&t(&[2, 3, 4])]).unwrap(), t(&[3]));
        let op = Op::Reduce {
            op: ReduceOp::Sum,
            axes: smallvec![2, 0],
        };
        assert!(infer(&op, &[&t(&[2, 3, 4])]).is_err());
    }

    #[test]
    fn windows_give_output_positions_then_window_axes() {
        let op = Op::Windows {
            window: smallvec![5, 5],
            stride: smallvec![1, 1],
            dilation: smallvec![1, 1],
        };
        assert_eq!(
            infer(&op, &[&t(&[8, 1, 28, 28])]).unwrap(),
            t(&[8, 1, 24, 24, 5, 5])
        );
        let op = Op::Windows {
            window: smallvec![2, 2],
            stride: smallvec![2, 2],
            dilation: smallvec![1, 1],
        };
        assert_eq!(
            infer(&op, &[&t(&[1, 6, 28, 28])]).unwrap(),
            t(&[1, 6, 14, 14, 2, 2])
        );
    }

    #[test]
    fn pad_counts_interior_elements() {
        let op = Op::Pad {
            low: smallvec![1],
            high: smallvec![2],
            interior: smallvec![1],
            value: 0.0,
        };
        assert_eq!(infer(&op, &[&t(&[3])]).unwrap(), t(&[1 + 2 + 3 + 2]));
    }

    #[test]
    fn binary_ops_need_equal_types() {
        let err = infer(&Op::Binary(BinaryOp::Add), &[&t(&[2]), &t(&[3])]).unwrap_err();
        assert!(matches!(err, TypeErrorKind::ShapeMismatch { .. }));
        let f64t = Type::new(DType::F64, [2]);
        let err = infer(&Op::Binary(BinaryOp::Add), &[&t(&[2]), &f64t]).unwrap_err();
        assert_eq!(
            err,
            TypeErrorKind::DTypeMismatch {
                dtypes: vec![DType::F32, DType::F64]
            }
        );
    }

    #[test]
    fn huge_attributes_are_type_errors_not_overflows() {
        let big = usize::MAX;
        let pad = Op::Pad {
            low: smallvec![big],
            high: smallvec![1],
            interior: smallvec![0],
            value: 0.0,
        };
        assert!(infer(&pad, &[&t(&[3])]).is_err());
        let windows = Op::Windows {
            window: smallvec![big],
            stride: smallvec![1],
            dilation: smallvec![big],
        };
        assert!(infer(&windows, &[&t(&[3])]).is_err());
        assert!(infer(&Op::Concat { axis: 0 }, &[&t(&[big]), &t(&[1])]).is_err());
        let scatter = Op::ScatterAdd { axis: big, size: 1 };
        assert!(infer(&scatter, &[&Type::new(DType::I32, [1]), &t(&[1])]).is_err());
    }

    #[test]
    fn gather_and_scatter_add_are_shape_adjoint() {
        let idx = Type::new(DType::I32, [5]);
        let g = infer(&Op::Gather { axis: 0 }, &[&t(&[10, 3]), &idx]).unwrap();
        assert_eq!(g, t(&[5, 3]));
        let s = infer(&Op::ScatterAdd { axis: 0, size: 10 }, &[&idx, &g]).unwrap();
        assert_eq!(s, t(&[10, 3]));
    }
}
