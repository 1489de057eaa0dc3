//! Limits that follow memory: a compiled program is judged on what it allocates (its planned
//! arena and scratch) against `Options::max_memory`, not on the sum of every value of its
//! graph, and a refusal names the bytes, the limit and a batch that fits.

mod common;

use kiln::compiler::limits::{self, SizeError};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{DType, Graph};
use kiln::frontend::GraphBuilder;
use kiln::frontend::layers::{Conv2d, Layers, Lowering, Mode};
use kiln::frontend::losses::{Reduction, cross_entropy};
use kiln::runtime::{CompileError, Executable, Options};

/// The training step (SGD) of the course's Keras CNN on `batch` images of 3 x `side` x `side`:
/// conv 32, 64 and 128 filters of 3x3, each with ReLU and a 2x2 max pool; dense 128 with ReLU;
/// dense 10; softmax cross-entropy.
fn keras_cnn(batch: usize, side: usize) -> Graph {
    keras_cnn_with(batch, side, Lowering::Auto)
}

/// [`keras_cnn`] with its convolutions computed as `lowering` says.
fn keras_cnn_with(batch: usize, side: usize, lowering: Lowering) -> Graph {
    let b = GraphBuilder::new("keras_cnn");
    let nn = Layers::new(&b, Mode::Train);
    let mut x = b.input("x", DType::F32, [batch, 3, side, side]);
    let labels = b.input("y", DType::I32, [batch]);
    for (i, filters) in [32, 64, 128].into_iter().enumerate() {
        let conv = Conv2d::new(filters, 3).lowering(lowering);
        let conv = nn.conv2d(&format!("conv{i}"), &x, conv);
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

/// The training step (SGD) of a CIFAR-sized CNN on `batch` images of 3x32x32: conv 64, 64,
/// 2x2 max pool, conv 128, 128, 2x2 max pool (all 3x3 with padding 1 and ReLU); dense 256 with
/// ReLU; dense 10; softmax cross-entropy.
fn cifar_cnn(batch: usize, lowering: Lowering) -> Graph {
    let b = GraphBuilder::new("cifar_cnn");
    let nn = Layers::new(&b, Mode::Train);
    let mut x = b.input("x", DType::F32, [batch, 3, 32, 32]);
    let labels = b.input("y", DType::I32, [batch]);
    for (i, filters) in [64, 64, 128, 128].into_iter().enumerate() {
        x = nn
            .conv2d(
                &format!("conv{i}"),
                &x,
                Conv2d::new(filters, 3).padding(1).lowering(lowering),
            )
            .relu();
        if i % 2 == 1 {
            x = x.max_pool2d(2, 2, 0);
        }
    }
    let hidden = nn.linear("fc1", &x.flatten_from(1), 256).relu();
    let logits = nn.linear("fc2", &hidden, 10);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let model = b.finish().unwrap();
    train_step(&model, "loss", &Optimizer::sgd(0.01)).unwrap()
}

/// The training step (SGD) of the MNIST MLP 784-128-10 at batch 64, for reference.
fn mnist_mlp() -> Graph {
    let b = GraphBuilder::new("mlp");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [64, 784]);
    let labels = b.input("y", DType::I32, [64]);
    let hidden = nn.linear("fc1", &x, 128).relu();
    let logits = nn.linear("fc2", &hidden, 10);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let model = b.finish().unwrap();
    train_step(&model, "loss", &Optimizer::sgd(0.01)).unwrap()
}

/// Prints, for the training step `g` (named `label`): the median and least of five compile
/// times, each stage of compiling timed alone (the rest of `Executable::compile` is its
/// numerics table, thread pool, scratch and constants), the arena and scratch, and the time
/// of its first step (where the arena's pages are first touched) and of the median of three
/// later ones, on generated inputs. A measurement, not a check.
fn measure(label: &str, g: &Graph) {
    use kiln::compiler::{kernel, memory, passes};
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut times = vec![];
    let mut exe = None;
    for _ in 0..5 {
        drop(exe.take()); // free the last arena first
        match Executable::compile(g, &measure_options()) {
            Ok(e) => {
                times.push(ms(e.stats().compile_time));
                exe = Some(e);
            }
            Err(e) => {
                println!("{label}: {e}");
                return;
            }
        }
    }
    let mut exe = exe.unwrap();
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mut stages = vec![];
    let mut t = std::time::Instant::now();
    let mut lap = |name: &'static str, stages: &mut Vec<(&str, f64)>| {
        stages.push((name, ms(t.elapsed())));
        t = std::time::Instant::now();
    };
    kiln::compiler::verify(g).unwrap();
    limits::check_lowerable(g).unwrap();
    lap("verify", &mut stages);
    let mut o = g.clone();
    passes::optimize(&mut o);
    lap("optimize", &mut stages);
    let program = kernel::lower(&o, true);
    lap("lower", &mut stages);
    kernel::bounds::check(&program).unwrap();
    lap("bounds", &mut stages);
    let plan = memory::plan(&program);
    lap("plan", &mut stages);
    let compiled = kiln::compiler::codegen::compile(&program, false).unwrap();
    lap("codegen", &mut stages);
    let arena = std::hint::black_box(kiln::runtime::arena::Arena::new(plan.arena_bytes));
    lap("arena", &mut stages);
    drop((compiled, arena));
    let total: f64 = stages.iter().map(|s| s.1).sum();
    let list: Vec<String> = (stages.iter())
        .map(|(n, t)| format!("{n} {t:.1}"))
        .collect();
    let s = exe.stats();
    println!(
        "{label}: compile {median:.1} ms (median of {}, min {:.1}); stages {} ms (sum {total:.1}); \
         {} loops, {} dots, {} scatters; arena {:.1} MiB, scratch {:.1} MiB, values {:.1} MiB",
        times.len(),
        times[0],
        list.join(", "),
        s.loops,
        s.dots,
        s.scatters,
        s.arena_bytes as f64 / (1 << 20) as f64,
        s.scratch_bytes as f64 / (1 << 20) as f64,
        all_values_bytes(g) as f64 / (1 << 20) as f64,
    );
    let mut values = common::training_inputs(g, 1);
    let data: Vec<kiln::compiler::Array> = (exe.input_names().into_iter())
        .map(|(name, _)| values.remove(&name).expect("a value for each input"))
        .collect();
    let args: Vec<&kiln::compiler::Array> = data.iter().collect();
    let mut steps = vec![];
    for i in 0..4 {
        if i == 1 && exe.profile().is_some() {
            exe.start_profile(); // the later steps alone, without the first's page faults
        }
        let t = std::time::Instant::now();
        exe.execute_ordered(&args).unwrap();
        steps.push(ms(t.elapsed()));
    }
    let first = steps.remove(0);
    steps.sort_by(f64::total_cmp);
    if let Some(report) = exe.profile_report(3) {
        println!("{label}: {report}");
    }
    println!(
        "{label}: first step {first:.1} ms, later steps {:.1} ms (median of 3)",
        steps[1]
    );
}

/// Measures the Keras CNN's step at the batches of `KILN_MEASURE_BATCHES` (default 8 and 32),
/// on 224x224 images, with every convolution by im2col and with the default lowering
/// (Winograd's where it pays), alternately, twice (see [`measure`]; `cargo test --release
/// --test memory_limits -- --ignored --nocapture`; `KILN_THREADS=N` sets the threads,
/// `KILN_PROFILE=1` adds the time of each kernel).
#[test]
#[ignore]
fn measure_the_keras_cnn() {
    let batches = std::env::var("KILN_MEASURE_BATCHES").unwrap_or_else(|_| "8,32".into());
    for batch in batches
        .split(',')
        .map(|b| b.trim().parse::<usize>().unwrap())
    {
        for lowering in [
            Lowering::Im2col,
            Lowering::Auto,
            Lowering::Im2col,
            Lowering::Auto,
        ] {
            let g = keras_cnn_with(batch, 224, lowering);
            measure(&format!("keras cnn, batch {batch}, {lowering:?}"), &g);
        }
    }
}

/// Measures the CIFAR-sized CNN's step at batch 32, im2col and default lowering alternately
/// as [`measure_the_keras_cnn`] does, and the MNIST MLP's, for reference (see [`measure`]).
#[test]
#[ignore]
fn measure_the_cifar_cnn_and_the_mlp() {
    for lowering in [
        Lowering::Im2col,
        Lowering::Auto,
        Lowering::Im2col,
        Lowering::Auto,
    ] {
        let g = cifar_cnn(32, lowering);
        measure(&format!("cifar cnn, batch 32, {lowering:?}"), &g);
    }
    measure("mnist mlp 784-128-10, batch 64", &mnist_mlp());
}

/// The options of [`measure`]: the defaults, or `KILN_THREADS` threads.
fn measure_options() -> Options {
    let threads = std::env::var("KILN_THREADS")
        .ok()
        .and_then(|t| t.parse().ok());
    Options {
        threads: threads.unwrap_or(Options::default().threads),
        ..Options::default()
    }
}

/// Measures the built-in `resnet18`'s SGD step at batch 32 on 3x32x32 images (see
/// [`measure`]).
#[test]
#[ignore]
fn measure_resnet18() {
    use kiln::frontend::models::{Settings, builtin};
    let settings = Settings {
        batch: 32,
        input: vec![3, 32, 32],
        ..Settings::default()
    };
    let m = builtin("resnet18", &settings).unwrap().unwrap();
    let g = train_step(&m.graph, "loss", &Optimizer::sgd(0.01)).unwrap();
    measure("resnet18, batch 32", &g);
}
