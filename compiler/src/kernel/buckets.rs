//! Horovod's tensor fusion: the `all_reduce` kernels of a program (a data-parallel step has
//! one per gradient) join into a few calls, each summing several buffers laid end to end, so
//! a step pays a collective's latency a few times rather than once per parameter.
//!
//! Kernels are taken in program order. One joins the open bucket when it sums the same element
//! type, the bucket stays within [`BUCKET_BYTES`], and no kernel since the bucket's first
//! member, this one included, reads what the bucket's members write or writes what they read
//! (each member then moves to the bucket's place, the last member's: its inputs are still
//! there, and nothing before reads its results). Otherwise it opens a bucket of its own.

use super::{Kernel, Program};

/// A bucket holds at most this many bytes (a larger buffer is a bucket of its own): one call
/// for a small model's gradients, a few for a large one's, each small enough for MPI's fast
/// algorithms (Open MPI's allreduce slows sharply above about 4 MB on shared memory).
pub const BUCKET_BYTES: usize = 4 << 20;

/// Joins the program's `all_reduce` kernels into buckets, as the module docs say.
pub(super) fn bucket_all_reduces(p: &mut Program) {
    let bytes = |p: &Program, k: &Kernel| match k {
        Kernel::AllReduce(a) => {
            let ty = &p.buffers[a.pairs[0].0 as usize].ty;
            Some((ty.dtype, a.len(p) * ty.dtype.size_bytes()))
        }
        _ => None,
    };
    let mut kernels: Vec<Kernel> = Vec::with_capacity(p.kernels.len());
    // The open bucket: its index in `kernels`, element type and bytes.
    let mut open: Option<(usize, _, usize)> = None;
    for k in std::mem::take(&mut p.kernels) {
        let joins = match (&open, bytes(p, &k)) {
            (Some((at, dtype, size)), Some((d, b))) => {
                let (ins, outs) = (kernels[*at].reads(), kernels[*at].writes());
                let meets = |r: &Kernel| {
                    r.reads().iter().any(|x| outs.contains(x))
                        || r.writes().iter().any(|x| ins.contains(x))
                };
                // Nor the kernel itself: the sum of a sum waits for the first.
                let since = kernels[at + 1..].iter().chain([&k]);
                *dtype == d && size + b <= BUCKET_BYTES && !since.into_iter().any(meets)
            }
            _ => false,
        };
        if joins {
            let (at, dtype, size) = open.take().expect("an open bucket");
            let Kernel::AllReduce(mut bucket) = kernels.remove(at) else {
                unreachable!("the open bucket is an all_reduce")
            };
            let Kernel::AllReduce(member) = &k else {
                unreachable!("bytes() is Some for all_reduce kernels only")
            };
            bucket.pairs.extend(&member.pairs);
            let added = bytes(p, &k).expect("an all_reduce").1;
            kernels.push(Kernel::AllReduce(bucket));
            open = Some((kernels.len() - 1, dtype, size + added));
        } else {
            if let Some((dtype, size)) = bytes(p, &k) {
                open = Some((kernels.len(), dtype, size));
            }
            kernels.push(k);
        }
    }
    p.kernels = kernels;
}
