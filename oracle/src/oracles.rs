//! The C oracles of `c/oracles.c`: functions compiled by gcc that record
//! every argument they receive, and gcc-compiled callers of them.
//!
//! Each [`Case`] is one call shape: `func` is the oracle (for variadic
//! shapes, the variadic function), `direct` calls it with gcc's own calling
//! code in libffi form, and `call` is the same caller for any function of
//! the shape (a jitffi closure, above all). The record is per thread, so
//! tests may run in parallel.

use std::ffi::{c_char, c_int, c_void, CStr};

/// Most arguments one record holds (`ORACLE_MAX_ARGS`).
pub const MAX_ARGS: usize = 24;
/// Bytes per recorded argument (`ORACLE_SLOT`).
pub const SLOT: usize = 128;

/// `void direct(void *rvalue, void **avalue)`: calls the oracle directly and
/// stores its result as `ffi_call` would (narrow integers widened to 8
/// bytes; `rvalue` may be null).
pub type DirectFn = unsafe extern "C" fn(*mut c_void, *const *const c_void);

/// `void call(void *fn, void *rvalue, void **avalue)`: calls `fn`, a
/// function of the case's signature (variadic after the first parameter for
/// variadic cases), with gcc's calling code, and stores its result as
/// [`DirectFn`] does.
pub type CallFn = unsafe extern "C" fn(*const c_void, *mut c_void, *const *const c_void);

#[repr(C)]
struct RawCase {
    name: *const c_char,
    func: *const c_void,
    direct: DirectFn,
    call: CallFn,
}

extern "C" {
    static oracle_cases: RawCase;
    static oracle_case_count: usize;
    fn oracle_reset();
    fn oracle_arg_count() -> c_int;
    fn oracle_call_count() -> u64;
    fn oracle_arg_bytes(i: c_int, size: *mut usize) -> *const u8;
}

/// One oracle call shape.
#[derive(Clone, Copy, Debug)]
pub struct Case {
    /// The C name (`or_s_di`, or `va_ints3` for a variadic call shape).
    pub name: &'static str,
    /// The function to call.
    pub func: *const c_void,
    /// gcc's caller of `func` in libffi form.
    pub direct: DirectFn,
    /// gcc's caller of any function of this shape, in libffi form.
    pub call: CallFn,
}

/// Every case in the C table.
pub fn cases() -> Vec<Case> {
    // SAFETY: `oracle_cases` is a constant array of `oracle_case_count`
    // entries with the layout of `RawCase`; names are static C strings.
    unsafe {
        let raw = std::slice::from_raw_parts(&raw const oracle_cases, oracle_case_count);
        raw.iter()
            .map(|c| Case {
                name: CStr::from_ptr(c.name).to_str().unwrap_or("<non-utf8>"),
                func: c.func,
                direct: c.direct,
                call: c.call,
            })
            .collect()
    }
}

/// The case called `name`.
pub fn case(name: &str) -> Option<Case> {
    cases().into_iter().find(|c| c.name == name)
}

/// What the last oracle call on this thread received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Oracle calls since [`reset`].
    pub calls: u64,
    /// Argument count recorded: -1 if none since [`reset`], -2 or -3 if
    /// the oracle got a count or format it could not record.
    pub count: i32,
    /// Each argument's meaningful bytes (padding and the unused tail of
    /// `long double` are zero); as long as the argument's type.
    pub args: Vec<Vec<u8>>,
}

/// Poisons this thread's record.
pub fn reset() {
    // SAFETY: touches only the calling thread's record.
    unsafe { oracle_reset() }
}

/// A copy of this thread's record.
pub fn record() -> Record {
    // SAFETY: these are the accessors of the SysV oracles' record.
    unsafe { read_record(oracle_arg_count, oracle_call_count, oracle_arg_bytes) }
}

/// A copy of this thread's record through one C file's accessors
/// (`ORACLE_RECORD_API` in `c/oracle_common.h`).
///
/// # Safety
/// The three functions are the `_arg_count`, `_call_count` and
/// `_arg_bytes` of one record.
pub(crate) unsafe fn read_record(
    arg_count: unsafe extern "C" fn() -> c_int,
    call_count: unsafe extern "C" fn() -> u64,
    arg_bytes: unsafe extern "C" fn(c_int, *mut usize) -> *const u8,
) -> Record {
    // SAFETY: the accessors read the calling thread's record; sizes are
    // clamped to the slot so a poisoned record cannot overrun it.
    unsafe {
        let count = arg_count();
        let calls = call_count();
        let n = usize::try_from(count).unwrap_or(0).min(MAX_ARGS);
        let args = (0..n)
            .map(|i| {
                let mut size = 0usize;
                let p = arg_bytes(i as c_int, &mut size);
                std::slice::from_raw_parts(p, size.min(SLOT)).to_vec()
            })
            .collect();
        Record { calls, count, args }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direct_callers_and_rust_calls_agree() {
        let c = case("or_i32").expect("or_i32 in the table");
        assert!(cases().len() >= 40);
        // SAFETY: or_i32 is `int32_t (int32_t, int32_t)`.
        let f: extern "C" fn(i32, i32) -> i32 = unsafe { std::mem::transmute(c.func) };
        let (a, b) = (-5i32, 0x7fff_0000i32);
        reset();
        let r = f(a, b);
        let from_rust = record();
        assert_eq!(from_rust.calls, 1);
        assert_eq!(
            from_rust.args,
            vec![a.to_le_bytes().to_vec(), b.to_le_bytes().to_vec()]
        );
        assert!(r < 0, "narrow returns have their top bit set");

        let avalue = [
            (&a as *const i32).cast::<c_void>(),
            (&b as *const i32).cast(),
        ];
        let mut ret = 0u64;
        reset();
        // SAFETY: the direct caller reads two int32 and writes 8 bytes.
        unsafe { (c.direct)((&mut ret as *mut u64).cast(), avalue.as_ptr()) };
        assert_eq!(record(), from_rust);
        assert_eq!(ret, r as i64 as u64, "widened to ffi_arg");
    }

    #[test]
    fn call_reaches_the_function_it_is_given() {
        let c = case("or_i32").expect("or_i32 in the table");
        let (a, b) = (-5i32, 0x7fff_0000i32);
        let avalue = [
            (&a as *const i32).cast::<c_void>(),
            (&b as *const i32).cast(),
        ];
        let (mut via_direct, mut via_call) = (0u64, 0u64);
        reset();
        // SAFETY: the direct caller reads two int32 and writes 8 bytes.
        unsafe { (c.direct)((&mut via_direct as *mut u64).cast(), avalue.as_ptr()) };
        let want = record();
        reset();
        // SAFETY: as above, with the oracle itself as the callee.
        unsafe { (c.call)(c.func, (&mut via_call as *mut u64).cast(), avalue.as_ptr()) };
        assert_eq!((record(), via_call), (want, via_direct));

        extern "C" fn other(x: i32, y: i32) -> i32 {
            x.wrapping_mul(3) ^ y
        }
        let mut r = 0u64;
        // SAFETY: `other` has the case's signature.
        unsafe {
            (c.call)(
                other as *const c_void,
                (&mut r as *mut u64).cast(),
                avalue.as_ptr(),
            )
        };
        assert_eq!(r, other(a, b) as i64 as u64, "widened to ffi_arg");
    }

    #[test]
    fn reset_poisons_the_record() {
        reset();
        let r = record();
        assert_eq!((r.calls, r.count, r.args.len()), (0, -1, 0));
    }
}
