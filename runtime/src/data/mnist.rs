//! MNIST in IDX files: the embedded MNIST-10k or the full set, as data sets of two columns,
//! `x: f32[n, 1, 28, 28]` (pixels scaled to `[0, 1]`) and `labels: i32[n]` (digits).

use super::{DataError, Dataset};
use crate::idx::read_idx;
use kiln_compiler::Array;
use std::path::Path;

/// The embedded set's image file name.
pub const MNIST10K_IMAGES: &str = "mnist10k-images-idx3-ubyte.gz";
/// The embedded set's label file name.
pub const MNIST10K_LABELS: &str = "mnist10k-labels-idx1-ubyte.gz";
/// Images of the embedded set that train; the rest test.
pub const MNIST10K_TRAIN: usize = 8000;

/// MNIST digits split into training and test images.
#[derive(Clone, Debug)]
pub struct Mnist {
    /// Images that train.
    pub train: Dataset,
    /// Images that test.
    pub test: Dataset,
}

impl Mnist {
    /// Loads the digits in `dir`: the embedded MNIST-10k (the first 8,000 train, the last
    /// 2,000 test), or the full set's four files (60,000 train, 10,000 test), plain or gzip.
    pub fn load(dir: &Path) -> Result<Mnist, DataError> {
        if dir.join(MNIST10K_IMAGES).exists() {
            let all = read_images(&dir.join(MNIST10K_IMAGES), &dir.join(MNIST10K_LABELS))?;
            if all.len() <= MNIST10K_TRAIN {
                return Err(DataError::Mismatch {
                    path: dir.join(MNIST10K_IMAGES),
                    reason: format!(
                        "{} images, but the split needs more than {MNIST10K_TRAIN}",
                        all.len()
                    ),
                });
            }
            let (train, test): (Vec<usize>, Vec<usize>) =
                (0..all.len()).partition(|&i| i < MNIST10K_TRAIN);
            return Ok(Mnist {
                train: all.select(&train),
                test: all.select(&test),
            });
        }
        let find = |stem: &str| {
            [stem.to_string(), format!("{stem}.gz")]
                .into_iter()
                .map(|n| dir.join(n))
                .find(|p| p.exists())
                .ok_or_else(|| DataError::Layout(dir.to_path_buf()))
        };
        Ok(Mnist {
            train: read_images(
                &find("train-images-idx3-ubyte")?,
                &find("train-labels-idx1-ubyte")?,
            )?,
            test: read_images(
                &find("t10k-images-idx3-ubyte")?,
                &find("t10k-labels-idx1-ubyte")?,
            )?,
        })
    }
}

/// Reads an images file `[n, 28, 28]` and its labels file `[n]` of digits.
fn read_images(images: &Path, labels: &Path) -> Result<Dataset, DataError> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    let mismatch = |reason: String| DataError::Mismatch {
        path: images.to_path_buf(),
        reason,
    };
    if img.shape.len() != 3 || img.shape[1..] != [28, 28] {
        return Err(mismatch(format!(
            "images of shape {:?}, expected [n, 28, 28]",
            img.shape
        )));
    }
    if lab.shape != [img.shape[0]] {
        return Err(mismatch(format!(
            "{} images but `{}` has labels of shape {:?}",
            img.shape[0],
            labels.display(),
            lab.shape
        )));
    }
    if let Some(i) = lab.data.iter().position(|&l| l > 9) {
        return Err(mismatch(format!(
            "label {} of image {i} in `{}` is not a digit",
            lab.data[i],
            labels.display()
        )));
    }
    let n = lab.data.len();
    let pixels = img.data.iter().map(|&p| f32::from(p) / 255.0).collect();
    let labels = lab.data.iter().map(|&l| i32::from(l)).collect();
    let x = Array::from_f32([n, 1, 28, 28], pixels).map_err(|e| mismatch(e.to_string()))?;
    let labels = Array::from_i32([n], labels).map_err(|e| mismatch(e.to_string()))?;
    Dataset::new(vec![("x".into(), x), ("labels".into(), labels)])
}
