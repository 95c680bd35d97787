//! Keeping panics on our side of the C boundary.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ffi::{ffi_status, FFI_BAD_TYPEDEF};

/// Runs `f`, turning a panic into `FFI_BAD_TYPEDEF` (after printing it):
/// for exports that return a status.
#[inline]
pub fn status(f: impl FnOnce() -> ffi_status) -> ffi_status {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(FFI_BAD_TYPEDEF)
}

/// Runs `f`; a panic is a bug with no status to report it through, so it
/// ends the process (after the panic message has been printed).
#[inline]
pub fn or_abort<R>(what: &str, f: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => fatal(what),
    }
}

/// Prints `libffi (jitffi): <what>` and aborts.
#[cold]
pub fn fatal(what: &str) -> ! {
    eprintln!("libffi (jitffi): {what}");
    std::process::abort()
}

/// Whether `JITFFI_DEBUG` is set: refusals are then explained on stderr
/// (a C caller only sees a status code).
pub fn debug_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("JITFFI_DEBUG").is_some_and(|v| !v.is_empty()))
}

/// Prints `libffi (jitffi): <message>` when [`debug_enabled`].
#[cold]
pub fn explain(message: impl FnOnce() -> String) {
    if debug_enabled() {
        eprintln!("libffi (jitffi): {}", message());
    }
}
