//! Go closures: `ffi_prep_go_closure` and `ffi_call_go`, libffi's way for
//! languages that pass a closure's context in the static chain register
//! (`r10` on x86-64, `x18` on AArch64) instead of baking it into a
//! trampoline.
//!
//! An `ffi_go_closure` is `{ tramp, cif, fun }`, owned by the client (no
//! allocation, nothing executable is written): `tramp` becomes the shape's
//! Go thunk, which callers call with the closure's address in the static
//! chain register; it
//! runs `fun(cif, rvalue, args, closure)`.

use std::ffi::c_void;

use crate::cif::prepared;
use crate::ffi::*;
use crate::guard;
use crate::types::status_of;

/// `ffi_status ffi_prep_go_closure(ffi_go_closure *, ffi_cif *, fun)`
///
/// # Safety
/// `closure` writable, `cif` prepared by `ffi_prep_cif` and alive while
/// the closure is used.
#[no_mangle]
pub unsafe extern "C" fn ffi_prep_go_closure(
    closure: *mut ffi_go_closure,
    cif: *mut ffi_cif,
    fun: Option<ffi_closure_fun>,
) -> ffi_status {
    guard::status(|| {
        if closure.is_null() || fun.is_none() {
            return FFI_BAD_TYPEDEF;
        }
        // SAFETY: `cif` is null or readable by the caller's contract.
        let Some(c) = (unsafe { prepared(cif) }) else {
            guard::explain(|| "ffi_prep_go_closure: cif not prepared by ffi_prep_cif".into());
            return FFI_BAD_ABI;
        };
        let thunk = match c.go_closure_thunk() {
            Ok(t) => t,
            Err(e) => {
                guard::explain(|| format!("ffi_prep_go_closure: {e}"));
                return status_of(&e);
            }
        };
        // SAFETY: `closure` is non-null and writable by the contract. The
        // thunk reads exactly these three words, at the offsets of
        // `jitffi::emit::go_record` (checked by the layout test below).
        unsafe {
            closure.write(ffi_go_closure {
                tramp: thunk.cast_mut().cast(),
                cif,
                fun,
            })
        };
        FFI_OK
    })
}

/// `void ffi_call_go(ffi_cif *, void (*fn)(void), void *rvalue, void
/// **avalue, void *closure)`: `ffi_call` with `closure` in the static
/// chain register.
///
/// # Safety
/// As `ffi_call`; `fn` may read its static chain, which is `closure`.
#[no_mangle]
pub unsafe extern "C-unwind" fn ffi_call_go(
    cif: *mut ffi_cif,
    f: Option<unsafe extern "C" fn()>,
    rvalue: *mut c_void,
    avalue: *mut *mut c_void,
    closure: *mut c_void,
) {
    // SAFETY: `cif` is null or readable by the caller's contract.
    let (Some(c), Some(f)) = (unsafe { prepared(cif) }, f) else {
        guard::fatal("ffi_call_go: cif not prepared by ffi_prep_cif, or null function")
    };
    // SAFETY: the cif was compiled for this signature and the caller
    // promises `f`, `rvalue` and `avalue` match it.
    let called = unsafe {
        c.call_raw_with_chain(
            f as *const c_void,
            rvalue,
            avalue as *const *const c_void,
            closure,
        )
    };
    if let Err(e) = called {
        guard::fatal(&format!("ffi_call_go: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jitffi::emit::go_record;
    use std::mem::{offset_of, size_of};

    #[test]
    fn go_closure_layout_is_the_thunks() {
        assert_eq!(offset_of!(ffi_go_closure, tramp), go_record::TRAMP);
        assert_eq!(offset_of!(ffi_go_closure, cif), go_record::CIF);
        assert_eq!(offset_of!(ffi_go_closure, fun), go_record::FUN);
        assert_eq!(size_of::<ffi_go_closure>(), go_record::SIZE);
    }
}
