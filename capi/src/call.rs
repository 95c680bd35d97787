//! The preparation and call exports: `ffi_prep_cif`, `ffi_prep_cif_var`,
//! `ffi_call`, `ffi_get_struct_offsets`.

use std::ffi::{c_uint, c_void};

use crate::cif;
use crate::ffi::*;
use crate::guard;

/// `ffi_status ffi_prep_cif(ffi_cif *, ffi_abi, unsigned nargs, ffi_type
/// *rtype, ffi_type **atypes)`
///
/// # Safety
/// libffi's contract: `cif` writable, the types valid descriptions (struct
/// types of size 0 writable), all alive while `cif` is used.
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_cif(
    cif: *mut ffi_cif,
    abi: ffi_abi,
    nargs: c_uint,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> ffi_status {
    // SAFETY: forwarded to the caller's contract. (The fast path cannot
    // panic; the rest catches panics itself.)
    unsafe { cif::prep(cif, abi, nargs, None, rtype, atypes) }
}

/// `ffi_status ffi_prep_cif_var(ffi_cif *, ffi_abi, unsigned nfixedargs,
/// unsigned ntotalargs, ffi_type *rtype, ffi_type **atypes)`: variadic
/// arguments must be promoted (no `float`, nothing narrower than `int`:
/// `FFI_BAD_ARGTYPE`).
///
/// # Safety
/// As [`ffi_prep_cif`].
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_cif_var(
    cif: *mut ffi_cif,
    abi: ffi_abi,
    nfixedargs: c_uint,
    ntotalargs: c_uint,
    rtype: *mut ffi_type,
    atypes: *mut *mut ffi_type,
) -> ffi_status {
    // SAFETY: forwarded to the caller's contract (panics: as above).
    unsafe { cif::prep(cif, abi, ntotalargs, Some(nfixedargs), rtype, atypes) }
}

/// `void ffi_call(ffi_cif *, void (*fn)(void), void *rvalue, void
/// **avalue)`: straight into the compiled stub. `C-unwind`, so that an
/// exception thrown by `fn` reaches the caller.
///
/// # Safety
/// libffi's contract: `cif` prepared, `fn` of its signature, `avalue` one
/// valid pointer per argument, `rvalue` null or large enough for the
/// return value (at least `sizeof(ffi_arg)` for integers).
#[no_mangle]
pub unsafe extern "C-unwind" fn ffi_call(
    cif: *mut ffi_cif,
    f: Option<unsafe extern "C" fn()>,
    rvalue: *mut c_void,
    avalue: *mut *mut c_void,
) {
    // SAFETY: `cif` is null-checked and readable by the caller's contract.
    let stub = if cif.is_null() {
        None
    } else {
        cif::stub(unsafe { (*cif).flags })
    };
    let (Some(stub), Some(f)) = (stub, f) else {
        guard::fatal("ffi_call: cif not prepared by ffi_prep_cif, or null function")
    };
    // SAFETY: the stub was compiled for this signature and the caller
    // promises `f`, `rvalue` and `avalue` match it.
    unsafe { stub(f as *const c_void, rvalue, avalue as *const *const c_void) }
}

/// `ffi_status ffi_get_struct_offsets(ffi_abi, ffi_type *, size_t
/// *offsets)`: lays the struct out if needed and reports its members'
/// offsets (`offsets` may be null).
///
/// # Safety
/// `struct_type` a valid description, `offsets` null or writable for one
/// `size_t` per member.
#[no_mangle]
pub unsafe extern "C" fn ffi_get_struct_offsets(
    abi: ffi_abi,
    struct_type: *mut ffi_type,
    offsets: *mut usize,
) -> ffi_status {
    // SAFETY: forwarded to the caller's contract.
    guard::status(|| unsafe { cif::struct_offsets(abi, struct_type, offsets) })
}
