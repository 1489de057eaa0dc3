//! Labelled examples for training: the [`Dataset`] trait, MNIST in IDX files ([`Mnist`]), and
//! the epoch order of a seeded shuffle ([`epoch_order`]).
//!
//! Batching: a training epoch takes `len / batch` full batches in a fresh shuffled order and
//! drops the last partial batch (its examples land in other batches in other epochs, and the
//! training step keeps one compiled shape); evaluation covers every example, the remainder in a
//! second program compiled at the remainder's size (see `train::Evaluator`).

use crate::idx::{IdxError, read_idx};
use std::path::{Path, PathBuf};

/// Labelled examples of a fixed number of `f32` features each.
pub trait Dataset {
    /// How many examples.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Features per example.
    fn features(&self) -> usize;
    /// Writes example `i`'s features into `x` (of length [`Dataset::features`]) and gives its
    /// label.
    fn example(&self, i: usize, x: &mut [f32]) -> i32;
}

/// Grayscale images with a class each, held as bytes; features are pixels scaled to `[0, 1]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Pixels per image.
    pixels: usize,
    /// Every image's pixels, row-major, one image after another.
    data: Vec<u8>,
    /// One class per image.
    labels: Vec<u8>,
}

impl Images {
    /// Images of `pixels` bytes each over `labels.len()` images.
    fn new(pixels: usize, data: Vec<u8>, labels: Vec<u8>) -> Images {
        debug_assert_eq!(data.len(), pixels * labels.len());
        Images {
            pixels,
            data,
            labels,
        }
    }

    /// The images `range` (a split of a file into train and test).
    fn slice(&self, range: std::ops::Range<usize>) -> Images {
        let data = self.data[range.start * self.pixels..range.end * self.pixels].to_vec();
        Images::new(self.pixels, data, self.labels[range].to_vec())
    }

    /// The first `at` images and the rest (`at` is clamped to the count): a validation split.
    pub fn split(&self, at: usize) -> (Images, Images) {
        let at = at.min(self.len());
        (self.slice(0..at), self.slice(at..self.len()))
    }

    /// The classes, as stored.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }
}

impl Dataset for Images {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn features(&self) -> usize {
        self.pixels
    }

    fn example(&self, i: usize, x: &mut [f32]) -> i32 {
        let pixels = &self.data[i * self.pixels..(i + 1) * self.pixels];
        for (x, &p) in x.iter_mut().zip(pixels) {
            *x = f32::from(p) / 255.0;
        }
        i32::from(self.labels[i])
    }
}

/// Square images each moved by up to `max` pixels along each axis (the pixels moved in are 0):
/// data augmentation. The shift of each image is drawn from the seed, the epoch and the
/// image's index alone, so an epoch sees the same images whenever it runs (a resumed run
/// included) and every epoch sees them moved differently.
pub struct Shifted<'a> {
    images: &'a Images,
    side: usize,
    max: usize,
    key: u64,
}

impl<'a> Shifted<'a> {
    /// `images` shifted for epoch `epoch` of a run seeded with `seed`; `max = 0` leaves them
    /// as they are. Images that are not square are left as they are.
    pub fn new(images: &'a Images, max: usize, seed: u64, epoch: usize) -> Shifted<'a> {
        let side = images.pixels.isqrt();
        let max = if side * side == images.pixels {
            max.min(side)
        } else {
            0
        };
        Shifted {
            images,
            side,
            max,
            key: mix(mix(seed ^ 0x5817_f7ed) ^ epoch as u64),
        }
    }
}

impl Dataset for Shifted<'_> {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn features(&self) -> usize {
        self.images.features()
    }

    fn example(&self, i: usize, x: &mut [f32]) -> i32 {
        if self.max == 0 {
            return self.images.example(i, x);
        }
        let r = mix(self.key ^ i as u64);
        let span = 2 * self.max as u64 + 1;
        let (dy, dx) = (
            (r % span) as isize - self.max as isize,
            ((r >> 32) % span) as isize - self.max as isize,
        );
        let n = self.side as isize;
        let pixels = &self.images.data[i * self.images.pixels..(i + 1) * self.images.pixels];
        for (row, out) in x.chunks_exact_mut(self.side).enumerate() {
            let sy = row as isize - dy;
            for (col, px) in out.iter_mut().enumerate() {
                let sx = col as isize - dx;
                *px = if (0..n).contains(&sy) && (0..n).contains(&sx) {
                    f32::from(pixels[(sy * n + sx) as usize]) / 255.0
                } else {
                    0.0
                };
            }
        }
        i32::from(self.images.labels[i])
    }
}

/// Why a data set cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file exists but cannot be read as IDX.
    #[error(transparent)]
    Idx(#[from] IdxError),
    /// The directory holds neither layout.
    #[error(
        "`{}` holds no MNIST data: expected {MNIST10K_IMAGES} and {MNIST10K_LABELS} (the \
         embedded MNIST-10k), or train-images-idx3-ubyte, train-labels-idx1-ubyte, \
         t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)",
        .0.display()
    )]
    Layout(PathBuf),
    /// The images and labels disagree, or are not 28x28 digits.
    #[error("{}: {reason}", path.display())]
    Mismatch {
        /// The images file.
        path: PathBuf,
        /// What disagrees.
        reason: String,
    },
}

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
    pub train: Images,
    /// Images that test.
    pub test: Images,
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
            return Ok(Mnist {
                train: all.slice(0..MNIST10K_TRAIN),
                test: all.slice(MNIST10K_TRAIN..all.len()),
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
fn read_images(images: &Path, labels: &Path) -> Result<Images, DataError> {
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
    Ok(Images::new(28 * 28, img.data, lab.data))
}

/// The order of `len` examples in epoch `epoch` (counting from 1) of a run seeded with `seed`:
/// a Fisher-Yates shuffle driven by a counter-based generator, so that the order depends on the
/// seed and the epoch alone (a resumed run sees the orders an uninterrupted one would).
pub fn epoch_order(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    let key = mix(seed ^ mix(epoch as u64));
    for i in (1..len).rev() {
        let r = mix(key ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Multiply-shift maps the 64-bit draw onto 0..=i without modulo bias worth measuring.
        let j = ((u128::from(r) * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// SplitMix64's finalizer: a bijective mix of 64 bits.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
    }

    #[test]
    fn the_embedded_set_splits_8000_and_2000() {
        let m = Mnist::load(&data_dir()).unwrap();
        assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
        assert_eq!(m.train.features(), 784);
        let mut x = vec![0.0; 784];
        let label = m.test.example(1999, &mut x);
        assert!((0..10).contains(&label));
        assert!(x.iter().all(|p| (0.0..=1.0).contains(p)));
        assert!(x.contains(&1.0), "a digit has saturated pixels");
    }

    #[test]
    fn a_directory_without_mnist_is_refused_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let e = Mnist::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("holds no MNIST data"), "{e}");
        assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
    }

    #[test]
    fn the_full_layout_is_read_plain() {
        let dir = tempfile::tempdir().unwrap();
        let idx = |dims: &[u32], data: &[u8]| {
            let mut b = vec![0, 0, 8, dims.len() as u8];
            for d in dims {
                b.extend_from_slice(&d.to_be_bytes());
            }
            b.extend_from_slice(data);
            b
        };
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes);
        write("train-images-idx3-ubyte", idx(&[2, 28, 28], &[7; 2 * 784])).unwrap();
        write("train-labels-idx1-ubyte", idx(&[2], &[3, 4])).unwrap();
        write("t10k-images-idx3-ubyte", idx(&[1, 28, 28], &[0; 784])).unwrap();
        write("t10k-labels-idx1-ubyte", idx(&[1], &[12])).unwrap();
        let e = Mnist::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("label 12 of image 0"), "{e}");
        write("t10k-labels-idx1-ubyte", idx(&[1], &[9])).unwrap();
        let m = Mnist::load(dir.path()).unwrap();
        assert_eq!(m.train.labels(), &[3, 4]);
        assert_eq!(m.test.len(), 1);
        write("t10k-labels-idx1-ubyte", idx(&[2], &[9, 9])).unwrap();
        let e = Mnist::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("1 images but"), "{e}");
    }

    #[test]
    fn shifted_images_move_by_at_most_max_and_differ_by_epoch() {
        let m = Mnist::load(&data_dir()).unwrap();
        let (mut plain, mut moved, mut again) = (vec![0.0; 784], vec![0.0; 784], vec![0.0; 784]);
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let label = m.train.example(i, &mut plain);
            assert_eq!(
                Shifted::new(&m.train, 2, 7, 3).example(i, &mut moved),
                label
            );
            Shifted::new(&m.train, 2, 7, 3).example(i, &mut again);
            assert_eq!(
                moved, again,
                "the same seed, epoch and image give the same shift"
            );
            // Find the shift: some (dy, dx) within 2 maps plain onto moved exactly where both
            // are inside the image.
            let shift = (-2..=2isize)
                .flat_map(|dy| (-2..=2isize).map(move |dx| (dy, dx)))
                .find(|&(dy, dx)| {
                    (0..28isize).all(|r| {
                        (0..28isize).all(|c| {
                            let (sr, sc) = (r - dy, c - dx);
                            let want = if (0..28).contains(&sr) && (0..28).contains(&sc) {
                                plain[(sr * 28 + sc) as usize]
                            } else {
                                0.0
                            };
                            moved[(r * 28 + c) as usize] == want
                        })
                    })
                });
            seen.insert(shift.expect("a shift within 2 pixels"));
        }
        assert!(seen.len() > 15, "shifts vary: {seen:?}");
        Shifted::new(&m.train, 2, 7, 4).example(0, &mut again);
        Shifted::new(&m.train, 0, 7, 4).example(0, &mut moved);
        m.train.example(0, &mut plain);
        assert_eq!(moved, plain, "max 0 is the identity");
    }

    #[test]
    fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
        let a = epoch_order(1000, 7, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(1000, 7, 1));
        assert_ne!(a, epoch_order(1000, 7, 2));
        assert_ne!(a, epoch_order(1000, 8, 1));
        // Every position is reachable: over many epochs element 0 lands everywhere often.
        let mut seen = [0usize; 10];
        for e in 0..2000 {
            seen[epoch_order(10, 1, e).iter().position(|&i| i == 0).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&c| (120..280).contains(&c)), "{seen:?}");
    }
}
