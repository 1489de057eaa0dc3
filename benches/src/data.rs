//! The inputs every engine gets: MNIST batches from the repository's `data/`, and
//! deterministic pseudo-random values for the synthetic workloads.

use crate::BenchError;
use kiln_runtime::data::{Dataset, Mnist};
use std::path::PathBuf;

/// The repository's `data/` directory (the embedded MNIST-10k).
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

/// The training split of the embedded MNIST-10k (its first 8,000 digits): columns `x:
/// f32[8000, 1, 28, 28]` (pixels in `[0, 1]`) and `labels: i32[8000]`.
pub fn mnist_train() -> Result<Dataset, BenchError> {
    Ok(Mnist::load(&data_dir())?.train)
}

/// Rows of MNIST examples: pixels in `[0, 1]`, row-major, and their digits.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// `rows * 784` pixels.
    pub x: Vec<f32>,
    /// `rows` digits.
    pub labels: Vec<i32>,
}

impl Batch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Features per row.
    pub fn features(&self) -> usize {
        self.x.len() / self.rows().max(1)
    }
}

/// Batch number `step` of `rows` examples when `data` is taken in order, batch after batch,
/// starting over where a whole batch no longer fits: the batches a training run of `step + 1`
/// steps sees. Batch 0 is the fixed batch the timed training steps run on. Each row is one
/// example of the `x` column flattened row-major (an MNIST digit's 784 pixels), its label
/// from the `labels` column.
///
/// Panics if `data` has no `f32` column `x` or no `i32` column `labels` (MNIST has both).
pub fn batch(data: &Dataset, step: usize, rows: usize) -> Batch {
    let column = |name: &str| {
        data.column(name)
            .unwrap_or_else(|| panic!("the data has no column `{name}`"))
    };
    let pixels = (column("x").as_f32()).expect("the column `x` holds f32 values");
    let digits = (column("labels").as_i32()).expect("the column `labels` holds i32 values");
    let len = data.len().max(1);
    let features = pixels.len() / len;
    let per_pass = (data.len() / rows.max(1)).max(1);
    let start = (step % per_pass) * rows;
    let mut x = Vec::with_capacity(rows * features);
    let mut labels = Vec::with_capacity(rows);
    for r in 0..rows {
        let i = (start + r) % len;
        x.extend_from_slice(&pixels[i * features..(i + 1) * features]);
        labels.push(digits[i]);
    }
    Batch { x, labels }
}

/// `n` deterministic values in `[-1, 1)` drawn from `seed` (xorshift).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cycle_through_the_data_in_order() {
        let data = mnist_train().unwrap();
        let first = batch(&data, 0, 256);
        assert_eq!((first.rows(), first.features()), (256, 784));
        assert_eq!(
            batch(&data, 31, 256),
            first,
            "8000 / 256 = 31 batches per pass"
        );
        assert_ne!(batch(&data, 1, 256), first);
        assert!(first.x.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn values_are_reproducible_and_in_range() {
        let v = values(1000, 3);
        assert_eq!(v, values(1000, 3));
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
