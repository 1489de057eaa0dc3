//! kiln-frontend: the Rust DSL that builds graphs.
//!
//! A model is written once, as Rust: a [`GraphBuilder`] declares inputs and parameters,
//! [`Tensor`] handles compute with operators and methods (NumPy broadcasting, shapes checked as
//! each line runs), and [`graph!`] lets a model read like a function. Mistakes are returned as
//! [`BuildError`]s naming the op, the shapes and the user's source line; nothing panics.
//! [`losses`], [`layers`] and the activation methods of [`Tensor`] are compositions of
//! primitives; [`Init`] draws parameters' first values; [`models`] are the built-in models.

mod activations;
mod builder;
mod init;
pub mod layers;
pub mod losses;
mod macros;
mod model;
pub mod models;
mod operators;
mod tensor;

pub use builder::{BuildError, GraphBuilder};
pub use init::Init;
pub use kiln_compiler::{DType, Graph};
pub use model::Model;
pub use tensor::{Tensor, broadcast_shapes};
