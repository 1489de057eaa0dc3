//! Data augmentation: images moved by a few pixels, a new shift every epoch.

use super::mix;
use kiln_compiler::{Array, Data};

/// Moves each image of the batch `images` (`[rows, channels, height, width]`, floats) by up
/// to `max` pixels along each axis, in place; the pixels moved in are 0, and every channel of
/// an image moves alike. Row `r` holds example `indices[r]` of the data set: its shift is
/// drawn from the seed, the epoch and that index alone, so an epoch sees the same images
/// whenever it runs (a resumed run included) and every epoch sees them moved differently.
/// `max = 0`, or a batch that is not of rank 4 or not floats, is left as it is.
pub fn shift_images(images: &mut Array, indices: &[usize], max: usize, seed: u64, epoch: usize) {
    let &[_, channels, height, width] = images.shape() else {
        return;
    };
    let max = max.min(height).min(width);
    if max == 0 {
        return;
    }
    let key = mix(mix(seed ^ 0x5817_f7ed) ^ epoch as u64);
    let plane = height * width;
    let shift_of = |i: usize| {
        let r = mix(key ^ i as u64);
        let span = 2 * max as u64 + 1;
        (
            (r % span) as isize - max as isize,
            ((r >> 32) % span) as isize - max as isize,
        )
    };
    match images.data_mut() {
        Data::F32(v) => {
            for (image, &i) in v.chunks_exact_mut(channels * plane).zip(indices) {
                let (dy, dx) = shift_of(i);
                for p in image.chunks_exact_mut(plane) {
                    shift_plane(p, height, width, dy, dx);
                }
            }
        }
        Data::F64(v) => {
            for (image, &i) in v.chunks_exact_mut(channels * plane).zip(indices) {
                let (dy, dx) = shift_of(i);
                for p in image.chunks_exact_mut(plane) {
                    shift_plane(p, height, width, dy, dx);
                }
            }
        }
        Data::I32(_) | Data::Bool(_) => {}
    }
}

/// Moves one `height x width` plane by `dy` rows and `dx` columns in place: pixel `(r, c)`
/// takes the old `(r - dy, c - dx)`, or 0 outside. Rows (and columns) are visited against
/// the shift's direction, so every pixel is read before it is overwritten.
fn shift_plane<T: Copy + Default>(p: &mut [T], height: usize, width: usize, dy: isize, dx: isize) {
    let (h, w) = (height as isize, width as isize);
    for j in 0..h {
        let r = if dy > 0 { h - 1 - j } else { j };
        let sr = r - dy;
        for k in 0..w {
            let c = if dx > 0 { w - 1 - k } else { k };
            let sc = c - dx;
            p[(r * w + c) as usize] = if (0..h).contains(&sr) && (0..w).contains(&sc) {
                p[(sr * w + sc) as usize]
            } else {
                T::default()
            };
        }
    }
}
