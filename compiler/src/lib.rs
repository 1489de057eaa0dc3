//! kiln-compiler: the graph IR and everything that transforms it.
//!
//! The pipeline, one way through: a [`Graph`] (built by the frontend or parsed from text) is
//! checked by [`infer`] on every node, printed and parsed by [`text`], validated by
//! [`verify`](mod@verify), and evaluated by the reference interpreter [`interp`], the oracle for
//! every later stage.

pub mod array;
pub mod autodiff;
pub mod codegen;
pub mod dot;
pub mod graph;
pub mod infer;
pub mod interp;
pub mod op;
pub mod optim;
pub mod text;
pub mod train;
pub mod types;
pub mod verify;

pub use array::{Array, Data};
pub use graph::{Graph, GraphError, Node, NodeId, Origin};
pub use infer::{TypeError, TypeErrorKind};
pub use op::{BinaryOp, CmpOp, InputKind, Op, OpGroup, ReduceOp, UnaryOp};
pub use types::{Axes, DType, Shape, Type};
pub use verify::{VerifyError, verify};
