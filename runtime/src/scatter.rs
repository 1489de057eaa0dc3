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
    // SAFETY (all three): the caller guarantees the buffers' types; `indices` holds `count`
    // i32, `updates` `outer * count * inner` elements of the result's type.
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
    match out_ty.dtype {
        DType::I32 => {
            let upd =
                unsafe { std::slice::from_raw_parts(upd as *const i32, outer * count * inner) };
            let out = unsafe { std::slice::from_raw_parts_mut(out as *mut i32, n) };
            out.fill(0);
            for (from, to) in terms {
                out[to] = out[to].wrapping_add(upd[from]);
            }
        }
        DType::F32 => {
            let upd =
                unsafe { std::slice::from_raw_parts(upd as *const f32, outer * count * inner) };
            let out = unsafe { std::slice::from_raw_parts_mut(out as *mut f32, n) };
            sum_floats(
                terms,
                |i| f64::from(upd[i]),
                &mut sums[..n],
                &mut reached[..n],
            );
            for (o, (&s, &r)) in out.iter_mut().zip(sums.iter().zip(reached.iter())) {
                *o = if r { s as f32 } else { 0.0 };
            }
        }
        DType::F64 => {
            let upd =
                unsafe { std::slice::from_raw_parts(upd as *const f64, outer * count * inner) };
            let out = unsafe { std::slice::from_raw_parts_mut(out as *mut f64, n) };
            sum_floats(terms, |i| upd[i], &mut sums[..n], &mut reached[..n]);
            for (o, (&s, &r)) in out.iter_mut().zip(sums.iter().zip(reached.iter())) {
                *o = if r { s } else { 0.0 };
            }
        }
        DType::Bool => unreachable!("scatter_add of bool is rejected when the graph is built"),
    }
}

/// Sums the terms `value(from)` into `sums[to]`, each position from its first term on, and
/// marks the positions `reached`.
fn sum_floats(
    terms: impl Iterator<Item = (usize, usize)>,
    value: impl Fn(usize) -> f64,
    sums: &mut [f64],
    reached: &mut [bool],
) {
    reached.fill(false);
    for (from, to) in terms {
        let v = value(from);
        sums[to] = if reached[to] { sums[to] + v } else { v };
        reached[to] = true;
    }
}
