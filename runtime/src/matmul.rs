//! Matrix products: f32 and f64 through the `gemm` crate, i32 by plain loops.
//!
//! Two things here are about speed, both measured on the products training steps make:
//! - A large product is split along the longer side of its result into one block of rows (or
//!   columns) per thread, each a single-threaded `gemm` call on the executable's pool.
//! - `gemm` is up to 3.5 times slower when the right operand is column-major (unit stride
//!   along the contracted axis, as in `dY x W^T` of every backward pass) and the result is
//!   wider than tall: 62 us against 22 us for `[32,512] x [512,128]`, 1.73 ms against 0.52 ms
//!   for `[64,1024] x [1024,784]`. Such a product is computed transposed, `C^T = B^T A^T`
//!   (both operands then have the layout `gemm` handles well), into scratch memory the
//!   executable allocates once, and transposed into place.
//!
//! A product that adds into its result (`DotKernel::accumulate`, a sum of products) has
//! `gemm` read the destination, or adds as it transposes.

use crate::pool::{Pool, Shared, split_step};
use kiln_compiler::DType;
use kiln_compiler::kernel::{DotKernel, Kernel, Matrix, Program};

/// Products of at least this many flops are split across the pool's threads.
const PARALLEL_FLOPS: usize = 1 << 20;

/// Columns of the result one step of the transposition writes (a cache line of f32).
const TRANSPOSE_BLOCK: usize = 16;

/// Whether `d` is computed as `C^T = B^T A^T` (see the module docs).
fn transposed(d: &DotKernel) -> bool {
    d.b.row_stride == 1 && d.b.col_stride != 1 && d.m < d.n
}

/// Bytes of scratch memory the products of `p` need (the largest transposed result).
pub(crate) fn scratch_bytes(p: &Program) -> usize {
    (p.kernels.iter())
        .filter_map(|k| match k {
            Kernel::Dot(d) if transposed(d) => {
                Some(d.m * d.n * p.buffers[d.out as usize].ty.dtype.size_bytes())
            }
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Computes the matrix product `d`, reading and writing the buffers `table` points to.
///
/// # Safety
/// `table` holds valid pointers for `d`'s buffers with their types in `p`, and `scratch`
/// points to at least [`scratch_bytes`]`(p)` bytes aligned for f64.
pub(crate) unsafe fn dot(
    table: &[*mut u8],
    d: &DotKernel,
    p: &Program,
    pool: &Pool,
    scratch: *mut u8,
) {
    let dtype = p.buffers[d.out as usize].ty.dtype;
    let batches: usize = d.batch.iter().product();
    for bi in 0..batches {
        let at = |m: &Matrix| {
            let mut rest = bi;
            let mut off = m.offset;
            for (i, &s) in m.batch_strides.iter().enumerate().rev() {
                off += (rest % d.batch[i]) as i64 * s;
                rest /= d.batch[i];
            }
            off as isize
        };
        let (oa, ob, oc) = (at(&d.a), at(&d.b), (bi * d.m * d.n) as isize);
        let (a, b, c) = (
            table[d.a.buffer as usize],
            table[d.b.buffer as usize],
            table[d.out as usize],
        );
        // The factor of the product: 1, or minus a descent step's scalar.
        let factor = |b: u32| table[b as usize];
        // SAFETY: offsets and strides come from the operands' static shapes and views, so
        // every element addressed lies inside its buffer; a step's scalar buffer holds one
        // element of the product's type; the scratch is forwarded.
        unsafe {
            match dtype {
                DType::F32 => gemm_product(
                    d,
                    a.cast::<f32>().offset(oa),
                    b.cast::<f32>().offset(ob),
                    c.cast::<f32>().offset(oc),
                    scratch.cast(),
                    (1.0, d.descend.map_or(1.0, |s| -*factor(s).cast::<f32>())),
                    pool,
                ),
                DType::F64 => gemm_product(
                    d,
                    a.cast::<f64>().offset(oa),
                    b.cast::<f64>().offset(ob),
                    c.cast::<f64>().offset(oc),
                    scratch.cast(),
                    (1.0, d.descend.map_or(1.0, |s| -*factor(s).cast::<f64>())),
                    pool,
                ),
                DType::I32 => int_product(
                    d,
                    a.cast::<i32>().offset(oa),
                    b.cast::<i32>().offset(ob),
                    c.cast::<i32>().offset(oc),
                ),
                DType::Bool => unreachable!("dot is numeric"),
            }
        }
    }
}

/// A strided matrix: element `[i, j]` at `ptr + i * rs + j * cs`.
#[derive(Clone, Copy)]
struct View<T> {
    ptr: *mut T,
    rs: isize,
    cs: isize,
}

impl<T> View<T> {
    /// The view of the same matrix transposed.
    fn t(self) -> View<T> {
        View {
            ptr: self.ptr,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// The view starting at row `i`.
    ///
    /// # Safety
    /// Row `i` lies inside the matrix.
    unsafe fn row(self, i: usize) -> View<T> {
        View {
            // SAFETY: forwarded from the caller.
            ptr: unsafe { self.ptr.offset(i as isize * self.rs) },
            ..self
        }
    }
}

/// `c = f a x b` (or `c += f a x b` if `d.accumulate`) for one batch element of `d`, f32 or
/// f64, where `(one, f) = units`: split across threads when large, computed transposed
/// through `scratch` when [`transposed`].
///
/// # Safety
/// The pointers address `d`'s operands and result with `d`'s strides; `scratch` holds
/// `d.m * d.n` elements when `d` is transposed.
unsafe fn gemm_product<T: 'static + Copy + Default + std::ops::Add<Output = T>>(
    d: &DotKernel,
    a: *const T,
    b: *const T,
    c: *mut T,
    scratch: *mut T,
    (one, factor): (T, T),
    pool: &Pool,
) {
    let view = |ptr: *const T, m: &Matrix| View {
        ptr: ptr as *mut T,
        rs: m.row_stride as isize,
        cs: m.col_stride as isize,
    };
    let (a, b) = (view(a, &d.a), view(b, &d.b));
    let c = View {
        ptr: c,
        rs: d.n as isize,
        cs: 1,
    };
    let t = transposed(d);
    // Whether `gemm` adds to `dst` (the scratch of a transposed product starts afresh).
    let add = d.accumulate && !t;
    // The product computed: `dst = lhs x rhs`, `[rows, k] x [k, cols]`, row-major `dst`.
    let (dst, lhs, rhs, rows, cols) = if t {
        let s = View {
            ptr: scratch,
            rs: d.m as isize,
            cs: 1,
        };
        (s, b.t(), a.t(), d.n, d.m)
    } else {
        (c, a, b, d.m, d.n)
    };
    // Split along the rows of `dst` when it is at least as tall as wide, else its columns
    // (the transposed product is always taller than wide).
    let by_rows = rows >= cols;
    let long = if by_rows { rows } else { cols };
    let (dst, lhs, rhs, c, units) = (
        Shared(dst),
        Shared(lhs),
        Shared(rhs),
        Shared(c),
        Shared((one, factor)),
    );
    let block = move |lo: usize, hi: usize| {
        let (dst, lhs, rhs, c, units) = (dst.get(), lhs.get(), rhs.get(), c.get(), units.get());
        // SAFETY: forwarded from the caller; the block lies inside the product, and blocks
        // of different threads write disjoint elements of `dst` and of `c`.
        unsafe {
            if by_rows {
                gemm_block(
                    dst.row(lo),
                    lhs.row(lo),
                    rhs,
                    (hi - lo, d.k, cols),
                    units,
                    add,
                );
                if t {
                    transpose_rows(dst, c, lo, hi, cols, d.accumulate);
                }
            } else {
                let dst = dst.t().row(lo).t();
                gemm_block(
                    dst,
                    lhs,
                    rhs.t().row(lo).t(),
                    (rows, d.k, hi - lo),
                    units,
                    add,
                );
            }
        }
    };
    let flops = 2 * d.m * d.n * d.k;
    if pool.threads() > 1 && flops >= PARALLEL_FLOPS && long >= 2 {
        let step = split_step(long, pool.threads(), 1);
        pool.split(long.div_ceil(step), &|i| {
            block(i * step, ((i + 1) * step).min(long))
        });
    } else {
        block(0, long);
    }
}

/// `dst = f lhs x rhs` (`dst += f lhs x rhs` with `add`), `[m, k] x [k, n]` for
/// `(m, k, n) = mkn` and `(one, f) = units`, one `gemm` call on this thread.
///
/// # Safety
/// The views address matrices of those extents.
unsafe fn gemm_block<T: 'static + Copy + Default>(
    dst: View<T>,
    lhs: View<T>,
    rhs: View<T>,
    (m, k, n): (usize, usize, usize),
    (one, factor): (T, T),
    add: bool,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs,
            dst.rs,
            add,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            if add { one } else { T::default() },
            factor,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// Writes (or with `add`, adds) rows `lo..hi` of the row-major `s` (`[n, m]`, `cols = m`) into
/// columns `lo..hi` of `c` (`[m, n]`), a block of [`TRANSPOSE_BLOCK`] columns at a time so
/// writes fill cache lines.
///
/// # Safety
/// `s` and `c` address matrices of those extents; `lo..hi` lies inside `0..n`.
unsafe fn transpose_rows<T: Copy + std::ops::Add<Output = T>>(
    s: View<T>,
    c: View<T>,
    lo: usize,
    hi: usize,
    cols: usize,
    add: bool,
) {
    for jb in (lo..hi).step_by(TRANSPOSE_BLOCK) {
        let je = (jb + TRANSPOSE_BLOCK).min(hi);
        for i in 0..cols {
            for j in jb..je {
                // SAFETY: `[j, i]` lies inside `s` and `[i, j]` inside `c`.
                unsafe {
                    let to = c.ptr.offset(i as isize * c.rs + j as isize);
                    let x = *s.ptr.offset(j as isize * s.rs + i as isize);
                    *to = if add { *to + x } else { x };
                }
            }
        }
    }
}

/// Integer matrix product (added to `c` if `d.accumulate`), wrapping like the interpreter.
///
/// # Safety
/// As for [`gemm_product`].
unsafe fn int_product(d: &DotKernel, a: *const i32, b: *const i32, c: *mut i32) {
    for i in 0..d.m {
        for j in 0..d.n {
            let mut acc = 0i32;
            for l in 0..d.k {
                // SAFETY: forwarded from the caller.
                unsafe {
                    let x = *a.offset(
                        i as isize * d.a.row_stride as isize + l as isize * d.a.col_stride as isize,
                    );
                    let y = *b.offset(
                        l as isize * d.b.row_stride as isize + j as isize * d.b.col_stride as isize,
                    );
                    acc = acc.wrapping_add(x.wrapping_mul(y));
                }
            }
            // SAFETY: as above.
            unsafe {
                let to = c.add(i * d.n + j);
                *to = if d.accumulate {
                    (*to).wrapping_add(acc)
                } else {
                    acc
                };
            }
        }
    }
}
