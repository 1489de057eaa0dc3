//! Fused against unfused, side by side: the elementwise chain, softmax with cross-entropy
//! forward and backward, the MLP training step and its compile time, and the training steps of
//! LeNet and of an LSTM.
//!
//! Run with `cargo bench --bench kernels`; BENCHMARKS.md records the figures.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::{gradients, train_step};
use kiln::compiler::{Array, DType, Graph, InputKind};
use kiln::frontend::GraphBuilder;
use kiln::frontend::layers::{Layers, Mode};
use kiln::frontend::losses::{Reduction, cross_entropy};
use kiln::frontend::models::{Settings, builtin};
use kiln::runtime::{Executable, Options};
use std::collections::HashMap;
use std::hint::black_box;

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A compiled graph with its data inputs bound (state from the graph's inputs too).
fn compile(g: &Graph, fuse: bool, data: &HashMap<String, Array>) -> Executable {
    let options = Options {
        fuse,
        ..Options::default()
    };
    let mut exe = Executable::compile(g, &options).expect("compiles");
    for id in g.inputs() {
        let n = g.node(id);
        let (kind, name) = n.op.as_input().expect("input");
        if kind != InputKind::Data {
            let v = Array::from_f32(&n.ty.shape, values(n.ty.numel(), 7)).expect("sized");
            exe.set_state(name, &v).expect("state");
        }
    }
    let _ = data;
    exe
}

/// `tanh(x * a + b) * sigmoid(x) + relu(x)` over `n` elements.
fn chain(n: usize) -> Graph {
    let b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F32, [n]);
    let a = b.input("a", DType::F32, []);
    let c = b.input("b", DType::F32, []);
    let y = (&x * &a + &c).tanh() * x.sigmoid() + x.relu();
    b.output("y", &y);
    b.finish().expect("well typed")
}

fn bench_chain(c: &mut Criterion) {
    let mut group = c.benchmark_group("chain");
    for n in [1 << 20, 1 << 24] {
        let g = chain(n);
        let data: HashMap<String, Array> = [
            ("x".to_string(), Array::from_f32([n], values(n, 1)).unwrap()),
            ("a".to_string(), Array::scalar(DType::F32, 0.5)),
            ("b".to_string(), Array::scalar(DType::F32, 0.1)),
        ]
        .into();
        group.throughput(Throughput::Bytes((n * 8) as u64));
        group.sample_size(if n > 1 << 22 { 20 } else { 50 });
        for fuse in [true, false] {
            let mut exe = compile(&g, fuse, &data);
            let id = BenchmarkId::new(if fuse { "fused" } else { "unfused" }, n);
            group.bench_function(id, |bch| {
                bch.iter(|| exe.execute(black_box(&data)).unwrap())
            });
        }
    }
    group.finish();
}

fn bench_softmax_xent(c: &mut Criterion) {
    let (rows, classes) = (256, 1000);
    let b = GraphBuilder::new("softmax_xent");
    let logits = b.input("logits", DType::F32, [rows, classes]);
    let labels = b.input("labels", DType::I32, [rows]);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let g = gradients(&b.finish().unwrap(), "loss", &["logits"]).unwrap();
    let data: HashMap<String, Array> = [
        (
            "logits".to_string(),
            Array::from_f32([rows, classes], values(rows * classes, 2)).unwrap(),
        ),
        (
            "labels".to_string(),
            Array::from_i32([rows], (0..rows as i32).map(|i| i * 7 % 1000).collect()).unwrap(),
        ),
    ]
    .into();
    let mut group = c.benchmark_group("softmax_xent_fwd_bwd_256x1000");
    for fuse in [true, false] {
        let mut exe = compile(&g, fuse, &data);
        group.bench_function(if fuse { "fused" } else { "unfused" }, |bch| {
            bch.iter(|| exe.execute(black_box(&data)).unwrap())
        });
    }
    group.finish();
}

fn mlp_step(batch: usize) -> Graph {
    let m = kiln::frontend::models::mlp(batch, &[784, 128, 10]).unwrap();
    train_step(&m.graph, "loss", &Optimizer::sgd(0.1)).unwrap()
}

fn mlp_data(batch: usize) -> HashMap<String, Array> {
    let x: Vec<f32> = values(batch * 784, 3).iter().map(|v| v.abs()).collect();
    [
        ("x".to_string(), Array::from_f32([batch, 784], x).unwrap()),
        (
            "labels".to_string(),
            Array::from_i32([batch], (0..batch as i32).map(|i| i % 10).collect()).unwrap(),
        ),
        ("lr".to_string(), Array::scalar(DType::F32, 0.01)),
    ]
    .into()
}

fn bench_mlp(c: &mut Criterion) {
    let g = mlp_step(64);
    let data = mlp_data(64);
    let mut group = c.benchmark_group("mlp_784_128_10_sgd_batch64");
    for fuse in [true, false] {
        let mut exe = compile(&g, fuse, &data);
        group.bench_function(if fuse { "fused" } else { "unfused" }, |bch| {
            bch.iter(|| exe.execute(black_box(&data)).unwrap())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("compile_mlp_784_128_10_sgd_batch64");
    for fuse in [true, false] {
        let options = Options {
            fuse,
            ..Options::default()
        };
        group.bench_function(if fuse { "fused" } else { "unfused" }, |bch| {
            bch.iter(|| black_box(Executable::compile(&g, &options).unwrap().stats().loops))
        });
    }
    group.finish();
}

/// Labels 0..10 in turn.
fn labels(batch: usize) -> Array {
    Array::from_i32([batch], (0..batch as i32).map(|i| i % 10).collect()).unwrap()
}

/// A step-per-sample benchmark of the SGD training step of `model` on `data`, fused and
/// unfused, parameters drawn by the model's initializers.
fn bench_step(
    c: &mut Criterion,
    group: &str,
    model: &kiln::frontend::Model,
    data: &HashMap<String, Array>,
) {
    let g = train_step(&model.graph, "loss", &Optimizer::sgd(0.01)).unwrap();
    let mut group = c.benchmark_group(group);
    for fuse in [true, false] {
        let mut exe = compile(&g, fuse, data);
        for (name, value) in model.initial_values(&g, 1) {
            exe.set_state(&name, &value).unwrap();
        }
        group.bench_function(if fuse { "fused" } else { "unfused" }, |bch| {
            bch.iter(|| exe.execute(black_box(data)).unwrap())
        });
    }
    group.finish();
}

fn bench_lenet(c: &mut Criterion) {
    let batch = 64;
    let settings = Settings {
        batch,
        ..Settings::default()
    };
    let model = builtin("lenet", &settings).unwrap().unwrap();
    let x: Vec<f32> = values(batch * 784, 3).iter().map(|v| v.abs()).collect();
    let data: HashMap<String, Array> = [
        ("x".to_string(), Array::from_f32([batch, 784], x).unwrap()),
        ("labels".to_string(), labels(batch)),
        ("lr".to_string(), Array::scalar(DType::F32, 0.01)),
    ]
    .into();
    bench_step(c, "lenet_sgd_batch64", &model, &data);
}

/// An LSTM (32 steps of 32 features, 128 hidden units) and a linear classifier of its last
/// hidden state, batch 32.
fn bench_lstm(c: &mut Criterion) {
    let (batch, steps, features, hidden) = (32, 32, 32, 128);
    let b = GraphBuilder::new("lstm");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [batch, steps, features]);
    let y = b.input("labels", DType::I32, [batch]);
    let logits = nn.linear("fc", &nn.lstm("lstm", &x, hidden).hidden, 10);
    b.output("loss", &cross_entropy(&logits, &y, Reduction::Mean));
    let model = b.finish_model().unwrap();
    let n = batch * steps * features;
    let data: HashMap<String, Array> = [
        (
            "x".to_string(),
            Array::from_f32([batch, steps, features], values(n, 4)).unwrap(),
        ),
        ("labels".to_string(), labels(batch)),
        ("lr".to_string(), Array::scalar(DType::F32, 0.01)),
    ]
    .into();
    bench_step(c, "lstm_32x32_hidden128_sgd_batch32", &model, &data);
}

criterion_group!(
    benches,
    bench_chain,
    bench_softmax_xent,
    bench_mlp,
    bench_lenet,
    bench_lstm
);
criterion_main!(benches);
