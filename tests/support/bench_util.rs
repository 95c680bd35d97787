//! What the benchmarks share: criterion's settings, libffi cifs over
//! static type descriptions, and S1-S8's C types
//! (`jitffi_oracle::bench_cases`) as jitffi and libffi types.
//!
//! Included by path from `benches/` (`#[path = "../tests/support/bench_util.rs"]
//! mod bench_util;`).

#![allow(dead_code)]

use std::time::Duration;

use criterion::Criterion;
use jitffi::Type;
use jitffi_oracle::bench_cases::{CType, Sig};
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

/// jitffi's type for a C type of S1-S8.
pub fn jitffi_type(t: CType) -> Type {
    jitffi_oracle::jitffi_type!(t).unwrap()
}

/// jitffi's return and argument types of `sig`.
pub fn jitffi_types(sig: &Sig) -> (Type, Vec<Type>) {
    (
        jitffi_type(sig.ret),
        sig.args.iter().map(|&t| jitffi_type(t)).collect(),
    )
}

/// libffi's type for a C type of S1-S8: one of libffi's statics, or a
/// struct type leaked so it outlives every cif using it.
pub fn libffi_type(t: CType) -> *mut ffi_type {
    // Taking `&raw mut` of libffi's type statics is safe; libffi only
    // reads them.
    match t {
        CType::Void => &raw mut ffi::ffi_type_void,
        CType::I8 => &raw mut ffi::ffi_type_sint8,
        CType::U16 => &raw mut ffi::ffi_type_uint16,
        CType::I32 => &raw mut ffi::ffi_type_sint32,
        CType::I64 => &raw mut ffi::ffi_type_sint64,
        CType::F32 => &raw mut ffi::ffi_type_float,
        CType::F64 => &raw mut ffi::ffi_type_double,
        CType::Ptr => &raw mut ffi::ffi_type_pointer,
        CType::Pair => ffi_struct(&[libffi_type(CType::F64); 2]),
        CType::Quad => ffi_struct(&[libffi_type(CType::I64); 4]),
    }
}

/// libffi's argument types of `sig`.
pub fn libffi_args(sig: &Sig) -> Vec<*mut ffi_type> {
    sig.args.iter().map(|&t| libffi_type(t)).collect()
}

/// A prepared libffi cif of `sig` in libffi's calling convention `abi`.
pub fn libffi_sig_cif(abi: ffi::ffi_abi, sig: &Sig) -> Box<ffi_cif> {
    libffi_cif_with_abi(abi, libffi_type(sig.ret), &libffi_args(sig))
}

/// A libffi struct type of `members`, leaked (kept for the whole run).
fn ffi_struct(members: &[*mut ffi_type]) -> *mut ffi_type {
    let mut elems: Vec<*mut ffi_type> = members.to_vec();
    elems.push(std::ptr::null_mut());
    let elems = Box::leak(elems.into_boxed_slice()).as_mut_ptr();
    Box::leak(Box::new(ffi_type {
        size: 0,
        alignment: 0,
        type_: ffi::FFI_TYPE_STRUCT,
        elements: elems,
    }))
}
