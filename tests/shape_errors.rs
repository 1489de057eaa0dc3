//! What a person sees when a model is wrong: each message names the op, the shapes or types
//! that disagree, and the line of this file that asked for the op.

use kiln::compiler::DType;
use kiln::frontend::{GraphBuilder, graph};

/// The error `f` makes while building, as displayed.
fn error(f: impl FnOnce(&GraphBuilder)) -> String {
    let b = GraphBuilder::new("bad");
    f(&b);
    b.finish().unwrap_err().to_string()
}

#[test]
fn shape_error_messages() {
    let messages = [
        error(|b| {
            let x = b.input("x", DType::F32, [64, 784]);
            let w = b.param("w", DType::F32, [128, 10]);
            let _ = x.matmul(&w);
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [64, 128]);
            let bias = b.param("bias", DType::F32, [10]);
            let _ = &x + &bias;
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [4, 3]);
            let labels = b.input("labels", DType::I32, [4]);
            let _ = &x * &labels;
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [4, 3]);
            let _ = x.sum(&[2]);
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [4, 3]);
            let _ = x.reshape(&[5, -1]);
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [4, 3]);
            let _ = x.permute(&[0, 0]);
        }),
        error(|b| {
            let img = b.input("img", DType::F32, [1, 1, 4, 4]);
            let _ = img.windows(&[5, 5], &[1, 1], &[1, 1]);
        }),
        error(|b| {
            let a = b.input("a", DType::F32, [2, 3]);
            let c = b.input("c", DType::F32, [3, 3]);
            let _ = a.concat(&[&c], 1);
        }),
        error(|b| {
            let i = b.input("i", DType::I32, [3]);
            let _ = i.exp();
        }),
        error(|b| {
            let x = b.input("x", DType::F32, [3]);
            b.update("x", &x);
        }),
        error(|b| {
            b.input("bad name", DType::F32, [3]);
        }),
        graph! {
            fn mlp(x: input f32[64, 784], w1: param f32[784, 128], w2: param f32[10, 128]) -> y {
                x.matmul(&w1).relu().matmul(&w2)
            }
        }
        .unwrap_err()
        .to_string(),
    ];
    insta::assert_snapshot!(messages.join("\n"));
}
