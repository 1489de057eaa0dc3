//! The Rust peers (feature `peers`): the workloads in candle (CPU) and in Burn (the flex CPU
//! backend with autodiff), written as each framework's documentation writes them: candle's
//! `Var`s, `candle_nn::loss::cross_entropy` and its `SGD`/`AdamW` optimizers; Burn's `Linear`
//! modules, `CrossEntropyLoss` and its `Sgd`/`Adam` module optimizers.
//!
//! A training step starts from kiln's initial parameters ([`TrainSpec::initial_params`]) on
//! the same batch, so its losses can be compared with kiln's before it is timed.

use crate::data::{Batch, batch, values};
use crate::workloads::{Net, Opt, TrainSpec, Workload};
use crate::{BenchError, Engine};
use kiln_compiler::Array;
use kiln_runtime::data::Dataset;

/// A Rust framework the report runs beside kiln.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// candle 0.11 on the CPU.
    Candle,
    /// Burn 0.22 on its flex CPU backend, with autodiff.
    Burn,
}

impl Peer {
    /// Every peer.
    pub const ALL: [Peer; 2] = [Peer::Candle, Peer::Burn];

    /// `candle` or `burn`.
    pub fn name(self) -> &'static str {
        match self {
            Peer::Candle => "candle",
            Peer::Burn => "burn",
        }
    }

    /// The workload `w` as this peer runs it (training steps on the first batch of `data`),
    /// or `None` if the peer has no version of it (compile times; models it does not build).
    pub fn engine(
        self,
        w: &Workload,
        data: &dyn Dataset,
    ) -> Option<Result<Box<dyn Engine>, BenchError>> {
        Some(match (self, *w) {
            (_, Workload::Compile(_)) => return None,
            (_, Workload::Train(s)) => {
                let Net::Mlp(_) = s.net else { return None };
                self.train(&s, &batch(data, 0, s.batch))
            }
            (Peer::Candle, Workload::Chain { n }) => candle::chain(n),
            (Peer::Burn, Workload::Chain { n }) => Ok(burn_peer::chain(n)),
            (Peer::Candle, Workload::SoftmaxXent { rows, classes }) => {
                candle::softmax_xent(rows, classes)
            }
            (Peer::Burn, Workload::SoftmaxXent { rows, classes }) => {
                Ok(burn_peer::softmax_xent(rows, classes))
            }
            (Peer::Candle, Workload::Gemm { m, k, n }) => candle::gemm(m, k, n),
            (Peer::Burn, Workload::Gemm { m, k, n }) => Ok(burn_peer::gemm(m, k, n)),
        })
    }

    /// The training step `spec` (an MLP) from kiln's initial parameters, on `batch`.
    pub fn train(self, spec: &TrainSpec, batch: &Batch) -> Result<Box<dyn Engine>, BenchError> {
        let params = layers(spec)?;
        Ok(match self {
            Peer::Candle => {
                Box::new(candle::Train::new(&params, spec.opt, batch).map_err(candle::error)?)
            }
            Peer::Burn => Box::new(burn_peer::Train::new(&params, spec.opt, batch)),
        })
    }
}

/// One fully connected layer's weights `[inputs, outputs]` and bias, as kiln initialized them.
struct Layer {
    inputs: usize,
    outputs: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// The layers of the MLP `spec` with kiln's initial values (parameters `fc1.w`, `fc1.b`, ...).
fn layers(spec: &TrainSpec) -> Result<Vec<Layer>, BenchError> {
    let params = spec.initial_params()?;
    let get = |name: String| -> Result<&Array, BenchError> {
        (params.iter().find(|(n, _)| *n == name).map(|(_, a)| a))
            .ok_or_else(|| BenchError::build(spec.id(), format!("no parameter `{name}`")))
    };
    let count = params.len() / 2;
    (1..=count)
        .map(|i| {
            let w = get(format!("fc{i}.w"))?;
            let b = get(format!("fc{i}.b"))?;
            let (&[inputs, outputs], Some(wv), Some(bv)) = (w.shape(), w.as_f32(), b.as_f32())
            else {
                return Err(BenchError::build(
                    spec.id(),
                    "parameters are not f32 matrices",
                ));
            };
            Ok(Layer {
                inputs,
                outputs,
                w: wv.to_vec(),
                b: bv.to_vec(),
            })
        })
        .collect()
}

/// The inputs of the synthetic workloads, the same values kiln gets.
struct Synthetic;

impl Synthetic {
    fn chain_x(n: usize) -> Vec<f32> {
        values(n, 1)
    }

    fn logits(rows: usize, classes: usize) -> Vec<f32> {
        values(rows * classes, 2)
    }

    fn labels(rows: usize, classes: usize) -> Vec<u32> {
        (0..rows).map(|i| (i * 7 % classes) as u32).collect()
    }

    fn gemm(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        (values(m * k, 4), values(k * n, 5))
    }
}

mod candle {
    use super::{Batch, Layer, Opt, Synthetic};
    use crate::{BenchError, Engine};
    use candle_core::{Device, Result, Tensor, Var};
    use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW, SGD};

    /// A candle error as the report's.
    pub(super) fn error(e: candle_core::Error) -> BenchError {
        BenchError::Peer {
            engine: "candle".into(),
            reason: e.to_string(),
        }
    }

    /// A workload computed by a closure over candle tensors.
    struct Op(Box<dyn FnMut() -> Result<()>>);

    impl Engine for Op {
        fn run(&mut self) -> std::result::Result<Option<f64>, BenchError> {
            (self.0)().map_err(error)?;
            Ok(None)
        }
    }

    /// A closure over candle tensors as an engine.
    fn op(
        f: impl FnMut() -> Result<()> + 'static,
    ) -> std::result::Result<Box<dyn Engine>, BenchError> {
        Ok(Box::new(Op(Box::new(f))))
    }

    /// [`Workload::Chain`](crate::workloads::Workload::Chain).
    pub(super) fn chain(n: usize) -> std::result::Result<Box<dyn Engine>, BenchError> {
        let x = Tensor::from_vec(Synthetic::chain_x(n), n, &Device::Cpu).map_err(error)?;
        op(move || {
            let y = ((x.affine(0.5, 0.1)?.tanh()? * candle_nn::ops::sigmoid(&x)?)? + x.relu()?)?;
            std::hint::black_box(y);
            Ok(())
        })
    }

    /// [`Workload::SoftmaxXent`](crate::workloads::Workload::SoftmaxXent).
    pub(super) fn softmax_xent(
        rows: usize,
        classes: usize,
    ) -> std::result::Result<Box<dyn Engine>, BenchError> {
        let dev = Device::Cpu;
        let logits = Var::from_vec(Synthetic::logits(rows, classes), (rows, classes), &dev);
        let labels = Tensor::from_vec(Synthetic::labels(rows, classes), rows, &dev);
        let (logits, labels) = (logits.map_err(error)?, labels.map_err(error)?);
        op(move || {
            let loss = candle_nn::loss::cross_entropy(logits.as_tensor(), &labels)?;
            let grads = loss.backward()?;
            std::hint::black_box(grads.get(&logits));
            Ok(())
        })
    }

    /// [`Workload::Gemm`](crate::workloads::Workload::Gemm).
    pub(super) fn gemm(
        m: usize,
        k: usize,
        n: usize,
    ) -> std::result::Result<Box<dyn Engine>, BenchError> {
        let (a, b) = Synthetic::gemm(m, k, n);
        let a = Tensor::from_vec(a, (m, k), &Device::Cpu).map_err(error)?;
        let b = Tensor::from_vec(b, (k, n), &Device::Cpu).map_err(error)?;
        op(move || {
            std::hint::black_box(a.matmul(&b)?);
            Ok(())
        })
    }

    enum Optim {
        Sgd(SGD),
        Adam(AdamW),
    }

    /// An MLP training step.
    pub(super) struct Train {
        layers: Vec<(Var, Var)>,
        optim: Optim,
        x: Tensor,
        labels: Tensor,
    }

    impl Train {
        pub(super) fn new(params: &[Layer], opt: Opt, batch: &Batch) -> Result<Train> {
            let dev = Device::Cpu;
            let layers = (params.iter())
                .map(|l| {
                    let w = Var::from_slice(&l.w, (l.inputs, l.outputs), &dev)?;
                    Ok((w, Var::from_slice(&l.b, l.outputs, &dev)?))
                })
                .collect::<Result<Vec<_>>>()?;
            let vars: Vec<Var> = layers
                .iter()
                .flat_map(|(w, b)| [w.clone(), b.clone()])
                .collect();
            let optim = match opt {
                Opt::Sgd => Optim::Sgd(SGD::new(vars, 0.1)?),
                Opt::Adam => Optim::Adam(AdamW::new(
                    vars,
                    ParamsAdamW {
                        lr: 1e-3,
                        beta1: 0.9,
                        beta2: 0.999,
                        eps: 1e-8,
                        weight_decay: 0.0,
                    },
                )?),
            };
            let rows = batch.rows();
            let x = Tensor::from_slice(&batch.x, (rows, batch.features()), &dev)?;
            let labels: Vec<u32> = batch.labels.iter().map(|&l| l as u32).collect();
            let labels = Tensor::from_vec(labels, rows, &dev)?;
            Ok(Train {
                layers,
                optim,
                x,
                labels,
            })
        }

        fn step(&mut self) -> Result<f64> {
            let mut h = self.x.clone();
            for (i, (w, b)) in self.layers.iter().enumerate() {
                h = h.matmul(w.as_tensor())?.broadcast_add(b.as_tensor())?;
                if i + 1 < self.layers.len() {
                    h = h.relu()?;
                }
            }
            let loss = candle_nn::loss::cross_entropy(&h, &self.labels)?;
            let value = loss.to_scalar::<f32>()?;
            match &mut self.optim {
                Optim::Sgd(o) => o.backward_step(&loss)?,
                Optim::Adam(o) => o.backward_step(&loss)?,
            }
            Ok(f64::from(value))
        }
    }

    impl Engine for Train {
        fn run(&mut self) -> std::result::Result<Option<f64>, BenchError> {
            self.step().map(Some).map_err(error)
        }
    }
}

mod burn_peer {
    use super::{Batch, Layer, Opt, Synthetic};
    use crate::{BenchError, Engine};
    use burn::module::Param;
    use burn::nn::Linear;
    use burn::nn::loss::CrossEntropyLoss;
    use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
    use burn::prelude::*;
    use burn::tensor::activation::{relu, sigmoid};

    /// Burn's flex CPU backend with autodiff.
    fn device() -> Device {
        Device::flex().autodiff()
    }

    fn tensor<const D: usize>(v: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    fn labels(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    /// A workload computed by a closure over Burn tensors.
    struct Op(Box<dyn FnMut()>);

    impl Engine for Op {
        fn run(&mut self) -> Result<Option<f64>, BenchError> {
            (self.0)();
            Ok(None)
        }
    }

    /// Waits for `device`'s queued work (the flex backend runs eagerly; this makes sure).
    fn sync(device: &Device) {
        // A failed sync resurfaces at the next read; timing continues either way.
        let _ = device.sync();
    }

    /// A closure over Burn tensors as an engine; each run waits for `device` at the end.
    fn op(device: Device, mut f: impl FnMut() + 'static) -> Box<dyn Engine> {
        Box::new(Op(Box::new(move || {
            f();
            sync(&device);
        })))
    }

    /// [`Workload::Chain`](crate::workloads::Workload::Chain).
    pub(super) fn chain(n: usize) -> Box<dyn Engine> {
        let dev = device();
        let x = tensor(Synthetic::chain_x(n), [n], &dev);
        op(dev, move || {
            let t = (x.clone().mul_scalar(0.5).add_scalar(0.1)).tanh();
            std::hint::black_box(t * sigmoid(x.clone()) + relu(x.clone()));
        })
    }

    /// [`Workload::SoftmaxXent`](crate::workloads::Workload::SoftmaxXent).
    pub(super) fn softmax_xent(rows: usize, classes: usize) -> Box<dyn Engine> {
        let dev = device();
        let logits = tensor(Synthetic::logits(rows, classes), [rows, classes], &dev).require_grad();
        let l = Synthetic::labels(rows, classes).into_iter().map(i64::from);
        let labels = labels(l.collect(), &dev);
        let loss_fn = CrossEntropyLoss::new(None, &dev);
        op(dev, move || {
            let loss = loss_fn.forward(logits.clone(), labels.clone());
            let grads = loss.backward();
            std::hint::black_box(logits.grad(&grads));
        })
    }

    /// [`Workload::Gemm`](crate::workloads::Workload::Gemm).
    pub(super) fn gemm(m: usize, k: usize, n: usize) -> Box<dyn Engine> {
        let dev = device();
        let (a, b) = Synthetic::gemm(m, k, n);
        let (a, b) = (tensor(a, [m, k], &dev), tensor(b, [k, n], &dev));
        op(dev, move || {
            std::hint::black_box(a.clone().matmul(b.clone()));
        })
    }

    /// An MLP of Burn `Linear` layers with ReLU between them.
    #[derive(Module, Debug)]
    struct Mlp {
        layers: Vec<Linear>,
    }

    impl Mlp {
        fn forward(&self, x: Tensor<2>) -> Tensor<2> {
            let last = self.layers.len().saturating_sub(1);
            (self.layers.iter().enumerate()).fold(x, |h, (i, layer)| {
                let h = layer.forward(h);
                if i < last { relu(h) } else { h }
            })
        }
    }

    /// An MLP training step.
    pub(super) struct Train {
        model: Option<Mlp>,
        optim: ModuleOptimizer,
        lr: f64,
        loss_fn: CrossEntropyLoss,
        x: Tensor<2>,
        labels: Tensor<1, Int>,
    }

    impl Train {
        pub(super) fn new(params: &[Layer], opt: Opt, batch: &Batch) -> Train {
            let dev = device();
            let layers = (params.iter())
                .map(|l| Linear {
                    weight: Param::from_tensor(tensor(l.w.clone(), [l.inputs, l.outputs], &dev)),
                    bias: Some(Param::from_tensor(tensor(l.b.clone(), [l.outputs], &dev))),
                })
                .collect();
            let (optim, lr) = match opt {
                Opt::Sgd => (SgdConfig::new().init(), 0.1),
                Opt::Adam => (
                    AdamConfig::new()
                        .with_beta_1(0.9)
                        .with_beta_2(0.999)
                        .with_epsilon(1e-8)
                        .init(),
                    1e-3,
                ),
            };
            let x = tensor(batch.x.clone(), [batch.rows(), batch.features()], &dev);
            let labels = labels(batch.labels.iter().map(|&l| i64::from(l)).collect(), &dev);
            Train {
                model: Some(Mlp { layers }),
                optim,
                lr,
                loss_fn: CrossEntropyLoss::new(None, &dev),
                x,
                labels,
            }
        }
    }

    impl Engine for Train {
        fn run(&mut self) -> Result<Option<f64>, BenchError> {
            let model = self.model.take().ok_or_else(|| BenchError::Peer {
                engine: "burn".into(),
                reason: "an earlier step failed".into(),
            })?;
            let logits = model.forward(self.x.clone());
            let loss = self.loss_fn.forward(logits, self.labels.clone());
            let value: f32 = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            self.model = Some(self.optim.step(self.lr, model, grads));
            Ok(Some(f64::from(value)))
        }
    }
}
