//! Layers misused: each mistake is a `BuildError` naming the layer (or the primitive inside it
//! that failed) at the line of the user's call, and nothing panics, whatever the input.

use kiln_frontend::layers::{Conv2d, Layers, Mode};
use kiln_frontend::{BuildError, DType, GraphBuilder};

/// The error `f` makes with layers in training mode, and the line `f` says it made it on.
fn mistake(f: impl FnOnce(&Layers, &GraphBuilder) -> u32) -> (String, u32, u32) {
    let b = GraphBuilder::new("bad");
    let line = f(&Layers::new(&b, Mode::Train), &b);
    let err = b.finish().unwrap_err();
    let BuildError::Type(e) = &err else {
        panic!("expected a type error, got {err}")
    };
    let origin = e.origin.as_ref().unwrap();
    assert_eq!(origin.file.as_ref(), file!());
    (err.to_string(), origin.line, line)
}

#[test]
fn layer_mistakes_point_at_the_users_line() {
    let cases: Vec<(&str, (String, u32, u32))> = vec![
        (
            "conv2d at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 28, 28]);
                let line = line!() + 1;
                let _ = nn.conv2d("c", &x, Conv2d::new(4, 3));
                line
            }),
        ),
        (
            "windows at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 1, 3, 3]);
                let line = line!() + 1;
                let _ = nn.conv2d("c", &x, Conv2d::new(4, 5));
                line
            }),
        ),
        (
            "max_pool2d at",
            mistake(|_, b| {
                let x = b.input("x", DType::F32, [2, 1, 8, 8]);
                let line = line!() + 1;
                let _ = x.max_pool2d(2, 2, 2);
                line
            }),
        ),
        (
            "avg_pool2d at",
            mistake(|_, b| {
                let x = b.input("x", DType::F32, [8, 8]);
                let line = line!() + 1;
                let _ = x.avg_pool2d(2, 2, 0);
                line
            }),
        ),
        (
            "flatten at",
            mistake(|_, b| {
                let x = b.input("x", DType::F32, [2, 3]);
                let line = line!() + 1;
                let _ = x.flatten_from(3);
                line
            }),
        ),
        (
            "batch_norm2d at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.batch_norm2d("bn", &x);
                line
            }),
        ),
        (
            "batch_norm at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [1, 3]);
                let line = line!() + 1;
                let _ = nn.batch_norm1d("bn", &x);
                line
            }),
        ),
        (
            "dropout at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.dropout(&x, 1.0);
                line
            }),
        ),
        (
            "lstm at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 3]);
                let line = line!() + 1;
                let _ = nn.lstm("lstm", &x, 4).hidden.relu();
                line
            }),
        ),
        (
            "rnn at",
            mistake(|nn, b| {
                let x = b.input("x", DType::F32, [2, 0, 3]);
                let line = line!() + 1;
                let _ = nn.rnn("rnn", &x, 4);
                line
            }),
        ),
        (
            "concat at",
            mistake(|_, b| {
                let x = b.input("x", DType::F32, [2, 3, 4, 4]);
                let y = b.input("y", DType::F32, [2, 3, 5, 5]);
                let line = line!() + 1;
                let _ = x.concat(&[&y], 1);
                line
            }),
        ),
    ];
    for (op, (message, at, want)) in cases {
        assert!(message.contains(op), "{op}: {message}");
        assert_eq!(at, want, "{message}");
    }
}

/// A layer given a poisoned tensor (here, of a failed reshape) builds nothing, reports nothing
/// more, and does not panic, however many axes it expects.
#[test]
fn layers_pass_poison_through() {
    let b = GraphBuilder::new("t");
    let nn = Layers::new(&b, Mode::Train);
    let x = b.input("x", DType::F32, [2, 10]);
    let bad = x.reshape(&[3, -1]);
    let outs = [
        nn.conv2d("c", &bad, Conv2d::new(2, 3)),
        nn.batch_norm2d("bn", &bad),
        nn.batch_norm1d("bn1", &bad),
        nn.dropout(&bad, 0.5),
        nn.linear("fc", &bad, 3),
        nn.lstm("lstm", &bad, 3).hidden,
        nn.rnn("rnn", &bad, 3).hidden,
        bad.max_pool2d(2, 2, 0),
        bad.avg_pool2d(2, 2, 0),
        bad.flatten_from(1),
    ];
    assert!(outs.iter().all(|t| t.node().is_none()));
    let err = b.finish().unwrap_err().to_string();
    assert!(err.contains("in reshape at"), "{err}");
}
