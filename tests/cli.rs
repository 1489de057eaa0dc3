//! The `kiln` binary end to end: `kiln dump` and `kiln run` on the fixtures, and every user
//! error exiting with status 2, one `error:` line and no output left behind.

mod common;

use common::{Outcome, kiln, path_str};
use kiln::compiler::Array;
use kiln::runtime::npy::{read_npy, write_npy};
use std::fs;
use std::path::PathBuf;
use tempfile::TempDir;

/// Runs `kiln run` on the example graph with `inputs` (`NAME=PATH` each) into `tmp/out`.
fn run_example(tmp: &TempDir, inputs: &[&str]) -> Outcome {
    let dir = tmp.path().join("out");
    let mut args = vec![
        "run",
        "tests/fixtures/example.kir",
        "--output-dir",
        path_str(&dir),
    ];
    for i in inputs {
        args.extend(["--input", i]);
    }
    kiln(&args, Some(tmp))
}

const X: &str = "x=tests/fixtures/example_x.npy";
const Y: &str = "y=tests/fixtures/example_y.npy";

/// Asserts a user error: status 2, nothing on stdout, one `error:` line on stderr, and no
/// output directory; gives the message.
fn user_error(out: &Outcome, tmp: &TempDir) -> String {
    assert_eq!(out.status, Some(2), "stderr: {}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        !tmp.path().join("out").exists(),
        "a run that failed left output"
    );
    out.stderr.trim_end().to_string()
}

#[test]
fn dump_prints_a_kir_file_back_unchanged() {
    let src = fs::read_to_string("tests/fixtures/example.kir").unwrap();
    for extra in [
        &[][..],
        &["--no-locations"],
        &["--stage", "source", "--format", "text"],
    ] {
        let mut args = vec!["dump", "tests/fixtures/example.kir"];
        args.extend(extra);
        let out = kiln(&args, None);
        assert_eq!(out.status, Some(0), "{}", out.stderr);
        assert_eq!(out.stdout, src);
    }
}

#[test]
fn dump_draws_a_kir_file_as_graphviz() {
    let out = kiln(
        &["dump", "tests/fixtures/example.kir", "--format", "dot"],
        None,
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    insta::assert_snapshot!("example_dot", out.stdout);
}

#[test]
fn dump_prints_the_builtin_mlp() {
    let out = kiln(&["dump", "mlp", "--no-locations"], None);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(out.stdout.starts_with("graph mlp {\n"), "{}", out.stdout);
    insta::assert_snapshot!("mlp_text", out.stdout);
    let out = kiln(&["dump", "mlp"], None);
    assert!(out.stdout.contains("loc(\"frontend/src/"), "{}", out.stdout);
}

#[test]
fn dump_draws_the_builtin_mlp_node_for_node() {
    let text = kiln(&["dump", "mlp"], None).stdout;
    let out = kiln(&["dump", "mlp", "--format", "dot"], None);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("digraph \"mlp\" {\n"),
        "{}",
        out.stdout
    );
    let count = |s: &str, pat: &str| s.lines().filter(|l| l.contains(pat)).count();
    assert_eq!(count(&out.stdout, "[label=\"%"), count(&text, "  %"));
    assert_eq!(count(&out.stdout, "-> output"), count(&text, "  output "));
}

#[test]
fn dump_lists_the_builtins_for_an_unknown_name() {
    let out = kiln(&["dump", "alexnet"], None);
    assert_eq!(out.status, Some(2));
    insta::assert_snapshot!(out.stderr, @"error: `alexnet` is neither a file nor a built-in model (built-in models: linear, linreg, logreg, mlp, lenet, inception, resnet, cnn, vgg, resnet18, lstm)");
}

#[test]
fn dump_lists_the_stages_for_an_unknown_stage() {
    let out = kiln(&["dump", "mlp", "--stage", "fused"], None);
    assert_eq!(out.status, Some(2));
    let first = out.stderr.lines().take(2).collect::<Vec<_>>().join("\n");
    insta::assert_snapshot!(first, @r"
    error: invalid value 'fused' for '--stage <STAGE>'
      [possible values: source, grad, train, optimized, kernels, loops, clif, asm]
    ");
}

/// `kiln run` on the example matches NumPy's `np.tanh(x @ y) ** 2` within 1e-6 absolute.
///
/// Each element is a 3-term `f32` dot product followed by `tanh` and a square, so it lies in
/// [0, 1], where an `f32` ulp is at most 6e-8. NumPy rounds every product and sum of the dot in
/// `f32`; the interpreter accumulates in `f64` and rounds once; the two `tanh`s may differ by an
/// ulp, and the square at most doubles an error. With these inputs (`sum |x_i y_i| < 5`) the
/// difference stays within a few ulp (8e-8 measured); 1e-6, about 16 ulp at 1, leaves room for
/// other summation orders, while any real mistake (a swapped operand, a missing op) moves
/// values by far more.
#[test]
fn run_matches_numpy() {
    let tmp = TempDir::new().unwrap();
    let out = run_example(&tmp, &[X, Y]);
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "wrote [TMP]/out/out.npy (f32[4,2])\n");
    let got = read_npy(tmp.path().join("out/out.npy")).unwrap();
    let want = read_npy("tests/fixtures/example_out.npy").unwrap();
    assert_eq!(got.shape(), want.shape());
    let (got, want) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-6, "element {i}: kiln {g}, NumPy {w}");
    }
    let files: Vec<_> = fs::read_dir(tmp.path().join("out")).unwrap().collect();
    assert_eq!(files.len(), 1, "only out.npy is written");
}

#[test]
fn run_accepts_interpret_and_writes_updates_beside_outputs() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("step.kir");
    let src = "graph step {\n  %w = param \"w\" : f32[2]\n  %0 = neg %w : f32[2]\n  \
               output y = %0\n  update w <- %0\n}\n";
    fs::write(&kir, src).unwrap();
    let w = tmp.path().join("w.npy");
    write_npy(&w, &Array::from_f32([2], vec![1.0, -2.0]).unwrap()).unwrap();
    let dir = tmp.path().join("out/nested");
    let binding = format!("w={}", w.display());
    let args = [
        "run",
        path_str(&kir),
        "-i",
        &binding,
        "-o",
        path_str(&dir),
        "--interpret",
    ];
    let out = kiln(&args, Some(&tmp));
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let want = Array::from_f32([2], vec![-1.0, 2.0]).unwrap();
    assert_eq!(read_npy(dir.join("y.npy")).unwrap(), want);
    assert_eq!(read_npy(dir.join("w.next.npy")).unwrap(), want);
}

#[test]
fn run_reports_a_missing_graph_file() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("out");
    let out = kiln(&["run", "nope.kir", "-o", path_str(&dir)], Some(&tmp));
    insta::assert_snapshot!(user_error(&out, &tmp), @"error: cannot read `nope.kir`: No such file or directory (os error 2)");
}

#[test]
fn run_renders_a_parse_error_with_the_file_name() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("bad.kir");
    fs::write(
        &kir,
        "graph bad {\n  %x = input \"x\" : f32[2]\n  %0 = frobnicate %x : f32[2]\n}\n",
    )
    .unwrap();
    let dir = tmp.path().join("out");
    let out = kiln(&["run", path_str(&kir), "-o", path_str(&dir)], Some(&tmp));
    assert_eq!(out.status, Some(2));
    assert!(out.stderr.contains("[TMP]/bad.kir:3:"), "{}", out.stderr);
    assert!(!dir.exists());
    insta::assert_snapshot!("parse_error", out.stderr);
}

#[test]
fn run_reports_a_missing_input() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(&run_example(&tmp, &[X]), &tmp);
    insta::assert_snapshot!(msg, @"error: missing input `y` (f32[3,2]): give it with --input y=FILE.npy");
}

#[test]
fn run_reports_an_extra_input() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(
        &run_example(&tmp, &[X, Y, "z=tests/fixtures/example_x.npy"]),
        &tmp,
    );
    insta::assert_snapshot!(msg, @"error: `z` is not an input of graph `example` (its inputs: x, y)");
}

#[test]
fn run_reports_an_input_given_twice() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(&run_example(&tmp, &[X, Y, X]), &tmp);
    insta::assert_snapshot!(msg, @"error: input `x` is given twice");
}

#[test]
fn run_reports_a_type_mismatch() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(
        &run_example(&tmp, &["x=tests/fixtures/example_y.npy", Y]),
        &tmp,
    );
    insta::assert_snapshot!(msg, @"error: input `x` is f32[4,3], but `tests/fixtures/example_y.npy` holds f32[3,2]");
}

#[test]
fn run_reports_a_missing_npy_file() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(&run_example(&tmp, &[X, "y=nope.npy"]), &tmp);
    insta::assert_snapshot!(msg, @"error: cannot read `nope.npy`: No such file or directory (os error 2)");
}

#[test]
fn run_reports_a_malformed_npy_file() {
    let tmp = TempDir::new().unwrap();
    let msg = user_error(
        &run_example(&tmp, &[X, "y=tests/fixtures/example.kir"]),
        &tmp,
    );
    insta::assert_snapshot!(msg, @r"error: `tests/fixtures/example.kir` is not a valid npy file: it does not start with \x93NUMPY");
}

#[test]
fn run_reports_an_output_directory_it_cannot_create() {
    let tmp = TempDir::new().unwrap();
    fs::write(tmp.path().join("file"), b"").unwrap();
    let dir = tmp.path().join("file/out");
    let args = [
        "run",
        "tests/fixtures/example.kir",
        "-i",
        X,
        "-i",
        Y,
        "-o",
        path_str(&dir),
    ];
    let msg = user_error(&kiln(&args, Some(&tmp)), &tmp);
    insta::assert_snapshot!(msg, @"error: cannot create directory `[TMP]/file/out`: Not a directory (os error 20)");
}

#[test]
fn a_failed_write_removes_everything_the_run_created() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("two.kir");
    let src = "graph two {\n  %x = input \"x\" : f32[4,3]\n  %0 = neg %x : f32[4,3]\n  \
               output a = %x\n  output b = %0\n}\n";
    fs::write(&kir, src).unwrap();
    // `b.npy` is a non-empty directory: `a.npy` is written and must then be removed again.
    let dir = tmp.path().join("out");
    fs::create_dir_all(dir.join("b.npy/keep")).unwrap();
    let args = ["run", path_str(&kir), "-i", X, "-o", path_str(&dir)];
    let out = kiln(&args, Some(&tmp));
    assert_eq!(out.status, Some(2));
    assert!(
        out.stderr
            .starts_with("error: cannot write `[TMP]/out/b.npy`"),
        "{}",
        out.stderr
    );
    let left: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![dir.join("b.npy")]);
}

#[test]
fn run_refuses_results_that_would_share_a_file() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("clash.kir");
    let src = "graph clash {\n  %w = param \"w\" : f32[2]\n  %0 = neg %w : f32[2]\n  \
               output w.next = %0\n  update w <- %0\n}\n";
    fs::write(&kir, src).unwrap();
    let w = tmp.path().join("w.npy");
    write_npy(&w, &Array::from_f32([2], vec![1.0, -2.0]).unwrap()).unwrap();
    let binding = format!("w={}", w.display());
    let dir = tmp.path().join("out");
    let args = ["run", path_str(&kir), "-i", &binding, "-o", path_str(&dir)];
    let msg = user_error(&kiln(&args, Some(&tmp)), &tmp);
    insta::assert_snapshot!(msg, @"error: two results would both be written to `[TMP]/out/w.next.npy`");
}

#[test]
fn dump_shows_the_grad_and_train_stages_of_the_builtin_mlp() {
    let grad = kiln(&["dump", "mlp", "--stage", "grad", "--no-locations"], None);
    assert_eq!(grad.status, Some(0), "{}", grad.stderr);
    assert!(grad.stdout.starts_with("graph mlp_grad {"));
    assert!(grad.stdout.contains("output grad_fc1.w = "));
    let train = kiln(
        &["dump", "mlp", "--stage", "train", "--optimizer", "adam"],
        None,
    );
    assert_eq!(train.status, Some(0), "{}", train.stderr);
    assert!(train.stdout.starts_with("graph mlp_train {"));
    for line in [
        "update fc1.w <- ",
        "update fc1.w.m <- ",
        "update optimizer.step <- ",
    ] {
        assert!(train.stdout.contains(line), "{line} missing");
    }
}

#[test]
fn dump_of_a_graph_without_the_loss_names_it() {
    let out = kiln(
        &["dump", "tests/fixtures/example.kir", "--stage", "grad"],
        None,
    );
    assert_eq!(out.status, Some(2));
    insta::assert_snapshot!(out.stderr, @"error: the graph `example` has no output named `loss`");
}

/// `kiln run --grad out --wrt x,y` on the example gives the analytic gradient of
/// `sum(tanh(x y)^2)`: with `t = tanh(x y)` and `d = 2 t (1 - t^2)`, `dx = d y^T` and
/// `dy = x^T d`, computed here in f64. kiln computes in f32; every term is a product of
/// values below 5 in magnitude summed over 2 or 4 terms, so rounding stays within a few f32
/// ulp of values below 10, well inside the 1e-5 asked for.
#[test]
fn run_writes_gradients_that_match_the_analytic_ones() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("out");
    let out = kiln(
        &[
            "run",
            "tests/fixtures/example.kir",
            "--input",
            X,
            "--input",
            Y,
            "--output-dir",
            path_str(&dir),
            "--grad",
            "out",
            "--wrt",
            "x,y",
        ],
        Some(&tmp),
    );
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    let x = read_npy("tests/fixtures/example_x.npy")
        .unwrap()
        .to_f64_vec();
    let y = read_npy("tests/fixtures/example_y.npy")
        .unwrap()
        .to_f64_vec();
    let (n, k, m) = (4, 3, 2);
    let mut d = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            let s: f64 = (0..k).map(|l| x[i * k + l] * y[l * m + j]).sum();
            let t = s.tanh();
            d[i * m + j] = 2.0 * t * (1.0 - t * t);
        }
    }
    let dx: Vec<f64> = (0..n * k)
        .map(|e| {
            (0..m)
                .map(|j| d[(e / k) * m + j] * y[(e % k) * m + j])
                .sum()
        })
        .collect();
    let dy: Vec<f64> = (0..k * m)
        .map(|e| (0..n).map(|i| x[i * k + e / m] * d[i * m + e % m]).sum())
        .collect();
    for (name, want) in [("grad_x", dx), ("grad_y", dy)] {
        let got = read_npy(dir.join(format!("{name}.npy"))).unwrap();
        assert_eq!(got.dtype(), kiln::compiler::DType::F32);
        for (i, (g, w)) in got.to_f64_vec().iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-5, "{name}[{i}]: kiln {g}, analytic {w}");
        }
    }
}

#[test]
fn dump_shows_the_compiled_stages_of_the_mlp_train_step() {
    let kernels = kiln(&["dump", "mlp", "--stage", "kernels"], None);
    assert_eq!(kernels.status, Some(0), "{}", kernels.stderr);
    assert!(kernels.stdout.starts_with("program mlp_train {"));
    let count = |s: &str| s.lines().filter(|l| l.starts_with("  k")).count();
    let unfused = kiln(&["dump", "mlp", "--stage", "kernels", "--no-fuse"], None);
    assert!(
        count(&kernels.stdout) * 3 < count(&unfused.stdout),
        "fusion makes far fewer kernels"
    );
    let loops = kiln(&["dump", "mlp", "--stage", "loops"], None);
    assert!(loops.stdout.contains("by 4 lanes, then a scalar tail"));
    let clif = kiln(
        &["dump", "tests/fixtures/example.kir", "--stage", "clif"],
        None,
    );
    assert_eq!(clif.status, Some(0), "{}", clif.stderr);
    assert!(clif.stdout.contains("function u0:"), "{}", clif.stdout);
    let asm = kiln(
        &["dump", "tests/fixtures/example.kir", "--stage", "asm"],
        None,
    );
    assert_eq!(asm.status, Some(0), "{}", asm.stderr);
    assert!(asm.stdout.starts_with("k"), "{}", asm.stdout);
    assert!(asm.stdout.contains("ret"), "{}", asm.stdout);
}

#[test]
fn run_compiled_and_interpreted_agree() {
    let tmp = TempDir::new().unwrap();
    let run = |extra: &[&str], dir: &str| {
        let out = tmp.path().join(dir);
        let mut args = vec![
            "run",
            "tests/fixtures/example.kir",
            "--input",
            X,
            "--input",
            Y,
            "--output-dir",
            path_str(&out),
        ];
        args.extend(extra);
        let o = kiln(&args, Some(&tmp));
        assert_eq!(o.status, Some(0), "{}", o.stderr);
        read_npy(out.join("out.npy")).unwrap().to_f64_vec()
    };
    let (jit, unfused, interp) = (
        run(&[], "a"),
        run(&["--no-fuse"], "b"),
        run(&["--interpret"], "c"),
    );
    for ((a, b), c) in jit.iter().zip(&unfused).zip(&interp) {
        assert!(
            (a - c).abs() <= 1e-6 && (b - c).abs() <= 1e-6,
            "{a} {b} {c}"
        );
    }
}

/// `y = log(x)` with the source location `model.rs:3:8` on the log.
const LOG_KIR: &str = "graph logs {
  %x = input \"x\" : f32[4]
  %y = log %x : f32[4] loc(\"model.rs\":3:8)
  output y = %y
}
";

#[test]
fn run_check_numerics_names_the_kernel_node_and_line_of_a_nan() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("logs.kir");
    fs::write(&kir, LOG_KIR).unwrap();
    let x = tmp.path().join("x.npy");
    write_npy(
        &x,
        &Array::from_f32([4], vec![1.0, 2.0, -1.0, 4.0]).unwrap(),
    )
    .unwrap();
    let binding = format!("x={}", path_str(&x));
    let dir = tmp.path().join("out");
    let mut args = vec!["run", path_str(&kir), "-i", &binding, "-o", path_str(&dir)];
    let unchecked = kiln(&args, Some(&tmp));
    assert_eq!(unchecked.status, Some(0), "{}", unchecked.stderr);
    fs::remove_dir_all(&dir).unwrap();
    args.push("--check-numerics");
    let msg = user_error(&kiln(&args, Some(&tmp)), &tmp);
    insta::assert_snapshot!(msg, @"error: kernel k0 produced NaN in `log` %y at element [2] (model.rs:3:8)");
    let x = tmp.path().join("x.npy");
    write_npy(
        &x,
        &Array::from_f32([4], vec![1.0, f32::INFINITY, 3.0, 4.0]).unwrap(),
    )
    .unwrap();
    let msg = user_error(&kiln(&args, Some(&tmp)), &tmp);
    insta::assert_snapshot!(msg, @"error: input `x` holds infinity at element [1]");
}

#[test]
fn run_and_dump_refuse_a_graph_claiming_a_trillion_elements() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("huge.kir");
    let src = "graph huge {\n  %c = constant 1.0 : f32[1,1]\n  \
               %y = broadcast %c : f32[1000000,1000000]\n  output y = %y\n}\n";
    fs::write(&kir, src).unwrap();
    let dir = tmp.path().join("out");
    for extra in [&["--interpret"][..], &[], &["--no-fuse"]] {
        let mut args = vec!["run", path_str(&kir), "-o", path_str(&dir)];
        args.extend(extra);
        let msg = user_error(&kiln(&args, Some(&tmp)), &tmp);
        assert!(msg.ends_with(HUGE_REFUSED), "{msg}");
    }
    for stage in ["kernels", "loops", "clif"] {
        let out = kiln(&["dump", path_str(&kir), "--stage", stage], Some(&tmp));
        assert_eq!(out.status, Some(2), "{}", out.stderr);
        assert!(
            out.stderr.trim_end().ends_with(HUGE_REFUSED),
            "{}",
            out.stderr
        );
    }
}

/// `kiln run --max-memory` bounds what the compiled program allocates: a program over it is
/// refused with the bytes it needs, the limit and the batch that fits; a larger limit runs it.
#[test]
fn run_refuses_a_program_over_its_max_memory() {
    let tmp = TempDir::new().unwrap();
    let kir = tmp.path().join("double.kir");
    let src = "graph double {\n  %x = input \"x\" : f32[64,100]\n  \
               %c = constant 2.0 : f32[1,1]\n  %b = broadcast %c : f32[64,100]\n  \
               %y = mul %x, %b : f32[64,100]\n  output y = %y\n}\n";
    fs::write(&kir, src).unwrap();
    let x = tmp.path().join("x.npy");
    write_npy(&x, &Array::from_f32([64, 100], vec![1.0; 6400]).unwrap()).unwrap();
    let binding = format!("x={}", path_str(&x));
    let dir = tmp.path().join("out");
    let run = |limit: &str| {
        let args = ["run", path_str(&kir), "-i", &binding, "-o", path_str(&dir)];
        kiln(&[&args[..], &["--max-memory", limit]].concat(), Some(&tmp))
    };
    // The output's 25,600 bytes and the arena's 128 of slack, all in proportion to the batch.
    let msg = user_error(&run("16K"), &tmp);
    assert_eq!(
        msg,
        "error: the program needs 25728 bytes (25.1 KiB: an arena of 25728 and 0 of scratch), \
         more than the memory limit of 16384 bytes (16.0 KiB; raise it with --max-memory or \
         Options::max_memory); it would fit at batch 40 or less (an estimate: the 0 bytes of \
         params, state and constants stay, the other 25728 shrink in proportion to the batch, \
         64 now)"
    );
    let out = run("1M");
    assert_eq!(out.status, Some(0), "{}", out.stderr);
    assert_eq!(
        read_npy(dir.join("y.npy")).unwrap().to_f64_vec(),
        vec![2.0; 6400]
    );
    let out = run("lots");
    assert_eq!(out.status, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("expected bytes"), "{}", out.stderr);
}

/// How `kiln run` and `kiln dump` refuse a value of a trillion elements.
const HUGE_REFUSED: &str = "node 1 (broadcast) computes f32[1000000,1000000], more than the \
                            2147483648 elements a value may have";
