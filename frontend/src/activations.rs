//! Activation functions and related elementwise compositions, as methods of [`Tensor`].
//! Each is a composition of primitives, so autodiff and fusion see through it.

use crate::tensor::Tensor;
use kiln_compiler::{DType, Op, Type};

impl Tensor {
    /// `max(x, 0)`. At 0 the gradient is 0 (the constant wins the tie), as in PyTorch.
    #[track_caller]
    pub fn relu(&self) -> Tensor {
        self.scalar_like(0.0).maximum(self)
    }

    /// `1 / (1 + e^-x)`.
    #[track_caller]
    pub fn sigmoid(&self) -> Tensor {
        (self.neg().exp() + 1.0).recip()
    }

    /// `x` where `x > 0`, else `slope * x` (PyTorch's default slope is 0.01).
    #[track_caller]
    pub fn leaky_relu(&self, slope: f64) -> Tensor {
        let zero = self.scalar_like(0.0);
        self.gt(&zero).select(self, &(self * slope))
    }

    /// `x` where `x > 0`, else `alpha * x` with a learnable `alpha` (broadcast against `x`:
    /// a scalar, or one slope per channel shaped to broadcast).
    #[track_caller]
    pub fn prelu(&self, alpha: &Tensor) -> Tensor {
        let zero = self.scalar_like(0.0);
        self.gt(&zero).select(self, &(alpha * self))
    }

    /// `x` where `x > 0`, else `alpha * (e^x - 1)`. The exponential sees `min(x, 0)`, so large
    /// positive inputs cannot overflow it and poison the gradient.
    #[track_caller]
    pub fn elu(&self, alpha: f64) -> Tensor {
        let zero = self.scalar_like(0.0);
        let neg_part = (self.minimum(&zero).exp() - 1.0) * alpha;
        self.gt(&zero).select(self, &neg_part)
    }

    /// `e^x / sum(e^x)` along `axis`, computed from `x - max(x)` so it cannot overflow. The
    /// result does not depend on the max subtracted, so its gradient is stopped: the backward
    /// pass does not differentiate the max.
    #[track_caller]
    pub fn softmax(&self, axis: isize) -> Tensor {
        let e = (self - self.max_keepdims(&[axis]).stop_gradient()).exp();
        &e / e.sum_keepdims(&[axis])
    }

    /// `log(softmax(x))` along `axis`, computed stably as `x - max - log(sum(e^(x - max)))`
    /// (the max's gradient stopped, as in [`Tensor::softmax`]).
    #[track_caller]
    pub fn log_softmax(&self, axis: isize) -> Tensor {
        let shifted = self - self.max_keepdims(&[axis]).stop_gradient();
        &shifted - shifted.exp().sum_keepdims(&[axis]).log()
    }

    /// `log(sum(e^x))` along `axis` (removed from the shape), computed stably (the max's
    /// gradient stopped, as in [`Tensor::softmax`]).
    #[track_caller]
    pub fn logsumexp(&self, axis: isize) -> Tensor {
        let m = self.max_keepdims(&[axis]).stop_gradient();
        ((self - &m).exp().sum_keepdims(&[axis]).log() + &m).sum(&[axis])
    }

    /// One-hot rows for `i32` class indices: `[..] -> [.., classes]` of `dtype`, 1 at the
    /// index and 0 elsewhere (all 0 for an index outside `0..classes`).
    #[track_caller]
    pub fn one_hot(&self, classes: usize, dtype: DType) -> Tensor {
        let hit = self.class_mask(classes);
        let one = Tensor::scalar_of(self, 1.0, dtype);
        let zero = Tensor::scalar_of(self, 0.0, dtype);
        hit.select(&one, &zero)
    }

    /// Boolean one-hot rows for `i32` class indices: `[..] -> [.., classes]`, true at the
    /// index (no element true for an index outside `0..classes`).
    #[track_caller]
    pub fn class_mask(&self, classes: usize) -> Tensor {
        let mut shape = self.shape().to_vec();
        shape.push(classes);
        let mut column: Vec<isize> = self.shape().iter().map(|&d| d as isize).collect();
        column.push(1);
        let classes_iota = self.leaf(Op::Iota {
            axis: shape.len() - 1,
            ty: Type::new(DType::I32, &shape),
        });
        classes_iota.eq(&self.reshape(&column))
    }
}
