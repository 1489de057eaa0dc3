//! Scatter-adds (the gradient of `gather`): plain loops over the buffers, computing exactly
//! what the reference interpreter computes, with memory the executable allocates once.
//!
//! The interpreter sums the terms that land on a position in `updates`' row-major order,
//! starting from the first term (so a lone `-0.0` stays `-0.0`), in f64 for floats (rounded
//! once at the end) and wrapping for i32, and gives `+0` where no term lands. These loops do
//! the same, so the results are the interpreter's bit for bit.

use kiln_compiler::DType;
use kiln_compiler::kernel::{Kernel, Program, ScatterKernel};

/// Elements of running sums the scatters of `p` need: the largest float result.
pub(crate) fn sums_len(p: &Program) -> usize {
    (p.kernels.iter())
        .filter_map(|k| match k {
            Kernel::Scatter(s) => Some(&p.buffers[s.out as usize].ty),
            _ => None,
        })
        .filter(|ty| ty.dtype.is_float())
        .map(|ty| ty.numel())
        .max()
        .unwrap_or(0)
}

/// Computes `out = 0; out[.., clamp(idx[j]), ..] += updates[.., j, ..]` for the scatter `s`,
/// reading and writing the buffers `table` points to; `sums` and `reached` are scratch.
///
/// # Safety
/// `table` holds valid pointers for `s`'s buffers with their types in `p`, and `sums` and
/// `reached` hold at least [`sums_len`]`(p)` elements.
pub(crate) unsafe fn scatter(
    table: &[*mut u8],
    s: &ScatterKernel,
    p: &Program,
    sums: &mut [f64],
    reached: &mut [bool],
) {
    let out_ty = &p.buffers[s.out as usize].ty;
    let (outer, size, inner): (usize, usize, usize) = (
        out_ty.shape[..s.axis].iter().product(),
        out_ty.shape[s.axis],
        out_ty.shape[s.axis + 1..].iter().product(),
    );
    let count = p.buffers[s.indices as usize].ty.numel();
    let n = out_ty.numel();
    if n == 0 {
        // No position to land on (an extent is 0): nothing to write.
        return;
    }
    // SAFETY (here and for `buffers` below): the caller guarantees the buffers' types;
    // `indices` holds `count` i32, `updates` `outer * count * inner` elements of the result's
    // type.
    let indices =
        unsafe { std::slice::from_raw_parts(table[s.indices as usize] as *const i32, count) };
    // The element of `updates` at `(o, j, i)`, its target position in the result, in order.
    let terms = (0..outer).flat_map(move |o| {
        (0..count).flat_map(move |j| {
            let k = (indices[j].max(0) as usize).min(size - 1);
            (0..inner).map(move |i| ((o * count + j) * inner + i, (o * size + k) * inner + i))
        })
    });
    let (upd, out) = (table[s.updates as usize], table[s.out as usize]);
    let terms_len = outer * count * inner;
    match out_ty.dtype {
        DType::I32 => {
            let (upd, out) = unsafe { buffers::<i32>(upd, terms_len, out, n) };
            out.fill(0);
            for (from, to) in terms {
                out[to] = out[to].wrapping_add(upd[from]);
            }
        }
        DType::F32 => {
            let (upd, out) = unsafe { buffers::<f32>(upd, terms_len, out, n) };
            sum_floats(terms, upd, out, f64::from, |s| s as f32, sums, reached);
        }
        DType::F64 => {
            let (upd, out) = unsafe { buffers::<f64>(upd, terms_len, out, n) };
            sum_floats(terms, upd, out, |v| v, |s| s, sums, reached);
        }
        DType::Bool => unreachable!("scatter_add of bool is rejected when the graph is built"),
    }
}

/// The updates (`m` elements) and the result (`n`) as slices of `T`.
///
/// # Safety
/// `upd` and `out` point to that many elements of `T`, and nothing else accesses `out` while
/// the result lives (the memory plan never overlaps a kernel's reads and writes).
unsafe fn buffers<'a, T>(
    upd: *const u8,
    m: usize,
    out: *mut u8,
    n: usize,
) -> (&'a [T], &'a mut [T]) {
    unsafe {
        (
            std::slice::from_raw_parts(upd.cast(), m),
            std::slice::from_raw_parts_mut(out.cast(), n),
        )
    }
}

/// Sums the terms `upd[from]` into `out[to]` as the interpreter does: in f64 (`widen`), each
/// position from its first term on, rounded once (`narrow`); `+0` where no term lands. `sums`
/// and `reached` are scratch of at least `out.len()` elements.
fn sum_floats<T: Copy + Default>(
    terms: impl Iterator<Item = (usize, usize)>,
    upd: &[T],
    out: &mut [T],
    widen: impl Fn(T) -> f64,
    narrow: impl Fn(f64) -> T,
    sums: &mut [f64],
    reached: &mut [bool],
) {
    let (sums, reached) = (&mut sums[..out.len()], &mut reached[..out.len()]);
    reached.fill(false);
    for (from, to) in terms {
        let v = widen(upd[from]);
        sums[to] = if reached[to] { sums[to] + v } else { v };
        reached[to] = true;
    }
    for (o, (&s, &r)) in out.iter_mut().zip(sums.iter().zip(reached.iter())) {
        *o = if r { narrow(s) } else { T::default() };
    }
}
