//! Replays every committed fuzz corpus file (fuzz/corpus/<target>/) through the fuzz targets'
//! bodies (fuzz/harness.rs), so inputs that once crashed kiln, and the seeds that cover each
//! format, are checked by `cargo test` without cargo-fuzz.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::fs;
use std::path::Path;

/// Runs `body` on every file of the corpus of `target`, naming each on stderr (shown if one
/// panics).
fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    for path in files {
        eprintln!("{}", path.display());
        body(&fs::read(&path).unwrap());
    }
}

#[test]
fn the_kir_corpus_replays() {
    replay("kir", harness::kir);
}

#[test]
fn the_npy_corpus_replays() {
    replay("npy", harness::npy);
}

#[test]
fn the_idx_corpus_replays() {
    replay("idx", harness::idx);
}

#[test]
fn the_checkpoint_corpus_replays() {
    replay("checkpoint", harness::checkpoint);
}

#[test]
fn the_graphs_corpus_replays() {
    replay("graphs", harness::graphs);
}

#[test]
fn the_csv_corpus_replays() {
    replay("csv", harness::csv);
}

#[test]
fn the_npz_corpus_replays() {
    replay("npz", harness::npz);
}

#[test]
fn the_safetensors_corpus_replays() {
    replay("safetensors", harness::safetensors);
}
