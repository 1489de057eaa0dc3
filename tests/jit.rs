//! The JIT computes what the interpreter computes: training steps and random graphs, fused and
//! unfused.

mod common;

use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType, Graph, interp};
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;

/// Runs `g` once in the interpreter and once compiled on the shared test inputs; the largest
/// difference relative to `max(1, |expected|)` over outputs and updated state.
fn compare(g: &Graph, fuse: bool, threads: usize) -> f64 {
    common::jit_error(g, &common::training_inputs(g, 5), fuse, threads)
}

/// The results of `g` compiled with `fuse` on `threads` threads (0: every core) and run once
/// on `inputs`.
fn run_jit(
    g: &Graph,
    inputs: &HashMap<String, Array>,
    fuse: bool,
    threads: usize,
) -> Vec<(String, Array)> {
    let mut options = Options {
        fuse,
        ..Options::default()
    };
    if threads > 0 {
        options.threads = threads;
    }
    Executable::compile(g, &options)
        .unwrap()
        .run(inputs)
        .unwrap()
}

#[test]
fn mlp_train_steps_match_the_interpreter() {
    let m = kiln::frontend::models::mlp(16, &[20, 12, 10]).unwrap();
    for opt in [
        Optimizer::sgd(0.1),
        Optimizer::momentum(0.1, true),
        Optimizer::adam(1e-3),
    ] {
        let g = train_step(&m.graph, "loss", &opt).unwrap();
        for fuse in [true, false] {
            for threads in [1, 2] {
                let d = compare(&g, fuse, threads);
                assert!(
                    d < 1e-5,
                    "{} fuse={fuse} threads={threads}: {d:e}",
                    opt.name()
                );
            }
        }
    }
}

/// The built-in MLP trained for 100 SGD steps on MNIST-10k batches: the compiled step's losses
/// match the interpreter's within 1e-4 relative. The JIT sums in f32 (in vector lanes, and the
/// GEMM in its own order) where the interpreter sums in f64, so losses differ in the last
/// digits of f32 and the difference compounds slowly through the updates; 1e-4 leaves room for
/// that over 100 steps while a wrong gradient would move the losses by far more.
#[test]
fn mlp_losses_over_100_steps_match_the_interpreter() {
    let batch = 64;
    let mnist = common::Mnist::load();
    let model = kiln::frontend::models::mlp(batch, &[784, 128, 10]).unwrap();
    let opt = Optimizer::sgd(0.1);
    let g = train_step(&model.graph, "loss", &opt).unwrap();
    let mut state: HashMap<String, Array> = model.initial_values(&g, 1).into_iter().collect();
    let mut exe = Executable::compile(&g, &Options::default()).unwrap();
    for (n, v) in &state {
        exe.set_state(n, v).unwrap();
    }
    for step in 0..100 {
        let mut data = mnist.rows((step * batch) % 8000, batch);
        data.insert("lr".to_string(), Array::scalar(DType::F32, 0.1));
        let want = common::step(
            &g,
            &mut state,
            &data.clone().into_iter().collect::<Vec<_>>(),
        );
        let got = exe.run(&data).unwrap();
        let (a, b) = (got[0].1.to_f64_vec()[0], common::scalar(&want, "loss"));
        assert!(
            (a - b).abs() <= 1e-4 * b.abs(),
            "step {step}: jit loss {a}, interpreter {b}"
        );
    }
}

/// Long rows exercise the unrolled vector reductions (four accumulators of four or two lanes,
/// then single vectors, then a scalar tail): 1037 = 64 * 16 + 13 elements. Max and integer
/// sums are exact in any order, so they must match bit for bit. A float sum of n terms split
/// over k accumulators carries at most about (n / k + log2 k + lanes) roundings of `eps` times
/// the sum of magnitudes; with n = 1037 and 16 accumulator lanes that is under 100 * 6e-8 in
/// f32, so 1e-5 of the sum of magnitudes bounds it with room to spare.
#[test]
fn long_reductions_match_the_interpreter() {
    use kiln::frontend::GraphBuilder;
    let n = 1037;
    for dtype in [DType::F32, DType::F64] {
        let b = GraphBuilder::new("rows");
        let x = b.input("x", dtype, [3, n]);
        let i = b.input("i", DType::I32, [3, n]);
        b.output("sum", &x.sum(&[1]));
        b.output("max", &x.max(&[1]));
        b.output("isum", &i.sum(&[1]));
        b.output("imax", &i.max(&[1]));
        let g = b.finish().unwrap();
        let mut rng = common::Rng::new(11);
        let xs = rng.vec(3 * n, -0.5, 0.5);
        let magnitude: Vec<f64> = (0..3)
            .map(|r| xs[r * n..(r + 1) * n].iter().map(|v| v.abs()).sum())
            .collect();
        let xa = match dtype {
            DType::F32 => Array::from_f32([3, n], xs.iter().map(|&v| v as f32).collect()),
            _ => Array::from_f64([3, n], xs.clone()),
        };
        let ints: Vec<i32> = (0..3 * n).map(|_| rng.range(-1e9, 1e9) as i32).collect();
        let inputs: HashMap<String, Array> = [
            ("x".to_string(), xa.unwrap()),
            ("i".to_string(), Array::from_i32([3, n], ints).unwrap()),
        ]
        .into();
        let want = interp::run(&g, &inputs).unwrap();
        let mut exe = Executable::compile(&g, &Options::default()).unwrap();
        let got = exe.run(&inputs).unwrap();
        for ((name, a), (_, b)) in got.iter().zip(&want.outputs) {
            let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
            for r in 0..3 {
                if name == "sum" {
                    assert!(
                        (a[r] - b[r]).abs() <= 1e-5 * magnitude[r],
                        "{dtype} {name}[{r}]: {} vs {}",
                        a[r],
                        b[r]
                    );
                } else {
                    assert_eq!(a[r].to_bits(), b[r].to_bits(), "{dtype} {name}[{r}]");
                }
            }
        }
    }
}

/// Products large enough to be split across threads (by rows when the result is taller than
/// wide, by columns otherwise; extents that do not divide evenly; a batch), with the right
/// operand row-major and column-major (a product wider than tall with a column-major right
/// operand is computed transposed and transposed back), in f32 and f64, give the interpreter's
/// result on one and two threads. The tolerance: each element is a sum of `k` products, which
/// the GEMM rounds in its own order and the interpreter sums in f64; summing `k` terms in
/// precision `eps` in any order errs by at most `k eps` times the sum of their magnitudes,
/// which is below `k` here (every product is below 1). A block written at the wrong place
/// errs by about 1.
#[test]
fn split_matrix_products_match_the_interpreter() {
    use kiln::frontend::GraphBuilder;
    let shapes = [
        (1, 301, 67, 45),
        (1, 45, 67, 301),
        (1, 128, 64, 512),
        (3, 150, 40, 90),
        (2, 40, 30, 450),
    ];
    for ((batch, m, k, n), dtype, column_major) in shapes
        .into_iter()
        .flat_map(|s| [(s, DType::F32), (s, DType::F64)])
        .flat_map(|(s, t)| [(s, t, true), (s, t, false)])
    {
        let b = GraphBuilder::new("products");
        let x = b.input("x", dtype, [batch, m, k]);
        let y = if column_major {
            b.input("y", dtype, [batch, n, k]).permute(&[0, 2, 1])
        } else {
            b.input("y", dtype, [batch, k, n])
        };
        b.output("xy", &x.matmul(&y));
        let g = b.finish().unwrap();
        let mut rng = common::Rng::new(3);
        let mut array = |dims: [usize; 3]| {
            let v = rng.vec(dims.iter().product(), -1.0, 1.0);
            match dtype {
                DType::F32 => Array::from_f32(dims, v.iter().map(|&v| v as f32).collect()),
                _ => Array::from_f64(dims, v),
            }
            .unwrap()
        };
        let y_dims = if column_major {
            [batch, n, k]
        } else {
            [batch, k, n]
        };
        let inputs: HashMap<String, Array> = [
            ("x".to_string(), array([batch, m, k])),
            ("y".to_string(), array(y_dims)),
        ]
        .into();
        let want = interp::run(&g, &inputs).unwrap().outputs[0].1.to_f64_vec();
        let eps = match dtype {
            DType::F32 => f64::from(f32::EPSILON),
            _ => f64::EPSILON,
        };
        let bound = (k * k) as f64 * eps;
        for threads in [1, 2] {
            let got = run_jit(&g, &inputs, true, threads)[0].1.to_f64_vec();
            for (i, (a, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - w).abs() <= bound,
                    "{dtype} {batch}x{m}x{k}x{n} column-major {column_major} threads={threads} \
                     [{i}]: {a} vs {w}"
                );
            }
        }
    }
}

/// A sum of matrix products (a weight's gradient over an unrolled sequence) adds each product
/// into one buffer: no product gets a buffer of its own and the sum no kernel. Products of
/// every layout are summed (a column-major right operand computed transposed among them), in
/// f32, f64 and i32 (exact), on one and two threads; a product also read elsewhere keeps its
/// buffer. Tolerance: each of the three products may differ from the interpreter's by `k^2`
/// rounding errors (as in `split_matrix_products_match_the_interpreter`) and the additions
/// are reassociated, so `4 k^2` of them.
#[test]
fn sums_of_products_add_into_one_buffer() {
    use kiln::compiler::kernel::{Kernel, lower};
    use kiln::frontend::GraphBuilder;
    let (m, k, n) = (128, 64, 512);
    for dtype in [DType::F32, DType::F64, DType::I32] {
        let b = GraphBuilder::new("sum");
        let x: Vec<_> = (0..3)
            .map(|i| b.input(&format!("x{i}"), dtype, [m, k]))
            .collect();
        let row_major = b.input("y0", dtype, [k, n]);
        let column_major = b.input("y1", dtype, [n, k]).permute(&[1, 0]);
        let y2 = b.input("y2", dtype, [k, n]);
        let shared = x[2].matmul(&y2);
        let sum = x[0].matmul(&row_major) + x[1].matmul(&column_major) + &shared;
        b.output("sum", &sum);
        let two = x[1].matmul(&row_major) + x[0].matmul(&column_major);
        b.output("two", &(two + x[0].matmul(&y2)));
        b.output("shared", &shared.neg());
        let g = b.finish().unwrap();

        let mut optimized = g.clone();
        kiln::compiler::passes::optimize(&mut optimized);
        let p = lower(&optimized, true);
        let dots: Vec<bool> = (p.kernels.iter())
            .filter_map(|k| match k {
                Kernel::Dot(d) => Some(d.accumulate),
                _ => None,
            })
            .collect();
        let added = dots.iter().filter(|&&a| a).count();
        // `sum`: its first two products add, the shared one keeps its buffer (one loop kernel
        // adds it); `two`: three products, two added.
        assert_eq!((dots.len(), added), (6, 3), "{p}");

        let mut rng = common::Rng::new(7);
        let mut array = |dims: [usize; 2]| {
            let v = rng.vec(dims.iter().product(), -1.0, 1.0);
            match dtype {
                DType::F32 => Array::from_f32(dims, v.iter().map(|&v| v as f32).collect()),
                DType::F64 => Array::from_f64(dims, v),
                _ => Array::from_i32(dims, v.iter().map(|&v| (v * 100.0) as i32).collect()),
            }
            .unwrap()
        };
        let mut inputs: HashMap<String, Array> = HashMap::new();
        for i in 0..3 {
            inputs.insert(format!("x{i}"), array([m, k]));
        }
        inputs.insert("y0".into(), array([k, n]));
        inputs.insert("y1".into(), array([n, k]));
        inputs.insert("y2".into(), array([k, n]));
        let want = interp::run(&g, &inputs).unwrap().outputs;
        let eps = match dtype {
            DType::F32 => f64::from(f32::EPSILON),
            DType::F64 => f64::EPSILON,
            _ => 0.0,
        };
        let bound = 4.0 * (k * k) as f64 * eps;
        for threads in [1, 2] {
            let got = run_jit(&g, &inputs, true, threads);
            for ((name, a), (_, w)) in got.iter().zip(&want) {
                for (i, (a, w)) in a.to_f64_vec().iter().zip(w.to_f64_vec()).enumerate() {
                    assert!(
                        (a - w).abs() <= bound,
                        "{dtype} {name} threads={threads} [{i}]: {a} vs {w}"
                    );
                }
            }
        }
    }
}

/// Column sums and maximums (a bias gradient sums a batch's rows) run their outer loop four
/// columns (f64: two) per vector, each lane reducing its own column in the row-major order of
/// the reduced axes, as the scalar loop does, then a scalar tail for the last columns. Column
/// counts not divisible by four leave tails; the widest runs split across two threads. Float
/// sums must equal that sequential sum (in the element type, from -0.0) bit for bit, integer
/// sums (wrapping) and maximums (NaN propagating) the interpreter's.
#[test]
fn column_reductions_run_in_vector_lanes() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::lower;
    use kiln::frontend::GraphBuilder;
    for (rows, cols) in [(1, 4), (2, 5), (17, 7), (3, 13), (64, 37), (64, 1037)] {
        for dtype in [DType::F32, DType::F64, DType::I32] {
            let b = GraphBuilder::new("columns");
            let x = b.input("x", dtype, [rows, 2, cols]);
            b.output("sum", &x.sum(&[0, 1]));
            b.output("max", &x.max(&[0, 1]));
            b.output("sum0", &x.sum(&[0]));
            let g = b.finish().unwrap();
            let lanes = if dtype == DType::F64 { 2 } else { 4 };
            let loops = describe_loops(&lower(&g, true));
            let carried = format!("in the {lanes} lanes of v");
            let mut reduces = loops.lines().filter(|l| l.contains("reduce")).peekable();
            assert!(reduces.peek().is_some(), "{loops}");
            assert!(reduces.all(|l| l.contains(&carried)), "{loops}");
            let mut rng = common::Rng::new(rows as u64 * 7919 + cols as u64);
            let mut xs = rng.vec(rows * 2 * cols, -1.0, 1.0);
            if dtype == DType::I32 {
                xs.iter_mut().for_each(|v| *v = (*v * 2e9).trunc());
            } else {
                // NaN in one of every 7 columns, at varying rows.
                for c in (0..cols).step_by(7) {
                    xs[((c * 5) % (rows * 2)) * cols + c] = f64::NAN;
                }
            }
            let xa = match dtype {
                DType::F32 => {
                    Array::from_f32([rows, 2, cols], xs.iter().map(|&v| v as f32).collect())
                }
                DType::F64 => Array::from_f64([rows, 2, cols], xs.clone()),
                _ => Array::from_i32([rows, 2, cols], xs.iter().map(|&v| v as i32).collect()),
            };
            let inputs: HashMap<String, Array> = [("x".to_string(), xa.unwrap())].into();
            let x = inputs["x"].to_f64_vec();
            let want = interp::run(&g, &inputs).unwrap().outputs;
            for threads in [1, 2] {
                let options = Options {
                    threads,
                    ..Options::default()
                };
                let mut exe = Executable::compile(&g, &options).unwrap();
                let got = exe.run(&inputs).unwrap();
                let sums = [
                    sequential_column_sums(dtype, &x, cols),
                    sequential_column_sums(dtype, &x, 2 * cols),
                ];
                for ((name, a), (_, w)) in got.iter().zip(&want) {
                    let a = a.to_f64_vec();
                    let w = match (name.as_str(), dtype) {
                        ("sum", DType::F32 | DType::F64) => sums[0].clone(),
                        ("sum0", DType::F32 | DType::F64) => sums[1].clone(),
                        _ => w.to_f64_vec(),
                    };
                    for (c, (a, w)) in a.iter().zip(&w).enumerate() {
                        let same = a.to_bits() == w.to_bits() || (a.is_nan() && w.is_nan());
                        assert!(
                            same,
                            "{dtype} [{rows},2,{cols}] {name}[{c}] threads={threads}: {a} vs {w}"
                        );
                    }
                }
            }
        }
    }
}

/// The sums of the columns of `x` (rows of `cols` elements) in row order, from -0.0, in the
/// arithmetic of `dtype` (f32 or f64).
fn sequential_column_sums(dtype: DType, x: &[f64], cols: usize) -> Vec<f64> {
    (0..cols)
        .map(|c| {
            let column = x.iter().skip(c).step_by(cols);
            match dtype {
                DType::F32 => column.fold(-0.0f32, |acc, &v| acc + v as f32) as f64,
                _ => column.fold(-0.0, |acc, &v| acc + v),
            }
        })
        .collect()
}

/// Padded views read along the padded axis run in vector lanes whose guards differ from lane
/// to lane: from a buffer in the arena (a matrix product's result) with one clamped vector
/// load, from a data input (no slack around it) lane by lane where a vector straddles its
/// edge. Rows of 37 put the padding's edges at every position in a vector; the first and last
/// elements of each buffer are read by straddling vectors. The results are copies and
/// selects, so they must equal the interpreter's bit for bit.
#[test]
fn padded_views_run_in_vector_lanes() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::lower;
    use kiln::frontend::GraphBuilder;
    let b = GraphBuilder::new("pads");
    let x = b.input("x", DType::F32, [3, 37]);
    let eye: Vec<f32> = (0..37 * 37)
        .map(|i| if i % 38 == 0 { 1.0 } else { 0.0 })
        .collect();
    let t = x.matmul(&b.constant(Array::from_f32([37, 37], eye).unwrap()));
    b.output("input", &(x.pad(&[0, 5], &[0, 7], 2.5) * 2.0));
    b.output("arena", &(t.pad(&[0, 3], &[0, 6], f64::NEG_INFINITY) * 2.0));
    b.output(
        "both",
        &(x.pad(&[0, 1], &[0, 2], 0.0) + t.pad(&[0, 2], &[0, 1], 0.0)),
    );
    let g = b.finish().unwrap();
    let loops = describe_loops(&lower(&g, true));
    assert_eq!(loops.matches("by 4 lanes").count(), 3, "{loops}");
    let mut rng = common::Rng::new(3);
    let xs = rng
        .vec(3 * 37, -1.0, 1.0)
        .into_iter()
        .map(|v| v as f32)
        .collect();
    let inputs: HashMap<String, Array> =
        [("x".to_string(), Array::from_f32([3, 37], xs).unwrap())].into();
    assert_exact(&g, &inputs);
}

/// A 2x2 max pooling of a buffer in the arena: its maximums are expressions (no reduce stage),
/// and its loads, two elements apart, run in vector lanes (two vector loads and a shuffle). So
/// do every other column of a matrix, and the position of each window's maximum. Maximums and
/// copies are exact, so the results must equal the interpreter's bit for bit.
#[test]
fn strided_loads_run_in_vector_lanes() {
    use kiln::compiler::codegen::describe_loops;
    use kiln::compiler::kernel::lower;
    use kiln::frontend::GraphBuilder;
    let b = GraphBuilder::new("strided");
    let x = b.input("x", DType::F32, [2, 3, 8, 40]);
    // A matrix product puts x in the arena (the identity keeps its values).
    let eye: Vec<f32> = (0..40 * 40)
        .map(|i| if i % 41 == 0 { 1.0 } else { 0.0 })
        .collect();
    let t = x.matmul(&b.constant(Array::from_f32([40, 40], eye).unwrap()));
    b.output("pool", &t.max_pool2d(2, 2, 0));
    b.output(
        "odd",
        &t.slice(&[0, 0, 0, 1], &[2, 3, 8, 40], &[1, 1, 1, 2]),
    );
    let windows = t.reshape(&[2, 3, 4, 2, 20, 2]).permute(&[0, 1, 2, 4, 3, 5]);
    b.output("argmax", &windows.reshape(&[2, 3, 4, 20, 4]).argmax(-1));
    let g = b.finish().unwrap();
    let loops = describe_loops(&lower(&g, true));
    assert_eq!(loops.matches("by 4 lanes").count(), 3, "{loops}");
    assert!(!loops.contains("reduce"), "{loops}");
    let mut rng = common::Rng::new(4);
    let xs = rng.vec(2 * 3 * 8 * 40, -1.0, 1.0);
    let xs = xs.into_iter().map(|v| v as f32).collect();
    let inputs: HashMap<String, Array> =
        [("x".to_string(), Array::from_f32([2, 3, 8, 40], xs).unwrap())].into();
    assert_exact(&g, &inputs);
}

/// An empty input joined to another is never read: the loads of an empty buffer become
/// constants (reading element 0 of an empty array, as a guarded load does where its guard
/// fails, would read outside the caller's allocation).
#[test]
fn an_empty_operand_of_a_concat_or_pad_is_never_read() {
    let g = kiln::compiler::text::parse(
        "graph g {
          %e = input \"e\" : f32[0,3]
          %x = input \"x\" : f32[2,3]
          %0 = concat %e, %x, %e, axis=0 : f32[2,3]
          %1 = pad %e, low=[1,0], high=[0,0], interior=[0,0], value=5.0 : f32[1,3]
          %2 = concat %0, %1, axis=0 : f32[3,3]
          output out = %2
        }",
    )
    .unwrap();
    let x = Array::from_f32([2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
    let e = Array::from_f32([0, 3], vec![]).unwrap();
    let inputs = HashMap::from([("e".to_string(), e), ("x".to_string(), x)]);
    assert_exact(&g, &inputs);
}

/// Each row of the slice is a store loop of exactly one vector (two f64 lanes, four f32), not
/// split across threads, whose stores could overlap: it must store every element with that
/// one vector, not wait for a second one (a random graph found this one).
#[test]
fn a_store_loop_of_one_vector_stores_every_element() {
    let g = kiln::compiler::text::parse(
        "graph g {
          %x = input \"x\" : f64[4,4]
          %y = input \"y\" : f32[3,8]
          %0 = slice %x, start=[0,2], end=[4,4], step=[1,1] : f64[4,2]
          %1 = neg %0 : f64[4,2]
          %2 = slice %y, start=[0,4], end=[3,8], step=[1,1] : f32[3,4]
          %3 = neg %2 : f32[3,4]
          output a = %1
          output b = %3
        }",
    )
    .unwrap();
    let x = Array::from_f64([4, 4], (0..16).map(f64::from).collect()).unwrap();
    let y = Array::from_f32([3, 8], (0..24).map(|i| i as f32).collect()).unwrap();
    let inputs = HashMap::from([("x".to_string(), x), ("y".to_string(), y)]);
    assert_exact(&g, &inputs);
}

/// Runs `g` compiled fused and unfused, and asserts its outputs equal the interpreter's bit for
/// bit.
fn assert_exact(g: &Graph, inputs: &HashMap<String, Array>) {
    let want = interp::run(g, inputs).unwrap().outputs;
    for fuse in [true, false] {
        let got = run_jit(g, inputs, fuse, 0);
        for ((name, a), (_, w)) in got.iter().zip(&want) {
            assert_eq!(a, w, "{name} fuse={fuse}");
        }
    }
}

/// Compiles `text` fused and unfused; both refusals, displayed.
fn compile_errors(text: &str) -> [String; 2] {
    let g = kiln::compiler::text::parse(text).unwrap();
    [true, false].map(|fuse| {
        let options = Options {
            fuse,
            ..Options::default()
        };
        match Executable::compile(&g, &options) {
            Ok(_) => panic!("compiled (fuse={fuse})"),
            Err(e) => e.to_string(),
        }
    })
}

#[test]
fn graphs_claiming_huge_values_are_refused_before_anything_is_allocated() {
    let trillion = "graph g {\n  %c = constant 1.0 : f32[1,1]\n  \
                    %y = broadcast %c : f32[1000000,1000000]\n  output y = %y\n}\n";
    for e in compile_errors(trillion) {
        assert_eq!(
            e,
            "node 1 (broadcast) computes f32[1000000,1000000], more than the 2147483648 \
             elements a value may have"
        );
    }
    let g = kiln::compiler::text::parse(trillion).unwrap();
    let e = interp::run(&g, &HashMap::new()).unwrap_err();
    assert!(e.to_string().contains("more than the 2147483648"), "{e}");
}

#[test]
fn an_arena_over_the_limit_is_refused_before_it_is_allocated() {
    // Two states of 2 GiB each: 4 GiB, the default memory limit, but the arena adds its slack
    // around them.
    let two_states = "graph g {\n  %a = state \"a\" : f32[536870912]\n  \
                      %b = state \"b\" : f32[536870912]\n}\n";
    for e in compile_errors(two_states) {
        assert!(
            e.starts_with(
                "the program needs 4294967424 bytes (4.0 GiB: an arena of 4294967424 and 0 of \
                 scratch), more than the memory limit of 4294967296 bytes"
            ),
            "{e}"
        );
    }
}

/// The cross-entropy of `f32` logits `[rows, classes]` at `i32` labels `[rows]` with
/// `reduction` (output `loss`), and its gradient with respect to the logits
/// (`grad_logits`).
fn cross_entropy_gradient(
    rows: usize,
    classes: usize,
    reduction: kiln::frontend::losses::Reduction,
) -> Graph {
    use kiln::frontend::GraphBuilder;
    use kiln::frontend::losses::cross_entropy;
    let b = GraphBuilder::new("cross_entropy");
    let logits = b.input("logits", DType::F32, [rows, classes]);
    let labels = b.input("labels", DType::I32, [rows]);
    b.output("loss", &cross_entropy(&logits, &labels, reduction));
    kiln::compiler::train::gradients(&b.finish().unwrap(), "loss", &["logits"]).unwrap()
}

/// Kernels joined over the rows (a softmax cross-entropy's row maximum, row sum, loss and
/// gradient are one kernel) split their rows across threads: each thread's rows read only the
/// row results the same thread wrote. Rows of 1000 make the kernel large enough to split.
#[test]
fn joined_row_kernels_split_across_threads() {
    use kiln::compiler::kernel::{Kernel, lower};
    use kiln::frontend::losses::Reduction;
    let g = cross_entropy_gradient(64, 1000, Reduction::Mean);
    let p = lower(&g, true);
    let rows = p.kernels.iter().filter(|k| match k {
        Kernel::Loop(l) => l.parallel.is_some_and(|v| l.extents[v as usize] == 64),
        _ => false,
    });
    assert_eq!(rows.count(), 1, "{p}");
    for threads in [1, 2] {
        let d = compare(&g, true, threads);
        assert!(d < 1e-5, "threads={threads}: {d:e}");
    }
}

/// A class masked with a `-inf` logit (not the label's) leaves the cross-entropy and its
/// gradient finite, in the interpreter and compiled: only the label's log-probability is
/// picked, so the masked class's `-inf` is never multiplied by 0. The loss is the row's
/// log-sum-exp over the other classes less the label's logit; the masked gradient is 0.
#[test]
fn a_masked_class_leaves_cross_entropy_finite() {
    let g = cross_entropy_gradient(2, 3, kiln::frontend::losses::Reduction::Sum);
    let inf = f32::NEG_INFINITY;
    let inputs: HashMap<String, Array> = [
        (
            "logits".to_string(),
            Array::from_f32([2, 3], vec![1.0, inf, 2.0, inf, 0.5, 0.5]).unwrap(),
        ),
        (
            "labels".to_string(),
            Array::from_i32([2], vec![0, 1]).unwrap(),
        ),
    ]
    .into();
    let lse = |a: f64, b: f64| a.max(b) + ((a - a.max(b)).exp() + (b - a.max(b)).exp()).ln();
    let want_loss = (lse(1.0, 2.0) - 1.0) + (lse(0.5, 0.5) - 0.5);
    let check = |results: &[(String, Array)], what: &str| {
        let loss = results[0].1.to_f64_vec()[0];
        assert!(
            (loss - want_loss).abs() < 1e-5,
            "{what}: loss {loss}, want {want_loss}"
        );
        let grad = results[1].1.to_f64_vec();
        assert!(grad.iter().all(|v| v.is_finite()), "{what}: {grad:?}");
        assert_eq!((grad[1], grad[3]), (0.0, 0.0), "{what}: {grad:?}");
    };
    check(&interp::run(&g, &inputs).unwrap().outputs, "interpreter");
    for fuse in [true, false] {
        let got = run_jit(&g, &inputs, fuse, 0);
        check(&got, &format!("fuse={fuse}"));
    }
}

/// Maximums of special values match the interpreter bit for bit. A vector loop keeps a
/// `maxps` maximum per accumulator and the witnesses of `+0` and NaN beside it (`MaxParts`);
/// a row of 45 = 2 * 16 + 3 * 4 + 1 elements runs its four-vector body, its single vectors and
/// the scalar tail (a row of 13 is reduced in straight-line code instead), and every special
/// value is put at every position: a `+0` among `-0`s (the maximum is `+0`), a NaN among numbers and among
/// zeros (NaN), a subnormal among negatives. Rows of only `-0`, only `-inf`, and `+inf` with a
/// NaN complete them. (Rows of a matrix would run in the lanes of the row loop, so each row is
/// its own run.)
#[test]
fn maximums_of_special_values_match_the_interpreter_exactly() {
    use kiln::frontend::GraphBuilder;
    for n in [45, 13] {
        let mut rows: Vec<Vec<f32>> = vec![
            vec![-0.0; n],
            vec![f32::NEG_INFINITY; n],
            (0..n)
                .map(|i| if i == 5 { f32::NAN } else { f32::INFINITY })
                .collect(),
        ];
        let put = |base: f32, at: usize, v: f32| -> Vec<f32> {
            (0..n).map(|i| if i == at { v } else { base }).collect()
        };
        for at in 0..n {
            rows.push(put(-0.0, at, 0.0));
            rows.push(put(-1.0, at, f32::NAN));
            rows.push(put(-0.0, at, -f32::NAN));
            rows.push(put(-3.5, at, 1e-40));
        }
        let b = GraphBuilder::new("max");
        let x = b.input("x", DType::F32, [n]);
        b.output("max", &x.max(&[0]));
        let g = b.finish().unwrap();
        for fuse in [true, false] {
            let options = Options {
                fuse,
                ..Options::default()
            };
            let mut exe = Executable::compile(&g, &options).unwrap();
            for row in &rows {
                let inputs: HashMap<String, Array> =
                    [("x".to_string(), Array::from_f32([n], row.clone()).unwrap())].into();
                let want = interp::run(&g, &inputs).unwrap().outputs[0].1.to_f64_vec()[0];
                let got = exe.run(&inputs).unwrap()[0].1.to_f64_vec()[0];
                let same = (got.is_nan() && want.is_nan()) || got.to_bits() == want.to_bits();
                assert!(same, "fuse={fuse} {row:?}: {got:?} vs {want:?}");
            }
        }
    }
}

/// Scatter-adds (the gradient of `gather`) run as native loops and give the interpreter's
/// results bit for bit: indices below and above the range (clamped), repeated indices (the
/// terms summed in f64 in row-major order: `1e8 + 1 - 1e8` is 1 in f32 this way), a position
/// whose only term is `-0.0` (stays `-0.0`), positions no index names (`+0`), a NaN, and i32
/// sums that wrap. Each is scattered along the middle axis of a `[2, 6, 3]` result.
/// (Position `[0, 2, 0]` takes `1e8`, `1` and `-1e8`: an f32 running sum would give 0.)
#[test]
fn scatter_adds_match_the_interpreter_exactly() {
    for dtype in ["f32", "f64", "i32"] {
        let text = format!(
            "graph scatter {{
  %idx = input \"idx\" : i32[5]
  %u = input \"u\" : {dtype}[2,5,3]
  %0 = scatter_add %idx, %u, axis=1 : {dtype}[2,6,3]
  output y = %0
}}"
        );
        let g = kiln::compiler::text::parse(&text).unwrap();
        // Positions 2 (three times), 0 (-7 clamped), 5 (99 clamped); 1, 3 and 4 get nothing.
        let idx = Array::from_i32([5], vec![2, -7, 2, 2, 99]).unwrap();
        let u: Vec<f64> = (0..30)
            .map(|i| match i {
                0 => 1e8,
                6 => 1.0,
                9 => -1e8,
                3 => -0.0,
                4 => f64::NAN,
                _ => i as f64 - 11.5,
            })
            .collect();
        let u = match dtype {
            "f32" => Array::from_f32([2, 5, 3], u.iter().map(|&v| v as f32).collect()),
            "f64" => Array::from_f64([2, 5, 3], u),
            _ => {
                let ints = [i32::MAX, 5, -3, 0, 7].iter().copied().cycle();
                Array::from_i32([2, 5, 3], ints.take(30).collect())
            }
        }
        .unwrap();
        let inputs: HashMap<String, Array> =
            [("idx".to_string(), idx), ("u".to_string(), u)].into();
        let want = interp::run(&g, &inputs).unwrap().outputs[0].1.to_f64_vec();
        let got = run_jit(&g, &inputs, true, 0)[0].1.to_f64_vec();
        for (i, (a, w)) in got.iter().zip(&want).enumerate() {
            let same = (a.is_nan() && w.is_nan()) || a.to_bits() == w.to_bits();
            assert!(same, "{dtype} [{i}]: {a:?} vs {w:?}");
        }
    }
}

/// A sigmoid whose `exp(-x)` the kernel also stores (an LSTM keeps it for its gradient) is
/// finished from that exp, `1 / (1 + e)`, as the graph and the interpreter compute it: 0 where
/// `e` overflows (`x = -100`), within 4 ulp elsewhere (exp's 1.17 and the add's and the
/// division's roundings). A sigmoid alone is one approximation, accurate where that formula
/// underflows: at `x = -100` it gives about `3.7e-44`, not 0.
#[test]
fn a_sigmoid_whose_exp_is_stored_is_finished_from_it() {
    use kiln::frontend::GraphBuilder;
    let xs: Vec<f32> = vec![-100.0, -20.0, -1.5, -0.0, 0.25, 3.0, 30.0, 90.0];
    let inputs: HashMap<String, Array> =
        [("x".to_string(), Array::from_f32([8], xs.clone()).unwrap())].into();
    let b = GraphBuilder::new("both");
    let x = b.input("x", DType::F32, [8]);
    b.output("e", &x.neg().exp());
    b.output("s", &x.sigmoid());
    let g = b.finish().unwrap();
    let want = interp::run(&g, &inputs).unwrap().outputs[1].1.to_f64_vec();
    let got = run_jit(&g, &inputs, true, 0)[1].1.to_f64_vec();
    for ((x, a), w) in xs.iter().zip(&got).zip(&want) {
        let ok = if *w == 0.0 {
            *a == 0.0
        } else {
            (a - w).abs() <= 4.0 * f64::from(f32::EPSILON) * w.abs()
        };
        assert!(ok, "sigmoid({x}) with its exp stored: {a:e} vs {w:e}");
    }
    assert_eq!(want[0], 0.0, "the literal formula underflows at -100");
    let b = GraphBuilder::new("alone");
    let x = b.input("x", DType::F32, [8]);
    b.output("s", &x.sigmoid());
    let g = b.finish().unwrap();
    let alone = run_jit(&g, &inputs, true, 0)[0].1.to_f64_vec();
    assert!(
        alone[0] > 3e-44 && alone[0] < 4e-44,
        "sigmoid(-100) alone: {:e}",
        alone[0]
    );
}

/// A softmax's exponentials of `x - max(x)` (emitted without exp's upper clamp, since the
/// argument is never positive) agree with the interpreter on rows holding infinities, a NaN,
/// huge and tiny values, and an all `-inf` row: NaN where the interpreter has NaN, 0 and 1
/// exactly where it has them, and within 4 ulp elsewhere (exp's error is within 1.01 ulp, and
/// the division by the row sum adds rounding).
#[test]
fn softmax_rows_with_special_values_match_the_interpreter() {
    use kiln::frontend::GraphBuilder;
    let b = GraphBuilder::new("softmax");
    let x = b.input("x", DType::F32, [5, 6]);
    b.output("p", &x.softmax(-1));
    let g = b.finish().unwrap();
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let rows: Vec<f32> = [
        [1.0, 2.0, 3.0, -1.0, 0.5, -0.0],
        [inf, 1.0, -inf, 0.0, 2.0, 3.0],
        [nan, 1.0, 2.0, 3.0, 4.0, 5.0],
        [80.0, -80.0, 88.0, -100.0, 1e-30, -1e30],
        [-inf; 6],
    ]
    .concat();
    let inputs: HashMap<String, Array> =
        [("x".to_string(), Array::from_f32([5, 6], rows).unwrap())].into();
    let want = interp::run(&g, &inputs).unwrap().outputs[0].1.to_f64_vec();
    for fuse in [true, false] {
        let got = run_jit(&g, &inputs, fuse, 0);
        for (i, (a, w)) in got[0].1.to_f64_vec().iter().zip(&want).enumerate() {
            let ok = match (a.is_nan(), w.is_nan()) {
                (true, true) => true,
                (false, false) if *w == 0.0 || *w == 1.0 => a == w,
                (false, false) => (a - w).abs() <= 4.0 * f64::from(f32::EPSILON) * w.abs(),
                _ => false,
            };
            assert!(ok, "fuse={fuse} [{i}]: {a} vs {w}");
        }
    }
}

/// A ReLU and selects against `+0.0`, which vector lanes compute as masks (`x & !(x <= 0)`,
/// `c & x`), give the interpreter's values bit for bit on special values: `-0.0` becomes
/// `+0.0`, NaN stays NaN, subnormals and infinities pass or clear as any other value. Nine
/// elements: two vectors of four lanes (two of f64) and a tail.
#[test]
fn relu_and_selects_against_zero_of_special_values_match_the_interpreter_exactly() {
    use kiln::frontend::GraphBuilder;
    let xs = [
        -0.0,
        0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-40,
        -1e-40,
        2.5,
        -2.5,
    ];
    for dtype in [DType::F32, DType::F64] {
        let b = GraphBuilder::new("masks");
        let x = b.input("x", dtype, [9]);
        let zero = x.scalar_like(0.0);
        let one = x.scalar_like(1.0);
        b.output("relu", &x.relu());
        b.output("relu_flipped", &x.maximum(&zero));
        b.output("kept", &x.gt(&one).select(&x, &zero));
        b.output("cleared", &x.gt(&one).select(&zero, &x));
        let g = b.finish().unwrap();
        let array = match dtype {
            DType::F32 => Array::from_f32([9], xs.iter().map(|&v| v as f32).collect()),
            _ => Array::from_f64([9], xs.to_vec()),
        };
        let inputs: HashMap<String, Array> = [("x".to_string(), array.unwrap())].into();
        let want = interp::run(&g, &inputs).unwrap().outputs;
        for fuse in [true, false] {
            let got = run_jit(&g, &inputs, fuse, 0);
            for ((name, a), (_, w)) in got.iter().zip(&want) {
                let bits = |v: &Array| -> Vec<u64> {
                    v.to_f64_vec()
                        .iter()
                        .map(|x| if x.is_nan() { u64::MAX } else { x.to_bits() })
                        .collect()
                };
                assert_eq!(bits(a), bits(w), "{dtype} fuse={fuse} {name}");
            }
        }
    }
}
