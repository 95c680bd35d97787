//! Fuzz target: jitffi call stubs against libffi closures.
//!
//! The fuzzer's bytes choose a signature, the argument values and the
//! return value (through `randsig`'s `ByteReader`, the same generator the
//! differential test drives from a seed); the case runs exactly as in
//! `tests/differential.rs`, and any disagreement panics, which is how
//! libFuzzer learns of it.

#![no_main]

use libfuzzer_sys::fuzz_target;

// The harness itself, shared with the test (its `#[test]` functions are
// compiled out here).
#[allow(dead_code)]
#[path = "../../tests/differential.rs"]
mod differential;

fuzz_target!(|data: &[u8]| differential::fuzz_one(data));
