//! Layers: the building blocks of the course's models, each a composition of primitives.
//!
//! Layers with parameters, state or randomness are methods of [`Layers`], which holds what
//! they share: the [`GraphBuilder`] their parameters are declared in, the [`Mode`] the graph
//! is built for, and the random streams handed out so far. Layers without any of these are
//! methods of [`Tensor`] (`max_pool2d`, `avg_pool2d`, `flatten_from`) or already are
//! ([`Tensor::concat`] joins channels).
//!
//! Parameters are named `<layer name>.<parameter>` and initialized as PyTorch initializes the
//! same layer, so a model's first steps behave like PyTorch's. Every layer is
//! `#[track_caller]`: a mistake (an input of the wrong rank, a bad setting) poisons the result
//! and [`GraphBuilder::finish`] reports it at the line that called the layer.

mod conv;
mod embedding;
mod norm;
mod recurrent;
mod winograd;

pub use conv::{Conv2d, Lowering};
pub use recurrent::Recurrent;

use crate::{GraphBuilder, Init, Tensor};
use kiln_compiler::{DType, TypeErrorKind};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The name of the data input (an `i32[]`) that seeds a training graph's random layers; the
/// trainer feeds a new value every step.
pub const STEP_SEED: &str = "step_seed";

/// Whether a model is built to train or to evaluate. In training, batch norm normalizes with
/// the batch's statistics and updates its running statistics, and dropout drops; in
/// evaluation, batch norm uses the running statistics and dropout is the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The graph a training step differentiates.
    Train,
    /// The graph that evaluates and predicts.
    Eval,
}

/// The context the layers of one graph share: its builder, its mode, and its random streams.
///
/// ```
/// use kiln_frontend::layers::{Conv2d, Layers, Mode};
/// use kiln_frontend::{DType, GraphBuilder};
///
/// let b = GraphBuilder::new("net");
/// let nn = Layers::new(&b, Mode::Train);
/// let x = b.input("x", DType::F32, [8, 1, 28, 28]);
/// let h = nn.conv2d("conv", &x, Conv2d::new(4, 3).padding(1)).relu().max_pool2d(2, 2, 0);
/// let y = nn.linear("fc", &nn.dropout(&h.flatten_from(1), 0.5), 10);
/// assert_eq!(y.shape(), &[8, 10]);
/// b.output("y", &y);
/// let g = b.finish().unwrap();
/// assert!(g.input("step_seed").is_some(), "dropout declared the step's seed");
/// ```
#[derive(Debug)]
pub struct Layers<'b> {
    builder: &'b GraphBuilder,
    mode: Mode,
    /// The [`STEP_SEED`] input, once a random layer has declared it.
    seed: RefCell<Option<Tensor>>,
    /// The next random stream to hand out.
    streams: Cell<u32>,
    /// Constants the layers share (Winograd's transforms), by name and dtype: declared once
    /// per graph, however many layers read them.
    constants: RefCell<HashMap<(&'static str, DType), Tensor>>,
}

impl<'b> Layers<'b> {
    /// Layers declaring their parameters in `builder`, built for `mode`.
    pub fn new(builder: &'b GraphBuilder, mode: Mode) -> Layers<'b> {
        Layers {
            builder,
            mode,
            seed: RefCell::new(None),
            streams: Cell::new(0),
            constants: RefCell::new(HashMap::new()),
        }
    }

    /// The constant `name` of `dtype`, made by `make` the first time it is asked for.
    fn shared_constant(
        &self,
        name: &'static str,
        dtype: DType,
        make: impl FnOnce() -> Tensor,
    ) -> Tensor {
        let mut constants = self.constants.borrow_mut();
        constants.entry((name, dtype)).or_insert_with(make).clone()
    }

    /// The builder the layers declare their parameters and state in.
    pub fn builder(&self) -> &'b GraphBuilder {
        self.builder
    }

    /// The mode the graph is built for.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A parameter `name` of `x`'s dtype, drawn uniformly in `±1/sqrt(fan_in)` (PyTorch's
    /// initialization of linear, convolution and recurrent weights and biases).
    #[track_caller]
    fn fan_in_param(&self, name: &str, x: &Tensor, shape: &[usize], fan_in: usize) -> Tensor {
        let k = 1.0 / (fan_in.max(1) as f64).sqrt();
        let init = Init::Uniform { low: -k, high: k };
        self.builder.param_init(name, x.dtype(), shape, init)
    }

    /// A fully connected layer `x w + b` over the last axis of `x`, with `w: [inputs,
    /// outputs]` and `b: [outputs]` (parameters `<name>.w`, `<name>.b`), both initialized as
    /// PyTorch's `Linear` is: uniform in `±1/sqrt(inputs)`.
    #[track_caller]
    pub fn linear(&self, name: &str, x: &Tensor, outputs: usize) -> Tensor {
        let inputs = x.shape().last().copied().unwrap_or(0);
        let w = self.fan_in_param(&format!("{name}.w"), x, &[inputs, outputs], inputs);
        let bias = self.fan_in_param(&format!("{name}.b"), x, &[outputs], inputs);
        x.matmul(&w) + &bias
    }

    /// Inverted dropout: in training, each element is zeroed with probability `p` and the
    /// others scaled by `1/(1-p)`, so the expected value is unchanged; in evaluation, `x`
    /// itself. The mask is a counter-based random function of the step's seed (the data input
    /// [`STEP_SEED`], declared by the first random layer) and a stream of its own, so it is
    /// fixed for a fixed seed and the layers of a model drop independently. `p` must be in
    /// `[0, 1)`.
    #[track_caller]
    pub fn dropout(&self, x: &Tensor, p: f64) -> Tensor {
        if !(0.0..1.0).contains(&p) {
            return x.fail(
                "dropout",
                TypeErrorKind::BadAttribute(format!("drop probability {p} is not in [0, 1)")),
            );
        }
        if self.mode == Mode::Eval || p == 0.0 {
            return x.clone();
        }
        let declared = self.seed.borrow().clone();
        let seed = match declared {
            Some(seed) => seed,
            None => {
                let seed = self.builder.input(STEP_SEED, DType::I32, []);
                *self.seed.borrow_mut() = Some(seed.clone());
                seed
            }
        };
        let stream = self.streams.replace(self.streams.get() + 1);
        let u = self.builder.random(&seed, stream, x.dtype(), x.shape());
        let keep = u.ge(&u.scalar_like(p));
        keep.select(&(x * (1.0 / (1.0 - p))), &x.scalar_like(0.0))
    }
}

/// A poisoned tensor in place of the result of `op` on `x`, recording (unless `x` is itself
/// poisoned) that `op` takes inputs of another rank.
#[track_caller]
fn rank_error(x: &Tensor, op: &str, expected: &str) -> Tensor {
    x.fail(
        op,
        TypeErrorKind::BadAttribute(format!(
            "expects an input of rank {expected}, found shape {:?}",
            x.shape()
        )),
    )
}
