//! Closure invocation for S2, S3 and S5 of DESIGN.md: a direct call of an
//! equivalent Rust `extern "C" fn`, a jitffi `RawClosure` with a minimal
//! handler (reads the arguments, writes the result), a jitffi
//! `Closure::new` (Rust handler through `Args`/`Ret`) and a libffi closure
//! with the same minimal handler, all called through a black-boxed code
//! pointer as a typed `extern "C" fn`. Plus a closure's life: jitffi
//! `RawClosure::new` + drop (warm thunk cache) against libffi's
//! `ffi_closure_alloc` + `ffi_prep_closure_loc` + `ffi_closure_free`.
//!
//! `cargo bench --bench closures` (all), `cargo bench --bench closures --
//! S5` (one signature). Quote medians from one run: the machine is shared.

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr;

use criterion::{criterion_group, criterion_main, Criterion};
use jitffi::{Cif, Closure, RawClosure, Type};
use libffi::raw::{self as ffi, ffi_cif, ffi_closure};

#[path = "../tests/support/bench_util.rs"]
mod bench_util;
use bench_util::{config, libffi_cif, s5_args, Group};

type S2 = extern "C" fn(i32, i32) -> i32;
type S3 = extern "C" fn(f64, f64, f64, f64) -> f64;
type S5 = extern "C" fn(i32, f64, i64, f32, *const c_void, i8, u16, f64) -> f64;

// The computations every variant performs, so they all return the same.

fn s2_body(a: i32, b: i32) -> i32 {
    a.wrapping_add(b)
}

fn s3_body(a: f64, b: f64, c: f64, d: f64) -> f64 {
    a + b + c + d
}

#[allow(clippy::too_many_arguments)]
fn s5_body(a: i32, b: f64, c: i64, d: f32, e: *const c_void, f: i8, g: u16, h: f64) -> f64 {
    a as f64 + b + c as f64 + d as f64 + e as usize as f64 + f as f64 + g as f64 + h
}

// (a) Direct calls.

extern "C" fn s2_direct(a: i32, b: i32) -> i32 {
    s2_body(a, b)
}

extern "C" fn s3_direct(a: f64, b: f64, c: f64, d: f64) -> f64 {
    s3_body(a, b, c, d)
}

#[allow(clippy::too_many_arguments)]
extern "C" fn s5_direct(
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

// (b), (d) Minimal handlers: libffi's handler signature, which is also
// jitffi's RawHandler (libffi's first parameter is `ffi_cif *`, jitffi's
// `const void *`; both are one pointer, so one body serves both).

/// Argument `i` as a `T`.
///
/// # Safety
/// `args[i]` points at a `T`.
#[inline(always)]
unsafe fn arg<T: Copy>(args: *const *mut c_void, i: usize) -> T {
    // SAFETY: per the contract; closure arguments are aligned for their
    // types.
    unsafe { *(*args.add(i)).cast::<T>() }
}

unsafe extern "C" fn s2_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure is int(int, int); `ret` holds at least 8 bytes.
    unsafe { *ret.cast::<i32>() = s2_body(arg(args, 0), arg(args, 1)) }
}

unsafe extern "C" fn s3_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure is double(double x4).
    unsafe { *ret.cast::<f64>() = s3_body(arg(args, 0), arg(args, 1), arg(args, 2), arg(args, 3)) }
}

unsafe extern "C" fn s5_handler(
    _cif: *const c_void,
    ret: *mut c_void,
    args: *const *mut c_void,
    _ud: *mut c_void,
) {
    // SAFETY: the closure is S5's signature.
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

type LibffiHandler = unsafe extern "C" fn(*mut ffi_cif, *mut c_void, *mut *mut c_void, *mut c_void);

fn as_libffi(h: jitffi::RawHandler) -> LibffiHandler {
    // SAFETY: the two types differ only in the pointee types of pointer
    // parameters: the same C ABI.
    unsafe { std::mem::transmute::<jitffi::RawHandler, LibffiHandler>(h) }
}

// (c) Rust closures.

fn s2_rust(cif: &Cif) -> Closure {
    Closure::new(cif, |args, ret| {
        ret.set(s2_body(args.get(0), args.get(1)));
    })
    .expect("jitffi Closure::new")
}

fn s3_rust(cif: &Cif) -> Closure {
    Closure::new(cif, |args, ret| {
        ret.set(s3_body(args.get(0), args.get(1), args.get(2), args.get(3)));
    })
    .expect("jitffi Closure::new")
}

fn s5_rust(cif: &Cif) -> Closure {
    Closure::new(cif, |args, ret| {
        ret.set(s5_body(
            args.get(0),
            args.get(1),
            args.get(2),
            args.get(3),
            args.get::<*const c_void>(4),
            args.get(5),
            args.get(6),
            args.get(7),
        ));
    })
    .expect("jitffi Closure::new")
}

// libffi plumbing.

/// A libffi closure; freed on drop.
struct LibffiClosure {
    closure: *mut ffi_closure,
    code: *mut c_void,
}

impl LibffiClosure {
    fn new(cif: &mut ffi_cif, handler: jitffi::RawHandler) -> LibffiClosure {
        let mut code = ptr::null_mut();
        // SAFETY: allocation, checked; the cif outlives the closure (the
        // callers keep it for the whole run).
        unsafe {
            let closure: *mut ffi_closure =
                ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code).cast();
            assert!(!closure.is_null(), "ffi_closure_alloc");
            let status = ffi::ffi_prep_closure_loc(
                closure,
                cif,
                Some(as_libffi(handler)),
                ptr::null_mut(),
                code,
            );
            assert_eq!(status, ffi::ffi_status_FFI_OK, "ffi_prep_closure_loc");
            LibffiClosure { closure, code }
        }
    }

    /// The code pointer as a function of type `F`.
    ///
    /// # Safety
    /// `F` is the cif's signature as an `extern "C" fn` type.
    unsafe fn as_fn<F: Copy>(&self) -> F {
        // SAFETY: per the contract; function pointers are one word.
        unsafe { std::mem::transmute_copy::<*mut c_void, F>(&self.code) }
    }
}

impl Drop for LibffiClosure {
    fn drop(&mut self) {
        // SAFETY: allocated by ffi_closure_alloc, freed once.
        unsafe { ffi::ffi_closure_free(self.closure.cast()) };
    }
}

/// The four callees of one signature, as typed function pointers, each
/// checked against the direct call before anything is timed.
struct Variants<F> {
    direct: F,
    raw: F,
    rust: F,
    libffi: F,
}

impl<F: Copy> Variants<F> {
    fn bench(&self, g: &mut Group<'_>, call: impl Fn(F) -> f64) {
        let want = call(self.direct);
        for (name, f) in [
            ("jitffi RawClosure", self.raw),
            ("jitffi Closure::new", self.rust),
            ("libffi closure", self.libffi),
        ] {
            let got = call(f);
            assert!(got == want, "{name} returned {got}, the direct call {want}");
        }
        for (name, f) in [
            ("direct", self.direct),
            ("jitffi RawClosure", self.raw),
            ("jitffi Closure::new", self.rust),
            ("libffi closure", self.libffi),
        ] {
            g.bench_function(name, |b| b.iter(|| call(black_box(f))));
        }
    }
}

fn closures(c: &mut Criterion) {
    let t_i32 = &raw mut ffi::ffi_type_sint32;
    let t_f64 = &raw mut ffi::ffi_type_double;
    let t_i64 = &raw mut ffi::ffi_type_sint64;
    let t_f32 = &raw mut ffi::ffi_type_float;
    let t_ptr = &raw mut ffi::ffi_type_pointer;
    let t_i8 = &raw mut ffi::ffi_type_sint8;
    let t_u16 = &raw mut ffi::ffi_type_uint16;

    // S2 int(int, int)
    {
        let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
        let mut lcif = libffi_cif(t_i32, &[t_i32, t_i32]);
        let raw = RawClosure::new(&cif, s2_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s2_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s2_handler);
        // SAFETY: every closure has S2's signature and outlives the run.
        let v: Variants<S2> = unsafe {
            Variants {
                direct: s2_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S2");
        v.bench(&mut g, |f| f(black_box(40), black_box(2)) as f64);
        g.finish();
    }

    // S3 double(double x4)
    {
        let cif = Cif::new(Type::f64(), &vec![Type::f64(); 4]).unwrap();
        let mut lcif = libffi_cif(t_f64, &[t_f64; 4]);
        let raw = RawClosure::new(&cif, s3_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s3_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s3_handler);
        // SAFETY: every closure has S3's signature and outlives the run.
        let v: Variants<S3> = unsafe {
            Variants {
                direct: s3_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S3");
        v.bench(&mut g, |f| {
            f(
                black_box(1.0),
                black_box(2.0),
                black_box(3.0),
                black_box(4.0),
            )
        });
        g.finish();
    }

    // S5 double(int, double, int64, float, void *, int8, uint16, double)
    {
        let s5 = s5_args();
        let cif = Cif::new(Type::f64(), &s5).unwrap();
        let mut lcif = libffi_cif(
            t_f64,
            &[t_i32, t_f64, t_i64, t_f32, t_ptr, t_i8, t_u16, t_f64],
        );
        let raw = RawClosure::new(&cif, s5_handler, ptr::null_mut()).expect("RawClosure::new");
        let rust = s5_rust(&cif);
        let lib = LibffiClosure::new(&mut lcif, s5_handler);
        // SAFETY: every closure has S5's signature and outlives the run.
        let v: Variants<S5> = unsafe {
            Variants {
                direct: s5_direct,
                raw: raw.as_fn(),
                rust: rust.as_fn(),
                libffi: lib.as_fn(),
            }
        };
        let mut g = c.benchmark_group("closure S5");
        v.bench(&mut g, |f| {
            f(
                black_box(1),
                black_box(2.0),
                black_box(3),
                black_box(4.0),
                black_box(5 as *const c_void),
                black_box(-6),
                black_box(7),
                black_box(8.0),
            )
        });
        g.finish();
    }
}

/// A closure's life: allocate, prepare, free. The jitffi thunk is compiled
/// before timing (a warm cache), as libffi's cif is prepared.
fn lifecycle(c: &mut Criterion) {
    let t_i32 = &raw mut ffi::ffi_type_sint32;
    let mut g = c.benchmark_group("closure alloc+prep+free");
    let cif = Cif::new(Type::i32(), &[Type::i32(), Type::i32()]).unwrap();
    let mut lcif = libffi_cif(t_i32, &[t_i32, t_i32]);
    let lcif: *mut ffi_cif = &mut *lcif;

    // Each variant must produce a working closure.
    {
        let raw = RawClosure::new(&cif, s2_handler, ptr::null_mut()).expect("RawClosure::new");
        // SAFETY: S2's signature; the closure is alive.
        let f: S2 = unsafe { raw.as_fn() };
        assert_eq!(f(40, 2), 42, "jitffi RawClosure");
        // SAFETY: `lcif` is a prepared S2 cif that outlives the closure.
        let lib = LibffiClosure::new(unsafe { &mut *lcif }, s2_handler);
        // SAFETY: as above.
        let f: S2 = unsafe { lib.as_fn() };
        assert_eq!(f(40, 2), 42, "libffi closure");
        let rust = s2_rust(&cif);
        // SAFETY: as above.
        let f: S2 = unsafe { rust.as_fn() };
        assert_eq!(f(40, 2), 42, "jitffi Closure::new");
    }

    g.bench_function("jitffi RawClosure::new + drop", |b| {
        b.iter(|| RawClosure::new(black_box(&cif), s2_handler, ptr::null_mut()))
    });
    g.bench_function("libffi alloc + prep_closure_loc + free", |b| {
        // SAFETY: the cif is prepared and outlives every closure; each
        // closure is freed once, right after it is made.
        b.iter(|| unsafe {
            let mut code = ptr::null_mut();
            let closure: *mut ffi_closure =
                ffi::ffi_closure_alloc(std::mem::size_of::<ffi_closure>(), &mut code).cast();
            let status = ffi::ffi_prep_closure_loc(
                closure,
                black_box(lcif),
                Some(as_libffi(s2_handler)),
                ptr::null_mut(),
                code,
            );
            ffi::ffi_closure_free(closure.cast());
            status
        })
    });
    // For reference: the Rust-closure form adds its boxes.
    g.bench_function("jitffi Closure::new + drop", |b| {
        b.iter(|| s2_rust(black_box(&cif)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = closures, lifecycle
}
criterion_main!(benches);
