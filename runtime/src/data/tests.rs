use super::*;
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data")
}

fn f32s(shape: &[usize], v: &[f32]) -> Array {
    Array::from_f32(shape, v.to_vec()).unwrap()
}

#[test]
fn the_embedded_set_splits_8000_and_2000() {
    let m = Mnist::load(&data_dir()).unwrap();
    assert_eq!((m.train.len(), m.test.len()), (8000, 2000));
    assert_eq!(
        m.train.example_type("x").unwrap().to_string(),
        "f32[1,28,28]"
    );
    let x = m.test.column("x").unwrap().as_f32().unwrap();
    let last = &x[1999 * 784..];
    assert!(last.iter().all(|p| (0.0..=1.0).contains(p)));
    assert!(last.contains(&1.0), "a digit has saturated pixels");
    let labels = m.test.column("labels").unwrap().as_i32().unwrap();
    assert!(labels.iter().all(|l| (0..10).contains(l)));
}

#[test]
fn a_directory_without_mnist_is_refused_naming_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let e = Mnist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("holds no MNIST data"), "{e}");
    assert!(e.contains("t10k-images-idx3-ubyte"), "{e}");
}

#[test]
fn the_full_layout_is_read_plain() {
    let dir = tempfile::tempdir().unwrap();
    let idx = |dims: &[u32], data: &[u8]| {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    };
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.path().join(name), bytes);
    write("train-images-idx3-ubyte", idx(&[2, 28, 28], &[7; 2 * 784])).unwrap();
    write("train-labels-idx1-ubyte", idx(&[2], &[3, 4])).unwrap();
    write("t10k-images-idx3-ubyte", idx(&[1, 28, 28], &[0; 784])).unwrap();
    write("t10k-labels-idx1-ubyte", idx(&[1], &[12])).unwrap();
    let e = Mnist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("label 12 of image 0"), "{e}");
    write("t10k-labels-idx1-ubyte", idx(&[1], &[9])).unwrap();
    let m = Mnist::load(dir.path()).unwrap();
    assert_eq!(
        m.train.column("labels").unwrap().as_i32(),
        Some(&[3, 4][..])
    );
    assert_eq!(m.test.len(), 1);
    write("t10k-labels-idx1-ubyte", idx(&[2], &[9, 9])).unwrap();
    let e = Mnist::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("1 images but"), "{e}");
}

#[test]
fn shifted_images_move_by_at_most_max_and_differ_by_epoch() {
    let m = Mnist::load(&data_dir()).unwrap();
    let indices: Vec<usize> = (0..200).collect();
    let plain = m.train.select(&indices).column("x").unwrap().clone();
    let shifted = |max, epoch| {
        let mut b = plain.clone();
        shift_images(&mut b, &indices, max, 7, epoch);
        b.as_f32().unwrap().to_vec()
    };
    let (moved, again) = (shifted(2, 3), shifted(2, 3));
    assert_eq!(
        moved, again,
        "the same seed, epoch and image give the same shift"
    );
    let plain = plain.as_f32().unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let (p, m) = (&plain[i * 784..][..784], &moved[i * 784..][..784]);
        // Find the shift: some (dy, dx) within 2 maps plain onto moved exactly.
        let shift = (-2..=2isize)
            .flat_map(|dy| (-2..=2isize).map(move |dx| (dy, dx)))
            .find(|&(dy, dx)| {
                (0..28isize).all(|r| {
                    (0..28isize).all(|c| {
                        let (sr, sc) = (r - dy, c - dx);
                        let want = if (0..28).contains(&sr) && (0..28).contains(&sc) {
                            p[(sr * 28 + sc) as usize]
                        } else {
                            0.0
                        };
                        m[(r * 28 + c) as usize] == want
                    })
                })
            });
        seen.insert(shift.expect("a shift within 2 pixels"));
    }
    assert!(seen.len() > 15, "shifts vary: {seen:?}");
    assert_ne!(shifted(2, 4), moved, "another epoch, other shifts");
    assert_eq!(shifted(0, 4), plain, "max 0 is the identity");
}

#[test]
fn epoch_orders_are_permutations_fixed_by_seed_and_epoch() {
    let a = epoch_order(1000, 7, 1);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_eq!(a, epoch_order(1000, 7, 1));
    assert_ne!(a, epoch_order(1000, 7, 2));
    assert_ne!(a, epoch_order(1000, 8, 1));
    // Every position is reachable: over many epochs element 0 lands everywhere often.
    let mut seen = [0usize; 10];
    for e in 0..2000 {
        seen[epoch_order(10, 1, e).iter().position(|&i| i == 0).unwrap()] += 1;
    }
    assert!(seen.iter().all(|&c| (120..280).contains(&c)), "{seen:?}");
}

#[test]
fn columns_of_different_lengths_are_refused_naming_both() {
    let e = Dataset::new(vec![
        ("x".into(), f32s(&[3, 2], &[0.0; 6])),
        ("y".into(), f32s(&[2], &[0.0; 2])),
    ])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("column `y`: 2 examples, but column `x` has 3"),
        "{e}"
    );
    let dup = Dataset::new(vec![
        ("x".into(), f32s(&[1], &[0.0])),
        ("x".into(), f32s(&[1], &[0.0])),
    ]);
    assert!(dup.unwrap_err().to_string().contains("two columns"));
    let scalar = Dataset::new(vec![("x".into(), Array::scalar(DType::F32, 1.0))]);
    assert!(scalar.unwrap_err().to_string().contains("scalar"));
    assert!(matches!(Dataset::new(vec![]), Err(DataError::NoColumns)));
}

#[test]
fn a_split_is_seeded_disjoint_and_keeps_the_order() {
    let n = 50;
    let ids = Array::from_i32([n], (0..n as i32).collect()).unwrap();
    let d = Dataset::new(vec![("id".into(), ids)]).unwrap();
    let (train, val) = d.split(0.2, 3);
    assert_eq!((train.len(), val.len()), (40, 10));
    let (a, b) = (train.column("id").unwrap(), val.column("id").unwrap());
    let (a, b) = (a.as_i32().unwrap(), b.as_i32().unwrap());
    assert!(a.windows(2).all(|w| w[0] < w[1]) && b.windows(2).all(|w| w[0] < w[1]));
    let mut all: Vec<i32> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..n as i32).collect::<Vec<_>>());
    assert_eq!(d.split(0.2, 3), (train, val.clone()));
    assert_ne!(d.split(0.2, 4).1, val, "another seed, another split");
}

#[test]
fn standardization_fits_the_training_split_and_applies_to_others() {
    let train = Dataset::new(vec![(
        "x".into(),
        f32s(&[4, 2], &[1.0, 5.0, 3.0, 5.0, 5.0, 5.0, 7.0, 5.0]),
    )])
    .unwrap();
    let s = Standardization::fit(&train, &["x"]).unwrap();
    let t = s.apply(train.clone()).unwrap();
    // Column 0: mean 4, std sqrt(5); column 1 is constant: std 1, so it becomes 0.
    let x = t.column("x").unwrap().as_f32().unwrap();
    let z = |d: f64| (d / 5f64.sqrt()) as f32;
    assert_eq!(x, &[z(-3.0), 0.0, z(-1.0), 0.0, z(1.0), 0.0, z(3.0), 0.0]);
    let other = Dataset::new(vec![("x".into(), f32s(&[1, 2], &[4.0, 6.0]))]).unwrap();
    let o = s.apply(other).unwrap();
    assert_eq!(o.column("x").unwrap().as_f32().unwrap(), &[0.0, 1.0]);
    let labels = Dataset::new(vec![("x".into(), Array::from_i32([1], vec![1]).unwrap())]);
    let e = Standardization::fit(&labels.unwrap(), &["x"]).unwrap_err();
    assert!(
        e.to_string().contains("i32 values cannot be standardized"),
        "{e}"
    );
    let e = s.apply(Dataset::new(vec![("y".into(), f32s(&[1], &[0.0]))]).unwrap());
    assert!(
        e.unwrap_err()
            .to_string()
            .contains("column `x`: no such column")
    );
}

#[test]
fn columns_stack_into_a_matrix_of_features() {
    let d = Dataset::new(vec![
        (
            "a".into(),
            Array::from_f64([3], vec![1.0, 2.0, 3.0]).unwrap(),
        ),
        ("b".into(), Array::from_i32([3], vec![4, 5, 6]).unwrap()),
        ("img".into(), f32s(&[3, 2], &[0.0; 6])),
    ])
    .unwrap();
    let x = d.stack(&["b", "a"], DType::F32).unwrap();
    assert_eq!(x.shape(), &[3, 2]);
    assert_eq!(x.as_f32().unwrap(), &[4.0, 1.0, 5.0, 2.0, 6.0, 3.0]);
    let e = d.stack(&["a", "c"], DType::F32).unwrap_err().to_string();
    assert_eq!(e, "column `c`: no such column (the data has a, b, img)");
    let e = d.stack(&["img"], DType::F32).unwrap_err().to_string();
    assert!(
        e.contains("column `img`: shape [3, 2], not one value per example"),
        "{e}"
    );
    assert!(d.stack(&["a"], DType::I32).is_err());
}
