//! libffi 3.4's C data layouts and constants for x86-64 and AArch64
//! Linux, as the headers in `capi/include/` declare them. Facts of the
//! ABI, checked by the layout tests below and by the C tests compiled
//! against our headers.

#![allow(non_camel_case_types)]

use std::ffi::{c_uint, c_ushort, c_void};

/// `ffi_status`
pub type ffi_status = c_uint;
/// Success.
pub const FFI_OK: ffi_status = 0;
/// A type description is malformed.
pub const FFI_BAD_TYPEDEF: ffi_status = 1;
/// The ABI is not one this library knows.
pub const FFI_BAD_ABI: ffi_status = 2;
/// An argument type is not allowed there (unpromoted variadic argument).
pub const FFI_BAD_ARGTYPE: ffi_status = 3;

/// `ffi_abi` (the non-Windows build of libffi for the target).
pub type ffi_abi = c_uint;

#[cfg(target_arch = "x86_64")]
mod abi_values {
    use super::ffi_abi;
    /// First valid value.
    pub const FFI_FIRST_ABI: ffi_abi = 1;
    /// System V AMD64.
    pub const FFI_UNIX64: ffi_abi = 2;
    /// Microsoft x64 (also `FFI_EFI64`).
    pub const FFI_WIN64: ffi_abi = 3;
    /// Microsoft x64 as GCC/MinGW compile it.
    pub const FFI_GNUW64: ffi_abi = 4;
    /// One past the last valid value.
    pub const FFI_LAST_ABI: ffi_abi = 5;
    /// The default on x86-64 Linux.
    pub const FFI_DEFAULT_ABI: ffi_abi = FFI_UNIX64;
}

#[cfg(target_arch = "aarch64")]
mod abi_values {
    use super::ffi_abi;
    /// First valid value.
    pub const FFI_FIRST_ABI: ffi_abi = 0;
    /// AAPCS64 (Linux).
    pub const FFI_SYSV: ffi_abi = 1;
    /// Windows on Arm64: its enum value exists on every target, but a
    /// Linux build calls nothing with it (`FFI_BAD_ABI` here).
    pub const FFI_WIN64: ffi_abi = 2;
    /// One past the last valid value.
    pub const FFI_LAST_ABI: ffi_abi = 3;
    /// The default on AArch64 Linux.
    pub const FFI_DEFAULT_ABI: ffi_abi = FFI_SYSV;
}

pub use abi_values::*;

/// `FFI_TYPE_*` codes, the `type` field of `ffi_type`.
pub const FFI_TYPE_VOID: c_ushort = 0;
/// `int` (only as a legacy alias; treated as sint32)
pub const FFI_TYPE_INT: c_ushort = 1;
/// `float`
pub const FFI_TYPE_FLOAT: c_ushort = 2;
/// `double`
pub const FFI_TYPE_DOUBLE: c_ushort = 3;
/// `long double`
pub const FFI_TYPE_LONGDOUBLE: c_ushort = 4;
/// `uint8_t`
pub const FFI_TYPE_UINT8: c_ushort = 5;
/// `int8_t`
pub const FFI_TYPE_SINT8: c_ushort = 6;
/// `uint16_t`
pub const FFI_TYPE_UINT16: c_ushort = 7;
/// `int16_t`
pub const FFI_TYPE_SINT16: c_ushort = 8;
/// `uint32_t`
pub const FFI_TYPE_UINT32: c_ushort = 9;
/// `int32_t`
pub const FFI_TYPE_SINT32: c_ushort = 10;
/// `uint64_t`
pub const FFI_TYPE_UINT64: c_ushort = 11;
/// `int64_t`
pub const FFI_TYPE_SINT64: c_ushort = 12;
/// A struct: `elements` is a NULL-terminated member list.
pub const FFI_TYPE_STRUCT: c_ushort = 13;
/// Any pointer.
pub const FFI_TYPE_POINTER: c_ushort = 14;
/// `_Complex`: `elements[0]` is the part type.
pub const FFI_TYPE_COMPLEX: c_ushort = 15;

/// `ffi_type`: 24 bytes.
#[repr(C)]
#[derive(Debug)]
pub struct ffi_type {
    /// Size in bytes (0 for a struct not yet laid out).
    pub size: usize,
    /// Alignment in bytes.
    pub alignment: c_ushort,
    /// An `FFI_TYPE_*` code.
    pub type_: c_ushort,
    /// Members of a struct / part of a complex, NULL-terminated.
    pub elements: *mut *mut ffi_type,
}

/// `ffi_cif`: 32 bytes. `bytes` and `flags` are the library's own.
#[repr(C)]
#[derive(Debug)]
pub struct ffi_cif {
    /// The calling convention.
    pub abi: ffi_abi,
    /// Number of arguments.
    pub nargs: c_uint,
    /// `nargs` argument types.
    pub arg_types: *mut *mut ffi_type,
    /// The return type.
    pub rtype: *mut ffi_type,
    /// Bytes of stack arguments.
    pub bytes: c_uint,
    /// Private to the implementation.
    pub flags: c_uint,
}

/// `FFI_TRAMPOLINE_SIZE` on x86-64.
#[cfg(target_arch = "x86_64")]
pub const FFI_TRAMPOLINE_SIZE: usize = 32;
/// `FFI_TRAMPOLINE_SIZE` on AArch64 Linux.
#[cfg(target_arch = "aarch64")]
pub const FFI_TRAMPOLINE_SIZE: usize = 24;

/// The handler of a closure: `fun(cif, rvalue, args, user_data)`.
pub type ffi_closure_fun =
    unsafe extern "C" fn(*mut ffi_cif, *mut c_void, *mut *mut c_void, *mut c_void);

/// `ffi_closure`: 56 bytes on x86-64, 48 on AArch64.
#[repr(C)]
pub struct ffi_closure {
    /// Trampoline bytes (or, with static trampolines, a pointer).
    pub tramp: [u8; FFI_TRAMPOLINE_SIZE],
    /// The closure's cif.
    pub cif: *mut ffi_cif,
    /// The handler.
    pub fun: Option<ffi_closure_fun>,
    /// The handler's last argument.
    pub user_data: *mut c_void,
}

/// `ffi_raw`: one 8-byte argument slot of the raw API.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ffi_raw {
    /// `ffi_sarg`
    pub sint: i64,
    /// `ffi_arg`
    pub uint: u64,
    /// `float`
    pub flt: f32,
    /// Raw bytes.
    pub data: [u8; 8],
    /// A pointer.
    pub ptr: *mut c_void,
}

/// The handler of a raw closure.
pub type ffi_raw_closure_fun =
    unsafe extern "C" fn(*mut ffi_cif, *mut c_void, *mut ffi_raw, *mut c_void);

/// `ffi_raw_closure` (neither target has a native raw API, so the
/// translation fields are present): 72 bytes on x86-64, 64 on AArch64.
#[repr(C)]
pub struct ffi_raw_closure {
    /// Trampoline bytes.
    pub tramp: [u8; FFI_TRAMPOLINE_SIZE],
    /// The closure's cif.
    pub cif: *mut ffi_cif,
    /// Library-private: turns the pointer array into raw slots.
    pub translate_args: Option<ffi_closure_fun>,
    /// Library-private.
    pub this_closure: *mut c_void,
    /// The raw handler.
    pub fun: Option<ffi_raw_closure_fun>,
    /// The handler's last argument.
    pub user_data: *mut c_void,
}

/// `ffi_go_closure`: 24 bytes; called with its own address in the static
/// chain register (`r10` on x86-64, `x18` on AArch64).
#[repr(C)]
pub struct ffi_go_closure {
    /// The code to call (the static chain register holds the closure).
    pub tramp: *mut c_void,
    /// The closure's cif.
    pub cif: *mut ffi_cif,
    /// The handler; its `user_data` is the closure itself.
    pub fun: Option<ffi_closure_fun>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    #[test]
    fn layouts_match_libffi_3_4() {
        assert_eq!(size_of::<ffi_type>(), 24);
        assert_eq!(offset_of!(ffi_type, alignment), 8);
        assert_eq!(offset_of!(ffi_type, type_), 10);
        assert_eq!(offset_of!(ffi_type, elements), 16);
        assert_eq!(size_of::<ffi_cif>(), 32);
        assert_eq!(offset_of!(ffi_cif, arg_types), 8);
        assert_eq!(offset_of!(ffi_cif, rtype), 16);
        assert_eq!(offset_of!(ffi_cif, bytes), 24);
        assert_eq!(offset_of!(ffi_cif, flags), 28);
        assert_eq!(size_of::<ffi_raw>(), 8);
        assert_eq!(size_of::<ffi_go_closure>(), 24);
        assert_eq!(offset_of!(ffi_closure, cif), FFI_TRAMPOLINE_SIZE);
        assert_eq!(offset_of!(ffi_raw_closure, cif), FFI_TRAMPOLINE_SIZE);
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn layouts_match_libffi_3_4_on_x86_64() {
        assert_eq!((FFI_FIRST_ABI, FFI_UNIX64, FFI_WIN64), (1, 2, 3));
        assert_eq!((FFI_GNUW64, FFI_LAST_ABI, FFI_DEFAULT_ABI), (4, 5, 2));
        assert_eq!(size_of::<ffi_closure>(), 56);
        assert_eq!(offset_of!(ffi_closure, cif), 32);
        assert_eq!(offset_of!(ffi_closure, fun), 40);
        assert_eq!(offset_of!(ffi_closure, user_data), 48);
        assert_eq!(size_of::<ffi_raw_closure>(), 72);
    }

    #[test]
    #[cfg(target_arch = "aarch64")]
    fn layouts_match_libffi_3_4_on_aarch64() {
        assert_eq!((FFI_FIRST_ABI, FFI_SYSV, FFI_WIN64), (0, 1, 2));
        assert_eq!((FFI_LAST_ABI, FFI_DEFAULT_ABI), (3, 1));
        assert_eq!(size_of::<ffi_closure>(), 48);
        assert_eq!(offset_of!(ffi_closure, cif), 24);
        assert_eq!(offset_of!(ffi_closure, fun), 32);
        assert_eq!(offset_of!(ffi_closure, user_data), 40);
        assert_eq!(size_of::<ffi_raw_closure>(), 64);
    }

    #[test]
    fn closure_record_matches_jitffi_closure_record() {
        use crate::closure::RECORD_BIAS;
        use jitffi::closure::record;
        assert_eq!(offset_of!(ffi_closure, cif) + RECORD_BIAS, record::CIF);
        assert_eq!(offset_of!(ffi_closure, fun) + RECORD_BIAS, record::FUN);
        assert_eq!(
            offset_of!(ffi_closure, user_data) + RECORD_BIAS,
            record::USER_DATA
        );
        assert!(RECORD_BIAS + size_of::<ffi_closure>() <= record::SIZE);
    }
}
