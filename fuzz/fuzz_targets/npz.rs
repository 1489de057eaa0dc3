//! The `npz` fuzz target; its body is `harness::npz` (fuzz/harness.rs).

#![no_main]

#[allow(dead_code)]
#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::npz(data));
