//! The training step as one graph: a model's forward pass, the gradient of its loss with
//! respect to every parameter, and the optimizer's updates, for the compiler to optimize and
//! fuse as a whole.

use crate::array::Array;
use crate::autodiff::{GradError, grad};
use crate::graph::{Graph, GraphError, NodeId};
use crate::infer::TypeError;
use crate::op::{BinaryOp, InputKind, Op};
use crate::optim::Optimizer;
use crate::types::Type;
use smallvec::smallvec;

/// Why a gradient or a training step cannot be built from a graph.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    /// The graph has no output of that name.
    #[error("the graph `{graph}` has no output named `{output}`")]
    NoOutput {
        /// The graph's name.
        graph: String,
        /// The name asked for.
        output: String,
    },
    /// The graph has no input of that name.
    #[error("the graph `{graph}` has no input named `{input}`")]
    NoInput {
        /// The graph's name.
        graph: String,
        /// The name asked for.
        input: String,
    },
    /// The loss is not a float scalar.
    #[error("the loss `{name}` must be an f32[] or f64[] scalar, found {ty}")]
    LossNotScalar {
        /// The loss output's name.
        name: String,
        /// Its type.
        ty: Box<Type>,
    },
    /// The model has no `param` inputs to train.
    #[error("the graph `{0}` has no parameters to train")]
    NoParams(String),
    /// A gradient output's name is taken.
    #[error("cannot name the gradient: {0}")]
    Name(#[from] GraphError),
    /// Differentiation failed.
    #[error(transparent)]
    Grad(#[from] GradError),
    /// The optimizer's nodes did not fit the graph (an input name already taken, say).
    #[error("cannot add the optimizer: {0}")]
    Optimizer(#[from] TypeError),
}

/// The prefix of gradient outputs: `grad_w1` is the gradient with respect to `w1`.
pub const GRAD_PREFIX: &str = "grad_";

/// `g` with the gradient of `sum(of)` with respect to each input named in `wrt` added as the
/// output `grad_<name>`.
pub fn gradients(g: &Graph, of: &str, wrt: &[&str]) -> Result<Graph, TrainError> {
    let ids = wrt
        .iter()
        .map(|&name| {
            g.input(name).ok_or_else(|| TrainError::NoInput {
                graph: g.name().into(),
                input: name.into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = g.clone();
    let of = output(g, of)?;
    let grads = grad(&mut out, of, &ids)?;
    for (name, d) in wrt.iter().zip(grads) {
        out.set_output(format!("{GRAD_PREFIX}{name}"), d)?;
    }
    Ok(out)
}

/// `model` with the gradient of its scalar output `loss` with respect to each parameter added
/// as the output `grad_<param>`.
pub fn grad_graph(model: &Graph, loss: &str) -> Result<Graph, TrainError> {
    let (mut g, pairs) = differentiate(model, loss)?;
    g.set_name(format!("{}_grad", model.name()));
    for (p, d) in pairs {
        let name = g.node(p).name.clone().unwrap_or_default();
        g.set_output(format!("{GRAD_PREFIX}{name}"), d)?;
    }
    Ok(g)
}

/// The training step of `model`: its forward pass and outputs (the loss and any metrics), the
/// gradient of `loss` with respect to every parameter, and the optimizer's updates of the
/// parameters and of its own state.
pub fn train_step(model: &Graph, loss: &str, optimizer: &Optimizer) -> Result<Graph, TrainError> {
    train_step_on_ranks(model, loss, optimizer, 1)
}

/// The training step of one rank of a data-parallel job of `ranks` ranks, each on its own
/// share of every batch: [`train_step`], with every gradient, every float scalar output (the
/// loss and the metrics) and every update of the model's own state (batch norm's running
/// statistics) averaged over the ranks (`all_reduce` of the rank's values, times `1/ranks`)
/// before the optimizer or the caller sees it. Every rank thus takes the same step and keeps
/// the same state: the step a single process would take on the whole batch, up to the order
/// of float sums (a running variance becomes the mean of the ranks' batch variances). Each
/// value has an `all_reduce` of its own; lowering sums them in a few calls
/// ([`crate::kernel::BUCKET_BYTES`]). With one rank this is [`train_step`].
pub fn train_step_on_ranks(
    model: &Graph,
    loss: &str,
    optimizer: &Optimizer,
    ranks: usize,
) -> Result<Graph, TrainError> {
    let (mut g, mut pairs) = differentiate(model, loss)?;
    g.set_name(format!("{}_train", model.name()));
    if ranks > 1 {
        let metrics: Vec<(String, NodeId)> = (g.outputs().iter())
            .filter(|(_, id)| {
                let ty = &g.node(*id).ty;
                ty.rank() == 0 && ty.dtype.is_float()
            })
            .cloned()
            .collect();
        let states: Vec<(String, NodeId)> = (g.updates().iter())
            .filter(|(_, id)| g.node(*id).ty.dtype.is_float())
            .cloned()
            .collect();
        // The last layers' gradients are ready first in the backward pass.
        let mut values: Vec<NodeId> = pairs.iter().rev().map(|&(_, d)| d).collect();
        values.extend(metrics.iter().chain(&states).map(|&(_, id)| id));
        let averaged = average_over_ranks(&mut g, &values, ranks)?;
        for ((_, d), a) in pairs.iter_mut().rev().zip(&averaged) {
            *d = *a;
        }
        let rest = &averaged[pairs.len()..];
        for ((name, _), a) in metrics.iter().zip(rest) {
            g.redirect_output(name, *a);
        }
        for ((name, _), a) in states.iter().zip(&rest[metrics.len()..]) {
            g.redirect_update(name, *a);
        }
    }
    optimizer.apply(&mut g, &pairs)?;
    Ok(g)
}

/// Each of `values` averaged over `ranks` ranks: its `all_reduce` times `1/ranks`.
fn average_over_ranks(
    g: &mut Graph,
    values: &[NodeId],
    ranks: usize,
) -> Result<Vec<NodeId>, TypeError> {
    let mut averaged = Vec::with_capacity(values.len());
    for &v in values {
        let (ty, origin) = (g.node(v).ty.clone(), g.node(v).origin.clone());
        let sum = g.add(Op::AllReduce, &[v], origin.clone())?;
        let share = Array::scalar(ty.dtype, 1.0 / ranks as f64);
        let share = g.add(Op::Constant(share), &[], origin.clone())?;
        let ones: smallvec::SmallVec<[usize; 4]> = smallvec![1; ty.rank()];
        let share = g.add(
            Op::Reshape(ones.into_iter().collect()),
            &[share],
            origin.clone(),
        )?;
        let share = g.add(Op::Broadcast(ty.shape.clone()), &[share], origin.clone())?;
        averaged.push(g.add(Op::Binary(BinaryOp::Mul), &[sum, share], origin)?);
    }
    Ok(averaged)
}

fn output(g: &Graph, name: &str) -> Result<NodeId, TrainError> {
    g.output(name).ok_or_else(|| TrainError::NoOutput {
        graph: g.name().into(),
        output: name.into(),
    })
}

/// A copy of `model` with the gradient of the scalar `loss` with respect to every parameter
/// appended, and the `(param, gradient)` pairs.
fn differentiate(model: &Graph, loss: &str) -> Result<(Graph, Vec<(NodeId, NodeId)>), TrainError> {
    let mut g = model.clone();
    let l = output(&g, loss)?;
    let ty = g.node(l).ty.clone();
    if ty.rank() != 0 || !ty.dtype.is_float() {
        return Err(TrainError::LossNotScalar {
            name: loss.into(),
            ty: Box::new(ty),
        });
    }
    let params = g.inputs_of(InputKind::Param);
    if params.is_empty() {
        return Err(TrainError::NoParams(model.name().into()));
    }
    let grads = grad(&mut g, l, &params)?;
    Ok((g, params.into_iter().zip(grads).collect()))
}
