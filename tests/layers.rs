//! Every layer compiled, fused and unfused, computes what the interpreter computes, forward and
//! backward; fusion alone (the kernel-IR evaluator) computes it bit for bit; and the layers
//! with semantics of their own (batch norm's running statistics, dropout's mask) do what
//! PyTorch's do.

mod common;

use common::Rng;
use kiln::compiler::kernel::{eval, lower};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::{gradients, train_step};
use kiln::compiler::{Array, DType, Graph, InputKind, interp};
use kiln::frontend::layers::{Conv2d, Layers, Lowering, Mode};
use kiln::frontend::losses::{self, Reduction};
use kiln::frontend::{GraphBuilder, Tensor};
use std::collections::HashMap;

/// A layer's graph and values for its inputs.
struct Case {
    name: &'static str,
    graph: Graph,
    values: HashMap<String, Array>,
    /// How far the compiled results may be from the interpreter's, relative to
    /// `max(1, |expected|)` (see `every_layer_compiles_to_what_the_interpreter_computes`).
    tolerance: f64,
}

/// `f` applied in `mode` to f32 data inputs of the given shapes, with `loss = sum(r * out)` for
/// fixed random weights `r` and the gradient of the loss with respect to every f32 input
/// (data and parameters) as outputs. Data is uniform in [-1, 1), parameters are drawn by their
/// initializers, running statistics uniform in [0.5, 1.5), and a seed is 7.
fn case(
    name: &'static str,
    mode: Mode,
    shapes: &[&[usize]],
    f: impl Fn(&Layers, &[Tensor]) -> Tensor,
) -> Case {
    let b = GraphBuilder::new(name);
    let mut rng = Rng::new(name.len() as u64);
    let mut values = HashMap::new();
    let xs: Vec<Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, shape)| {
            let n: usize = shape.iter().product();
            let v = rng
                .vec(n, -1.0, 1.0)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            values.insert(format!("x{i}"), Array::from_f32(shape, v).unwrap());
            b.input(&format!("x{i}"), DType::F32, shape)
        })
        .collect();
    let out = f(&Layers::new(&b, mode), &xs);
    let n = out.numel();
    let r = rng.vec(n, 0.5, 1.5).into_iter().map(|v| v as f32).collect();
    let r = b.constant(Array::from_f32(out.shape(), r).unwrap());
    b.output("out", &out);
    b.output("loss", &(&out * &r).sum_all());
    let model = b.finish_model().unwrap();
    values.extend(model.initial_values(&model.graph, 3));
    let mut floats = vec![];
    for id in model.graph.inputs() {
        let node = model.graph.node(id);
        let (kind, name) = node.op.as_input().unwrap();
        match (kind, node.ty.dtype) {
            (_, DType::I32) => {
                values.insert(name.to_string(), Array::scalar(DType::I32, 7.0));
            }
            (InputKind::State, _) => {
                let v = rng.vec(node.ty.numel(), 0.5, 1.5);
                let v = v.into_iter().map(|v| v as f32).collect();
                values.insert(
                    name.to_string(),
                    Array::from_f32(&node.ty.shape, v).unwrap(),
                );
            }
            _ => floats.push(name.to_string()),
        }
    }
    let wrt: Vec<&str> = floats.iter().map(String::as_str).collect();
    let graph = gradients(&model.graph, "loss", &wrt).unwrap();
    Case {
        name,
        graph,
        values,
        tolerance: 1e-5,
    }
}

/// Every layer on small shapes, in the configurations the gradient checks cover.
fn cases() -> Vec<Case> {
    vec![
        case("linear", Mode::Train, &[&[5, 7]], |nn, x| {
            nn.linear("fc", &x[0], 3)
        }),
        case("conv2d", Mode::Train, &[&[2, 3, 9, 9]], |nn, x| {
            nn.conv2d("c", &x[0], Conv2d::new(4, 3).stride(2).padding(1))
        }),
        case("conv2d-5x5", Mode::Train, &[&[2, 2, 12, 12]], |nn, x| {
            nn.conv2d("c", &x[0], Conv2d::new(3, 5).padding(2))
        }),
        case("conv2d-1x1", Mode::Train, &[&[2, 3, 5, 5]], |nn, x| {
            nn.conv2d("c", &x[0], Conv2d::new(4, 1).bias(false))
        }),
        case("conv2d-winograd", Mode::Train, &[&[2, 3, 8, 8]], |nn, x| {
            let conv = Conv2d::new(4, 3).padding(1).lowering(Lowering::Winograd);
            nn.conv2d("c", &x[0], conv)
        }),
        case(
            "conv2d-winograd-odd",
            Mode::Train,
            &[&[2, 3, 9, 8]],
            |nn, x| {
                let conv = Conv2d::new(4, 3).bias(false).lowering(Lowering::Winograd);
                nn.conv2d("c", &x[0], conv)
            },
        ),
        case("max_pool2d", Mode::Train, &[&[2, 3, 9, 9]], |_, x| {
            x[0].max_pool2d(3, 2, 1)
        }),
        case("max_pool2d-2x2", Mode::Train, &[&[2, 3, 8, 8]], |_, x| {
            x[0].max_pool2d(2, 2, 0)
        }),
        case("avg_pool2d", Mode::Train, &[&[2, 3, 8, 8]], |_, x| {
            x[0].avg_pool2d(3, 1, 1)
        }),
        case(
            "flatten-concat",
            Mode::Train,
            &[&[2, 1, 3, 3], &[2, 2, 3, 3]],
            |_, x| x[0].concat(&[&x[1]], 1).flatten_from(1),
        ),
        Case {
            tolerance: 5e-5,
            ..case("batch_norm2d", Mode::Train, &[&[4, 3, 5, 5]], |nn, x| {
                nn.batch_norm2d("bn", &x[0])
            })
        },
        case("batch_norm1d", Mode::Train, &[&[6, 5]], |nn, x| {
            nn.batch_norm1d("bn", &x[0])
        }),
        case(
            "batch_norm2d-eval",
            Mode::Eval,
            &[&[4, 3, 5, 5]],
            |nn, x| nn.batch_norm2d("bn", &x[0]),
        ),
        case("dropout", Mode::Train, &[&[6, 50]], |nn, x| {
            nn.dropout(&x[0], 0.3)
        }),
        case("rnn", Mode::Train, &[&[3, 5, 4]], |nn, x| {
            nn.rnn("rnn", &x[0], 6).hidden
        }),
        case("lstm", Mode::Train, &[&[3, 5, 4]], |nn, x| {
            let out = nn.lstm("lstm", &x[0], 6);
            out.hidden.concat(&[&out.cell.unwrap()], 1)
        }),
        case("embedding", Mode::Train, &[], |nn, _| {
            // Rows 1 and 4 looked up more than once, row 2 never, -2 and 9 clamped to 0 and 5.
            let ids = vec![1, 4, 1, 0, -2, 4, 9, 3, 3, 1, 4, 0];
            let ids = nn.builder().constant(Array::from_i32([3, 4], ids).unwrap());
            nn.embedding("emb", &ids, 6, 5)
        }),
    ]
}

/// Compiled against interpreted, fused and unfused, on one thread and two. The JIT sums in f32
/// (in 16 vector lanes, and GEMMs in their own order) where the interpreter sums in f64, and
/// its exp, tanh and sigmoid are polynomials accurate to a few units in the last place of f32
/// (docs/math.md). A sum of n terms then moves by up to about (n / 16) * 6e-8 of the sum of the
/// terms' magnitudes; the longest sums here (a weight gradient over 288 output pixels, the
/// loss over 864 outputs) of terms of magnitude about 1 that mostly add up rather than cancel
/// stay within 1e-5 relative to max(1, |expected|). Batch norm in training is the exception:
/// its statistics are such sums over 100 values (relative error up to ~4e-7), and the loss
/// and gamma's gradient, sums of r * (x - mean) / std over 100 to 300 terms of magnitude ~1,
/// cancel to O(1) because the normalized values have mean zero, which multiplies that error by
/// up to ~100: 5e-5 for it. A wrong index or gradient rule is off by far more than either.
#[test]
fn every_layer_compiles_to_what_the_interpreter_computes() {
    for c in cases() {
        for fuse in [true, false] {
            for threads in [1, 2] {
                let d = common::jit_error(&c.graph, &c.values, fuse, threads);
                let name = c.name;
                assert!(
                    d < c.tolerance,
                    "{name} fuse={fuse} threads={threads}: {d:e}"
                );
            }
        }
    }
}

/// Fusion only moves computations between kernels: the program it makes, run element by
/// element through the interpreter's primitives, computes what the interpreter computes, bit
/// for bit.
#[test]
fn fusing_every_layer_is_exact() {
    for c in cases() {
        let want = interp::run(&c.graph, &c.values).unwrap();
        for fuse in [true, false] {
            let got = eval(&lower(&c.graph, fuse), &c.values);
            assert_eq!(got.outputs, want.outputs, "{} fuse={fuse}", c.name);
            assert_eq!(got.updates, want.updates, "{} fuse={fuse}", c.name);
        }
    }
}

/// A sequence classifier, an embedding into an LSTM into a linear layer under cross-entropy:
/// one training step with SGD and one with Adam, compiled fused and unfused on one thread and
/// two, against the interpreter, and fused exactly (the kernel-IR evaluator) as the
/// interpreter computes it. The ids are a data input, so the compiled gather and the table's
/// scatter-add read them at run time; among them are repeated ids, unused rows and two ids
/// outside the table (-3 and `vocab + 2`, clamped to the first and last rows). The table's
/// rows are of magnitude about 1 (N(0, 1)), like the data in the cases above, and the longest
/// f32 sums (the LSTM's weight gradients over 4 rows and 5 steps, the table's rows over at
/// most 20 lookups) are far shorter than theirs, so the same 1e-5 bound holds.
#[test]
fn an_embedding_into_an_lstm_trains_as_the_interpreter_does() {
    let (batch, steps, vocab, dim, hidden, classes) = (4, 5, 11, 6, 8, 3);
    let b = GraphBuilder::new("tagger");
    let nn = Layers::new(&b, Mode::Train);
    let ids = b.input("ids", DType::I32, [batch, steps]);
    let labels = b.input("labels", DType::I32, [batch]);
    let xs = nn.embedding("emb", &ids, vocab, dim);
    let h = nn.lstm("lstm", &xs, hidden).hidden;
    let logits = nn.linear("fc", &h, classes);
    let loss = losses::cross_entropy(&logits, &labels, Reduction::Mean);
    b.output("loss", &loss);
    let model = b.finish_model().unwrap();

    let mut rng = Rng::new(17);
    let mut id_values: Vec<i32> = (0..batch * steps)
        .map(|_| rng.range(0.0, vocab as f64 - 2.0) as i32)
        .collect();
    id_values[3] = -3;
    id_values[12] = vocab as i32 + 2;
    let label_values: Vec<i32> = (0..batch)
        .map(|_| rng.range(0.0, classes as f64) as i32)
        .collect();
    for opt in [Optimizer::sgd(0.1), Optimizer::adam(1e-2)] {
        let g = train_step(&model.graph, "loss", &opt).unwrap();
        let mut values: HashMap<String, Array> = model.initial_values(&g, 1).into_iter().collect();
        let data = [
            ("ids", Array::from_i32([batch, steps], id_values.clone())),
            ("labels", Array::from_i32([batch], label_values.clone())),
        ];
        for (name, value) in data {
            values.insert(name.to_string(), value.unwrap());
        }
        for (name, v) in opt.hyperparameters() {
            values.insert(name.to_string(), Array::scalar(DType::F32, v));
        }
        assert!(
            g.updates().iter().any(|(name, _)| name == "emb.table"),
            "the step updates the table"
        );
        let name = opt.name();
        for fuse in [true, false] {
            for threads in [1, 2] {
                let d = common::jit_error(&g, &values, fuse, threads);
                assert!(d < 1e-5, "{name} fuse={fuse} threads={threads}: {d:e}");
            }
            let want = interp::run(&g, &values).unwrap();
            let got = eval(&lower(&g, fuse), &values);
            assert_eq!(got.outputs, want.outputs, "{name} fuse={fuse}");
            assert_eq!(got.updates, want.updates, "{name} fuse={fuse}");
        }
    }
}

/// Batch norm over 4 rows of 2 features, worked out by hand: training normalizes with the
/// batch's mean and biased variance and moves the running statistics 10% of the way to the
/// batch's mean and unbiased variance; evaluation normalizes with the running statistics.
#[test]
fn batch_norm_keeps_running_statistics_as_pytorch_does() {
    let x = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 60.0];
    let (mean, biased, unbiased) = ([3.0, 30.0], [3.5, 350.0], [14.0 / 3.0, 1400.0 / 3.0]);
    let (rm, rv) = ([0.5, -1.0], [2.0, 4.0]);
    for mode in [Mode::Train, Mode::Eval] {
        let b = GraphBuilder::new("bn");
        let nn = Layers::new(&b, mode);
        let input = b.input("x", DType::F64, [4, 2]);
        b.output("y", &nn.batch_norm1d("bn", &input));
        let g = b.finish().unwrap();
        let values: HashMap<String, Array> = [
            ("x", Array::from_f64([4, 2], x.to_vec())),
            ("bn.gamma", Array::from_f64([2], vec![2.0, 0.5])),
            ("bn.beta", Array::from_f64([2], vec![1.0, -1.0])),
            ("bn.running_mean", Array::from_f64([2], rm.to_vec())),
            ("bn.running_var", Array::from_f64([2], rv.to_vec())),
        ]
        .into_iter()
        .map(|(n, a)| (n.to_string(), a.unwrap()))
        .collect();
        let e = interp::run(&g, &values).unwrap();
        let y = e.output("y").unwrap().to_f64_vec();
        let (m, v) = match mode {
            Mode::Train => (mean, biased),
            Mode::Eval => (rm, rv),
        };
        for (i, &xi) in x.iter().enumerate() {
            let c = i % 2;
            let (gamma, beta) = ([2.0, 0.5][c], [1.0, -1.0][c]);
            let want = (xi - m[c]) / (v[c] + 1e-5f64).sqrt() * gamma + beta;
            assert!(
                (y[i] - want).abs() < 1e-12,
                "{mode:?} y[{i}]: {} vs {want}",
                y[i]
            );
        }
        let updates: HashMap<&str, Vec<f64>> = e
            .updates
            .iter()
            .map(|(n, a)| (n.as_str(), a.to_f64_vec()))
            .collect();
        if mode == Mode::Eval {
            assert!(updates.is_empty(), "evaluation updates nothing");
            continue;
        }
        for c in 0..2 {
            let want_mean = 0.9 * rm[c] + 0.1 * mean[c];
            let want_var = 0.9 * rv[c] + 0.1 * unbiased[c];
            assert!((updates["bn.running_mean"][c] - want_mean).abs() < 1e-12);
            assert!((updates["bn.running_var"][c] - want_var).abs() < 1e-12);
        }
    }
}

/// Dropout with p = 0.3 over 20,000 elements: the fraction dropped is within 0.015 of 0.3 (the
/// standard deviation of the fraction is sqrt(0.3 * 0.7 / 20000) ~ 0.0032, so this is 4.6 of
/// them), the kept elements are scaled by exactly 1/0.7, another seed or another dropout in
/// the same graph draws another mask, and in evaluation it is the identity with no seed input.
#[test]
fn dropout_drops_a_fraction_p_and_scales_the_rest() {
    let n = 20_000;
    let b = GraphBuilder::new("dropout");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [n]);
    b.output("a", &nn.dropout(&x, 0.3));
    b.output("b", &nn.dropout(&x, 0.3));
    let g = b.finish().unwrap();
    let ones = Array::full(DType::F32, [n], 1.0);
    let run = |seed: f64| {
        let values: HashMap<String, Array> = [
            ("x".to_string(), ones.clone()),
            ("step_seed".to_string(), Array::scalar(DType::I32, seed)),
        ]
        .into();
        let e = interp::run(&g, &values).unwrap();
        let a = e.output("a").unwrap().to_f64_vec();
        let b = e.output("b").unwrap().to_f64_vec();
        (a, b)
    };
    let (a, b) = run(1.0);
    let scale = (1.0f32 / 0.7) as f64;
    assert!(a.iter().all(|&v| v == 0.0 || v == scale));
    let dropped = a.iter().filter(|&&v| v == 0.0).count() as f64 / n as f64;
    assert!((dropped - 0.3).abs() < 0.015, "dropped {dropped}");
    assert_ne!(a, b, "two dropouts draw two masks");
    assert_ne!(a, run(2.0).0, "another seed draws another mask");
    assert_eq!(a, run(1.0).0, "the same seed draws the same mask");

    let b = GraphBuilder::new("eval");
    let nn = Layers::new(&b, Mode::Eval);
    let x = b.input("x", DType::F32, [3]);
    b.output("y", &nn.dropout(&x, 0.3));
    let g = b.finish().unwrap();
    assert!(g.input("step_seed").is_none());
    assert_eq!(g.output("y"), g.input("x"));
}

/// Winograd's F(2x2, 3x3) computes what im2col computes, forward and backward, on even and odd
/// output extents, with and without padding: in the interpreter, in f64, the two differ by
/// rounding alone (the transforms' entries are exact; their sums round), far below 1e-12
/// relative to the outputs' and gradients' magnitudes.
#[test]
fn winograd_convolutions_compute_what_im2col_computes() {
    for (shape, padding) in [([2, 5, 10, 10], 1), ([1, 3, 9, 12], 0), ([3, 2, 7, 7], 2)] {
        let run = |lowering: Lowering| {
            let b = GraphBuilder::new("conv");
            let x = b.input("x", DType::F64, shape);
            let nn = Layers::new(&b, Mode::Train);
            let conv = Conv2d::new(4, 3).padding(padding).lowering(lowering);
            let y = nn.conv2d("c", &x, conv);
            let r = b.constant(
                Array::from_f64(y.shape(), Rng::new(3).vec(y.numel(), -1.0, 1.0)).unwrap(),
            );
            b.output("y", &y);
            b.output("loss", &(&y * &r).sum_all());
            let model = b.finish_model().unwrap();
            let g = gradients(&model.graph, "loss", &["x", "c.w", "c.b"]).unwrap();
            let n = shape.iter().product();
            let mut values: HashMap<String, Array> =
                model.initial_values(&model.graph, 1).into_iter().collect();
            values.insert(
                "x".into(),
                Array::from_f64(shape, Rng::new(5).vec(n, -1.0, 1.0)).unwrap(),
            );
            interp::run(&g, &values).unwrap().outputs
        };
        let (winograd, im2col) = (run(Lowering::Winograd), run(Lowering::Im2col));
        for ((name, got), (_, expected)) in winograd.iter().zip(&im2col) {
            assert_eq!(got.shape(), expected.shape(), "{name}");
            let (got, want) = (got.to_f64_vec(), expected.to_f64_vec());
            let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * scale,
                    "{shape:?} {name}[{i}]: {a} vs {b}"
                );
            }
        }
    }
}
