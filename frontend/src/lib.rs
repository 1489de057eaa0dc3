//! kiln-frontend: the Rust DSL that builds graphs.
