//! Every workload, defined once, and how kiln runs it.
//!
//! A [`Workload`] names what is measured; [`Workload::kiln`] builds it as a kiln [`Engine`],
//! fused or unfused. The criterion benches, the report and the peers' checks all start here,
//! so a workload means the same thing everywhere.

use crate::data::{Batch, batch, values};
use crate::harness::Config;
use crate::{BenchError, Engine};
use kiln_compiler::optim::Optimizer;
use kiln_compiler::train::{gradients, train_step};
use kiln_compiler::{Array, DType, Graph};
use kiln_frontend::GraphBuilder;
use kiln_frontend::layers::Layers;
use kiln_frontend::losses::{Reduction, cross_entropy};
use kiln_frontend::models::{BUILTINS, Mode, Settings, builtin, mlp};
use kiln_frontend::{Model, Tensor};
use kiln_runtime::data::Dataset;
use kiln_runtime::{Executable, Options};

/// The seed of every model's initial parameters.
pub const SEED: u64 = 0;

/// The optimizer of a training-step workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// SGD with learning rate 0.1 (the main job's).
    Sgd,
    /// SGD with learning rate 0.01: the image models' rows. At 0.1 their losses on the fixed
    /// batch jump within the first steps (the ResNet's from 2.5 to 5.6 at step 3, the Keras
    /// CNN's from 1.7 to 2.7 at step 4) and every engine's f32 trajectory parts from the
    /// others' by more than the check's tolerance a few steps later.
    SgdSlow,
    /// Adam with learning rate 1e-3, betas 0.9 and 0.999, eps 1e-8.
    Adam,
}

impl Opt {
    /// kiln's optimizer with this workload's hyperparameters.
    pub fn optimizer(self) -> Optimizer {
        match self {
            Opt::Sgd | Opt::SgdSlow => Optimizer::sgd(self.lr()),
            Opt::Adam => Optimizer::adam(self.lr()),
        }
    }

    /// The learning rate.
    pub fn lr(self) -> f64 {
        match self {
            Opt::Sgd => 0.1,
            Opt::SgdSlow => 0.01,
            Opt::Adam => 1e-3,
        }
    }

    /// `sgd` or `adam`.
    pub fn name(self) -> &'static str {
        self.optimizer().name()
    }
}

/// The model of a training-step workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// kiln's MLP with these widths, from the 784 pixels to the 10 classes (ReLU between).
    Mlp(&'static [usize]),
    /// A built-in model of `kiln_frontend::models` at its default width.
    Builtin(&'static str),
    /// The LSTM of the layers issue's benchmark: 32 steps of 32 features (the digit padded
    /// with zeros to 32x32, a row per step), 128 hidden units, a linear classifier of the
    /// last hidden state.
    Lstm32,
    /// The CNN of the course's Keras example (kiln's built-in `cnn`: conv 32, 64, 128 of 3x3
    /// unpadded, each with ReLU and a 2x2 max pool; dense 128 with ReLU; dense 10) on
    /// generated RGB images of `side` x `side`.
    KerasCnn {
        /// The images' height and width (224 in the report).
        side: usize,
    },
    /// The CIFAR-sized CNN (the built-in `vgg`): conv 64, 64, 2x2 max pool, conv 128, 128, 2x2 max pool (all 3x3
    /// with padding 1, each with ReLU); dense 256 with ReLU; dense 10; on generated RGB
    /// images of `side` x `side`.
    CifarCnn {
        /// The images' height and width (32 in the report; a multiple of 4).
        side: usize,
    },
    /// ResNet-18's layout for small images (the built-in `resnet18`), batch norm in training
    /// mode: a 3x3 stem of 64
    /// channels (stride 1, no bias) with batch norm and ReLU; four stages of two basic blocks
    /// of 64, 128, 256 and 512 channels (the first block of stages 2 to 4 with stride 2 and a
    /// 1x1 stride-2 convolution with batch norm as its shortcut); global average pooling;
    /// linear 10; on generated RGB images of `side` x `side`.
    ResNet18 {
        /// The images' height and width (32 in the report).
        side: usize,
    },
}

impl Net {
    /// A short name: `mlp_784_128_10`, `lenet`.
    pub fn id(self) -> String {
        match self {
            Net::Mlp(sizes) => format!("mlp_{}", join(sizes, "_")),
            Net::Builtin(name) => name.to_string(),
            Net::Lstm32 => "lstm_32x32".into(),
            Net::KerasCnn { side } => format!("keras_cnn_{side}"),
            Net::CifarCnn { side } => format!("cifar_cnn_{side}"),
            Net::ResNet18 { side } => format!("resnet18_{side}"),
        }
    }

    /// The shape of one generated image, `[3, side, side]`, for the models trained on
    /// generated images; `None` for those trained on MNIST.
    pub fn image(self) -> Option<[usize; 3]> {
        match self {
            Net::KerasCnn { side } | Net::CifarCnn { side } | Net::ResNet18 { side } => {
                Some([3, side, side])
            }
            _ => None,
        }
    }

    /// A name for people: `MLP 784-128-10`, `lenet`.
    pub fn title(self) -> String {
        match self {
            Net::Mlp(sizes) => format!("MLP {}", join(sizes, "-")),
            Net::Builtin("lenet") => "LeNet".into(),
            Net::Builtin("lstm") => "LSTM".into(),
            Net::Builtin(name) => name.into(),
            Net::Lstm32 => "LSTM (input 32, hidden 128, 32 steps)".into(),
            Net::KerasCnn { side } => format!("Keras CNN {side}x{side}"),
            Net::CifarCnn { side } => format!("CIFAR CNN {side}x{side}"),
            Net::ResNet18 { side } => format!("ResNet-18 layout {side}x{side}"),
        }
    }
}

fn join(sizes: &[usize], sep: &str) -> String {
    let parts: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
    parts.join(sep)
}

/// A training step: a model, a batch size and an optimizer, on MNIST or (the image models of
/// [`Net::image`]) on generated images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainSpec {
    /// The model.
    pub net: Net,
    /// Rows per batch.
    pub batch: usize,
    /// The optimizer.
    pub opt: Opt,
}

impl TrainSpec {
    /// `mlp_784_128_10_b64_sgd`.
    pub fn id(&self) -> String {
        format!("{}_b{}_{}", self.net.id(), self.batch, self.opt.name())
    }

    /// `MLP 784-128-10 training step, batch 64, SGD`.
    pub fn title(&self) -> String {
        let opt = match self.opt {
            Opt::Sgd => "SGD lr 0.1",
            Opt::SgdSlow => "SGD lr 0.01",
            Opt::Adam => "Adam lr 1e-3",
        };
        format!(
            "{} training step, batch {}, {opt}",
            self.net.title(),
            self.batch
        )
    }

    /// The model (forward pass, loss and metrics).
    pub fn model(&self) -> Result<Model, BenchError> {
        let built = match self.net {
            Net::Mlp(sizes) => mlp(self.batch, sizes),
            Net::Builtin(name) => {
                let settings = Settings {
                    batch: self.batch,
                    mode: Mode::Train,
                    ..Settings::default()
                };
                builtin(name, &settings)
                    .ok_or_else(|| BenchError::build(name, "no such built-in model"))?
            }
            Net::Lstm32 => lstm_32x32(self.batch),
            Net::KerasCnn { side } | Net::CifarCnn { side } | Net::ResNet18 { side } => {
                let name = match self.net {
                    Net::KerasCnn { .. } => "cnn",
                    Net::CifarCnn { .. } => "vgg",
                    _ => "resnet18",
                };
                let settings = Settings {
                    batch: self.batch,
                    mode: Mode::Train,
                    input: vec![3, side, side],
                    ..Settings::default()
                };
                builtin(name, &settings)
                    .ok_or_else(|| BenchError::build(name, "no such built-in model"))?
            }
        };
        built.map_err(|e| BenchError::build(self.id(), e))
    }

    /// The model's initial parameters (drawn with [`SEED`]), by name: what every engine
    /// starts from.
    pub fn initial_params(&self) -> Result<Vec<(String, Array)>, BenchError> {
        let model = self.model()?;
        Ok(model.initial_values(&model.graph, SEED))
    }

    /// The whole training step as one graph, and the model it came from.
    pub fn step_graph(&self) -> Result<(Model, Graph), BenchError> {
        let model = self.model()?;
        let step = train_step(&model.graph, "loss", &self.opt.optimizer())
            .map_err(|e| BenchError::build(self.id(), e))?;
        Ok((model, step))
    }

    /// The batch every engine trains on: the first `batch` rows of `data` (MNIST), or for
    /// the image models [`generated_images`].
    pub fn data(&self, data: &Dataset) -> Batch {
        match self.net.image() {
            Some(image) => generated_images(self.batch, image.iter().product(), SEED),
            None => batch(data, 0, self.batch),
        }
    }

    /// The training step compiled by kiln, initialized with [`SEED`], bound to `batch`.
    pub fn kiln(&self, fuse: bool, batch: &Batch) -> Result<KilnProgram, BenchError> {
        let (model, step) = self.step_graph()?;
        let state = model.initial_values(&step, SEED);
        let data = self.step_inputs(&step, batch)?;
        KilnProgram::new(&self.id(), &step, fuse, data, &state, true)
    }

    /// The data inputs of the training step `step` (this spec's, or one rank's share of it)
    /// on `batch`: `x`, `labels`, `step_seed` and the optimizer's hyperparameters.
    pub fn step_inputs(
        &self,
        step: &Graph,
        batch: &Batch,
    ) -> Result<Vec<(String, Array)>, BenchError> {
        let mut data = batch_inputs(step, batch).map_err(|e| BenchError::build(self.id(), e))?;
        data.push(("step_seed".into(), Array::scalar(DType::I32, 0.0)));
        for (name, value) in self.opt.optimizer().hyperparameters() {
            data.push((name.into(), Array::scalar(DType::F32, value)));
        }
        Ok(data)
    }
}

/// `rows` generated images of `features` values each, every value in `[0, 1)`, and their
/// labels in `0..10`, drawn from `seed` (xorshift): the same batch on every run.
pub fn generated_images(rows: usize, features: usize, seed: u64) -> Batch {
    let x = (values(rows * features, seed.wrapping_add(100)).into_iter())
        .map(|v| (v + 1.0) * 0.5)
        .map(|v| if v < 1.0 { v } else { 0.0 })
        .collect();
    let labels = (values(rows, seed.wrapping_add(101)).into_iter())
        .map(|v| (((v + 1.0) * 5.0) as i32).clamp(0, 9))
        .collect();
    Batch { x, labels }
}

/// `x` and `labels` of `batch` as kiln arrays, `x` in the shape of the graph `g`'s input `x`
/// (`[rows, 784]` for the MLPs, `[rows, 1, 28, 28]` for the built-in models): the same
/// row-major pixels whatever the shape.
fn batch_inputs(g: &Graph, batch: &Batch) -> Result<Vec<(String, Array)>, String> {
    let rows = batch.rows();
    let x_type = (g.input("x").map(|id| &g.node(id).ty)).ok_or("the graph has no input `x`")?;
    let x = Array::from_f32(&x_type.shape, batch.x.clone()).map_err(|_| {
        format!(
            "a batch of {rows} rows of {} values does not fit `x: {x_type}`",
            batch.features()
        )
    })?;
    let labels = Array::from_i32([rows], batch.labels.clone()).map_err(|e| e.to_string())?;
    Ok(vec![("x".into(), x), ("labels".into(), labels)])
}

/// What one iteration processes, for a throughput figure beside its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throughput {
    /// Bytes read and written (GiB/s).
    Bytes(u64),
    /// Floating-point operations (GFLOP/s).
    Flops(u64),
}

/// One thing measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `tanh(x * a + b) * sigmoid(x) + relu(x)` over `n` f32 elements.
    Chain {
        /// Elements.
        n: usize,
    },
    /// Mean cross-entropy of softmax over `[rows, classes]` logits, forward and the gradient
    /// with respect to the logits.
    SoftmaxXent {
        /// Rows.
        rows: usize,
        /// Classes.
        classes: usize,
    },
    /// A matrix product `[m, k] x [k, n]` through kiln's `dot`.
    Gemm {
        /// Rows of the result.
        m: usize,
        /// The contracted extent.
        k: usize,
        /// Columns of the result.
        n: usize,
    },
    /// One training step (forward, backward, update) on a fixed MNIST batch.
    Train(TrainSpec),
    /// Compiling a training step: building the model's graph, differentiating it, appending
    /// the optimizer, optimizing, fusing, planning memory and generating code.
    Compile(TrainSpec),
}

/// The training steps of the MLPs: both sizes, both batches, both optimizers.
fn mlp_specs() -> Vec<TrainSpec> {
    const SIZES: [&[usize]; 2] = [&[784, 128, 10], &[784, 512, 256, 10]];
    let mut specs = Vec::new();
    for sizes in SIZES {
        for batch in [64, 256] {
            for opt in [Opt::Sgd, Opt::Adam] {
                specs.push(TrainSpec {
                    net: Net::Mlp(sizes),
                    batch,
                    opt,
                });
            }
        }
    }
    specs
}

/// The training steps of the built-in LeNet and LSTM at batch 64 with SGD, for those the
/// frontend has, and of [`Net::Lstm32`] at batch 32.
fn builtin_specs() -> Vec<TrainSpec> {
    let mut specs: Vec<TrainSpec> = (["lenet", "lstm"].into_iter())
        .filter(|name| BUILTINS.contains(name))
        .map(|name| TrainSpec {
            net: Net::Builtin(name),
            batch: 64,
            opt: Opt::Sgd,
        })
        .collect();
    specs.push(TrainSpec {
        net: Net::Lstm32,
        batch: 32,
        opt: Opt::Sgd,
    });
    specs
}

/// The model of [`Net::Lstm32`] over `batch` MNIST digits, with the built-in models'
/// interface (`x`, `labels`, `loss`).
fn lstm_32x32(batch: usize) -> Result<Model, kiln_frontend::BuildError> {
    let b = GraphBuilder::new("lstm_32x32");
    let x = b.input("x", DType::F32, [batch, 784]);
    let labels = b.input("labels", DType::I32, [batch]);
    let nn = Layers::new(&b, Mode::Train);
    let rows = x.reshape(&[-1, 28, 28]).pad(&[0, 2, 2], &[0, 2, 2], 0.0);
    let logits = nn.linear("fc", &nn.lstm("lstm", &rows, 128).hidden, 10);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    b.finish_model()
}

/// The training steps on generated images: the Keras CNN at 224x224 (batch 32 and 8), the
/// CIFAR CNN and the small ResNet at 32x32 (batch 32), all with SGD at 0.01
/// ([`Opt::SgdSlow`]).
fn image_specs() -> Vec<TrainSpec> {
    [
        (Net::KerasCnn { side: 224 }, 32),
        (Net::KerasCnn { side: 224 }, 8),
        (Net::CifarCnn { side: 32 }, 32),
        (Net::ResNet18 { side: 32 }, 32),
    ]
    .map(|(net, batch)| TrainSpec {
        net,
        batch,
        opt: Opt::SgdSlow,
    })
    .to_vec()
}

/// Every workload, in the report's order.
pub fn all() -> Vec<Workload> {
    let mut w = vec![
        Workload::Chain { n: 1 << 20 },
        Workload::Chain { n: 1 << 24 },
        Workload::SoftmaxXent {
            rows: 256,
            classes: 1000,
        },
    ];
    let specs: Vec<TrainSpec> = (mlp_specs().into_iter())
        .chain(builtin_specs())
        .chain(image_specs())
        .collect();
    w.extend(specs.iter().map(|&s| Workload::Train(s)));
    w.extend(
        [(128, 784, 512), (512, 512, 512), (2048, 2048, 2048)].map(|(m, k, n)| Workload::Gemm {
            m,
            k,
            n,
        }),
    );
    w.extend(specs.iter().map(|&s| Workload::Compile(s)));
    w
}

/// The batch sizes of the report's scaling figure.
pub const SCALING_BATCHES: [usize; 7] = [1, 2, 4, 8, 16, 32, 64];

/// The training steps of the report's scaling figure: the CIFAR CNN at each of
/// [`SCALING_BATCHES`], with SGD.
pub fn scaling_specs() -> Vec<TrainSpec> {
    (SCALING_BATCHES.iter())
        .map(|&batch| TrainSpec {
            net: Net::CifarCnn { side: 32 },
            batch,
            opt: Opt::SgdSlow,
        })
        .collect()
}

/// The workload whose id is `id`: one of [`all`], or a training step of the scaling figure.
pub fn by_id(id: &str) -> Option<Workload> {
    let scaling = scaling_specs().into_iter().map(Workload::Train);
    all().into_iter().chain(scaling).find(|w| w.id() == id)
}

/// The MLP 784-128-10 training step at batch 64 with SGD: the main job, the one every peer
/// runs.
pub const MAIN_STEP: TrainSpec = TrainSpec {
    net: Net::Mlp(&[784, 128, 10]),
    batch: 64,
    opt: Opt::Sgd,
};

/// The training run whose peak memory is measured: MLP 784-512-256-10, batch 256, SGD.
pub const MEMORY_STEP: TrainSpec = TrainSpec {
    net: Net::Mlp(&[784, 512, 256, 10]),
    batch: 256,
    opt: Opt::Sgd,
};

impl Workload {
    /// A short name, unique among the workloads: file names and JSON.
    pub fn id(&self) -> String {
        match self {
            Workload::Chain { n } => format!("chain_{}m", n >> 20),
            Workload::SoftmaxXent { rows, classes } => format!("softmax_xent_{rows}x{classes}"),
            Workload::Gemm { m, k, n } => format!("gemm_{m}x{k}x{n}"),
            Workload::Train(s) => format!("train_{}", s.id()),
            Workload::Compile(s) => format!("compile_{}", s.id()),
        }
    }

    /// A name for people.
    pub fn title(&self) -> String {
        match self {
            Workload::Chain { n } => format!(
                "elementwise chain tanh(x*a+b)*sigmoid(x)+relu(x), {}M f32",
                n >> 20
            ),
            Workload::SoftmaxXent { rows, classes } => {
                format!("softmax + cross-entropy, forward and backward, [{rows},{classes}]")
            }
            Workload::Gemm { m, k, n } => format!("GEMM {m}x{k} times {k}x{n}, f32"),
            Workload::Train(s) => s.title(),
            Workload::Compile(s) => format!("compiling the {}", s.title()),
        }
    }

    /// What one iteration processes, if a rate says more than a time.
    pub fn throughput(&self) -> Option<Throughput> {
        match *self {
            // One 4-byte read and one 4-byte write per element.
            Workload::Chain { n } => Some(Throughput::Bytes(8 * n as u64)),
            Workload::Gemm { m, k, n } => Some(Throughput::Flops(2 * (m * k * n) as u64)),
            _ => None,
        }
    }

    /// Whether the report runs kiln unfused on it: not on the training steps of the image
    /// models, where one kernel per primitive would take many times the fused step's time
    /// and memory and tell nothing new.
    pub fn runs_unfused(&self) -> bool {
        !matches!(self, Workload::Train(s) if s.net.image().is_some())
    }

    /// At most how many samples (rounds) the report takes of it: the large training steps,
    /// which take from a tenth of a second to seconds per step in every engine, get few.
    pub fn max_samples(&self) -> Option<usize> {
        let Workload::Train(s) = self else {
            return None;
        };
        match s.net {
            Net::KerasCnn { side } if side >= 128 && s.batch >= 16 => Some(5),
            Net::KerasCnn { .. } | Net::CifarCnn { .. } | Net::ResNet18 { .. } => Some(10),
            _ => None,
        }
    }

    /// `config` with [`Workload::max_samples`] applied.
    pub fn config(&self, config: &Config) -> Config {
        Config {
            samples: self
                .max_samples()
                .map_or(config.samples, |m| config.samples.min(m)),
            ..*config
        }
    }

    /// The largest relative difference accepted between a peer's losses and kiln's
    /// ([`trajectory::TOLERANCE`] but for the ResNet). The ResNet-18 layout's f32 losses
    /// part from one engine to the next by more than that after 5 steps at any learning rate
    /// tried (0.1 to 0.005), the peers among themselves as much as against kiln (SGD 0.01,
    /// step 6: JAX 0.28742, PyTorch eager 0.28670, kiln 0.28656, 2.5e-3 between the two
    /// peers), and PyTorch's own f32 losses part from its f64 ones by 2.4e-3: it gets 5e-3.
    pub fn tolerance(&self) -> f64 {
        match self {
            Workload::Train(s) if matches!(s.net, Net::ResNet18 { .. }) => 5e-3,
            _ => crate::trajectory::TOLERANCE,
        }
    }

    /// Whether the report measures each engine's peak resident memory while it runs this
    /// workload (in a process of its own): the training steps of the image models and the
    /// LSTMs.
    pub fn measures_peak_memory(&self) -> bool {
        matches!(self, Workload::Train(s)
            if s.net.image().is_some() || matches!(s.net, Net::Builtin("lstm") | Net::Lstm32))
    }

    /// The training step this workload runs or compiles, if any.
    pub fn train_spec(&self) -> Option<TrainSpec> {
        match *self {
            Workload::Train(s) | Workload::Compile(s) => Some(s),
            _ => None,
        }
    }

    /// The graph kiln compiles for this workload (a training step's whole step graph).
    pub fn graph(&self) -> Result<Graph, BenchError> {
        match *self {
            Workload::Chain { n } => chain_graph(n),
            Workload::SoftmaxXent { rows, classes } => softmax_xent_graph(rows, classes),
            Workload::Gemm { m, k, n } => gemm_graph(m, k, n),
            Workload::Train(s) | Workload::Compile(s) => Ok(s.step_graph()?.1),
        }
    }

    /// This workload as kiln runs it, fused or not; training steps on the first batch of
    /// `data`.
    pub fn kiln(&self, fuse: bool, data: &Dataset) -> Result<Box<dyn Engine>, BenchError> {
        let id = self.id();
        let no_state: &[(String, Array)] = &[];
        Ok(match *self {
            Workload::Chain { n } => {
                let inputs = vec![
                    ("x".into(), f32_array(&[n], 1)),
                    ("a".into(), Array::scalar(DType::F32, 0.5)),
                    ("b".into(), Array::scalar(DType::F32, 0.1)),
                ];
                Box::new(KilnProgram::new(
                    &id,
                    &chain_graph(n)?,
                    fuse,
                    inputs,
                    no_state,
                    false,
                )?)
            }
            Workload::SoftmaxXent { rows, classes } => {
                let labels = (0..rows).map(|i| (i * 7 % classes) as i32).collect();
                let inputs = vec![
                    ("logits".into(), f32_array(&[rows, classes], 2)),
                    ("labels".into(), i32_array(rows, labels)),
                ];
                let g = softmax_xent_graph(rows, classes)?;
                Box::new(KilnProgram::new(&id, &g, fuse, inputs, no_state, false)?)
            }
            Workload::Gemm { m, k, n } => {
                let inputs = vec![
                    ("a".into(), f32_array(&[m, k], 4)),
                    ("b".into(), f32_array(&[k, n], 5)),
                ];
                let g = gemm_graph(m, k, n)?;
                Box::new(KilnProgram::new(&id, &g, fuse, inputs, no_state, false)?)
            }
            Workload::Train(s) => Box::new(s.kiln(fuse, &s.data(data))?),
            Workload::Compile(spec) => Box::new(CompileStep { spec, fuse }),
        })
    }
}

/// Deterministic values of shape `shape` (see [`values`]).
pub fn f32_array(shape: &[usize], seed: u64) -> Array {
    let n = shape.iter().product();
    Array::from_f32(shape, values(n, seed)).expect("one value per element")
}

fn i32_array(n: usize, v: Vec<i32>) -> Array {
    Array::from_i32([n], v).expect("one value per element")
}

/// The graph of [`Workload::Chain`]: inputs `x: f32[n]`, `a`, `b` (scalars), output `y`.
pub fn chain_graph(n: usize) -> Result<Graph, BenchError> {
    let b = GraphBuilder::new("chain");
    let x = b.input("x", DType::F32, [n]);
    let a = b.input("a", DType::F32, []);
    let c = b.input("b", DType::F32, []);
    let y = (&x * &a + &c).tanh() * x.sigmoid() + x.relu();
    b.output("y", &y);
    b.finish().map_err(|e| BenchError::build("chain", e))
}

/// The graph of [`Workload::SoftmaxXent`]: inputs `logits`, `labels`; outputs `loss` and the
/// gradient of `loss` with respect to `logits`.
pub fn softmax_xent_graph(rows: usize, classes: usize) -> Result<Graph, BenchError> {
    let b = GraphBuilder::new("softmax_xent");
    let logits = b.input("logits", DType::F32, [rows, classes]);
    let labels = b.input("labels", DType::I32, [rows]);
    b.output("loss", &cross_entropy(&logits, &labels, Reduction::Mean));
    let g = b
        .finish()
        .map_err(|e| BenchError::build("softmax_xent", e))?;
    gradients(&g, "loss", &["logits"]).map_err(|e| BenchError::build("softmax_xent", e))
}

/// The graph of [`Workload::Gemm`]: inputs `a: f32[m, k]`, `b: f32[k, n]`, output `c`.
pub fn gemm_graph(m: usize, k: usize, n: usize) -> Result<Graph, BenchError> {
    let b = GraphBuilder::new("gemm");
    let x: Tensor = b.input("a", DType::F32, [m, k]);
    let y = b.input("b", DType::F32, [k, n]);
    b.output("c", &x.matmul(&y));
    b.finish().map_err(|e| BenchError::build("gemm", e))
}

/// Compile options: optimized, fused or not, on every core.
fn options(fuse: bool) -> Options {
    Options {
        fuse,
        ..Options::default()
    }
}

/// A compiled kiln program with its data inputs bound, in the order it takes them.
pub struct KilnProgram {
    exe: Executable,
    inputs: Vec<(String, Array)>,
    loss: bool,
}

impl KilnProgram {
    /// Compiles `g`, sets its state from `state` and binds its data inputs from `data` (by
    /// name; unused entries are ignored). With `loss`, each run reads the scalar output `loss`.
    pub fn new(
        what: &str,
        g: &Graph,
        fuse: bool,
        mut data: Vec<(String, Array)>,
        state: &[(String, Array)],
        loss: bool,
    ) -> Result<KilnProgram, BenchError> {
        let mut exe =
            Executable::compile(g, &options(fuse)).map_err(|e| BenchError::build(what, e))?;
        for (name, value) in state {
            exe.set_state(name, value)
                .map_err(|e| BenchError::build(what, e))?;
        }
        let inputs = (exe.input_names().into_iter())
            .map(|(name, _)| {
                let i = (data.iter().position(|(n, _)| *n == name))
                    .ok_or_else(|| BenchError::build(what, format!("no value for `{name}`")))?;
                Ok(data.swap_remove(i))
            })
            .collect::<Result<_, BenchError>>()?;
        Ok(KilnProgram { exe, inputs, loss })
    }

    /// The compiled program, for its statistics.
    pub fn executable(&self) -> &Executable {
        &self.exe
    }
}

impl Engine for KilnProgram {
    fn run(&mut self) -> Result<Option<f64>, BenchError> {
        let args: Vec<&Array> = self.inputs.iter().map(|(_, a)| a).collect();
        self.exe.execute_ordered(&args)?;
        Ok(if self.loss {
            self.exe.scalar_output("loss")
        } else {
            None
        })
    }

    fn kiln_executable(&mut self) -> Option<&mut Executable> {
        Some(&mut self.exe)
    }
}

/// [`Workload::Compile`] as an engine: each run builds and compiles the step anew.
struct CompileStep {
    spec: TrainSpec,
    fuse: bool,
}

impl Engine for CompileStep {
    fn run(&mut self) -> Result<Option<f64>, BenchError> {
        let (_, step) = self.spec.step_graph()?;
        let exe = Executable::compile(&step, &options(self.fuse))
            .map_err(|e| BenchError::build(self.spec.id(), e))?;
        std::hint::black_box(exe.stats().loops);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::mnist_train;

    #[test]
    fn ids_are_unique() {
        let ids: Vec<String> = all().iter().map(Workload::id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "{ids:?}");
        assert!(ids.contains(&"train_mlp_784_128_10_b64_sgd".to_string()));
        for id in ["train_keras_cnn_224_b32_sgd", "train_resnet18_32_b32_sgd"] {
            assert!(ids.contains(&id.to_string()), "{id}");
        }
        // The scaling figure's steps are found by id too; its batch 32 is the report's row.
        let scaling: Vec<String> = (scaling_specs().into_iter())
            .map(|s| Workload::Train(s).id())
            .collect();
        assert_eq!(scaling.len(), SCALING_BATCHES.len());
        for id in ids.iter().chain(&scaling) {
            assert_eq!(by_id(id).map(|w| w.id()).as_ref(), Some(id));
        }
        assert!(ids.contains(&scaling[5]));
        assert_eq!(by_id("no such workload"), None);
    }

    #[test]
    fn generated_images_are_reproducible_and_in_range() {
        let b = generated_images(16, 3 * 8 * 8, SEED);
        assert_eq!(b, generated_images(16, 3 * 8 * 8, SEED));
        assert_eq!((b.rows(), b.features()), (16, 192));
        assert!(b.x.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(b.labels.iter().all(|l| (0..10).contains(l)));
        assert!(b.labels.iter().any(|&l| l != b.labels[0]), "{:?}", b.labels);
    }

    #[test]
    fn the_image_models_train_on_small_images() {
        let data = mnist_train().unwrap();
        let nets = [
            Net::KerasCnn { side: 32 },
            Net::CifarCnn { side: 8 },
            Net::ResNet18 { side: 8 },
        ];
        for net in nets {
            let spec = TrainSpec {
                net,
                batch: 2,
                opt: Opt::SgdSlow,
            };
            let w = Workload::Train(spec);
            assert!(!w.runs_unfused() && w.measures_peak_memory(), "{}", w.id());
            let mut e = w.kiln(true, &data).unwrap();
            let first = e.run().unwrap().unwrap();
            // Ten classes from small initial weights: a loss near ln 10.
            assert!((first - 10f64.ln()).abs() < 0.5, "{}: {first}", w.id());
            assert!(e.run().unwrap().unwrap().is_finite(), "{}", w.id());
        }
    }

    #[test]
    fn fused_and_unfused_train_steps_agree() {
        let data = mnist_train().unwrap();
        let b = batch(&data, 0, MAIN_STEP.batch);
        let mut fused = MAIN_STEP.kiln(true, &b).unwrap();
        let mut unfused = MAIN_STEP.kiln(false, &b).unwrap();
        for _ in 0..3 {
            let (f, u) = (
                fused.run().unwrap().unwrap(),
                unfused.run().unwrap().unwrap(),
            );
            assert!((f - u).abs() < 1e-4, "{f} {u}");
        }
    }

    #[test]
    fn each_model_gets_the_batch_in_the_shape_of_its_input() {
        let data = mnist_train().unwrap();
        let b = batch(&data, 0, 64);
        let cases: [(Net, &[usize]); 3] = [
            (Net::Mlp(&[784, 128, 10]), &[64, 784]),
            (Net::Builtin("lenet"), &[64, 1, 28, 28]),
            (Net::Lstm32, &[64, 784]),
        ];
        for (net, shape) in cases {
            let spec = TrainSpec { net, ..MAIN_STEP };
            let mut program = spec.kiln(true, &b).unwrap();
            let x = (program.inputs.iter().find(|(n, _)| n == "x")).unwrap();
            assert_eq!(x.1.shape(), shape, "{}", spec.id());
            assert_eq!(x.1.as_f32().unwrap(), b.x.as_slice(), "{}", spec.id());
            assert!(program.run().unwrap().unwrap().is_finite(), "{}", spec.id());
        }
    }

    #[test]
    fn the_small_workloads_run() {
        let data = mnist_train().unwrap();
        let small = [
            Workload::SoftmaxXent {
                rows: 4,
                classes: 10,
            },
            Workload::Gemm { m: 3, k: 5, n: 2 },
            Workload::Chain { n: 100 },
            Workload::Compile(MAIN_STEP),
        ];
        for w in small {
            let mut e = w.kiln(true, &data).unwrap();
            assert_eq!(e.run().unwrap(), None, "{}", w.id());
        }
    }
}
