//! Batch normalization, per channel (axis 1), with running statistics as graph state.

use super::{Layers, Mode, rank_error};
use crate::{Init, Tensor};
use kiln_compiler::TypeErrorKind;

/// The weight of the batch's statistics in the running ones (PyTorch's default momentum).
const MOMENTUM: f64 = 0.1;

/// Added to the variance before its square root (PyTorch's default).
const EPS: f64 = 1e-5;

impl Layers<'_> {
    /// Batch normalization of images `x: [N, C, H, W]` per channel (PyTorch's `BatchNorm2d`);
    /// see [`Layers::batch_norm1d`] for what it computes.
    #[track_caller]
    pub fn batch_norm2d(&self, name: &str, x: &Tensor) -> Tensor {
        if x.rank() != 4 {
            return rank_error(x, "batch_norm2d", "4 ([N, C, H, W])");
        }
        self.batch_norm(name, x)
    }

    /// Batch normalization of features `x: [N, C]` or sequences `x: [N, C, L]` per channel
    /// (PyTorch's `BatchNorm1d`): `(x - mean) / sqrt(var + 1e-5) * gamma + beta`, with
    /// parameters `<name>.gamma` (ones) and `<name>.beta` (zeros) of shape `[C]`.
    ///
    /// In [`Mode::Train`] the mean and (biased) variance are the batch's, over every axis but
    /// the channels, and the graph updates the state `<name>.running_mean` (zeros at first)
    /// and `<name>.running_var` (ones) in place: `running = 0.9 running + 0.1 batch`, with the
    /// unbiased variance as PyTorch keeps it. In [`Mode::Eval`] the running statistics
    /// normalize instead, and nothing is updated.
    #[track_caller]
    pub fn batch_norm1d(&self, name: &str, x: &Tensor) -> Tensor {
        if !(2..=3).contains(&x.rank()) {
            return rank_error(x, "batch_norm1d", "2 or 3 ([N, C] or [N, C, L])");
        }
        self.batch_norm(name, x)
    }

    /// Batch normalization over every axis of `x` but axis 1 (rank at least 2).
    #[track_caller]
    fn batch_norm(&self, name: &str, x: &Tensor) -> Tensor {
        let b = self.builder;
        let (dtype, c) = (x.dtype(), x.shape()[1]);
        let full = |part: &str| format!("{name}.{part}");
        let gamma = b.param_init(&full("gamma"), dtype, [c], Init::Constant(1.0));
        let beta = b.param_init(&full("beta"), dtype, [c], Init::Zeros);
        let running_mean = b.state_init(&full("running_mean"), dtype, [c], Init::Zeros);
        let running_var = b.state_init(&full("running_var"), dtype, [c], Init::Constant(1.0));
        // Per-channel values broadcast against x: [1, C, 1, ..].
        let mut column = vec![1isize; x.rank()];
        column[1] = c as isize;
        let (centered, var) = match self.mode {
            Mode::Train => {
                let axes: Vec<isize> = (0..x.rank() as isize).filter(|&a| a != 1).collect();
                let count = x.numel() / c.max(1);
                if count < 2 {
                    return x.fail(
                        "batch_norm",
                        TypeErrorKind::BadAttribute(format!(
                            "training needs more than one value per channel, found shape {:?}",
                            x.shape()
                        )),
                    );
                }
                let mean = x.mean(&axes);
                let centered = x - mean.reshape(&column);
                let var = centered.square().mean(&axes);
                let unbiased = &var * (count as f64 / (count - 1) as f64);
                let mean_now = running_mean * (1.0 - MOMENTUM) + mean * MOMENTUM;
                let var_now = running_var * (1.0 - MOMENTUM) + unbiased * MOMENTUM;
                b.update(&full("running_mean"), &mean_now);
                b.update(&full("running_var"), &var_now);
                (centered, var)
            }
            Mode::Eval => (x - running_mean.reshape(&column), running_var),
        };
        let scale = gamma * (var + EPS).sqrt().recip();
        centered * scale.reshape(&column) + beta.reshape(&column)
    }
}
