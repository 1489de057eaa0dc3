//! The optimizer chosen on the command line.

use clap::ValueEnum;
use kiln_compiler::optim::Optimizer;

/// An optimizer named on the command line, with kiln's default hyperparameters.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// Plain stochastic gradient descent.
    Sgd,
    /// SGD with momentum 0.9.
    Momentum,
    /// SGD with Nesterov momentum 0.9.
    Nesterov,
    /// Adam (betas 0.9, 0.999).
    Adam,
    /// Adam with decoupled weight decay 0.01.
    Adamw,
}

impl OptimizerArg {
    /// The optimizer, at its default learning rate (SGD and momentum 0.1, Adam 0.001).
    pub fn optimizer(self) -> Optimizer {
        match self {
            OptimizerArg::Sgd => Optimizer::sgd(0.1),
            OptimizerArg::Momentum => Optimizer::momentum(0.1, false),
            OptimizerArg::Nesterov => Optimizer::momentum(0.1, true),
            OptimizerArg::Adam => Optimizer::adam(1e-3),
            OptimizerArg::Adamw => Optimizer::adamw(1e-3),
        }
    }

    /// The optimizer with learning rate `lr` (its other hyperparameters at their defaults).
    pub fn with_lr(self, lr: f64) -> Optimizer {
        match self.optimizer() {
            Optimizer::Sgd { .. } => Optimizer::Sgd { lr },
            Optimizer::Momentum {
                momentum, nesterov, ..
            } => Optimizer::Momentum {
                lr,
                momentum,
                nesterov,
            },
            Optimizer::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
                ..
            } => Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
            },
        }
    }
}
