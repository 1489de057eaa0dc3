//! Cranelift code generation.

pub(crate) mod math;
