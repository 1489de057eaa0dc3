//! Optimizers as graph transforms: [`Optimizer::apply`] appends to a graph the nodes that
//! update each parameter from its gradient, and declares the updates (parameters and optimizer
//! state alike are `param`/`state` inputs updated in place).
//!
//! Hyperparameters (learning rate, momentum, betas, epsilon, weight decay) are scalar data
//! inputs of the graph, so a schedule or a sweep changes them between runs without
//! recompiling; [`Optimizer::hyperparameters`] gives their default values.

use crate::array::Array;
use crate::graph::{Graph, NodeId};
use crate::infer::TypeError;
use crate::op::{BinaryOp, InputKind, Op, UnaryOp};
use crate::types::{DType, Shape, Type};
use smallvec::smallvec;

/// An optimization algorithm, with the default values of its hyperparameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `w -= lr * g`.
    Sgd {
        /// Learning rate.
        lr: f64,
    },
    /// Heavy-ball momentum as PyTorch defines it: `b = momentum * b + g`, then
    /// `w -= lr * b`, or with Nesterov `w -= lr * (g + momentum * b)`.
    Momentum {
        /// Learning rate.
        lr: f64,
        /// Momentum coefficient.
        momentum: f64,
        /// Use Nesterov's look-ahead form.
        nesterov: bool,
    },
    /// Adam (Kingma & Ba) with bias correction; AdamW when `weight_decay > 0` (decoupled decay:
    /// `w -= lr * (m̂ / (sqrt(v̂) + eps) + weight_decay * w)`).
    Adam {
        /// Learning rate.
        lr: f64,
        /// Decay of the first moment.
        beta1: f64,
        /// Decay of the second moment.
        beta2: f64,
        /// Added to the denominator.
        eps: f64,
        /// Decoupled weight decay (0 for plain Adam).
        weight_decay: f64,
    },
}

/// The name of the scalar state input counting optimizer steps (Adam's bias correction).
pub const STEP: &str = "optimizer.step";

impl Optimizer {
    /// SGD with learning rate `lr`.
    pub fn sgd(lr: f64) -> Optimizer {
        Optimizer::Sgd { lr }
    }

    /// SGD with momentum 0.9 (Nesterov if asked).
    pub fn momentum(lr: f64, nesterov: bool) -> Optimizer {
        Optimizer::Momentum {
            lr,
            momentum: 0.9,
            nesterov,
        }
    }

    /// Adam with betas 0.9, 0.999 and eps 1e-8.
    pub fn adam(lr: f64) -> Optimizer {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }

    /// AdamW: Adam with decoupled weight decay 0.01.
    pub fn adamw(lr: f64) -> Optimizer {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }

    /// A short name: `sgd`, `momentum`, `nesterov`, `adam` or `adamw`.
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Momentum {
                nesterov: false, ..
            } => "momentum",
            Optimizer::Momentum { nesterov: true, .. } => "nesterov",
            Optimizer::Adam { weight_decay, .. } if *weight_decay == 0.0 => "adam",
            Optimizer::Adam { .. } => "adamw",
        }
    }

    /// The hyperparameter inputs the optimizer adds to a graph, with these values.
    pub fn hyperparameters(&self) -> Vec<(&'static str, f64)> {
        match *self {
            Optimizer::Sgd { lr } => vec![("lr", lr)],
            Optimizer::Momentum { lr, momentum, .. } => vec![("lr", lr), ("momentum", momentum)],
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            } => {
                let mut h = vec![("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps)];
                if weight_decay != 0.0 {
                    h.push(("weight_decay", weight_decay));
                }
                h
            }
        }
    }

    /// The state each parameter of type `ty` called `param` needs, as `(name, type)`; the
    /// initial value of all optimizer state is zero.
    pub fn state_of(&self, param: &str, ty: &Type) -> Vec<(String, Type)> {
        match self {
            Optimizer::Sgd { .. } => vec![],
            Optimizer::Momentum { .. } => vec![(format!("{param}.velocity"), ty.clone())],
            Optimizer::Adam { .. } => vec![
                (format!("{param}.m"), ty.clone()),
                (format!("{param}.v"), ty.clone()),
            ],
        }
    }

    /// Appends the update of every `(param, grad)` pair to `g`: hyperparameter inputs,
    /// optimizer state inputs, the update nodes, and `update` declarations for parameters and
    /// state. All parameters must share one float dtype.
    pub fn apply(&self, g: &mut Graph, params: &[(NodeId, NodeId)]) -> Result<(), TypeError> {
        let Some(&(first, _)) = params.first() else {
            return Ok(());
        };
        let dtype = g.node(first).ty.dtype;
        let mut e = Emitter { g, dtype };
        let hyper: Vec<NodeId> = self
            .hyperparameters()
            .iter()
            .map(|(name, _)| e.leaf(InputKind::Data, name, &[]))
            .collect::<Result<_, _>>()?;
        let step = match self {
            Optimizer::Adam { .. } => {
                let t = e.leaf(InputKind::State, STEP, &[])?;
                let one = e.scalar(1.0, &[])?;
                let t1 = e.binary(BinaryOp::Add, t, one)?;
                e.update(STEP, t1)?;
                Some(t1)
            }
            _ => None,
        };
        for &(w, grad) in params {
            let (name, shape) = {
                let n = e.g.node(w);
                let name =
                    n.op.as_input()
                        .map(|(_, name)| name.to_string())
                        .unwrap_or_default();
                (name, n.ty.shape.clone())
            };
            let h: Vec<NodeId> = hyper
                .iter()
                .map(|&h| e.expand(h, &shape))
                .collect::<Result<_, _>>()?;
            let new_w = match *self {
                Optimizer::Sgd { .. } => {
                    let d = e.binary(BinaryOp::Mul, h[0], grad)?;
                    e.binary(BinaryOp::Sub, w, d)?
                }
                Optimizer::Momentum { nesterov, .. } => {
                    let vname = format!("{name}.velocity");
                    let b = e.leaf(InputKind::State, &vname, &shape)?;
                    let mb = e.binary(BinaryOp::Mul, h[1], b)?;
                    let b1 = e.binary(BinaryOp::Add, mb, grad)?;
                    e.update(&vname, b1)?;
                    let dir = if nesterov {
                        let mb1 = e.binary(BinaryOp::Mul, h[1], b1)?;
                        e.binary(BinaryOp::Add, grad, mb1)?
                    } else {
                        b1
                    };
                    let d = e.binary(BinaryOp::Mul, h[0], dir)?;
                    e.binary(BinaryOp::Sub, w, d)?
                }
                Optimizer::Adam { weight_decay, .. } => {
                    let t = e.expand(step.expect("Adam counts steps"), &shape)?;
                    let (lr, b1, b2, eps) = (h[0], h[1], h[2], h[3]);
                    let m1 = e.moment(&format!("{name}.m"), &shape, b1, grad)?;
                    let g2 = e.binary(BinaryOp::Mul, grad, grad)?;
                    let v1 = e.moment(&format!("{name}.v"), &shape, b2, g2)?;
                    let mhat = e.debias(m1, b1, t, &shape)?;
                    let vhat = e.debias(v1, b2, t, &shape)?;
                    let root = e.unary(UnaryOp::Sqrt, vhat)?;
                    let denom = e.binary(BinaryOp::Add, root, eps)?;
                    let mut dir = e.binary(BinaryOp::Div, mhat, denom)?;
                    if weight_decay != 0.0 {
                        let decay = e.binary(BinaryOp::Mul, h[4], w)?;
                        dir = e.binary(BinaryOp::Add, dir, decay)?;
                    }
                    let d = e.binary(BinaryOp::Mul, lr, dir)?;
                    e.binary(BinaryOp::Sub, w, d)?
                }
            };
            e.update(&name, new_w)?;
        }
        Ok(())
    }
}

/// Appends nodes of one float dtype.
struct Emitter<'g> {
    g: &'g mut Graph,
    dtype: DType,
}

impl Emitter<'_> {
    fn add(&mut self, op: Op, operands: &[NodeId]) -> Result<NodeId, TypeError> {
        self.g.add(op, operands, None)
    }

    fn leaf(&mut self, kind: InputKind, name: &str, shape: &[usize]) -> Result<NodeId, TypeError> {
        let ty = Type::new(self.dtype, shape);
        self.add(
            Op::Input {
                kind,
                name: name.into(),
                ty,
            },
            &[],
        )
    }

    fn unary(&mut self, u: UnaryOp, a: NodeId) -> Result<NodeId, TypeError> {
        self.add(Op::Unary(u), &[a])
    }

    fn binary(&mut self, b: BinaryOp, a: NodeId, c: NodeId) -> Result<NodeId, TypeError> {
        self.add(Op::Binary(b), &[a, c])
    }

    fn scalar(&mut self, v: f64, shape: &[usize]) -> Result<NodeId, TypeError> {
        let c = self.add(Op::Constant(Array::scalar(self.dtype, v)), &[])?;
        self.expand(c, shape)
    }

    /// A scalar node broadcast to `shape`.
    fn expand(&mut self, scalar: NodeId, shape: &[usize]) -> Result<NodeId, TypeError> {
        if shape.is_empty() {
            return Ok(scalar);
        }
        let ones: Shape = smallvec![1; shape.len()];
        let r = self.add(Op::Reshape(ones), &[scalar])?;
        self.add(Op::Broadcast(shape.into()), &[r])
    }

    /// The state `name` moved toward `x`: `beta * s + (1 - beta) * x`, declared as its update.
    fn moment(
        &mut self,
        name: &str,
        shape: &[usize],
        beta: NodeId,
        x: NodeId,
    ) -> Result<NodeId, TypeError> {
        let s = self.leaf(InputKind::State, name, shape)?;
        let one = self.scalar(1.0, shape)?;
        let rest = self.binary(BinaryOp::Sub, one, beta)?;
        let kept = self.binary(BinaryOp::Mul, beta, s)?;
        let added = self.binary(BinaryOp::Mul, rest, x)?;
        let s1 = self.binary(BinaryOp::Add, kept, added)?;
        self.update(name, s1)?;
        Ok(s1)
    }

    /// Adam's bias correction: `m / (1 - beta^t)`.
    fn debias(
        &mut self,
        m: NodeId,
        beta: NodeId,
        t: NodeId,
        shape: &[usize],
    ) -> Result<NodeId, TypeError> {
        let one = self.scalar(1.0, shape)?;
        let bt = self.binary(BinaryOp::Pow, beta, t)?;
        let c = self.binary(BinaryOp::Sub, one, bt)?;
        self.binary(BinaryOp::Div, m, c)
    }

    fn update(&mut self, name: &str, value: NodeId) -> Result<(), TypeError> {
        self.g.set_update(name, value).map_err(|e| TypeError {
            op: "update".into(),
            kind: crate::infer::TypeErrorKind::BadAttribute(e.to_string()),
            origin: None,
        })
    }
}
