//! kiln fused against kiln unfused on every workload of `kiln_bench::workloads`, under
//! criterion: `cargo bench -p kiln-bench` (a filter such as `-- train_mlp` picks workloads).
//!
//! The report (`cargo run --release -p kiln-bench -- report`) times the same workloads beside
//! the peers and writes BENCHMARKS.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_bench::data::mnist_train;
use kiln_bench::workloads::{self, Workload};
use std::time::Duration;

fn bench_all(c: &mut Criterion) {
    let data = mnist_train().expect("the embedded MNIST-10k in data/");
    for w in workloads::all() {
        let mut group = c.benchmark_group(w.id());
        let throughput = match w.throughput() {
            Some(workloads::Throughput::Bytes(b)) => Some(Throughput::Bytes(b)),
            Some(workloads::Throughput::Flops(f)) => Some(Throughput::Elements(f)),
            None => None,
        };
        if let Some(t) = throughput {
            group.throughput(t);
        }
        if matches!(
            w,
            Workload::Compile(_) | Workload::Chain { n: 16_777_216.. }
        ) || matches!(w, Workload::Gemm { m: 2048.., .. })
        {
            group
                .sample_size(10)
                .measurement_time(Duration::from_secs(3));
        }
        for (name, fuse) in [("fused", true), ("unfused", false)] {
            let mut engine = w.kiln(fuse, &data).expect("the workload builds");
            group.bench_function(name, |b| b.iter(|| engine.run().expect("runs")));
        }
        group.finish();
    }
}

criterion_group!(benches, bench_all);
criterion_main!(benches);
