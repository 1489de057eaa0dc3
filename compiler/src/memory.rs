//! Memory planning: one arena for a program's buffers, with temporaries that are never live at
//! the same time sharing bytes.
//!
//! State and constants live for the executable's whole life and never share. A temporary is
//! live from the first kernel that writes it to the last kernel that reads it (to the end of the
//! run if it is an output or an update's value); both ends are inclusive, so a kernel never
//! reads and writes overlapping bytes. Temporaries are placed largest first, each at the lowest
//! offset that overlaps no already placed temporary live at the same time. Data inputs are not
//! in the arena: the caller's arrays are read where they are.
//!
//! The arena keeps [`SLACK`] bytes before its first buffer and after its last: a vector load
//! of a padded view that straddles a buffer's first or last element (its lanes outside the
//! buffer are discarded) then reads inside the arena.

use crate::kernel::{Program, Role};

/// Where each buffer lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The byte offset of each buffer in the arena; `None` for data inputs.
    pub offsets: Vec<Option<usize>>,
    /// The arena's size in bytes.
    pub arena_bytes: usize,
    /// The bytes of the arena that state (parameters, optimizer moments) and constants take:
    /// what stays when a batch shrinks.
    pub fixed_bytes: usize,
    /// The bytes the temporaries would take without sharing (to report what sharing saves).
    pub unshared_bytes: usize,
}

/// Buffers start on 64-byte boundaries (a cache line; a whole number of vectors).
const ALIGN: usize = 64;

/// Bytes of the arena before its first buffer and after its last: more than a vector less one
/// element.
pub const SLACK: usize = ALIGN;

fn round_up(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Plans the arena of `p`.
pub fn plan(p: &Program) -> MemoryPlan {
    let n = p.buffers.len();
    let bytes = |b: usize| round_up(p.buffers[b].ty.numel() * p.buffers[b].ty.dtype.size_bytes());
    let end = p.kernels.len();
    let mut first = vec![usize::MAX; n];
    let mut last = vec![0usize; n];
    for (k, kernel) in p.kernels.iter().enumerate() {
        for b in kernel.writes() {
            first[b as usize] = first[b as usize].min(k);
            last[b as usize] = last[b as usize].max(k);
        }
        for b in kernel.reads() {
            last[b as usize] = last[b as usize].max(k);
        }
    }
    for &(_, b) in &p.outputs {
        last[b as usize] = end;
    }
    for &(_, _, v) in &p.updates {
        last[v as usize] = end;
    }
    let mut offsets = vec![None; n];
    let mut top = SLACK;
    for (b, buf) in p.buffers.iter().enumerate() {
        if matches!(buf.role, Role::State(_) | Role::Constant(_)) {
            offsets[b] = Some(top);
            top += bytes(b);
        }
    }
    let mut temps: Vec<usize> = (0..n)
        .filter(|&b| p.buffers[b].role == Role::Temp && first[b] != usize::MAX)
        .collect();
    temps.sort_by_key(|&b| (std::cmp::Reverse(bytes(b)), b));
    let unshared_bytes = temps.iter().map(|&b| bytes(b)).sum();
    let mut placed: Vec<(usize, usize, usize)> = vec![]; // (offset, size, buffer)
    let mut arena = top;
    for &b in &temps {
        let overlaps_in_time = |o: usize| first[o] <= last[b] && first[b] <= last[o];
        let mut busy: Vec<(usize, usize)> = placed
            .iter()
            .filter(|&&(_, _, o)| overlaps_in_time(o))
            .map(|&(off, size, _)| (off, size))
            .collect();
        busy.sort_unstable();
        let size = bytes(b);
        let mut at = top;
        for (off, len) in busy {
            if at + size <= off {
                break;
            }
            at = at.max(off + len);
        }
        placed.push((at, size, b));
        offsets[b] = Some(at);
        arena = arena.max(at + size);
    }
    MemoryPlan {
        offsets,
        arena_bytes: arena + SLACK,
        fixed_bytes: top - SLACK,
        unshared_bytes,
    }
}
