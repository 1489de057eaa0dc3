//! [`Arena`]: the zeroed, 64-byte aligned memory a compiled program's buffers live in.
//!
//! The arena is zeroed lazily: it is asked of the allocator with an alignment of 16 (which
//! Rust's system allocator serves with `calloc`) and `ALIGN` bytes more than needed, and its
//! start is aligned by hand. For an arena of more than a few hundred KiB, `calloc` maps fresh
//! pages, which the operating system zeroes on their first touch, and does not write them; so
//! compiling costs nothing per byte of arena, and each page is zeroed when a step first
//! touches it. (Asked with an alignment over 16, the system allocator writes every byte at
//! allocation: 0.4 s for the Keras CNN's 448 MiB arena at batch 8.) Whatever the allocator
//! does, the bytes read as zero: that is `alloc_zeroed`'s contract, so correctness never
//! depends on the laziness.

use std::alloc::Layout;

/// The alignment of the arena's start.
pub const ALIGN: usize = 64;

/// The alignment asked of the allocator: the largest that Rust's system allocator serves
/// with `calloc` (its `MIN_ALIGN` on 64-bit targets).
const ASKED_ALIGN: usize = 16;

/// A zeroed byte buffer whose start is aligned to [`ALIGN`] bytes, freed on drop.
pub struct Arena {
    /// What the allocator returned (freed with `layout`).
    base: *mut u8,
    /// `base` rounded up to [`ALIGN`].
    ptr: *mut u8,
    /// The bytes usable from `ptr`.
    len: usize,
    layout: Layout,
}

impl Arena {
    /// An arena of at least `bytes` bytes (at least [`ALIGN`]), every one zero.
    pub fn new(bytes: usize) -> Arena {
        let len = bytes.max(ALIGN);
        let size = len.checked_add(ALIGN).expect("arena size");
        let layout = Layout::from_size_align(size, ASKED_ALIGN).expect("arena layout");
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        if base.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        let skip = (base as usize).next_multiple_of(ALIGN) - base as usize;
        // SAFETY: `skip < ALIGN`, so `ptr .. ptr + len` lies inside the `len + ALIGN` bytes
        // allocated from `base`.
        let ptr = unsafe { base.add(skip) };
        Arena {
            base,
            ptr,
            len,
            layout,
        }
    }

    /// The arena's first byte, aligned to [`ALIGN`].
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The bytes usable from [`Arena::as_ptr`].
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the arena has no usable bytes (never: it has at least [`ALIGN`]).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; `base` is what the allocator returned.
        unsafe { std::alloc::dealloc(self.base, self.layout) };
    }
}

// SAFETY: the arena owns its memory; nothing else holds `base`.
unsafe impl Send for Arena {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arenas_are_aligned_zeroed_and_writable_to_their_last_byte() {
        for bytes in [0, 1, 63, 64, 65, 4096, 1 << 20, 64 << 20] {
            let a = Arena::new(bytes);
            assert_eq!(a.as_ptr() as usize % ALIGN, 0);
            assert!(a.len() >= bytes.max(ALIGN));
            // SAFETY: `len` bytes from `as_ptr` belong to the arena.
            let s = unsafe { std::slice::from_raw_parts_mut(a.as_ptr(), a.len()) };
            assert!(s.iter().step_by(4093).all(|&b| b == 0));
            assert_eq!((s[0], s[s.len() - 1]), (0, 0));
            s[0] = 1;
            s[s.len() - 1] = 2;
        }
    }
}
