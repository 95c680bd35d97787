//! C ground truth for jitffi: everything here is compiled by the system C
//! compiler (gcc) from `c/`, so tests compare jitffi against what the
//! compiler does, not against our own reading of the ABI.
//!
//! Modules about one instruction set only (x86-64 assembly probes, the
//! Microsoft x64 convention; AAPCS64) exist on that target only, as their
//! C sources (`c/x86_64/`, `c/aarch64/`) are compiled only there.
#![allow(missing_docs)]

#[cfg(target_arch = "aarch64")]
pub mod aapcs64;
pub mod bench_cases;
pub mod bench_closures;
pub mod bench_stubs;
pub mod capture;
pub mod cxx;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod discipline;
pub mod oracles;
#[cfg(target_arch = "x86_64")]
pub mod win64;
#[cfg(target_arch = "x86_64")]
pub mod win64_bench;
