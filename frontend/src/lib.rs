//! kiln-frontend: the Rust DSL that builds graphs.
//!
//! A model is written once, as Rust: a [`GraphBuilder`] declares inputs and parameters,
//! [`Tensor`] handles compute with operators and methods (NumPy broadcasting, shapes checked as
//! each line runs), and [`graph!`] lets a model read like a function. Mistakes are returned as
//! [`BuildError`]s naming the op, the shapes and the user's source line; nothing panics.

mod builder;
mod macros;
pub mod models;
mod operators;
mod tensor;

pub use builder::{BuildError, GraphBuilder};
pub use kiln_compiler::{DType, Graph};
pub use tensor::{Tensor, broadcast_shapes};
