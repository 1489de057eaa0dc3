//! `kiln::mpi::Mpi` in a real MPI job of two ranks (a test without the libtest harness; needs
//! the `mpi` feature: `cargo test --features mpi --test mpi_ranks`).
//!
//! Run directly, this program is the launcher: it runs itself under
//! `mpirun --allow-run-as-root --oversubscribe -np 2` twice, once to check the collectives on
//! each rank and that two ranks train the MLP and LeNet as one process does, and once to check that one rank's `abort` ends the whole job, and fails if either
//! job does not end as it should in time. Under `mpirun` (Open MPI sets `OMPI_COMM_WORLD_SIZE`
//! in each rank's environment) it is one rank, and its argument says which scenario it runs.
//! Without an `mpirun` on the PATH the test is skipped.

use std::io::ErrorKind;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::time::{Duration, Instant};

use kiln::compiler::collective::{Communicator, Single, Threads};
use kiln::mpi::{Mpi, MpiError};
use std::sync::Arc;

#[path = "data_parallel/ranks.rs"]
mod ranks;

/// The argument that makes a rank check the collectives.
const CHECKS: &str = "--rank-checks";
/// The argument that makes rank 1 abort while rank 0 waits in an all-reduce.
const ABORT: &str = "--rank-abort";
/// The exit status rank 1 aborts the job with.
const ABORT_CODE: i32 = 3;

fn main() -> ExitCode {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    if std::env::var_os("OMPI_COMM_WORLD_SIZE").is_some() {
        match scenario.as_str() {
            CHECKS => checks(),
            ABORT => abort(),
            other => {
                eprintln!("mpi_ranks: a rank needs {CHECKS} or {ABORT}, not {other:?}");
                ExitCode::FAILURE
            }
        }
    } else {
        launch()
    }
}

/// The launcher: both jobs, each under a time limit.
fn launch() -> ExitCode {
    match Command::new("mpirun").arg("--version").output() {
        Err(e) if e.kind() == ErrorKind::NotFound => {
            println!("mpi_ranks: skipped, no mpirun on the PATH (install openmpi-bin)");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("mpi_ranks: cannot run mpirun: {e}");
            return ExitCode::FAILURE;
        }
        Ok(_) => {}
    }

    let started = Instant::now();
    let Some(status) = run_job(CHECKS, Duration::from_secs(120)) else {
        return ExitCode::FAILURE;
    };
    if !status.success() {
        eprintln!("mpi_ranks: the job checking the collectives failed: {status}");
        return ExitCode::FAILURE;
    }
    println!(
        "mpi_ranks: collectives checked on 2 ranks in {:.2} s (mpirun start-up included)",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let Some(status) = run_job(ABORT, Duration::from_secs(30)) else {
        return ExitCode::FAILURE;
    };
    if status.success() {
        eprintln!("mpi_ranks: the job where rank 1 aborts ended with success");
        return ExitCode::FAILURE;
    }
    println!(
        "mpi_ranks: rank 1's abort({ABORT_CODE}) ended the job in {:.2} s, mpirun exiting with {status}",
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// Runs this program as two ranks of `mpirun` with `scenario`; its exit status, or `None` (after
/// saying why) if it could not start or did not end within `limit` and was killed.
fn run_job(scenario: &str, limit: Duration) -> Option<ExitStatus> {
    let exe = std::env::current_exe().expect("the test program's path");
    let child = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(exe)
        .arg(scenario)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("mpi_ranks: cannot start mpirun: {e}");
            return None;
        }
    };
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                eprintln!(
                    "mpi_ranks: the {scenario} job did not end within {} s; killing it",
                    limit.as_secs()
                );
                stop(&mut child);
                return None;
            }
            Err(e) => {
                eprintln!("mpi_ranks: cannot wait for mpirun: {e}");
                stop(&mut child);
                return None;
            }
        }
    }
}

/// Ends `mpirun`: SIGTERM first, which it passes on to the ranks, then SIGKILL.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Rank `rank`'s `f32` input: values whose sums round, signed zeros, a subnormal.
fn input_f32(rank: usize) -> Vec<f32> {
    let r = rank as f32;
    vec![
        0.1 + r,
        1.0e-8 * (r + 1.0),
        -0.0,
        3.0e38,
        1.0e-40,
        (r + 1.0) / 3.0,
        16_777_216.0 + r,
    ]
}

/// Rank `rank`'s `f64` input.
fn input_f64(rank: usize) -> Vec<f64> {
    let r = rank as f64;
    vec![
        0.1 + r,
        1.0e-17 * (r + 1.0),
        -0.0,
        (r + 1.0) / 3.0,
        9.007_199_254_740_992e15 + r,
    ]
}

/// What a [`Threads`] job of two ranks gives for the same all-reduces: the expected results.
fn threads_sums() -> (Vec<f32>, Vec<f64>) {
    let handles: Vec<_> = Threads::group(2)
        .into_iter()
        .map(|c| {
            std::thread::spawn(move || {
                let mut x = input_f32(c.rank());
                c.all_reduce_f32(&mut x);
                let mut y = input_f64(c.rank());
                c.all_reduce_f64(&mut y);
                (x, y)
            })
        })
        .collect();
    let mut results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("a Threads rank panicked"))
        .collect();
    results.swap_remove(0)
}

/// Bits of the values, to compare sums exactly (`-0.0` against `0.0`, too).
fn bits_f32(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn bits_f64(values: &[f64]) -> Vec<u64> {
    values.iter().map(|v| v.to_bits()).collect()
}

/// A hash of the bits, gathered to check that both ranks got the same.
fn fingerprint(words: impl IntoIterator<Item = u64>) -> u64 {
    words.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, w| {
        (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One rank of the checking job: prints each check it passed, and fails on the first that does
/// not hold (the other rank then fails too, or is ended by mpirun).
fn checks() -> ExitCode {
    let mpi = match Mpi::init() {
        Ok(mpi) => Arc::new(mpi),
        Err(e) => {
            eprintln!("mpi_ranks: {e}");
            return ExitCode::FAILURE;
        }
    };
    let rank = mpi.rank();
    let say = |what: &str| println!("rank {rank}: {what}");
    let fail = |what: String| -> ExitCode {
        eprintln!("rank {rank}: FAILED: {what}");
        mpi.abort(1)
    };

    if mpi.size() != 2 {
        return fail(format!("size {} where mpirun started 2", mpi.size()));
    }
    say(&format!(
        "size 2, threading level {:?} (funneled asked)",
        mpi.threading()
    ));
    match Mpi::init() {
        Err(MpiError::AlreadyInitialized) => say("a second Mpi::init is refused"),
        other => return fail(format!("a second Mpi::init gave {other:?}")),
    }

    let ranks = mpi.all_gather(rank as u64);
    if ranks != [0, 1] {
        return fail(format!("all_gather of the ranks gave {ranks:?}"));
    }
    say("distinct ranks; all_gather gives [0, 1] in rank order");
    let big = mpi.all_gather(u64::MAX - rank as u64);
    if big != [u64::MAX, u64::MAX - 1] {
        return fail(format!("all_gather of u64::MAX - rank gave {big:?}"));
    }
    say("all_gather keeps all 64 bits");

    let (want_f32, want_f64) = threads_sums();
    let mut x = input_f32(rank);
    mpi.all_reduce_f32(&mut x);
    if bits_f32(&x) != bits_f32(&want_f32) {
        return fail(format!("all_reduce_f32 gave {x:?}, Threads {want_f32:?}"));
    }
    say(&format!("all_reduce_f32 gives Threads' bits: {x:?}"));
    let mut y = input_f64(rank);
    mpi.all_reduce_f64(&mut y);
    if bits_f64(&y) != bits_f64(&want_f64) {
        return fail(format!("all_reduce_f64 gave {y:?}, Threads {want_f64:?}"));
    }
    say(&format!("all_reduce_f64 gives Threads' bits: {y:?}"));
    let mine = fingerprint((bits_f32(&x).into_iter().map(u64::from)).chain(bits_f64(&y)));
    let both = mpi.all_gather(mine);
    if both[0] != both[1] {
        return fail(format!("the ranks' sums differ: fingerprints {both:?}"));
    }
    say("both ranks hold the same sums");

    let mut empty: [f32; 0] = [];
    mpi.all_reduce_f32(&mut empty);
    say("an empty all_reduce returns");

    let mut bytes: Vec<u8> = (0..=255)
        .map(|b: u8| b.wrapping_add(rank as u8 * 101))
        .collect();
    mpi.broadcast(&mut bytes);
    if bytes != (0..=255).collect::<Vec<u8>>() {
        return fail("broadcast did not give rank 0's bytes".into());
    }
    say("broadcast gives rank 0's 256 bytes");

    // A gradient-sized all-reduce, timed: 1 Mi f32 (4 MiB), the median of 9 calls.
    let mut grad = vec![rank as f32 + 0.5; 1 << 20];
    let mut times = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        mpi.all_reduce_f32(&mut grad);
        times.push(started.elapsed());
    }
    times.sort();
    // 0.5 + 1.5 by the first sum, doubled by each of the 8 others.
    let expected = 2.0f32.powi(9);
    if grad.iter().any(|&g| g != expected) {
        return fail(format!(
            "1 Mi all_reduce_f32 gave {}, not {expected}",
            grad[0]
        ));
    }
    say(&format!(
        "all_reduce_f32 of 1 Mi floats (4 MiB): median {:.2} ms",
        times[4].as_secs_f64() * 1e3
    ));

    // Two ranks train what one process trains (tests/data_parallel.rs says why 1e-5).
    let data = ranks::digits(50 * 64);
    for model in ["mlp", "lenet"] {
        let (losses, hashes, _) = ranks::train(model, &data, 2, mpi.clone());
        let last = mpi.all_gather(*hashes.last().expect("two epochs"));
        if last[0] != last[1] {
            return fail(format!(
                "{model}: the ranks' parameters differ after training"
            ));
        }
        if rank == 0 {
            let (want, _, _) = ranks::train(model, &data, 2, Arc::new(Single));
            if let Some(e) = ranks::differs(model, &losses, &want) {
                return fail(e);
            }
        }
        say(&format!(
            "{model}: 100 steps at batch 64 over 2 ranks match one process; equal parameters"
        ));
    }
    ExitCode::SUCCESS
}

/// One rank of the aborting job: rank 1 aborts while rank 0 waits for it in an all-reduce, which
/// must never return.
fn abort() -> ExitCode {
    let mpi = match Mpi::init() {
        Ok(mpi) => mpi,
        Err(e) => {
            eprintln!("mpi_ranks: {e}");
            return ExitCode::FAILURE;
        }
    };
    if mpi.rank() == 1 {
        std::thread::sleep(Duration::from_millis(300));
        println!("rank 1: aborting the job with code {ABORT_CODE}");
        mpi.abort(ABORT_CODE)
    }
    println!("rank 0: waiting in all_reduce_f32 for rank 1, which aborts");
    let mut x = vec![1.0f32; 4];
    mpi.all_reduce_f32(&mut x);
    eprintln!("rank 0: FAILED: all_reduce_f32 returned although rank 1 aborted");
    ExitCode::FAILURE
}
