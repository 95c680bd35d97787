//! The raw API: arguments in consecutive 8-byte `ffi_raw` slots instead of
//! a pointer array, and its Java flavour (`ffi_java_raw`, also 8 bytes
//! here). Neither x86-64 nor AArch64 has a native raw calling convention
//! (`FFI_NATIVE_RAW_API` is 0), so a raw call
//! translates the slots into a pointer array and calls through
//! `ffi_call`'s stub.
//!
//! Slot rules (libffi 3.4.4's generic ones, observed on x86-64 and
//! AArch64):
//!
//! | type                         | raw                  | Java raw            |
//! |------------------------------|----------------------|---------------------|
//! | 8..32-bit integers           | 1 slot, widened      | 1 slot, widened     |
//! | pointer                      | 1 slot, the pointer  | same                |
//! | 64-bit integers, double      | 1 slot               | 2 slots (1st used)  |
//! | float                        | 1 slot, low 4 bytes  | same                |
//! | long double                  | 2 slots, the bytes   | 1 slot, not written |
//! | struct                       | 1 slot, its address  | 1 slot, not written |
//! | complex                      | 1 slot, its address  | unsupported         |
//!
//! Quirks kept for fidelity: `ffi_raw_size` counts a complex value by its
//! size although the slot holds its address; Java's pointer-array-to-raw
//! direction writes nothing *and advances no slot* for a struct or long
//! double, while the other direction gives them one slot.
//! `ffi_java_raw_size` of a struct or complex type, and the Java
//! slot-to-pointer direction of a complex type, have no answer: like
//! libffi, the process aborts.

use std::ffi::c_void;

use crate::ffi::*;
use crate::guard;

const SLOT: usize = std::mem::size_of::<ffi_raw>();

fn slots(size: usize) -> usize {
    size.div_ceil(SLOT)
}

/// The argument types of a prepared cif.
///
/// # Safety
/// `cif` must be null or point at an `ffi_cif` whose `arg_types` holds
/// `nargs` valid type pointers (as `ffi_prep_cif` left it).
unsafe fn arg_types<'a>(cif: *const ffi_cif) -> &'a [*mut ffi_type] {
    // SAFETY: null-checked; the fields are readable by the caller's
    // contract and `arg_types` holds `nargs` entries.
    unsafe {
        if cif.is_null() || (*cif).arg_types.is_null() || (*cif).nargs == 0 {
            return &[];
        }
        std::slice::from_raw_parts((*cif).arg_types, (*cif).nargs as usize)
    }
}

/// `(type code, size)` of a description.
///
/// # Safety
/// `t` must point at a readable `ffi_type`.
unsafe fn code_size(t: *const ffi_type) -> (u16, usize) {
    // SAFETY: by the caller's contract.
    unsafe { ((*t).type_, (*t).size) }
}

/// Stores an integer of `code` read from `src` into `slot`, widened to
/// 64 bits; `false` if `code` is not an integer of at most 32 bits.
///
/// # Safety
/// `src` readable for the integer, `slot` writable.
unsafe fn widen_into(code: u16, src: *const c_void, slot: *mut ffi_raw) -> bool {
    // SAFETY: by the caller's contract; unaligned reads cost nothing here
    // and spare the caller an alignment promise libffi never made.
    unsafe {
        let v: u64 = match code {
            FFI_TYPE_UINT8 => u64::from(src.cast::<u8>().read()),
            FFI_TYPE_SINT8 => src.cast::<i8>().read() as i64 as u64,
            FFI_TYPE_UINT16 => u64::from(src.cast::<u16>().read_unaligned()),
            FFI_TYPE_SINT16 => src.cast::<i16>().read_unaligned() as i64 as u64,
            FFI_TYPE_UINT32 => u64::from(src.cast::<u32>().read_unaligned()),
            FFI_TYPE_SINT32 | FFI_TYPE_INT => src.cast::<i32>().read_unaligned() as i64 as u64,
            _ => return false,
        };
        (*slot).uint = v;
    }
    true
}

/// `ffi_raw_size`: bytes of the raw argument area.
///
/// # Safety
/// As `arg_types`.
pub unsafe fn raw_size(cif: *const ffi_cif) -> usize {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    types
        .iter()
        // SAFETY: every entry is a valid description.
        .map(|&t| match unsafe { code_size(t) } {
            (FFI_TYPE_STRUCT, _) => SLOT,
            (_, size) => slots(size) * SLOT,
        })
        .sum()
}

/// `ffi_ptrarray_to_raw`.
///
/// # Safety
/// As `arg_types`; `args` holds one valid value pointer per argument;
/// `raw` is writable for [`raw_size`] bytes.
pub unsafe fn ptrarray_to_raw(cif: *const ffi_cif, args: *const *mut c_void, raw: *mut ffi_raw) {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    let mut slot = raw;
    for (i, &t) in types.iter().enumerate() {
        // SAFETY: `args` has an entry per argument, each pointing at a value
        // of its type; `slot` stays inside the raw area, whose layout
        // `raw_size` describes.
        unsafe {
            let src = *args.add(i);
            let (code, size) = code_size(t);
            if widen_into(code, src, slot) {
                slot = slot.add(1);
                continue;
            }
            match code {
                FFI_TYPE_POINTER => (*slot).ptr = src.cast::<*mut c_void>().read_unaligned(),
                FFI_TYPE_STRUCT | FFI_TYPE_COMPLEX => (*slot).ptr = src,
                _ => {
                    std::ptr::copy_nonoverlapping(src.cast::<u8>(), slot.cast::<u8>(), size);
                    slot = slot.add(slots(size));
                    continue;
                }
            }
            slot = slot.add(1);
        }
    }
}

/// `ffi_raw_to_ptrarray`.
///
/// # Safety
/// As `arg_types`; `raw` laid out as [`ptrarray_to_raw`] writes it;
/// `args` writable for one pointer per argument.
pub unsafe fn raw_to_ptrarray(cif: *const ffi_cif, raw: *mut ffi_raw, args: *mut *mut c_void) {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    let mut slot = raw;
    for (i, &t) in types.iter().enumerate() {
        // SAFETY: `args` is writable per argument; `slot` walks the raw
        // area as its writer laid it out.
        unsafe {
            let (code, size) = code_size(t);
            match code {
                FFI_TYPE_STRUCT | FFI_TYPE_COMPLEX => {
                    *args.add(i) = (*slot).ptr;
                    slot = slot.add(1);
                }
                _ => {
                    *args.add(i) = slot.cast();
                    slot = slot.add(slots(size));
                }
            }
        }
    }
}

/// `ffi_java_raw_size`.
///
/// # Safety
/// As `arg_types`.
pub unsafe fn java_raw_size(cif: *const ffi_cif) -> usize {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    types
        .iter()
        // SAFETY: every entry is a valid description.
        .map(|&t| match unsafe { code_size(t) }.0 {
            FFI_TYPE_UINT64 | FFI_TYPE_SINT64 | FFI_TYPE_DOUBLE => 2 * SLOT,
            FFI_TYPE_STRUCT | FFI_TYPE_COMPLEX => {
                guard::fatal("ffi_java_raw_size: the Java raw API has no struct or complex types")
            }
            _ => SLOT,
        })
        .sum()
}

/// `ffi_java_ptrarray_to_raw`.
///
/// # Safety
/// As [`ptrarray_to_raw`], with [`java_raw_size`] bytes of slots.
pub unsafe fn java_ptrarray_to_raw(
    cif: *const ffi_cif,
    args: *const *mut c_void,
    raw: *mut ffi_raw,
) {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    let mut slot = raw;
    for (i, &t) in types.iter().enumerate() {
        // SAFETY: as in `ptrarray_to_raw`, with the Java slot layout.
        unsafe {
            let src = *args.add(i);
            let code = code_size(t).0;
            if widen_into(code, src, slot) {
                slot = slot.add(1);
                continue;
            }
            match code {
                FFI_TYPE_UINT64 | FFI_TYPE_SINT64 | FFI_TYPE_DOUBLE => {
                    (*slot).uint = src.cast::<u64>().read_unaligned();
                    slot = slot.add(2);
                }
                FFI_TYPE_FLOAT => {
                    (*slot).flt = src.cast::<f32>().read_unaligned();
                    slot = slot.add(1);
                }
                FFI_TYPE_POINTER => {
                    (*slot).ptr = src.cast::<*mut c_void>().read_unaligned();
                    slot = slot.add(1);
                }
                // Nothing written, no slot taken (libffi's behaviour).
                _ => {}
            }
        }
    }
}

/// `ffi_java_raw_to_ptrarray`.
///
/// # Safety
/// As [`raw_to_ptrarray`], with the Java slot layout.
pub unsafe fn java_raw_to_ptrarray(cif: *const ffi_cif, raw: *mut ffi_raw, args: *mut *mut c_void) {
    // SAFETY: forwarded.
    let types = unsafe { arg_types(cif) };
    let mut slot = raw;
    for (i, &t) in types.iter().enumerate() {
        // SAFETY: as in `raw_to_ptrarray`.
        unsafe {
            *args.add(i) = slot.cast();
            slot = slot.add(match code_size(t).0 {
                FFI_TYPE_UINT64 | FFI_TYPE_SINT64 | FFI_TYPE_DOUBLE => 2,
                FFI_TYPE_COMPLEX => {
                    guard::fatal("ffi_java_raw_to_ptrarray: the Java raw API has no complex types")
                }
                _ => 1,
            });
        }
    }
}

/// Pointer arrays of up to this many arguments live on the stack.
const INLINE_ARGS: usize = 32;

/// Translates `raw` with `to_ptrarray` and calls through `ffi_call`.
///
/// # Safety
/// `cif` prepared; `raw` laid out for `to_ptrarray`; `f` and `rvalue` as
/// `ffi_call` wants them.
unsafe fn call_translated(
    cif: *mut ffi_cif,
    f: Option<unsafe extern "C" fn()>,
    rvalue: *mut c_void,
    raw: *mut ffi_raw,
    to_ptrarray: unsafe fn(*const ffi_cif, *mut ffi_raw, *mut *mut c_void),
) {
    // SAFETY: null-checked, readable by the caller's contract.
    let n = if cif.is_null() {
        0
    } else {
        unsafe { (*cif).nargs as usize }
    };
    let mut inline = [std::ptr::null_mut::<c_void>(); INLINE_ARGS];
    let mut heap = Vec::new();
    let args: &mut [*mut c_void] = if n <= INLINE_ARGS {
        &mut inline[..n]
    } else {
        heap.resize(n, std::ptr::null_mut());
        &mut heap
    };
    // SAFETY: `args` has room for every argument; the rest is the caller's
    // contract, forwarded.
    unsafe {
        to_ptrarray(cif, raw, args.as_mut_ptr());
        crate::call::ffi_call(cif, f, rvalue, args.as_mut_ptr());
    }
}

/// `void ffi_raw_call(ffi_cif *, void (*fn)(void), void *rvalue, ffi_raw
/// *avalue)`
///
/// # Safety
/// libffi's contract: as `ffi_call`, with the arguments in raw slots.
#[no_mangle]
pub unsafe extern "C-unwind" fn ffi_raw_call(
    cif: *mut ffi_cif,
    f: Option<unsafe extern "C" fn()>,
    rvalue: *mut c_void,
    avalue: *mut ffi_raw,
) {
    // SAFETY: forwarded to the caller's contract.
    unsafe { call_translated(cif, f, rvalue, avalue, raw_to_ptrarray) }
}

/// `void ffi_java_raw_call(ffi_cif *, void (*fn)(void), void *rvalue,
/// ffi_java_raw *avalue)`: results come back as `ffi_call` stores them
/// (on a little-endian 64-bit target Java needs no adjustment).
///
/// # Safety
/// libffi's contract: as `ffi_call`, with the arguments in Java raw slots.
#[no_mangle]
pub unsafe extern "C-unwind" fn ffi_java_raw_call(
    cif: *mut ffi_cif,
    f: Option<unsafe extern "C" fn()>,
    rvalue: *mut c_void,
    avalue: *mut ffi_raw,
) {
    // SAFETY: forwarded to the caller's contract.
    unsafe { call_translated(cif, f, rvalue, avalue, java_raw_to_ptrarray) }
}

/// `void ffi_ptrarray_to_raw(ffi_cif *, void **args, ffi_raw *raw)`
///
/// # Safety
/// See [`ptrarray_to_raw`].
#[no_mangle]
pub unsafe extern "C" fn ffi_ptrarray_to_raw(
    cif: *mut ffi_cif,
    args: *mut *mut c_void,
    raw: *mut ffi_raw,
) {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_ptrarray_to_raw panicked", || unsafe {
        ptrarray_to_raw(cif, args, raw)
    })
}

/// `void ffi_raw_to_ptrarray(ffi_cif *, ffi_raw *raw, void **args)`
///
/// # Safety
/// See [`raw_to_ptrarray`].
#[no_mangle]
pub unsafe extern "C" fn ffi_raw_to_ptrarray(
    cif: *mut ffi_cif,
    raw: *mut ffi_raw,
    args: *mut *mut c_void,
) {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_raw_to_ptrarray panicked", || unsafe {
        raw_to_ptrarray(cif, raw, args)
    })
}

/// `size_t ffi_raw_size(ffi_cif *)`
///
/// # Safety
/// See [`raw_size`].
#[no_mangle]
pub unsafe extern "C" fn ffi_raw_size(cif: *mut ffi_cif) -> usize {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_raw_size panicked", || unsafe { raw_size(cif) })
}

/// `void ffi_java_ptrarray_to_raw(ffi_cif *, void **args, ffi_java_raw
/// *raw)`
///
/// # Safety
/// See [`java_ptrarray_to_raw`].
#[no_mangle]
pub unsafe extern "C" fn ffi_java_ptrarray_to_raw(
    cif: *mut ffi_cif,
    args: *mut *mut c_void,
    raw: *mut ffi_raw,
) {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_java_ptrarray_to_raw panicked", || unsafe {
        java_ptrarray_to_raw(cif, args, raw)
    })
}

/// `void ffi_java_raw_to_ptrarray(ffi_cif *, ffi_java_raw *raw, void
/// **args)`
///
/// # Safety
/// See [`java_raw_to_ptrarray`].
#[no_mangle]
pub unsafe extern "C" fn ffi_java_raw_to_ptrarray(
    cif: *mut ffi_cif,
    raw: *mut ffi_raw,
    args: *mut *mut c_void,
) {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_java_raw_to_ptrarray panicked", || unsafe {
        java_raw_to_ptrarray(cif, raw, args)
    })
}

/// `size_t ffi_java_raw_size(ffi_cif *)`
///
/// # Safety
/// See [`java_raw_size`].
#[no_mangle]
pub unsafe extern "C" fn ffi_java_raw_size(cif: *mut ffi_cif) -> usize {
    // SAFETY: forwarded to the caller's contract.
    guard::or_abort("ffi_java_raw_size panicked", || unsafe {
        java_raw_size(cif)
    })
}
