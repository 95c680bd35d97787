//! C ground truth for jitffi: everything here is compiled by the system C
//! compiler (gcc) from `c/`, so tests compare jitffi against what the
//! compiler does, not against our own reading of the ABI.
#![allow(missing_docs)]

pub mod bench_cases;
pub mod bench_closures;
pub mod bench_stubs;
pub mod capture;
pub mod cxx;
pub mod discipline;
pub mod oracles;
pub mod win64;
pub mod win64_bench;
