//! `kiln train` on `.npy` images of the size the course's Keras CNN is made for: 3x224x224, at
//! batch 32, within the default memory limit.

mod common;

use common::{kiln, path_str};
use kiln::compiler::Array;
use kiln::runtime::npy::write_npy;
use tempfile::TempDir;

/// 64 generated 3x224x224 images in [0, 1] (class 1 bright in its upper half, class 0 in its
/// lower) train the built-in `cnn` for an epoch at batch 32 with the default limits.
#[test]
fn the_course_cnn_trains_on_224x224_images_at_batch_32() {
    let tmp = TempDir::new().unwrap();
    let (n, side) = (64, 224);
    let plane = side * side;
    let mut rng = common::Rng::new(7);
    let labels: Vec<i32> = (0..n).map(|i| (i % 2) as i32).collect();
    let x: Vec<f32> = (0..n * 3 * plane)
        .map(|k| {
            let (i, row) = (k / (3 * plane), (k % plane) / side);
            let bright = (row < side / 2) == (labels[i] == 1);
            (if bright { 0.6 } else { 0.1 }) + 0.3 * rng.uniform() as f32
        })
        .collect();
    let dir = tmp.path().join("images");
    std::fs::create_dir(&dir).unwrap();
    let x = Array::from_f32([n, 3, side, side], x).unwrap();
    write_npy(dir.join("x.npy"), &x).unwrap();
    write_npy(
        dir.join("labels.npy"),
        &Array::from_i32([n], labels).unwrap(),
    )
    .unwrap();
    let ck = tmp.path().join("ck.safetensors");
    let plot = tmp.path().join("curves.svg");
    let out = kiln(
        &[
            "train",
            "--data",
            path_str(&dir),
            "--model",
            "cnn",
            "--batch",
            "32",
            "--epochs",
            "1",
            "--checkpoint",
            path_str(&ck),
            "--plot",
            path_str(&plot),
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}\n{}", out.stdout, out.stderr);
    let has = |s: &str| out.stdout.contains(s);
    assert!(has("  conv1.w          f32[32,3,3,3]\n"), "{}", out.stdout);
    assert!(has("  fc1.w            f32[86528,128]\n"), "{}", out.stdout);
    assert!(has(", batch 32, "), "{}", out.stdout);
    assert!(has(",3,224,224], labels: i32["), "{}", out.stdout);
    assert!(has("training step: ") && has(" arena "), "{}", out.stdout);
    assert!(has("\nepoch   1/1  train loss "), "{}", out.stdout);
    let last = out.stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("final test accuracy "), "{}", out.stdout);
}
