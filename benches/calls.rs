//! S1-S8 of DESIGN.md: a direct call, a hand-written C stub with libffi's
//! `(fn, rvalue, avalue)` interface, jitffi (libffi form), jitffi (packed
//! form) and libffi's `ffi_call`; plus cif preparation, cold and warm.
//!
//! `cargo bench --bench calls` (all), `cargo bench --bench calls -- S5`
//! (one signature). Quote medians from one run: the machine is shared.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use jitffi::{Abi, Cif};
use jitffi_oracle::bench_cases::SIGS;
use jitffi_oracle::bench_stubs::{self, S6Pair};
use libffi::raw as ffi;

/// The crate, under the name `native_ret` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "../tests/support/native_ret.rs"]
mod native_ret;

#[path = "../tests/support/bench_util.rs"]
mod bench_util;
use bench_util::{config, jitffi_types, libffi_args, libffi_type};

#[path = "../tests/support/sig_bench.rs"]
mod sig_bench;
use sig_bench::{cases, direct_benches, Table};

/// The SysV targets and their stubs.
fn table() -> Table {
    Table {
        abi: Abi::host(),
        ffi_abi: ffi::ffi_abi_FFI_DEFAULT_ABI,
        group_prefix: "",
        targets: bench_stubs::targets(),
        stubs: bench_stubs::STUBS,
    }
}

fn direct(c: &mut Criterion) {
    direct_benches!(
        c,
        "direct",
        jitffi_oracle::bench_stubs,
        [bench_s1, bench_s2, bench_s3, bench_s4, bench_s5, bench_s6, bench_s7, bench_s8]
    );
}

fn indirect(c: &mut Criterion) {
    for mut case in cases::<S6Pair>(&table()) {
        case.verify(None);
        case.bench_indirect(c);
    }
}

/// Cif preparation: cold (classify + emit + publish, no cache) and warm
/// (a cache hit), against libffi's `ffi_prep_cif`.
fn prepare(c: &mut Criterion) {
    let mut g = c.benchmark_group("prep");
    let (s5, s8) = (&SIGS[4], &SIGS[7]);
    for sig in [s5, s8] {
        let name = sig.name;
        let (ret, args) = jitffi_types(sig);
        let args = &args[..];
        g.bench_function(format!("{name} cold"), |b| {
            b.iter(|| jitffi::cache::compile_uncached(Abi::host(), &ret, black_box(args), None))
        });
        let _warm = Cif::new(ret.clone(), args).unwrap();
        g.bench_function(format!("{name} warm"), |b| {
            b.iter(|| Cif::new(black_box(&ret), black_box(args)))
        });
    }
    for sig in [s5, s8] {
        let ret = libffi_type(sig.ret);
        let mut types = libffi_args(sig);
        let mut cif = ffi::ffi_cif::default();
        let n = types.len() as u32;
        let atypes = types.as_mut_ptr();
        g.bench_function(format!("{} libffi", sig.name), |b| {
            // SAFETY: static libffi types; `cif` outlives the calls.
            b.iter(|| unsafe {
                ffi::ffi_prep_cif(
                    black_box(&mut cif),
                    ffi::ffi_abi_FFI_DEFAULT_ABI,
                    n,
                    ret,
                    black_box(atypes),
                )
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = direct, indirect, prepare
}
criterion_main!(benches);
