//! The bodies of kiln's fuzz targets, one function per target. The cargo-fuzz binaries
//! (fuzz/fuzz_targets/) call them on the fuzzer's inputs and tests/fuzz_corpus.rs on every
//! committed corpus file, so a regression is caught by `cargo test` without cargo-fuzz.
//!
//! Each body feeds its bytes to a public entry point and checks what must hold whatever the
//! bytes: no panic, a typed error for a refusal, and the invariants of what is accepted.

use kiln_compiler::testing::random_graph;
use kiln_compiler::text::{parse, print};
use kiln_compiler::{DType, Graph, verify};
use kiln_runtime::data::{
    DataError, Dataset, read_csv_bytes, read_npz_bytes, read_safetensors_bytes,
};
use kiln_runtime::idx::read_idx_from;
use kiln_runtime::npy::read_npy_bytes;
use kiln_runtime::testing::{Discrepancy, check_against_interpreter};
use kiln_runtime::{CompileError, checkpoint};
use std::path::Path;

/// The name errors give the fuzzer's input.
const ORIGIN: &str = "fuzz-input";

/// The most elements all the values of a parsed graph may have together for the `kir` target
/// to evaluate and compile it: keeps one execution within milliseconds. Larger graphs are
/// parsed and verified only.
pub const KIR_MAX_ELEMENTS: usize = 1 << 16;

/// The most random ops the `graphs` target asks the generator for (as tests/jit_random.rs).
pub const GRAPHS_MAX_STEPS: usize = 40;

/// `.npy` bytes: read or refused; an array read has as many elements as its shape says.
pub fn npy(data: &[u8]) {
    if let Ok(a) = read_npy_bytes(data, ORIGIN) {
        assert_eq!(a.numel(), a.shape().iter().product::<usize>());
    }
}

/// IDX bytes, plain or gzip: read or refused; what is read fills its shape.
pub fn idx(data: &[u8]) {
    if let Ok(i) = read_idx_from(data, Path::new(ORIGIN)) {
        assert_eq!(i.data.len(), i.shape.iter().product::<usize>());
    }
}

/// Checkpoint bytes: loaded or refused; a loaded checkpoint's tensors are sorted by name.
pub fn checkpoint(data: &[u8]) {
    if let Ok(ck) = checkpoint::load_bytes(data, ORIGIN) {
        assert!(ck.tensors.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}

/// CSV bytes: a data set or a refusal; an accepted one has `len()` examples in every column,
/// each an `f64` vector.
pub fn csv(data: &[u8]) {
    let read = read_csv_bytes(data, Path::new(ORIGIN));
    if let Ok(d) = examples(read) {
        let f64_vector = |a: &kiln_compiler::Array| a.shape().len() == 1 && a.dtype() == DType::F64;
        assert!(d.columns().iter().all(|(_, a)| f64_vector(a)));
    }
}

/// `.npz` bytes: a data set or a refusal (zip bombs included: each member is expanded no further
/// than its declared size and one byte); an accepted one has `len()` examples in every column.
pub fn npz(data: &[u8]) {
    let _ = examples(read_npz_bytes(data, Path::new(ORIGIN)));
}

/// Safetensors bytes read as a data set: a data set or a refusal; an accepted one has `len()`
/// examples in every column.
pub fn safetensors(data: &[u8]) {
    let _ = examples(read_safetensors_bytes(data, Path::new(ORIGIN)));
}

/// What a data reader returned, checked: a refusal displays and names the input; a data set has
/// columns, each with `len()` examples along its first axis and as many elements as its shape.
fn examples(read: Result<Dataset, DataError>) -> Result<Dataset, DataError> {
    match &read {
        Ok(d) => {
            assert!(!d.columns().is_empty());
            for (name, a) in d.columns() {
                assert_eq!(a.shape().first(), Some(&d.len()), "column `{name}`");
                assert_eq!(a.numel(), a.shape().iter().product::<usize>());
            }
        }
        Err(e) => assert!(e.to_string().contains(ORIGIN), "{e}"),
    }
    read
}

/// `.kir` text: parsed or refused with a parse error. A parsed graph prints to text that parses
/// back to the same text, and is verified; a verified graph of at most [`KIR_MAX_ELEMENTS`]
/// elements, compiled three ways, matches the interpreter (as the `graphs` target checks), or
/// compiling is refused with a typed error.
pub fn kir(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(g) = parse(text) else {
        return;
    };
    let printed = print(&g);
    let again = parse(&printed).unwrap_or_else(|e| panic!("printed text does not parse: {e}"));
    assert_eq!(
        print(&again),
        printed,
        "the printed text does not round-trip"
    );
    if verify(&g).is_err() || too_large(&g) {
        return;
    }
    compare(&g, 1);
}

/// Bytes choosing a random well-formed graph (a seed and a number of steps, from the first nine
/// bytes): compiled optimized and fused, fused only, and unfused, each run matches the
/// interpreter under the rule of `kiln_runtime::testing`, or compilation is refused with a
/// typed error.
pub fn graphs(data: &[u8]) {
    let mut seed = [0u8; 8];
    let n = data.len().min(8);
    seed[..n].copy_from_slice(&data[..n]);
    let seed = u64::from_le_bytes(seed);
    let steps = data
        .get(8)
        .map_or(0, |&b| usize::from(b) % (GRAPHS_MAX_STEPS + 1));
    let g = random_graph(seed, steps);
    compare(&g, seed);
}

/// Compiled optimized and fused, fused only, and unfused, `g` matches the interpreter under
/// the rule of `kiln_runtime::testing` on the inputs `seed` picks, or compilation is refused
/// with a typed error.
fn compare(g: &Graph, seed: u64) {
    match check_against_interpreter(g, seed) {
        Ok(()) => {}
        Err(Discrepancy::Compile { source, .. }) => refused(&source),
        Err(e) => panic!("seed {seed}: {e}"),
    }
}

/// True when the values of `g` have more than [`KIR_MAX_ELEMENTS`] elements together.
fn too_large(g: &Graph) -> bool {
    let total = g
        .node_ids()
        .map(|id| g.node(id).ty.numel())
        .fold(0usize, usize::saturating_add);
    total > KIR_MAX_ELEMENTS
}

/// A compile refusal: a typed error that displays.
fn refused(e: &CompileError) {
    assert!(!e.to_string().is_empty());
}
