//! Before a peer's training step is timed, it must compute what kiln computes: from the same
//! initial parameters on the same batch, its losses over [`STEPS`] steps must match kiln's
//! within [`TOLERANCE`].
//!
//! Why this tolerance: every engine computes in f32, and they differ in the order of their
//! sums (GEMM blocking, reduction trees), in `exp` and `log` (kiln's inline polynomials are
//! within 2.4 ulp, docs/math.md), and in how they form the softmax and the optimizer's
//! arithmetic. Measured over 20 steps of the MLPs (BENCHMARKS.md lists every check), the
//! largest relative differences from kiln are about 2e-7 with SGD and up to 5e-5 with Adam
//! (Burn's Adam raises the betas to the step in f32; Adam's division by `sqrt(v)` amplifies
//! rounding in small gradients). One difference of method falls inside the bound: candle's
//! LeNet drifts by about 1.2e-5 per step, to 2.5e-4 at step 20, because candle's max-pool
//! gradient is split among tied maxima (MNIST's saturated pixels make ties) where kiln, Burn
//! and PyTorch give it to one; the report shows that difference. Others show far above it: on the MLP
//! 784-128-10 at batch 64 (measured with PyTorch), a learning rate 1% off moves the losses by
//! 5e-3 relative, 10% off by 5e-2, and Adam's eps at 1e-5 (Burn's default) instead of 1e-8 by
//! 7e-3. A bound of 1e-3 sits 20x above the largest rounding difference seen and 5x below the
//! smallest mistake tried.

use crate::{BenchError, Engine};

/// Steps compared.
pub const STEPS: usize = 20;

/// The largest relative difference `|a - b| / max(|a|, |b|)` accepted between two engines'
/// losses at the same step.
pub const TOLERANCE: f64 = 1e-3;

/// The losses of `steps` training steps of `engine`.
pub fn losses(engine: &mut dyn Engine, steps: usize) -> Result<Vec<f64>, BenchError> {
    (0..steps)
        .map(|_| {
            engine
                .run()?
                .ok_or_else(|| BenchError::Protocol("a training step gave no loss".into()))
        })
        .collect()
}

/// How two loss trajectories compare.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Every step within [`TOLERANCE`]; the largest relative difference seen.
    Match(f64),
    /// The first step (counting from 1) beyond it, with both losses.
    Mismatch {
        /// The step.
        step: usize,
        /// kiln's loss.
        reference: f64,
        /// The peer's loss.
        other: f64,
    },
}

/// The relative difference of `a` and `b` (0 when both are 0; infinite when either is not
/// finite).
pub fn relative(a: f64, b: f64) -> f64 {
    if !(a.is_finite() && b.is_finite()) {
        return f64::INFINITY;
    }
    let scale = a.abs().max(b.abs());
    if scale == 0.0 {
        0.0
    } else {
        (a - b).abs() / scale
    }
}

/// Compares `other` against `reference` step by step within [`TOLERANCE`]; a trajectory of
/// another length mismatches at the first missing step.
pub fn compare(reference: &[f64], other: &[f64]) -> Verdict {
    compare_within(reference, other, TOLERANCE)
}

/// [`compare`] within `tolerance`.
pub fn compare_within(reference: &[f64], other: &[f64], tolerance: f64) -> Verdict {
    let mut worst = 0.0f64;
    for step in 0..reference.len().max(other.len()) {
        let (r, o) = (reference.get(step), other.get(step));
        let d = match (r, o) {
            (Some(&r), Some(&o)) => relative(r, o),
            _ => f64::INFINITY,
        };
        if d > tolerance {
            return Verdict::Mismatch {
                step: step + 1,
                reference: r.copied().unwrap_or(f64::NAN),
                other: o.copied().unwrap_or(f64::NAN),
            };
        }
        worst = worst.max(d);
    }
    Verdict::Match(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_tolerance_accepts_more() {
        let (a, b) = ([2.0, 1.0], [2.0, 1.004]);
        assert!(matches!(compare(&a, &b), Verdict::Mismatch { step: 2, .. }));
        assert!(matches!(compare_within(&a, &b, 5e-3), Verdict::Match(d) if d > 3e-3));
    }

    #[test]
    fn close_trajectories_match_and_far_ones_do_not() {
        let a = [2.3, 1.9, 1.5];
        assert_eq!(compare(&a, &a), Verdict::Match(0.0));
        let b = [2.3, 1.9000001, 1.5];
        assert!(matches!(compare(&a, &b), Verdict::Match(d) if d > 0.0 && d < 1e-6));
        let c = [2.3, 1.95, 1.5];
        assert!(matches!(compare(&a, &c), Verdict::Mismatch { step: 2, .. }));
        assert!(matches!(
            compare(&a, &a[..2]),
            Verdict::Mismatch { step: 3, .. }
        ));
        assert!(matches!(
            compare(&a, &[2.3, f64::NAN, 1.5]),
            Verdict::Mismatch { step: 2, .. }
        ));
    }
}
