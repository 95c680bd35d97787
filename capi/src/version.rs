//! libffi 3.5's `LIBFFI_BASE_8.1` queries.
//!
//! We report libffi 3.4.6, the last 3.4 release, whose C ABI this library
//! implements, tagged with our name so nobody mistakes us for the real one.

use std::ffi::{c_char, c_uint, c_ulong};

use crate::ffi::{ffi_closure, FFI_DEFAULT_ABI};

/// What `ffi_get_version` returns.
pub const VERSION: &std::ffi::CStr = c"3.4.6-jitffi";
/// What `ffi_get_version_number` returns: major * 10000 + minor * 100 +
/// micro, as libffi counts.
pub const VERSION_NUMBER: c_ulong = 30406;

/// `const char *ffi_get_version(void)`
#[no_mangle]
pub extern "C" fn ffi_get_version() -> *const c_char {
    VERSION.as_ptr()
}

/// `unsigned long ffi_get_version_number(void)`
#[no_mangle]
pub extern "C" fn ffi_get_version_number() -> c_ulong {
    VERSION_NUMBER
}

/// `unsigned int ffi_get_default_abi(void)`: `FFI_UNIX64` on x86-64,
/// `FFI_SYSV` on AArch64.
#[no_mangle]
pub extern "C" fn ffi_get_default_abi() -> c_uint {
    FFI_DEFAULT_ABI
}

/// `size_t ffi_get_closure_size(void)`: `sizeof(ffi_closure)`, 56 on
/// x86-64, 48 on AArch64.
#[no_mangle]
pub extern "C" fn ffi_get_closure_size() -> usize {
    std::mem::size_of::<ffi_closure>()
}
