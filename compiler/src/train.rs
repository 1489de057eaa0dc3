//! The training step as one graph: a model's forward pass, the gradient of its loss with
//! respect to every parameter, and the optimizer's updates, for the compiler to optimize and
//! fuse as a whole.

use crate::autodiff::{GradError, grad};
use crate::graph::{Graph, NodeId};
use crate::infer::TypeError;
use crate::op::InputKind;
use crate::optim::Optimizer;

/// Why a training step cannot be built from a model.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TrainError {
    /// The model has no output of the loss's name.
    #[error("the model `{model}` has no output named `{loss}`")]
    NoLoss {
        /// The model's name.
        model: String,
        /// The name asked for.
        loss: String,
    },
    /// The loss is not a float scalar.
    #[error("the loss `{name}` must be an f32[] or f64[] scalar, found {ty}")]
    LossNotScalar {
        /// The loss output's name.
        name: String,
        /// Its type.
        ty: crate::types::Type,
    },
    /// The model has no `param` inputs to train.
    #[error("the model `{0}` has no parameters to train")]
    NoParams(String),
    /// Differentiation failed.
    #[error(transparent)]
    Grad(#[from] GradError),
    /// The optimizer's nodes did not fit the graph (an input name already taken, say).
    #[error("cannot add the optimizer: {0}")]
    Optimizer(#[from] TypeError),
}

/// The prefix of the outputs [`grad_graph`] adds: `grad.w1` is the gradient of `w1`.
pub const GRAD_PREFIX: &str = "grad.";

/// `model` with the gradient of its output `loss` with respect to each parameter added as the
/// output `grad.<param>`.
pub fn grad_graph(model: &Graph, loss: &str) -> Result<Graph, TrainError> {
    let (mut g, pairs) = differentiate(model, loss)?;
    g.set_name(format!("{}_grad", model.name()));
    for (p, d) in pairs {
        let name = g.node(p).name.clone().unwrap_or_default();
        // Parameter names are identifiers, so the prefixed name is one too, and unique.
        g.set_output(format!("{GRAD_PREFIX}{name}"), d)
            .expect("gradient output names are fresh identifiers");
    }
    Ok(g)
}

/// The training step of `model`: its forward pass and outputs (the loss and any metrics), the
/// gradient of `loss` with respect to every parameter, and the optimizer's updates of the
/// parameters and of its own state.
pub fn train_step(model: &Graph, loss: &str, optimizer: &Optimizer) -> Result<Graph, TrainError> {
    let (mut g, pairs) = differentiate(model, loss)?;
    g.set_name(format!("{}_train", model.name()));
    optimizer.apply(&mut g, &pairs)?;
    Ok(g)
}

/// A copy of `model` with the gradient of `loss` appended, and the `(param, gradient)` pairs.
fn differentiate(model: &Graph, loss: &str) -> Result<(Graph, Vec<(NodeId, NodeId)>), TrainError> {
    let mut g = model.clone();
    let l = g.output(loss).ok_or_else(|| TrainError::NoLoss {
        model: model.name().into(),
        loss: loss.into(),
    })?;
    let ty = g.node(l).ty.clone();
    if ty.rank() != 0 || !ty.dtype.is_float() {
        return Err(TrainError::LossNotScalar {
            name: loss.into(),
            ty,
        });
    }
    let params = g.inputs_of(InputKind::Param);
    if params.is_empty() {
        return Err(TrainError::NoParams(model.name().into()));
    }
    let grads = grad(&mut g, l, &params)?;
    Ok((g, params.into_iter().zip(grads).collect()))
}
