//! The closure benchmarks' S2, S3 and S5 (DESIGN.md), in one place for
//! `benches/closures.rs` and `jitffi bench`: what every variant computes
//! (`s2_body` ...), a direct `extern "C"` function of each signature
//! (`s2_direct` ...), one minimal handler per signature for jitffi's
//! `RawClosure` and libffi's closures alike (`s2_handler` ...), and
//! [`closure_handler!`](crate::closure_handler), the same computation as a
//! `jitffi::Closure::new` handler.
//!
//! The direct functions and the handlers are only ever called through
//! function pointers (black-boxed, or from a closure trampoline), so living
//! in this crate changes nothing in what is timed. The bodies are
//! `#[inline(always)]`: a Rust handler written with `closure_handler!` in
//! another crate inlines them as it did when they were its own.

use std::ffi::c_void;

/// S2 `int(int, int)` as a (closure's) code pointer.
pub type S2Closure = extern "C" fn(i32, i32) -> i32;
/// S3 `double(double x4)` as a (closure's) code pointer.
pub type S3Closure = extern "C" fn(f64, f64, f64, f64) -> f64;
/// S5 `double(int, double, int64_t, float, void *, int8_t, uint16_t,
/// double)` as a (closure's) code pointer.
pub type S5Closure = extern "C" fn(i32, f64, i64, f32, *const c_void, i8, u16, f64) -> f64;

/// What every S2 variant computes, so they all return the same.
#[inline(always)]
pub fn s2_body(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

/// What every S3 variant computes.
#[inline(always)]
pub fn s3_body(a: f64, b: f64, c: f64, d: f64) -> f64 {
    a + b + c + d
}

/// What every S5 variant computes.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn s5_body(a: i32, b: f64, c: i64, d: f32, e: *const c_void, f: i8, g: u16, h: f64) -> f64 {
    a as f64 + b + c as f64 + d as f64 + e as usize as f64 + f as f64 + g as f64 + h
}

/// S2 called directly, the baseline of the closure calls.
pub extern "C" fn s2_direct(a: i32, b: i32) -> i32 {
    s2_body(a, b)
}

/// S3 called directly.
pub extern "C" fn s3_direct(a: f64, b: f64, c: f64, d: f64) -> f64 {
    s3_body(a, b, c, d)
}

/// S5 called directly.
#[allow(clippy::too_many_arguments)]
pub extern "C" fn s5_direct(
    a: i32,
    b: f64,
    c: i64,
    d: f32,
    e: *const c_void,
    f: i8,
    g: u16,
    h: f64,
) -> f64 {
    s5_body(a, b, c, d, e, f, g, h)
}

/// Argument `i` of a closure handler's argument array, as a `T`.
///
/// # Safety
/// `args[i]` points at a `T`.
#[inline(always)]
pub unsafe fn arg<T: Copy>(args: *const *mut c_void, i: usize) -> T {
    // SAFETY: per the contract; closure arguments are aligned for their
    // types.
    unsafe { *(*args.add(i)).cast::<T>() }
}

// The minimal handlers: read the arguments, write the result. Their type is
// jitffi's `RawHandler` and, but for pointee types, libffi's closure
// handler (its first parameter is `ffi_cif *`, jitffi's `const void *`:
// one pointer either way), so one handler serves both.

/// The minimal handler of an S2 closure.
///
/// # Safety
/// Called by a closure of S2's signature: `args` holds two `int`s, `ret`
/// at least 8 bytes.
pub unsafe extern "C" fn s2_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: per the contract.
    unsafe { *ret.cast::<i32>() = s2_body(arg(args, 0), arg(args, 1)) }
}

/// The minimal handler of an S3 closure.
///
/// # Safety
/// Called by a closure of S3's signature: four `double`s, a `double`
/// return.
pub unsafe extern "C" fn s3_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: per the contract.
    unsafe { *ret.cast::<f64>() = s3_body(arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3)) }
}

/// The minimal handler of an S5 closure.
///
/// # Safety
/// Called by a closure of S5's signature.
pub unsafe extern "C" fn s5_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: per the contract.
    unsafe {
        *ret.cast::<f64>() = s5_body(
            arg(args, 0),
            arg(args, 1),
            arg(args, 2),
            arg(args, 3),
            arg(args, 4),
            arg(args, 5),
            arg(args, 6),
            arg(args, 7),
        )
    }
}

/// The `jitffi::Closure::new` handler of `S2`, `S3` or `S5`: the closure
/// `|args, ret| ret.set(s2_body(args.get(0), args.get(1)))` (and so on),
/// written out where the macro is used, so it is a closure of that crate,
/// monomorphised into its own handler like any closure written in place.
/// Each use is a distinct closure type.
#[macro_export]
macro_rules! closure_handler {
    (S2) => {
        |args, ret| ret.set($crate::bench_closures::s2_body(args.get(0), args.get(1)))
    };
    (S3) => {
        |args, ret| {
            ret.set($crate::bench_closures::s3_body(
                args.get(0),
                args.get(1),
                args.get(2),
                args.get(3),
            ))
        }
    };
    (S5) => {
        |args, ret| {
            ret.set($crate::bench_closures::s5_body(
                args.get(0),
                args.get(1),
                args.get(2),
                args.get(3),
                args.get::<*const ::std::ffi::c_void>(4),
                args.get(5),
                args.get(6),
                args.get(7),
            ))
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_cases::{F64S, S5, S5_PTR};

    /// Calls `handler` as a closure trampoline would: pointers to each
    /// argument, a 16-byte return buffer.
    fn call_handler(
        handler: unsafe extern "C" fn(*const c_void, *mut c_void, *const *mut c_void, *mut c_void),
        args: &[*mut c_void],
    ) -> [u8; 16] {
        let mut ret = [0u128; 1];
        // SAFETY: each test passes the handler its own signature's values.
        unsafe {
            handler(
                std::ptr::null(),
                ret.as_mut_ptr().cast(),
                args.as_ptr(),
                std::ptr::null_mut(),
            )
        };
        ret[0].to_ne_bytes()
    }

    fn p<T>(v: &T) -> *mut c_void {
        (v as *const T).cast_mut().cast()
    }

    #[test]
    fn handlers_and_direct_functions_agree() {
        let (a, b) = (40i32, 2i32);
        assert_eq!(s2_direct(a, b), 42);
        assert_eq!(
            call_handler(s2_handler, &[p(&a), p(&b)])[..4],
            42i32.to_ne_bytes()
        );
        assert_eq!(s2_direct(i32::MAX, 1), i32::MIN);

        let d = F64S;
        assert_eq!(s3_direct(d[0], d[1], d[2], d[3]), 10.0);
        let r = call_handler(s3_handler, &[p(&d[0]), p(&d[1]), p(&d[2]), p(&d[3])]);
        assert_eq!(r[..8], 10.0f64.to_ne_bytes());

        let s = S5;
        let want = s5_direct(s.0, s.1, s.2, s.3, S5_PTR, s.5, s.6, s.7);
        assert_eq!(want, 1.0 + 2.0 + 3.0 + 4.0 + 5.0 - 6.0 + 7.0 + 8.0);
        let args = [
            p(&s.0),
            p(&s.1),
            p(&s.2),
            p(&s.3),
            p(&S5_PTR),
            p(&s.5),
            p(&s.6),
            p(&s.7),
        ];
        assert_eq!(call_handler(s5_handler, &args)[..8], want.to_ne_bytes());
    }
}
