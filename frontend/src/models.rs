//! The built-in models, by name: what `kiln train --model`, `kiln dump mlp` and the tests
//! build.
//!
//! Every built-in is an MNIST classifier with one interface, so the trainer needs to know
//! nothing of a model but its name:
//! - inputs `x: f32[batch, 784]` (pixels scaled to `[0, 1]`, row-major 28x28; a model that
//!   wants images reshapes them itself) and `labels: i32[batch]` (digits 0..10);
//! - in [`Mode::Train`], a model with random parts (dropout) also takes `step_seed: i32[]`, a new
//!   value each step;
//! - outputs `loss` (mean cross-entropy, `f32[]`), `accuracy` (`f32[]`) and `logits`
//!   (`f32[batch, 10]`);
//! - state a model keeps between steps (batch norm's running statistics) is `state` updated
//!   by the graph in training mode and read in evaluation mode, under the same names.
//!
//! The models of the course, smallest first: `linreg` (linear regression onto one-hot
//! targets: its loss is the mean squared error, the one exception to cross-entropy), `logreg`
//! (softmax regression), `mlp`, `lenet` (LeCun's LeNet-5 with ReLU and max pooling),
//! `inception` (a small CNN around one GoogLeNet block), `resnet` (a small CNN of residual
//! blocks with batch norm) and `lstm` (the image's 28 rows as a sequence). The CNNs are sized
//! for a training step of about a millisecond at batch 64 on two cores.

use crate::layers::{Conv2d, Layers};
use crate::losses::{Reduction, accuracy, cross_entropy, mse};
use crate::{BuildError, GraphBuilder, Model, Tensor};
use kiln_compiler::DType;

pub use crate::layers::Mode;

/// The names [`builtin`] knows.
pub const BUILTINS: &[&str] = &[
    "linreg",
    "logreg",
    "mlp",
    "lenet",
    "inception",
    "resnet",
    "lstm",
];

/// Pixels per MNIST image.
const PIXELS: usize = 784;

/// Digit classes.
const CLASSES: usize = 10;

/// How to build a built-in model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Rows per batch.
    pub batch: usize,
    /// Training or evaluation graph.
    pub mode: Mode,
    /// The hidden width (the MLP's hidden layer, the LSTM's state; 128 by default); `None`
    /// for the model's default. The other models have no single width and ignore it.
    pub width: Option<usize>,
}

impl Default for Settings {
    /// Batch 64, training mode, default width.
    fn default() -> Settings {
        Settings {
            batch: 64,
            mode: Mode::Train,
            width: None,
        }
    }
}

/// The built-in model called `name` built with `settings`, or `None` for an unknown name.
pub fn builtin(name: &str, settings: &Settings) -> Option<Result<Model, BuildError>> {
    let width = settings.width.unwrap_or(128);
    let body: &dyn Fn(&Layers, &Tensor) -> Tensor = match name {
        "linreg" | "logreg" => &|nn, x| nn.linear("fc", x, CLASSES),
        "mlp" => &|nn, x| mlp_body(nn, x, &[width, CLASSES]),
        "lenet" => &lenet,
        "inception" => &inception,
        "resnet" => &resnet,
        "lstm" => &|nn, x| lstm(nn, x, width),
        _ => return None,
    };
    let loss = if name == "linreg" {
        Loss::SquaredError
    } else {
        Loss::CrossEntropy
    };
    let (batch, mode) = (settings.batch, settings.mode);
    Some(classifier(name, batch, mode, PIXELS, loss, body))
}

/// What a classifier minimizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Loss {
    /// Mean cross-entropy of the logits against the labels.
    CrossEntropy,
    /// Mean squared error of the logits against the labels' one-hot rows.
    SquaredError,
}

/// A classifier graph with the interface of the module docs: `body` maps `x: [batch,
/// features]` to the logits.
fn classifier(
    name: &str,
    batch: usize,
    mode: Mode,
    features: usize,
    loss: Loss,
    body: &dyn Fn(&Layers, &Tensor) -> Tensor,
) -> Result<Model, BuildError> {
    let b = GraphBuilder::new(name);
    let x = b.input("x", DType::F32, [batch, features]);
    let labels = b.input("labels", DType::I32, [batch]);
    let logits = body(&Layers::new(&b, mode), &x).named("logits");
    let loss = match loss {
        Loss::CrossEntropy => cross_entropy(&logits, &labels, Reduction::Mean),
        Loss::SquaredError => {
            let classes = logits.shape().last().copied().unwrap_or(0);
            mse(
                &logits,
                &labels.one_hot(classes, DType::F32),
                Reduction::Mean,
            )
        }
    };
    b.output("loss", &loss);
    b.output("accuracy", &accuracy(&logits, &labels));
    b.output("logits", &logits);
    b.finish_model()
}

/// A multilayer perceptron classifier over `batch` rows: `sizes` are the widths from the input
/// features to the classes, with ReLU between layers. Inputs `x: f32[batch, sizes[0]]` and
/// `labels: i32[batch]`; outputs `loss` (mean cross-entropy), `accuracy` and `logits`.
pub fn mlp(batch: usize, sizes: &[usize]) -> Result<Model, BuildError> {
    let features = sizes.first().copied().unwrap_or(0);
    let body = |nn: &Layers, x: &Tensor| mlp_body(nn, x, sizes.get(1..).unwrap_or(&[]));
    classifier(
        "mlp",
        batch,
        Mode::Train,
        features,
        Loss::CrossEntropy,
        &body,
    )
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

/// The batch of rows `x: [N, 784]` as one-channel images `[N, 1, 28, 28]`.
fn images(x: &Tensor) -> Tensor {
    x.reshape(&[-1, 1, 28, 28])
}

/// LeNet-5 with ReLU and max pooling: conv 6@5x5 (padded to keep 28x28), pool, conv 16@5x5,
/// pool, then fully connected 400-120-84-10.
fn lenet(nn: &Layers, x: &Tensor) -> Tensor {
    let h = nn.conv2d("conv1", &images(x), Conv2d::new(6, 5).padding(2));
    let h = h.relu().max_pool2d(2, 2, 0);
    let h = nn.conv2d("conv2", &h, Conv2d::new(16, 5));
    let h = h.relu().max_pool2d(2, 2, 0).flatten_from(1);
    let h = nn.linear("fc1", &h, 120).relu();
    let h = nn.linear("fc2", &h, 84).relu();
    nn.linear("fc3", &h, CLASSES)
}

/// A convolution followed by ReLU.
fn conv_relu(nn: &Layers, name: &str, x: &Tensor, conv: Conv2d) -> Tensor {
    nn.conv2d(name, x, conv).relu()
}

/// A small GoogLeNet: a 3x3 stem (8 channels, pooled to 14x14), one inception block of four
/// parallel branches joined on channels (1x1: 8; 1x1 reduction to 8 then 3x3: 12; 1x1
/// reduction to 4 then 5x5: 4; 3x3 max pool then 1x1: 8), pooled to 7x7, and a linear
/// classifier behind dropout (p = 0.2, as GoogLeNet's classifier has).
fn inception(nn: &Layers, x: &Tensor) -> Tensor {
    let stem = conv_relu(nn, "stem", &images(x), Conv2d::new(8, 3).padding(1));
    let h = stem.max_pool2d(2, 2, 0);
    let b1 = conv_relu(nn, "b1", &h, Conv2d::new(8, 1));
    let b3 = conv_relu(nn, "b3_reduce", &h, Conv2d::new(8, 1));
    let b3 = conv_relu(nn, "b3", &b3, Conv2d::new(12, 3).padding(1));
    let b5 = conv_relu(nn, "b5_reduce", &h, Conv2d::new(4, 1));
    let b5 = conv_relu(nn, "b5", &b5, Conv2d::new(4, 5).padding(2));
    let pool = conv_relu(nn, "pool_proj", &h.max_pool2d(3, 1, 1), Conv2d::new(8, 1));
    let block = b1.concat(&[&b3, &b5, &pool], 1);
    let h = block.max_pool2d(2, 2, 0).flatten_from(1);
    nn.linear("fc", &nn.dropout(&h, 0.2), CLASSES)
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
fn resnet(nn: &Layers, x: &Tensor) -> Tensor {
    let h = conv_bn(nn, "stem", &images(x), 8, 1)
        .relu()
        .max_pool2d(2, 2, 0);
    let h = residual(nn, "block1", &h, 8, 1);
    let h = residual(nn, "block2", &h, 16, 2);
    nn.linear("fc", &h.flatten_from(1), CLASSES)
}

/// An LSTM reading the image a row at a time (28 steps of 28 pixels) with `hidden` units, and
/// a linear classifier of its last hidden state.
fn lstm(nn: &Layers, x: &Tensor, hidden: usize) -> Tensor {
    let rows = x.reshape(&[-1, 28, 28]);
    nn.linear("fc", &nn.lstm("lstm", &rows, hidden).hidden, CLASSES)
}
