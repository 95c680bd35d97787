//! S1-S8 of DESIGN.md under the Microsoft x64 convention: the targets are
//! gcc-compiled `__attribute__((ms_abi))` functions
//! (`oracle/c/win64_bench.c`), called five ways: directly (a Rust
//! `extern "win64"` function pointer), through a hand-written C stub with
//! libffi's `(fn, rvalue, avalue)` interface, through jitffi's libffi-form
//! and packed-form stubs for [`Abi::Win64`], and through libffi's
//! `ffi_call` with `FFI_WIN64`. Every form is checked against the C stub
//! before it is timed.
//!
//! `cargo bench --bench win64` (all), `cargo bench --bench win64 -- 'w64 S5'`
//! (one signature). Quote medians from one run: the machine is shared.
//!
//! The Microsoft x64 convention exists on x86-64 only: elsewhere this
//! benchmark is an empty program (every item below is x86-64 only).

#[cfg(target_arch = "x86_64")]
use std::ffi::c_void;

#[cfg(target_arch = "x86_64")]
use criterion::{criterion_group, criterion_main, Criterion};
#[cfg(target_arch = "x86_64")]
use jitffi::Abi;
#[cfg(target_arch = "x86_64")]
use jitffi_oracle::bench_cases::{bytes_of, F64S, I64S, INTS, PAIR, QUAD, S5};
#[cfg(target_arch = "x86_64")]
use jitffi_oracle::win64_bench::{self, *};
#[cfg(target_arch = "x86_64")]
use libffi::raw as ffi;

/// The crate, under the name `native_ret` expects.
#[cfg(target_arch = "x86_64")]
mod jit {
    pub use jitffi::*;
}
#[cfg(target_arch = "x86_64")]
#[path = "../tests/support/native_ret.rs"]
mod native_ret;

#[cfg(target_arch = "x86_64")]
#[path = "../tests/support/bench_util.rs"]
mod bench_util;
#[cfg(target_arch = "x86_64")]
use bench_util::config;

#[cfg(target_arch = "x86_64")]
#[path = "../tests/support/sig_bench.rs"]
mod sig_bench;
#[cfg(target_arch = "x86_64")]
use sig_bench::{cases, direct_benches, Table};

/// The Microsoft x64 targets and their (SysV) stubs.
#[cfg(target_arch = "x86_64")]
fn table() -> Table {
    Table {
        abi: Abi::Win64,
        ffi_abi: ffi::ffi_abi_FFI_WIN64,
        group_prefix: "w64 ",
        targets: win64_bench::targets(),
        stubs: win64_bench::STUBS,
    }
}

/// What each target returns for the case's values, by a direct call (the
/// stored bytes a libffi-form call must reproduce: narrow integers widened
/// to 8 bytes, as `ffi_arg`).
#[cfg(target_arch = "x86_64")]
fn direct_results() -> Vec<Vec<u8>> {
    let i = INTS;
    let q = I64S;
    let d = F64S;
    let s = S5;
    // SAFETY: calling the C targets with their declared signatures.
    unsafe {
        w64_bench_s1();
        vec![
            Vec::new(),
            (w64_bench_s2(i[0], i[1]) as i64).to_le_bytes().to_vec(),
            w64_bench_s3(d[0], d[1], d[2], d[3]).to_le_bytes().to_vec(),
            w64_bench_s4(q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7])
                .to_le_bytes()
                .to_vec(),
            w64_bench_s5(s.0, s.1, s.2, s.3, s.4 as *const c_void, s.5, s.6, s.7)
                .to_le_bytes()
                .to_vec(),
            bytes_of(&w64_bench_s6(PAIR, PAIR)).to_vec(),
            bytes_of(&w64_bench_s7(QUAD)).to_vec(),
            (w64_bench_s8(
                i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], i[9], i[10], i[11], i[12],
                i[13], i[14], i[15],
            ) as i64)
                .to_le_bytes()
                .to_vec(),
        ]
    }
}

#[cfg(target_arch = "x86_64")]
fn direct(c: &mut Criterion) {
    direct_benches!(
        c,
        "w64 direct",
        jitffi_oracle::win64_bench,
        [
            w64_bench_s1,
            w64_bench_s2,
            w64_bench_s3,
            w64_bench_s4,
            w64_bench_s5,
            w64_bench_s6,
            w64_bench_s7,
            w64_bench_s8
        ]
    );
}

#[cfg(target_arch = "x86_64")]
fn indirect(c: &mut Criterion) {
    // S6 returns through a hidden pointer under Win64: the packed form
    // hands back the sret address.
    let mut cases = cases::<*mut c_void>(&table());
    // Every form is checked before anything is timed.
    for (case, want) in cases.iter_mut().zip(direct_results()) {
        case.verify(Some(&want));
    }
    for case in &mut cases {
        case.bench_indirect(c);
    }
}

#[cfg(target_arch = "x86_64")]
criterion_group! {
    name = benches;
    config = config();
    targets = direct, indirect
}
#[cfg(target_arch = "x86_64")]
criterion_main!(benches);

#[cfg(not(target_arch = "x86_64"))]
fn main() {}
