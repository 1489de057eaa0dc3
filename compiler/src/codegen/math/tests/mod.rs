//! The approximations JIT-compiled on the host and checked against Rust's f64 functions: special
//! values exactly, sampled sweeps within the documented bounds, scalar and vector paths bit for
//! bit. `exhaustive_f32` and `throughput_per_core` (ignored; run them in release) measure the
//! table in docs/math.md.

mod harness;

use std::time::Instant;

use harness::{Bits, Elem, Func, Kernel, disassembly, targets, ulp_distance_f64, ulp_error_f32};

use super::MathTarget;

/// The largest f32 error (in ulp of the correctly rounded result) each function has, with or
/// without FMA: the measured maximum over every f32 (docs/math.md), rounded up.
fn bound_f32(f: Func) -> f64 {
    match f {
        Func::Exp | Func::ExpNonpositive => 1.17,
        Func::Log => 0.85,
        Func::Tanh => 6.57,
        Func::Sigmoid => 2.41,
        Func::Min | Func::Max => 0.0,
    }
}

/// The largest f64 distance (in ulp) from Rust's f64 functions, whose own error is up to 1 ulp:
/// the maximum measured over the sampled inputs (docs/math.md) plus 1 for inputs not sampled.
fn bound_f64(f: Func) -> u64 {
    match f {
        Func::Exp | Func::ExpNonpositive | Func::Log => 2,
        Func::Sigmoid => 3,
        Func::Tanh => 4,
        Func::Min | Func::Max => 0,
    }
}

/// f32 inputs where something happens: zeros, infinities, NaNs, the ends of the normal and
/// subnormal ranges, the overflow and underflow thresholds of exp, tanh's clamps.
fn special_f32() -> Vec<f32> {
    let mut v = vec![
        0.0,
        1.0,
        0.5,
        2.0,
        f32::INFINITY,
        f32::NAN,
        f32::MIN_POSITIVE,
        f32::from_bits(0x007f_ffff),
        f32::from_bits(1),
        f32::MAX,
        std::f32::consts::LN_2,
        88.7,
        88.72,
        88.722_83,
        88.722_84,
        88.73,
        89.0,
        87.3,
        87.34,
        103.0,
        103.97,
        104.0,
        150.0,
        1e-30,
        1e-10,
        1e30,
        0.625,
        0.624_999_94,
        9.0,
        9.010_913,
        9.010_914,
        9.02,
        9.1,
        20.0,
        44.0,
        100.0,
    ];
    let negatives: Vec<f32> = v.iter().map(|x| -x).collect();
    v.extend(negatives);
    v
}

/// f64 inputs where something happens, as for f32.
fn special_f64() -> Vec<f64> {
    let mut v = vec![
        0.0,
        1.0,
        0.5,
        2.0,
        f64::INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
        f64::from_bits(0x000f_ffff_ffff_ffff),
        f64::from_bits(1),
        f64::MAX,
        std::f64::consts::LN_2,
        88.72,
        709.0,
        709.78,
        709.782_712_893_384,
        709.79,
        710.0,
        708.4,
        708.39,
        744.0,
        745.13,
        746.0,
        1100.0,
        1e-300,
        1e-30,
        1e300,
        0.625,
        0.624_999_999_999_999_9,
        19.0,
        20.0,
        40.0,
        400.0,
    ];
    let negatives: Vec<f64> = v.iter().map(|x| -x).collect();
    v.extend(negatives);
    v
}

/// Whether a result `rounded` (the correctly rounded value) must be met bit for bit: NaN (any
/// NaN), the infinities, signed zeros and +-1.
fn must_be_exact(rounded: f64) -> bool {
    rounded.is_nan() || rounded.is_infinite() || rounded == 0.0 || rounded.abs() == 1.0
}

#[test]
fn emitted_code_is_straight_line() {
    let types = [f32::SCALAR, f32::VECTOR, f64::SCALAR, f64::VECTOR];
    for t in targets() {
        for f in Func::ALL {
            for ty in types {
                let asm = disassembly(f, ty, t);
                for line in asm.lines() {
                    let op = line.split_whitespace().next().unwrap_or("");
                    assert!(
                        !op.starts_with('j') && !op.starts_with("call") && op != "block1:",
                        "{f:?} on {ty} ({t:?}) branches or calls: {line}\n{asm}"
                    );
                }
            }
        }
    }
}

#[test]
fn special_values_f32() {
    let xs = special_f32();
    for t in targets() {
        for f in Func::UNARY {
            for ty in [f32::SCALAR, f32::VECTOR] {
                let ys = Kernel::new(f, ty, t).map(&xs);
                for (&x, &y) in xs.iter().zip(&ys) {
                    let exact = f.reference(f64::from(x));
                    let rounded = exact as f32;
                    if must_be_exact(f64::from(rounded)) {
                        assert!(
                            y.to_bits() == rounded.to_bits() || (y.is_nan() && rounded.is_nan()),
                            "{f:?}({x:e}) on {ty} ({t:?}) = {y:e}, expected {rounded:e}"
                        );
                    }
                    let err = ulp_error_f32(y, exact);
                    assert!(
                        err <= bound_f32(f),
                        "{f:?}({x:e}) on {ty} ({t:?}) = {y:e}: {err} ulp from {exact:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn special_values_f64() {
    let xs = special_f64();
    for t in targets() {
        for f in Func::UNARY {
            for ty in [f64::SCALAR, f64::VECTOR] {
                let ys = Kernel::new(f, ty, t).map(&xs);
                for (&x, &y) in xs.iter().zip(&ys) {
                    let exact = f.reference(x);
                    if must_be_exact(exact) {
                        assert!(
                            y.to_bits() == exact.to_bits() || (y.is_nan() && exact.is_nan()),
                            "{f:?}({x:e}) on {ty} ({t:?}) = {y:e}, expected {exact:e}"
                        );
                    }
                    let err = ulp_distance_f64(y, exact);
                    assert!(
                        err <= bound_f64(f),
                        "{f:?}({x:e}) on {ty} ({t:?}) = {y:e}: {err} ulp from {exact:e}"
                    );
                }
            }
        }
    }
}

#[test]
fn tanh_of_tiny_is_the_identity() {
    let xs32: Vec<f32> = [
        1e-30,
        1e-20,
        1e-10,
        2e-4,
        f32::from_bits(1),
        f32::MIN_POSITIVE,
    ]
    .into_iter()
    .flat_map(|x| [x, -x])
    .collect();
    let xs64: Vec<f64> = [1e-300, 1e-100, 1e-20, 1e-9, f64::from_bits(1)]
        .into_iter()
        .flat_map(|x| [x, -x])
        .collect();
    for t in targets() {
        let ys = Kernel::new(Func::Tanh, f32::VECTOR, t).map(&xs32);
        assert_eq!(bits32(&ys), bits32(&xs32), "{t:?}");
        let ys = Kernel::new(Func::Tanh, f64::VECTOR, t).map(&xs64);
        assert_eq!(bits64(&ys), bits64(&xs64), "{t:?}");
    }
}

#[test]
fn tanh_never_leaves_minus_one_to_one() {
    // Every f32 from 4 to past the fit's end, where the result rounds to 1 or just below and
    // the evaluation's roundings could carry it over.
    let xs: Vec<f32> = (4f32.to_bits()..=9.5f32.to_bits())
        .map(f32::from_bits)
        .flat_map(|x| [x, -x])
        .collect();
    for t in targets() {
        let ys = Kernel::new(Func::Tanh, f32::VECTOR, t).map(&xs);
        for (x, y) in xs.iter().zip(&ys) {
            assert!(y.abs() <= 1.0, "tanh({x:e}) = {y:e} on {t:?}");
        }
    }
}

/// The bits of each value.
fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The bits of each value.
fn bits64(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Every `stride`th f32 bit pattern, over all signs and binades.
fn sampled_f32(stride: usize) -> Vec<f32> {
    (0..=u32::MAX).step_by(stride).map(f32::from_bits).collect()
}

/// `n` f64 inputs: a quarter arbitrary bit patterns, a quarter uniform in `[-800, 800]`, a
/// quarter of magnitude `2^u`, `u` uniform in `[-60, 12]`, a quarter near 1.
fn sampled_f64(n: usize) -> Vec<f64> {
    let unit = |b: u64| (b >> 11) as f64 / (1u64 << 53) as f64;
    Bits(1)
        .take(n)
        .enumerate()
        .map(|(i, b)| {
            let sign = if b & 1 == 0 { 1.0 } else { -1.0 };
            match i % 4 {
                0 => f64::from_bits(b),
                1 => 1600.0 * unit(b) - 800.0,
                2 => sign * (72.0 * unit(b) - 60.0).exp2(),
                _ => 0.5 + unit(b),
            }
        })
        .collect()
}

/// The largest error of the results `ys` of `f` at `xs`, and an input that has it.
fn worst_f32(f: Func, xs: &[f32], ys: &[f32]) -> (f64, f32) {
    xs.iter()
        .zip(ys)
        .map(|(&x, &y)| (ulp_error_f32(y, f.reference(f64::from(x))), x))
        .fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a })
}

#[test]
fn f32_sampled_sweep_within_bounds() {
    let xs = sampled_f32(997);
    for t in targets() {
        for f in Func::UNARY {
            let ys = Kernel::new(f, f32::VECTOR, t).map(&xs);
            let (err, x) = worst_f32(f, &xs, &ys);
            assert!(err <= bound_f32(f), "{f:?} ({t:?}): {err} ulp at {x:e}");
        }
    }
}

#[test]
fn f64_sampled_sweep_within_bounds() {
    let xs = sampled_f64(1 << 20);
    for t in targets() {
        for f in Func::UNARY {
            let ys = Kernel::new(f, f64::VECTOR, t).map(&xs);
            let (err, x) = xs
                .iter()
                .zip(&ys)
                .map(|(&x, &y)| (ulp_distance_f64(y, f.reference(x)), x))
                .fold((0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
            // The f64 rows of docs/math.md (`-- --nocapture`).
            println!("| {f:?} | {} | {err} | {x:e} |", t.fma);
            assert!(err <= bound_f64(f), "{f:?} ({t:?}): {err} ulp at {x:e}");
        }
    }
}

/// The results of `f` over `(a, b)` computed as scalars and as vectors of `T`.
fn both_paths<T: Elem>(f: Func, t: MathTarget, a: &[T], b: &[T]) -> (Vec<T>, Vec<T>) {
    let scalar = Kernel::new(f, T::SCALAR, t).run(a, b);
    let vector = Kernel::new(f, T::VECTOR, t).run(a, b);
    (scalar, vector)
}

#[test]
fn scalar_and_vector_paths_agree_bit_for_bit() {
    let a32 = sampled_f32(9973);
    let b32: Vec<f32> = a32.iter().rev().copied().collect();
    let a64 = sampled_f64(1 << 16);
    let b64: Vec<f64> = a64.iter().rev().copied().collect();
    for t in targets() {
        for f in Func::ALL {
            let (s, v) = both_paths(f, t, &a32, &b32);
            assert!(bits32(&s) == bits32(&v), "{f:?} f32 ({t:?})");
            let (s, v) = both_paths(f, t, &a64, &b64);
            assert!(bits64(&s) == bits64(&v), "{f:?} f64 ({t:?})");
        }
    }
}

/// The inputs of `xs` that [`Func::ExpNonpositive`] accepts: those `<= 0` and NaN.
fn nonpositive<T: Elem>(xs: &[T]) -> Vec<T> {
    let accepted = |x: &T| x.to_f64() <= 0.0 || x.to_f64().is_nan();
    xs.iter().copied().filter(accepted).collect()
}

/// The softmax's `exp_nonpositive` computes `exp`'s bits wherever it applies (its polynomial
/// is scaled by `2^-64` and the power of two by `2^64` instead of two factors): sampled f32
/// and f64 at or below zero with the special values (`-0`, subnormals, the underflow
/// threshold, `-inf`, NaN). `exhaustive_f32` checks every f32.
#[test]
fn exp_nonpositive_is_exp_bit_for_bit() {
    let x32 = nonpositive(&[sampled_f32(997), special_f32()].concat());
    let x64 = nonpositive(&[sampled_f64(1 << 18), special_f64()].concat());
    for t in targets() {
        let exp = Kernel::new(Func::Exp, f32::VECTOR, t).map(&x32);
        let ours = Kernel::new(Func::ExpNonpositive, f32::VECTOR, t).map(&x32);
        assert!(bits32(&ours) == bits32(&exp), "f32 ({t:?})");
        let exp = Kernel::new(Func::Exp, f64::VECTOR, t).map(&x64);
        let ours = Kernel::new(Func::ExpNonpositive, f64::VECTOR, t).map(&x64);
        assert!(bits64(&ours) == bits64(&exp), "f64 ({t:?})");
    }
}

/// The reference interpreter's minimum or maximum: NaN if either is NaN, `-0 < +0`.
fn ieee_min_max(max: bool, a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else if a == b {
        if a.is_sign_negative() != max { a } else { b }
    } else if (a > b) == max {
        a
    } else {
        b
    }
}

/// Checks min and max of every pair of `values` as `T`, scalar and vector.
fn check_min_max<T: Elem>(values: &[f64]) {
    let pairs: Vec<(f64, f64)> = values
        .iter()
        .flat_map(|&x| values.iter().map(move |&y| (x, y)))
        .collect();
    let a: Vec<T> = pairs.iter().map(|p| T::from_f64(p.0)).collect();
    let b: Vec<T> = pairs.iter().map(|p| T::from_f64(p.1)).collect();
    for f in [Func::Min, Func::Max] {
        for ty in [T::SCALAR, T::VECTOR] {
            let got = Kernel::new(f, ty, MathTarget { fma: false }).run(&a, &b);
            for (&(x, y), &r) in pairs.iter().zip(&got) {
                let want = ieee_min_max(f == Func::Max, x, y);
                let ok = if want.is_nan() {
                    r.to_f64().is_nan()
                } else {
                    r.bits() == T::from_f64(want).bits()
                };
                assert!(ok, "{f:?}({x}, {y}) on {ty}: {r:?}, expected {want}");
            }
        }
    }
}

#[test]
fn min_and_max_propagate_nan_and_order_zeros() {
    let values = [
        f64::NAN,
        -f64::NAN,
        f64::NEG_INFINITY,
        -1.5,
        -f64::from(f32::from_bits(1)),
        -0.0,
        0.0,
        f64::from(f32::from_bits(1)),
        1.0,
        1.5,
        f64::INFINITY,
    ];
    check_min_max::<f32>(&values);
    check_min_max::<f64>(&values);
}

/// The largest error of `f` over every f32 input on f32x4 lanes, and the input that has it
/// (two threads, each over half of the bit patterns).
fn exhaustive_f32_max_error(f: Func, t: MathTarget) -> (f64, f32) {
    const CHUNK: u64 = 1 << 22;
    let half = |lo: u64| {
        let kernel = Kernel::new(f, f32::VECTOR, t);
        let mut worst = (0.0, 0.0);
        for start in (lo..lo + (1 << 31)).step_by(CHUNK as usize) {
            let xs: Vec<f32> = (start..start + CHUNK)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            let chunk = worst_f32(f, &xs, &kernel.map(&xs));
            if chunk.0 > worst.0 {
                worst = chunk;
            }
        }
        worst
    };
    std::thread::scope(|s| {
        let upper = s.spawn(|| half(1 << 31));
        let lower = half(0);
        let upper = upper.join().unwrap();
        if upper.0 > lower.0 { upper } else { lower }
    })
}

/// Elements per second (in G) of `f` over 16M elements of `T` in `ty` steps, in and out of
/// memory (128 MB for f32), best of five runs.
fn throughput<T: Elem>(f: Func, t: MathTarget, ty: cranelift_codegen::ir::Type) -> f64 {
    const N: usize = 1 << 24;
    let kernel = Kernel::new(f, ty, t);
    // Normal inputs and results: no subnormal slow paths.
    let xs: Vec<T> = (0..N)
        .map(|i| {
            let u = (i.wrapping_mul(2_654_435_761) % (1 << 20)) as f64 / f64::from(1 << 20);
            T::from_f64(if f == Func::Log {
                100.0 * u + 0.01
            } else {
                20.0 * u - 10.0
            })
        })
        .collect();
    let mut ys = xs.clone();
    (0..5)
        .map(|_| {
            let start = Instant::now();
            kernel.run_into(std::hint::black_box(&xs), &xs, &mut ys);
            std::hint::black_box(&ys);
            N as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// Prints the error columns of the table in docs/math.md, the largest error over every f32
/// input with and without FMA, and checks them against the bounds, and that
/// `exp_nonpositive` gives `exp`'s bits at every f32 with the sign bit set. In release mode (a
/// few minutes on two cores):
/// `cargo test --release -p kiln-compiler exhaustive -- --ignored --nocapture`.
#[test]
#[ignore = "minutes in release mode; measures docs/math.md"]
fn exhaustive_f32() {
    println!("| function | FMA | max ulp (f32) | at x |");
    for t in targets() {
        for f in Func::UNARY {
            let (err, at) = exhaustive_f32_max_error(f, t);
            println!("| {f:?} | {} | {err:.3} | {at:e} |", t.fma);
            assert!(err <= bound_f32(f), "{f:?} ({t:?}): {err} ulp at {at:e}");
        }
        let (exp, ours) = (Func::Exp, Func::ExpNonpositive);
        let (exp, ours) = (
            Kernel::new(exp, f32::VECTOR, t),
            Kernel::new(ours, f32::VECTOR, t),
        );
        for start in ((1u64 << 31)..(1 << 32)).step_by(1 << 22) {
            let xs: Vec<f32> = (start..start + (1 << 22))
                .map(|b| f32::from_bits(b as u32))
                .collect();
            let same = bits32(&ours.map(&xs)) == bits32(&exp.map(&xs));
            assert!(same, "exp_nonpositive ({t:?}) from {:e}", xs[0]);
        }
    }
}

/// Prints the throughput columns of the table in docs/math.md: elements per second of the
/// f32x4, f32 and f64x2 loops on one core. In release mode, on an otherwise idle machine:
/// `cargo test --release -p kiln-compiler throughput -- --ignored --nocapture --test-threads 1`.
#[test]
#[ignore = "timing; measures docs/math.md"]
fn throughput_per_core() {
    println!("| function | FMA | f32x4 G/s | f32 G/s | f64x2 G/s |");
    for t in targets() {
        for f in Func::ALL {
            let v32 = throughput::<f32>(f, t, f32::VECTOR);
            let s32 = throughput::<f32>(f, t, f32::SCALAR);
            let v64 = throughput::<f64>(f, t, f64::VECTOR);
            println!("| {f:?} | {} | {v32:.2} | {s32:.2} | {v64:.2} |", t.fma);
        }
    }
}
