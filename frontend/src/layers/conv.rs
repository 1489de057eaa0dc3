//! Convolution and pooling over NCHW images, as window views: a convolution is a window view
//! laid out as rows (im2col) times the kernel matrix, a pooling a reduction over each window.

use super::{Layers, rank_error, winograd};
use crate::Tensor;
use kiln_compiler::TypeErrorKind;

/// The settings of a 2-D convolution: output channels, a square kernel, stride, zero padding
/// on every side, and whether it adds a bias. Build with [`Conv2d::new`] and the setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    /// Output channels (the number of kernels).
    pub out_channels: usize,
    /// The kernel's height and width.
    pub kernel: usize,
    /// The step between windows, both directions.
    pub stride: usize,
    /// Zeros added on each side of the height and width.
    pub padding: usize,
    /// Whether a bias per output channel is added.
    pub bias: bool,
    /// How the convolution is computed.
    pub lowering: Lowering,
}

/// How a convolution is computed from primitives. The result is the same up to rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lowering {
    /// [`Lowering::Winograd`] where it applies and pays, [`Lowering::Im2col`] elsewhere.
    #[default]
    Auto,
    /// One matrix product of the kernels and the windows laid out as columns.
    Im2col,
    /// Winograd's F(2x2, 3x3): 2.25 times fewer multiplies, for 3x3 kernels at stride 1
    /// (others fall back to im2col).
    Winograd,
}

/// The fewest input and output channels for which [`Lowering::Auto`] picks Winograd's
/// algorithm. Its transforms move memory in proportion to the channels, in and out, where the
/// multiplies it saves grow with their product: with fewer channels the transforms cost more
/// than they save (measured in `benches/NOTES.md`, "Winograd convolutions").
const WINOGRAD_MIN_CHANNELS: usize = 64;

impl Conv2d {
    /// `out_channels` kernels of `kernel x kernel`, stride 1, no padding, with a bias.
    pub fn new(out_channels: usize, kernel: usize) -> Conv2d {
        Conv2d {
            out_channels,
            kernel,
            stride: 1,
            padding: 0,
            bias: true,
            lowering: Lowering::Auto,
        }
    }

    /// The same convolution, computed as `lowering` says.
    pub fn lowering(self, lowering: Lowering) -> Conv2d {
        Conv2d { lowering, ..self }
    }

    /// Whether a convolution of `channels` input channels is computed by Winograd's algorithm.
    fn winograd(&self, channels: usize) -> bool {
        let fits = self.kernel == 3 && self.stride == 1;
        match self.lowering {
            Lowering::Auto => fits && channels.min(self.out_channels) >= WINOGRAD_MIN_CHANNELS,
            Lowering::Winograd => fits,
            Lowering::Im2col => false,
        }
    }

    /// The same convolution with stride `stride`.
    pub fn stride(self, stride: usize) -> Conv2d {
        Conv2d { stride, ..self }
    }

    /// The same convolution with `padding` zeros on each side.
    pub fn padding(self, padding: usize) -> Conv2d {
        Conv2d { padding, ..self }
    }

    /// The same convolution, with a bias or without.
    pub fn bias(self, bias: bool) -> Conv2d {
        Conv2d { bias, ..self }
    }
}

impl Layers<'_> {
    /// A 2-D convolution (cross-correlation, as PyTorch's `Conv2d`) of `x: [N, C, H, W]` giving
    /// `[N, out_channels, OH, OW]`. Parameters `<name>.w: [out_channels, C, k, k]` and, with a
    /// bias, `<name>.b: [out_channels]`, both uniform in `±1/sqrt(C k k)` as PyTorch draws them.
    ///
    /// Computed as one matrix product (im2col): the kernels as rows, `[out_channels, C k k]`,
    /// times the padded input's windows as columns, `[C k k, N OH OW]`.
    #[track_caller]
    pub fn conv2d(&self, name: &str, x: &Tensor, conv: Conv2d) -> Tensor {
        let &[n, c, _, _] = x.shape() else {
            return rank_error(x, "conv2d", "4 ([N, C, H, W])");
        };
        let Conv2d {
            out_channels: oc,
            kernel: k,
            stride,
            padding: p,
            bias,
            ..
        } = conv;
        let fan_in = c * k * k;
        let w = self.fan_in_param(&format!("{name}.w"), x, &[oc, c, k, k], fan_in);
        let padded = if p > 0 {
            x.pad(&[0, 0, p, p], &[0, 0, p, p], 0.0)
        } else {
            x.clone()
        };
        if conv.winograd(c) {
            let mut y = winograd::conv3x3(self, &padded, &w);
            if bias {
                let b = self.fan_in_param(&format!("{name}.b"), x, &[oc], fan_in);
                y = y + b.reshape(&[oc as isize, 1, 1]);
            }
            return y;
        }
        let windows = padded.windows(&[k, k], &[stride, stride], &[1, 1]);
        let &[_, _, oh, ow, _, _] = windows.shape() else {
            return windows;
        };
        // The windows as columns, [C k k, N OH OW]: laid out so the kernel that writes them
        // reads the image along its rows.
        let columns = windows
            .permute(&[1, 4, 5, 0, 2, 3])
            .reshape(&[fan_in as isize, (n * oh * ow) as isize]);
        let mut y = w.reshape(&[oc as isize, fan_in as isize]).matmul(&columns);
        // The bias is added to the product's rows, before they are laid out as images: its
        // gradient then sums the rows of the gradient that the weights' product reads too.
        if bias {
            let b = self.fan_in_param(&format!("{name}.b"), x, &[oc], fan_in);
            y = y + b.reshape(&[oc as isize, 1]);
        }
        y.reshape(&[oc as isize, n as isize, oh as isize, ow as isize])
            .permute(&[1, 0, 2, 3])
    }
}

impl Tensor {
    /// The largest element of each `kernel x kernel` window over the last two axes of a
    /// `[N, C, H, W]` or `[C, H, W]` tensor, windows `stride` apart, after padding each side
    /// with `padding` elements of `-inf` (which never win). As PyTorch's `max_pool2d`,
    /// `padding` is at most half the kernel.
    #[track_caller]
    pub fn max_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Tensor {
        let windows = self.pool_windows("max_pool2d", kernel, stride, padding, f64::NEG_INFINITY);
        windows.max(&[-2, -1])
    }

    /// The mean of each `kernel x kernel` window over the last two axes of a `[N, C, H, W]` or
    /// `[C, H, W]` tensor, windows `stride` apart, after padding each side with `padding` zeros
    /// (which count in the mean, as in PyTorch's default `avg_pool2d`). `padding` is at most
    /// half the kernel.
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize, padding: usize) -> Tensor {
        let windows = self.pool_windows("avg_pool2d", kernel, stride, padding, 0.0);
        windows.mean(&[-2, -1])
    }

    /// The windows a pooling reduces: `[.., OH, OW, kernel, kernel]` over `self` padded with
    /// `fill`. Windows that tile the image (stride equal to the kernel, no padding, extents
    /// its multiples) are the same elements as a reshape and a permutation, whose gradient is
    /// one too: each input element then gets its gradient from its own window, not from a sum
    /// over every window position that might cover it.
    #[track_caller]
    fn pool_windows(
        &self,
        op: &str,
        kernel: usize,
        stride: usize,
        padding: usize,
        fill: f64,
    ) -> Tensor {
        let rank = self.rank();
        if !(3..=4).contains(&rank) || self.node().is_none() {
            return rank_error(self, op, "3 or 4 ([C, H, W] or [N, C, H, W])");
        }
        if padding > kernel / 2 {
            return self.fail(
                op,
                TypeErrorKind::BadAttribute(format!(
                    "padding {padding} is more than half the kernel {kernel}"
                )),
            );
        }
        let (h, w) = (self.shape()[rank - 2], self.shape()[rank - 1]);
        let tiles = stride == kernel && kernel > 0 && padding == 0;
        if tiles && h.is_multiple_of(kernel) && w.is_multiple_of(kernel) {
            // [.., H, W] as [.., OH, k, OW, k], then [.., OH, OW, k, k].
            let lead: Vec<isize> = self.shape()[..rank - 2]
                .iter()
                .map(|&d| d as isize)
                .collect();
            let (oh, ow, k) = (
                (h / kernel) as isize,
                (w / kernel) as isize,
                kernel as isize,
            );
            let split = [lead.as_slice(), &[oh, k, ow, k]].concat();
            let mut perm: Vec<usize> = (0..rank - 2).collect();
            perm.extend([rank - 2, rank, rank - 1, rank + 1].iter());
            return self.reshape(&split).permute(&perm);
        }
        let padded = if padding > 0 {
            let mut low = vec![0; rank];
            low[rank - 2..].fill(padding);
            self.pad(&low, &low, fill)
        } else {
            self.clone()
        };
        padded.windows(&[kernel, kernel], &[stride, stride], &[1, 1])
    }

    /// The axes from `start` on merged into one (PyTorch's `flatten(start_dim)`):
    /// `flatten_from(1)` turns `[N, C, H, W]` into `[N, C H W]`.
    #[track_caller]
    pub fn flatten_from(&self, start: usize) -> Tensor {
        if start > self.rank() {
            return self.fail(
                "flatten",
                TypeErrorKind::BadAttribute(format!(
                    "cannot flatten from axis {start} of a tensor of rank {}",
                    self.rank()
                )),
            );
        }
        let mut shape: Vec<isize> = self.shape()[..start].iter().map(|&d| d as isize).collect();
        shape.push(self.shape()[start..].iter().product::<usize>() as isize);
        self.reshape(&shape)
    }
}
