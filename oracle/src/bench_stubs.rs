//! S1-S8 of DESIGN.md: C call targets and hand-written libffi-form stubs
//! (`oracle/c/bench_stubs.c`, compiled by gcc -O2).

use std::ffi::c_void;

/// `struct { double a, b; }` (S6).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct S6Pair {
    pub a: f64,
    pub b: f64,
}

/// `struct { int64_t a, b, c, d; }` (S7).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct S7Quad {
    pub a: i64,
    pub b: i64,
    pub c: i64,
    pub d: i64,
}

/// A hand-written stub: `void stub(void *fn, void *rvalue, void **avalue)`.
pub type StubFn = unsafe extern "C" fn(*const c_void, *mut c_void, *const *const c_void);

crate::bench_cases::target_fn_types!("C");

/// The C targets S1-S8 (index 0 is S1), for calls through a stub.
pub fn targets() -> [*const c_void; 8] {
    [
        bench_s1 as *const c_void,
        bench_s2 as *const c_void,
        bench_s3 as *const c_void,
        bench_s4 as *const c_void,
        bench_s5 as *const c_void,
        bench_s6 as *const c_void,
        bench_s7 as *const c_void,
        bench_s8 as *const c_void,
    ]
}

/// The hand-written stubs of S1-S8 (index 0 is S1).
pub const STUBS: [StubFn; 8] = [
    bench_stub_s1,
    bench_stub_s2,
    bench_stub_s3,
    bench_stub_s4,
    bench_stub_s5,
    bench_stub_s6,
    bench_stub_s7,
    bench_stub_s8,
];

extern "C" {
    pub fn bench_s1();
    pub fn bench_s2(a: i32, b: i32) -> i32;
    pub fn bench_s3(a: f64, b: f64, c: f64, d: f64) -> f64;
    pub fn bench_s4(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64, g: i64, h: i64) -> i64;
    pub fn bench_s5(a: i32, b: f64, c: i64, d: f32, e: *const c_void, f: i8, g: u16, h: f64)
        -> f64;
    pub fn bench_s6(x: S6Pair, y: S6Pair) -> S6Pair;
    pub fn bench_s7(x: S7Quad) -> S7Quad;
    pub fn bench_s8(
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
        a10: i32,
        a11: i32,
        a12: i32,
        a13: i32,
        a14: i32,
        a15: i32,
    ) -> i32;

    pub fn bench_stub_s1(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s2(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s3(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s4(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s5(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s6(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s7(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn bench_stub_s8(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
}
