//! Loss functions, built from primitives. Each takes a [`Reduction`] as PyTorch's do: the
//! per-element (or per-row) losses averaged, summed, or returned as they are.

use crate::tensor::Tensor;

/// How per-element losses become the result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The mean over all per-element losses (a scalar).
    #[default]
    Mean,
    /// The sum of all per-element losses (a scalar).
    Sum,
    /// The per-element losses, unreduced.
    None,
}

#[track_caller]
fn reduce(losses: Tensor, reduction: Reduction) -> Tensor {
    match reduction {
        Reduction::Mean => losses.mean_all(),
        Reduction::Sum => losses.sum_all(),
        Reduction::None => losses,
    }
}

/// Mean squared error: `(pred - target)^2`.
#[track_caller]
pub fn mse(pred: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    reduce((pred - target).square(), reduction)
}

/// Mean absolute error: `|pred - target|`.
#[track_caller]
pub fn l1(pred: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    reduce((pred - target).abs(), reduction)
}

/// Binary cross-entropy from probabilities: `-(t log p + (1 - t) log(1 - p))`, each logarithm
/// clamped to at least -100 as PyTorch does, so `p` of exactly 0 or 1 gives a finite loss.
#[track_caller]
pub fn bce(prob: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    let floor = prob.scalar_like(-100.0);
    let log_p = prob.log().maximum(&floor);
    let log_q = (1.0 - prob).log().maximum(&floor);
    let losses = -(target * &log_p + (1.0 - target) * &log_q);
    reduce(losses, reduction)
}

/// Binary cross-entropy from logits, stable for any magnitude:
/// `max(x, 0) - x t + log(1 + e^-|x|)`.
#[track_caller]
pub fn bce_with_logits(logits: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    let x = logits;
    let losses = x.relu() - x * target + ((-x.abs()).exp() + 1.0).log();
    reduce(losses, reduction)
}

/// Cross-entropy of `logits` `[N, C]` against `i32` class `labels` `[N]`:
/// `logsumexp(x) - x[label]` per row, through a stable log-softmax.
#[track_caller]
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, reduction: Reduction) -> Tensor {
    nll(&logits.log_softmax(-1), labels, reduction)
}

/// Negative log-likelihood of log-probabilities `[N, C]` at `i32` class `labels` `[N]`:
/// `-log_probs[label]` per row (0 for a label outside `0..C`). Only the label's entry counts:
/// a `-inf` log-probability elsewhere in the row (a masked class) leaves the loss finite.
#[track_caller]
pub fn nll(log_probs: &Tensor, labels: &Tensor, reduction: Reduction) -> Tensor {
    let classes = log_probs.shape().last().copied().unwrap_or(0);
    let zero = log_probs.scalar_like(0.0);
    let picked = (labels.class_mask(classes))
        .select(log_probs, &zero)
        .sum(&[-1]);
    reduce(-picked, reduction)
}

/// Kullback-Leibler divergence as PyTorch's `kl_div(input, target)` defines it: `input` holds
/// log-probabilities, `target` probabilities, each element contributes
/// `target (log target - input)`, and 0 where `target` is 0. `Mean` averages over all elements
/// (PyTorch's default); for the per-sample mean ("batchmean") use `Sum` and divide.
#[track_caller]
pub fn kl_div(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    let zero = target.scalar_like(0.0);
    let positive = target.gt(&zero);
    let safe = positive.select(target, &target.scalar_like(1.0));
    let losses = positive.select(&(target * (safe.log() - input)), &zero);
    reduce(losses, reduction)
}

/// The fraction of rows of `logits` `[N, C]` whose largest entry is at the `i32` label.
#[track_caller]
pub fn accuracy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.argmax(-1).eq(labels).cast(logits.dtype()).mean_all()
}
