//! libffi 3.4's C ABI on top of jitffi. Built as a static library and
//! linked into `libffi.so.8` (SONAME `libffi.so.8`) with libffi's symbol
//! versions, so programs built against libffi run on jitffi's compiled
//! stubs without a rebuild (`LD_LIBRARY_PATH`).
//!
//! Every exported function catches panics: none crosses the C boundary.
//!
//! - [`types`]: the `ffi_type_*` objects and type-tree conversion;
//! - [`cif`]: `ffi_prep_cif` and the table of prepared shapes
//!   ([`cif::prepared`] gives the jitffi cif behind an `ffi_cif`);
//! - [`call`]: the preparation and call exports;
//! - [`raw`]: the raw and Java raw APIs;
//! - [`version`]: libffi 3.5's version queries;
//! - [`closure`]: closures and their trampolines;
//! - [`go`]: Go closures (`ffi_prep_go_closure`, `ffi_call_go`: the
//!   static chain register).

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("jitffi-capi implements libffi's C ABI for x86-64 and AArch64 only");

pub mod call;
pub mod cif;
pub mod closure;
pub mod ffi;
pub mod go;
pub mod guard;
pub mod raw;
pub mod types;
pub mod version;
