//! The training step on real work, through the reference interpreter: linear regression reaches
//! the least-squares solution, logistic regression separates a separable set, an MLP's loss on
//! a fixed MNIST batch falls at every step, and one Adam step matches hand-computed values.

mod common;

use common::Rng;
use kiln::compiler::optim::Optimizer;
use kiln::compiler::train::train_step;
use kiln::compiler::{Array, DType};
use kiln::frontend::losses::{Reduction, bce_with_logits, mse};
use kiln::frontend::{GraphBuilder, Init};
use std::collections::HashMap;
use std::path::Path;

fn hyper(opt: &Optimizer, dtype: DType) -> Vec<(String, Array)> {
    opt.hyperparameters()
        .into_iter()
        .map(|(n, v)| (n.to_string(), Array::scalar(dtype, v)))
        .collect()
}

/// Solves the normal equations `A^T A x = A^T y` by Gaussian elimination (small, dense).
fn least_squares(a: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let n = a[0].len();
    let mut m = vec![vec![0.0; n + 1]; n];
    for (row, &yv) in a.iter().zip(y) {
        for i in 0..n {
            for j in 0..n {
                m[i][j] += row[i] * row[j];
            }
            m[i][n] += row[i] * yv;
        }
    }
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))
            .unwrap();
        m.swap(c, p);
        let pivot = m[c].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| m[i][n] / m[i][i]).collect()
}

#[test]
fn linear_regression_reaches_the_least_squares_solution() {
    let (n, d) = (32, 3);
    let mut rng = Rng::new(1);
    let xs: Vec<Vec<f64>> = (0..n).map(|_| rng.vec(d, -1.0, 1.0)).collect();
    let ys: Vec<f64> = xs
        .iter()
        .map(|x| 2.0 * x[0] - 1.0 * x[1] + 0.5 * x[2] + 0.3 + rng.range(-0.1, 0.1))
        .collect();
    let b = GraphBuilder::new("linreg");
    let x = b.input("x", DType::F64, [n, d]);
    let y = b.input("y", DType::F64, [n, 1]);
    let w = b.param("w", DType::F64, [d, 1]);
    let bias = b.param("b", DType::F64, [1]);
    b.output("loss", &mse(&(x.matmul(&w) + &bias), &y, Reduction::Mean));
    let opt = Optimizer::sgd(0.3);
    let g = train_step(&b.finish().unwrap(), "loss", &opt).unwrap();
    let mut data = hyper(&opt, DType::F64);
    data.push(("x".into(), Array::from_f64([n, d], xs.concat()).unwrap()));
    data.push(("y".into(), Array::from_f64([n, 1], ys.clone()).unwrap()));
    let mut state = HashMap::from([
        ("w".to_string(), Array::full(DType::F64, [d, 1], 0.0)),
        ("b".to_string(), Array::full(DType::F64, [1], 0.0)),
    ]);
    for _ in 0..1000 {
        common::step(&g, &mut state, &data);
    }
    let augmented: Vec<Vec<f64>> = xs.iter().map(|x| [x.as_slice(), &[1.0]].concat()).collect();
    let exact = least_squares(&augmented, &ys);
    let mut trained = state["w"].to_f64_vec();
    trained.extend(state["b"].to_f64_vec());
    // Gradient descent on this well-conditioned quadratic contracts the error by a constant
    // factor per step; after 1000 steps it is far below 1e-9.
    for (t, e) in trained.iter().zip(&exact) {
        assert!(
            (t - e).abs() < 1e-9,
            "trained {trained:?} vs least squares {exact:?}"
        );
    }
}

#[test]
fn logistic_regression_separates_a_separable_set() {
    let n = 64;
    let mut rng = Rng::new(2);
    let mut xs = vec![];
    let mut ts = vec![];
    while ts.len() < n {
        let p = rng.vec(2, -1.0, 1.0);
        let margin = p[0] + 2.0 * p[1] - 0.2;
        if margin.abs() > 0.1 {
            xs.extend(&p);
            ts.push(if margin > 0.0 { 1.0 } else { 0.0 });
        }
    }
    let b = GraphBuilder::new("logreg");
    let x = b.input("x", DType::F32, [n, 2]);
    let t = b.input("t", DType::F32, [n, 1]);
    let w = b.param("w", DType::F32, [2, 1]);
    let bias = b.param("b", DType::F32, [1]);
    let logits = x.matmul(&w) + &bias;
    b.output("loss", &bce_with_logits(&logits, &t, Reduction::Mean));
    let predicted = logits.gt(&logits.scalar_like(0.0)).cast(DType::F32);
    b.output("accuracy", &predicted.eq(&t).cast(DType::F32).mean_all());
    let opt = Optimizer::sgd(2.0);
    let g = train_step(&b.finish().unwrap(), "loss", &opt).unwrap();
    let mut data = hyper(&opt, DType::F32);
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    data.push(("x".into(), Array::from_f32([n, 2], f32s(xs)).unwrap()));
    data.push(("t".into(), Array::from_f32([n, 1], f32s(ts)).unwrap()));
    let mut state = HashMap::from([
        ("w".to_string(), Array::full(DType::F32, [2, 1], 0.0)),
        ("b".to_string(), Array::full(DType::F32, [1], 0.0)),
    ]);
    let mut accuracy = 0.0;
    for _ in 0..500 {
        accuracy = common::scalar(&common::step(&g, &mut state, &data), "accuracy");
    }
    assert_eq!(accuracy, 1.0, "the set is separable with margin 0.1");
}

#[test]
fn mlp_loss_on_a_fixed_mnist_batch_falls_at_every_step() {
    let batch = 32;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let images = kiln::runtime::idx::read_idx(&root.join("mnist10k-images-idx3-ubyte.gz")).unwrap();
    let labels = kiln::runtime::idx::read_idx(&root.join("mnist10k-labels-idx1-ubyte.gz")).unwrap();
    let x: Vec<f32> = images.data[..batch * 784]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect();
    let l: Vec<i32> = labels.data[..batch].iter().map(|&v| v as i32).collect();
    let model = kiln::frontend::models::mlp(batch, &[784, 128, 10]).unwrap();
    let opt = Optimizer::sgd(0.1);
    let g = train_step(&model.graph, "loss", &opt).unwrap();
    let mut state: HashMap<String, Array> = model.initial_values(&g, 0).into_iter().collect();
    let mut data = hyper(&opt, DType::F32);
    data.push(("x".into(), Array::from_f32([batch, 784], x).unwrap()));
    data.push(("labels".into(), Array::from_i32([batch], l).unwrap()));
    let losses: Vec<f64> = (0..50)
        .map(|_| common::scalar(&common::step(&g, &mut state, &data), "loss"))
        .collect();
    assert!(
        losses[0] > 2.0 && losses[0] < 2.6,
        "initial loss {} is not about ln 10",
        losses[0]
    );
    for w in losses.windows(2) {
        assert!(w[1] < w[0], "loss rose: {losses:?}");
    }
    assert!(losses[49] < 0.5 * losses[0], "{losses:?}");
}

#[test]
fn one_adam_step_matches_hand_computed_values() {
    let b = GraphBuilder::new("adam");
    let w = b.param_init("w", DType::F64, [3], Init::Zeros);
    let c = b.constant(Array::from_f64([3], vec![1.0, -2.0, 0.5]).unwrap());
    // loss = sum(c * w^2) / 2 + sum(w): gradient c * w + 1.
    b.output("loss", &((&c * w.square()).sum_all() * 0.5 + w.sum_all()));
    let opt = Optimizer::Adam {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    let g = train_step(&b.finish().unwrap(), "loss", &opt).unwrap();
    let w0 = [0.5, -1.0, 2.0];
    let mut state = HashMap::from([("w".to_string(), Array::from_f64([3], w0.to_vec()).unwrap())]);
    for name in ["w.m", "w.v"] {
        state.insert(name.into(), Array::full(DType::F64, [3], 0.0));
    }
    state.insert("optimizer.step".into(), Array::scalar(DType::F64, 0.0));
    common::step(&g, &mut state, &hyper(&opt, DType::F64));
    let cs = [1.0, -2.0, 0.5];
    for i in 0..3 {
        let grad = cs[i] * w0[i] + 1.0;
        let m = 0.1 * grad;
        let v = 0.001 * grad * grad;
        let (mhat, vhat) = (m / (1.0 - 0.9), v / (1.0 - 0.999));
        let expected = w0[i] - 0.1 * mhat / (vhat.sqrt() + 1e-8);
        let got = state["w"].to_f64_vec()[i];
        assert!(
            (got - expected).abs() < 1e-12,
            "w[{i}]: {got} vs {expected}"
        );
        assert!((state["w.m"].to_f64_vec()[i] - m).abs() < 1e-15);
        assert!((state["w.v"].to_f64_vec()[i] - v).abs() < 1e-15);
    }
    assert_eq!(state["optimizer.step"].to_f64_vec(), vec![1.0]);
}
