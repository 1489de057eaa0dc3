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
        data: &Dataset,
    ) -> Option<Result<Box<dyn Engine>, BenchError>> {
        Some(match (self, *w) {
            (_, Workload::Compile(_)) => return None,
            (_, Workload::Train(s)) => {
                let layers = network(&s)?;
                layers.and_then(|l| self.train_network(&l, s.opt, &batch(data, 0, s.batch)))
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

    /// The training step `spec` from kiln's initial parameters, on `batch`; an error for a
    /// model the peers do not build.
    pub fn train(self, spec: &TrainSpec, batch: &Batch) -> Result<Box<dyn Engine>, BenchError> {
        let layers = network(spec)
            .ok_or_else(|| BenchError::build(spec.id(), "the peers do not build this model"))??;
        self.train_network(&layers, spec.opt, batch)
    }

    fn train_network(
        self,
        layers: &[Layer],
        opt: Opt,
        batch: &Batch,
    ) -> Result<Box<dyn Engine>, BenchError> {
        Ok(match self {
            Peer::Candle => {
                Box::new(candle::Train::new(layers, opt, batch).map_err(candle::error)?)
            }
            Peer::Burn => Box::new(burn_peer::Train::new(layers, opt, batch)),
        })
    }
}

/// One layer of a peer's network, holding kiln's initial values of its parameters.
enum Layer {
    /// The rows of 784 pixels as one-channel 28x28 images.
    Images,
    /// A convolution with stride 1: weights `[out, in, k, k]` (as kiln's), bias `[out]`,
    /// zero padding on every side.
    Conv {
        shape: [usize; 4],
        w: Vec<f32>,
        b: Vec<f32>,
        padding: usize,
    },
    /// `x w + b` with `w: [inputs, outputs]` (as kiln's).
    Linear {
        inputs: usize,
        outputs: usize,
        w: Vec<f32>,
        b: Vec<f32>,
    },
    Relu,
    /// Max pooling over 2x2 windows with stride 2.
    Pool,
    /// `[N, C, H, W]` to `[N, C H W]`.
    Flatten,
}

/// The network of `spec` with kiln's initial parameters, as kiln's frontend builds it (the
/// MLPs; LeNet-5 with ReLU and max pooling), or `None` for a model the peers do not build.
fn network(spec: &TrainSpec) -> Option<Result<Vec<Layer>, BenchError>> {
    let net = spec.net;
    if !matches!(net, Net::Mlp(_) | Net::Builtin("lenet")) {
        return None;
    }
    Some(spec.initial_params().and_then(|params| {
        let param = |name: String| -> Result<(Vec<usize>, Vec<f32>), BenchError> {
            (params.iter().find(|(n, _)| *n == name))
                .and_then(|(_, a)| Some((a.shape().to_vec(), a.as_f32()?.to_vec())))
                .ok_or_else(|| BenchError::build(spec.id(), format!("no f32 parameter `{name}`")))
        };
        let linear = |name: &str| -> Result<Layer, BenchError> {
            let (shape, w) = param(format!("{name}.w"))?;
            let (_, b) = param(format!("{name}.b"))?;
            let &[inputs, outputs] = shape.as_slice() else {
                return Err(BenchError::build(
                    spec.id(),
                    format!("`{name}.w` is not 2-d"),
                ));
            };
            Ok(Layer::Linear {
                inputs,
                outputs,
                w,
                b,
            })
        };
        let conv = |name: &str, padding: usize| -> Result<Layer, BenchError> {
            let (shape, w) = param(format!("{name}.w"))?;
            let (_, b) = param(format!("{name}.b"))?;
            let shape: [usize; 4] = (shape.try_into())
                .map_err(|_| BenchError::build(spec.id(), format!("`{name}.w` is not 4-d")))?;
            Ok(Layer::Conv {
                shape,
                w,
                b,
                padding,
            })
        };
        match net {
            Net::Mlp(sizes) => {
                let mut layers = Vec::new();
                for i in 1..sizes.len() {
                    if i > 1 {
                        layers.push(Layer::Relu);
                    }
                    layers.push(linear(&format!("fc{i}"))?);
                }
                Ok(layers)
            }
            // LeNet, the one other network that gets here.
            _ => Ok(vec![
                Layer::Images,
                conv("conv1", 2)?,
                Layer::Relu,
                Layer::Pool,
                conv("conv2", 0)?,
                Layer::Relu,
                Layer::Pool,
                Layer::Flatten,
                linear("fc1")?,
                Layer::Relu,
                linear("fc2")?,
                Layer::Relu,
                linear("fc3")?,
            ]),
        }
    }))
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

    /// A layer with its parameters as candle variables.
    enum Step {
        Images,
        Conv { w: Var, b: Var, padding: usize },
        Linear { w: Var, b: Var },
        Relu,
        Pool,
        Flatten,
    }

    impl Step {
        fn new(layer: &Layer, dev: &Device) -> Result<Step> {
            Ok(match layer {
                Layer::Images => Step::Images,
                Layer::Conv {
                    shape,
                    w,
                    b,
                    padding,
                } => Step::Conv {
                    w: Var::from_slice(w, shape.to_vec(), dev)?,
                    // As [1, out, 1, 1], to broadcast over images and pixels.
                    b: Var::from_slice(b, (1, shape[0], 1, 1), dev)?,
                    padding: *padding,
                },
                Layer::Linear {
                    inputs,
                    outputs,
                    w,
                    b,
                } => Step::Linear {
                    w: Var::from_slice(w, (*inputs, *outputs), dev)?,
                    b: Var::from_slice(b, *outputs, dev)?,
                },
                Layer::Relu => Step::Relu,
                Layer::Pool => Step::Pool,
                Layer::Flatten => Step::Flatten,
            })
        }

        fn vars(&self) -> Vec<Var> {
            match self {
                Step::Conv { w, b, .. } | Step::Linear { w, b } => vec![w.clone(), b.clone()],
                _ => Vec::new(),
            }
        }

        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            match self {
                Step::Images => x.reshape((x.dim(0)?, 1, 28, 28)),
                Step::Conv { w, b, padding } => x
                    .conv2d(w.as_tensor(), *padding, 1, 1, 1)?
                    .broadcast_add(b.as_tensor()),
                Step::Linear { w, b } => x.matmul(w.as_tensor())?.broadcast_add(b.as_tensor()),
                Step::Relu => x.relu(),
                Step::Pool => x.max_pool2d(2),
                Step::Flatten => x.flatten_from(1),
            }
        }
    }

    /// A training step.
    pub(super) struct Train {
        steps: Vec<Step>,
        optim: Optim,
        x: Tensor,
        labels: Tensor,
    }

    impl Train {
        pub(super) fn new(layers: &[Layer], opt: Opt, batch: &Batch) -> Result<Train> {
            let dev = Device::Cpu;
            let steps = (layers.iter())
                .map(|l| Step::new(l, &dev))
                .collect::<Result<Vec<_>>>()?;
            let vars: Vec<Var> = steps.iter().flat_map(Step::vars).collect();
            let optim = match opt {
                Opt::Sgd | Opt::SgdSlow => Optim::Sgd(SGD::new(vars, opt.lr())?),
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
                steps,
                optim,
                x,
                labels,
            })
        }

        fn step(&mut self) -> Result<f64> {
            let mut h = self.x.clone();
            for s in &self.steps {
                h = s.forward(&h)?;
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
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::nn::loss::CrossEntropyLoss;
    use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
    use burn::nn::{Linear, PaddingConfig2d};
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

    /// The layers with parameters, as Burn modules.
    #[derive(Module, Debug)]
    struct Net {
        convs: Vec<Conv2d>,
        linears: Vec<Linear>,
    }

    /// A layer of the network: modules by their index in [`Net`].
    enum Step {
        Images,
        Conv(usize),
        Linear(usize),
        Relu,
        Pool,
        Flatten,
    }

    /// A value between layers: rows of features or images (Burn's tensors carry their rank).
    enum Value {
        Rows(Tensor<2>),
        Images(Tensor<4>),
    }

    impl Net {
        /// The network of `layers` and the order its modules run in.
        fn new(layers: &[Layer], dev: &Device) -> (Net, Vec<Step>) {
            let mut net = Net {
                convs: Vec::new(),
                linears: Vec::new(),
            };
            let steps = (layers.iter())
                .map(|layer| match layer {
                    Layer::Images => Step::Images,
                    Layer::Conv {
                        shape,
                        w,
                        b,
                        padding: p,
                    } => {
                        let [o, c, k, _] = *shape;
                        let mut conv = Conv2dConfig::new([c, o], [k, k])
                            .with_padding(PaddingConfig2d::Explicit(*p, *p, *p, *p))
                            .init(dev);
                        conv.weight = Param::from_tensor(tensor(w.clone(), *shape, dev));
                        conv.bias = Some(Param::from_tensor(tensor(b.clone(), [o], dev)));
                        net.convs.push(conv);
                        Step::Conv(net.convs.len() - 1)
                    }
                    Layer::Linear {
                        inputs,
                        outputs,
                        w,
                        b,
                    } => {
                        net.linears.push(Linear {
                            weight: Param::from_tensor(tensor(w.clone(), [*inputs, *outputs], dev)),
                            bias: Some(Param::from_tensor(tensor(b.clone(), [*outputs], dev))),
                        });
                        Step::Linear(net.linears.len() - 1)
                    }
                    Layer::Relu => Step::Relu,
                    Layer::Pool => Step::Pool,
                    Layer::Flatten => Step::Flatten,
                })
                .collect();
            (net, steps)
        }

        /// The logits of `x` through `steps`; `None` if a step gets a value of the wrong rank.
        fn forward(&self, steps: &[Step], pool: &MaxPool2d, x: Tensor<2>) -> Option<Tensor<2>> {
            let mut v = Value::Rows(x);
            for step in steps {
                v = match (step, v) {
                    (Step::Images, Value::Rows(x)) => {
                        let n = x.dims()[0];
                        Value::Images(x.reshape([n, 1, 28, 28]))
                    }
                    (Step::Conv(i), Value::Images(x)) => Value::Images(self.convs[*i].forward(x)),
                    (Step::Linear(i), Value::Rows(x)) => Value::Rows(self.linears[*i].forward(x)),
                    (Step::Relu, Value::Rows(x)) => Value::Rows(relu(x)),
                    (Step::Relu, Value::Images(x)) => Value::Images(relu(x)),
                    (Step::Pool, Value::Images(x)) => Value::Images(pool.forward(x)),
                    (Step::Flatten, Value::Images(x)) => Value::Rows(x.flatten(1, 3)),
                    _ => return None,
                };
            }
            match v {
                Value::Rows(logits) => Some(logits),
                Value::Images(_) => None,
            }
        }
    }

    /// A training step.
    pub(super) struct Train {
        model: Option<Net>,
        steps: Vec<Step>,
        pool: MaxPool2d,
        optim: ModuleOptimizer,
        lr: f64,
        loss_fn: CrossEntropyLoss,
        x: Tensor<2>,
        labels: Tensor<1, Int>,
    }

    impl Train {
        pub(super) fn new(layers: &[Layer], opt: Opt, batch: &Batch) -> Train {
            let dev = device();
            let (net, steps) = Net::new(layers, &dev);
            let (optim, lr) = match opt {
                Opt::Sgd | Opt::SgdSlow => (SgdConfig::new().init(), opt.lr()),
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
                model: Some(net),
                steps,
                pool: MaxPool2dConfig::new([2, 2]).init(),
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
            let logits =
                (model.forward(&self.steps, &self.pool, self.x.clone())).ok_or_else(|| {
                    BenchError::Peer {
                        engine: "burn".into(),
                        reason: "the layers do not fit together".into(),
                    }
                })?;
            let loss = self.loss_fn.forward(logits, self.labels.clone());
            let value: f32 = loss.clone().into_scalar();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            self.model = Some(self.optim.step(self.lr, model, grads));
            Ok(Some(f64::from(value)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mnist_train;
    use crate::trajectory::{STEPS, Verdict, compare, losses};
    use crate::workloads::MAIN_STEP;

    #[test]
    fn the_peers_losses_match_kilns() {
        let data = mnist_train().unwrap();
        let adam = TrainSpec {
            opt: Opt::Adam,
            ..MAIN_STEP
        };
        let lenet = TrainSpec {
            net: Net::Builtin("lenet"),
            ..MAIN_STEP
        };
        for spec in [MAIN_STEP, adam, lenet] {
            let b = batch(&data, 0, spec.batch);
            let reference = losses(&mut spec.kiln(true, &b).unwrap(), STEPS).unwrap();
            for peer in Peer::ALL {
                let l = losses(&mut *peer.train(&spec, &b).unwrap(), STEPS).unwrap();
                let verdict = compare(&reference, &l);
                assert!(
                    matches!(verdict, Verdict::Match(_)),
                    "{} {}: {verdict:?}",
                    peer.name(),
                    spec.id()
                );
            }
        }
    }

    #[test]
    fn models_the_peers_do_not_build_are_left_out() {
        let lstm = TrainSpec {
            net: Net::Builtin("lstm"),
            ..MAIN_STEP
        };
        assert!(network(&lstm).is_none());
        let data = mnist_train().unwrap();
        assert!(Peer::Candle.engine(&Workload::Train(lstm), &data).is_none());
        assert!(
            Peer::Burn
                .engine(&Workload::Compile(MAIN_STEP), &data)
                .is_none()
        );
        assert!(Peer::Burn.train(&lstm, &batch(&data, 0, 64)).is_err());
    }
}
