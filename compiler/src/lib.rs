//! kiln-compiler: the graph IR and everything that transforms it.
//!
//! The pipeline, one way through: a [`Graph`] (built by the frontend or parsed from text) is
//! checked by [`infer`] on every node, printed and parsed by [`text`], validated by
//! [`verify`](mod@verify), differentiated by [`autodiff`] into a training step ([`train`]),
//! optimized by [`passes`], and evaluated by the reference interpreter [`interp`], the oracle
//! for every later stage.

pub mod array;
pub mod autodiff;
pub mod codegen;
pub mod collective;
pub mod dot;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod kernel;
pub mod limits;
pub mod memory;
pub mod op;
pub mod optim;
pub mod passes;
pub mod text;
pub mod train;
pub mod types;
pub mod verify;

/// Random well-typed graphs and inputs for differential tests (tests, or feature `testing`).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use array::{Array, Data};
pub use graph::{Graph, GraphError, Node, NodeId, Origin};
pub use infer::{TypeError, TypeErrorKind};
pub use op::{BinaryOp, CmpOp, InputKind, Op, OpGroup, ReduceOp, UnaryOp};
pub use types::{Axes, DType, Shape, Type};
pub use verify::{VerifyError, verify};
