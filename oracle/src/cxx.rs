//! The C++ exception oracles of `c/unwind.cpp`, compiled by g++: throwers
//! (call targets that throw an `int`), catchers (call a stub or closure
//! code pointer inside `try`/`catch` and return what they caught) and a
//! raw closure handler that throws. No exception crosses into Rust: every
//! catcher catches everything. The Microsoft x64 and register-wrecking
//! pieces (`c/x86_64/unwind_x86.cpp`) exist on x86-64 only.

use std::ffi::c_void;

/// What a catcher returns when the call came back normally.
pub const NOTHING: i32 = i32::MIN;
/// What a catcher returns when it caught something other than an `int`.
pub const FOREIGN: i32 = i32::MIN + 1;

/// `void stub(void *fn, void *rvalue, void *args)`: either entry form.
pub type StubFn = unsafe extern "C" fn(*const c_void, *mut c_void, *const c_void);

/// `struct Big { int64_t a, b, c, d; }`: returned in memory.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Big {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub d: i64,
}

/// The closure handlers' user data: `nargs` int arguments; the handler
/// throws (or returns) `bias + sum((i + 1) * arg[i])`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HandlerData {
    pub nargs: i32,
    pub bias: i32,
}

/// An ms_abi `int(int, int, int, int, int)`.
#[cfg(target_arch = "x86_64")]
pub type MsFn5 = unsafe extern "win64" fn(i32, i32, i32, i32, i32) -> i32;

extern "C" {
    // Throwers: each throws an int derived from its arguments.
    /// Throws `v`.
    pub fn cxx_throw_int(v: i32);
    /// Throws `v + 1`.
    pub fn cxx_throw_int_ret(v: i32) -> i32;
    /// Throws `sum((i + 1) * a_i)`; the last four arguments are on the stack.
    #[allow(clippy::too_many_arguments)]
    pub fn cxx_throw_stack(
        a0: i32,
        a1: i32,
        a2: i32,
        a3: i32,
        a4: i32,
        a5: i32,
        a6: i32,
        a7: i32,
        a8: i32,
        a9: i32,
    ) -> i32;
    /// Throws `3 * v`.
    pub fn cxx_throw_sret(v: i32) -> Big;
    /// `long double cxx_throw_x87(int v, long double x)`: throws `v + (int)x`
    /// (declared here without the x87 type; call it through a stub).
    pub fn cxx_throw_x87();
    /// `int cxx_throw_variadic(int n, ...)`: `n` ints then a double;
    /// throws the ints as decimal digits plus the double.
    pub fn cxx_throw_variadic(n: i32, ...) -> i32;
    /// ms_abi: throws `a + 2b + 3c + 4d + 5e`.
    #[cfg(target_arch = "x86_64")]
    pub fn cxx_throw_ms();
    /// Returns `v`, throws nothing.
    pub fn cxx_no_throw(v: i32) -> i32;
    /// `void cxx_wrecker(void (*then)(int), int v)`: calls `then(v)` with
    /// rbx, rbp and r12-r15 overwritten and not saved (nor described in its
    /// unwind entry); returns with them still overwritten.
    #[cfg(target_arch = "x86_64")]
    pub fn cxx_wrecker();

    // Stub catchers.
    /// `stub(fn, rvalue, args)` inside try/catch.
    pub fn cxx_catch_stub(
        stub: StubFn,
        f: *const c_void,
        rvalue: *mut c_void,
        args: *const c_void,
    ) -> i32;
    /// A libffi-form stub of `int(int)` called with `v`, inside try/catch.
    pub fn cxx_catch_through(
        stub: unsafe extern "C" fn(*const c_void, *mut c_void, *const *const c_void),
        f: *const c_void,
        v: i32,
    ) -> i32;
    /// `stub(fn, rvalue, args)` with six values live across it; `out[0..6]`
    /// gets them after the catch, `out[6]` what was caught.
    pub fn cxx_catch_keeps(
        stub: StubFn,
        f: *const c_void,
        rvalue: *mut c_void,
        args: *const c_void,
        seed: i64,
        out: *mut i64,
    );

    // Closure handlers (`RawHandler`s; user data is a `HandlerData`).
    /// Trashes rsi, rdi, xmm6-xmm15 (on x86-64), then throws.
    pub fn cxx_throwing_handler(
        cif: *const c_void,
        ret: *mut c_void,
        args: *const *mut c_void,
        user_data: *mut c_void,
    );
    /// Stores the value as an `ffi_arg` and returns.
    pub fn cxx_returning_handler(
        cif: *const c_void,
        ret: *mut c_void,
        args: *const *mut c_void,
        user_data: *mut c_void,
    );

    // Closure catchers: call the code pointer inside try/catch.
    pub fn cxx_call_closure_catching(fp: *const c_void, a: i32, b: i32) -> i32;
    pub fn cxx_closure_void(fp: *const c_void, a: i32) -> i32;
    /// Calls `fp(base, base + 1, ..., base + 9)`.
    pub fn cxx_closure_stack(fp: *const c_void, base: i32) -> i32;
    pub fn cxx_closure_sret(fp: *const c_void, a: i32) -> i32;
    pub fn cxx_closure_x87(fp: *const c_void, a: i32) -> i32;
    pub fn cxx_closure_double(fp: *const c_void, a: i32, b: i32) -> i32;
    /// Calls `fp(a, b)` with no try: its result.
    pub fn cxx_closure_plain(fp: *const c_void, a: i32, b: i32) -> i32;
    /// An ms_abi catcher calls `fp(1, 2, 3, 4, 5)` with eight doubles and
    /// six integers live across it: `out[0..8]` the doubles' bits,
    /// `out[8..14]` the integers, `out[14]` what was caught.
    #[cfg(target_arch = "x86_64")]
    pub fn cxx_ms_closure_keeps(fp: *const c_void, seed: i64, out: *mut i64);
}

/// What [`cxx_catch_keeps`] should report for `seed`, before the caught
/// value.
pub fn keeps_expected(seed: i64) -> [i64; 6] {
    const MUL: [i64; 6] = [3, 5, 7, 11, 13, 17];
    std::array::from_fn(|i| seed * MUL[i] + i as i64 + 1)
}

/// What [`cxx_ms_closure_keeps`] should report for `seed`, before the
/// caught value.
#[cfg(target_arch = "x86_64")]
pub fn ms_keeps_expected(seed: i64) -> [i64; 14] {
    let mut out = [0i64; 14];
    for (i, o) in out[..8].iter_mut().enumerate() {
        *o = (seed as f64 * (i as f64 + 1.5)).to_bits() as i64;
    }
    for (i, o) in out[8..].iter_mut().enumerate() {
        *o = seed * (i as i64 + 2) + i as i64;
    }
    out
}
