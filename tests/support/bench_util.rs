//! What the benchmarks share: criterion's settings, libffi cifs over
//! static type descriptions, and the S5 signature of DESIGN.md.
//!
//! Included by path from `benches/` (`#[path = "../tests/support/bench_util.rs"]
//! mod bench_util;`).

#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use jitffi::Type;
use libffi::raw::{self as ffi, ffi_cif, ffi_type};

pub type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Short runs: the machine is shared, medians are what gets quoted.
pub fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

/// A prepared libffi cif. The argument type list is leaked; the types must
/// outlive the cif too (libffi's statics, or leaked trees).
pub fn libffi_cif(ret: *mut ffi_type, args: &[*mut ffi_type]) -> Box<ffi_cif> {
    libffi_cif_with_abi(ffi::ffi_abi_FFI_DEFAULT_ABI, ret, args)
}

/// [`libffi_cif`] for libffi's calling convention `abi` (such as
/// `ffi_abi_FFI_WIN64`).
pub fn libffi_cif_with_abi(
    abi: ffi::ffi_abi,
    ret: *mut ffi_type,
    args: &[*mut ffi_type],
) -> Box<ffi_cif> {
    let mut cif = Box::<ffi_cif>::default();
    let atypes = Box::leak(args.to_vec().into_boxed_slice()).as_mut_ptr();
    // SAFETY: per the contract the types outlive the cif; the list is leaked.
    let status = unsafe { ffi::ffi_prep_cif(&mut *cif, abi, args.len() as u32, ret, atypes) };
    assert_eq!(status, ffi::ffi_status_FFI_OK, "ffi_prep_cif");
    cif
}

/// The arguments of S5, `double(int, double, int64, float, void *, int8,
/// uint16, double)`.
pub fn s5_args() -> [Type; 8] {
    [
        Type::i32(),
        Type::f64(),
        Type::i64(),
        Type::f32(),
        Type::pointer(),
        Type::i8(),
        Type::u16(),
        Type::f64(),
    ]
}
