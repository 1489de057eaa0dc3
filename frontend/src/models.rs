//! The built-in models, by name: what `kiln train --model`, `kiln dump mlp` and the tests
//! build.
//!
//! A built-in is a body (the layers from the input to the head) and a [`Task`] (the head's
//! width, the loss and the metrics), built for the example shape of its input, so one model
//! serves MNIST digits, images of any size and channel count, and rows of a table:
//! - input `x: f32[batch, ...]`, one example of [`Settings::input`] per row: `[channels,
//!   height, width]` images for the CNNs; the MLP and the linear models flatten what they get;
//!   the LSTM reads an image's rows (or a `[steps, features]` sequence) as its steps;
//! - the target: `labels: i32[batch]` (classes from 0) for [`Task::Classify`] and
//!   [`Task::Binary`], `y: f32[batch]` (real values) for [`Task::Regress`];
//! - in [`Mode::Train`], a model with random parts (dropout) also takes `step_seed: i32[]`, a new
//!   value each step;
//! - outputs `loss` (`f32[]`) and the task's metrics: `accuracy` for classification, `mse` (in
//!   the target's units) for regression; in [`Mode::Eval`] also `prediction` (`[batch]`: the
//!   class as `i32`, or the value) and, for classification, `probability` (`f32[batch]`, the
//!   model's probability of the class it predicts);
//! - state a model keeps between steps (batch norm's running statistics) is `state` updated
//!   by the graph in training mode and read in evaluation mode, under the same names.
//!
//! The models of the course, smallest first: `linear` (linear or logistic regression, as the
//! task says), `linreg` (on classes, linear regression onto one-hot targets: its loss is the
//! mean squared error), `logreg` (softmax regression), `mlp`, `lenet` (LeCun's LeNet-5 with
//! ReLU and max pooling), `inception` (a small CNN around one GoogLeNet block), `resnet` (a
//! small CNN of residual blocks with batch norm), `cnn` (the CNN of the course's Keras example,
//! made for 224x224 images: three 3x3 convolutions of 32, 64 and 128 filters, each with ReLU
//! and a 2x2 max pool, then dense 128), `vgg` (a small VGG for CIFAR-sized 32x32 images:
//! 3x3 convolutions of 64, 64, 128 and 128 filters, pooled after each pair, then dense 256),
//! `resnet18` (ResNet-18's layout with batch norm, as it is trained on 32x32 images: no
//! pooling stem) and `lstm` (an image's rows as a sequence). `lenet`,
//! `inception` and `resnet` are sized for a training step of about a millisecond at batch 64 on
//! two cores on MNIST.

use crate::layers::{Conv2d, Layers};
use crate::losses::{Reduction, accuracy, bce_with_logits, cross_entropy, mse};
use crate::{BuildError, GraphBuilder, Model, Tensor};
use kiln_compiler::DType;

pub use crate::layers::Mode;

/// The names [`builtin`] knows.
pub const BUILTINS: &[&str] = &[
    "linear",
    "linreg",
    "logreg",
    "mlp",
    "lenet",
    "inception",
    "resnet",
    "cnn",
    "vgg",
    "resnet18",
    "lstm",
];

/// What a model predicts, which fixes its head, its loss and its metrics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Task {
    /// One of `classes` classes (labels `0..classes`), by cross-entropy over as many logits.
    Classify {
        /// How many classes.
        classes: usize,
    },
    /// One of two classes (labels 0 and 1), by binary cross-entropy over one logit.
    Binary,
    /// A real value, by the mean squared error of the standardized target: the head predicts
    /// `(y - mean) / std`, and `prediction` and `mse` are in the target's own units.
    Regress {
        /// The training target's mean.
        mean: f64,
        /// The training target's standard deviation (positive).
        std: f64,
    },
}

impl Task {
    /// The width of the model's head.
    pub fn outputs(self) -> usize {
        match self {
            Task::Classify { classes } => classes,
            Task::Binary | Task::Regress { .. } => 1,
        }
    }

    /// The name of the target's data input: `labels` for classes, `y` for values.
    pub fn target(self) -> &'static str {
        match self {
            Task::Regress { .. } => "y",
            _ => "labels",
        }
    }
}

/// How to build a built-in model.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Rows per batch.
    pub batch: usize,
    /// Training or evaluation graph.
    pub mode: Mode,
    /// The hidden width (the MLP's hidden layer, the LSTM's state; 128 by default); `None`
    /// for the model's default. The other models have no single width and ignore it.
    pub width: Option<usize>,
    /// The shape of one example of `x`.
    pub input: Vec<usize>,
    /// What the model predicts.
    pub task: Task,
}

impl Default for Settings {
    /// MNIST's: batch 64, training mode, default width, `[1, 28, 28]` images, 10 classes.
    fn default() -> Settings {
        Settings {
            batch: 64,
            mode: Mode::Train,
            width: None,
            input: vec![1, 28, 28],
            task: Task::Classify { classes: 10 },
        }
    }
}

/// The built-in model called `name` built with `settings`, or `None` for an unknown name.
pub fn builtin(name: &str, settings: &Settings) -> Option<Result<Model, BuildError>> {
    let width = settings.width.unwrap_or(128);
    let out = settings.task.outputs();
    let body: &dyn Fn(&Layers, &Tensor) -> Tensor = match name {
        "linear" | "linreg" | "logreg" => &|nn, x| nn.linear("fc", &x.flatten_from(1), out),
        "mlp" => &|nn, x| mlp_body(nn, &x.flatten_from(1), &[width, out]),
        "lenet" => &|nn, x| lenet(nn, x, out),
        "inception" => &|nn, x| inception(nn, x, out),
        "resnet" => &|nn, x| resnet(nn, x, out),
        "cnn" => &|nn, x| cnn(nn, x, out),
        "vgg" => &|nn, x| vgg(nn, x, out),
        "resnet18" => &|nn, x| resnet18(nn, x, out),
        "lstm" => &|nn, x| lstm(nn, x, width, out),
        _ => return None,
    };
    // `linreg` on classes is the course's linear regression onto one-hot targets.
    let one_hot = name == "linreg" && matches!(settings.task, Task::Classify { .. });
    Some(model(name, settings, one_hot, body))
}

/// The graph of the module docs: `body` maps `x` to the head's `[batch, outputs]`; with
/// `one_hot`, classes are fitted by the squared error of the logits to one-hot rows.
fn model(
    name: &str,
    settings: &Settings,
    one_hot: bool,
    body: &dyn Fn(&Layers, &Tensor) -> Tensor,
) -> Result<Model, BuildError> {
    let b = GraphBuilder::new(name);
    let mut shape = vec![settings.batch];
    shape.extend(&settings.input);
    let x = b.input("x", DType::F32, &shape);
    let task = settings.task;
    let dtype = match task {
        Task::Regress { .. } => DType::F32,
        _ => DType::I32,
    };
    let target = b.input(task.target(), dtype, [settings.batch]);
    let head = body(&Layers::new(&b, settings.mode), &x);
    let eval = settings.mode == Mode::Eval;
    match task {
        Task::Classify { .. } => {
            let logits = head.named("logits");
            let loss = match one_hot {
                true => {
                    let classes = logits.shape().last().copied().unwrap_or(0);
                    mse(
                        &logits,
                        &target.one_hot(classes, DType::F32),
                        Reduction::Mean,
                    )
                }
                false => cross_entropy(&logits, &target, Reduction::Mean),
            };
            b.output("loss", &loss);
            b.output("accuracy", &accuracy(&logits, &target));
            b.output("logits", &logits);
            if eval {
                b.output("prediction", &logits.argmax(-1));
                let shifted = &logits - &logits.max_keepdims(&[-1]);
                b.output("probability", &shifted.exp().sum(&[-1]).recip());
            }
        }
        Task::Binary => {
            let logit = head.reshape(&[-1]).named("logit");
            let positive = target.cast(DType::F32);
            b.output("loss", &bce_with_logits(&logit, &positive, Reduction::Mean));
            let predicted = logit.gt(&logit.scalar_like(0.0)).cast(DType::I32);
            b.output(
                "accuracy",
                &predicted.eq(&target).cast(DType::F32).mean_all(),
            );
            if eval {
                b.output("prediction", &predicted);
                b.output("probability", &logit.abs().sigmoid());
            }
        }
        Task::Regress { mean, std } => {
            let z = head.reshape(&[-1]).named("z");
            let standardized = (&target - mean) * (1.0 / std);
            b.output("loss", &mse(&z, &standardized, Reduction::Mean));
            let prediction = &z * std + mean;
            b.output("mse", &mse(&prediction, &target, Reduction::Mean));
            if eval {
                b.output("prediction", &prediction);
            }
        }
    }
    b.finish_model()
}

/// A multilayer perceptron classifier over `batch` rows: `sizes` are the widths from the input
/// features to the classes, with ReLU between layers. Inputs `x: f32[batch, sizes[0]]` and
/// `labels: i32[batch]`; outputs `loss` (mean cross-entropy), `accuracy` and `logits`.
pub fn mlp(batch: usize, sizes: &[usize]) -> Result<Model, BuildError> {
    let features = sizes.first().copied().unwrap_or(0);
    let widths = sizes.get(1..).unwrap_or(&[]);
    let settings = Settings {
        batch,
        input: vec![features],
        task: Task::Classify {
            classes: widths.last().copied().unwrap_or(0),
        },
        ..Settings::default()
    };
    model("mlp", &settings, false, &|nn, x| mlp_body(nn, x, widths))
}

/// Fully connected layers of the given output widths, ReLU between them.
fn mlp_body(nn: &Layers, x: &Tensor, widths: &[usize]) -> Tensor {
    let mut h = x.clone();
    for (i, &width) in widths.iter().enumerate() {
        if i > 0 {
            h = h.relu();
        }
        h = nn.linear(&format!("fc{}", i + 1), &h, width);
    }
    h
}

/// LeNet-5 with ReLU and max pooling: conv 6@5x5 (padded to keep 28x28), pool, conv 16@5x5,
/// pool, then fully connected 400-120-84-10.
fn lenet(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let h = nn.conv2d("conv1", x, Conv2d::new(6, 5).padding(2));
    let h = h.relu().max_pool2d(2, 2, 0);
    let h = nn.conv2d("conv2", &h, Conv2d::new(16, 5));
    let h = h.relu().max_pool2d(2, 2, 0).flatten_from(1);
    let h = nn.linear("fc1", &h, 120).relu();
    let h = nn.linear("fc2", &h, 84).relu();
    nn.linear("fc3", &h, out)
}

/// The CNN of the course's Keras example: three unpadded ("valid") 3x3 convolutions of 32, 64
/// and 128 filters, each followed by ReLU and a 2x2 max pool (224x224 images become 26x26 maps,
/// MNIST's 28x28 become 1x1), flattened into a dense layer of 128 units with ReLU, and a linear
/// head.
fn cnn(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let mut h = x.clone();
    for (i, filters) in [32, 64, 128].into_iter().enumerate() {
        let conv = conv_relu(nn, &format!("conv{}", i + 1), &h, Conv2d::new(filters, 3));
        h = conv.max_pool2d(2, 2, 0);
    }
    let h = nn.linear("fc1", &h.flatten_from(1), 128).relu();
    nn.linear("fc2", &h, out)
}

/// A small VGG for CIFAR-sized images: two pairs of padded 3x3 convolutions (64 then 128
/// filters, each with ReLU), each pair followed by a 2x2 max pool, flattened into a dense
/// layer of 256 units with ReLU, and a linear head (parameters `conv1` to `conv4`, `fc1`,
/// `fc2`).
fn vgg(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let mut h = x.clone();
    for (i, filters) in [64, 64, 128, 128].into_iter().enumerate() {
        let conv = Conv2d::new(filters, 3).padding(1);
        h = conv_relu(nn, &format!("conv{}", i + 1), &h, conv);
        if i % 2 == 1 {
            h = h.max_pool2d(2, 2, 0);
        }
    }
    let h = nn.linear("fc1", &h.flatten_from(1), 256).relu();
    nn.linear("fc2", &h, out)
}

/// ResNet-18's layout as it is trained on 32x32 images: a 3x3 stem of 64 channels with batch
/// norm and no pooling, four stages of two residual blocks (64, 128, 256 and 512 channels;
/// the first block of each later stage strided by 2), global average pooling and a linear
/// head (parameters `stem`, `layer1.0` to `layer4.1`, `fc`).
fn resnet18(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let mut h = conv_bn(nn, "stem", x, 64, 1).relu();
    for (stage, channels) in [64, 128, 256, 512].into_iter().enumerate() {
        for block in 0..2 {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            h = residual(
                nn,
                &format!("layer{}.{block}", stage + 1),
                &h,
                channels,
                stride,
            );
        }
    }
    nn.linear("fc", &h.mean(&[2, 3]), out)
}

/// A convolution followed by ReLU.
fn conv_relu(nn: &Layers, name: &str, x: &Tensor, conv: Conv2d) -> Tensor {
    nn.conv2d(name, x, conv).relu()
}

/// A small GoogLeNet: a 3x3 stem (8 channels, pooled to 14x14), one inception block of four
/// parallel branches joined on channels (1x1: 8; 1x1 reduction to 8 then 3x3: 12; 1x1
/// reduction to 4 then 5x5: 4; 3x3 max pool then 1x1: 8), pooled to 7x7, and a linear
/// classifier behind dropout (p = 0.2, as GoogLeNet's classifier has).
fn inception(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let stem = conv_relu(nn, "stem", x, Conv2d::new(8, 3).padding(1));
    let h = stem.max_pool2d(2, 2, 0);
    let b1 = conv_relu(nn, "b1", &h, Conv2d::new(8, 1));
    let b3 = conv_relu(nn, "b3_reduce", &h, Conv2d::new(8, 1));
    let b3 = conv_relu(nn, "b3", &b3, Conv2d::new(12, 3).padding(1));
    let b5 = conv_relu(nn, "b5_reduce", &h, Conv2d::new(4, 1));
    let b5 = conv_relu(nn, "b5", &b5, Conv2d::new(4, 5).padding(2));
    let pool = conv_relu(nn, "pool_proj", &h.max_pool2d(3, 1, 1), Conv2d::new(8, 1));
    let block = b1.concat(&[&b3, &b5, &pool], 1);
    let h = block.max_pool2d(2, 2, 0).flatten_from(1);
    nn.linear("fc", &nn.dropout(&h, 0.2), out)
}

/// A 3x3 convolution without bias (batch norm follows it, and its shift would cancel one)
/// then batch norm.
fn conv_bn(nn: &Layers, name: &str, x: &Tensor, channels: usize, stride: usize) -> Tensor {
    let conv = Conv2d::new(channels, 3)
        .padding(1)
        .stride(stride)
        .bias(false);
    nn.batch_norm2d(&format!("{name}.bn"), &nn.conv2d(name, x, conv))
}

/// A residual block: two 3x3 convolutions with batch norm, added to the input (through a
/// strided 1x1 projection with batch norm when the shape changes), then ReLU.
fn residual(nn: &Layers, name: &str, x: &Tensor, channels: usize, stride: usize) -> Tensor {
    let h = conv_bn(nn, &format!("{name}.conv1"), x, channels, stride).relu();
    let h = conv_bn(nn, &format!("{name}.conv2"), &h, channels, 1);
    let shortcut = if stride == 1 && x.shape().get(1) == Some(&channels) {
        x.clone()
    } else {
        let proj = Conv2d::new(channels, 1).stride(stride).bias(false);
        let p = nn.conv2d(&format!("{name}.proj"), x, proj);
        nn.batch_norm2d(&format!("{name}.proj.bn"), &p)
    };
    (h + shortcut).relu()
}

/// A small ResNet: a 3x3 stem with batch norm (8 channels, pooled to 14x14), a residual block
/// at 14x14, a strided one to 16 channels at 7x7, and a linear classifier of the 16x7x7
/// features (global average pooling, as larger ResNets end, leaves a model this small 16
/// numbers to classify from: it trains to about 93% where this reaches 97%).
fn resnet(nn: &Layers, x: &Tensor, out: usize) -> Tensor {
    let h = conv_bn(nn, "stem", x, 8, 1).relu().max_pool2d(2, 2, 0);
    let h = residual(nn, "block1", &h, 8, 1);
    let h = residual(nn, "block2", &h, 16, 2);
    nn.linear("fc", &h.flatten_from(1), out)
}

/// An LSTM with `hidden` units reading a sequence, and a linear head on its last hidden
/// state: a `[steps, features]` example as it is, an image `[channels, height, width]` a row
/// at a time (`height` steps of `channels * width` values).
fn lstm(nn: &Layers, x: &Tensor, hidden: usize, out: usize) -> Tensor {
    let steps = match *x.shape() {
        [n, 1, h, w] => x.reshape(&[n as isize, h as isize, w as isize]),
        [n, c, h, w] => {
            (x.permute(&[0, 2, 1, 3])).reshape(&[n as isize, h as isize, (c * w) as isize])
        }
        _ => x.clone(),
    };
    nn.linear("fc", &nn.lstm("lstm", &steps, hidden).hidden, out)
}
