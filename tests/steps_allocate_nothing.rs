//! A compiled step allocates nothing of its own: its buffers live in the arena, the scatters'
//! running sums and the transposed products' results in memory allocated when the program is
//! compiled, and the thread pool hands out work without allocating. The one allocation left is
//! inside the `gemm` crate, which allocates its packing buffers on every call (two
//! allocations a product; its API takes no workspace), so the step measured here has no
//! matrix product. This binary counts every allocation (its own global allocator) and holds one
//! test, so nothing else allocates while it measures.

mod common;

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph};
use kiln::frontend::GraphBuilder;
use kiln::frontend::losses::{Reduction, cross_entropy};
use kiln::runtime::{Executable, Options};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting allocations and reallocations.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations made by ten runs of `g` compiled on `threads` threads (after three runs to warm
/// up), its state set and its data inputs bound from generated values.
fn allocations_in_ten_steps(g: &Graph, threads: usize) -> usize {
    let options = Options {
        threads,
        ..Options::default()
    };
    let mut exe = Executable::compile(g, &options).unwrap();
    let mut values = common::training_inputs(g, 3);
    for (name, _) in exe.state_names() {
        let v = values.remove(&name).expect("a value for each state");
        exe.set_state(&name, &v).unwrap();
    }
    let data: Vec<Array> = (exe.input_names().into_iter())
        .map(|(name, _)| values.remove(&name).expect("a value for each input"))
        .collect();
    let args: Vec<&Array> = data.iter().collect();
    for _ in 0..3 {
        exe.execute_ordered(&args).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..10 {
        exe.execute_ordered(&args).unwrap();
    }
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// A training step with every kind of kernel but a matrix product: embeddings gathered by
/// index (their gradient a scatter-add), a softmax cross-entropy over them (reductions over
/// rows, exp and log), an Adam update (elementwise kernels updating state in place); large
/// enough that its elementwise kernels split across threads.
fn embedding_step() -> Graph {
    let b = GraphBuilder::new("embedding");
    let idx = b.input("idx", DType::I32, [4096]);
    let labels = b.input("labels", DType::I32, [4096]);
    let table = b.param("table", DType::F32, [10, 16]);
    let logits = table.gather(&idx, 0);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let g = b.finish().unwrap();
    train_step(&g, "loss", &Optimizer::adam(1e-3)).unwrap()
}

#[test]
fn a_training_step_allocates_nothing() {
    let g = embedding_step();
    for threads in [1, 2] {
        let n = allocations_in_ten_steps(&g, threads);
        assert_eq!(n, 0, "{threads} threads: {n} allocations in ten steps");
    }
}
