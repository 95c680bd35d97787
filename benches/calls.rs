//! S1-S8 of DESIGN.md: a direct call, a hand-written C stub with libffi's
//! `(fn, rvalue, avalue)` interface, jitffi (libffi form), jitffi (packed
//! form) and libffi's `ffi_call`; plus cif preparation, cold and warm.
//!
//! `cargo bench --bench calls` (all), `cargo bench --bench calls -- S5`
//! (one signature). Quote medians from one run: the machine is shared.

use std::ffi::c_void;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use jitffi::{Abi, Cif, Type};
use jitffi_oracle::bench_stubs::*;
use libffi::raw as ffi;

/// The crate, under the name `native_ret` expects.
mod jit {
    pub use jitffi::*;
}
#[path = "../tests/support/native_ret.rs"]
mod native_ret;

#[path = "../tests/support/bench_util.rs"]
mod bench_util;
use bench_util::{config, s5_args};

#[path = "../tests/support/sig_bench.rs"]
mod sig_bench;
use sig_bench::{cases, direct_benches, Table};

/// The SysV targets and their stubs.
fn table() -> Table {
    Table {
        abi: Abi::host(),
        ffi_abi: ffi::ffi_abi_FFI_DEFAULT_ABI,
        group_prefix: "",
        targets: [
            bench_s1 as *const c_void,
            bench_s2 as *const c_void,
            bench_s3 as *const c_void,
            bench_s4 as *const c_void,
            bench_s5 as *const c_void,
            bench_s6 as *const c_void,
            bench_s7 as *const c_void,
            bench_s8 as *const c_void,
        ],
        stubs: [
            bench_stub_s1,
            bench_stub_s2,
            bench_stub_s3,
            bench_stub_s4,
            bench_stub_s5,
            bench_stub_s6,
            bench_stub_s7,
            bench_stub_s8,
        ],
    }
}

fn direct(c: &mut Criterion) {
    direct_benches!(
        c,
        "direct",
        "C",
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
    let s5 = s5_args();
    let s8 = vec![Type::i32(); 16];
    for (name, ret, args) in [("S5", Type::f64(), &s5[..]), ("S8", Type::i32(), &s8[..])] {
        g.bench_function(format!("{name} cold"), |b| {
            b.iter(|| jitffi::cache::compile_uncached(Abi::host(), &ret, black_box(args), None))
        });
        let _warm = Cif::new(ret.clone(), args).unwrap();
        g.bench_function(format!("{name} warm"), |b| {
            b.iter(|| Cif::new(black_box(&ret), black_box(args)))
        });
    }
    let (t_i32, t_f64, t_i64, t_f32, t_ptr, t_i8, t_u16) = {
        (
            &raw mut ffi::ffi_type_sint32,
            &raw mut ffi::ffi_type_double,
            &raw mut ffi::ffi_type_sint64,
            &raw mut ffi::ffi_type_float,
            &raw mut ffi::ffi_type_pointer,
            &raw mut ffi::ffi_type_sint8,
            &raw mut ffi::ffi_type_uint16,
        )
    };
    let mut s5_types = [t_i32, t_f64, t_i64, t_f32, t_ptr, t_i8, t_u16, t_f64];
    let mut s8_types = [t_i32; 16];
    for (name, ret, types) in [
        ("S5", t_f64, &mut s5_types[..]),
        ("S8", t_i32, &mut s8_types[..]),
    ] {
        let mut cif = ffi::ffi_cif::default();
        let n = types.len() as u32;
        let atypes = types.as_mut_ptr();
        g.bench_function(format!("{name} libffi"), |b| {
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
