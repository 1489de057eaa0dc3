//! 3x3 convolutions at stride 1 by Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2015).
//!
//! Each 2x2 block of outputs is computed from the 4x4 tile of input that covers it: the tile
//! and the kernel are taken to a 16-point transformed domain, where the convolution is one
//! product per point and per channel pair, and the products are taken back:
//! `Y = A^T [(G g G^T) . (B^T d B)] A`. Summed over the input channels, each point is a matrix
//! product, so a layer is 16 products of `[out_channels, channels] x [channels, tiles]`:
//! 16 x 16 = 256 multiplies per 2x2 block and channel pair where im2col does 4 x 9 x 16 =
//! 576, 2.25 times fewer. The gradients are the same products transposed, so the backward
//! pass gains as much.
//!
//! Every step is a primitive kiln already has: the transforms are products with constant
//! 16x16, 16x9 and 4x16 matrices (Kronecker products of the 1-D transforms), the tiles a
//! window view, the 16 products one batched matrix product. Autodiff, fusion and the JIT
//! apply unchanged, and the interpreter checks the result against im2col's.
//!
//! The transforms' entries are 0, ±1 and ±1/2, exact in binary: the only rounding beyond
//! im2col's is that of the sums they form, a few units in the last place of the inputs'
//! magnitudes.

use super::Layers;
use crate::Tensor;
use kiln_compiler::{Array, Data};

/// `B^T`: a 4-element input row to the transformed domain.
const BT: [[f64; 4]; 4] = [
    [1.0, 0.0, -1.0, 0.0],
    [0.0, 1.0, 1.0, 0.0],
    [0.0, -1.0, 1.0, 0.0],
    [0.0, 1.0, 0.0, -1.0],
];

/// `G`: a 3-element kernel row to the transformed domain.
const G: [[f64; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// `A^T`: the transformed domain back to 2 outputs.
const AT: [[f64; 4]; 2] = [[1.0, 1.0, 1.0, 0.0], [0.0, 1.0, -1.0, -1.0]];

/// The Kronecker product `m (x) m` as a constant of `like`'s dtype (named `name` among the
/// constants the layers share): the 2-D transform `m X m^T` of a `C x C` block `X` flattened
/// row-major, as one `[R R, C C]` matrix.
fn kronecker<const R: usize, const C: usize>(
    nn: &Layers,
    name: &'static str,
    like: &Tensor,
    m: &[[f64; C]; R],
) -> Tensor {
    nn.shared_constant(name, like.dtype(), || {
        let mut values = Vec::with_capacity(R * R * C * C);
        for i in 0..R {
            for j in 0..R {
                for a in 0..C {
                    for c in 0..C {
                        values.push(m[i][a] * m[j][c] + 0.0); // -0.0 as 0.0
                    }
                }
            }
        }
        let data = Data::from_f64(like.dtype(), values);
        let array = Array::new([R * R, C * C], data).expect("one value per element");
        nn.builder().constant(array)
    })
}

/// The cross-correlation of `x: [N, C, H, W]` (already padded) with `w: [K, C, 3, 3]` at
/// stride 1: `[N, K, H - 2, W - 2]`.
pub(super) fn conv3x3(nn: &Layers, x: &Tensor, w: &Tensor) -> Tensor {
    let (&[n, c, h, wd], &[k, ..]) = (x.shape(), w.shape()) else {
        unreachable!("conv2d checked the ranks");
    };
    let (oh, ow) = (h - 2, wd - 2);
    // Tiles of 4x4 every 2 elements; an odd output extent gets one more row or column of
    // zeros, whose outputs are dropped at the end.
    let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
    let x = if oh % 2 + ow % 2 > 0 {
        x.pad(&[0, 0, 0, 0], &[0, 0, oh % 2, ow % 2], 0.0)
    } else {
        x.clone()
    };
    let tiles = th * tw * n;
    // The tiles, [4, 4, C, N, TH, TW] as [16, C N TH TW], to the transformed domain.
    let d = x
        .windows(&[4, 4], &[2, 2], &[1, 1])
        .permute(&[4, 5, 1, 0, 2, 3])
        .reshape(&[16, (c * tiles) as isize]);
    let v = kronecker(nn, "winograd.bt", &x, &BT).matmul(&d);
    // The kernels, [3, 3, K, C] as [9, K C], to the transformed domain.
    let g = w.permute(&[2, 3, 0, 1]).reshape(&[9, (k * c) as isize]);
    let u = kronecker(nn, "winograd.g", &x, &G).matmul(&g);
    // One product per point: [16, K, C] x [16, C, tiles].
    let m = u
        .reshape(&[16, k as isize, c as isize])
        .matmul(&v.reshape(&[16, c as isize, tiles as isize]));
    // Back to 2x2 blocks, [2, 2, K, N, TH, TW], laid out as [N, K, 2 TH, 2 TW].
    let y = kronecker(nn, "winograd.at", &x, &AT).matmul(&m.reshape(&[16, (k * tiles) as isize]));
    let (k, n, th, tw) = (k as isize, n as isize, th as isize, tw as isize);
    let y = y
        .reshape(&[2, 2, k, n, th, tw])
        .permute(&[3, 2, 4, 0, 5, 1])
        .reshape(&[n, k, 2 * th, 2 * tw]);
    if oh % 2 + ow % 2 > 0 {
        y.slice(
            &[0, 0, 0, 0],
            &[n as usize, k as usize, oh, ow],
            &[1, 1, 1, 1],
        )
    } else {
        y
    }
}
