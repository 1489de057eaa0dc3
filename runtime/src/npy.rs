//! `.npy` files: reading and writing [`kiln_compiler::Array`]s.
