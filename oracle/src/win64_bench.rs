//! S1-S8 of DESIGN.md with Microsoft x64 targets: C functions declared
//! `__attribute__((ms_abi))` and hand-written libffi-form stubs calling them
//! (`oracle/c/win64_bench.c`, compiled by gcc -O2). The stubs themselves
//! are ordinary SysV functions, like jitffi's Win64 call stubs.

use std::ffi::c_void;

pub use crate::bench_stubs::{S6Pair, S7Quad, StubFn};

crate::bench_cases::target_fn_types!("win64");

/// The Microsoft x64 targets S1-S8 (index 0 is S1), for calls through a
/// stub.
pub fn targets() -> [*const c_void; 8] {
    [
        w64_bench_s1 as *const c_void,
        w64_bench_s2 as *const c_void,
        w64_bench_s3 as *const c_void,
        w64_bench_s4 as *const c_void,
        w64_bench_s5 as *const c_void,
        w64_bench_s6 as *const c_void,
        w64_bench_s7 as *const c_void,
        w64_bench_s8 as *const c_void,
    ]
}

/// Their hand-written (SysV) stubs (index 0 is S1).
pub const STUBS: [StubFn; 8] = [
    w64_bench_stub_s1,
    w64_bench_stub_s2,
    w64_bench_stub_s3,
    w64_bench_stub_s4,
    w64_bench_stub_s5,
    w64_bench_stub_s6,
    w64_bench_stub_s7,
    w64_bench_stub_s8,
];

extern "win64" {
    pub fn w64_bench_s1();
    pub fn w64_bench_s2(a: i32, b: i32) -> i32;
    pub fn w64_bench_s3(a: f64, b: f64, c: f64, d: f64) -> f64;
    pub fn w64_bench_s4(a: i64, b: i64, c: i64, d: i64, e: i64, f: i64, g: i64, h: i64) -> i64;
    pub fn w64_bench_s5(
        a: i32,
        b: f64,
        c: i64,
        d: f32,
        e: *const c_void,
        f: i8,
        g: u16,
        h: f64,
    ) -> f64;
    pub fn w64_bench_s6(x: S6Pair, y: S6Pair) -> S6Pair;
    pub fn w64_bench_s7(x: S7Quad) -> S7Quad;
    pub fn w64_bench_s8(
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
}

extern "C" {
    pub fn w64_bench_stub_s1(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s2(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s3(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s4(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s5(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s6(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s7(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
    pub fn w64_bench_stub_s8(f: *const c_void, rvalue: *mut c_void, avalue: *const *const c_void);
}
