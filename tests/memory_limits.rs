//! Limits that follow memory: a compiled program is judged on what it allocates (its planned
//! arena and scratch) against `Options::max_memory`, not on the sum of every value of its
//! graph, and a refusal names the bytes, the limit and a batch that fits.

use kiln::compiler::limits::{self, SizeError};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{DType, Graph};
use kiln::frontend::GraphBuilder;
use kiln::frontend::layers::{Conv2d, Layers, Mode};
use kiln::frontend::losses::{Reduction, cross_entropy};
use kiln::runtime::{CompileError, Executable, Options};

/// The training step (SGD) of the course's Keras CNN on `batch` images of 3 x `side` x `side`:
/// conv 32, 64 and 128 filters of 3x3, each with ReLU and a 2x2 max pool; dense 128 with ReLU;
/// dense 10; softmax cross-entropy.
fn keras_cnn(batch: usize, side: usize) -> Graph {
    let b = GraphBuilder::new("keras_cnn");
    let nn = Layers::new(&b, Mode::Train);
    let mut x = b.input("x", DType::F32, [batch, 3, side, side]);
    let labels = b.input("y", DType::I32, [batch]);
    for (i, filters) in [32, 64, 128].into_iter().enumerate() {
        let conv = nn.conv2d(&format!("conv{i}"), &x, Conv2d::new(filters, 3));
        x = conv.relu().max_pool2d(2, 2, 0);
    }
    let hidden = nn.linear("fc1", &x.flatten_from(1), 128).relu();
    let logits = nn.linear("fc2", &hidden, 10);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let model = b.finish().unwrap();
    train_step(&model, "loss", &Optimizer::sgd(0.01)).unwrap()
}

/// The options of these tests: one thread, within `max_memory` bytes.
fn options(max_memory: usize) -> Options {
    Options {
        threads: 1,
        max_memory,
        ..Options::default()
    }
}

/// What the graph's values take together, as the interpreter's limit counts them.
fn all_values_bytes(g: &Graph) -> usize {
    (g.node_ids())
        .map(|id| g.node(id).ty.numel() * g.node(id).ty.dtype.size_bytes())
        .sum()
}

/// At batch 8 on 224x224 images the step's values take 4.8 GB together, which the interpreter
/// refuses (and compiling refused too, once), but the compiled program's arena is a fraction of
/// it and compiles within the default limit.
#[test]
fn a_graph_whose_values_exceed_4_gib_compiles_when_its_plan_is_small() {
    let g = keras_cnn(8, 224);
    assert!(all_values_bytes(&g) > limits::MAX_BYTES);
    assert!(matches!(
        limits::check_graph(&g),
        Err(SizeError::Total { .. })
    ));
    let exe = Executable::compile(&g, &Options::default()).unwrap();
    let stats = exe.stats();
    assert!(
        stats.arena_bytes + stats.scratch_bytes < limits::DEFAULT_MAX_MEMORY / 4,
        "arena {} and scratch {}",
        stats.arena_bytes,
        stats.scratch_bytes
    );
}

/// Over a small limit, the step at batch 8 is refused before anything is allocated, with the
/// bytes it needs, the limit and the batch that would fit; compiled at that batch, it fits.
#[test]
fn a_plan_over_the_limit_is_refused_naming_a_batch_that_fits() {
    let limit = 300 << 20;
    let e = match Executable::compile(&keras_cnn(8, 224), &options(limit)) {
        Ok(exe) => panic!("compiled, arena {}", exe.stats().arena_bytes),
        Err(e) => e,
    };
    let CompileError::TooLarge(SizeError::Memory {
        footprint,
        limit: l,
    }) = &e
    else {
        panic!("{e}")
    };
    assert_eq!((*l, footprint.batch), (limit, Some(8)));
    let fits = footprint.fitting_batch(limit).unwrap();
    assert!((1..8).contains(&fits), "{e}");
    let message = e.to_string();
    let needs = format!("the program needs {} bytes (", footprint.bytes());
    assert!(message.starts_with(&needs), "{message}");
    assert!(
        message.contains(&format!(
            "more than the memory limit of {limit} bytes (300.0 MiB"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "; it would fit at batch {fits} or less (an estimate"
        )),
        "{message}"
    );
    let exe = Executable::compile(&keras_cnn(fits, 224), &options(limit)).unwrap();
    let stats = exe.stats();
    assert!(stats.arena_bytes + stats.scratch_bytes <= limit);
}

/// Prints the arena, scratch and compile time of the Keras CNN's step at the batches of
/// `KILN_MEASURE_BATCHES` (default 8 and 32), on 224x224 images, and where the compile time
/// goes (a measurement, not a check: `cargo test --release --test memory_limits -- --ignored
/// --nocapture`).
#[test]
#[ignore]
fn measure_the_keras_cnn() {
    let batches = std::env::var("KILN_MEASURE_BATCHES").unwrap_or_else(|_| "8,32".into());
    for batch in batches
        .split(',')
        .map(|b| b.trim().parse::<usize>().unwrap())
    {
        let g = keras_cnn(batch, 224);
        let mut times = vec![];
        let mut last = None;
        for _ in 0..5 {
            match Executable::compile(&g, &Options::default()) {
                Ok(exe) => {
                    times.push(exe.stats().compile_time.as_secs_f64() * 1e3);
                    last = Some(exe.stats().clone());
                }
                Err(e) => {
                    println!("batch {batch}: {e}");
                    break;
                }
            }
        }
        // Where the time goes: the compiler's stages, and zeroing an arena of that size.
        let t = std::time::Instant::now();
        let mut o = g.clone();
        kiln::compiler::passes::optimize(&mut o);
        let program = kiln::compiler::kernel::lower(&o, true);
        let lowered = t.elapsed();
        let plan = kiln::compiler::memory::plan(&program);
        let planned = t.elapsed();
        kiln::compiler::codegen::compile(&program, false).unwrap();
        let generated = t.elapsed();
        let layout = std::alloc::Layout::from_size_align(plan.arena_bytes, 64).unwrap();
        // SAFETY: a non-zero size; freed with its layout.
        unsafe {
            let arena = std::hint::black_box(std::alloc::alloc_zeroed(layout));
            std::alloc::dealloc(arena, layout)
        };
        let zeroed = t.elapsed();
        kiln::compiler::kernel::bounds::check(&program).unwrap();
        let checked = t.elapsed();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        println!(
            "batch {batch}: optimize and lower {:.1} ms, plan {:.1} ms, codegen {:.1} ms, \
             zeroing the arena {:.1} ms, bounds check {:.1} ms",
            ms(lowered),
            ms(planned - lowered),
            ms(generated - planned),
            ms(zeroed - generated),
            ms(checked - zeroed)
        );
        if let Some(s) = last {
            times.sort_by(f64::total_cmp);
            println!(
                "batch {batch}: values {} bytes, arena {} bytes ({:.1} MiB), \
                 scratch {} bytes, unshared temporaries {} bytes; compile {:.1} ms (median of \
                 {}, min {:.1})",
                all_values_bytes(&g),
                s.arena_bytes,
                s.arena_bytes as f64 / (1 << 20) as f64,
                s.scratch_bytes,
                s.unshared_bytes,
                times[times.len() / 2],
                times.len(),
                times[0]
            );
        }
    }
}
