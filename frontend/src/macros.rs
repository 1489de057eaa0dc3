//! The `graph!` macro: a model written like a function signature and its body.

/// Builds a graph from a function-like definition and returns `Result<Graph, BuildError>`.
///
/// The parameters declare the graph's leaves, each `name: kind dtype[extents]` with `kind` one of
/// `input`, `param`, `state`; inside the body each is a [`Tensor`](crate::Tensor) variable of that
/// name. The body's value names the outputs: a tensor for `-> name`, a tuple for
/// `-> (a, b, ..)`. A mistake in the body (a shape mismatch, say) is returned as the error, with
/// the line it was made on.
///
/// ```
/// let g = kiln_frontend::graph! {
///     fn affine(x: input f32[4, 3], w: param f32[3, 2], b: param f32[2]) -> y {
///         x.matmul(&w) + &b
///     }
/// }
/// .unwrap();
/// assert_eq!(g.outputs()[0].0, "y");
/// ```
#[macro_export]
macro_rules! graph {
    (fn $name:ident ( $($args:tt)* ) -> ( $($out:ident),+ $(,)? ) $body:block) => {{
        let __builder = $crate::GraphBuilder::new(stringify!($name));
        $crate::graph!(@leaves __builder; $($args)*);
        let ($($out,)+) = $body;
        $( __builder.output(stringify!($out), &$out); )+
        __builder.finish()
    }};
    (fn $name:ident ( $($args:tt)* ) -> $out:ident $body:block) => {{
        let __builder = $crate::GraphBuilder::new(stringify!($name));
        $crate::graph!(@leaves __builder; $($args)*);
        let $out: $crate::Tensor = $body;
        __builder.output(stringify!($out), &$out);
        __builder.finish()
    }};
    (@leaves $b:ident; $( $arg:ident : $kind:ident $dt:ident [ $($dim:expr),* $(,)? ] ),* $(,)?) => {
        $( let $arg = $b.$kind(stringify!($arg), $crate::graph!(@dtype $dt), [$($dim),*]); )*
    };
    (@dtype f32) => { $crate::DType::F32 };
    (@dtype f64) => { $crate::DType::F64 };
    (@dtype i32) => { $crate::DType::I32 };
    (@dtype bool) => { $crate::DType::Bool };
}
